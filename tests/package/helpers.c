#include "helpers.h"

#include <criterion/criterion.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

char *make_temp_dir(void)
{
	char tmpl[] = "/tmp/flasher-pkgtest-XXXXXX";
	char *d = mkdtemp(tmpl);
	cr_assert_not_null(d, "mkdtemp failed");
	return strdup(d);
}

void rm_tree(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return;
	struct dirent *e;
	while ((e = readdir(d))) {
		if (!strcmp(e->d_name, ".") || !strcmp(e->d_name, ".."))
			continue;
		char *p = path_in(dir, e->d_name);
		struct stat st;
		if (lstat(p, &st) == 0 && S_ISDIR(st.st_mode)) {
			chmod(p, 0755);
			rm_tree(p);
		} else {
			unlink(p);
		}
		free(p);
	}
	closedir(d);
	rmdir(dir);
}

char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

void write_bytes(const char *path, const void *data, size_t len)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f, "cannot create %s", path);
	cr_assert_eq(fwrite(data, 1, len, f), len);
	cr_assert_eq(fclose(f), 0);
}

uint8_t *read_bytes(const char *path, size_t *len)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	uint8_t *b = malloc(n > 0 ? (size_t)n : 1);
	*len = fread(b, 1, (size_t)n, f);
	fclose(f);
	return b;
}

static uint32_t next(uint32_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 17;
	*s ^= *s << 5;
	return *s;
}

void fill_code_like(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t s = seed | 1, words[64];
	for (int i = 0; i < 64; i++)
		words[i] = next(&s);
	for (size_t i = 0; i < len; i += 4) {
		uint32_t w = words[next(&s) % 64];
		for (size_t k = 0; k < 4 && i + k < len; k++)
			buf[i + k] = (uint8_t)(w >> (8 * k));
	}
}

void put_vectors(uint8_t *buf, uint32_t sp, uint32_t reset)
{
	for (int i = 0; i < 4; i++) {
		buf[i] = (uint8_t)(sp >> (8 * i));
		buf[4 + i] = (uint8_t)(reset >> (8 * i));
	}
}

void fill_random(uint8_t *buf, size_t len, uint32_t seed)
{
	uint32_t s = seed | 1;
	for (size_t i = 0; i < len; i++)
		buf[i] = (uint8_t)(next(&s) >> 7);
}

int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	if (!d)
		return -1;
	int n = 0;
	struct dirent *e;
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void p16(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void p32(uint8_t *p, uint32_t v)
{
	p16(p, v);
	p16(p + 2, v >> 16);
}

uint8_t *build_elf(const struct elf_seg *segs, size_t n, size_t *len)
{
	size_t data = 52 + 32 * n, total = data;
	for (size_t i = 0; i < n; i++)
		total += segs[i].filesz;
	uint8_t *b = calloc(1, total);
	memcpy(b, "\x7f" "ELF", 4);
	b[4] = 1; /* ELFCLASS32 */
	b[5] = 1; /* little-endian */
	b[6] = 1; /* EV_CURRENT */
	p16(b + 16, 2);  /* ET_EXEC */
	p16(b + 18, 40); /* EM_ARM */
	p32(b + 20, 1);
	p32(b + 24, segs[0].vaddr | 1); /* entry: thumb */
	p32(b + 28, 52);                /* e_phoff */
	p32(b + 32, 0);                 /* no section headers */
	p32(b + 36, 0x05000400);        /* EABI5, hard float */
	p16(b + 40, 52);
	p16(b + 42, 32);
	p16(b + 44, (uint32_t)n);
	p16(b + 46, 40);
	size_t at = data;
	for (size_t i = 0; i < n; i++) {
		uint8_t *ph = b + 52 + 32 * i;
		p32(ph, segs[i].type);
		p32(ph + 4, (uint32_t)at);
		p32(ph + 8, segs[i].vaddr);
		p32(ph + 12, segs[i].paddr);
		p32(ph + 16, segs[i].filesz);
		p32(ph + 20, segs[i].memsz ? segs[i].memsz : segs[i].filesz);
		p32(ph + 24, 5);
		p32(ph + 28, 4);
		if (segs[i].filesz)
			memcpy(b + at, segs[i].data, segs[i].filesz);
		at += segs[i].filesz;
	}
	*len = total;
	return b;
}

static char *slurp_fd(int fd)
{
	size_t cap = 4096, n = 0;
	char *s = malloc(cap);
	ssize_t r;
	while ((r = read(fd, s + n, cap - n - 1)) > 0) {
		n += (size_t)r;
		if (cap - n < 2)
			s = realloc(s, cap *= 2);
	}
	s[n] = '\0';
	return s;
}

int run_cli(char **out, char **err, const char *const *args)
{
	char outname[] = "/tmp/flasher-cli-out-XXXXXX", errname[] = "/tmp/flasher-cli-err-XXXXXX";
	int ofd = mkstemp(outname), efd = mkstemp(errname);
	cr_assert(ofd >= 0 && efd >= 0);
	unlink(outname);
	unlink(errname);
	size_t n = 0;
	while (args[n])
		n++;
	char **argv = calloc(n + 2, sizeof *argv);
	argv[0] = (char *)FLASHER_CLI_PATH;
	for (size_t i = 0; i < n; i++)
		argv[i + 1] = (char *)args[i];
	fflush(NULL);
	pid_t pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		dup2(ofd, 1);
		dup2(efd, 2);
		execv(FLASHER_CLI_PATH, argv);
		_exit(127);
	}
	int st;
	cr_assert_eq(waitpid(pid, &st, 0), pid);
	free(argv);
	lseek(ofd, 0, SEEK_SET);
	lseek(efd, 0, SEEK_SET);
	char *o = slurp_fd(ofd), *e = slurp_fd(efd);
	close(ofd);
	close(efd);
	if (out)
		*out = o;
	else
		free(o);
	if (err)
		*err = e;
	else
		free(e);
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}
