/* Helpers of the end-to-end tests (see e2e.h). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "e2e.h"
#include "flboot/sha256.h"

static char tmpdir[256];

const char *e2e_tmpdir(void)
{
	if (!tmpdir[0]) {
		snprintf(tmpdir, sizeof tmpdir, "/tmp/flasher-e2e-XXXXXX");
		cr_assert_not_null(mkdtemp(tmpdir), "mkdtemp: %s", strerror(errno));
		/* unit claims (unit_claim.h) of this test only: parallel tests may
		 * simulate units with the same uid */
		char locks[300];
		snprintf(locks, sizeof locks, "%s/locks", tmpdir);
		setenv("FLASHER_LOCK_DIR", locks, 1);
	}
	return tmpdir;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

void e2e_cleanup(void)
{
	if (tmpdir[0] && !getenv("E2E_KEEP"))
		nftw(tmpdir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	tmpdir[0] = '\0';
}

const char *e2e_path(const char *name)
{
	static char bufs[8][512];
	static unsigned next;
	char *b = bufs[next++ % 8];
	snprintf(b, sizeof bufs[0], "%s/%s", e2e_tmpdir(), name);
	return b;
}

void e2e_devsim_start(e2e_devsim *d, const char *flash, const char *const *extra)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	const char *argv[32];
	int n = 0;
	argv[n++] = FLASHER_DEVSIM_PATH;
	argv[n++] = "--flash";
	argv[n++] = flash;
	for (int i = 0; extra && extra[i] && n < 30; i++)
		argv[n++] = extra[i];
	argv[n] = NULL;
	char log[600];
	snprintf(log, sizeof log, "%s.log", flash);
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(p[1], 1);
		int fd = open(log, O_WRONLY | O_CREAT | O_APPEND, 0644);
		if (fd >= 0)
			dup2(fd, 2);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	memset(d, 0, sizeof *d);
	d->pid = pid;
	d->out_fd = p[0];
	snprintf(d->flash, sizeof d->flash, "%s", flash);
	/* the first line is "pty: PATH" */
	char line[256];
	size_t len = 0;
	while (len < sizeof line - 1) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		cr_assert_gt(poll(&pfd, 1, 10000), 0, "flasher-devsim printed no pty line within 10 s");
		ssize_t r = read(p[0], line + len, 1);
		cr_assert_eq(r, 1, "flasher-devsim exited before printing its pty line (see %s)", log);
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	/* "pty: PATH", or "listen: unix:PATH" with --listen (d->pty is then the port spec) */
	int sock = !strncmp(line, "listen: ", 8);
	cr_assert(sock || !strncmp(line, "pty: ", 5), "devsim's first line is '%s', not 'pty: PATH'", line);
	snprintf(d->pty, sizeof d->pty, "%s", line + (sock ? 8 : 5));
}

void e2e_devsim_kill(e2e_devsim *d, int sig)
{
	if (d->pid <= 0)
		return;
	kill(d->pid, sig);
	waitpid(d->pid, NULL, 0);
	d->pid = 0;
	close(d->out_fd);
}

void e2e_write_bin(const char *path, size_t size, uint32_t seed, int compressible)
{
	uint8_t *b = malloc(size);
	cr_assert_not_null(b);
	uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
	uint32_t words[256];
	for (int i = 0; i < 256; i++) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		words[i] = (uint32_t)x;
	}
	for (size_t i = 0; i < size; i += 4) {
		x ^= x << 13, x ^= x >> 7, x ^= x << 17;
		uint32_t w = compressible ? words[x % 64] : (uint32_t)(x >> 16);
		memcpy(b + i, &w, size - i < 4 ? size - i : 4);
	}
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	cr_assert_eq(fwrite(b, 1, size, f), size);
	fclose(f);
	free(b);
}

const char *e2e_make_pkg(const char *name, const e2e_pkg_spec *spec)
{
	static char out[8][512];
	static unsigned next;
	char *path = out[next++ % 8];
	char cm7[600], cm4[600];
	snprintf(path, sizeof out[0], "%s", e2e_path(name));
	snprintf(cm7, sizeof cm7, "%s.cm7.bin", path);
	snprintf(cm4, sizeof cm4, "%s.cm4.bin", path);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = spec->product ? spec->product : "demo";
	o.fw_version = spec->version;
	size_t nhw = 0;
	while (nhw < 4 && spec->hw_revs[nhw])
		nhw++;
	o.hw_revs = nhw ? spec->hw_revs : NULL;
	o.hw_rev_count = nhw;
	o.min_bootloader = spec->min_bootloader;
	if (spec->cm7_size) {
		e2e_write_bin(cm7, spec->cm7_size, spec->seed * 2 + 1, spec->compressible);
		o.cm7_file = cm7;
	}
	if (spec->cm4_size) {
		e2e_write_bin(cm4, spec->cm4_size, spec->seed * 2 + 2, spec->compressible);
		o.cm4_file = cm4;
	}
	int err = flasher_package_build(&o, path);
	cr_assert_eq(err, 0, "pack %s: %s: %s", name, flasher_error_name(err), flasher_error_last());
	return path;
}

void e2e_file_sha256(const char *path, uint8_t out[32])
{
	FILE *f = fopen(path, "rb");
	cr_assert_not_null(f, "%s: %s", path, strerror(errno));
	flboot_sha256_ctx ctx;
	flboot_sha256_init(&ctx);
	uint8_t buf[65536];
	size_t n;
	while ((n = fread(buf, 1, sizeof buf, f)) > 0)
		flboot_sha256_update(&ctx, buf, n);
	fclose(f);
	flboot_sha256_final(&ctx, out);
}

int e2e_run_cli(const char *const *args, char **out, double timeout_s)
{
	return e2e_run_prog(FLASHER_CLI_PATH, args, out, timeout_s);
}

int e2e_run_prog(const char *prog, const char *const *args, char **out, double timeout_s)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	const char *argv[32];
	int n = 0;
	argv[n++] = prog;
	for (int i = 0; args[i] && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		close(p[1]);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t cap = 4096, len = 0;
	char *buf = malloc(cap);
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pfd = {p[0], POLLIN, 0};
		int r = poll(&pfd, 1, 200);
		if (r > 0) {
			if (len + 1024 > cap)
				buf = realloc(buf, cap *= 2);
			ssize_t k = read(p[0], buf + len, cap - len - 1);
			if (k <= 0)
				break;
			len += (size_t)k;
		}
		clock_gettime(CLOCK_MONOTONIC, &t1);
		if ((double)(t1.tv_sec - t0.tv_sec) > timeout_s) {
			kill(pid, SIGKILL);
			break;
		}
	}
	close(p[0]);
	buf[len] = '\0';
	int st = 0;
	waitpid(pid, &st, 0);
	if (out)
		*out = buf;
	else
		free(buf);
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

int e2e_update(const char *port, const char *pkg_path, const flasher_update_options *uo,
               const flasher_session_options *so, flasher_update_result *res)
{
	flasher_package *pkg;
	int err = flasher_package_open(&pkg, pkg_path);
	cr_assert_eq(err, 0, "open %s: %s", pkg_path, flasher_error_last());
	flasher_session *s;
	err = flasher_session_open(&s, port, so);
	if (!err)
		err = flasher_session_update(s, pkg, uo, res);
	flasher_session_close(s);
	flasher_package_free(pkg);
	return err;
}

int e2e_info(const char *port, flasher_unit_info *info)
{
	flasher_session *s;
	int err = flasher_session_open(&s, port, NULL);
	if (!err)
		err = flasher_session_info(s, info);
	flasher_session_close(s);
	return err;
}
