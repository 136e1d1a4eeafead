/*
 * newlib_cm7.c - a larger CM7 application that leans on newlib (stdio with
 * floating point, malloc, strtod/qsort, libm): what a vendor's real firmware
 * pulls in. Built for slot A and slot B like the small example, so that the
 * package tests can prove, on a few hundred KiB of library code, that
 * `flasher pack` relocating the slot A build gives exactly the slot B link.
 * It runs (its output goes nowhere: _write discards), but nothing tests that.
 */
#define _POSIX_C_SOURCE 200809L /* strdup */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
int main(void);
void Reset_Handler(void);
void Default_Handler(void);
void _init(void);
void _fini(void);
void __libc_init_array(void);
int _write(int fd, const char *buf, int len);
int _read(int fd, char *buf, int len);
int _close(int fd);
int _lseek(int fd, int off, int whence);
int _fstat(int fd, struct stat *st);
int _isatty(int fd);
int _getpid(void);
int _kill(int pid, int sig);
void _exit(int code);
void *_sbrk(ptrdiff_t incr);
extern char end[];

/* -nostartfiles: no crti/crtn, so the hooks __libc_init_array calls. */
void _init(void) {}
void _fini(void) {}

/* Minimal system calls: no console on this board. */
int _write(int fd, const char *buf, int len) { (void)fd; (void)buf; return len; }
int _read(int fd, char *buf, int len) { (void)fd; (void)buf; (void)len; return 0; }
int _close(int fd) { (void)fd; return -1; }
int _lseek(int fd, int off, int whence) { (void)fd; (void)off; (void)whence; return 0; }
int _fstat(int fd, struct stat *st) { (void)fd; st->st_mode = S_IFCHR; return 0; }
int _isatty(int fd) { (void)fd; return 1; }
int _getpid(void) { return 1; }
int _kill(int pid, int sig) { (void)pid; (void)sig; return -1; }
void _exit(int code) { (void)code; for (;;) {} }

/* The heap grows from the end of .bss (the linker script's `end`). */
void *_sbrk(ptrdiff_t incr)
{
	static char *brk = end;
	char *old = brk;
	brk += incr;
	return old;
}

void Default_Handler(void)
{
	for (;;) {
	}
}

void Reset_Handler(void)
{
	for (uint32_t *s = &_sidata, *d = &_sdata; d < &_edata;)
		*d++ = *s++;
	for (uint32_t *d = &_sbss; d < &_ebss;)
		*d++ = 0;
	__libc_init_array();
	exit(main());
}

__attribute__((section(".isr_vector"), used)) void (*const newlib_vectors[16])(void) = {
    (void (*)(void))&_estack, Reset_Handler, Default_Handler, Default_Handler, Default_Handler, Default_Handler,
    Default_Handler, 0, 0, 0, 0, Default_Handler, Default_Handler, 0, Default_Handler, Default_Handler,
};

/* Function pointers in initialised data: absolute addresses of code that
 * live in .data (RAM), stored in flash. */
static double (*const funcs[])(double) = {sin, cos, sqrt, exp, log};
static double (*selected)(double) = tan;
static const char *names[] = {"sin", "cos", "sqrt", "exp", "log"};

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return (x > y) - (x < y);
}

__attribute__((constructor)) static void early(void)
{
	setvbuf(stdout, NULL, _IOLBF, 64);
}

int main(void)
{
	char line[128];
	size_t n = 32;
	double *v = malloc(n * sizeof *v);
	if (!v)
		return 1;
	for (size_t i = 0; i < n; i++)
		v[i] = funcs[i % 5]((double)i / 7.0 + 0.5) * strtod("1.25e1", NULL);
	qsort(v, n, sizeof *v, cmp_double);
	for (size_t i = 0; i < n; i++) {
		snprintf(line, sizeof line, "%s %zu %.6g %e %a", names[i % 5], i, v[i], v[i] * 1e10, v[i]);
		puts(line);
	}
	float f = (float)selected(0.3);
	printf("%8.3f %ld %lld\n", (double)f, lround(v[3]), (long long)llround(v[7] * 1e6));
	struct tm tm = {.tm_year = 126, .tm_mon = 11, .tm_mday = 2};
	time_t t = mktime(&tm);
	strftime(line, sizeof line, "%Y-%m-%d %A", localtime(&t));
	puts(line);
	int a, b;
	if (sscanf("17 42", "%d %d", &a, &b) == 2)
		fprintf(stderr, "%d\n", a * b);
	char *dup = strdup(line);
	v = realloc(v, 2 * n * sizeof *v);
	free(dup);
	free(v);
	return 0;
}
