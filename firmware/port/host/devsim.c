/*
 * devsim.c - flasher-devsim: a simulated STM32H755 unit on a PC.
 *
 * The real bootloader core (flboot_core) runs against the flash model
 * (flashsim.c, a file that keeps the flash across runs) and talks to the host
 * over a pseudo-terminal or a Unix socket (devsim_link.c). Power and resets
 * are modelled the way the chip has them: every reset zeroes the core's
 * state and boots again from flash; the boot flags survive a reset but not a
 * restart of the process (a power cycle).
 *
 * stdout carries exactly one line, the port the host opens
 * ("pty: /dev/pts/N", or "listen: unix:PATH" with --listen); logs go to
 * stderr with -v.
 */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "devsim_keys.h"
#include "devsim_link.h"
#include "flashsim.h"
#include "flboot/flboot.h"
#include "flboot/sha256.h"
#include "flboot/trust.h"

#define EXIT_POWER_CUT 3
#define APP_CONFIRM_MS 200u  /* the simulated application confirms itself */
#define APP_CRASH_MS 100u    /* --app-crash: the application faults */
#define DEFAULT_TRIAL_WDT_MS 3000u
/* Longest idle wait: input and signals end it sooner; bounds the window in
 * which a signal that lands just before the wait goes unseen. */
#define IDLE_MAX_MS 100u

struct devsim {
	flashsim *fs;
	devsim_link *link;
	flboot_identity id;
	struct timespec t0;
	uint32_t boot_flags;   /* backup SRAM: survives resets, not power */
	int reset_requested;
	int wdt_running;
	uint32_t wdt_period;   /* --trial-watchdog-ms */
	uint32_t wdt_deadline;
	uint64_t ops_seen;     /* flash ops at the last idle check */
	int verbose;
	int quiet;
	int app_no_confirm;
	int app_crash;
	uint32_t reenum_ms;    /* --reenum-ms: the port is away after a reset */
};

static volatile sig_atomic_t stop_requested;

static void on_signal(int sig)
{
	(void)sig;
	stop_requested = 1;
}

static struct devsim *g_log; /* for dlog only */

static uint32_t now_ms(const struct devsim *d);

static void dlog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void dlog(const char *fmt, ...)
{
	va_list ap;

	if (!g_log || !g_log->verbose || g_log->quiet)
		return;
	va_start(ap, fmt);
	/* ms since start: lets a log be laid next to a host recording */
	fprintf(stderr, "devsim: %u ", (unsigned)now_ms(g_log));
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* Fatal errors are shown unless --quiet. */
static void die(struct devsim *d, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(struct devsim *d, const char *fmt, ...)
{
	va_list ap;

	if (!d || !d->quiet) {
		va_start(ap, fmt);
		fputs("flasher-devsim: ", stderr);
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
		va_end(ap);
	}
	exit(1);
}

/* ---- the port ------------------------------------------------------------ */

static uint32_t now_ms(const struct devsim *d)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint32_t)((ts.tv_sec - d->t0.tv_sec) * 1000 + (ts.tv_nsec - d->t0.tv_nsec) / 1000000);
}

/* A power cut armed with --exit-after-ops ends the process at once: nothing
 * the core does after the torn operation may reach the flash or the host. */
static void check_cut(struct devsim *d)
{
	if (flashsim_cut_happened(d->fs)) {
		dlog("power cut at flash operation %llu", (unsigned long long)flashsim_ops(d->fs));
		fflush(stderr);
		_exit(EXIT_POWER_CUT);
	}
}

static int p_flash_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
	struct devsim *d = ctx;
	return flashsim_read(d->fs, addr, buf, len);
}

static int p_flash_erase(void *ctx, uint32_t sector)
{
	struct devsim *d = ctx;
	int rc = flashsim_erase(d->fs, sector);

	check_cut(d);
	if (rc)
		dlog("erase sector %u: %d", (unsigned)sector, rc);
	return rc;
}

/* The H7 erases the two banks at once (one operation per bank): the core
 * starts an erase and polls for its end, so a bank 2 erase runs while bank
 * 1 programs, and the reverse. */
static int p_flash_erase_start(void *ctx, uint32_t sector)
{
	struct devsim *d = ctx;
	int rc = flashsim_erase_start(d->fs, sector);

	check_cut(d);
	if (rc)
		dlog("erase start sector %u: %d", (unsigned)sector, rc);
	return rc;
}

static int p_flash_wait(void *ctx, uint32_t bank, bool block)
{
	struct devsim *d = ctx;
	return flashsim_wait(d->fs, bank, block);
}

static int p_flash_program(void *ctx, uint32_t addr, const uint8_t word[32])
{
	struct devsim *d = ctx;
	int rc = flashsim_program(d->fs, addr, word);

	check_cut(d);
	if (rc)
		dlog("program 0x%08x: %d", (unsigned)addr, rc);
	return rc;
}

static uint32_t p_transport_read(void *ctx, uint8_t *buf, uint32_t cap)
{
	struct devsim *d = ctx;
	return devsim_link_read(d->link, buf, cap);
}

static void p_transport_write(void *ctx, const uint8_t *buf, uint32_t len)
{
	struct devsim *d = ctx;
	devsim_link_write(d->link, buf, len);
}

static uint32_t p_millis(void *ctx)
{
	return now_ms(ctx);
}

static void p_reset(void *ctx)
{
	struct devsim *d = ctx;
	d->reset_requested = 1;
}

static uint32_t p_boot_flags_get(void *ctx)
{
	struct devsim *d = ctx;
	return d->boot_flags;
}

static void p_boot_flags_set(void *ctx, uint32_t flags)
{
	struct devsim *d = ctx;
	d->boot_flags = flags;
}

static void p_watchdog_start(void *ctx, uint32_t timeout_ms)
{
	struct devsim *d = ctx;

	(void)timeout_ms; /* the simulated unit uses --trial-watchdog-ms */
	if (!d->wdt_running)
		dlog("watchdog started (%u ms)", (unsigned)d->wdt_period);
	d->wdt_running = 1;
	d->wdt_deadline = now_ms(d) + d->wdt_period;
}

static void p_watchdog_kick(void *ctx)
{
	struct devsim *d = ctx;

	if (d->wdt_running)
		d->wdt_deadline = now_ms(d) + d->wdt_period;
}

static void p_identity(void *ctx, flboot_identity *out)
{
	struct devsim *d = ctx;
	*out = d->id;
}

/* The watchdog resets the unit when it runs out (signed compare: wraps). */
static int watchdog_fired(struct devsim *d)
{
	if (d->wdt_running && (int32_t)(now_ms(d) - d->wdt_deadline) >= 0) {
		dlog("watchdog reset");
		return 1;
	}
	return 0;
}

/* Milliseconds from now until the time `at` (0 if it has passed). */
static uint32_t ms_until(struct devsim *d, uint32_t at)
{
	int32_t left = (int32_t)(at - now_ms(d));

	return left > 0 ? (uint32_t)left : 0;
}

/* Sleep on the link only when the last step did nothing, and then until
 * input comes or the next timed event is due (the watchdog, or `next_ms`
 * from the caller, UINT32_MAX for none): the core itself keeps no time, so
 * nothing else can happen in between. */
static void idle(struct devsim *d, uint32_t next_ms)
{
	uint64_t ops = flashsim_ops(d->fs);
	uint32_t t = IDLE_MAX_MS;

	if (ops != d->ops_seen) {
		d->ops_seen = ops;
		return;
	}
	if (next_ms < t)
		t = next_ms;
	/* an erase that ends wakes the core: it starts the next one at once */
	for (uint32_t b = 0; b < 2; b++) {
		uint64_t left = flashsim_busy_left_us(d->fs, b);
		if (left && (left + 999u) / 1000u < t)
			t = (uint32_t)((left + 999u) / 1000u);
	}
	if (d->wdt_running && ms_until(d, d->wdt_deadline) < t)
		t = ms_until(d, d->wdt_deadline);
	devsim_link_wait(d->link, (int)t);
}

/* ---- the simulated application ------------------------------------------- */

static void run_app(struct devsim *d, flboot *bl, const flboot_port *port, const flboot_boot_target *t)
{
	uint32_t start = now_ms(d), next;
	int confirmed = 0, confirm_tried = 0;

	dlog("jump to application cm7 0x%08x (v%u.%u.%u) cm4 0x%08x%s", (unsigned)t->cm7_entry,
	     (unsigned)FLBOOT_VERSION_MAJOR(t->cm7_version), (unsigned)FLBOOT_VERSION_MINOR(t->cm7_version),
	     (unsigned)FLBOOT_VERSION_PATCH(t->cm7_version), (unsigned)t->cm4_entry,
	     t->trial ? " on trial" : "");
	if (t->trial && !d->wdt_running)
		p_watchdog_start(d, d->wdt_period);
	/* the application's RAM is its own: the agent starts from nothing */
	memset(bl, 0, sizeof(*bl));
	flboot_app_init(bl, port);
	while (!stop_requested && !d->reset_requested) {
		uint32_t el = now_ms(d) - start;

		flboot_app_poll(bl);
		if (d->reset_requested)
			break;
		if (d->app_crash && el >= APP_CRASH_MS) {
			dlog("application crashed");
			d->reset_requested = 1;
			break;
		}
		if (!d->app_crash && !d->app_no_confirm && !confirm_tried && el >= APP_CONFIRM_MS) {
			int rc = flboot_app_confirm(port);

			confirm_tried = 1;
			confirmed = rc == 0;
			check_cut(d);
			dlog("application confirmed itself: %d", rc);
		}
		/* a healthy application kicks the watchdog; an unconfirmed trial does not */
		if (confirmed && d->wdt_running)
			p_watchdog_kick(d);
		if (watchdog_fired(d)) {
			d->reset_requested = 1;
			break;
		}
		if (d->app_crash)
			next = ms_until(d, start + APP_CRASH_MS);
		else if (!d->app_no_confirm && !confirm_tried)
			next = ms_until(d, start + APP_CONFIRM_MS);
		else
			next = UINT32_MAX;
		idle(d, next);
	}
}

/* ---- identity ---------------------------------------------------------- */

static int parse_version(const char *s, uint32_t *out)
{
	unsigned a, b, c;
	char extra;

	if (sscanf(s, "%u.%u.%u%c", &a, &b, &c, &extra) != 3 || a > 255 || b > 255 || c > 65535)
		return -1;
	*out = FLBOOT_VERSION(a, b, c);
	return 0;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* uid = the 24 hex digits of SN, else the first 12 bytes of SHA-256(SN). */
static void uid_from_serial(const char *sn, uint8_t uid[FLBOOT_UID_SIZE])
{
	uint8_t h[32];
	size_t i;

	if (strlen(sn) == 2 * FLBOOT_UID_SIZE) {
		for (i = 0; i < FLBOOT_UID_SIZE; i++) {
			int hi = hexval(sn[2 * i]), lo = hexval(sn[2 * i + 1]);
			if (hi < 0 || lo < 0)
				break;
			uid[i] = (uint8_t)(hi << 4 | lo);
		}
		if (i == FLBOOT_UID_SIZE)
			return;
	}
	flboot_sha256(sn, strlen(sn), h);
	memcpy(uid, h, FLBOOT_UID_SIZE);
}

/* Copy into a NUL-padded field; refuse what does not fit. */
static int set_field(char *dst, size_t cap, const char *src)
{
	if (strlen(src) >= cap)
		return -1;
	memset(dst, 0, cap);
	memcpy(dst, src, strlen(src));
	return 0;
}

/* ---- --stats ------------------------------------------------------------- */

/* One JSON document with this run's flash work (flashsim counts since the
 * flash was opened, which is this process), written to PATH.tmp and renamed
 * so a reader never sees half of it. */
static void write_stats(struct devsim *d, const char *path)
{
	flashsim_stats st;
	char tmp[PATH_MAX];
	FILE *f;
	unsigned i;

	flashsim_get_stats(d->fs, &st);
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= (int)sizeof(tmp))
		die(d, "--stats: path too long");
	f = fopen(tmp, "w");
	if (!f)
		die(d, "--stats: cannot write %s: %s", tmp, strerror(errno));
	fputs("{\"sector_erases\":[", f);
	for (i = 0; i < FLBOOT_SECTOR_COUNT; i++)
		fprintf(f, "%s%llu", i ? "," : "", (unsigned long long)st.sector_erases[i]);
	fprintf(f, "],\"word_programs\":%llu,\"bank_busy_s\":[%.6f,%.6f]}\n",
	        (unsigned long long)st.word_programs, st.bank_busy_us[0] / 1e6, st.bank_busy_us[1] / 1e6);
	if (fclose(f) != 0 || rename(tmp, path) != 0)
		die(d, "--stats: cannot write %s: %s", path, strerror(errno));
}

/* ---- main ---------------------------------------------------------------- */

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: flasher-devsim --flash FILE [options]\n"
	        "A simulated STM32H755 unit running the real bootloader core.\n"
	        "Prints the port to open as its first stdout line: 'pty: /dev/pts/N'\n"
	        "(or 'listen: unix:PATH' with --listen) and serves until SIGTERM/SIGINT.\n"
	        "\n"
	        "  --flash FILE              flash contents (created erased if absent)\n"
	        "  --product ID              product id (default demo)\n"
	        "  --hw REV                  hardware revision (default A)\n"
	        "  --serial SN               USB serial string; 24 hex digits = the uid,\n"
	        "                            else uid = first 12 bytes of SHA-256(SN)\n"
	        "                            (default: hex uid from SHA-256 of FILE's realpath)\n"
	        "  --bootloader-version X.Y.Z  (default 1.0.0)\n"
	        "  --link PATH               symlink PATH to the pty\n"
	        "  --listen unix:PATH        serve a Unix socket instead of a pty\n"
	        "  --link-rate R             bytes/s, both directions together (USB full\n"
	        "                            speed is half-duplex): usb-fs (%u, default),\n"
	        "                            or none (instant: no latency, no re-enumeration)\n"
	        "  --rx-buffer BYTES         the unit's receive buffering, the link's credit\n"
	        "                            for time it did not read (default %u)\n"
	        "  --link-latency-us N       an answer reaches the host N us after the unit\n"
	        "                            wrote it (default %u with a rate, 0 with none)\n"
	        "  --reenum-ms N             after every reset the port is away N ms while\n"
	        "                            the host enumerates it (default %u with a rate,\n"
	        "                            0 with none)\n"
	        "  --timing real|none        real: erase 1.1 s/sector, program %u us/word\n"
	        "  --app-no-confirm          the application never confirms a trial\n"
	        "  --app-crash               the application resets %u ms after start\n"
	        "  --app-version-from-image  the application reports the versions in its\n"
	        "                            image headers (what the agent always does)\n"
	        "  --trial-watchdog-ms N     trial watchdog period (default %u)\n"
	        "  --exit-after-ops N        power cut: tear flash operation N, exit 3\n"
	        "  --stats PATH              on SIGTERM/SIGINT write this run's flash work as\n"
	        "                            JSON: sector_erases[16], word_programs,\n"
	        "                            bank_busy_s[2] (modelled busy seconds per bank)\n"
	        "  --pubkey FILE             the unit holds this vendor public key (KEY.pub of\n"
	        "                            flasher keygen; twice for rotation) and runs only\n"
	        "                            images signed by one of its keys\n"
	        "  --enc-key FILE            the unit holds the product's decryption key\n"
	        "                            (flasher keygen --encryption)\n"
	        "  -v, --verbose             log to stderr\n"
	        "  --quiet                   nothing on stderr\n"
	        "  -h, --help\n",
	        DEVSIM_RATE_USB_FS, DEVSIM_RX_BUFFER, DEVSIM_LATENCY_US, DEVSIM_REENUM_MS, FLASHSIM_PROGRAM_US, APP_CRASH_MS, DEFAULT_TRIAL_WDT_MS);
}

enum {
	OPT_FLASH = 256, OPT_PRODUCT, OPT_HW, OPT_SERIAL, OPT_BLVER, OPT_LINK, OPT_LISTEN, OPT_RATE,
	OPT_TIMING, OPT_NO_CONFIRM, OPT_CRASH, OPT_VER_IMAGE, OPT_WDT, OPT_EXIT_OPS, OPT_QUIET, OPT_STATS,
	OPT_PUBKEY, OPT_ENC_KEY, OPT_RX_BUFFER, OPT_LATENCY, OPT_REENUM,
};

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno || end == s || *end || s[0] == '-')
		return -1;
	*out = v;
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "flash", required_argument, NULL, OPT_FLASH },
		{ "product", required_argument, NULL, OPT_PRODUCT },
		{ "hw", required_argument, NULL, OPT_HW },
		{ "serial", required_argument, NULL, OPT_SERIAL },
		{ "bootloader-version", required_argument, NULL, OPT_BLVER },
		{ "link", required_argument, NULL, OPT_LINK },
		{ "listen", required_argument, NULL, OPT_LISTEN },
		{ "link-rate", required_argument, NULL, OPT_RATE },
		{ "timing", required_argument, NULL, OPT_TIMING },
		{ "rx-buffer", required_argument, NULL, OPT_RX_BUFFER },
		{ "link-latency-us", required_argument, NULL, OPT_LATENCY },
		{ "reenum-ms", required_argument, NULL, OPT_REENUM },
		{ "app-no-confirm", no_argument, NULL, OPT_NO_CONFIRM },
		{ "app-crash", no_argument, NULL, OPT_CRASH },
		{ "app-version-from-image", no_argument, NULL, OPT_VER_IMAGE },
		{ "trial-watchdog-ms", required_argument, NULL, OPT_WDT },
		{ "exit-after-ops", required_argument, NULL, OPT_EXIT_OPS },
		{ "stats", required_argument, NULL, OPT_STATS },
		{ "pubkey", required_argument, NULL, OPT_PUBKEY },
		{ "enc-key", required_argument, NULL, OPT_ENC_KEY },
		{ "verbose", no_argument, NULL, 'v' },
		{ "quiet", no_argument, NULL, OPT_QUIET },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	static struct devsim dev;
	static flboot bl;
	struct devsim *d = &dev;
	const char *flash_path = NULL, *product = "demo", *hw = "A", *serial = NULL;
	const char *pubkeys[FLBOOT_MAX_KEYS], *enc_key = NULL;
	size_t npubkeys = 0;
	const char *blver = "1.0.0", *link_path = NULL, *listen_arg = NULL, *stats_path = NULL;
	char serial_buf[2 * FLBOOT_UID_SIZE + 1];
	uint32_t rate = DEVSIM_RATE_USB_FS;
	uint64_t exit_after = 0, v;
	/* link model: UINT64_MAX = the default for the chosen rate */
	uint64_t rx_buffer = DEVSIM_RX_BUFFER, latency_us = UINT64_MAX, reenum_ms = UINT64_MAX;
	int real_timing = 0, c, rc;
	flboot_port port;
	struct sigaction sa;

	d->wdt_period = DEFAULT_TRIAL_WDT_MS;
	while ((c = getopt_long(argc, argv, "vh", opts, NULL)) != -1) {
		switch (c) {
		case OPT_FLASH: flash_path = optarg; break;
		case OPT_PRODUCT: product = optarg; break;
		case OPT_HW: hw = optarg; break;
		case OPT_SERIAL: serial = optarg; break;
		case OPT_BLVER: blver = optarg; break;
		case OPT_LINK: link_path = optarg; break;
		case OPT_LISTEN: listen_arg = optarg; break;
		case OPT_RATE:
			if (strcmp(optarg, "usb-fs") == 0)
				rate = DEVSIM_RATE_USB_FS;
			else if (strcmp(optarg, "none") == 0)
				rate = 0;
			else if (parse_u64(optarg, &v) == 0 && v > 0 && v <= UINT32_MAX)
				rate = (uint32_t)v;
			else
				die(NULL, "--link-rate: expected bytes/s, usb-fs or none, got '%s'", optarg);
			break;
		case OPT_TIMING:
			if (strcmp(optarg, "real") == 0)
				real_timing = 1;
			else if (strcmp(optarg, "none") == 0)
				real_timing = 0;
			else
				die(NULL, "--timing: expected real or none, got '%s'", optarg);
			break;
		case OPT_NO_CONFIRM: d->app_no_confirm = 1; break;
		case OPT_CRASH: d->app_crash = 1; break;
		case OPT_VER_IMAGE: break; /* the agent reads the image headers */
		case OPT_WDT:
			if (parse_u64(optarg, &v) != 0 || v == 0 || v > 3600000)
				die(NULL, "--trial-watchdog-ms: expected 1..3600000, got '%s'", optarg);
			d->wdt_period = (uint32_t)v;
			break;
		case OPT_EXIT_OPS:
			if (parse_u64(optarg, &exit_after) != 0 || exit_after == 0)
				die(NULL, "--exit-after-ops: expected a positive count, got '%s'", optarg);
			break;
		case OPT_RX_BUFFER:
			if (parse_u64(optarg, &rx_buffer) != 0 || rx_buffer == 0 || rx_buffer > 64u * 1024 * 1024)
				die(NULL, "--rx-buffer: expected 1..67108864 bytes, got '%s'", optarg);
			break;
		case OPT_LATENCY:
			if (parse_u64(optarg, &latency_us) != 0 || latency_us > 1000000)
				die(NULL, "--link-latency-us: expected 0..1000000, got '%s'", optarg);
			break;
		case OPT_REENUM:
			if (parse_u64(optarg, &reenum_ms) != 0 || reenum_ms > 60000)
				die(NULL, "--reenum-ms: expected 0..60000, got '%s'", optarg);
			break;
		case OPT_STATS: stats_path = optarg; break;
		case OPT_PUBKEY:
			if (npubkeys == FLBOOT_MAX_KEYS)
				die(NULL, "--pubkey: a unit holds at most %u keys", FLBOOT_MAX_KEYS);
			pubkeys[npubkeys++] = optarg;
			break;
		case OPT_ENC_KEY: enc_key = optarg; break;
		case 'v': d->verbose = 1; break;
		case OPT_QUIET: d->quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || !flash_path) {
		usage(stderr);
		return 2;
	}
	g_log = d;

	/* identity */
	if (set_field(d->id.product, sizeof(d->id.product), product) != 0)
		die(d, "--product: at most %zu characters", sizeof(d->id.product) - 1);
	if (set_field(d->id.hw_rev, sizeof(d->id.hw_rev), hw) != 0)
		die(d, "--hw: at most %zu characters", sizeof(d->id.hw_rev) - 1);
	if (parse_version(blver, &d->id.bootloader_version) != 0)
		die(d, "--bootloader-version: expected X.Y.Z, got '%s'", blver);
	if (!serial) {
		/* stable per flash file: the same file is the same unit */
		char *rp = realpath(flash_path, NULL);
		uint8_t h[32];
		const char *src = rp ? rp : flash_path;

		flboot_sha256(src, strlen(src), h);
		for (int i = 0; i < (int)FLBOOT_UID_SIZE; i++)
			snprintf(serial_buf + 2 * i, 3, "%02X", h[i]);
		serial = serial_buf;
		free(rp);
	}
	if (set_field(d->id.serial, sizeof(d->id.serial), serial) != 0)
		die(d, "--serial: at most %zu characters", sizeof(d->id.serial) - 1);
	uid_from_serial(serial, d->id.uid);

	/* flash */
	rc = flashsim_open(&d->fs, flash_path);
	if (rc != 0)
		die(d, "cannot open flash file %s: %s", flash_path,
		    rc == -EINVAL ? "not a flasher-devsim flash file" : strerror(-rc));
	flashsim_set_timing(d->fs, real_timing);
	{
		char kerr[512];

		/* what provisioning writes into the bootloader sector on the chip */
		if (devsim_keys_install(d->fs, pubkeys, npubkeys, enc_key, kerr, sizeof kerr) != 0)
			die(d, "%s", kerr);
	}
	flashsim_set_protect(d->fs, 1u << FLBOOT_BOOTLOADER_SECTOR); /* WPSN on the chip */
	if (exit_after)
		flashsim_arm_cut(d->fs, exit_after, FLASHSIM_CUT_DURING, exit_after);

	/* signals: exit cleanly; a vanished socket client is not fatal */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* link */
	if (listen_arg) {
		if (strncmp(listen_arg, "unix:", 5) != 0)
			die(d, "--listen: expected unix:PATH, got '%s'", listen_arg);
		rc = devsim_link_open_unix(&d->link, listen_arg + 5);
		if (rc != 0)
			die(d, "cannot listen on %s: %s", listen_arg, strerror(-rc));
		printf("listen: %s\n", listen_arg);
	} else {
		const char *name;

		rc = devsim_link_open_pty(&d->link, link_path, &name);
		if (rc != 0)
			die(d, "cannot open a pty: %s", strerror(-rc));
		printf("pty: %s\n", name);
	}
	fflush(stdout);
	devsim_link_set_rate(d->link, rate);
	devsim_link_set_rx_buffer(d->link, (uint32_t)rx_buffer);
	/* --link-rate none is the unit tests' instant link: no latency and no
	 * re-enumeration unless asked for */
	if (latency_us == UINT64_MAX)
		latency_us = rate ? DEVSIM_LATENCY_US : 0;
	if (reenum_ms == UINT64_MAX)
		reenum_ms = rate ? DEVSIM_REENUM_MS : 0;
	devsim_link_set_latency(d->link, (uint32_t)latency_us);
	d->reenum_ms = (uint32_t)reenum_ms;

	memset(&port, 0, sizeof(port));
	port.ctx = d;
	port.flash_read = p_flash_read;
	port.flash_erase = p_flash_erase;
	port.flash_program = p_flash_program;
	port.flash_erase_start = p_flash_erase_start;
	port.flash_wait = p_flash_wait;
	port.transport_read = p_transport_read;
	port.transport_write = p_transport_write;
	port.millis = p_millis;
	port.reset = p_reset;
	port.boot_flags_get = p_boot_flags_get;
	port.boot_flags_set = p_boot_flags_set;
	port.watchdog_start = p_watchdog_start;
	port.watchdog_kick = p_watchdog_kick;
	port.identity = p_identity;

	clock_gettime(CLOCK_MONOTONIC, &d->t0);
	dlog("unit %s product %s hw %s bootloader %s, flash %s", d->id.serial, d->id.product, d->id.hw_rev,
	     blver, flash_path);

	/* power on, then one boot per reset until told to stop */
	while (!stop_requested) {
		flboot_boot_target target;
		int r;

		d->reset_requested = 0;
		d->wdt_running = 0; /* a reset stops a software-started IWDG */
		memset(&bl, 0, sizeof(bl));
		memset(&target, 0, sizeof(target));
		flboot_init(&bl, &port);
		r = flboot_boot(&bl, &target);
		check_cut(d);
		if (r == FLBOOT_BOOT_APP) {
			run_app(d, &bl, &port, &target);
		} else {
			dlog("staying in the bootloader");
			while (!stop_requested && !d->reset_requested) {
				flboot_poll(&bl);
				if (d->reset_requested || watchdog_fired(d))
					break;
				idle(d, UINT32_MAX);
			}
		}
		if (!stop_requested) {
			dlog("reset");
			devsim_link_reenumerate(d->link, d->reenum_ms);
		}
	}
	dlog("stopping");
	if (stats_path)
		write_stats(d, stats_path);
	devsim_link_close(d->link);
	flashsim_close(d->fs);
	return 0;
}
