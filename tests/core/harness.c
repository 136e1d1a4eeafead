/* harness.c - see harness.h. */
#include "harness.h"

#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "flboot/crc32.h"
#include "flboot/frame.h"
#include "flboot/sha256.h"
#include "flboot/trust.h"

/* Background erases: an erase started on a bank runs "later": when the
 * core waits for the bank or touches it again (and a reset before that
 * loses it, as a reset aborts an erase on the chip). A non-blocking wait
 * reports the bank busy twice first, so the core's polling path runs. */
static int bank_of_addr(uint32_t addr)
{
	return addr >= FLBOOT_FLASH_BASE + FLBOOT_BANK_SIZE ? 1 : 0;
}
static void record(unit *u, uint8_t kind, uint32_t where, const uint8_t *word)
{
	unit_op *o;
	if (!u->recording || flashsim_cut_happened(u->fs))
		return;
	if (u->ops_len == u->ops_cap) {
		u->ops_cap = u->ops_cap ? 2 * u->ops_cap : 1024;
		u->ops = realloc(u->ops, u->ops_cap * sizeof *u->ops);
		if (!u->ops)
			abort();
	}
	o = &u->ops[u->ops_len++];
	o->kind = kind;
	o->where = where;
	if (word)
		memcpy(o->word, word, sizeof o->word);
}
static int do_erase(unit *u, uint32_t sector)
{
	record(u, UNIT_OP_ERASE, sector, NULL);
	return flashsim_erase(u->fs, sector);
}
static void settle(unit *u, int bank)
{
	if (u->pending[bank]) {
		u->presult[bank] = do_erase(u, (uint32_t)u->pending[bank] - 1u) ? FLBOOT_E_FLASH : 0;
		u->pending[bank] = 0;
	}
}
static int p_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
	unit *u = ctx;
	settle(u, bank_of_addr(addr));
	if (len && bank_of_addr(addr + len - 1u) != bank_of_addr(addr))
		settle(u, 1);
	return flashsim_read(u->fs, addr, buf, len);
}
static int p_erase(void *ctx, uint32_t sector)
{
	unit *u = ctx;
	settle(u, sector >= 8u);
	return do_erase(u, sector);
}
static int p_erase_start(void *ctx, uint32_t sector)
{
	unit *u = ctx;
	int b = sector >= 8u;
	settle(u, b);
	if (flashsim_cut_happened(u->fs))
		return FLBOOT_E_FLASH;
	u->pending[b] = (int)sector + 1;
	u->busy_polls[b] = 2;
	if (u->pending[0] && u->pending[1])
		u->parallel_erases++;
	u->erases_started++;
	return 0;
}
static int p_wait(void *ctx, uint32_t bank, bool block)
{
	unit *u = ctx;
	if (u->pending[bank] && !block && u->busy_polls[bank]-- > 0)
		return 1;
	settle(u, (int)bank);
	return u->presult[bank];
}
static int p_program(void *ctx, uint32_t addr, const uint8_t word[32])
{
	unit *u = ctx;
	settle(u, bank_of_addr(addr));
	record(u, UNIT_OP_PROGRAM, addr, word);
	return flashsim_program(u->fs, addr, word);
}

int unit_apply_op(flashsim *fs, const unit_op *o)
{
	if (o->kind == UNIT_OP_ERASE)
		return flashsim_erase(fs, o->where);
	return flashsim_program(fs, o->where, o->word);
}
static uint32_t p_tread(void *ctx, uint8_t *buf, uint32_t cap)
{
	unit *u = ctx;
	size_t n = u->in_len - u->in_pos;
	if (n > cap)
		n = cap;
	memcpy(buf, u->in + u->in_pos, n);
	u->in_pos += n;
	if (u->in_pos == u->in_len)
		u->in_pos = u->in_len = 0;
	return (uint32_t)n;
}
static void p_twrite(void *ctx, const uint8_t *buf, uint32_t len)
{
	unit *u = ctx;
	if (u->out_len + len > u->out_cap) {
		u->out_cap = (u->out_len + len) * 2;
		u->out = realloc(u->out, u->out_cap);
	}
	memcpy(u->out + u->out_len, buf, len);
	u->out_len += len;
}
static uint32_t p_millis(void *ctx)
{
	(void)ctx;
	return 0;
}
static void p_reset(void *ctx)
{
	((unit *)ctx)->reset_requested = 1;
}
static uint32_t p_flags_get(void *ctx)
{
	return ((unit *)ctx)->flags;
}
static void p_flags_set(void *ctx, uint32_t f)
{
	((unit *)ctx)->flags = f;
}
static void p_identity(void *ctx, flboot_identity *out)
{
	*out = ((unit *)ctx)->id;
}

unit *unit_new(void)
{
	unit *u = calloc(1, sizeof *u);
	if (!u || flashsim_open(&u->fs, NULL))
		abort();
	u->bl = calloc(1, sizeof *u->bl);
	u->port = (flboot_port){
		.ctx = u,
		.flash_read = p_read,
		.flash_erase = p_erase,
		.flash_program = p_program,
		.flash_erase_start = p_erase_start,
		.flash_wait = p_wait,
		.transport_read = p_tread,
		.transport_write = p_twrite,
		.millis = p_millis,
		.reset = p_reset,
		.boot_flags_get = p_flags_get,
		.boot_flags_set = p_flags_set,
		.identity = p_identity,
	};
	memcpy(u->id.uid, "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12);
	strcpy(u->id.serial, "0102030405060708090a0b0c");
	strcpy(u->id.product, "demo");
	strcpy(u->id.hw_rev, "B");
	u->id.bootloader_version = FLBOOT_VERSION(1, 2, 0);
	u->in_cap = 1 << 16;
	u->in = malloc(u->in_cap);
	flboot_frame_decoder_init(&u->dec, u->decbuf, sizeof u->decbuf, FLBOOT_FRAME_MAX_PAYLOAD);
	return u;
}

void unit_install_keys(unit *u, const uint8_t (*keys)[32], uint32_t n)
{
	flboot_keystore ks;
	uint8_t words[((sizeof ks + FLBOOT_FLASH_WORD - 1) / FLBOOT_FLASH_WORD) * FLBOOT_FLASH_WORD];

	flboot_keystore_build(&ks, keys, n, NULL);
	memset(words, 0xFF, sizeof words);
	memcpy(words, &ks, sizeof ks);
	for (uint32_t off = 0; off < sizeof words; off += FLBOOT_FLASH_WORD)
		if (flashsim_program(u->fs, FLBOOT_KEYSTORE_ADDR + off, words + off) != 0)
			abort();
}

void unit_free(unit *u)
{
	if (!u)
		return;
	flashsim_close(u->fs);
	free(u->ops);
	free(u->bl);
	free(u->in);
	free(u->out);
	free(u);
}

int unit_boot(unit *u, flboot_boot_target *t)
{
	flboot_boot_target dummy;
	u->reset_requested = 0;
	u->in_len = u->in_pos = 0;
	u->out_len = u->out_pos = 0;
	u->pending[0] = u->pending[1] = 0; /* a reset aborts a running erase */
	u->presult[0] = u->presult[1] = 0;
	u->port.flash_erase_start = u->blocking_erase ? NULL : p_erase_start;
	u->port.flash_wait = u->blocking_erase ? NULL : p_wait;
	memset(u->bl, 0xA5, sizeof *u->bl); /* nothing may survive a reset */
	flboot_init(u->bl, &u->port);
	return flboot_boot(u->bl, t ? t : &dummy);
}

uint16_t unit_send(unit *u, uint8_t type, uint8_t flags, const void *p, size_t len)
{
	size_t need = FLBOOT_FRAME_MAX_WIRE;
	uint16_t seq = ++u->seq;
	if (u->in_len + need > u->in_cap) {
		u->in_cap = (u->in_len + need) * 2;
		u->in = realloc(u->in, u->in_cap);
	}
	u->in_len += flboot_frame_encode(type, seq, flags, p, len, u->in + u->in_len, u->in_cap - u->in_len);
	return seq;
}

int unit_recv(unit *u)
{
	flboot_frame f;
	flboot_resp_head h;
	int got, idle = 0;

	for (;;) {
		while (u->out_pos < u->out_len) {
			u->out_pos += flboot_frame_decoder_feed(&u->dec, u->out + u->out_pos, u->out_len - u->out_pos,
			                                        &f, &got);
			if (u->out_pos == u->out_len)
				u->out_pos = u->out_len = 0;
			if (!got)
				continue;
			u->resp_type = f.header.type;
			u->resp_seq = f.header.seq;
			if (f.header.length < sizeof h)
				return NO_RESPONSE;
			memcpy(&h, f.payload, sizeof h);
			u->status = h.status;
			u->detail = h.detail;
			u->body_len = f.header.length - (uint32_t)sizeof h;
			memcpy(u->body, f.payload + sizeof h, u->body_len);
			return u->status;
		}
		if (u->reset_requested || flashsim_cut_happened(u->fs))
			return NO_RESPONSE;
		if (u->in_len == 0 && ++idle > 2)
			return NO_RESPONSE;
		flboot_poll(u->bl);
	}
}

int unit_request(unit *u, uint8_t type, uint8_t flags, const void *p, size_t len)
{
	unit_send(u, type, flags, p, len);
	return unit_recv(u);
}

static size_t deflate_raw(const uint8_t *in, size_t n, uint8_t *out, size_t cap)
{
	z_stream z;
	memset(&z, 0, sizeof z);
	if (deflateInit2(&z, 6, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		abort();
	z.next_in = (Bytef *)in;
	z.avail_in = (uInt)n;
	z.next_out = out;
	z.avail_out = (uInt)cap;
	if (deflate(&z, Z_FINISH) != Z_STREAM_END)
		abort();
	n = z.total_out;
	deflateEnd(&z);
	return n;
}

int unit_transfer(unit *u, const image *im, uint32_t block, int compress)
{
	uint8_t buf[FLBOOT_FRAME_MAX_PAYLOAD];
	flboot_begin_resp b;
	flboot_data_head d;
	uint32_t off;
	int rc;

	memcpy(buf, &im->hdr, sizeof im->hdr);
	memcpy(buf + sizeof im->hdr, im->area_tail, im->area_tail_len);
	rc = unit_request(u, FLBOOT_MSG_BEGIN, 0, buf, sizeof im->hdr + im->area_tail_len);
	if (rc)
		return rc;
	memcpy(&b, u->body, sizeof b);
	off = b.resume_offset;
	while (off < im->size) {
		d.offset = off;
		d.raw_length = im->size - off < block ? im->size - off : block;
		memcpy(buf, &d, sizeof d);
		if (compress) {
			size_t n = deflate_raw(im->payload + off, d.raw_length, buf + sizeof d, sizeof buf - sizeof d);
			rc = unit_request(u, FLBOOT_MSG_DATA, FLBOOT_FLAG_COMPRESSED, buf, sizeof d + n);
		} else {
			memcpy(buf + sizeof d, im->payload + off, d.raw_length);
			rc = unit_request(u, FLBOOT_MSG_DATA, 0, buf, sizeof d + d.raw_length);
		}
		if (rc == FLBOOT_E_OFFSET) {
			off = u->detail; /* go back to where the device is */
			continue;
		}
		if (rc)
			return rc;
		off = u->detail;
	}
	return unit_request(u, FLBOOT_MSG_END, 0, NULL, 0);
}

int unit_update(unit *u, const image *cm7, const image *cm4, flboot_boot_target *t)
{
	flboot_activate_req a = { 0 };
	flboot_reboot_req r = { FLBOOT_REBOOT_NORMAL };
	int rc;

	if (cm7 && cm4 && !u->no_prepare) {
		uint8_t hdrs[2 * sizeof cm7->hdr];
		memcpy(hdrs, &cm7->hdr, sizeof cm7->hdr);
		memcpy(hdrs + sizeof cm7->hdr, &cm4->hdr, sizeof cm4->hdr);
		rc = unit_request(u, FLBOOT_MSG_PREPARE, 0, hdrs, sizeof hdrs);
		if (rc)
			return rc;
	}
	if (cm7) {
		rc = unit_transfer(u, cm7, 4096, 0);
		if (rc)
			return rc;
		a.cores |= FLBOOT_CORE_BIT(FLBOOT_CORE_CM7);
	}
	if (cm4) {
		rc = unit_transfer(u, cm4, 4096, 0);
		if (rc)
			return rc;
		a.cores |= FLBOOT_CORE_BIT(FLBOOT_CORE_CM4);
	}
	rc = unit_request(u, FLBOOT_MSG_ACTIVATE, 0, &a, sizeof a);
	if (rc)
		return rc;
	rc = unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, sizeof r);
	if (rc)
		return rc;
	if (!u->reset_requested || flashsim_cut_happened(u->fs))
		return NO_RESPONSE;
	return unit_boot(u, t);
}

int unit_holds(unit *u, uint32_t slot, const image *im)
{
	flboot_image_header h;
	uint8_t *buf = malloc(im->size);
	int ok;

	ok = flashsim_read(u->fs, slot, &h, sizeof h) == 0 && memcmp(&h, &im->hdr, sizeof h) == 0 &&
	     flashsim_read(u->fs, slot + FLBOOT_IMAGE_HEADER_AREA, buf, im->size) == 0 &&
	     memcmp(buf, im->payload, im->size) == 0;
	free(buf);
	return ok;
}

int unit_runs(unit *u, const flboot_boot_target *t, const image *im)
{
	uint32_t entry = im->hdr.core == FLBOOT_CORE_CM7 ? t->cm7_entry : t->cm4_entry;
	uint32_t version = im->hdr.core == FLBOOT_CORE_CM7 ? t->cm7_version : t->cm4_version;
	return entry && version == im->hdr.version && unit_holds(u, entry - FLBOOT_HEADER_AREA, im);
}

void image_link(image *im, uint32_t slot)
{
	im->hdr.load_address = slot ? slot + FLBOOT_HEADER_AREA : 0;
	image_seal(im);
}

void image_seal(image *im)
{
	im->hdr.payload_crc32 = flboot_crc32(0, im->payload, im->size);
	flboot_sha256(im->payload, im->size, im->hdr.payload_sha256);
	im->hdr.header_crc32 = flboot_crc32(0, &im->hdr, offsetof(flboot_image_header, header_crc32));
}

void image_make(image *im, uint8_t core, uint32_t version, uint32_t size, uint32_t seed, int sparse)
{
	uint32_t i, x = seed * 2654435761u + 1u;

	memset(im, 0, sizeof *im);
	im->size = size;
	im->payload = malloc(size);
	for (i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		/* sparse: one programmed word in 16 (sparse = 1) or in sparse
		 * words, and the vector table */
		if (sparse && i >= 64 && (i / 32) % (sparse == 1 ? 16u : (uint32_t)sparse) != 0)
			im->payload[i] = 0xFF;
		else
			im->payload[i] = (uint8_t)(x >> 16);
	}
	im->hdr.magic = FLBOOT_IMAGE_MAGIC;
	im->hdr.header_version = FLBOOT_IMAGE_HEADER_VERSION;
	im->hdr.header_size = FLBOOT_IMAGE_HEADER_SIZE;
	im->hdr.core = core;
	im->hdr.payload_size = size;
	im->hdr.version = version;
	im->hdr.min_bootloader = FLBOOT_VERSION(1, 0, 0);
	strcpy(im->hdr.product, "demo");
	memcpy(im->hdr.set_id, "SETID001", 8);
	im->hdr.load_address = 0; /* runs from either slot */
	image_seal(im);
}

void image_free(image *im)
{
	free(im->payload);
	im->payload = NULL;
}
