/* The session engine against a scripted fake unit: version refusal, stale
 * answers, retransmission, DATA framing (32-byte multiples, window, raw
 * deflate), verification mismatch, refusal before BEGIN. */
#include <criterion/criterion.h>
#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <zlib.h>

#include "flasher.h"
#include "flboot/crc32.h"
#include "flboot/frame.h"
#include "flboot/image.h"
#include "flboot/proto.h"
#include "flboot/sha256.h"

/* ---- host side transport over a socket ------------------------------------- */

static int sock_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	int fd = *(int *)impl;
	struct pollfd p = {fd, POLLIN, 0};
	int r = poll(&p, 1, timeout_ms);
	if (r <= 0)
		return 0;
	ssize_t n = read(fd, buf, cap);
	return n > 0 ? (int)n : FLASHER_EDISCONNECTED;
}

static int sock_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	(void)timeout_ms;
	int fd = *(int *)impl;
	while (len) {
		ssize_t n = write(fd, buf, len);
		if (n <= 0)
			return FLASHER_EDISCONNECTED;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static void sock_close(void *impl)
{
	close(*(int *)impl);
	free(impl);
}

static const flasher_transport_ops sock_ops = {"test-socket", sock_read, sock_write, NULL, sock_close};

/* ---- the fake unit ------------------------------------------------------------ */

typedef struct fake {
	int fd;
	pthread_t th;
	atomic_int stop;
	/* script */
	uint16_t proto_version;
	int ignore_hellos;       /* do not answer the first N HELLOs */
	int stale_first;         /* answer with a wrong seq first */
	int wrong_crc;
	unsigned window;
	int prepare;             /* announce FLBOOT_FEAT_PREPARE */
	/* state */
	int mode;
	uint32_t cm7, cm4;       /* versions after the reboot */
	flboot_image_header hdr;
	uint8_t *image;
	uint32_t expected;
	uint16_t pend_seq[64];
	uint32_t pend_detail[64];
	int pend_status[64];
	unsigned npend;
	/* observations */
	int hellos, begins, activates, compressed, data_frames;
	int prepares, prepare_cores, prepare_before_begin;
	unsigned max_pending;
	int bad_align, bad_inflate;
} fake;

static void send_resp(fake *f, uint8_t type, uint16_t seq, int status, uint32_t detail, const void *body, size_t len)
{
	uint8_t p[FLBOOT_FRAME_MAX_PAYLOAD], out[FLBOOT_FRAME_MAX_WIRE];
	flboot_resp_head h = {(int16_t)status, 0, detail};
	memcpy(p, &h, sizeof h);
	if (len)
		memcpy(p + sizeof h, body, len);
	size_t n = flboot_frame_encode(type | FLBOOT_MSG_RESPONSE, seq, 0, p, sizeof h + len, out, sizeof out);
	cr_assert_gt(n, 0);
	cr_assert_eq(write(f->fd, out, n), (ssize_t)n);
}

static void flush_data(fake *f)
{
	for (unsigned i = 0; i < f->npend; i++)
		send_resp(f, FLBOOT_MSG_DATA, f->pend_seq[i], f->pend_status[i], f->pend_detail[i], NULL, 0);
	f->npend = 0;
}

static void on_data(fake *f, const flboot_frame *fr)
{
	flboot_data_head dh;
	memcpy(&dh, fr->payload, sizeof dh);
	const uint8_t *bytes = fr->payload + sizeof dh;
	size_t blen = fr->header.length - sizeof dh;
	int status = 0;
	f->data_frames++;
	if (dh.offset % 32 || (dh.raw_length % 32 && dh.offset + dh.raw_length != f->hdr.payload_size))
		f->bad_align++;
	if (dh.offset != f->expected) {
		status = FLBOOT_E_OFFSET;
	} else {
		uint8_t raw[8192];
		size_t rlen = blen;
		if (fr->header.flags & FLBOOT_FLAG_COMPRESSED) {
			f->compressed++;
			z_stream z;
			memset(&z, 0, sizeof z);
			inflateInit2(&z, -15);
			z.next_in = (Bytef *)bytes;
			z.avail_in = (uInt)blen;
			z.next_out = raw;
			z.avail_out = sizeof raw;
			if (inflate(&z, Z_FINISH) != Z_STREAM_END)
				f->bad_inflate++;
			rlen = z.total_out;
			inflateEnd(&z);
			bytes = raw;
		}
		if (rlen != dh.raw_length)
			f->bad_inflate++;
		memcpy(f->image + dh.offset, bytes, dh.raw_length);
		f->expected += dh.raw_length;
	}
	/* answers wait until the host stops sending: count what it keeps in flight */
	f->pend_seq[f->npend] = fr->header.seq;
	f->pend_status[f->npend] = status;
	f->pend_detail[f->npend] = f->expected;
	if (++f->npend > f->max_pending)
		f->max_pending = f->npend;
	if (f->npend == 64)
		flush_data(f);
}

static void on_frame(fake *f, const flboot_frame *fr)
{
	uint8_t type = fr->header.type;
	uint16_t seq = fr->header.seq;
	if (type != FLBOOT_MSG_DATA)
		flush_data(f);
	switch (type) {
	case FLBOOT_MSG_HELLO: {
		if (f->hellos++ < f->ignore_hellos)
			return;
		flboot_hello h;
		memset(&h, 0, sizeof h);
		h.proto_version = f->proto_version;
		h.mode = (uint8_t)f->mode;
		h.boot_state = f->mode == FLBOOT_MODE_APPLICATION ? FLBOOT_STATE_CONFIRMED : FLBOOT_STATE_EMPTY;
		h.bootloader_version = FLBOOT_VERSION(1, 0, 0);
		memcpy(h.serial, "FAKE", 4);
		memcpy(h.product, "demo", 4);
		memcpy(h.hw_rev, "A", 1);
		h.max_payload = 4096 + 8;
		h.window = (uint8_t)f->window;
		h.n_slots = 4;
		h.op_timeout_ms = 100;
		h.features = FLBOOT_FEAT_DEFLATE | FLBOOT_FEAT_RESUME | (f->prepare ? FLBOOT_FEAT_PREPARE : 0);
		h.running_cm7 = f->mode == FLBOOT_MODE_APPLICATION ? f->cm7 : 0;
		h.running_cm4 = f->mode == FLBOOT_MODE_APPLICATION ? f->cm4 : 0;
		for (int i = 0; i < 4; i++) {
			h.slots[i].core = (uint8_t)(i < 2 ? FLBOOT_CORE_CM7 : FLBOOT_CORE_CM4);
			h.slots[i].role = (uint8_t)(i % 2 ? FLBOOT_ROLE_SECONDARY : FLBOOT_ROLE_PRIMARY);
			h.slots[i].size = 0x60000;
		}
		if (f->stale_first)
			send_resp(f, type, (uint16_t)(seq - 1), 0, 0, &h, sizeof h);
		send_resp(f, type, seq, 0, 0, &h, sizeof h);
		return;
	}
	case FLBOOT_MSG_BEGIN: {
		f->begins++;
		memcpy(&f->hdr, fr->payload, sizeof f->hdr);
		f->expected = 0;
		flboot_begin_resp b = {0, 4096};
		send_resp(f, type, seq, 0, 0, &b, sizeof b);
		if (f->hdr.core == FLBOOT_CORE_CM7)
			f->cm7 = f->hdr.version;
		else
			f->cm4 = f->hdr.version;
		return;
	}
	case FLBOOT_MSG_DATA:
		on_data(f, fr);
		return;
	case FLBOOT_MSG_PREPARE:
		f->prepares++;
		if (!f->prepare) {
			send_resp(f, type, seq, FLBOOT_E_UNKNOWN, type, "unknown", 7); /* an older unit */
			return;
		}
		f->prepare_before_begin = f->begins == 0;
		for (size_t i = 0; i + sizeof f->hdr <= fr->header.length; i += sizeof f->hdr) {
			flboot_image_header h;
			memcpy(&h, fr->payload + i, sizeof h);
			f->prepare_cores |= (int)FLBOOT_CORE_BIT(h.core);
		}
		send_resp(f, type, seq, 0, 0, NULL, 0);
		return;
	case FLBOOT_MSG_END: {
		flboot_end_resp e;
		e.crc32 = flboot_crc32(0, f->image, f->hdr.payload_size) ^ (f->wrong_crc ? 1u : 0u);
		flboot_sha256(f->image, f->hdr.payload_size, e.sha256);
		send_resp(f, type, seq, 0, 0, &e, sizeof e);
		return;
	}
	case FLBOOT_MSG_ACTIVATE:
		f->activates++;
		send_resp(f, type, seq, 0, 0, NULL, 0);
		return;
	case FLBOOT_MSG_REBOOT:
		send_resp(f, type, seq, 0, 0, NULL, 0);
		f->mode = FLBOOT_MODE_APPLICATION;
		return;
	default:
		send_resp(f, type, seq, FLBOOT_E_UNKNOWN, type, "unknown", 7);
	}
}

static void *fake_main(void *arg)
{
	fake *f = arg;
	static __thread uint8_t buf[FLBOOT_FRAME_MAX_WIRE];
	flboot_frame_decoder dec;
	flboot_frame_decoder_init(&dec, buf, sizeof buf, FLBOOT_FRAME_MAX_PAYLOAD);
	uint8_t in[8192];
	while (!atomic_load(&f->stop)) {
		struct pollfd p = {f->fd, POLLIN, 0};
		if (poll(&p, 1, 20) <= 0) {
			flush_data(f); /* the host waits: answer what it sent */
			continue;
		}
		ssize_t n = read(f->fd, in, sizeof in);
		if (n <= 0)
			break;
		size_t off = 0;
		while (off < (size_t)n) {
			flboot_frame fr;
			int got = 0;
			off += flboot_frame_decoder_feed(&dec, in + off, (size_t)n - off, &fr, &got);
			if (got)
				on_frame(f, &fr);
		}
	}
	return NULL;
}

static fake *fk;
static flasher_transport *host_t;

static void start_fake(void)
{
	/* every fake unit has uid 0: each test claims it in its own lock dir
	 * (tests run in parallel workers) */
	char locks[64];
	snprintf(locks, sizeof locks, "/tmp/flasher-session-locks-%ld", (long)getpid());
	setenv("FLASHER_LOCK_DIR", locks, 1);
	fk = calloc(1, sizeof *fk);
	fk->image = calloc(1, 0x60000);
	fk->proto_version = FLBOOT_PROTO_VERSION;
	fk->window = 4;
	fk->mode = FLBOOT_MODE_BOOTLOADER;
	int sv[2];
	cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	fk->fd = sv[1];
	int *impl = malloc(sizeof *impl);
	*impl = sv[0];
	cr_assert_eq(flasher_transport_new(&host_t, &sock_ops, impl, "test-socket"), 0);
}

static void run_fake(void)
{
	pthread_create(&fk->th, NULL, fake_main, fk);
}

static void stop_fake(void)
{
	const char *locks = getenv("FLASHER_LOCK_DIR");
	DIR *dir = locks ? opendir(locks) : NULL;
	for (struct dirent *e; dir && (e = readdir(dir));) {
		char path[600];
		snprintf(path, sizeof path, "%s/%s", locks, e->d_name);
		if (e->d_name[0] != '.')
			unlink(path);
	}
	if (dir) {
		closedir(dir);
		rmdir(locks);
	}
	atomic_store(&fk->stop, 1);
	pthread_join(fk->th, NULL);
	close(fk->fd);
	free(fk->image);
	free(fk);
}

static const char *make_pkg(const char *product, size_t cm7, size_t cm4)
{
	static char dir[64], path[128];
	char b7[160], b4[160];
	snprintf(dir, sizeof dir, "/tmp/flasher-session-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
	snprintf(path, sizeof path, "%s/p.pkg", dir);
	snprintf(b7, sizeof b7, "%s/cm7.bin", dir);
	snprintf(b4, sizeof b4, "%s/cm4.bin", dir);
	FILE *f7 = fopen(b7, "wb"), *f4 = fopen(b4, "wb");
	for (size_t i = 0; i < cm7; i++)
		fputc((int)((i / 7) % 13 + (i % 256 == 0 ? rand() : 0)) & 0xFF, f7); /* compressible */
	for (size_t i = 0; i < cm4; i++)
		fputc(rand() & 0xFF, f4); /* not compressible */
	fclose(f7);
	fclose(f4);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = product;
	o.fw_version = "1.2.3";
	o.cm7_file = b7;
	o.cm4_file = b4;
	int err = flasher_package_build(&o, path);
	cr_assert_eq(err, 0, "%s", flasher_error_last());
	remove(b7);
	remove(b4);
	return path;
}

Test(session, refuses_newer_protocol_major, .init = start_fake, .fini = stop_fake)
{
	fk->proto_version = FLBOOT_PROTO_VERSION + 1;
	run_fake();
	flasher_session *s;
	int err = flasher_session_open_transport(&s, host_t, NULL);
	cr_assert_eq(err, FLASHER_EUNSUPPORTED, "%s", flasher_error_name(err));
	cr_assert(strstr(flasher_error_last(), "protocol version 2"), "%s", flasher_error_last());
}

Test(session, ignores_stale_answers_and_retransmits, .init = start_fake, .fini = stop_fake)
{
	fk->ignore_hellos = 1;
	fk->stale_first = 1;
	run_fake();
	flasher_session_options o = FLASHER_SESSION_OPTIONS_INIT;
	o.timeout_ms = 100;
	flasher_session *s;
	int err = flasher_session_open_transport(&s, host_t, &o);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_eq(fk->hellos, 2, "one retransmission");
	flasher_unit_info u;
	cr_assert_eq(flasher_session_info(s, &u), 0);
	cr_assert_str_eq(u.product, "demo");
	cr_assert_eq(u.window, 4);
	cr_assert_eq(u.slot_count, 4);
	flasher_session_close(s);
}

Test(session, gives_up_after_retries, .init = start_fake, .fini = stop_fake)
{
	fk->ignore_hellos = 1000;
	run_fake();
	flasher_session_options o = FLASHER_SESSION_OPTIONS_INIT;
	o.timeout_ms = 50;
	o.retries = 3;
	flasher_session *s;
	int err = flasher_session_open_transport(&s, host_t, &o);
	cr_assert_eq(err, FLASHER_ETIMEOUT);
	cr_assert(strstr(flasher_error_last(), "HELLO"), "%s", flasher_error_last());
	cr_assert_eq(fk->hellos, 4);
}

static void update_with(int wrong_crc, const char *product, int *err_out, flasher_update_result *r)
{
	const char *path = make_pkg(product, 70000, 33333);
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, path), 0);
	fk->wrong_crc = wrong_crc;
	run_fake();
	flasher_session *s;
	cr_assert_eq(flasher_session_open_transport(&s, host_t, NULL), 0, "%s", flasher_error_last());
	*err_out = flasher_session_update(s, pkg, NULL, r);
	flasher_session_close(s);
	flasher_package_free(pkg);
}

Test(session, data_blocks_window_and_deflate, .init = start_fake, .fini = stop_fake, .timeout = 60)
{
	int err;
	flasher_update_result r;
	update_with(0, "demo", &err, &r);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_eq(fk->bad_align, 0, "DATA offsets/lengths off the 32-byte word");
	cr_assert_eq(fk->bad_inflate, 0, "a compressed block does not inflate to raw_length");
	cr_assert_gt(fk->compressed, 0, "compressible cm7 blocks were sent compressed");
	cr_assert_leq(fk->max_pending, fk->window, "host kept %u frames in flight, window %u", fk->max_pending, fk->window);
	cr_assert_geq(fk->max_pending, 2, "the host keeps several frames in flight");
	cr_assert_eq(fk->activates, 1);
	cr_assert_eq(fk->prepares, 0, "no PREPARE to a unit that does not announce it");
	cr_assert_eq(r.payload_bytes, 70000 + 33333);
	cr_assert_eq(r.sent_bytes, r.payload_bytes);
	cr_assert_eq(r.after.cm7_version, FLBOOT_VERSION(1, 2, 3));
}

Test(session, prepares_both_slots_before_begin_when_the_unit_announces_it, .init = start_fake, .fini = stop_fake,
     .timeout = 60)
{
	int err;
	flasher_update_result r;
	fk->prepare = 1;
	update_with(0, "demo", &err, &r);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_eq(fk->prepares, 1);
	cr_assert(fk->prepare_before_begin, "PREPARE comes before the first BEGIN");
	cr_assert_eq(fk->prepare_cores, 3, "both images' headers in PREPARE");
	cr_assert_eq(fk->activates, 1);
}

Test(session, verify_mismatch_is_everify_and_never_activates, .init = start_fake, .fini = stop_fake, .timeout = 60)
{
	int err;
	flasher_update_result r;
	update_with(1, "demo", &err, &r);
	cr_assert_eq(err, FLASHER_EVERIFY, "%s", flasher_error_name(err));
	cr_assert(strstr(flasher_error_last(), "CRC32"), "%s", flasher_error_last());
	cr_assert_eq(fk->activates, 0);
}

Test(session, wrong_product_refused_before_begin, .init = start_fake, .fini = stop_fake, .timeout = 60)
{
	int err;
	flasher_update_result r;
	update_with(0, "other", &err, &r);
	cr_assert_eq(err, FLASHER_EINCOMPATIBLE);
	cr_assert_str_eq(flasher_error_last(), "package is for product 'other', unit is 'demo'");
	cr_assert_eq(fk->begins, 0);
}

/* ---- log callback and versioned structs ----------------------------------- */

struct log_lines {
	int n[4];
	char last[4][512];
};

static void collect_log(flasher_log_level level, const char *message, void *payload)
{
	struct log_lines *l = payload;
	l->n[level]++;
	snprintf(l->last[level], sizeof l->last[level], "%s", message);
}

Test(session, log_callback_reports_retransmissions, .init = start_fake, .fini = stop_fake)
{
	fk->ignore_hellos = 1;
	run_fake();
	struct log_lines l = {0};
	flasher_session_options o = FLASHER_SESSION_OPTIONS_INIT;
	o.timeout_ms = 100;
	o.log = collect_log;
	o.log_payload = &l;
	o.log_level = FLASHER_LOG_WARNING;
	flasher_session *s;
	cr_assert_eq(flasher_session_open_transport(&s, host_t, &o), 0, "%s", flasher_error_last());
	cr_expect_eq(l.n[FLASHER_LOG_WARNING], 1, "one retransmitted HELLO");
	cr_expect(strstr(l.last[FLASHER_LOG_WARNING], "HELLO"), "%s", l.last[FLASHER_LOG_WARNING]);
	cr_expect_eq(l.n[FLASHER_LOG_DEBUG], 0, "debug lines are above the level asked for");
	flasher_session_close(s);
}

Test(session, version_2_options_have_no_log_fields, .init = start_fake, .fini = stop_fake)
{
	run_fake();
	/* A caller built against version 2 has no log fields: whatever lies
	 * behind its struct is never read as a callback. */
	flasher_session_options o = FLASHER_SESSION_OPTIONS_INIT;
	o.version = 2;
	o.log = (flasher_log_cb)(uintptr_t)1; /* would crash if called */
	o.log_level = FLASHER_LOG_DEBUG;
	flasher_session *s;
	cr_assert_eq(flasher_session_open_transport(&s, host_t, &o), 0, "%s", flasher_error_last());
	flasher_unit_info u;
	cr_assert_eq(flasher_session_info(s, &u), 0);
	flasher_session_close(s);
}

Test(session, info_is_versioned_by_struct_size, .init = start_fake, .fini = stop_fake)
{
	run_fake();
	flasher_session *s;
	cr_assert_eq(flasher_session_open_transport(&s, host_t, NULL), 0, "%s", flasher_error_last());
	flasher_unit_info u;
	memset(&u, 0xAA, sizeof u);
	cr_assert_eq(flasher_session_info(s, &u), 0, "%s", flasher_error_last());
	cr_expect_eq(u.struct_size, sizeof u);
	cr_expect(FLASHER_HAS_FIELD(flasher_unit_info, &u, slots));
	/* A newer caller's bigger struct: the library fills what it knows and
	 * says so; the caller's extra bytes stay as they were. */
	struct {
		flasher_unit_info info;
		unsigned char newer[32];
	} big;
	memset(&big, 0x55, sizeof big);
	cr_assert_eq(flasher_session_info_sized(s, &big.info, sizeof big), 0, "%s", flasher_error_last());
	cr_expect_eq(big.info.struct_size, sizeof(flasher_unit_info));
	cr_expect_eq(big.newer[0], 0x55);
	cr_expect_eq(big.newer[31], 0x55);
	cr_expect_str_eq(big.info.product, "demo");
	/* Smaller than any version of the struct: refused, nothing written. */
	memset(&u, 0, sizeof u);
	cr_expect_eq(flasher_session_info_sized(s, &u, offsetof(flasher_unit_info, slots)), FLASHER_EINVAL);
	cr_expect_eq(u.struct_size, 0);
	flasher_session_close(s);
}
