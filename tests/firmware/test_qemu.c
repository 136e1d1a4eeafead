/*
 * The bootloader core, cross-compiled for the Cortex-M7, running in QEMU
 * (mps2-an500, firmware/port/qemu-mps2), updated by the real `flasher` CLI
 * through QEMU's serial socket: a first install on an empty unit, then an
 * update of both cores from the application (reboot into the bootloader,
 * transfer, activate, reboot into the new pair on trial, confirm).
 *
 * Returns 77 (skipped) only when qemu-system-arm is not installed.
 */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct unit {
	char dir[256];
	char sock[300];
	char log[300];
	pid_t qemu;
} unit;

static void path_in(const unit *u, const char *name, char *out, size_t cap)
{
	snprintf(out, cap, "%s/%s", u->dir, name);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

/* Run a program to completion; its stdout+stderr go to outfile. */
static int run(const char *outfile, char *const argv[])
{
	pid_t pid = fork();
	cr_assert_neq(pid, -1);
	if (pid == 0) {
		int fd = open(outfile, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execv(argv[0], argv);
		_exit(127);
	}
	int st;
	while (waitpid(pid, &st, 0) < 0 && errno == EINTR)
		;
	return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

static char *slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return strdup("");
	static char buf[1 << 16];
	size_t n = fread(buf, 1, sizeof buf - 1, f);
	fclose(f);
	buf[n] = 0;
	return strdup(buf);
}

static void write_image(const char *path, size_t size, unsigned seed)
{
	FILE *f = fopen(path, "wb");
	cr_assert_not_null(f);
	/* Code-like: repeated words with a random tail, so deflate has work. */
	uint32_t x = seed * 2654435761u + 1u, words[64];
	for (int i = 0; i < 64; i++) {
		x = x * 1103515245u + 12345u;
		words[i] = x;
	}
	for (size_t i = 0; i < size / 4; i++) {
		x = x * 1103515245u + 12345u;
		uint32_t w = i < size / 8 ? words[(x >> 16) % 64] : x;
		fwrite(&w, 4, 1, f);
	}
	fclose(f);
}

static void pack(unit *u, const char *version, const char *product, unsigned seed, char *pkg, size_t cap)
{
	char c7[320], c4[320], out[320];
	snprintf(c7, sizeof c7, "%s/cm7-%s.bin", u->dir, version);
	snprintf(c4, sizeof c4, "%s/cm4-%s.bin", u->dir, version);
	snprintf(pkg, cap, "%s/fw-%s-%s.flpkg", u->dir, product, version);
	path_in(u, "pack.out", out, sizeof out);
	write_image(c7, 12 * 1024, seed);
	write_image(c4, 6 * 1024 + 100, seed + 1);
	char *argv[] = {FLASHER_CLI, "pack", "--product", (char *)product, "--version", (char *)version,
	                "--hw", "A", "--cm7", c7, "--cm4", c4, "-o", pkg, NULL};
	int rc = run(out, argv);
	char *txt = slurp(out);
	cr_assert_eq(rc, 0, "flasher pack failed (%d): %s", rc, txt);
	free(txt);
}

static void start_qemu(unit *u, const char *opts)
{
	strcpy(u->dir, "/tmp/flasher-qemu-XXXXXX");
	cr_assert_not_null(mkdtemp(u->dir));
	path_in(u, "uart.sock", u->sock, sizeof u->sock);
	path_in(u, "qemu.log", u->log, sizeof u->log);
	/* Every QEMU unit has the same uid, and Criterion runs the tests at
	 * once: each test's flasher runs claim units in a lock directory of
	 * their own (the unit's directory), as if each were on its own PC. */
	setenv("FLASHER_LOCK_DIR", u->dir, 1);
	char chardev[400];
	snprintf(chardev, sizeof chardev, "socket,id=u0,path=%s,server=on,wait=on", u->sock);
	/* Options reach the guest through semihosting's command line. */
	char semi[300];
	snprintf(semi, sizeof semi, "enable=on,target=native,arg=flasher-qemu%s%s", opts ? ",arg=" : "",
	         opts ? opts : "");
	u->qemu = fork();
	cr_assert_neq(u->qemu, -1);
	if (u->qemu == 0) {
		int fd = open(u->log, O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (fd >= 0) {
			dup2(fd, 1);
			dup2(fd, 2);
		}
		execlp("qemu-system-arm", "qemu-system-arm", "-M", "mps2-an500", "-display", "none", "-monitor",
		       "none", "-chardev", chardev, "-serial", "chardev:u0", "-semihosting-config",
		       semi, "-kernel", QEMU_ELF, (char *)NULL);
		_exit(127);
	}
	struct stat sb;
	double t0 = now_s();
	while (stat(u->sock, &sb) != 0) {
		int st;
		cr_assert_eq(waitpid(u->qemu, &st, WNOHANG), 0, "qemu exited early");
		cr_assert_lt(now_s() - t0, 30.0, "qemu made no socket");
		usleep(20000);
	}
}

/* Called at the end of a passing test: a failing one keeps its folder
 * (guest log, CLI output, packages) for diagnosis. */
static void stop_qemu(unit *u)
{
	if (u->qemu > 0) {
		kill(u->qemu, SIGTERM);
		waitpid(u->qemu, NULL, 0);
		u->qemu = 0;
	}
	DIR *d = opendir(u->dir);
	if (d) {
		struct dirent *de;
		while ((de = readdir(d))) {
			char f[600];
			if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
				continue;
			snprintf(f, sizeof f, "%s/%s", u->dir, de->d_name);
			unlink(f);
		}
		closedir(d);
		rmdir(u->dir);
	}
}

/* Position of `what` in the guest log, -1 if absent. */
static long log_pos(const unit *u, const char *what, long from)
{
	char *txt = slurp(u->log);
	long pos = -1;
	if (from <= (long)strlen(txt)) {
		char *hit = strstr(txt + from, what);
		if (hit)
			pos = hit - txt;
	}
	free(txt);
	return pos;
}

/* Wait until the guest's log holds `what` (the guest reports over semihosting). */
static int log_wait(const unit *u, const char *what, double seconds)
{
	double t0 = now_s();
	for (;;) {
		char *txt = slurp(u->log);
		int hit = strstr(txt, what) != NULL;
		free(txt);
		if (hit)
			return 1;
		if (now_s() - t0 > seconds)
			return 0;
		usleep(50000);
	}
}

static int flasher(unit *u, const char *outname, char *const args[], char **out)
{
	char *argv[16];
	char port[320], outfile[320];
	snprintf(port, sizeof port, "unix:%s", u->sock);
	path_in(u, outname, outfile, sizeof outfile);
	int n = 0;
	argv[n++] = FLASHER_CLI;
	argv[n++] = args[0];
	argv[n++] = port;
	for (int i = 1; args[i] && n < 15; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	int rc = run(outfile, argv);
	*out = slurp(outfile);
	return rc;
}

Test(qemu, first_install_then_update_both_cores, .timeout = 240)
{
	unit u = {0};
	char pkg1[400], pkg2[400];
	start_qemu(&u, NULL);
	pack(&u, "1.0.0", "demo", 1, pkg1, sizeof pkg1);
	pack(&u, "1.1.0", "demo", 7, pkg2, sizeof pkg2);

	/* Empty unit: the core stays in the bootloader (recovery). */
	char *out;
	int rc = flasher(&u, "update1.out", (char *[]){"update", pkg1, NULL}, &out);
	char *guest = slurp(u.log);
	cr_assert_eq(rc, 0, "first install failed (%d):\n%s\nguest:\n%s", rc, out, guest);
	free(out);
	free(guest);
	cr_assert(log_wait(&u, "qemu: boot 1: bootloader", 1.0), "first boot was not in the bootloader");
	cr_assert(log_wait(&u, "qemu: app running cm7 1.0.0 cm4 1.0.0 trial", 10.0),
	          "the new pair did not boot on trial");
	cr_assert(log_wait(&u, "qemu: app confirmed cm7 1.0.0", 10.0), "the app did not confirm");

	/* From the running application: back to the bootloader, update, boot the new pair. */
	rc = flasher(&u, "update2.out", (char *[]){"update", pkg2, NULL}, &out);
	guest = slurp(u.log);
	cr_assert_eq(rc, 0, "update failed (%d):\n%s\nguest:\n%s", rc, out, guest);
	free(out);
	free(guest);
	cr_assert(log_wait(&u, "qemu: app running cm7 1.1.0 cm4 1.1.0 trial", 10.0),
	          "the updated pair did not boot");
	cr_assert(log_wait(&u, "qemu: app confirmed cm7 1.1.0", 10.0), "the updated app did not confirm");

	/* The unit reports the new version to the host. */
	rc = flasher(&u, "info.out", (char *[]){"info", "--json", NULL}, &out);
	cr_assert_eq(rc, 0, "info failed: %s", out);
	cr_assert_not_null(strstr(out, "1.1.0"), "info does not show 1.1.0: %s", out);
	free(out);
	guest = slurp(u.log);
	cr_assert_null(strstr(guest, "FAULT"), "the guest faulted:\n%s", guest);
	free(guest);
	stop_qemu(&u);
}

Test(qemu, refuses_a_package_for_another_product, .timeout = 120)
{
	unit u = {0};
	char pkg[400];
	start_qemu(&u, NULL);
	pack(&u, "2.0.0", "other", 3, pkg, sizeof pkg);
	char *out;
	int rc = flasher(&u, "update.out", (char *[]){"update", pkg, NULL}, &out);
	cr_assert_neq(rc, 0, "an image for product 'other' was accepted by unit 'demo':\n%s", out);
	cr_assert_not_null(strstr(out, "other"), "the refusal does not name the product: %s", out);
	free(out);
	/* Nothing was written: the unit still answers, in the bootloader, empty. */
	rc = flasher(&u, "info.out", (char *[]){"info", "--json", NULL}, &out);
	cr_assert_eq(rc, 0, "info failed: %s", out);
	cr_assert_not_null(strstr(out, "empty"), "unit is not empty after a refused update: %s", out);
	free(out);
	char *guest = slurp(u.log);
	cr_assert_null(strstr(guest, "app running"), "an application was started:\n%s", guest);
	free(guest);
	stop_qemu(&u);
}

Test(qemu, unconfirmed_trial_rolls_back_to_the_previous_pair, .timeout = 240)
{
	unit u = {0};
	char pkg1[400], pkg2[400], *out;
	start_qemu(&u, "no-confirm=1.1.0");
	pack(&u, "1.0.0", "demo", 1, pkg1, sizeof pkg1);
	pack(&u, "1.1.0", "demo", 7, pkg2, sizeof pkg2);
	int rc = flasher(&u, "update1.out", (char *[]){"update", pkg1, NULL}, &out);
	cr_assert_eq(rc, 0, "first install failed (%d): %s", rc, out);
	free(out);
	cr_assert(log_wait(&u, "qemu: app confirmed cm7 1.0.0", 10.0));

	/* 1.1.0 never confirms: the trial watchdog resets it until the core gives up. */
	rc = flasher(&u, "update2.out", (char *[]){"update", pkg2, "--wait-confirm", "30000", NULL}, &out);
	cr_assert_neq(rc, 0, "an update whose firmware never confirmed was reported as done: %s", out);
	free(out);
	cr_assert(log_wait(&u, "qemu: app running cm7 1.0.0 cm4 1.0.0 confirmed", 30.0), "no rollback to 1.0.0");
	long trial = log_pos(&u, "qemu: app running cm7 1.1.0 cm4 1.1.0 trial", 0);
	long wdg = log_pos(&u, "qemu: trial watchdog reset", 0);
	long back = log_pos(&u, "qemu: app running cm7 1.0.0 cm4 1.0.0 confirmed", 0);
	cr_assert(trial >= 0 && wdg > trial && back > wdg, "expected trial, watchdog, rollback in that order");
	cr_assert_lt(log_pos(&u, "qemu: app confirmed cm7 1.1.0", 0), 0, "1.1.0 confirmed itself");

	rc = flasher(&u, "info.out", (char *[]){"info", "--json", NULL}, &out);
	cr_assert_eq(rc, 0, "info failed: %s", out);
	cr_assert_not_null(strstr(out, "\"state\":\"rolled_back\""), "state is not rolled_back: %s", out);
	cr_assert_not_null(strstr(out, "\"cm7\":\"1.0.0\""), "cm7 is not back at 1.0.0: %s", out);
	free(out);
	stop_qemu(&u);
}

Test(qemu, power_cut_during_install_then_update_completes, .timeout = 240)
{
	unit u = {0};
	char pkg[400], *out = NULL;
	/* Operation 300 of ~1200 of this install falls inside the transfer. */
	start_qemu(&u, "cut-at=300");
	pack(&u, "1.0.0", "demo", 1, pkg, sizeof pkg);
	int rc = -1;
	for (int attempt = 0; attempt < 3 && rc != 0; attempt++) {
		free(out);
		rc = flasher(&u, "update.out", (char *[]){"update", pkg, "--json", NULL}, &out);
	}
	char *guest = slurp(u.log);
	cr_assert_eq(rc, 0, "no update succeeded after the cut:\n%s\nguest:\n%s", out, guest);
	cr_assert_not_null(strstr(guest, "qemu: power cut"), "the cut did not happen:\n%s", guest);
	cr_assert_not_null(strstr(guest, "qemu: power on"));
	free(guest);
	free(out);
	cr_assert(log_wait(&u, "qemu: app confirmed cm7 1.0.0", 10.0), "the installed pair did not run");
	stop_qemu(&u);
}

static int have_qemu(void)
{
	const char *path = getenv("PATH");
	if (!path)
		return 0;
	char *p = strdup(path), *save = NULL;
	int found = 0;
	for (char *d = strtok_r(p, ":", &save); d && !found; d = strtok_r(NULL, ":", &save)) {
		char f[1024];
		snprintf(f, sizeof f, "%s/qemu-system-arm", d);
		found = access(f, X_OK) == 0;
	}
	free(p);
	return found;
}

int main(int argc, char *argv[])
{
	if (!have_qemu()) {
		fprintf(stderr, "qemu-system-arm not found: skipped\n");
		return 77;
	}
	struct criterion_test_set *tests = criterion_initialize();
	int result = 0;
	if (criterion_handle_args(argc, argv, true))
		result = !criterion_run_all_tests(tests);
	criterion_finalize(tests);
	return result;
}
