/* bench_update: one update through the library, measured.
 *   bench_update PORT PKG [--no-compress]
 * Prints one line of key=value pairs: transfer and wall seconds, payload/wire/sent
 * bytes, host CPU seconds (user+sys), peak RSS of this process, and the
 * host's timeouts and retransmitted DATA frames. */
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "flasher.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

/* transfer time = from the TRANSFER phase to the ACTIVATE phase (includes
 * the on-unit verification, excludes the reboot and the app's confirm) */
static double t_transfer, t_activate;
static int on_progress(const flasher_progress *p, void *payload)
{
	(void)payload;
	if (p->phase == FLASHER_PHASE_TRANSFER && t_transfer == 0)
		t_transfer = now_s();
	if (p->phase == FLASHER_PHASE_ACTIVATE && t_activate == 0)
		t_activate = now_s();
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 3) {
		fprintf(stderr, "usage: bench_update PORT PKG [--no-compress]\n");
		return 2;
	}
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.progress = on_progress;
	if (argc > 3 && !strcmp(argv[3], "--no-compress"))
		uo.compress = 0;
	flasher_package *pkg;
	int err = flasher_package_open(&pkg, argv[2]);
	if (err) {
		fprintf(stderr, "bench_update: %s: %s\n", argv[2], flasher_error_last());
		return 1;
	}
	struct timespec t0, t1;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	flasher_session *s;
	flasher_update_result r;
	err = flasher_session_open(&s, argv[1], NULL);
	if (!err)
		err = flasher_session_update(s, pkg, &uo, &r);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (err) {
		fprintf(stderr, "bench_update: %s: %s\n", flasher_error_name(err), flasher_error_last());
		return 1;
	}
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec +
	             ru.ru_stime.tv_usec / 1e6;
	printf("transfer_s=%.3f seconds=%.3f payload=%llu wire=%llu sent=%llu cpu=%.3f rss_kb=%ld timeouts=%u "
	       "retransmits=%u\n",
	       t_activate - t_transfer, (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9,
	       (unsigned long long)r.payload_bytes, (unsigned long long)r.wire_bytes, (unsigned long long)r.sent_bytes,
	       cpu, ru.ru_maxrss, (unsigned)r.timeouts, (unsigned)r.retransmits);
	flasher_session_close(s);
	flasher_package_free(pkg);
	return 0;
}
