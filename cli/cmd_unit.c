/* Unit commands: info, update, confirm, rollback, reboot (docs/cli.md).
 * Human output goes to stderr/stdout; with --json only JSON goes to stdout. */
#include <cjson/cJSON.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "error_internal.h"
#include "unit_json.h"
#include "flasher.h"
#include "progress.h"

/* ---- arguments shared by the unit commands --------------------------------- */

typedef struct unit_args {
	const char *pos[2];     /* PORT [PKG] */
	int npos;
	int json;
	int no_compress;
	int bootloader;
	int no_reboot;
	const char *record;
	long timeout_ms;         /* --timeout: the whole command */
	long request_timeout_ms; /* --request-timeout: per-request floor */
	long retries;            /* --retries: per request, -1 = library default */
	long wait_confirm_ms;
	long wait_s;            /* --wait[=SECONDS]: -1 not given, 0 no limit */
	int allow_older;
	int allow_reinstall;
	int dry_run;
} unit_args;

#define UNIT_ARGS_INIT {.wait_s = -1}

/* Options every unit command takes. */
#define UNIT_OPT_JSON(a, text) CLI_OPT_FLAG("json", 0, &(a).json, text)
#define UNIT_OPT_TIMEOUT(a)                                                                                  \
	CLI_OPT_INT("timeout", &(a).timeout_ms, "MS", 1, 86400000,                                             \
	            "give up after MS in total, connecting included\n(exit 17; default: no limit)"),               \
	        CLI_OPT_INT("request-timeout", &(a).request_timeout_ms, "MS", 1, 3600000,                      \
	                    "per-request timeout floor (default 1000)"),                                       \
	        CLI_OPT_INT("retries", &(a).retries, "N", 0, 100, "retransmissions per request (default 8)")
#define UNIT_OPT_RECORD(a) CLI_OPT_STRING("record", 0, &(a).record, "FILE", "record every byte on the link to FILE")
#define UNIT_OPT_WAIT(a)                                                                    \
	CLI_OPT_OPTIONAL_INT("wait", &(a).wait_s, "SECONDS", 0, 86400, 0,                     \
	                     "wait for the unit to appear (up to SECONDS; no value or\n0: " \
	                     "no limit) instead of failing at once")

static int parse_args(const cli_spec *spec, int argc, char **argv, unit_args *a)
{
	a->retries = -1;
	int rc = cli_parse(spec, argc, argv, a->pos, &a->npos);
	return rc == CLI_PARSED_HELP ? -1 : rc;
}

#define PORT_HELP                                                                                                      \
	"PORT: a serial device, pty path, unix:PATH, tcp:HOST:PORT or the unit's serial/uid\n"                         \
	"(see 'flasher list').\n"

/* ---- output ------------------------------------------------------------------ */

static cJSON *unit_json(const flasher_unit_info *u, const char *port)
{
	cJSON *o = flasher__unit_info_json(u);
	cJSON_AddStringToObject(o, "port", port);
	return o;
}

static void print_json(cJSON *o)
{
	char *text = cJSON_PrintUnformatted(o);
	if (text) {
		printf("%s\n", text);
		fflush(stdout);
	}
	free(text);
	cJSON_Delete(o);
}

static void print_unit(const flasher_unit_info *u, const char *port)
{
	char bl[16], v7[16] = "-", v4[16] = "-";
	flasher_semver_format(u->bootloader_version, bl, sizeof bl);
	if (u->cm7_version)
		flasher_semver_format(u->cm7_version, v7, sizeof v7);
	if (u->cm4_version)
		flasher_semver_format(u->cm4_version, v4, sizeof v4);
	printf("port:        %s\n", port);
	printf("uid:         %s\n", u->uid);
	printf("serial:      %s\n", u->serial);
	printf("product:     %s (hardware %s)\n", u->product, u->hw_rev);
	printf("bootloader:  %s (protocol %u)\n", bl, u->protocol_version);
	printf("mode:        %s\n", flasher__mode_name(u->mode));
	printf("state:       %s%s\n", flasher__boot_state_name(u->state),
	       u->state == FLASHER_STATE_TRIAL ? " (not yet confirmed)" : "");
	printf("firmware:    cm7 %s, cm4 %s\n", v7, v4);
	if (u->last_boot_error)
		printf("last boot error: %d\n", u->last_boot_error);
	for (size_t i = 0; i < u->slot_count; i++) {
		const flasher_slot *s = &u->slots[i];
		char v[16] = "-";
		if (s->version)
			flasher_semver_format(s->version, v, sizeof v);
		printf("slot:        %s %-9s 0x%08x %4u KiB  %-9s %s\n", flasher__core_name(s->core),
		       s->primary ? "primary" : "secondary", (unsigned)s->address, (unsigned)(s->size / 1024),
		       flasher__slot_state_name(s->state), v);
	}
}

/* Failure: a JSON error event (with --json) on stdout, and always the
 * human message on stderr. */
static int fail(const unit_args *a, int err, const char *what)
{
	if (a->json) {
		cJSON *o = cJSON_CreateObject();
		char msg[600];
		snprintf(msg, sizeof msg, "%s: %s", what, *flasher_error_last() ? flasher_error_last() : flasher_strerror(err));
		cJSON_AddStringToObject(o, "event", "error");
		cJSON_AddNumberToObject(o, "code", err);
		cJSON_AddStringToObject(o, "name", flasher_error_name(err));
		cJSON_AddStringToObject(o, "message", msg);
		cJSON_AddNumberToObject(o, "exit", cli_exit_code(err));
		print_json(o);
	}
	return cli_fail(err, what);
}

/* Stopping (docs/cli.md): SIGINT, SIGTERM, SIGHUP, SIGPIPE and the --timeout
 * alarm cancel the running operation; the library then leaves the unit
 * usable (back in its application before activation, staged bytes kept)
 * and its detail says where the unit is, printed as the last line. While
 * connecting nothing has been changed: the process ends at once. After
 * activation the first signal only says that the unit is installing the
 * new firmware; the outcome is still awaited and reported. */
static flasher_session *volatile sig_session;
static volatile sig_atomic_t sig_connecting, sig_committed, sig_stops, sig_timed_out;
static const char *sig_port;
static long sig_timeout_ms;

static void say(const char *a, const char *b, const char *c)
{
	/* write(2) only: this runs in a signal handler */
	(void)!write(2, a, strlen(a));
	(void)!write(2, b, strlen(b));
	(void)!write(2, c, strlen(c));
}

static void on_stop(int sig)
{
	if (sig == SIGALRM)
		sig_timed_out = 1;
	sig_stops++;
	if (sig_connecting) {
		if (sig == SIGALRM)
			say("flasher: ", sig_port, ": no unit answered within --timeout; nothing was changed [FLASHER_ETIMEOUT]\n");
		else
			say("flasher: ", sig_port, ": cancelled while connecting; nothing was changed [FLASHER_ECANCELLED]\n");
		_exit(cli_exit_code(sig == SIGALRM ? FLASHER_ETIMEOUT : FLASHER_ECANCELLED));
	}
	if (sig_committed && sig_stops == 1 && sig != SIGALRM) {
		say("flasher: ", sig_port,
		    ": the unit is installing the new firmware (already activated); waiting for the outcome "
		    "(stop again to stop waiting)\n");
		return;
	}
	if (sig_session)
		flasher_session_cancel(sig_session);
}

static void catch_signals(const unit_args *a)
{
	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_stop;
	sigemptyset(&sa.sa_mask);
	sig_port = a->pos[0];
	sig_timeout_ms = a->timeout_ms;
	const int sigs[] = {SIGINT, SIGTERM, SIGHUP, SIGPIPE, SIGALRM};
	for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
		sigaction(sigs[i], &sa, NULL);
	if (a->timeout_ms) {
		struct itimerval it = {{0, 0}, {a->timeout_ms / 1000, (a->timeout_ms % 1000) * 1000}};
		setitimer(ITIMER_REAL, &it, NULL);
	}
}

/* Errors that mean "the unit is not there (yet)": --wait keeps trying. */
static int unit_absent(int err)
{
	return err == FLASHER_ENOTFOUND || err == FLASHER_EDISCONNECTED || err == FLASHER_ETIMEOUT ||
	       err == FLASHER_EIO || err == FLASHER_EPERM;
}

static int64_t now_ms(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (int64_t)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int open_unit(const unit_args *a, flasher_session **s)
{
	flasher_session_options o = FLASHER_SESSION_OPTIONS_INIT;
	if (a->request_timeout_ms)
		o.timeout_ms = (int)a->request_timeout_ms;
	if (a->retries >= 0)
		o.retries = (int)a->retries;
	o.record_path = a->record;
	catch_signals(a);
	if (cli_verbosity >= 0)
		fprintf(stderr, "connecting to %s...\n", a->pos[0]);
	int64_t deadline = a->wait_s > 0 ? now_ms() + a->wait_s * 1000 : 0;
	int told = 0, err;
	for (;;) {
		sig_connecting = 1;
		err = flasher_session_open(s, a->pos[0], &o);
		sig_connecting = 0;
		if (!err || sig_stops)
			break;
		/* --wait: the unit may not be plugged in, enumerated or
		 * permitted yet (udev); ask again until it answers. */
		if (a->wait_s < 0 || !unit_absent(err) || (deadline && now_ms() >= deadline))
			return err;
		if (!told) {
			if (a->json) {
				cJSON *ev = cJSON_CreateObject();
				cJSON_AddStringToObject(ev, "event", "wait");
				cJSON_AddStringToObject(ev, "port", a->pos[0]);
				if (a->wait_s > 0)
					cJSON_AddNumberToObject(ev, "timeout_s", (double)a->wait_s);
				else
					cJSON_AddNullToObject(ev, "timeout_s");
				print_json(ev);
			} else if (cli_verbosity >= 0)
				fprintf(stderr, "waiting for %s%s...\n", a->pos[0], a->wait_s > 0 ? "" : " (no time limit)");
			told = 1;
		}
		struct timespec pause = {0, 250 * 1000 * 1000};
		nanosleep(&pause, NULL);
		if (sig_stops)
			return FLASHER_ECANCELLED; /* stopped while waiting: nothing was opened */
	}
	if (!err)
		sig_session = *s;
	if (!err && sig_stops) /* asked while the open returned */
		flasher_session_cancel(*s);
	return err;
}

static void close_unit(flasher_session *s)
{
	struct itimerval off = {{0, 0}, {0, 0}};
	setitimer(ITIMER_REAL, &off, NULL);
	sig_session = NULL;
	flasher_session_close(s);
}

/* A cancelled operation (signal, --timeout): the library's detail says where
 * the unit is; --timeout reports as FLASHER_ETIMEOUT. */
static int stopped_code(int err)
{
	if (err == FLASHER_ECANCELLED && sig_timed_out) {
		char detail[600];
		snprintf(detail, sizeof detail, "%s", flasher_error_last());
		return flasher__error(FLASHER_ETIMEOUT, "gave up after --timeout %ld ms: %s", sig_timeout_ms, detail);
	}
	return err;
}

/* ---- commands ------------------------------------------------------------- */

int cmd_info(int argc, char **argv)
{
	unit_args a = UNIT_ARGS_INIT;
	const cli_opt opts[] = {
	        UNIT_OPT_JSON(a, "print one JSON object on stdout"),
	        UNIT_OPT_TIMEOUT(a),
	        UNIT_OPT_RECORD(a),
	        UNIT_OPT_WAIT(a),
	        CLI_END,
	};
	const cli_spec spec = {"info", "PORT", 1, 1, "Identity, versions and slots of a unit.",
	                       "Asks the unit once (HELLO) for its identity, mode, boot state, firmware versions\n"
	                       "and slot table.\n" PORT_HELP,
	                       opts, NULL};
	int rc = parse_args(&spec, argc, argv, &a);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	flasher_session *s;
	int err = open_unit(&a, &s);
	if (err)
		return fail(&a, err, a.pos[0]);
	flasher_unit_info u;
	err = flasher_session_info(s, &u);
	if (err) {
		rc = fail(&a, stopped_code(err), a.pos[0]);
		close_unit(s);
		return rc;
	}
	if (a.json)
		print_json(unit_json(&u, flasher_session_port(s)));
	else
		print_unit(&u, flasher_session_port(s));
	close_unit(s);
	return CLI_EXIT_OK;
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (double)(t1.tv_sec - t0->tv_sec) + (double)(t1.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Progress, and the point of no return for signals: from ACTIVATE on the
 * unit installs the new firmware whatever the host does. A stop that came
 * before the operation started cancels it at its first report. */
static int update_progress(const flasher_progress *p, void *payload)
{
	if (p->phase == FLASHER_PHASE_ACTIVATE) /* REBOOT also comes before it (into the bootloader) */
		sig_committed = 1;
	if (sig_stops && (!sig_committed || sig_stops >= 2))
		return -1;
	return cli_progress_cb(p, payload);
}

/* An update that wrote nothing: the unit already runs the version, or a
 * dry run passed every check. */
static int report_no_write(const unit_args *a, const flasher_update_result *r, const char *ver, const char *port)
{
	int dry = r->outcome == FLASHER_UPDATE_DRY_RUN;
	if (a->json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "done");
		cJSON_AddStringToObject(o, "outcome", dry ? "dry_run" : "already_running");
		cJSON_AddStringToObject(o, "version", ver);
		cJSON *old = cJSON_AddObjectToObject(o, "old");
		flasher__json_add_version(old, "cm7", r->old_cm7_version);
		flasher__json_add_version(old, "cm4", r->old_cm4_version);
		cJSON_AddNumberToObject(o, "payload_bytes", (double)r->payload_bytes);
		cJSON_AddNumberToObject(o, "sent_bytes", 0);
		cJSON_AddItemToObject(o, "unit", unit_json(&r->after, port));
		print_json(o);
	} else if (cli_verbosity >= 0) {
		char v7[16] = "none", v4[16] = "none";
		if (r->old_cm7_version)
			flasher_semver_format(r->old_cm7_version, v7, sizeof v7);
		if (r->old_cm4_version)
			flasher_semver_format(r->old_cm4_version, v4, sizeof v4);
		if (dry)
			printf("dry run: %s (cm7 %s, cm4 %s, %s) can take %s: every check passed, nothing written\n", port,
			       v7, v4, flasher__boot_state_name(r->after.state), ver);
		else
			printf("%s is already running %s (confirmed): nothing to do (--allow-reinstall writes it "
			       "again)\n",
			       port, ver);
	}
	return CLI_EXIT_OK;
}

int cmd_update(int argc, char **argv)
{
	unit_args a = UNIT_ARGS_INIT;
	const cli_opt opts[] = {
	        UNIT_OPT_JSON(a, "one JSON object per line on stdout (events, result,\nerror)"),
	        CLI_OPT_FLAG("no-compress", 0, &a.no_compress, "send DATA uncompressed"),
	        UNIT_OPT_RECORD(a),
	        UNIT_OPT_TIMEOUT(a),
	        CLI_OPT_INT("wait-confirm", &a.wait_confirm_ms, "MS", 1, 3600000,
	                    "how long the new firmware may take to confirm\n(default 10000)"),
	        CLI_OPT_FLAG("no-reboot", 0, &a.no_reboot, "stop once the activation is recorded (it applies\nat the next reboot)"),
	        CLI_OPT_FLAG("allow-older", 0, &a.allow_older,
	                     "take a package older than the unit's firmware (a downgrade;\nrefused with exit 29 otherwise)"),
	        CLI_OPT_FLAG("allow-reinstall", 0, &a.allow_reinstall,
	                     "write the package even when the unit already runs its\nversion, confirmed (otherwise: nothing to do, exit 0)"),
	        CLI_OPT_FLAG("dry-run", 0, &a.dry_run,
	                     "run every check against the unit, write nothing, do not\nreboot it"),
	        UNIT_OPT_WAIT(a),
	        CLI_END,
	};
	const cli_spec spec = {"update", "PORT PKG", 2, 2, "Update a unit with a package.",
	                       "Checks the package fits the unit (before any flash write), enters the bootloader,\n"
	                       "sends every image (an interrupted update resumes where the unit has durable data),\n"
	                       "verifies on the unit, activates both cores as a set, reboots and waits until the\n"
	                       "unit runs the new version. Ctrl-C cancels cleanly.\n"
	                       "A package older than the unit's firmware is refused unless --allow-older; the\n"
	                       "version the unit already runs, confirmed, is not written again (\"already running\n"
	                       "X\", exit 0, so a retry is always safe) unless --allow-reinstall.\n" PORT_HELP,
	                       opts,
	                       "Exit 0 when the unit runs and reports the new version (or already ran it, or the\n"
	                       "dry run found nothing wrong); 29 for a refused downgrade; else 10 + |error|.\n"};
	int rc = parse_args(&spec, argc, argv, &a);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	flasher_package *pkg;
	int err = flasher_package_open(&pkg, a.pos[1]);
	if (err)
		return fail(&a, err, a.pos[1]);
	struct timespec t0;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	flasher_session *s;
	err = open_unit(&a, &s);
	if (err) {
		flasher_package_free(pkg);
		return fail(&a, err, a.pos[0]);
	}
	cli_progress prog;
	cli_progress_init(&prog, a.json, cli_verbosity < 0);
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.progress = update_progress;
	uo.payload = &prog;
	uo.compress = !a.no_compress;
	uo.no_reboot = a.no_reboot;
	if (a.wait_confirm_ms)
		uo.wait_confirm_ms = (int)a.wait_confirm_ms;
	uo.allow_older = a.allow_older;
	uo.allow_reinstall = a.allow_reinstall;
	uo.dry_run = a.dry_run;
	flasher_update_result r;
	err = flasher_session_update(s, pkg, &uo, &r);
	cli_progress_finish(&prog);
	double secs = seconds_since(&t0);
	char ver[16];
	flasher_semver_format(flasher_package_version(pkg), ver, sizeof ver);
	if (err) {
		char what[300];
		snprintf(what, sizeof what, "update of %s to %s", a.pos[0], ver);
		rc = fail(&a, stopped_code(err), what);
	} else if (r.outcome != FLASHER_UPDATE_UPDATED) {
		rc = report_no_write(&a, &r, ver, flasher_session_port(s));
	} else if (a.json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "done");
		cJSON_AddStringToObject(o, "outcome", "updated");
		cJSON_AddStringToObject(o, "version", ver);
		cJSON *old = cJSON_AddObjectToObject(o, "old");
		flasher__json_add_version(old, "cm7", r.old_cm7_version);
		flasher__json_add_version(old, "cm4", r.old_cm4_version);
		cJSON_AddNumberToObject(o, "payload_bytes", (double)r.payload_bytes);
		cJSON_AddNumberToObject(o, "resumed_bytes", (double)r.resumed_bytes);
		cJSON_AddNumberToObject(o, "sent_bytes", (double)r.sent_bytes);
		cJSON_AddNumberToObject(o, "wire_bytes", (double)r.wire_bytes);
		cJSON_AddNumberToObject(o, "retransmits", r.retransmits);
		cJSON_AddNumberToObject(o, "timeouts", r.timeouts);
		cJSON_AddNumberToObject(o, "seconds", secs);
		if (!a.no_reboot)
			cJSON_AddItemToObject(o, "unit", unit_json(&r.after, flasher_session_port(s)));
		print_json(o);
		rc = CLI_EXIT_OK;
	} else if (cli_verbosity >= 0) {
		char sent[32], wire[32];
		cli_format_bytes((double)r.sent_bytes, sent, sizeof sent);
		cli_format_bytes((double)r.wire_bytes, wire, sizeof wire);
		if (a.no_reboot)
			printf("activated %s on %s (applies at the next reboot)", ver, flasher_session_port(s));
		else
			printf("updated %s to %s (%s, %s)", flasher_session_port(s), ver, flasher__mode_name(r.after.mode),
			       flasher__boot_state_name(r.after.state));
		printf(" in %.1f s: sent %s", secs, sent);
		if (r.resumed_bytes)
			printf(" (resumed %llu bytes)", (unsigned long long)r.resumed_bytes);
		printf(", %s on the wire\n", wire);
		rc = CLI_EXIT_OK;
	}
	close_unit(s);
	flasher_package_free(pkg);
	return rc;
}

/* confirm / rollback / reboot: one operation, then the unit as it is now */
static int simple_command(int argc, char **argv, const char *summary, const char *desc, int which)
{
	unit_args a = UNIT_ARGS_INIT;
	cli_opt opts[] = {
	        UNIT_OPT_JSON(a, "print the result as one JSON object on stdout"),
	        UNIT_OPT_TIMEOUT(a),
	        UNIT_OPT_RECORD(a),
	        UNIT_OPT_WAIT(a),
	        CLI_OPT_FLAG("bootloader", 0, &a.bootloader, "stay in the bootloader after the reboot"),
	        CLI_END,
	};
	if (which != 2) /* --bootloader is reboot's only */
		opts[sizeof opts / sizeof opts[0] - 2] = (cli_opt)CLI_END;
	const cli_spec spec = {argv[0], "PORT", 1, 1, summary, desc, opts, NULL};
	int rc = parse_args(&spec, argc, argv, &a);
	if (rc)
		return rc < 0 ? CLI_EXIT_OK : rc;
	flasher_session *s;
	int err = open_unit(&a, &s);
	if (err)
		return fail(&a, err, a.pos[0]);
	const char *what = which == 0 ? "confirm" : which == 1 ? "rollback" : "reboot";
	if (which == 0)
		err = flasher_session_confirm(s);
	else if (which == 1)
		err = flasher_session_rollback(s);
	else
		err = flasher_session_reboot(s, a.bootloader);
	flasher_unit_info u;
	if (!err)
		err = flasher_session_info(s, &u);
	if (err) {
		char msg[300];
		snprintf(msg, sizeof msg, "%s %s", what, a.pos[0]);
		rc = fail(&a, stopped_code(err), msg);
	} else if (a.json) {
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "event", "done");
		cJSON_AddStringToObject(o, "command", what);
		cJSON_AddItemToObject(o, "unit", unit_json(&u, flasher_session_port(s)));
		print_json(o);
	} else if (cli_verbosity >= 0) {
		char v[16] = "none";
		if (flasher__running_version(&u))
			flasher_semver_format(flasher__running_version(&u), v, sizeof v);
		printf("%s: %s is in %s mode, state %s, firmware %s\n", what, flasher_session_port(s), flasher__mode_name(u.mode),
		       flasher__boot_state_name(u.state), v);
	}
	close_unit(s);
	return rc;
}

int cmd_confirm(int argc, char **argv)
{
	return simple_command(argc, argv, "Make the running trial firmware permanent.",
	                      "Makes the firmware running on trial permanent (works in application and\n"
	                      "bootloader mode).\n" PORT_HELP,
	                      0);
}

int cmd_rollback(int argc, char **argv)
{
	return simple_command(argc, argv, "Go back to the previous firmware.",
	                      "Goes back to the previous firmware pair: enters the bootloader if needed,\n"
	                      "asks for the rollback, reboots and waits for the unit.\n" PORT_HELP,
	                      1);
}

int cmd_reboot(int argc, char **argv)
{
	return simple_command(argc, argv, "Reboot a unit.",
	                      "Reboots the unit and waits until it answers again; --bootloader keeps it\n"
	                      "in the bootloader.\n" PORT_HELP,
	                      2);
}
