/*
 * engine.c - the protocol engine (docs/protocol.md): frame intake, request
 * dispatch, and the receive path (BEGIN/DATA/END) with progressive erase,
 * durable resume and flash-word-exact programming. Also the application
 * agent's subset (HELLO, STATUS, CONFIRM, REBOOT).
 */
#include <string.h>

#include "core.h"
#include "flboot/inflate.h"

#define OP_TIMEOUT_MS 5000u
#define MAX_PAYLOAD (FLBOOT_MAX_BLOCK + sizeof(flboot_data_head))
#define WORD FLBOOT_FLASH_WORD

_Static_assert(MAX_PAYLOAD <= FLBOOT_FRAME_MAX_PAYLOAD, "DATA frame fits the frame limit");
_Static_assert(sizeof(flboot_resp_head) + sizeof(flboot_hello) <= 256u, "response buffer");

typedef struct req {
	const flboot_frame_header *h;
	const uint8_t *p;
	uint32_t len;
} req;

void flboot__engine_start(flboot *bl, uint8_t mode)
{
	bl->mode = mode;
	flboot_frame_decoder_init(&bl->dec, bl->rx, sizeof bl->rx, FLBOOT_FRAME_MAX_PAYLOAD);
}

/* ---- replies ------------------------------------------------------------ */

static void send(flboot *bl, const req *r, uint32_t len)
{
	size_t n = flboot_frame_encode((uint8_t)(r->h->type | FLBOOT_MSG_RESPONSE), r->h->seq, 0, bl->resp, len,
	                               bl->tx, sizeof bl->tx);
	if (n)
		bl->port->transport_write(bl->port->ctx, bl->tx, (uint32_t)n);
}

static void reply(flboot *bl, const req *r, int status, uint32_t detail, const void *body, uint32_t blen)
{
	flboot_resp_head h;

	h.status = (int16_t)status;
	h.rsv = 0;
	h.detail = detail;
	memcpy(bl->resp, &h, sizeof h);
	if (blen)
		memcpy(bl->resp + sizeof h, body, blen);
	send(bl, r, (uint32_t)sizeof h + blen);
}

static void fail(flboot *bl, const req *r, int status, uint32_t detail, const flboot__str *why)
{
	reply(bl, r, status, detail, why->p, why->len);
}

static void fail_s(flboot *bl, const req *r, int status, uint32_t detail, const char *text)
{
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	flboot__s(&why, text);
	fail(bl, r, status, detail, &why);
}

/* ---- HELLO / STATUS ----------------------------------------------------- */

static void slot_info(const flboot_jstate *st, uint8_t core, uint8_t role, flboot_slot_info *o)
{
	const flboot_imgref *ref = NULL;
	uint8_t bit = (uint8_t)FLBOOT_CORE_BIT(core);

	memset(o, 0, sizeof *o);
	o->core = core;
	o->role = role;
	o->size = FLBOOT_SLOT_SIZE;
	if (role == FLBOOT_ROLE_PRIMARY) {
		o->address = FLBOOT_SECTOR_ADDR(flboot__primary_sector(core));
		if (st->active[core - 1].present) {
			ref = &st->active[core - 1];
			o->state = FLBOOT_SLOT_ACTIVE;
		}
	} else {
		o->address = FLBOOT_SECTOR_ADDR(flboot__secondary_sector(core));
		if (st->xfer_core == core) {
			o->state = FLBOOT_SLOT_RECEIVING;
			o->version = st->xfer_hdr.version;
			o->payload_crc32 = st->xfer_hdr.payload_crc32;
		} else if (st->staged_mask & bit) {
			ref = &st->staged[core - 1];
			o->state = FLBOOT_SLOT_STAGED;
		} else if ((st->prev_mask & bit) && st->previous[core - 1].present) {
			ref = &st->previous[core - 1];
			o->state = FLBOOT_SLOT_PREVIOUS;
		}
	}
	if (ref) {
		o->version = ref->version;
		o->payload_crc32 = ref->payload_crc32;
	}
}

static void on_hello(flboot *bl, const req *r)
{
	const flboot_jstate *st = &bl->store.st;
	flboot_hello h;

	/* the application confirms through flboot_app_confirm(port), which
	 * appends to the journal behind the agent's back: re-read it */
	if (bl->mode == FLBOOT_MODE_APPLICATION)
		flboot__journal_load(&bl->store, bl->port);
	memset(&h, 0, sizeof h);
	h.proto_version = FLBOOT_PROTO_VERSION;
	h.proto_minor = FLBOOT_PROTO_MINOR;
	h.mode = bl->mode;
	h.boot_state = flboot__reported_state(st);
	h.bootloader_version = bl->id.bootloader_version;
	memcpy(h.uid, bl->id.uid, sizeof h.uid);
	memcpy(h.serial, bl->id.serial, sizeof h.serial);
	memcpy(h.product, bl->id.product, sizeof h.product);
	memcpy(h.hw_rev, bl->id.hw_rev, sizeof h.hw_rev);
	if (bl->mode == FLBOOT_MODE_BOOTLOADER) {
		h.max_payload = (uint16_t)MAX_PAYLOAD;
		h.window = FLBOOT_WINDOW;
		h.features = FLBOOT_FEAT_DEFLATE | FLBOOT_FEAT_RESUME;
	} else {
		h.max_payload = 64u; /* the agent takes small requests only */
		h.window = 1;
	}
	h.op_timeout_ms = OP_TIMEOUT_MS;
	h.running_cm7 = st->active[0].present ? st->active[0].version : 0;
	h.running_cm4 = st->active[1].present ? st->active[1].version : 0;
	h.trial_boots = st->trial_boots;
	h.last_boot_error = st->last_boot_error ? st->last_boot_error : bl->boot_error;
	h.n_slots = FLBOOT_MAX_SLOTS;
	slot_info(st, FLBOOT_CORE_CM7, FLBOOT_ROLE_PRIMARY, &h.slots[0]);
	slot_info(st, FLBOOT_CORE_CM7, FLBOOT_ROLE_SECONDARY, &h.slots[1]);
	slot_info(st, FLBOOT_CORE_CM4, FLBOOT_ROLE_PRIMARY, &h.slots[2]);
	slot_info(st, FLBOOT_CORE_CM4, FLBOOT_ROLE_SECONDARY, &h.slots[3]);
	reply(bl, r, 0, 0, &h, sizeof h);
}

static void on_status(flboot *bl, const req *r)
{
	const flboot_jstate *st = &bl->store.st;
	const flboot_frame_stats *d = &bl->dec.stats;
	flboot_status s;

	memset(&s, 0, sizeof s);
	s.mode = bl->mode;
	s.boot_state = flboot__reported_state(st);
	s.receiving_core = st->xfer_core;
	s.staged_cores = st->staged_mask;
	if (st->xfer_core) {
		s.received = bl->xfer_live ? bl->xfer_next : st->xfer_progress;
		s.total = st->xfer_hdr.payload_size;
	}
	s.flash_ops = bl->store.flash_ops;
	s.frames_dropped = d->bad_crc + d->bad_length + d->bad_cobs + d->oversized + d->bad_version;
	reply(bl, r, 0, 0, &s, sizeof s);
}

/* ---- receive path ------------------------------------------------------- */

static uint32_t xfer_sectors(const flboot_jstate *st)
{
	return (FLBOOT_IMAGE_HEADER_AREA + st->xfer_hdr.payload_size + FLBOOT_SECTOR_SIZE - 1u) / FLBOOT_SECTOR_SIZE;
}

/* Slot sector holding payload offset off, and the payload offset where a
 * slot sector starts (sector 0 also holds the header area). */
static uint32_t sector_of(uint32_t off)
{
	return (FLBOOT_IMAGE_HEADER_AREA + off) / FLBOOT_SECTOR_SIZE;
}
static uint32_t sector_start(uint32_t k)
{
	return k ? k * FLBOOT_SECTOR_SIZE - FLBOOT_IMAGE_HEADER_AREA : 0;
}
static uint32_t slot_base(const flboot_jstate *st)
{
	return FLBOOT_SECTOR_ADDR(flboot__secondary_sector(st->xfer_core));
}

static int program_header(flboot *bl)
{
	const uint8_t *h = (const uint8_t *)&bl->store.st.xfer_hdr;
	uint32_t i;
	int rc;

	for (i = 0; i < FLBOOT_IMAGE_HEADER_SIZE; i += WORD) {
		rc = flboot__program(&bl->store, slot_base(&bl->store.st) + i, h + i);
		if (rc)
			return rc;
	}
	return 0;
}

/* Make slot sector k of the open transfer erased and journaled as such
 * (skipping the erase when it already reads blank); sector 0 then gets the
 * image header. force: the sector holds a torn word, erase it again. */
static int prepare(flboot *bl, uint32_t k, int force)
{
	flboot_store *s = &bl->store;
	uint8_t b = (uint8_t)k;
	uint32_t sector = flboot__secondary_sector(s->st.xfer_core) + k;
	int rc;

	if (!force && (s->st.xfer_erased & (1u << k)))
		return 0;
	if (s->st.xfer_erased & (1u << k)) {
		/* Unmark first: a cut during the erase must not leave a
		 * half-erased sector that the journal calls erased. */
		rc = flboot__journal_append(s, FLBOOT_J_DIRTY, &b, 1);
		if (rc)
			return rc;
	}
	if (!flboot__is_blank(s, FLBOOT_SECTOR_ADDR(sector), FLBOOT_SECTOR_SIZE)) {
		rc = flboot__erase(s, sector);
		if (rc)
			return rc;
	}
	rc = flboot__journal_append(s, FLBOOT_J_ERASED, &b, 1);
	if (!rc && k == 0)
		rc = program_header(bl);
	return rc;
}

/* Erase ahead: the sector the next byte goes to and the one after it. */
static int erase_ahead(flboot *bl)
{
	uint32_t k, n = xfer_sectors(&bl->store.st);
	int rc;

	if (bl->xfer_next >= bl->store.st.xfer_hdr.payload_size)
		return 0;
	k = sector_of(bl->xfer_next);
	rc = prepare(bl, k, 0);
	if (!rc && k + 1u < n)
		rc = prepare(bl, k + 1u, 0);
	return rc;
}

/* Find the durable offset of the open transfer from flash after a reset:
 * scan from the last progress mark over the sectors journaled as erased;
 * durable data ends after the last programmed word. A torn word costs its
 * sector: it is erased again and the transfer resumes at its start. */
static int resume_scan(flboot *bl)
{
	flboot_store *s = &bl->store;
	flboot_jstate *st = &s->st;
	flboot_image_header hdr;
	uint8_t w[WORD];
	uint32_t total = st->xfer_hdr.payload_size, off, end, k;
	int rc;

	bl->xfer_next = 0;
	/* The header must be in place exactly, or sector 0 starts over. */
	if (!(st->xfer_erased & 1u))
		return prepare(bl, 0, 0);
	if (flboot__read(s, slot_base(st), &hdr, sizeof hdr) || memcmp(&hdr, &st->xfer_hdr, sizeof hdr) != 0) {
		if (flboot__is_blank(s, slot_base(st), sizeof hdr))
			return program_header(bl);
		return prepare(bl, 0, 1);
	}
	off = st->xfer_progress & ~(WORD - 1u);
	end = off;
	for (; off < total; off += WORD) {
		k = sector_of(off);
		if (!(st->xfer_erased & (1u << k)))
			break;
		if (flboot__read(s, slot_base(st) + FLBOOT_IMAGE_HEADER_AREA + off, w, WORD)) {
			rc = prepare(bl, k, 1);
			bl->xfer_next = sector_start(k);
			return rc;
		}
		if (w[0] != 0xFFu || memcmp(w, w + 1, WORD - 1u) != 0)
			end = off + WORD;
	}
	bl->xfer_next = end < total ? end : total;
	if (bl->xfer_next < st->xfer_progress)
		bl->xfer_next = st->xfer_progress;
	return 0;
}

/* Program data at payload offset off (word aligned) word by word. A word
 * already holding the same bytes is skipped (resent data after a resume);
 * a word holding anything else (a torn word) sends its sector back to
 * erased and the transfer back to that sector's start. */
static int write_data(flboot *bl, uint32_t off, const uint8_t *data, uint32_t n)
{
	flboot_store *s = &bl->store;
	flboot_jstate *st = &s->st;
	uint8_t w[WORD], have[WORD];
	uint32_t i, c, k, addr;
	int rc;

	for (i = 0; i < n; i += c) {
		c = n - i < WORD ? n - i : WORD;
		memset(w, 0xFF, sizeof w);
		memcpy(w, data + i, c);
		k = sector_of(off + i);
		rc = prepare(bl, k, 0);
		if (rc)
			return rc;
		addr = slot_base(st) + FLBOOT_IMAGE_HEADER_AREA + off + i;
		if (flboot__read(s, addr, have, WORD) == 0 && memcmp(have, w, WORD) == 0) {
			/* already there */
		} else if (flboot__read(s, addr, have, WORD) == 0 && have[0] == 0xFFu &&
		           memcmp(have, have + 1, WORD - 1u) == 0) {
			if (!(w[0] == 0xFFu && memcmp(w, w + 1, WORD - 1u) == 0)) {
				rc = flboot__program(s, addr, w);
				if (rc)
					return rc;
			}
		} else {
			rc = prepare(bl, k, 1);
			bl->xfer_next = sector_start(k);
			return rc ? rc : FLBOOT_E_OFFSET;
		}
		bl->xfer_next = off + i + c;
		if (sector_of(bl->xfer_next) != k && bl->xfer_next < st->xfer_hdr.payload_size) {
			/* Entered a new sector: bound the resume scan, erase ahead. */
			rc = flboot__journal_append(s, FLBOOT_J_PROGRESS, &bl->xfer_next, 4);
			if (!rc)
				rc = erase_ahead(bl);
			if (rc)
				return rc;
		}
	}
	return 0;
}

static int bytes_eq(const char *a, const char *b, uint32_t n)
{
	uint32_t i;
	for (i = 0; i < n; i++) {
		if (a[i] != b[i])
			return 0;
		if (!a[i])
			break;
	}
	return 1;
}

static const char *core_name(uint8_t core)
{
	return core == FLBOOT_CORE_CM7 ? "cm7" : core == FLBOOT_CORE_CM4 ? "cm4" : "?";
}

/* Every check BEGIN makes before it may touch flash. */
static int check_header(flboot *bl, const flboot_image_header *h, flboot__str *why)
{
	const flboot_identity *id = &bl->id;
	uint32_t i, any = 0, lo, hi;
	int rc;

	rc = flboot__header_ok(h, why);
	if (rc)
		return rc;
	if (h->core != FLBOOT_CORE_CM7 && h->core != FLBOOT_CORE_CM4) {
		flboot__s(why, "image for core ");
		flboot__su(why, h->core);
		flboot__s(why, ", this unit has cores 1 (cm7) and 2 (cm4)");
		return FLBOOT_E_CORE;
	}
	if (h->load_address < FLBOOT_SECTOR_ADDR(FLBOOT_BOOTLOADER_SECTOR + 1u) &&
	    h->load_address + (uint64_t)h->payload_size > FLBOOT_FLASH_BASE) {
		flboot__s(why, "image loads at ");
		flboot__sx(why, h->load_address);
		flboot__s(why, ", inside the bootloader sector");
		return FLBOOT_E_PROTECTED;
	}
	if (h->load_address != flboot__app_addr(h->core)) {
		flboot__s(why, "image loads at ");
		flboot__sx(why, h->load_address);
		flboot__s(why, ", the ");
		flboot__s(why, core_name(h->core));
		flboot__s(why, " slot runs images at ");
		flboot__sx(why, flboot__app_addr(h->core));
		return FLBOOT_E_RANGE;
	}
	lo = 1;
	hi = FLBOOT_SLOT_SIZE - FLBOOT_IMAGE_HEADER_AREA;
	if (h->payload_size < lo || h->payload_size > hi) {
		flboot__s(why, "image payload ");
		flboot__su(why, h->payload_size);
		flboot__s(why, " bytes, the slot holds 1 to ");
		flboot__su(why, hi);
		return FLBOOT_E_RANGE;
	}
	if (!bytes_eq(h->product, id->product, sizeof h->product)) {
		flboot__s(why, "image for product '");
		flboot__sn(why, h->product, sizeof h->product);
		flboot__s(why, "', this unit is '");
		flboot__sn(why, id->product, sizeof id->product);
		flboot__s(why, "'");
		return FLBOOT_E_PRODUCT;
	}
	for (i = 0; i < FLBOOT_IMAGE_MAX_HW_REVS; i++) {
		if (!h->hw_revs[i][0])
			continue;
		any = 1;
		if (bytes_eq(h->hw_revs[i], id->hw_rev, sizeof h->hw_revs[i]))
			break;
	}
	if (any && i == FLBOOT_IMAGE_MAX_HW_REVS) {
		flboot__s(why, "image for hardware revisions");
		for (i = 0; i < FLBOOT_IMAGE_MAX_HW_REVS; i++) {
			if (!h->hw_revs[i][0])
				continue;
			flboot__s(why, " '");
			flboot__sn(why, h->hw_revs[i], sizeof h->hw_revs[i]);
			flboot__s(why, "'");
		}
		flboot__s(why, ", this unit is '");
		flboot__sn(why, id->hw_rev, sizeof id->hw_rev);
		flboot__s(why, "'");
		return FLBOOT_E_HW_REV;
	}
	if (h->min_bootloader > id->bootloader_version) {
		flboot__s(why, "image needs bootloader ");
		flboot__sv(why, h->min_bootloader);
		flboot__s(why, ", this unit has ");
		flboot__sv(why, id->bootloader_version);
		return FLBOOT_E_BL_VERSION;
	}
	return 0;
}

/* A new transfer or activation would overwrite what a pending transition or
 * a running trial needs (the pair a failed trial returns to): refuse both
 * until the unit has rebooted, or the trial is confirmed or rolled back. */
static int refused_while_settling(flboot *bl, const req *r)
{
	const flboot_jstate *st = &bl->store.st;
	if (st->pending || st->revert) {
		fail_s(bl, r, FLBOOT_E_STATE, 0, "an activation or rollback is pending; reboot first");
		return 1;
	}
	if (st->boot_state == FLBOOT_STATE_TRIAL) {
		fail_s(bl, r, FLBOOT_E_STATE, 0, "a trial is running; confirm or roll back first");
		return 1;
	}
	return 0;
}

static void on_begin(flboot *bl, const req *r)
{
	flboot_store *s = &bl->store;
	flboot_jstate *st = &s->st;
	flboot_image_header h;
	flboot_begin_resp b;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	int rc;

	if (r->len != sizeof h) {
		flboot__s(&why, "BEGIN carries the 128-byte image header, got ");
		flboot__su(&why, r->len);
		flboot__s(&why, " bytes");
		fail(bl, r, FLBOOT_E_FRAME, r->len, &why);
		return;
	}
	memcpy(&h, r->p, sizeof h);
	rc = check_header(bl, &h, &why);
	if (rc) {
		fail(bl, r, rc, 0, &why);
		return;
	}
	if (refused_while_settling(bl, r))
		return;
	if ((st->staged_mask & FLBOOT_CORE_BIT(h.core)) && st->staged[h.core - 1].header_crc32 == h.header_crc32) {
		/* Already received and verified: nothing left to send. */
		bl->xfer_live = 2;
		bl->xfer_next = h.payload_size;
		rc = 0;
	} else if (st->xfer_core == h.core && memcmp(&st->xfer_hdr, &h, sizeof h) == 0) {
		bl->xfer_live = 1;
		rc = resume_scan(bl);
		if (!rc)
			rc = erase_ahead(bl);
	} else {
		bl->xfer_live = 0;
		rc = flboot__journal_append(s, FLBOOT_J_BEGIN, &h, sizeof h);
		if (!rc) {
			bl->xfer_live = 1;
			bl->xfer_next = 0;
			rc = erase_ahead(bl);
		}
	}
	if (rc) {
		bl->xfer_live = 0;
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "flash erase/program failed while preparing the slot");
		return;
	}
	b.resume_offset = bl->xfer_next;
	b.max_block = FLBOOT_MAX_BLOCK;
	reply(bl, r, 0, 0, &b, sizeof b);
}

static void on_data(flboot *bl, const req *r)
{
	flboot_jstate *st = &bl->store.st;
	flboot_data_head d;
	const uint8_t *data;
	uint32_t total, exp = bl->xfer_next, skip;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	long got;
	int rc;

	if (!bl->xfer_live) {
		fail_s(bl, r, FLBOOT_E_STATE, 0, "no transfer open; send BEGIN (it resumes)");
		return;
	}
	if (r->len > MAX_PAYLOAD) {
		fail_s(bl, r, FLBOOT_E_TOO_LARGE, exp, "DATA payload above the announced maximum");
		return;
	}
	if (r->len < sizeof d) {
		fail_s(bl, r, FLBOOT_E_FRAME, exp, "DATA shorter than its 8-byte head");
		return;
	}
	memcpy(&d, r->p, sizeof d);
	total = bl->xfer_live == 2 ? exp : st->xfer_hdr.payload_size;
	if (d.offset > exp) {
		flboot__s(&why, "DATA at ");
		flboot__su(&why, d.offset);
		flboot__s(&why, ", expected ");
		flboot__su(&why, exp);
		fail(bl, r, FLBOOT_E_OFFSET, exp, &why);
		return;
	}
	if (d.raw_length == 0 || d.raw_length > FLBOOT_MAX_BLOCK) {
		fail_s(bl, r, FLBOOT_E_TOO_LARGE, exp, "DATA raw_length must be 1..max_block");
		return;
	}
	if (d.offset % WORD || (d.raw_length % WORD && d.offset + d.raw_length != total)) {
		fail_s(bl, r, FLBOOT_E_ALIGN, exp, "DATA offset/length not a multiple of 32 before the last block");
		return;
	}
	if (d.offset + d.raw_length > total) {
		fail_s(bl, r, FLBOOT_E_RANGE, exp, "DATA beyond the image's payload size");
		return;
	}
	if (d.offset + d.raw_length <= exp) {
		reply(bl, r, 0, exp, NULL, 0); /* duplicate: already durable */
		return;
	}
	if (r->h->flags & FLBOOT_FLAG_COMPRESSED) {
		got = flboot_inflate(r->p + sizeof d, r->len - sizeof d, bl->block, sizeof bl->block);
		if (got != (long)d.raw_length) {
			fail_s(bl, r, FLBOOT_E_DECOMPRESS, exp, "compressed DATA does not inflate to raw_length");
			return;
		}
		data = bl->block;
	} else {
		if (r->len - sizeof d != d.raw_length) {
			fail_s(bl, r, FLBOOT_E_FRAME, exp, "DATA byte count differs from raw_length");
			return;
		}
		data = r->p + sizeof d;
	}
	skip = exp - d.offset;
	rc = write_data(bl, exp, data + skip, d.raw_length - skip);
	if (rc == FLBOOT_E_OFFSET) {
		fail_s(bl, r, FLBOOT_E_OFFSET, bl->xfer_next, "torn flash word found; its sector was erased again");
		return;
	}
	if (rc) {
		bl->xfer_live = 0;
		fail_s(bl, r, FLBOOT_E_FLASH, exp, "flash program failed; send BEGIN to resume");
		return;
	}
	reply(bl, r, 0, bl->xfer_next, NULL, 0);
}

static void on_end(flboot *bl, const req *r)
{
	flboot_store *s = &bl->store;
	flboot_jstate *st = &s->st;
	flboot_image_header h;
	flboot_end_resp e;
	flboot_imgref ref;
	uint8_t body[1 + sizeof ref];
	uint8_t core;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint32_t base, crc = 0;
	uint8_t sha[32] = { 0 };
	int rc;

	if (!bl->xfer_live) {
		fail_s(bl, r, FLBOOT_E_STATE, 0, "no transfer open; send BEGIN (it resumes)");
		return;
	}
	if (bl->xfer_live == 1 && bl->xfer_next != st->xfer_hdr.payload_size) {
		flboot__s(&why, "transfer incomplete: ");
		flboot__su(&why, bl->xfer_next);
		flboot__s(&why, " of ");
		flboot__su(&why, st->xfer_hdr.payload_size);
		flboot__s(&why, " bytes");
		fail(bl, r, FLBOOT_E_STATE, bl->xfer_next, &why);
		return;
	}
	/* Verified from flash, never from what we think we wrote. */
	if (bl->xfer_live == 1) {
		core = st->xfer_core;
		h = st->xfer_hdr;
	} else {
		for (core = FLBOOT_CORE_CM7; core <= FLBOOT_CORE_CM4; core++)
			if ((st->staged_mask & FLBOOT_CORE_BIT(core)) && st->staged[core - 1].payload_size == bl->xfer_next)
				break;
		base = FLBOOT_SECTOR_ADDR(flboot__secondary_sector(core > 2 ? 1 : core));
		if (core > 2 || flboot__read(s, base, &h, sizeof h)) {
			fail_s(bl, r, FLBOOT_E_STATE, 0, "no transfer open; send BEGIN");
			return;
		}
	}
	base = FLBOOT_SECTOR_ADDR(flboot__secondary_sector(core));
	ref.version = h.version;
	ref.payload_size = h.payload_size;
	ref.payload_crc32 = h.payload_crc32;
	ref.header_crc32 = h.header_crc32;
	ref.present = 1;
	memset(ref.rsv, 0, sizeof ref.rsv);
	rc = flboot__verify_slot_hash(s, core, flboot__secondary_sector(core), &ref, bl->block, sizeof bl->block,
	                              &why, &crc, sha);
	e.crc32 = crc;
	memcpy(e.sha256, sha, sizeof sha);
	if (rc) {
		/* Bad content cannot be resumed into shape: start over. */
		if (bl->xfer_live == 1)
			flboot__journal_append(s, FLBOOT_J_ABORT, NULL, 0);
		bl->xfer_live = 0;
		fail(bl, r, rc, rc == FLBOOT_E_CRC ? crc : 0, &why);
		return;
	}
	if (bl->xfer_live == 1) {
		body[0] = core;
		memcpy(body + 1, &ref, sizeof ref);
		if (flboot__journal_append(s, FLBOOT_J_STAGED, body, sizeof body)) {
			bl->xfer_live = 0;
			fail_s(bl, r, FLBOOT_E_FLASH, 0, "journal write failed");
			return;
		}
	}
	bl->xfer_live = 0;
	reply(bl, r, 0, 0, &e, sizeof e);
}

static void on_abort(flboot *bl, const req *r)
{
	bl->xfer_live = 0;
	if (bl->store.st.xfer_core && flboot__journal_append(&bl->store, FLBOOT_J_ABORT, NULL, 0)) {
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "journal write failed");
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

/* ---- activation, trial, reboot --------------------------------------------- */

static void on_activate(flboot *bl, const req *r)
{
	flboot_jstate *st = &bl->store.st;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint8_t cores, missing;

	if (r->len != sizeof(flboot_activate_req)) {
		fail_s(bl, r, FLBOOT_E_FRAME, r->len, "ACTIVATE carries one byte (cores mask)");
		return;
	}
	cores = r->p[0];
	if (!cores || (cores & ~3u)) {
		fail_s(bl, r, FLBOOT_E_CORE, cores, "cores mask must be 1 (cm7), 2 (cm4) or 3");
		return;
	}
	if (st->pending == cores) {
		reply(bl, r, 0, 0, NULL, 0); /* repeated request */
		return;
	}
	if (refused_while_settling(bl, r))
		return;
	missing = (uint8_t)(cores & ~st->staged_mask);
	if (missing) {
		flboot__s(&why, "no verified staged image for");
		if (missing & 1u)
			flboot__s(&why, " cm7");
		if (missing & 2u)
			flboot__s(&why, " cm4");
		fail(bl, r, FLBOOT_E_NOT_STAGED, missing, &why);
		return;
	}
	if (flboot__journal_append(&bl->store, FLBOOT_J_ACTIVATE, &cores, 1)) {
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "journal write failed");
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

static void on_confirm(flboot *bl, const req *r)
{
	flboot_jstate *st = &bl->store.st;

	if (st->boot_state == FLBOOT_STATE_CONFIRMED && !st->pending && !st->revert) {
		reply(bl, r, 0, 0, NULL, 0);
		return;
	}
	if (st->boot_state != FLBOOT_STATE_TRIAL || st->revert) {
		fail_s(bl, r, FLBOOT_E_STATE, st->boot_state, "nothing on trial to confirm");
		return;
	}
	if (flboot__journal_append(&bl->store, FLBOOT_J_CONFIRM, NULL, 0)) {
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "journal write failed");
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

static void on_rollback(flboot *bl, const req *r)
{
	flboot_jstate *st = &bl->store.st;
	uint8_t body[3] = { 0, 0, 0 };
	uint32_t i, have = 0;

	if (st->revert) {
		reply(bl, r, 0, 0, NULL, 0);
		return;
	}
	if (st->pending) {
		fail_s(bl, r, FLBOOT_E_STATE, 0, "an activation is pending; reboot first");
		return;
	}
	for (i = 0; i < 2; i++)
		if ((st->prev_mask & (1u << i)) && st->previous[i].present)
			have = 1;
	if (!have) {
		fail_s(bl, r, FLBOOT_E_NO_ROLLBACK, 0, "no previous pair kept on this unit");
		return;
	}
	body[0] = st->prev_mask;
	if (flboot__journal_append(&bl->store, FLBOOT_J_REVERT, body, sizeof body)) {
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "journal write failed");
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

static void on_reboot(flboot *bl, const req *r)
{
	uint8_t mode = r->len ? r->p[0] : FLBOOT_REBOOT_NORMAL;
	uint32_t flags;

	if (mode != FLBOOT_REBOOT_NORMAL && mode != FLBOOT_REBOOT_BOOTLOADER) {
		fail_s(bl, r, FLBOOT_E_FRAME, mode, "REBOOT mode must be 0 (normal) or 1 (bootloader)");
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
	flags = bl->port->boot_flags_get(bl->port->ctx);
	if (mode == FLBOOT_REBOOT_BOOTLOADER)
		flags |= FLBOOT_BOOTFLAG_STAY;
	else
		flags &= ~FLBOOT_BOOTFLAG_STAY;
	bl->port->boot_flags_set(bl->port->ctx, flags);
	bl->halted = 1;
	bl->port->reset(bl->port->ctx);
}

/* ---- dispatch ----------------------------------------------------------- */

static void dispatch(flboot *bl, const req *r)
{
	uint8_t t = r->h->type;

	if (t & FLBOOT_MSG_RESPONSE)
		return; /* never answer an answer */
	if (bl->mode == FLBOOT_MODE_APPLICATION) {
		/* The application may have confirmed itself through
		 * flboot_app_confirm() meanwhile: answer from the journal. */
		uint32_t ops = bl->store.flash_ops;
		flboot__journal_load(&bl->store, bl->port);
		bl->store.flash_ops = ops;
		switch (t) {
		case FLBOOT_MSG_HELLO: on_hello(bl, r); return;
		case FLBOOT_MSG_STATUS: on_status(bl, r); return;
		case FLBOOT_MSG_CONFIRM: on_confirm(bl, r); return;
		case FLBOOT_MSG_REBOOT: on_reboot(bl, r); return;
		case FLBOOT_MSG_LOG: case FLBOOT_MSG_BEGIN: case FLBOOT_MSG_DATA: case FLBOOT_MSG_END:
		case FLBOOT_MSG_ABORT: case FLBOOT_MSG_ACTIVATE: case FLBOOT_MSG_ROLLBACK:
			fail_s(bl, r, FLBOOT_E_MODE, 0, "in application mode; reboot to the bootloader first");
			return;
		default: break;
		}
	} else {
		switch (t) {
		case FLBOOT_MSG_HELLO: on_hello(bl, r); return;
		case FLBOOT_MSG_STATUS: on_status(bl, r); return;
		case FLBOOT_MSG_LOG: reply(bl, r, 0, 0, NULL, 0); return;
		case FLBOOT_MSG_BEGIN: on_begin(bl, r); return;
		case FLBOOT_MSG_DATA: on_data(bl, r); return;
		case FLBOOT_MSG_END: on_end(bl, r); return;
		case FLBOOT_MSG_ABORT: on_abort(bl, r); return;
		case FLBOOT_MSG_ACTIVATE: on_activate(bl, r); return;
		case FLBOOT_MSG_CONFIRM: on_confirm(bl, r); return;
		case FLBOOT_MSG_ROLLBACK: on_rollback(bl, r); return;
		case FLBOOT_MSG_REBOOT: on_reboot(bl, r); return;
		default: break;
		}
	}
	fail_s(bl, r, FLBOOT_E_UNKNOWN, t, "unknown message type");
}

void flboot_poll(flboot *bl)
{
	uint8_t chunk[512];
	uint32_t n, off = 0;
	flboot_frame f;
	req r;
	int got;

	if (bl->halted)
		return;
	if (!bl->store.loaded)
		flboot__journal_load(&bl->store, bl->port);
	n = bl->port->transport_read(bl->port->ctx, chunk, sizeof chunk);
	while (off < n && !bl->halted) {
		off += (uint32_t)flboot_frame_decoder_feed(&bl->dec, chunk + off, n - off, &f, &got);
		if (!got)
			continue;
		r.h = &f.header;
		r.p = f.payload;
		r.len = f.header.length;
		dispatch(bl, &r);
	}
}

/* ---- application side ---------------------------------------------------- */

void flboot_app_init(flboot *bl, const flboot_port *port)
{
	memset(bl, 0, sizeof *bl);
	bl->port = port;
	port->identity(port->ctx, &bl->id);
	flboot__journal_load(&bl->store, port);
	flboot__engine_start(bl, FLBOOT_MODE_APPLICATION);
}

void flboot_app_poll(flboot *bl)
{
	flboot_poll(bl);
}

int flboot_app_confirm(const flboot_port *port)
{
	flboot_store s;

	flboot__journal_load(&s, port);
	if (s.st.boot_state == FLBOOT_STATE_CONFIRMED)
		return 0;
	if (s.st.boot_state != FLBOOT_STATE_TRIAL || s.st.revert)
		return FLBOOT_E_STATE;
	return flboot__journal_append(&s, FLBOOT_J_CONFIRM, NULL, 0);
}
