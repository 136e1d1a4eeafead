/* Embedding libflasher in a C application: update one unit with progress.
 *
 *   update_unit PORT PACKAGE
 *
 * PORT is /dev/ttyACM0, a unit's serial number, unix:PATH or tcp:HOST:PORT.
 * This is what a desktop app does on its worker thread; the UI thread may
 * call flasher_session_cancel() at any time. */
#include <flasher.h>
#include <stdio.h>

static int on_progress(const flasher_progress *p, void *payload)
{
	(void)payload;
	if (p->bytes_total)
		fprintf(stderr, "\r%-9s %3d%%  %7.1f KiB/s", flasher_phase_name(p->phase),
		        (int)(100 * p->bytes_done / p->bytes_total), p->rate / 1024.0);
	return 0; /* < 0 would cancel */
}

int main(int argc, char **argv)
{
	flasher_package *pkg = NULL;
	flasher_session *unit = NULL;
	flasher_update_options opts = FLASHER_UPDATE_OPTIONS_INIT;
	flasher_update_result result;
	char version[16];
	int rc;

	if (argc != 3) {
		fprintf(stderr, "usage: %s PORT PACKAGE\n", argv[0]);
		return 2;
	}
	rc = flasher_package_open(&pkg, argv[2]);
	if (rc == 0)
		rc = flasher_session_open(&unit, argv[1], NULL);
	if (rc == 0) {
		opts.progress = on_progress;
		rc = flasher_session_update(unit, pkg, &opts, &result);
	}
	fputc('\n', stderr);
	if (rc < 0) {
		fprintf(stderr, "update failed: %s: %s\n", flasher_error_name(rc), flasher_error_last());
	} else {
		flasher_semver_format(result.after.cm7_version ? result.after.cm7_version : result.after.cm4_version,
		                      version, sizeof version);
		printf("unit %s now runs %s (%llu bytes sent, %llu resumed)\n", result.after.uid, version,
		       (unsigned long long)result.sent_bytes, (unsigned long long)result.resumed_bytes);
	}
	flasher_session_close(unit);
	flasher_package_free(pkg);
	return rc < 0 ? 1 : 0;
}
