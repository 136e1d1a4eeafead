/* Sessions with one unit: HELLO, update (check, transfer, verify, activate,
 * reboot, wait), confirm, rollback, reboot. docs/protocol.md is the wire
 * contract; client.c carries the frames. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "client.h"
#include "error_internal.h"
#include "log.h"
#include "flasher/discovery.h"
#include "flasher/session.h"
#include "session_internal.h"
#include "unit_claim.h"
#include "flasher/version.h"
#include "flboot/image.h"
#include "flboot/layout.h"

struct flasher_session {
	atomic_int cancel;
	flasher__client c;
	flasher_transport *t;       /* current link, NULL while disconnected */
	char port[256];             /* current port spec (changes if the unit re-enumerates) */
	/* The unit this session is bound to (first HELLO, or opts.uid): every
	 * later HELLO must come from it, and it is found again by this uid. */
	char uid[25];
	char serial[33];
	char expect_uid[25];        /* opts.uid, "" = bind to the first unit that answers */
	/* another unit answered where ours was expected (the last one seen):
	 * it is never written to and never reported on */
	char foreign_uid[25];
	char foreign_port[256];
	int wrong_unit;             /* the last HELLO came from another unit */
	int claim_fd;               /* the unit's claim (unit_claim.h), -1 = none */
	flasher_session_options opts;
	char *record_path;
	flasher_fault_config fault;
	int has_fault;
	unsigned links;             /* transports opened so far (fault seeds) */
	uint64_t written_closed;    /* bytes written through closed transports */
	int req_timeout_ms;         /* max(opts.timeout_ms, unit's op_timeout_ms) */
	uint32_t features;          /* FLBOOT_FEAT_* of the last HELLO */
	uint32_t stage_addr[2];     /* slot each core stages into next (HELLO minor 1), 0 = not announced */
	uint32_t erase_max_ms;      /* longest sector erase (HELLO minor 2), 0 = not announced */
	int64_t erase_until;        /* erases queued by the last BEGIN may run until then */
	flasher_unit_info info;     /* last HELLO */
	flasher__logger log;        /* opts.log */
	flasher_usb_id usb_ids[FLASHER_MAX_USB_IDS]; /* copy of opts.discovery's */
	flasher_discovery_options discovery;
	flasher__response r;        /* scratch, too large for the stack of callers */
};

const char *flasher_phase_name(flasher_phase phase)
{
	static const char *const names[] = {"connect", "check", "transfer", "verify", "activate", "reboot", "done"};
	if ((unsigned)phase < sizeof names / sizeof names[0])
		return names[phase];
	return "unknown";
}

/* ---- small helpers --------------------------------------------------------- */

static int cancelled(flasher_session *s)
{
	return atomic_load(&s->cancel) != 0;
}

static int sleep_ms(flasher_session *s, int ms)
{
	while (ms > 0) {
		if (cancelled(s))
			return flasher__error(FLASHER_ECANCELLED, "cancelled by the caller");
		int step = ms > 50 ? 50 : ms;
		struct timespec ts = {0, (long)step * 1000000L};
		nanosleep(&ts, NULL);
		ms -= step;
	}
	return 0;
}

static void copy_field(char *dst, size_t dst_size, const char *src, size_t src_size)
{
	size_t n = strnlen(src, src_size);
	if (n >= dst_size)
		n = dst_size - 1;
	memcpy(dst, src, n);
	dst[n] = '\0';
}

static const char *core_name(int core)
{
	return core == FLASHER_CORE_CM7 ? "cm7" : core == FLASHER_CORE_CM4 ? "cm4" : "core?";
}

static uint64_t wire_written(const flasher_session *s)
{
	uint64_t w = 0, r = 0;
	if (s->t)
		flasher_transport_counters(s->t, &w, &r);
	return s->written_closed + w;
}

/* A port spec names a path or a scheme; anything else is a serial / uid. */
static int is_port_spec(const char *port)
{
	return strchr(port, '/') || strchr(port, ':');
}

/* ---- link ---------------------------------------------------------------- */

static void close_link(flasher_session *s)
{
	if (!s->t)
		return;
	uint64_t w = 0, r = 0;
	flasher_transport_counters(s->t, &w, &r);
	s->written_closed += w;
	flasher_transport_close(s->t);
	s->t = NULL;
	flasher__client_attach(&s->c, NULL);
}

static int open_link(flasher_session *s)
{
	flasher_transport *t = NULL, *w = NULL;
	int err = flasher_transport_open(&t, s->port);
	if (err)
		return err;
	if (s->record_path) {
		/* the record wrapper starts a new file; a reconnect (after a reboot)
		 * records to PATH.1, PATH.2, ... so nothing is overwritten */
		char path[1100];
		if (s->links)
			snprintf(path, sizeof path, "%s.%u", s->record_path, s->links);
		else
			snprintf(path, sizeof path, "%s", s->record_path);
		err = flasher_transport_record_wrap(&w, t, path);
		if (err)
			return err; /* the wrapper owns (and closed) inner */
		t = w;
	}
	if (s->has_fault) {
		flasher_fault_config f = s->fault;
		f.seed += s->links; /* a reconnect must not replay the same faults */
		err = flasher_transport_fault_wrap(&w, t, &f);
		if (err)
			return err;
		t = w;
	}
	s->links++;
	s->t = t;
	flasher__client_attach(&s->c, t);
	return 0;
}

/* Look for the session's unit by its uid (or serial) through discovery;
 * a port where another unit answered last is not taken again. */
static int open_discovered(flasher_session *s)
{
	const char *ids[2] = {s->uid, s->serial};
	for (int i = 0; i < 2; i++) {
		char path[256];
		if (!ids[i][0] || flasher_port_find_with(&s->discovery, ids[i], path, sizeof path) != 0)
			continue;
		if (s->wrong_unit && !strcmp(path, s->foreign_port))
			continue;
		char old[sizeof s->port];
		snprintf(old, sizeof old, "%s", s->port);
		if (strcmp(path, s->port))
			flasher__log(&s->log, FLASHER_LOG_INFO, "unit %s: trying %s (was %s)", ids[i], path, s->port);
		snprintf(s->port, sizeof s->port, "%s", path);
		if (open_link(s) == 0)
			return 0;
		snprintf(s->port, sizeof s->port, "%s", old);
	}
	return FLASHER_ENOTFOUND;
}

/* Reopen the link; if the port is gone (USB re-enumeration) or another unit
 * answered on it, find the unit again by its uid (or serial) through
 * discovery. The HELLO that follows checks who answers. */
static int reconnect(flasher_session *s)
{
	close_link(s);
	if (s->wrong_unit && open_discovered(s) == 0)
		return 0;
	int err = open_link(s);
	if (err != FLASHER_ENOTFOUND && err != FLASHER_EDISCONNECTED && err != FLASHER_EIO && err != FLASHER_EBUSY)
		return err;
	if (!s->wrong_unit && open_discovered(s) == 0)
		return 0;
	return err;
}

/* ---- HELLO --------------------------------------------------------------- */

static int parse_hello(const flasher__response *r, flasher_unit_info *out, uint32_t *features)
{
	flboot_hello h;
	if (r->body_len < offsetof(flboot_hello, slots))
		return flasher__error(FLASHER_EPROTOCOL, "HELLO answer has %zu bytes, at least %zu expected", r->body_len,
		                      offsetof(flboot_hello, slots));
	memset(&h, 0, sizeof h);
	memcpy(&h, r->body, r->body_len < sizeof h ? r->body_len : sizeof h);
	if (h.proto_version > FLBOOT_PROTO_VERSION)
		return flasher__error(FLASHER_EUNSUPPORTED,
		                      "the unit speaks protocol version %u; this flasher knows up to %u: update flasher",
		                      h.proto_version, FLBOOT_PROTO_VERSION);
	if (h.mode != FLBOOT_MODE_BOOTLOADER && h.mode != FLBOOT_MODE_APPLICATION)
		return flasher__error(FLASHER_EPROTOCOL, "HELLO: unknown mode %u", h.mode);
	memset(out, 0, sizeof *out);
	out->struct_size = sizeof *out;
	for (unsigned i = 0; i < FLBOOT_UID_SIZE; i++)
		snprintf(out->uid + 2 * i, 3, "%02x", h.uid[i]);
	copy_field(out->serial, sizeof out->serial, h.serial, sizeof h.serial);
	copy_field(out->product, sizeof out->product, h.product, sizeof h.product);
	copy_field(out->hw_rev, sizeof out->hw_rev, h.hw_rev, sizeof h.hw_rev);
	*features = h.features;
	out->bootloader_version = h.bootloader_version;
	out->protocol_version = h.proto_version;
	out->mode = (flasher_mode)h.mode;
	out->state = (flasher_boot_state)h.boot_state;
	out->cm7_version = h.running_cm7;
	out->cm4_version = h.running_cm4;
	out->max_payload = h.max_payload;
	out->window = h.window;
	out->op_timeout_ms = h.op_timeout_ms;
	out->trial_boots = h.trial_boots;
	out->last_boot_error = h.last_boot_error;
	size_t have = (r->body_len - offsetof(flboot_hello, slots)) / sizeof(flboot_slot_info);
	size_t n = h.n_slots;
	if (n > have)
		n = have;
	if (n > FLBOOT_MAX_SLOTS)
		n = FLBOOT_MAX_SLOTS;
	out->slot_count = n;
	for (size_t i = 0; i < n; i++) {
		const flboot_slot_info *si = &h.slots[i];
		out->slots[i].core = (flasher_core)si->core;
		out->slots[i].primary = si->role == FLBOOT_ROLE_PRIMARY;
		out->slots[i].state = si->state;
		out->slots[i].address = si->address;
		out->slots[i].size = si->size;
		out->slots[i].version = si->version;
		out->slots[i].payload_crc32 = si->payload_crc32;
	}
	return 0;
}

static int hello(flasher_session *s, int timeout_ms, int retries)
{
	int err = flasher__client_request(&s->c, FLBOOT_MSG_HELLO, NULL, 0, timeout_ms, retries, &s->r);
	if (err)
		return err;
	if (s->r.status)
		return flasher__device_error(&s->r);
	flasher_unit_info info;
	uint32_t features = 0;
	err = parse_hello(&s->r, &info, &features);
	if (err)
		return err;
	const char *own = s->uid[0] ? s->uid : s->expect_uid;
	if (own[0] && strcasecmp(info.uid, own)) {
		/* not our unit (a swapped cable, a reused port): forget its answer */
		s->wrong_unit = 1;
		memcpy(s->foreign_uid, info.uid, sizeof s->foreign_uid);
		snprintf(s->foreign_port, sizeof s->foreign_port, "%s", s->port);
		return flasher__error(FLASHER_ENOTFOUND, "%s answers as unit %s, not as this session's unit %s", s->port,
		                      info.uid, own);
	}
	s->wrong_unit = 0;
	/* one owner per unit: claimed when the session is bound, held to its close */
	if (s->claim_fd < 0 && (err = flasher__claim_unit(info.uid, &s->claim_fd)))
		return err;
	s->info = info;
	s->features = features;
	{
		flboot_hello h;
		memset(&h, 0, sizeof h);
		memcpy(&h, s->r.body, s->r.body_len < sizeof h ? s->r.body_len : sizeof h);
		s->stage_addr[0] = h.proto_minor >= 1 ? h.stage_addr[0] : 0;
		s->stage_addr[1] = h.proto_minor >= 1 ? h.stage_addr[1] : 0;
		s->erase_max_ms = h.proto_minor >= 2 && s->r.body_len >= sizeof h ? h.erase_max_ms : 0;
		if (s->erase_max_ms > 60000)
			s->erase_max_ms = 60000;
	}
	if (!s->uid[0]) { /* the first HELLO binds the session to this unit */
		memcpy(s->uid, info.uid, sizeof s->uid);
		memcpy(s->serial, info.serial, sizeof s->serial);
	}
	s->req_timeout_ms = s->opts.timeout_ms;
	if ((int64_t)info.op_timeout_ms > s->req_timeout_ms)
		s->req_timeout_ms = info.op_timeout_ms > 600000 ? 600000 : (int)info.op_timeout_ms;
	return 0;
}

/* One request with the session's timeouts; a refusal of the unit becomes an error. */
static int request(flasher_session *s, uint8_t type, const void *payload, size_t len)
{
	int err = flasher__client_request(&s->c, type, payload, len, s->req_timeout_ms, s->opts.retries, &s->r);
	if (err)
		return err;
	if (s->r.status)
		return flasher__device_error(&s->r);
	return 0;
}

/* ---- waiting for the unit after a reset ------------------------------------ */

/* judge: 1 = what we wait for, 0 = keep waiting, < 0 = give up with that error */
typedef int (*judge_fn)(flasher_session *s, const flasher_unit_info *u, void *arg);

static int wait_unit(flasher_session *s, judge_fn judge, void *arg, int64_t deadline, const char *what)
{
	int last = 0;
	int hello_ms = s->opts.timeout_ms < 500 ? s->opts.timeout_ms : 500;
	for (;;) {
		if (cancelled(s))
			return flasher__error(FLASHER_ECANCELLED, "cancelled by the caller");
		if (flasher__now_ms() > deadline) {
			if (s->wrong_unit || (!last && s->foreign_uid[0]))
				return flasher__error(FLASHER_ENOTFOUND,
				                      "%s: unit %s did not come back within %d ms (on %s, or by its uid on any "
				                      "port); %s answered as unit %s, which was left alone",
				                      what, s->uid[0] ? s->uid : s->expect_uid, s->opts.reconnect_timeout_ms,
				                      s->port, s->foreign_port, s->foreign_uid);
			if (last)
				return flasher__error(FLASHER_ETIMEOUT, "%s: still not there after %d ms (last answer: mode %s, "
				                      "state %d, cm7 %08x, cm4 %08x)", what, s->opts.reconnect_timeout_ms,
				                      s->info.mode == FLASHER_MODE_APPLICATION ? "application" : "bootloader",
				                      s->info.state, (unsigned)s->info.cm7_version, (unsigned)s->info.cm4_version);
			return flasher__error(FLASHER_ETIMEOUT, "%s: the unit did not answer on %s within %d ms", what, s->port,
			                      s->opts.reconnect_timeout_ms);
		}
		if (!s->t && reconnect(s) != 0) {
			int err = sleep_ms(s, 200);
			if (err)
				return err;
			continue;
		}
		/* a unit that is away while it resets loses no answer: these
		 * polls are not the update's timeouts */
		uint32_t timeouts = s->c.timeouts;
		int err = hello(s, hello_ms, 0);
		s->c.timeouts = timeouts;
		if (err == FLASHER_ECANCELLED || err == FLASHER_EUNSUPPORTED)
			return err;
		if (err == FLASHER_ENOTFOUND && s->wrong_unit) { /* another unit: let go of it, look for ours */
			close_link(s);
			if ((err = sleep_ms(s, 200)))
				return err;
			continue;
		}
		if (err == FLASHER_ETIMEOUT || err == FLASHER_EPROTOCOL || err == FLASHER_EDEVICE)
			continue;
		if (err) { /* link gone: the unit resets or re-enumerates */
			close_link(s);
			if ((err = sleep_ms(s, 100)))
				return err;
			continue;
		}
		last = 1;
		int j = judge(s, &s->info, arg);
		if (j)
			return j < 0 ? j : 0;
		if ((err = sleep_ms(s, 100)))
			return err;
	}
}

static int judge_bootloader(flasher_session *s, const flasher_unit_info *u, void *arg)
{
	(void)s;
	(void)arg;
	return u->mode == FLASHER_MODE_BOOTLOADER;
}

static int judge_any(flasher_session *s, const flasher_unit_info *u, void *arg)
{
	(void)s;
	(void)u;
	(void)arg;
	return 1;
}

/* A REBOOT whose answer did not come back: the unit may have reset (or been
 * unplugged) before it got through. The session then looks for its unit. */
static int answer_lost(int err)
{
	return err == FLASHER_EDISCONNECTED || err == FLASHER_EIO || err == FLASHER_ETIMEOUT;
}

/* Entering the bootloader: the application answering again means the
 * REBOOT never reached it (lost with the link, or the unit was replaced
 * and came back): ask again, at most every 1.5 s. */
static int judge_entered(flasher_session *s, const flasher_unit_info *u, void *arg)
{
	int64_t *last_ask = arg;
	if (u->mode == FLASHER_MODE_BOOTLOADER)
		return 1;
	if (flasher__now_ms() - *last_ask > 1500) {
		flboot_reboot_req req = {FLBOOT_REBOOT_BOOTLOADER};
		*last_ask = flasher__now_ms();
		int err = request(s, FLBOOT_MSG_REBOOT, &req, sizeof req);
		if (err == FLASHER_ECANCELLED)
			return err;
		if (err == FLASHER_EDISCONNECTED || err == FLASHER_EIO)
			close_link(s);
	}
	return 0;
}

static int enter_bootloader(flasher_session *s)
{
	flboot_reboot_req req = {FLBOOT_REBOOT_BOOTLOADER};
	int64_t last_ask = flasher__now_ms();
	int err = request(s, FLBOOT_MSG_REBOOT, &req, sizeof req);
	if (err && !answer_lost(err))
		return flasher__error_wrap(err, "entering the bootloader");
	if (err == FLASHER_EDISCONNECTED || err == FLASHER_EIO)
		close_link(s);
	return wait_unit(s, judge_entered, &last_ask, flasher__now_ms() + s->opts.reconnect_timeout_ms,
	                 "waiting for the bootloader");
}

/* ---- open / close / info ---------------------------------------------------- */

static int session_new(flasher_session **out, const flasher_session_options *opts)
{
	flasher_session *s = calloc(1, sizeof *s);
	if (!s)
		return flasher__error(FLASHER_ENOMEM, "session: out of memory");
	flasher_session_options def = FLASHER_SESSION_OPTIONS_INIT;
	s->opts = def;
	if (opts) {
		if (opts->version < 1 || opts->version > FLASHER_SESSION_OPTIONS_VERSION) {
			free(s);
			return flasher__error(FLASHER_EINVAL, "session options: version %u unknown (this library knows %d)",
			                      opts->version, FLASHER_SESSION_OPTIONS_VERSION);
		}
		/* Only the fields of the caller's version: an older caller's
		 * struct ends before the newer fields. */
		memcpy(&s->opts, opts,
		       opts->version == 1   ? offsetof(flasher_session_options, uid)
		       : opts->version == 2 ? offsetof(flasher_session_options, log)
		                            : sizeof *opts);
		if (s->opts.discovery) {
			const flasher_discovery_options *d = s->opts.discovery;
			if (d->version < 1 || d->usb_id_count > FLASHER_MAX_USB_IDS || (d->usb_id_count && !d->usb_ids)) {
				free(s);
				return flasher__error(FLASHER_EINVAL, "session options: bad discovery options (version %u, %zu USB ids)",
				                      d->version, d->usb_id_count);
			}
			for (size_t i = 0; i < d->usb_id_count; i++)
				s->usb_ids[i] = d->usb_ids[i];
			s->discovery.usb_id_count = d->usb_id_count;
		}
		if (s->opts.timeout_ms <= 0)
			s->opts.timeout_ms = def.timeout_ms;
		if (s->opts.retries < 0)
			s->opts.retries = def.retries;
		if (s->opts.reconnect_timeout_ms <= 0)
			s->opts.reconnect_timeout_ms = def.reconnect_timeout_ms;
		if (opts->record_path && !(s->record_path = strdup(opts->record_path))) {
			free(s);
			return flasher__error(FLASHER_ENOMEM, "session: out of memory");
		}
		if (opts->fault) {
			s->fault = *opts->fault;
			s->has_fault = 1;
		}
		if (opts->version >= 2 && opts->uid) {
			if (strlen(opts->uid) != 24 || strspn(opts->uid, "0123456789abcdefABCDEF") != 24) {
				free(s->record_path);
				free(s);
				return flasher__error(FLASHER_EINVAL, "session options: uid '%s' is not 24 hex digits", opts->uid);
			}
			for (int i = 0; i < 24; i++)
				s->expect_uid[i] = (char)(opts->uid[i] >= 'A' && opts->uid[i] <= 'F' ? opts->uid[i] + 32 : opts->uid[i]);
		}
	}
	s->opts.uid = NULL;
	s->opts.record_path = s->record_path;
	s->opts.fault = NULL;
	s->opts.discovery = NULL;
	s->discovery.version = FLASHER_DISCOVERY_OPTIONS_VERSION;
	s->discovery.usb_ids = s->usb_ids;
	s->log.cb = s->opts.log;
	s->log.payload = s->opts.log_payload;
	s->log.level = s->opts.log_level;
	s->req_timeout_ms = s->opts.timeout_ms;
	s->claim_fd = -1;
	atomic_init(&s->cancel, 0);
	flasher__client_init(&s->c, &s->cancel);
	s->c.log = &s->log;
	*out = s;
	flasher_error_clear();
	return 0;
}

int flasher_session_open(flasher_session **out, const char *port, const flasher_session_options *opts)
{
	if (!out || !port || !*port)
		return flasher__error(FLASHER_EINVAL, "session open: no port given");
	*out = NULL;
	flasher_session *s;
	int err = session_new(&s, opts);
	if (err)
		return err;
	if (is_port_spec(port)) {
		snprintf(s->port, sizeof s->port, "%s", port);
	} else if ((err = flasher_port_find_with(&s->discovery, port, s->port, sizeof s->port)) != 0) {
		flasher_session_close(s);
		return flasher__error_wrap(err, "no port is a unit with serial '%s'", port);
	}
	if ((err = open_link(s))) {
		flasher_session_close(s);
		return err; /* the transport's detail names the port */
	}
	err = hello(s, s->opts.timeout_ms, s->opts.retries);
	if (err == FLASHER_ENOTFOUND && s->wrong_unit) /* opts.uid names another unit: look for it */
		err = wait_unit(s, judge_any, NULL, flasher__now_ms() + s->opts.reconnect_timeout_ms,
		                "looking for the unit");
	if (err) {
		flasher_session_close(s);
		return flasher__error_wrap(err, "%s", port);
	}
	*out = s;
	flasher_error_clear();
	return 0;
}

int flasher_session_open_transport(flasher_session **out, flasher_transport *t, const flasher_session_options *opts)
{
	if (!out || !t) {
		flasher_transport_close(t);
		return flasher__error(FLASHER_EINVAL, "session open: no transport given");
	}
	*out = NULL;
	flasher_session *s;
	int err = session_new(&s, opts);
	if (err) {
		flasher_transport_close(t);
		return err;
	}
	/* the port spec is only known if the transport is a plain one we could reopen */
	const char *d = flasher_transport_description(t);
	const char *colon = d ? strchr(d, ':') : NULL;
	snprintf(s->port, sizeof s->port, "%s", colon && (!strncmp(d, "termios:", 8) || !strncmp(d, "serial:", 7))
	                                            ? colon + 1 : (d ? d : ""));
	s->t = t;
	s->links = 1;
	flasher__client_attach(&s->c, t);
	err = hello(s, s->opts.timeout_ms, s->opts.retries);
	if (err == FLASHER_ENOTFOUND && s->wrong_unit)
		err = wait_unit(s, judge_any, NULL, flasher__now_ms() + s->opts.reconnect_timeout_ms,
		                "looking for the unit");
	if (err) {
		flasher_session_close(s);
		return err;
	}
	*out = s;
	flasher_error_clear();
	return 0;
}

void flasher_session_close(flasher_session *s)
{
	if (!s)
		return;
	close_link(s);
	if (s->claim_fd >= 0)
		close(s->claim_fd);
	free(s->record_path);
	free(s);
}

void flasher_session_cancel(flasher_session *s)
{
	if (s)
		atomic_store(&s->cancel, 1);
}

const char *flasher_session_port(const flasher_session *s)
{
	return s ? s->port : NULL;
}

/* Every public operation: a cancel request ends it and is then forgotten,
 * and a lost link is reopened first, and only to the session's own unit
 * (a HELLO says who answers) before anything else is sent. */
static int op_begin(flasher_session *s)
{
	if (!s)
		return flasher__error(FLASHER_EINVAL, "no session");
	/* a cancel asked between two operations was for the one before */
	atomic_store(&s->cancel, 0);
	if (!s->t) {
		int err = wait_unit(s, judge_any, NULL, flasher__now_ms() + s->opts.reconnect_timeout_ms, "reconnecting");
		if (err)
			return flasher__error_wrap(err, "reconnecting to %s", s->port);
	}
	return 0;
}

static int op_end(flasher_session *s, int err)
{
	if (err == FLASHER_ECANCELLED)
		atomic_store(&s->cancel, 0);
	if (!err)
		flasher_error_clear(); /* no stale detail after a success */
	/* a link that failed is reopened by the next operation */
	if (err == FLASHER_EDISCONNECTED || err == FLASHER_EIO)
		close_link(s);
	return err;
}

/* The public struct sizes of the first version that had struct_size: a
 * caller's struct is never smaller. */
#define UNIT_INFO_MIN_SIZE sizeof(flasher_unit_info)
#define UPDATE_RESULT_MIN_SIZE offsetof(flasher_update_result, outcome)

int flasher_session_info_sized(flasher_session *s, flasher_unit_info *out, size_t out_size)
{
	if (out && out_size < UNIT_INFO_MIN_SIZE)
		return flasher__error(FLASHER_EINVAL, "session info: a struct of %zu bytes, at least %zu expected", out_size,
		                      (size_t)UNIT_INFO_MIN_SIZE);
	int err = op_begin(s);
	if (!err)
		err = hello(s, s->opts.timeout_ms, s->opts.retries);
	if (!err && out) {
		size_t n = out_size < sizeof s->info ? out_size : sizeof s->info;
		memcpy(out, &s->info, n);
		out->struct_size = (unsigned)n;
	}
	return s ? op_end(s, err) : err;
}

int(flasher_session_info)(flasher_session *s, flasher_unit_info *out)
{
	return flasher_session_info_sized(s, out, sizeof *out);
}

int flasher_session_confirm(flasher_session *s)
{
	int err = op_begin(s);
	if (!err)
		err = request(s, FLBOOT_MSG_CONFIRM, NULL, 0);
	if (!err)
		err = hello(s, s->opts.timeout_ms, s->opts.retries);
	return s ? op_end(s, err) : err;
}

/* A plain reboot: wait until the unit answered REBOOT, went away and is back. */
static int reboot_and_wait(flasher_session *s, int to_bootloader)
{
	flboot_reboot_req req = {to_bootloader ? FLBOOT_REBOOT_BOOTLOADER : FLBOOT_REBOOT_NORMAL};
	int err = request(s, FLBOOT_MSG_REBOOT, &req, sizeof req);
	if (err)
		return err;
	/* the unit answers before it resets: give it time to go */
	if ((err = sleep_ms(s, 300)))
		return err;
	return wait_unit(s, to_bootloader ? judge_bootloader : judge_any, NULL,
	                 flasher__now_ms() + s->opts.reconnect_timeout_ms, "waiting for the unit after REBOOT");
}

int flasher_session_reboot(flasher_session *s, int to_bootloader)
{
	int err = op_begin(s);
	if (!err)
		err = reboot_and_wait(s, to_bootloader);
	return s ? op_end(s, err) : err;
}

int flasher_session_rollback(flasher_session *s)
{
	int err = op_begin(s);
	if (!err && s->info.mode == FLASHER_MODE_APPLICATION)
		err = enter_bootloader(s);
	if (!err)
		err = request(s, FLBOOT_MSG_ROLLBACK, NULL, 0);
	if (!err)
		err = reboot_and_wait(s, 0);
	return s ? op_end(s, err) : err;
}

/* ---- update ---------------------------------------------------------------- */

typedef struct update_ctx {
	flasher_session *s;
	const flasher_update_options *uo;
	flasher_update_result *res;
	flasher_progress p;
	/* recent (time, bytes) samples for the rate */
	int64_t t_s[16];
	uint64_t b_s[16];
	unsigned n_s;
	int64_t last_sample;
	/* waiting after the reboot */
	uint32_t want[3];           /* expected version per core (index = core), 0 = not in package */
	int64_t trial_since;
	int loader_answers;
	/* for a cancel: where the unit was, and whether it is past the point of no return */
	int left_app;               /* the update took the unit out of its application */
	int activated;              /* ACTIVATE was sent (or the unit had this pair active already) */
	int outcome;                /* flasher_update_outcome */
} update_ctx;

static int report(update_ctx *u)
{
	if (cancelled(u->s))
		return flasher__error(FLASHER_ECANCELLED, "cancelled by the caller");
	if (u->uo->progress && u->uo->progress(&u->p, u->uo->payload) < 0)
		return flasher__error(FLASHER_ECANCELLED, "cancelled by the progress callback");
	return 0;
}

static int phase(update_ctx *u, flasher_phase ph)
{
	u->p.phase = ph;
	return report(u);
}

static void rate_sample(update_ctx *u)
{
	int64_t now = flasher__now_ms();
	if (u->n_s && now - u->last_sample < 100)
		return;
	unsigned cap = sizeof u->t_s / sizeof u->t_s[0];
	if (u->n_s == cap) {
		memmove(u->t_s, u->t_s + 1, (cap - 1) * sizeof u->t_s[0]);
		memmove(u->b_s, u->b_s + 1, (cap - 1) * sizeof u->b_s[0]);
		u->n_s--;
	}
	u->t_s[u->n_s] = now;
	u->b_s[u->n_s] = u->p.bytes_done;
	u->n_s++;
	u->last_sample = now;
	/* rate over the last ~1.6 s of samples */
	if (u->n_s >= 2 && u->t_s[u->n_s - 1] > u->t_s[0]) {
		double dt = (double)(u->t_s[u->n_s - 1] - u->t_s[0]) / 1000.0;
		u->p.rate = (double)(u->b_s[u->n_s - 1] - u->b_s[0]) / dt;
		u->p.eta_s = u->p.rate > 0 ? (double)(u->p.bytes_total - u->p.bytes_done) / u->p.rate : -1;
	}
}

static const flasher_slot *unit_slot(const flasher_unit_info *info, flasher_core core, int primary)
{
	for (size_t i = 0; i < info->slot_count; i++)
		if (info->slots[i].core == core && info->slots[i].primary == primary)
			return &info->slots[i];
	return NULL;
}

static int check_compat(flasher_session *s, const flasher_package *pkg)
{
	const flasher_unit_info *u = &s->info;
	const char *prod = flasher_package_product(pkg);
	char a[16], b[16];
	if (!prod || strcmp(prod, u->product))
		return flasher__error(FLASHER_EINCOMPATIBLE, "package is for product '%s', unit is '%s'", prod ? prod : "",
		                      u->product);
	size_t nhw = flasher_package_hw_rev_count(pkg);
	if (nhw) {
		size_t i;
		char list[64] = "";
		for (i = 0; i < nhw; i++) {
			const char *hw = flasher_package_hw_rev(pkg, i);
			if (hw && !strcmp(hw, u->hw_rev))
				break;
			size_t l = strlen(list);
			snprintf(list + l, sizeof list - l, "%s'%s'", i ? ", " : "", hw ? hw : "");
		}
		if (i == nhw)
			return flasher__error(FLASHER_EINCOMPATIBLE, "package is for hardware revision %s, unit is '%s'", list,
			                      u->hw_rev);
	}
	uint32_t minbl = flasher_package_min_bootloader(pkg);
	if (minbl > u->bootloader_version) {
		flasher_semver_format(minbl, a, sizeof a);
		flasher_semver_format(u->bootloader_version, b, sizeof b);
		return flasher__error(FLASHER_EINCOMPATIBLE, "package needs bootloader %s or newer, unit has %s", a, b);
	}
	size_t n = flasher_package_image_count(pkg);
	if (!n)
		return flasher__error(FLASHER_EINVAL, "package has no image");
	for (size_t i = 0; i < n; i++) {
		flasher_package_image img;
		int err = flasher_package_image(pkg, i, &img);
		if (err)
			return err;
		if (!u->slot_count)
			continue; /* a unit without a slot table: the unit checks BEGIN itself */
		const flasher_slot *sl = unit_slot(u, img.core, 0);
		if (!sl)
			sl = unit_slot(u, img.core, 1);
		if (!sl)
			return flasher__error(FLASHER_EINCOMPATIBLE, "package has a %s image, unit has no %s slot",
			                      core_name(img.core), core_name(img.core));
		if (sl->size < FLBOOT_IMAGE_HEADER_AREA || img.payload_size > sl->size - FLBOOT_IMAGE_HEADER_AREA)
			return flasher__error(FLASHER_EINCOMPATIBLE,
			                      "%s image is %zu bytes, unit's %s slot holds %u bytes (slot %u minus header area %u)",
			                      core_name(img.core), img.payload_size, core_name(img.core),
			                      sl->size > FLBOOT_IMAGE_HEADER_AREA ? sl->size - FLBOOT_IMAGE_HEADER_AREA : 0,
			                      (unsigned)sl->size, FLBOOT_IMAGE_HEADER_AREA);
	}
	return 0;
}

/* How long to wait for the next DATA answer: the unit's worst case for the
 * frames in flight. A DATA that enters a sector (a blocking erase), or any
 * while the erases BEGIN queued may still run, can wait for the erase on
 * its bank and then its own sector's (HELLO.erase_max_ms); other DATA only
 * programs. */
static int data_wait_ms(const flasher_session *s, uint32_t off, uint32_t end)
{
	int64_t extra = 2 * (int64_t)s->erase_max_ms;
	uint32_t first = (FLBOOT_HEADER_AREA + off) / FLBOOT_SECTOR_SIZE;
	uint32_t last = (FLBOOT_HEADER_AREA + end - 1) / FLBOOT_SECTOR_SIZE;
	int meets_erase = first != last || (FLBOOT_HEADER_AREA + off) % FLBOOT_SECTOR_SIZE == 0 ||
	                  flasher__now_ms() < s->erase_until;

	return end > off && meets_erase ? s->opts.timeout_ms + (int)extra : s->opts.timeout_ms;
}

/* Windowed DATA from resume to the end of the payload. base = bytes of the
 * images before this one (for progress). */
static int send_data(update_ctx *u, const flasher_package_image *img, uint32_t resume, uint32_t max_block,
                     int deflate_ok)
{
	flasher_session *s = u->s;
	const uint32_t size = (uint32_t)img->payload_size;
	const uint64_t base = u->p.bytes_done - resume;
	uint32_t blk = max_block;
	if (s->info.max_payload > sizeof(flboot_data_head) && s->info.max_payload - sizeof(flboot_data_head) < blk)
		blk = s->info.max_payload - (uint32_t)sizeof(flboot_data_head);
	if (blk > FLBOOT_FRAME_MAX_PAYLOAD - sizeof(flboot_data_head))
		blk = FLBOOT_FRAME_MAX_PAYLOAD - (uint32_t)sizeof(flboot_data_head);
	blk &= ~31u;
	if (!blk)
		return flasher__error(FLASHER_EPROTOCOL, "unit allows DATA blocks of %u bytes (max_payload %u), "
		                      "less than one 32-byte flash word", (unsigned)max_block, s->info.max_payload);
	unsigned window = s->info.window ? s->info.window : 1;
	if (window > 64)
		window = 64;
	struct {
		uint16_t seq;
		uint32_t off, len;
	} fl[64];
	unsigned nfl = 0;
	uint8_t frame[FLBOOT_FRAME_MAX_PAYLOAD];
	z_stream z;
	int zok = 0;
	if (deflate_ok) {
		memset(&z, 0, sizeof z);
		zok = deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) == Z_OK;
	}
	uint32_t acked = resume, next = resume;
	uint32_t high = resume; /* end of the highest block sent: below it is a re-send */
	/* frames in flight right now: halved after each loss, grown back by one
	 * per window of ACKs, so a noisy link wastes less on go-back. */
	double cwnd = window;
	/* not below half the window: with fewer frames in flight a lost frame is
	 * no longer followed by one that draws a NAK, and costs a timeout */
	const double cwnd_min = window >= 4 ? window / 2 : 1;
	int64_t last_progress = flasher__now_ms();
	/* without any answer for this long the unit is gone (it may legitimately
	 * take op_timeout_ms for one request, e.g. a sector erase) */
	int64_t give_up = (int64_t)s->req_timeout_ms * (s->opts.retries + 1);
	unsigned naks = 0;
	int err = 0;
	while (acked < size) {
		if (cancelled(s)) {
			err = flasher__error(FLASHER_ECANCELLED, "cancelled by the caller at %s offset %u",
			                     core_name(img->core), (unsigned)acked);
			break;
		}
		while (nfl < (unsigned)cwnd && next < size) {
			uint32_t len = size - next < blk ? size - next : blk;
			flboot_data_head dh = {next, len};
			uint8_t flags = 0;
			size_t plen = len;
			memcpy(frame, &dh, sizeof dh);
			if (zok) {
				deflateReset(&z);
				z.next_in = (Bytef *)(img->payload + next);
				z.avail_in = len;
				z.next_out = frame + sizeof dh;
				z.avail_out = len - 1; /* only worth sending if smaller */
				if (deflate(&z, Z_FINISH) == Z_STREAM_END) {
					plen = z.total_out;
					flags = FLBOOT_FLAG_COMPRESSED;
				}
			}
			if (!flags)
				memcpy(frame + sizeof dh, img->payload + next, len);
			uint16_t seq = flasher__client_next_seq(&s->c);
			if ((err = flasher__client_send(&s->c, FLBOOT_MSG_DATA, seq, flags, frame, sizeof dh + plen)))
				goto out;
			if (next < high)
				s->c.retransmits++;
			else
				high = next + len;
			fl[nfl].seq = seq;
			fl[nfl].off = next;
			fl[nfl].len = len;
			nfl++;
			next += len;
			u->res->sent_bytes += len;
		}
		int got = flasher__client_recv(
			&s->c, flasher__now_ms() + data_wait_ms(s, nfl ? fl[0].off : next, nfl ? fl[nfl - 1].off + fl[nfl - 1].len : next),
			&s->r);
		if (got < 0) {
			err = got;
			break;
		}
		if (!got) {
			s->c.timeouts++;
			/* nothing for a while: either the unit is busy (erase) or frames
			 * were lost at the end of the window; go back to the oldest
			 * unacknowledged block (duplicates are harmless to the unit) */
			if (flasher__now_ms() - last_progress > give_up) {
				err = flasher__error(FLASHER_ETIMEOUT, "no DATA answer for %lld ms at %s offset %u",
				                     (long long)(flasher__now_ms() - last_progress), core_name(img->core),
				                     (unsigned)acked);
				break;
			}
			next = acked;
			nfl = 0;
			cwnd = cwnd / 2 < cwnd_min ? cwnd_min : cwnd / 2;
			continue;
		}
		if (s->r.type != FLBOOT_MSG_DATA)
			continue;
		unsigned idx = nfl;
		for (unsigned i = 0; i < nfl; i++)
			if (fl[i].seq == s->r.seq)
				idx = i;
		if (s->r.status == FLBOOT_OK) {
			/* a cumulative ACK is the unit's truth even for a stale seq */
			if (s->r.detail > size) {
				err = flasher__error(FLASHER_EPROTOCOL, "unit ACKed %s offset %u beyond the payload size %u",
				                     core_name(img->core), (unsigned)s->r.detail, (unsigned)size);
				break;
			}
			last_progress = flasher__now_ms();
			if (idx < nfl) {
				memmove(fl, fl + idx + 1, (nfl - idx - 1) * sizeof fl[0]);
				nfl -= idx + 1;
			}
			if (s->r.detail > acked) {
				acked = s->r.detail;
				naks = 0;
				if (cwnd < window)
					cwnd = cwnd + 1.0 / cwnd > window ? window : cwnd + 1.0 / cwnd;
				while (nfl && fl[0].off + fl[0].len <= acked) {
					memmove(fl, fl + 1, (nfl - 1) * sizeof fl[0]);
					nfl--;
				}
				if (next < acked) {
					next = acked;
					nfl = 0;
				}
				u->p.bytes_done = base + acked;
				rate_sample(u);
				if ((err = report(u)))
					break;
			}
		} else if (idx < nfl && s->r.status == FLBOOT_E_OFFSET) {
			last_progress = flasher__now_ms();
			if (s->r.detail > size) {
				err = flasher__error(FLASHER_EPROTOCOL, "unit expects %s offset %u beyond the payload size %u",
				                     core_name(img->core), (unsigned)s->r.detail, (unsigned)size);
				break;
			}
			if (++naks > 64) {
				err = flasher__error(FLASHER_EPROTOCOL, "unit keeps refusing %s DATA at offset %u", core_name(img->core),
				                     (unsigned)s->r.detail);
				break;
			}
			/* go back to where the unit is; later answers to frames in
			 * flight are stale (their seqs are forgotten) */
			acked = s->r.detail;
			next = acked;
			nfl = 0;
			cwnd = cwnd / 2 < cwnd_min ? cwnd_min : cwnd / 2;
			u->p.bytes_done = base + acked;
		} else if (idx < nfl) {
			err = flasher__device_error(&s->r);
			break;
		}
	}
out:
	if (zok)
		deflateEnd(&z);
	return err;
}

/* The image's staging slot already holds it verified (a resumed update). */
static int already_staged(const flasher_session *s, const flasher_package_image *img)
{
	const flasher_slot *sec = unit_slot(&s->info, img->core, 0);
	flboot_image_header h;
	memcpy(&h, img->header, sizeof h);
	return sec && sec->state == FLBOOT_SLOT_STAGED && sec->payload_crc32 == img->payload_crc32 &&
	       sec->version == h.version;
}

/* PREPARE (units that announce it): the unit erases the staging slots of
 * every image still to send, both banks at once, while the first image is
 * sent, instead of one bank after the other as each BEGIN comes. Units
 * without the feature erase at BEGIN, as before. */
static int prepare_slots(update_ctx *u, const flasher_package *pkg)
{
	flasher_session *s = u->s;
	uint8_t headers[2 * FLBOOT_IMAGE_HEADER_SIZE];
	size_t len = 0, n = flasher_package_image_count(pkg);
	if (!(s->features & FLBOOT_FEAT_PREPARE))
		return 0;
	for (size_t i = 0; i < n && len < sizeof headers; i++) {
		flasher_package_image img;
		int err = flasher_package_image(pkg, i, &img);
		if (!err)
			err = flasher_package_image_for(pkg, img.core, s->stage_addr[img.core == FLASHER_CORE_CM4], &img);
		if (err)
			return err;
		if (already_staged(s, &img))
			continue;
		memcpy(headers + len, img.header, FLBOOT_IMAGE_HEADER_SIZE);
		len += FLBOOT_IMAGE_HEADER_SIZE;
	}
	if (!len)
		return 0;
	int err = request(s, FLBOOT_MSG_PREPARE, headers, len);
	return err ? flasher__error_wrap(err, "preparing the slots") : 0;
}

static int transfer_image(update_ctx *u, const flasher_package_image *img)
{
	flasher_session *s = u->s;
	u->p.core = img->core;
	/* already verified and staged on the unit (e.g. a resumed update)? */
	if (already_staged(s, img)) {
		u->p.bytes_done += img->payload_size;
		u->p.bytes_resumed += img->payload_size;
		u->res->resumed_bytes += img->payload_size;
		return report(u);
	}
	/* the whole stored header area: header, then its signature block */
	int err = request(s, FLBOOT_MSG_BEGIN, img->header_area ? img->header_area : img->header,
	                  img->header_area ? img->header_area_size : FLBOOT_IMAGE_HEADER_SIZE);
	if (err)
		return flasher__error_wrap(err, "%s image", core_name(img->core));
	/* the unit erases the image's sectors from now on (and may still
	 * finish one for the other core) */
	s->erase_until = flasher__now_ms() + (int64_t)s->erase_max_ms * (flasher_package_image_sectors(img, NULL) + 1);
	flboot_begin_resp br;
	if (s->r.body_len < sizeof br)
		return flasher__error(FLASHER_EPROTOCOL, "BEGIN answer has %zu bytes, %zu expected", s->r.body_len, sizeof br);
	memcpy(&br, s->r.body, sizeof br);
	if (br.resume_offset > img->payload_size)
		return flasher__error(FLASHER_EPROTOCOL, "unit resumes %s at %u, beyond its size %zu", core_name(img->core),
		                      (unsigned)br.resume_offset, img->payload_size);
	u->p.bytes_done += br.resume_offset;
	u->p.bytes_resumed += br.resume_offset;
	u->res->resumed_bytes += br.resume_offset;
	if ((err = report(u)))
		return err;
	err = send_data(u, img, br.resume_offset, br.max_block ? br.max_block : 1024,
	                u->uo->compress && (s->features & FLBOOT_FEAT_DEFLATE));
	if (err)
		return err;

	/* the unit reads the image back from flash; we compare with the package */
	u->p.phase = FLASHER_PHASE_VERIFY;
	if ((err = report(u)))
		return err;
	err = request(s, FLBOOT_MSG_END, NULL, 0);
	if (err)
		return flasher__error_wrap(err, "verifying the %s image", core_name(img->core));
	flboot_end_resp er;
	if (s->r.body_len < sizeof er)
		return flasher__error(FLASHER_EPROTOCOL, "END answer has %zu bytes, %zu expected", s->r.body_len, sizeof er);
	memcpy(&er, s->r.body, sizeof er);
	if (er.crc32 != img->payload_crc32)
		return flasher__error(FLASHER_EVERIFY, "%s image on the unit has CRC32 %08x, package says %08x",
		                      core_name(img->core), (unsigned)er.crc32, (unsigned)img->payload_crc32);
	if (memcmp(er.sha256, img->payload_sha256, 32))
		return flasher__error(FLASHER_EVERIFY, "%s image on the unit has another SHA-256 than the package",
		                      core_name(img->core));
	u->p.phase = FLASHER_PHASE_TRANSFER;
	return 0;
}

static void version_text(uint32_t v, char *buf, size_t size)
{
	flasher_semver_format(v, buf, size);
}

/* After activation and reboot: the unit must run the new versions. */
static int judge_updated(flasher_session *s, const flasher_unit_info *info, void *arg)
{
	update_ctx *u = arg;
	char want[16], have[16];
	int match = (!u->want[FLASHER_CORE_CM7] || info->cm7_version == u->want[FLASHER_CORE_CM7]) &&
	            (!u->want[FLASHER_CORE_CM4] || info->cm4_version == u->want[FLASHER_CORE_CM4]);
	uint32_t want_v = u->want[FLASHER_CORE_CM7] ? u->want[FLASHER_CORE_CM7] : u->want[FLASHER_CORE_CM4];
	uint32_t have_v = u->want[FLASHER_CORE_CM7] ? info->cm7_version : info->cm4_version;
	version_text(want_v, want, sizeof want);
	version_text(have_v, have, sizeof have);
	(void)s;
	if (info->state == FLASHER_STATE_ROLLED_BACK)
		return flasher__error(FLASHER_EROLLEDBACK,
		                      "the new firmware %s did not confirm itself; the unit rolled back to %s "
		                      "(%s mode, last boot error %d)", want, have,
		                      info->mode == FLASHER_MODE_APPLICATION ? "application" : "bootloader",
		                      info->last_boot_error);
	if (info->mode == FLASHER_MODE_BOOTLOADER) {
		/* answers before the reset still say PENDING; after it the unit
		 * should have started the application */
		if (info->state == FLASHER_STATE_PENDING) {
			u->loader_answers = 0;
			return 0;
		}
		if (++u->loader_answers >= 10)
			return flasher__error(FLASHER_EDEVICE,
			                      "after activation the unit stays in the bootloader (state %d, last boot error %d, "
			                      "runs %s, expected %s)", info->state, info->last_boot_error, have, want);
		return 0;
	}
	u->loader_answers = 0;
	if (!match)
		return 0; /* still the old firmware (not reset yet) */
	if (info->state == FLASHER_STATE_CONFIRMED)
		return 1;
	if (info->state == FLASHER_STATE_TRIAL) {
		int64_t now = flasher__now_ms();
		if (!u->trial_since)
			u->trial_since = now;
		if (now - u->trial_since > u->uo->wait_confirm_ms)
			return flasher__error(FLASHER_ETIMEOUT,
			                      "the new firmware %s runs on trial but did not confirm itself within %d ms",
			                      want, u->uo->wait_confirm_ms);
	}
	return 0;
}

/* Does the unit's active pair (HELLO: the pending or trial pair too) hold
 * exactly this package: every image's version, and its CRC32 in a slot of
 * that version (for the build linked for that slot)? */
static int unit_has_package(const flasher_session *s, const flasher_package *pkg)
{
	size_t n = flasher_package_image_count(pkg);
	for (size_t i = 0; i < n; i++) {
		flasher_package_image img;
		if (flasher_package_image(pkg, i, &img))
			return 0;
		flboot_image_header h;
		memcpy(&h, img.header, sizeof h);
		uint32_t active = img.core == FLASHER_CORE_CM4 ? s->info.cm4_version : s->info.cm7_version;
		if (active != h.version)
			return 0;
		int crc_ok = !s->info.slot_count; /* no slot table: versions are all we know */
		for (size_t k = 0; k < s->info.slot_count && !crc_ok; k++) {
			const flasher_slot *sl = &s->info.slots[k];
			flasher_package_image built = img;
			if (sl->core != img.core || sl->version != h.version)
				continue;
			if (flasher_package_image_for(pkg, img.core, sl->address, &built))
				built = img;
			crc_ok = sl->payload_crc32 == built.payload_crc32;
		}
		if (!crc_ok)
			return 0;
	}
	return n > 0;
}

/* A unit whose activation is pending or on trial (an update cut after
 * ACTIVATE: power, cable, host). The same package: that update finishes
 * here (reboot if still pending, then wait for the confirmation), reported
 * as done. Another package: refused with FLASHER_ETRIAL, naming the command
 * that resolves it (docs/session.md "Retries"). Returns 1 when handled. */
static int settle_trial(update_ctx *u, const flasher_package *pkg, const char *want, int *err)
{
	flasher_session *s = u->s;
	flasher_boot_state st = s->info.state;
	if (st != FLASHER_STATE_PENDING && st != FLASHER_STATE_TRIAL)
		return 0;
	char have[16];
	flasher_semver_format(s->info.cm7_version ? s->info.cm7_version : s->info.cm4_version, have, sizeof have);
	if (!unit_has_package(s, pkg)) {
		*err = flasher__error(FLASHER_ETRIAL,
		                      st == FLASHER_STATE_TRIAL
		                              ? "the unit runs firmware %s on trial, not yet confirmed; to install %s, first run "
		                                "'flasher confirm %s' (keep %s) or 'flasher rollback %s' (go back), then update again"
		                              : "the unit has firmware %s activated, pending its next boot; to install %s, first run "
		                                "'flasher reboot %s' (start %s on trial) or 'flasher rollback %s' (drop it), then "
		                                "update again",
		                      have, want, s->port, have, s->port);
		return 1;
	}
	/* every byte of this package is on the unit already */
	u->activated = 1;
	u->p.bytes_done = u->p.bytes_resumed = u->p.bytes_total;
	u->res->resumed_bytes = u->res->payload_bytes;
	if (u->uo->no_reboot && st == FLASHER_STATE_PENDING) {
		u->res->after = s->info;
		*err = phase(u, FLASHER_PHASE_DONE);
		return 1;
	}
	if ((*err = phase(u, FLASHER_PHASE_REBOOT)))
		return 1;
	if (st == FLASHER_STATE_PENDING) {
		flboot_reboot_req rr = {FLBOOT_REBOOT_NORMAL};
		*err = request(s, FLBOOT_MSG_REBOOT, &rr, sizeof rr);
		if (*err == FLASHER_ECANCELLED || (*err && !answer_lost(*err))) {
			*err = flasher__error_wrap(*err, "rebooting into the activated firmware");
			return 1;
		}
		if (*err == FLASHER_EDISCONNECTED || *err == FLASHER_EIO)
			close_link(s);
	}
	int64_t deadline = flasher__now_ms() + s->opts.reconnect_timeout_ms + (u->uo->wait_confirm_ms > 0 ? u->uo->wait_confirm_ms : 0);
	if ((*err = wait_unit(s, judge_updated, u, deadline, "waiting for the unit to confirm the new firmware")))
		return 1;
	u->res->after = s->info;
	*err = phase(u, FLASHER_PHASE_DONE);
	return 1;
}

/* The unit's firmware version of core, 0 if none. */
static uint32_t unit_version(const flasher_unit_info *info, flasher_core core)
{
	return core == FLASHER_CORE_CM4 ? info->cm4_version : info->cm7_version;
}

/* Downgrades need allow_older; the version the unit already runs,
 * confirmed, is not written again unless allow_reinstall (*outcome =
 * FLASHER_UPDATE_ALREADY_RUNNING). Compared per core of the package. */
static int check_policy(update_ctx *u, const flasher_package *pkg, int *outcome)
{
	const flasher_unit_info *info = &u->s->info;
	int v2 = u->uo->version >= 2;
	uint32_t want = flasher_package_version(pkg);
	char a[16], b[16];
	int same = 1;
	*outcome = 0;
	for (size_t i = 0; i < flasher_package_image_count(pkg); i++) {
		flasher_package_image img;
		int err = flasher_package_image(pkg, i, &img);
		if (err)
			return err;
		uint32_t have = unit_version(info, img.core);
		if (have > want && !(v2 && u->uo->allow_older)) {
			flasher_semver_format(want, a, sizeof a);
			flasher_semver_format(have, b, sizeof b);
			return flasher__error(FLASHER_EDOWNGRADE,
			                      "package %s is older than the %s firmware %s on the unit; allow a downgrade "
			                      "explicitly (--allow-older)",
			                      a, core_name(img.core), b);
		}
		same &= have == want;
	}
	if (same && info->state == FLASHER_STATE_CONFIRMED && !(v2 && u->uo->allow_reinstall))
		*outcome = FLASHER_UPDATE_ALREADY_RUNNING;
	return 0;
}

static int do_update(update_ctx *u, const flasher_package *pkg)
{
	flasher_session *s = u->s;
	int err;
	if ((err = phase(u, FLASHER_PHASE_CONNECT)) || (err = hello(s, s->opts.timeout_ms, s->opts.retries)))
		return err;
	u->res->old_cm7_version = s->info.cm7_version;
	u->res->old_cm4_version = s->info.cm4_version;
	u->res->new_version = flasher_package_version(pkg);

	/* (1) refuse before the unit writes anything */
	if ((err = phase(u, FLASHER_PHASE_CHECK)) || (err = check_compat(s, pkg)))
		return err;
	size_t n = flasher_package_image_count(pkg);
	uint8_t cores = 0;
	for (size_t i = 0; i < n; i++) {
		flasher_package_image img;
		if ((err = flasher_package_image(pkg, i, &img)))
			return err;
		flboot_image_header h;
		memcpy(&h, img.header, sizeof h);
		u->want[img.core == FLASHER_CORE_CM4 ? FLASHER_CORE_CM4 : FLASHER_CORE_CM7] = h.version;
		cores |= (uint8_t)FLBOOT_CORE_BIT(img.core);
		u->p.bytes_total += img.payload_size;
		u->res->payload_bytes += img.payload_size;
	}

	/* a unit on trial (or pending): finish that update, or refuse another
	 * (a dry run only says which, it reboots nothing) */
	char want[16];
	flasher_semver_format(flasher_package_version(pkg), want, sizeof want);
	int dry = u->uo->version >= 2 && u->uo->dry_run;
	int settling = s->info.state == FLASHER_STATE_PENDING || s->info.state == FLASHER_STATE_TRIAL;
	if (settling && (!dry || !unit_has_package(s, pkg)) && settle_trial(u, pkg, want, &err))
		return err;

	/* (1b) downgrade and reinstall policy, and the dry run's last checks:
	 * still nothing written */
	int outcome = 0;
	if (!settling && (err = check_policy(u, pkg, &outcome)))
		return err;
	if (!outcome && dry)
		outcome = FLASHER_UPDATE_DRY_RUN;
	if (outcome == FLASHER_UPDATE_DRY_RUN) {
		/* the build the unit would get for the slot it stages into */
		for (size_t i = 0; i < n; i++) {
			flasher_package_image img;
			if ((err = flasher_package_image(pkg, i, &img)) ||
			    (err = flasher_package_image_for(pkg, img.core, s->stage_addr[img.core == FLASHER_CORE_CM4], &img)))
				return err;
		}
	}
	if (outcome) {
		u->outcome = outcome;
		u->res->after = s->info;
		return phase(u, FLASHER_PHASE_DONE);
	}

	/* (2) the application cannot receive images: go to the bootloader */
	if (s->info.mode == FLASHER_MODE_APPLICATION) {
		if ((err = phase(u, FLASHER_PHASE_REBOOT)))
			return err;
		u->left_app = 1;
		if ((err = enter_bootloader(s)))
			return err;
		if ((err = check_compat(s, pkg)))
			return err;
	}

	/* (3) + (4) every image, resumed where the unit has durable data */
	if ((err = phase(u, FLASHER_PHASE_TRANSFER)) || (err = prepare_slots(u, pkg)))
		return err;
	for (size_t i = 0; i < n; i++) {
		flasher_package_image img;
		/* images run in place: send the build linked for the slot the
		 * unit stages this core into (HELLO.stage_addr) */
		if ((err = flasher_package_image(pkg, i, &img)) ||
		    (err = flasher_package_image_for(pkg, img.core, s->stage_addr[img.core == FLASHER_CORE_CM4], &img)) ||
		    (err = transfer_image(u, &img)))
			return err;
	}

	/* (5) both cores as one set */
	if ((err = phase(u, FLASHER_PHASE_ACTIVATE)))
		return err;
	flboot_activate_req ar = {cores};
	u->activated = 1; /* from here on the unit may apply the new pair at any boot */
	if ((err = request(s, FLBOOT_MSG_ACTIVATE, &ar, sizeof ar)))
		return flasher__error_wrap(err, "activating");
	if (u->uo->no_reboot) {
		u->res->after = s->info;
		return phase(u, FLASHER_PHASE_DONE);
	}

	/* (6) reboot and wait until the unit runs the new firmware */
	if ((err = phase(u, FLASHER_PHASE_REBOOT)))
		return err;
	flboot_reboot_req rr = {FLBOOT_REBOOT_NORMAL};
	err = request(s, FLBOOT_MSG_REBOOT, &rr, sizeof rr);
	if (err == FLASHER_ECANCELLED || (err && !answer_lost(err)))
		return flasher__error_wrap(err, "rebooting after activation");
	if (err == FLASHER_EDISCONNECTED || err == FLASHER_EIO)
		close_link(s); /* the activation is recorded: any boot of the unit applies it */
	int64_t deadline = flasher__now_ms() + s->opts.reconnect_timeout_ms + (u->uo->wait_confirm_ms > 0 ? u->uo->wait_confirm_ms : 0);
	if ((err = wait_unit(s, judge_updated, u, deadline, "waiting for the unit to run the new firmware")))
		return err;
	u->res->after = s->info;
	return phase(u, FLASHER_PHASE_DONE);
}

static int update_full(flasher_session *s, const flasher_package *pkg, const flasher_update_options *opts,
                       flasher_update_result *result);

int(flasher_session_update)(flasher_session *s, const flasher_package *pkg, const flasher_update_options *opts,
                           flasher_update_result *result)
{
	return flasher_session_update_sized(s, pkg, opts, result, sizeof *result);
}

int flasher_session_update_sized(flasher_session *s, const flasher_package *pkg, const flasher_update_options *opts,
                                 flasher_update_result *caller_result, size_t result_size)
{
	/* Filled in full here, handed out up to the caller's size. */
	flasher_update_result full;
	flasher_update_result *result = caller_result ? &full : NULL;
	if (caller_result && result_size < UPDATE_RESULT_MIN_SIZE)
		return flasher__error(FLASHER_EINVAL, "update: a result struct of %zu bytes, at least %zu expected",
		                      result_size, (size_t)UPDATE_RESULT_MIN_SIZE);
	int err = update_full(s, pkg, opts, result);
	if (caller_result) {
		size_t n = result_size < sizeof full ? result_size : sizeof full;
		full.struct_size = (unsigned)n;
		memcpy(caller_result, &full, n);
	}
	return err;
}

static int judge_application(flasher_session *s, const flasher_unit_info *u, void *arg)
{
	int *loader_answers = arg;
	(void)s;
	if (u->mode == FLASHER_MODE_APPLICATION)
		return 1;
	/* the first answers may come before the reset; then it stays: no application */
	return ++*loader_answers >= 15 ? flasher__error(FLASHER_EDEVICE, "the unit stays in its bootloader") : 0;
}

/* A cancelled update (caller, signal, job.cancel): before activation the
 * staged bytes stay on the unit for a resume, and a unit taken out of its
 * application is sent back to it; after activation nothing is undone. The
 * detail says in one line where the unit is and that re-running resumes. */
static int after_cancel(update_ctx *u, const flasher_package *pkg)
{
	flasher_session *s = u->s;
	char why[200], where[300], ver[16];
	snprintf(why, sizeof why, "%s", flasher_error_last());
	flasher_semver_format(flasher_package_version(pkg), ver, sizeof ver);
	if (u->activated)
		return flasher__error(FLASHER_ECANCELLED,
		                      "%s; firmware %s was already activated: the unit is installing it and runs it from its "
		                      "next boot (the outcome was not awaited; 'flasher info' shows it)", why, ver);
	atomic_store(&s->cancel, 0); /* the way back runs; a second cancel stops it */
	if (u->left_app) {
		flboot_reboot_req rr = {FLBOOT_REBOOT_NORMAL};
		int err = s->t ? request(s, FLBOOT_MSG_REBOOT, &rr, sizeof rr) : FLASHER_EDISCONNECTED;
		if (err == FLASHER_EDISCONNECTED || err == FLASHER_EIO)
			close_link(s);
		int loader_answers = 0;
		int64_t wait = s->opts.reconnect_timeout_ms < 10000 ? s->opts.reconnect_timeout_ms : 10000;
		if (!err || answer_lost(err))
			err = wait_unit(s, judge_application, &loader_answers, flasher__now_ms() + wait,
			                "returning to the application");
		char app[16];
		flasher_semver_format(s->info.cm7_version ? s->info.cm7_version : s->info.cm4_version, app, sizeof app);
		if (!err)
			snprintf(where, sizeof where, "the unit runs its application %s again", app);
		else if (err == FLASHER_ECANCELLED)
			snprintf(where, sizeof where, "the unit was sent back to its application (not awaited)");
		else
			snprintf(where, sizeof where, "the unit stays in its bootloader (back to the application: %s)",
			         flasher_error_last());
	} else if (s->info.mode == FLASHER_MODE_BOOTLOADER) {
		snprintf(where, sizeof where, "the unit stays in its bootloader, where the update found it");
	} else {
		snprintf(where, sizeof where, "the unit runs its application, untouched");
	}
	return flasher__error(FLASHER_ECANCELLED,
	                      "%s: %s; %llu of %llu bytes of %s are staged on it: re-running the same update resumes", why,
	                      where, (unsigned long long)u->p.bytes_done, (unsigned long long)u->p.bytes_total, ver);
}

static int update_full(flasher_session *s, const flasher_package *pkg, const flasher_update_options *opts,
                       flasher_update_result *result)
{
	flasher_update_options def = FLASHER_UPDATE_OPTIONS_INIT;
	flasher_update_result scratch;
	if (!pkg)
		return flasher__error(FLASHER_EINVAL, "update: no package");
	if (opts && (opts->version < 1 || opts->version > FLASHER_UPDATE_OPTIONS_VERSION))
		return flasher__error(FLASHER_EINVAL, "update options: version %u unknown (this library knows %d)",
		                      opts->version, FLASHER_UPDATE_OPTIONS_VERSION);
	update_ctx *u = calloc(1, sizeof *u);
	if (!u)
		return flasher__error(FLASHER_ENOMEM, "update: out of memory");
	u->s = s;
	u->uo = opts ? opts : &def;
	u->res = result ? result : &scratch;
	memset(u->res, 0, sizeof *u->res);
	u->p.eta_s = -1;
	int err = op_begin(s);
	uint64_t wire0 = s ? wire_written(s) : 0;
	uint32_t retx0 = s ? s->c.retransmits : 0, tmo0 = s ? s->c.timeouts : 0;
	if (!err)
		err = do_update(u, pkg);
	if (err == FLASHER_ECANCELLED)
		err = after_cancel(u, pkg);
	if (s) {
		u->res->wire_bytes = wire_written(s) - wire0;
		u->res->retransmits = s->c.retransmits - retx0;
		u->res->timeouts = s->c.timeouts - tmo0;
	}
	u->res->outcome = err ? 0 : u->outcome;
	free(u);
	return s ? op_end(s, err) : err;
}

int flasher__session_status(flasher_session *s, flboot_status *out)
{
	int err = op_begin(s);
	if (!err)
		err = request(s, FLBOOT_MSG_STATUS, NULL, 0);
	if (!err) {
		if (s->r.body_len < sizeof *out)
			err = flasher__error(FLASHER_EPROTOCOL, "STATUS answer has %zu bytes, %zu expected", s->r.body_len,
			                     sizeof *out);
		else
			memcpy(out, s->r.body, sizeof *out);
	}
	return s ? op_end(s, err) : err;
}
