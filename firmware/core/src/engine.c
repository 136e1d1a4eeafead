/*
 * engine.c - the protocol engine (docs/protocol.md): frame intake, request
 * dispatch, the receive path (PREPARE/BEGIN/DATA/END) with background
 * erases on both banks, durable resume and flash-word-exact programming
 * into the slot the image will run from, and the pair transitions
 * (ACTIVATE, CONFIRM, ROLLBACK) as one-word records in slot trailers. Also
 * the application agent's subset (HELLO, STATUS, CONFIRM, REBOOT).
 */
#include <string.h>

#include "core.h"
#include "flboot/inflate.h"

#define OP_TIMEOUT_MS 5000u
#define MAX_PAYLOAD (FLBOOT_MAX_BLOCK + sizeof(flboot_data_head))
#define WORD FLBOOT_FLASH_WORD
#define PROGRESS_STEP 0x4000u /* a progress mark per 16 KiB: resume re-sends less than a window */

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

/* A flash operation failed while staging. When it was an erase, say which
 * sector: a sector that will not erase any more is the end of the flash's
 * life (or damage), not a transfer problem a retry would fix. */
static void fail_flash(flboot *bl, const req *r, uint32_t detail, const char *text)
{
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	if (bl->store.erase_failed) {
		flboot__s(&why, "flash sector ");
		flboot__su(&why, bl->store.erase_failed - 1u);
		flboot__s(&why, " will not erase (worn out or damaged); the running firmware is kept");
	} else {
		flboot__s(&why, text);
	}
	fail(bl, r, FLBOOT_E_FLASH, detail, &why);
}

/* ---- state ------------------------------------------------------------- */

static void derive(flboot *bl)
{
	flboot__derive(&bl->store, &bl->view);
}

static const flboot_slotv *lead_of(const flboot_view *v)
{
	return v->active.lead_core < 0 ? NULL : &v->slot[v->active.lead_core][v->active.lead_slot];
}

/* What a slot holds, as HELLO reports it. */
static uint8_t slot_state(const flboot *bl, uint8_t core, uint8_t sl)
{
	const flboot_view *v = &bl->view;
	const flboot_slotv *sv = &v->slot[core - 1][sl];
	const flboot_stage *g = &bl->store.stage[core - 1];

	if (v->active.at[core - 1] == (int8_t)sl)
		return FLBOOT_SLOT_ACTIVE;
	if (v->prev.at[core - 1] == (int8_t)sl)
		return FLBOOT_SLOT_PREVIOUS;
	if (g->on && g->slot == sl && !(sv->hdr_ok && sv->verified && sv->hdr.header_crc32 == g->header_crc32))
		return FLBOOT_SLOT_RECEIVING;
	if (sv->hdr_ok && sv->verified && !sv->act)
		return FLBOOT_SLOT_STAGED;
	return FLBOOT_SLOT_EMPTY;
}

static uint8_t staged_mask(const flboot *bl)
{
	uint8_t c, m = 0;
	for (c = FLBOOT_CORE_CM7; c <= FLBOOT_CORE_CM4; c++)
		if (slot_state(bl, c, flboot__stage_slot(&bl->store, &bl->view, c)) == FLBOOT_SLOT_STAGED)
			m |= (uint8_t)FLBOOT_CORE_BIT(c);
	return m;
}

/* ---- HELLO / STATUS ----------------------------------------------------- */

static void slot_info(const flboot *bl, uint8_t core, uint8_t sl, flboot_slot_info *o)
{
	const flboot_slotv *sv = &bl->view.slot[core - 1][sl];

	memset(o, 0, sizeof *o);
	o->core = core;
	o->role = sl == flboot__stage_slot(&bl->store, &bl->view, core) ? FLBOOT_ROLE_SECONDARY : FLBOOT_ROLE_PRIMARY;
	o->state = slot_state(bl, core, sl);
	o->address = flboot__slot_addr(core, sl);
	o->size = FLBOOT_CORE_SLOT_SIZE(core);
	if (o->state != FLBOOT_SLOT_EMPTY && sv->hdr_ok) {
		o->version = sv->hdr.version;
		o->payload_crc32 = sv->hdr.payload_crc32;
	}
}

static void on_hello(flboot *bl, const req *r)
{
	const flboot_view *v = &bl->view;
	const flboot_slotv *lead = lead_of(v);
	flboot_hello h;
	uint8_t c;

	memset(&h, 0, sizeof h);
	h.proto_version = FLBOOT_PROTO_VERSION;
	h.proto_minor = FLBOOT_PROTO_MINOR;
	h.mode = bl->mode;
	h.boot_state = flboot__state(v);
	h.bootloader_version = bl->id.bootloader_version;
	memcpy(h.uid, bl->id.uid, sizeof h.uid);
	memcpy(h.serial, bl->id.serial, sizeof h.serial);
	memcpy(h.product, bl->id.product, sizeof h.product);
	memcpy(h.hw_rev, bl->id.hw_rev, sizeof h.hw_rev);
	if (bl->mode == FLBOOT_MODE_BOOTLOADER) {
		h.max_payload = (uint16_t)MAX_PAYLOAD;
		h.window = FLBOOT_WINDOW;
		h.features = FLBOOT_FEAT_DEFLATE | FLBOOT_FEAT_RESUME | FLBOOT_FEAT_PREPARE;
	} else {
		h.max_payload = 64u; /* the agent takes small requests only */
		h.window = 1;
	}
	h.op_timeout_ms = OP_TIMEOUT_MS;
	if (bl->mode == FLBOOT_MODE_BOOTLOADER)
		h.erase_max_ms = FLBOOT_ERASE_MAX_MS;
	if (v->active.at[0] >= 0)
		h.running_cm7 = v->slot[0][v->active.at[0]].hdr.version;
	if (v->active.at[1] >= 0)
		h.running_cm4 = v->slot[1][v->active.at[1]].hdr.version;
	h.trial_boots = lead && !lead->confirmed ? lead->boots : 0;
	h.last_boot_error = bl->boot_error;
	if (!h.last_boot_error && v->gone_core >= 0)
		h.last_boot_error = v->slot[v->gone_core][v->gone_slot].revert_reason;
	h.n_slots = FLBOOT_MAX_SLOTS;
	for (c = 0; c < 4; c++)
		slot_info(bl, (uint8_t)(c / 2u + 1u), (uint8_t)(c % 2u), &h.slots[c]);
	for (c = FLBOOT_CORE_CM7; c <= FLBOOT_CORE_CM4; c++)
		h.stage_addr[c - 1] = flboot__slot_addr(c, flboot__stage_slot(&bl->store, v, c));
	reply(bl, r, 0, 0, &h, sizeof h);
}

static void on_status(flboot *bl, const req *r)
{
	const flboot_frame_stats *d = &bl->dec.stats;
	const flboot_stage *g;
	flboot_status s;
	uint8_t c;

	memset(&s, 0, sizeof s);
	s.mode = bl->mode;
	s.boot_state = flboot__state(&bl->view);
	if (bl->xfer_live == 1) {
		s.receiving_core = bl->xfer_core;
		s.received = bl->xfer_next;
		s.total = bl->store.stage[bl->xfer_core - 1].payload_size;
	} else {
		for (c = FLBOOT_CORE_CM7; c <= FLBOOT_CORE_CM4; c++) {
			g = &bl->store.stage[c - 1];
			if (slot_state(bl, c, g->slot) == FLBOOT_SLOT_RECEIVING && g->on) {
				s.receiving_core = c;
				s.received = g->progress;
				s.total = g->payload_size;
			}
		}
	}
	s.staged_cores = staged_mask(bl);
	s.flash_ops = bl->store.flash_ops;
	s.frames_dropped = d->bad_crc + d->bad_length + d->bad_cobs + d->oversized + d->bad_version;
	reply(bl, r, 0, 0, &s, sizeof s);
}

/* ---- receive path ------------------------------------------------------- */

/* Slot sector holding payload offset off, and the payload offset where a
 * slot sector starts (sector 0 also holds the header area). */
static uint32_t sector_of(uint32_t off)
{
	return (FLBOOT_HEADER_AREA + off) / FLBOOT_SECTOR_SIZE;
}
static uint32_t sector_start(uint32_t k)
{
	return k ? k * FLBOOT_SECTOR_SIZE - FLBOOT_HEADER_AREA : 0;
}

static flboot_stage *live_stage(flboot *bl)
{
	return &bl->store.stage[bl->xfer_core - 1];
}

static uint32_t live_base(flboot *bl)
{
	return flboot__slot_addr(bl->xfer_core, live_stage(bl)->slot);
}

static int put_area_words(flboot *bl);

/* Slot sector k holds a word that is not what was sent (torn by a cut):
 * the progress mark goes back to its start, the sector is erased again
 * (sector 0 gets its header area back). */
static int redo_sector(flboot *bl, uint32_t k)
{
	flboot_stage *g = live_stage(bl);
	int rc = 0;

	if (++bl->redirty > 8u)
		return FLBOOT_E_FLASH; /* the flash does not hold what it is given */
	if (g->progress > sector_start(k))
		rc = flboot__log_append(&bl->store, FLBOOT_L_PROGRESS, bl->xfer_core, 0, sector_start(k));
	if (!rc)
		rc = flboot__stage_dirty(&bl->store, bl->xfer_core, k);
	if (!rc && k == 0)
		rc = put_area_words(bl);
	bl->xfer_next = sector_start(k);
	return rc;
}

/* The header area as BEGIN sent it (padded with 0xFF), word i. */
static void area_word(const flboot *bl, uint32_t i, uint8_t w[WORD])
{
	uint32_t off = i * WORD, n = bl->area_len - off < WORD ? bl->area_len - off : WORD;
	memset(w, 0xFF, WORD);
	memcpy(w, bl->area + off, n);
}

/* Program the header area into the words at the slot start that do not
 * hold it yet. 0, or 1 when a word holds something else or does not
 * program cleanly (sector 0 must be erased again), or an error. */
static int area_pass(flboot *bl)
{
	uint8_t w[WORD], have[WORD];
	uint32_t i, n = (bl->area_len + WORD - 1u) / WORD, base;
	int rc = flboot__stage_need(&bl->store, bl->xfer_core, 0);

	if (rc)
		return rc;
	base = live_base(bl);
	for (i = 0; i < n; i++) {
		area_word(bl, i, w);
		if (flboot__read(&bl->store, base + i * WORD, have, WORD) == 0) {
			if (memcmp(have, w, WORD) == 0)
				continue;
			if (flboot__word_blank(have) && flboot__program_check(&bl->store, base + i * WORD, w) == 0)
				continue;
		}
		return 1;
	}
	return 0;
}

/* Sector 0 was just erased again: the header area goes back in. */
static int put_area_words(flboot *bl)
{
	int rc = area_pass(bl);
	return rc > 0 ? FLBOOT_E_FLASH : rc;
}

/* Make the slot start hold the header area exactly. Sets *redone when
 * sector 0 had to be erased again. */
static int put_area(flboot *bl, int *redone)
{
	int rc = area_pass(bl);

	*redone = 0;
	if (rc <= 0)
		return rc;
	*redone = 1;
	return redo_sector(bl, 0);
}

/* Find the durable offset of the staging after a reset: from the last
 * progress mark, over the sectors logged as erased, up to the last word
 * that is not erased; that word itself is sent again (a cut may have torn
 * it into wrong data that reads without an ECC error). Erased words (0xFF
 * runs of the image) below a progress mark are never sent again. */
static int resume_scan(flboot *bl)
{
	flboot_store *s = &bl->store;
	flboot_stage *g = live_stage(bl);
	uint8_t w[WORD];
	uint32_t total = g->payload_size, off, last, base;
	int rc, redone;

	rc = put_area(bl, &redone);
	if (rc)
		return rc;
	base = live_base(bl) + FLBOOT_HEADER_AREA;
	off = g->progress & ~(WORD - 1u);
	if (off > total)
		off = total & ~(WORD - 1u);
	last = off;
	for (; off < total; off += WORD) {
		if (!(g->erased & (1u << sector_of(off))))
			break;
		if (flboot__read(s, base + off, w, WORD))
			return redo_sector(bl, sector_of(off));
		if (!flboot__word_blank(w))
			last = off;
	}
	bl->xfer_next = last > g->progress ? last : g->progress;
	if (redone && bl->xfer_next > 0)
		bl->xfer_next = 0; /* sector 0 was erased again */
	return 0;
}

/* Program data at payload offset off (word aligned) word by word. A word
 * already holding the same bytes is skipped (data sent again after a
 * resume); a word holding anything else, or one that does not read back
 * as programmed, sends its sector back to erased and the transfer back to
 * that sector's start. */
static int write_data(flboot *bl, uint32_t off, const uint8_t *data, uint32_t n)
{
	flboot_store *s = &bl->store;
	flboot_stage *g = live_stage(bl);
	uint8_t w[WORD], have[WORD];
	uint32_t i, c, base = live_base(bl) + FLBOOT_HEADER_AREA;
	int rc;

	for (i = 0; i < n; i += c) {
		c = n - i < WORD ? n - i : WORD;
		memset(w, 0xFF, sizeof w);
		memcpy(w, data + i, c);
		/* the other bank's next erase starts as soon as its last ends */
		rc = flboot__pump(s, -1);
		if (!rc)
			rc = flboot__stage_need(s, bl->xfer_core, sector_of(off + i));
		if (rc)
			return rc;
		if (flboot__read(s, base + off + i, have, WORD) == 0 &&
		    (memcmp(have, w, WORD) == 0 ||
		     (flboot__word_blank(have) &&
		      (flboot__word_blank(w) || flboot__program_check(s, base + off + i, w) == 0)))) {
			bl->xfer_next = off + i + c;
		} else {
			rc = redo_sector(bl, sector_of(off + i));
			return rc ? rc : FLBOOT_E_OFFSET;
		}
		if (bl->xfer_next / PROGRESS_STEP != (bl->xfer_next - c) / PROGRESS_STEP && bl->xfer_next < g->payload_size) {
			rc = flboot__log_append(s, FLBOOT_L_PROGRESS, bl->xfer_core, 0, bl->xfer_next);
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
	lo = 1;
	hi = FLBOOT_CORE_MAX_PAYLOAD(h->core);
	if (h->payload_size < lo || h->payload_size > hi) {
		flboot__s(why, "image payload ");
		flboot__su(why, h->payload_size);
		flboot__s(why, " bytes, the ");
		flboot__s(why, core_name(h->core));
		flboot__s(why, " slot holds 1 to ");
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

/* The image must run from the slot it is staged into: linked for it
 * (load address = slot + header area) or for any address (0). */
static int check_slot(flboot *bl, const flboot_image_header *h, flboot__str *why)
{
	uint8_t sl = flboot__stage_slot(&bl->store, &bl->view, h->core);
	uint32_t want = flboot__slot_addr(h->core, sl) + FLBOOT_HEADER_AREA;

	if (h->load_address == 0u || h->load_address == want)
		return 0;
	flboot__s(why, "image linked for ");
	flboot__sx(why, h->load_address);
	flboot__s(why, ", this unit stages ");
	flboot__s(why, core_name(h->core));
	flboot__s(why, " into the slot at ");
	flboot__sx(why, want - FLBOOT_HEADER_AREA);
	flboot__s(why, " (send that build)");
	return h->load_address < FLBOOT_SECTOR_ADDR(FLBOOT_BOOTLOADER_SECTOR + 1u) ? FLBOOT_E_PROTECTED : FLBOOT_E_RANGE;
}

/* While a new pair waits for its first boot or runs on trial, its way back
 * (when it verifies) must stay untouched: no new staging or activation
 * until the trial is confirmed, rolled back or expired. */
static int refused_while_settling(flboot *bl, const req *r)
{
	const flboot_view *v = &bl->view;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint8_t st = flboot__state(v);

	if (st != FLBOOT_STATE_PENDING && st != FLBOOT_STATE_TRIAL)
		return 0;
	if (v->prev.lead_core < 0 || flboot__verify_pair(bl, &v->prev, &why))
		return 0; /* no way back to keep: nothing to protect */
	fail_s(bl, r, FLBOOT_E_STATE, st,
	       st == FLBOOT_STATE_PENDING ? "an activation is pending; reboot first (or ROLLBACK)"
	                                  : "a trial is running; confirm or roll back first");
	return 1;
}

/* The stored staging of core matches header h in the slot it stages into
 * (and that slot has not led a pair since: its trailer is used up). */
static int stage_matches(const flboot *bl, const flboot_image_header *h)
{
	const flboot_stage *g = &bl->store.stage[h->core - 1];
	uint8_t sl = flboot__stage_slot(&bl->store, &bl->view, h->core);
	return g->on && g->slot == sl && g->header_crc32 == h->header_crc32 && g->payload_size == h->payload_size &&
	       !bl->view.slot[h->core - 1][sl].act && !bl->view.slot[h->core - 1][sl].bad;
}

/* The slot BEGIN stages into for h's core holds h verified and not used by
 * a pair yet. Checked again over flash (it may have rotted since): a slot
 * that no longer verifies is marked so and staged anew. */
static int already_staged(flboot *bl, const flboot_image_header *h)
{
	uint8_t sl = flboot__stage_slot(&bl->store, &bl->view, h->core);
	const flboot_slotv *sv = &bl->view.slot[h->core - 1][sl];
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };

	if (!sv->hdr_ok || !sv->verified || sv->act || sv->hdr.header_crc32 != h->header_crc32)
		return 0;
	if (flboot__verify_slot(bl, h->core, sl, &why, NULL, NULL) == 0)
		return 1;
	flboot__trailer_append(&bl->store, &bl->view, h->core, sl, FLBOOT_T_BAD, h->header_crc32, NULL, 0);
	return 0;
}

/* Start a staging of h: logged first, then every sector of the image is
 * queued for erase on its bank (never skipped because it reads blank). */
static int new_stage(flboot *bl, const flboot_image_header *h)
{
	flboot_store *s = &bl->store;
	uint8_t sl = flboot__stage_slot(s, &bl->view, h->core);
	int rc = flboot__log_stage(s, h->core, sl, h->header_crc32, h->payload_size);
	if (!rc)
		s->stage[h->core - 1].queued = (uint8_t)((1u << flboot__img_sectors(h->payload_size)) - 1u);
	return rc;
}

static void on_prepare(flboot *bl, const req *r)
{
	flboot_store *s = &bl->store;
	flboot_image_header h[2];
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint32_t n = r->len / sizeof h[0], i, k, all;
	flboot_stage *g;
	int rc = 0;

	if ((r->len != sizeof h[0] && r->len != sizeof h) || (n == 2 && r->p[8] == r->p[8 + sizeof h[0]])) {
		fail_s(bl, r, FLBOOT_E_FRAME, r->len, "PREPARE carries one or two 128-byte image headers of two cores");
		return;
	}
	memcpy(h, r->p, r->len);
	for (i = 0; i < n; i++) {
		rc = check_header(bl, &h[i], &why);
		if (!rc)
			rc = check_slot(bl, &h[i], &why);
		if (rc) {
			fail(bl, r, rc, i, &why);
			return;
		}
	}
	if (refused_while_settling(bl, r))
		return;
	for (i = 0; !rc && i < n; i++) {
		g = &s->stage[h[i].core - 1];
		if (already_staged(bl, &h[i]))
			continue;
		if (stage_matches(bl, &h[i])) {
			all = (1u << flboot__img_sectors(h[i].payload_size)) - 1u;
			for (k = 0; k < 8u; k++)
				if ((all & (1u << k)) && !((g->erased | g->unlogged) & (1u << k)) &&
				    s->inflight[flboot__bank(h[i].core)] != k + 1u)
					g->queued |= (uint8_t)(1u << k);
			continue;
		}
		rc = new_stage(bl, &h[i]);
	}
	if (!rc)
		rc = flboot__pump(s, -1);
	derive(bl);
	if (rc) {
		fail_flash(bl, r, 0, "flash erase failed while preparing the slots");
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

static void on_begin(flboot *bl, const req *r)
{
	flboot_store *s = &bl->store;
	flboot_image_header h;
	flboot_begin_resp b;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint8_t have[WORD], sl;
	uint32_t i;
	int rc, redone;

	bl->xfer_live = 0;
	if (r->len < sizeof h || r->len > FLBOOT_BEGIN_MAX_AREA) {
		flboot__s(&why, "BEGIN carries the image's header area, 128 to 512 bytes, got ");
		flboot__su(&why, r->len);
		fail(bl, r, FLBOOT_E_FRAME, r->len, &why);
		return;
	}
	memcpy(&h, r->p, sizeof h);
	rc = check_header(bl, &h, &why);
	if (!rc)
		rc = check_slot(bl, &h, &why);
	if (!rc) {
		/* signature and downgrade floor before anything is erased */
		uint8_t area[FLBOOT_TRAILER_OFFSET - FLBOOT_IMAGE_HEADER_SIZE];

		memset(area, 0xFF, sizeof area);
		memcpy(area, r->p + sizeof h, r->len - sizeof h);
		rc = flboot__trust_image(bl, &h, area, &why);
	}
	if (rc) {
		fail(bl, r, rc, 0, &why);
		return;
	}
	if (refused_while_settling(bl, r))
		return;
	sl = flboot__stage_slot(s, &bl->view, h.core);
	bl->xfer_core = h.core;
	bl->xfer_slot = sl;
	bl->area_len = r->len;
	memcpy(bl->area, r->p, r->len);
	bl->redirty = 0;
	rc = 0;
	if (already_staged(bl, &h)) {
		/* Already received and verified: nothing left to send, as long
		 * as the header area is the one sent now. */
		for (i = 0; i < r->len && !rc; i += WORD) {
			uint32_t n = r->len - i < WORD ? r->len - i : WORD;
			if (flboot__read(s, flboot__slot_addr(h.core, sl) + i, have, WORD) || memcmp(have, r->p + i, n) != 0)
				rc = 1;
		}
		if (!rc) {
			bl->xfer_live = 2;
			bl->xfer_next = h.payload_size;
		}
	}
	if (!bl->xfer_live) {
		if (stage_matches(bl, &h)) {
			rc = resume_scan(bl);
		} else {
			rc = new_stage(bl, &h);
			bl->xfer_next = 0;
			if (!rc)
				rc = put_area(bl, &redone);
		}
		if (!rc)
			rc = flboot__pump(s, -1);
		if (rc) {
			fail_flash(bl, r, 0, "flash erase/program failed while preparing the slot");
			return;
		}
		bl->xfer_live = 1;
	}
	derive(bl);
	b.resume_offset = bl->xfer_next;
	b.max_block = FLBOOT_MAX_BLOCK;
	reply(bl, r, 0, 0, &b, sizeof b);
}

static void on_data(flboot *bl, const req *r)
{
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
	total = bl->xfer_live == 2 ? exp : live_stage(bl)->payload_size;
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
	rc = flboot__pump(&bl->store, -1);
	if (!rc)
		rc = write_data(bl, exp, data + skip, d.raw_length - skip);
	if (rc == FLBOOT_E_OFFSET) {
		fail_s(bl, r, FLBOOT_E_OFFSET, bl->xfer_next, "torn flash word found; its sector was erased again");
		return;
	}
	if (rc) {
		bl->xfer_live = 0;
		fail_flash(bl, r, exp, "flash erase/program failed; send BEGIN to resume");
		return;
	}
	reply(bl, r, 0, bl->xfer_next, NULL, 0);
}

static void on_end(flboot *bl, const req *r)
{
	flboot_store *s = &bl->store;
	flboot_end_resp e;
	flboot_slotv *sv;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint32_t crc = 0;
	uint8_t sha[32] = { 0 }, body[4], core = bl->xfer_core, sl = bl->xfer_slot;
	int rc;

	if (!bl->xfer_live) {
		fail_s(bl, r, FLBOOT_E_STATE, 0, "no transfer open; send BEGIN (it resumes)");
		return;
	}
	if (bl->xfer_live == 1 && bl->xfer_next != live_stage(bl)->payload_size) {
		flboot__s(&why, "transfer incomplete: ");
		flboot__su(&why, bl->xfer_next);
		flboot__s(&why, " of ");
		flboot__su(&why, live_stage(bl)->payload_size);
		flboot__s(&why, " bytes");
		fail(bl, r, FLBOOT_E_STATE, bl->xfer_next, &why);
		return;
	}
	/* Verified from flash, never from what we think we wrote, in the
	 * slot of the transfer BEGIN opened (whichever core it was). */
	rc = flboot__verify_slot(bl, core, sl, &why, &crc, sha);
	e.crc32 = crc;
	memcpy(e.sha256, sha, sizeof sha);
	if (rc) {
		/* Bad content cannot be resumed into shape: start over. */
		if (bl->xfer_live == 1)
			flboot__log_append(s, FLBOOT_L_ABORT, core, 0, 0);
		bl->xfer_live = 0;
		fail(bl, r, rc, rc == FLBOOT_E_CRC ? crc : 0, &why);
		return;
	}
	derive(bl);
	sv = &bl->view.slot[core - 1][sl];
	if (!sv->verified) {
		memcpy(body, &sv->hdr.payload_crc32, 4);
		if (flboot__trailer_append(s, &bl->view, core, sl, FLBOOT_T_VERIFIED, sv->hdr.header_crc32, body, 4)) {
			bl->xfer_live = 0;
			fail_s(bl, r, FLBOOT_E_FLASH, 0, "metadata write failed");
			return;
		}
	}
	bl->xfer_live = 0;
	reply(bl, r, 0, 0, &e, sizeof e);
}

static void on_abort(flboot *bl, const req *r)
{
	uint8_t c;

	bl->xfer_live = 0;
	for (c = FLBOOT_CORE_CM7; c <= FLBOOT_CORE_CM4; c++) {
		if (!bl->store.stage[c - 1].on)
			continue;
		bl->store.stage[c - 1].queued = 0;
		if (flboot__log_append(&bl->store, FLBOOT_L_ABORT, c, 0, 0)) {
			fail_s(bl, r, FLBOOT_E_FLASH, 0, "metadata write failed");
			return;
		}
	}
	reply(bl, r, 0, 0, NULL, 0);
}

/* ---- activation, trial, rollback, reboot ------------------------------------ */

static void on_activate(flboot *bl, const req *r)
{
	flboot_view *v = &bl->view;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint8_t cores, missing = 0, c, sl[2], lc, body[18];
	const flboot_slotv *lead = lead_of(v), *sv[2], *l, *o = NULL;
	uint32_t partner_crc = 0;
	int8_t partner = -1;
	int rc;

	if (r->len != sizeof(flboot_activate_req)) {
		fail_s(bl, r, FLBOOT_E_FRAME, r->len, "ACTIVATE carries one byte (cores mask)");
		return;
	}
	cores = r->p[0];
	if (!cores || (cores & ~3u)) {
		fail_s(bl, r, FLBOOT_E_CORE, cores, "cores mask must be 1 (cm7), 2 (cm4) or 3");
		return;
	}
	if (lead && !lead->confirmed && !lead->boots &&
	    (lead->together ? 3u : FLBOOT_CORE_BIT(v->active.lead_core + 1)) == cores) {
		reply(bl, r, 0, 0, NULL, 0); /* repeated request */
		return;
	}
	if (refused_while_settling(bl, r))
		return;
	for (c = 0; c < 2; c++) {
		sl[c] = flboot__stage_slot(&bl->store, v, (uint8_t)(c + 1u));
		sv[c] = &v->slot[c][sl[c]];
		if ((cores & (1u << c)) && slot_state(bl, (uint8_t)(c + 1u), sl[c]) != FLBOOT_SLOT_STAGED)
			missing |= (uint8_t)(1u << c);
	}
	if (missing) {
		flboot__s(&why, "no verified staged image for");
		if (missing & 1u)
			flboot__s(&why, " cm7");
		if (missing & 2u)
			flboot__s(&why, " cm4");
		fail(bl, r, FLBOOT_E_NOT_STAGED, missing, &why);
		return;
	}
	lc = cores & 1u ? 0u : 1u;
	l = sv[lc];
	if (cores == 3u) {
		if (memcmp(sv[0]->hdr.set_id, sv[1]->hdr.set_id, 8) != 0) {
			fail_s(bl, r, FLBOOT_E_SET_ID, 0,
			       "the staged cm7 and cm4 images come from two packages (set ids differ); send one package");
			return;
		}
		partner = (int8_t)sl[1];
		o = sv[1];
	} else if (v->active.at[1 - lc] >= 0) {
		partner = v->active.at[1 - lc];
		o = &v->slot[1 - lc][partner];
	}
	if (o)
		partner_crc = o->hdr.header_crc32;
	if (lc != 0u && partner < 0) {
		fail_s(bl, r, FLBOOT_E_CORE, cores, "no cm7 image on this unit to start a cm4 image; send the cm7 image too");
		return;
	}
	/* the images as they will run: verified once more, trusted */
	for (c = 0; c < 2; c++) {
		if (!(cores & (1u << c)))
			continue;
		why.len = 0;
		rc = flboot__verify_slot(bl, (uint8_t)(c + 1u), sl[c], &why, NULL, NULL);
		if (rc) {
			/* no longer what END verified: not offered as staged again */
			flboot__trailer_append(&bl->store, v, (uint8_t)(c + 1u), sl[c], FLBOOT_T_BAD, sv[c]->hdr.header_crc32,
			                       NULL, 0);
			fail(bl, r, rc, 0, &why);
			return;
		}
	}
	memcpy(body, &l->hdr.header_crc32, 4);
	memcpy(body + 4, &partner_crc, 4);
	body[8] = partner < 0 ? 0xFFu : (uint8_t)partner;
	body[9] = cores == 3u ? 1u : 0u;
	memcpy(body + 10, l->hdr.set_id, 8);
	if (flboot__trailer_append(&bl->store, v, (uint8_t)(lc + 1u), sl[lc], FLBOOT_T_ACTIVATE, v->max_seq + 1u, body,
	                           sizeof body)) {
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "metadata write failed");
		derive(bl);
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

static void on_confirm(flboot *bl, const req *r)
{
	const char *why = "";
	int rc = flboot__confirm(&bl->store, &bl->view, &why);

	if (rc) {
		fail_s(bl, r, rc, flboot__state(&bl->view), why);
		derive(bl);
		return;
	}
	reply(bl, r, 0, 0, NULL, 0);
}

static void on_rollback(flboot *bl, const req *r)
{
	flboot_view *v = &bl->view;
	char rb[FLBOOT_REASON_MAX];
	flboot__str why = { rb, sizeof rb, 0 };
	uint8_t body[2] = { 0, 0 };
	int rc;

	if (bl->rolled_back && bl->last_rollback_seq == r->h->seq) {
		reply(bl, r, 0, 0, NULL, 0); /* the same request again */
		return;
	}
	if (v->active.lead_core < 0 || v->prev.lead_core < 0) {
		fail_s(bl, r, FLBOOT_E_NO_ROLLBACK, 0, "no previous pair kept on this unit");
		return;
	}
	flboot__s(&why, "the previous pair does not verify, keeping the running one: ");
	rc = flboot__verify_pair(bl, &v->prev, &why);
	if (rc) {
		fail(bl, r, FLBOOT_E_NO_ROLLBACK, (uint32_t)-rc, &why);
		return;
	}
	if (flboot__trailer_append(&bl->store, v, (uint8_t)(v->active.lead_core + 1), (uint8_t)v->active.lead_slot,
	                           FLBOOT_T_REVERT, v->active.seq, body, sizeof body)) {
		fail_s(bl, r, FLBOOT_E_FLASH, 0, "metadata write failed");
		derive(bl);
		return;
	}
	bl->rolled_back = 1;
	bl->last_rollback_seq = r->h->seq;
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
	bl->store.erase_failed = 0;
	if (bl->mode == FLBOOT_MODE_APPLICATION) {
		/* The application may have confirmed itself through
		 * flboot_app_confirm() meanwhile: answer from the slots. */
		derive(bl);
		switch (t) {
		case FLBOOT_MSG_HELLO: on_hello(bl, r); return;
		case FLBOOT_MSG_STATUS: on_status(bl, r); return;
		case FLBOOT_MSG_CONFIRM: on_confirm(bl, r); return;
		case FLBOOT_MSG_REBOOT: on_reboot(bl, r); return;
		case FLBOOT_MSG_LOG: case FLBOOT_MSG_BEGIN: case FLBOOT_MSG_DATA: case FLBOOT_MSG_END:
		case FLBOOT_MSG_ABORT: case FLBOOT_MSG_ACTIVATE: case FLBOOT_MSG_ROLLBACK: case FLBOOT_MSG_PREPARE:
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
		case FLBOOT_MSG_PREPARE: on_prepare(bl, r); return;
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
	if (!bl->store.loaded) {
		flboot__log_load(&bl->store, bl->port);
		derive(bl);
	}
	if (bl->mode == FLBOOT_MODE_BOOTLOADER && flboot__pump(&bl->store, -1))
		bl->xfer_live = 0; /* a background erase failed: BEGIN again */
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
	bl->store.port = port;
	port->identity(port->ctx, &bl->id);
	flboot__log_load(&bl->store, port);
	derive(bl);
	flboot__engine_start(bl, FLBOOT_MODE_APPLICATION);
}

void flboot_app_poll(flboot *bl)
{
	flboot_poll(bl);
}

int flboot_app_confirm(const flboot_port *port)
{
	flboot_store s;
	flboot_view v;
	const char *why;

	memset(&s, 0, sizeof s);
	s.port = port;
	flboot__derive(&s, &v);
	return flboot__confirm(&s, &v, &why);
}
