/*
 * meta.c - the metadata of layout v2 (docs/bootloader.md, "Metadata").
 *
 * Two kinds of one-word (32-byte flash word) records, each with a magic and
 * a CRC32, so that a word torn by a power cut (ECC error, miscorrected data,
 * a word that reads erased but does not program cleanly) reads as "never
 * written":
 *
 *  - the slot trailer, at slot + FLBOOT_TRAILER_OFFSET inside each slot's
 *    header area: the state that matters for booting (verified, activated
 *    as a pair, trial boots, confirmed, reverted). It is erased together
 *    with the image it describes and nowhere else, so the state is always
 *    derived from the slots themselves (flboot__derive);
 *  - the staging log, in the metadata sector (7): transient facts about a
 *    staging in progress (which slot sectors are erased for which image,
 *    how far the payload is programmed). Losing any of it only costs work
 *    (an erase or a re-sent window), never a wrong decision, which is why
 *    the log may be erased when it is full.
 */
#include <string.h>

#include "core.h"
#include "flboot/crc32.h"

#define WORD FLBOOT_FLASH_WORD
#define L_MAGIC 0x474Cu /* "LG" */
#define T_MAGIC 0x5254u /* "TR" */
#define LOG_BASE FLBOOT_META_ADDR
#define LOG_RESERVE 16u /* words kept free for a compaction's snapshot */
#define CHUNK 16u       /* words read at once */

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void wr32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static void seal(uint8_t w[WORD])
{
	wr32(w + 28, flboot_crc32(0, w, 28));
}

static int sealed(const uint8_t w[WORD], uint16_t magic)
{
	return (uint16_t)(w[0] | w[1] << 8) == magic && rd32(w + 28) == flboot_crc32(0, w, 28);
}

/* ---- staging log ---------------------------------------------------------- */
/* word: u16 magic | u8 type | u8 core | u32 seq | u8 slot | u8 k | u16 0 |
 *       u32 header_crc32 | u32 v | 8 x 0 | u32 crc */

static void log_word(uint8_t w[WORD], uint8_t type, uint8_t core, uint32_t seq, uint8_t slot, uint8_t k,
                     uint32_t hcrc, uint32_t v)
{
	memset(w, 0, WORD);
	w[0] = (uint8_t)L_MAGIC;
	w[1] = (uint8_t)(L_MAGIC >> 8);
	w[2] = type;
	w[3] = core;
	wr32(w + 4, seq);
	w[8] = slot;
	w[9] = k;
	wr32(w + 12, hcrc);
	wr32(w + 16, v);
	seal(w);
}

static void log_apply(flboot_store *s, const uint8_t w[WORD])
{
	uint8_t type = w[2], core = w[3], slot = w[8], k = w[9];
	uint32_t hcrc = rd32(w + 12), v = rd32(w + 16);
	flboot_stage *g;

	if (core != FLBOOT_CORE_CM7 && core != FLBOOT_CORE_CM4)
		return;
	g = &s->stage[core - 1];
	if (type == FLBOOT_L_STAGE) {
		memset(g, 0, sizeof *g);
		g->on = 1;
		g->slot = slot & 1u;
		g->header_crc32 = hcrc;
		g->payload_size = v;
		return;
	}
	if (type == FLBOOT_L_ABORT) {
		memset(g, 0, sizeof *g);
		return;
	}
	/* the others describe one staging: ignore them for any other */
	if (!g->on || g->slot != slot || g->header_crc32 != hcrc || k >= 8u)
		return;
	if (type == FLBOOT_L_ERASED) {
		g->erased |= (uint8_t)(1u << k);
		g->unlogged &= (uint8_t) ~(1u << k);
	} else if (type == FLBOOT_L_DIRTY) {
		g->erased &= (uint8_t) ~(1u << k);
		g->unlogged &= (uint8_t) ~(1u << k);
	}
	else if (type == FLBOOT_L_PROGRESS)
		g->progress = v;
}

void flboot__log_load(flboot_store *s, const flboot_port *port)
{
	uint8_t buf[CHUNK * WORD];
	uint32_t i, j, expect = 1, last = 0;
	const uint8_t *w;

	s->port = port;
	s->log_pos = 0;
	s->log_seq = 0;
	s->log_ok = 0;
	s->loaded = 1;
	memset(s->stage, 0, sizeof s->stage);
	if (flboot__read(s, LOG_BASE, buf, WORD) || !sealed(buf, L_MAGIC) || buf[2] != FLBOOT_L_EPOCH ||
	    rd32(buf + 4) != 0)
		return; /* not formatted (or torn): erased before its first use */
	s->log_ok = 1;
	for (i = 0; i < FLBOOT_LOG_WORDS; i += CHUNK) {
		int chunk_bad = flboot__read(s, LOG_BASE + i * WORD, buf, sizeof buf) != 0;
		for (j = 0; j < CHUNK; j++) {
			w = buf + j * WORD;
			if (i + j == 0)
				continue;
			if (chunk_bad && flboot__read(s, LOG_BASE + (i + j) * WORD, buf + j * WORD, WORD)) {
				last = i + j; /* torn: never written, but used */
				continue;
			}
			if (flboot__word_blank(w))
				continue;
			last = i + j;
			/* Only a gapless sequence counts: words left over by an
			 * interrupted erase of this sector are never replayed. */
			if (sealed(w, L_MAGIC) && rd32(w + 4) == expect) {
				log_apply(s, w);
				expect++;
			}
		}
	}
	s->log_pos = last + 1u;
	s->log_seq = expect;
}

/* Program a record at the next usable word; a word that does not read back
 * is skipped, never programmed twice. */
static int log_put(flboot_store *s, uint8_t type, uint8_t core, uint8_t slot, uint8_t k, uint32_t hcrc, uint32_t v)
{
	uint8_t w[WORD], have[WORD];

	while (s->log_pos < FLBOOT_LOG_WORDS) {
		uint32_t addr = LOG_BASE + s->log_pos * WORD;
		log_word(w, type, core, s->log_seq, slot, k, hcrc, v);
		if (flboot__read(s, addr, have, WORD) || !flboot__word_blank(have)) {
			s->log_pos++;
			continue;
		}
		s->log_pos++;
		if (flboot__program_check(s, addr, w) == 0) {
			s->log_seq++;
			log_apply(s, w);
			return 0;
		}
	}
	return FLBOOT_E_FLASH;
}

/* Erase the log sector and write the epoch and a snapshot of the stagings.
 * An erase of bank 1 waits for a staging erase running there: that one is
 * finished first and goes into the snapshot. */
static int log_format(flboot_store *s)
{
	flboot_stage keep[2];
	uint32_t c, k;
	int rc;

	if (s->inflight[0]) {
		rc = flboot__erase_wait(s, 0, 1);
		if (!rc)
			s->stage[0].unlogged |= (uint8_t)(1u << (s->inflight[0] - 1u));
		s->inflight[0] = 0;
	}
	memcpy(keep, s->stage, sizeof keep);
	for (c = 0; c < 2; c++)
		keep[c].erased |= keep[c].unlogged; /* their records go into the snapshot */
	s->log_ok = 0;
	rc = flboot__erase(s, FLBOOT_META_SECTOR);
	if (rc)
		return rc;
	s->log_pos = 0;
	s->log_seq = 0;
	rc = log_put(s, FLBOOT_L_EPOCH, FLBOOT_CORE_CM7, 0, 0, 0, 0);
	if (rc || s->log_pos != 1u) {
		s->log_pos = FLBOOT_LOG_WORDS; /* formats again next time */
		return FLBOOT_E_FLASH;
	}
	s->log_ok = 1;
	for (c = 0; c < 2; c++) {
		const flboot_stage *g = &keep[c];
		if (!g->on)
			continue;
		rc = log_put(s, FLBOOT_L_STAGE, (uint8_t)(c + 1u), g->slot, 0, g->header_crc32, g->payload_size);
		for (k = 0; !rc && k < 8u; k++)
			if (g->erased & (1u << k))
				rc = log_put(s, FLBOOT_L_ERASED, (uint8_t)(c + 1u), g->slot, (uint8_t)k, g->header_crc32, 0);
		if (!rc && g->progress)
			rc = log_put(s, FLBOOT_L_PROGRESS, (uint8_t)(c + 1u), g->slot, 0, g->header_crc32, g->progress);
		if (rc)
			return rc;
		s->stage[c].queued = keep[c].queued;
	}
	return 0;
}

static int log_room(flboot_store *s)
{
	if (!s->log_ok || s->log_pos + LOG_RESERVE > FLBOOT_LOG_WORDS)
		return log_format(s);
	return 0;
}

int flboot__log_stage(flboot_store *s, uint8_t core, uint8_t slot, uint32_t hcrc, uint32_t size)
{
	int rc = log_room(s);
	if (!rc)
		rc = log_put(s, FLBOOT_L_STAGE, core, slot, 0, hcrc, size);
	return rc;
}

int flboot__log_append(flboot_store *s, uint8_t type, uint8_t core, uint8_t k, uint32_t v)
{
	const flboot_stage *g = &s->stage[core - 1];
	int rc = log_room(s);
	if (!rc)
		rc = log_put(s, type, core, g->slot, k, g->header_crc32, v);
	return rc;
}

/* ---- erasing a staging slot, both banks at once ---------------------------- */

static uint32_t stage_sector(const flboot_store *s, uint8_t core, uint32_t k)
{
	return flboot__slot_sector(core, s->stage[core - 1].slot) + k;
}

/* Write the ERASED records of core c's erases that ended (into the log
 * sector, on bank index 0). A sector is programmed only once its record is
 * durable, so a cut can cost its erase again but never makes a sector
 * whose erase was torn count as erased. */
static int log_erased(flboot_store *s, uint32_t c)
{
	flboot_stage *g = &s->stage[c];
	uint32_t k;
	int rc;

	for (k = 0; g->unlogged && k < 8u; k++) {
		if (!(g->unlogged & (1u << k)))
			continue;
		g->unlogged &= (uint8_t) ~(1u << k);
		if (g->on && (rc = flboot__log_append(s, FLBOOT_L_ERASED, (uint8_t)(c + 1u), (uint8_t)k, 0)))
			return rc;
	}
	return 0;
}

/* Both banks work at once, one operation each. An erase that ended on
 * bank index 1 while bank 0 (which holds the log) still erases does not
 * wait for bank 0 to write its record (that would idle bank 1 for up to an
 * erase): the next bank 1 erase starts at once and the record is written
 * as soon as bank 0 is idle, before bank 0 starts its next erase, or when
 * the sector is needed. */
int flboot__pump(flboot_store *s, int block_bank)
{
	uint32_t b, k;
	flboot_stage *g;
	int rc;

	if (!s->port->flash_erase_start || !s->port->flash_wait)
		return 0; /* blocking port: erases run when a sector is needed */
	for (b = 0; b < 2; b++) {
		g = &s->stage[b];
		if (!s->inflight[b])
			continue;
		rc = flboot__erase_wait(s, b, (int)b == block_bank);
		if (rc == 1)
			continue;
		k = s->inflight[b] - 1u;
		s->inflight[b] = 0;
		if (rc) {
			g->queued = 0;
			return FLBOOT_E_FLASH;
		}
		if (g->on)
			g->unlogged |= (uint8_t)(1u << k);
	}
	if (!s->inflight[0]) {
		for (b = 0; b < 2; b++)
			if ((rc = log_erased(s, b)))
				return rc;
	}
	for (b = 0; b < 2; b++) {
		g = &s->stage[b];
		if (!s->inflight[b] && g->on && g->queued) {
			for (k = 0; !(g->queued & (1u << k)); k++)
				;
			g->queued &= (uint8_t) ~(1u << k);
			if ((rc = flboot__erase_start(s, stage_sector(s, (uint8_t)(b + 1u), k))))
				return rc;
			s->inflight[b] = (uint8_t)(k + 1u);
		}
	}
	return 0;
}

int flboot__stage_need(flboot_store *s, uint8_t core, uint32_t k)
{
	flboot_stage *g = &s->stage[core - 1];
	uint32_t b = flboot__bank(core);
	int rc;

	while (!(g->erased & (1u << k))) {
		if (!g->on)
			return FLBOOT_E_STATE;
		if (g->unlogged & (1u << k)) {
			if ((rc = log_erased(s, core - 1u)))
				return rc;
			continue;
		}
		if (s->inflight[b]) {
			if ((rc = flboot__pump(s, (int)b)))
				return rc;
			continue;
		}
		g->queued &= (uint8_t) ~(1u << k);
		if (s->port->flash_erase_start && s->port->flash_wait) {
			if ((rc = flboot__erase_start(s, stage_sector(s, core, k))))
				return rc;
			s->inflight[b] = (uint8_t)(k + 1u);
		} else {
			if ((rc = flboot__erase(s, stage_sector(s, core, k))))
				return rc;
			if ((rc = flboot__log_append(s, FLBOOT_L_ERASED, core, (uint8_t)k, 0)))
				return rc;
		}
	}
	return 0;
}

int flboot__stage_dirty(flboot_store *s, uint8_t core, uint32_t k)
{
	int rc = flboot__log_append(s, FLBOOT_L_DIRTY, core, (uint8_t)k, 0);
	return rc ? rc : flboot__stage_need(s, core, k);
}

/* ---- slot trailers ------------------------------------------------------------ */
/* word: u16 magic | u8 type | u8 0 | u32 a | 20 bytes body | u32 crc */

static uint32_t trailer_addr(uint8_t core, uint32_t slot, uint32_t i)
{
	return flboot__slot_addr(core, slot) + FLBOOT_TRAILER_OFFSET + i * WORD;
}

static void read_slot(flboot_store *s, uint8_t core, uint8_t sl, flboot_slotv *sv)
{
	uint8_t w[WORD];
	uint32_t i, hcrc;
	char rb[8];
	flboot__str why = { rb, sizeof rb, 0 };

	memset(sv, 0, sizeof *sv);
	sv->partner = -1;
	if (flboot__read(s, flboot__slot_addr(core, sl), &sv->hdr, sizeof sv->hdr) == 0 &&
	    flboot__header_ok(&sv->hdr, &why) == 0 && flboot__header_fits(&sv->hdr, core, sl) == 0)
		sv->hdr_ok = 1;
	hcrc = sv->hdr.header_crc32;
	for (i = 0; i < FLBOOT_TRAILER_WORDS; i++) {
		if (flboot__read(s, trailer_addr(core, sl, i), w, WORD)) {
			sv->trailer_end = (uint8_t)(i + 1u);
			continue;
		}
		if (flboot__word_blank(w))
			continue;
		sv->trailer_end = (uint8_t)(i + 1u);
		if (!sv->hdr_ok || !sealed(w, T_MAGIC))
			continue;
		switch (w[2]) {
		case FLBOOT_T_VERIFIED:
			if (rd32(w + 4) == hcrc && rd32(w + 8) == sv->hdr.payload_crc32)
				sv->verified = 1;
			break;
		case FLBOOT_T_BAD:
			if (rd32(w + 4) == hcrc)
				sv->bad = 1;
			break;
		case FLBOOT_T_ACTIVATE:
			if (sv->act || rd32(w + 8) != hcrc)
				break;
			sv->act = 1;
			sv->seq = rd32(w + 4);
			sv->partner_crc = rd32(w + 12);
			sv->partner = w[16] <= 1u ? (int8_t)w[16] : -1;
			sv->together = w[17] & 1u;
			memcpy(sv->set_id, w + 18, 8);
			break;
		case FLBOOT_T_BOOT:
			if (sv->act && rd32(w + 4) == sv->seq && sv->boots < 0xFFu)
				sv->boots++;
			break;
		case FLBOOT_T_CONFIRM:
			if (sv->act && rd32(w + 4) == sv->seq)
				sv->confirmed = 1;
			break;
		case FLBOOT_T_REVERT:
			if (sv->act && rd32(w + 4) == sv->seq && !sv->reverted) {
				sv->reverted = 1;
				sv->revert_reason = (int16_t)(w[8] | w[9] << 8);
			}
			break;
		default:
			break;
		}
	}
}

/* The pair led by (c, sl); 0 when its partner is not (any longer) there. */
static int pair_of(const flboot_view *v, uint32_t c, uint32_t sl, flboot_pair *p)
{
	const flboot_slotv *sv = &v->slot[c][sl], *o;

	p->at[c] = (int8_t)sl;
	p->at[1u - c] = -1;
	p->lead_core = (int8_t)c;
	p->lead_slot = (int8_t)sl;
	p->seq = sv->seq;
	if (sv->partner >= 0) {
		o = &v->slot[1u - c][sv->partner];
		if (!o->hdr_ok || o->hdr.header_crc32 != sv->partner_crc)
			return 0;
		p->at[1u - c] = sv->partner;
	}
	return 1;
}

static void no_pair(flboot_pair *p)
{
	p->at[0] = p->at[1] = -1;
	p->lead_core = p->lead_slot = -1;
	p->seq = 0;
}

void flboot__derive(flboot_store *s, flboot_view *v)
{
	flboot_pair p;
	uint32_t c, sl, gone_seq = 0;
	const flboot_slotv *sv;

	memset(v, 0, sizeof *v);
	for (c = 0; c < 2; c++)
		for (sl = 0; sl < 2; sl++)
			read_slot(s, (uint8_t)(c + 1u), (uint8_t)sl, &v->slot[c][sl]);
	for (c = 0; c < 2; c++)
		for (sl = 0; sl < 2; sl++)
			if (v->slot[c][sl].bad)
				v->slot[c][sl].verified = 0;
	no_pair(&v->active);
	no_pair(&v->prev);
	v->gone_core = v->gone_slot = -1;
	/* active: the newest pair not given up whose members are there */
	for (c = 0; c < 2; c++)
		for (sl = 0; sl < 2; sl++) {
			sv = &v->slot[c][sl];
			if (!sv->act)
				continue;
			if (sv->seq > v->max_seq)
				v->max_seq = sv->seq;
			if (!sv->reverted && pair_of(v, c, sl, &p) && (v->active.lead_core < 0 || p.seq > v->active.seq))
				v->active = p;
		}
	/* previous: the newest such pair below it (a rollback target, a
	 * trial's way back); gone: the newest reverted pair above it */
	for (c = 0; c < 2; c++)
		for (sl = 0; sl < 2; sl++) {
			sv = &v->slot[c][sl];
			if (!sv->act)
				continue;
			if (sv->reverted) {
				if ((v->active.lead_core < 0 || sv->seq > v->active.seq) && sv->seq >= gone_seq) {
					gone_seq = sv->seq;
					v->gone_core = (int8_t)c;
					v->gone_slot = (int8_t)sl;
				}
				continue;
			}
			if (v->active.lead_core >= 0 && sv->seq < v->active.seq && pair_of(v, c, sl, &p) &&
			    (v->prev.lead_core < 0 || p.seq > v->prev.seq))
				v->prev = p;
		}
}

int flboot__trailer_append(flboot_store *s, flboot_view *v, uint8_t core, uint8_t slot, uint8_t type, uint32_t a,
                           const uint8_t *body, uint32_t blen)
{
	flboot_slotv *sv = &v->slot[core - 1][slot];
	uint8_t w[WORD], have[WORD];
	uint32_t i, addr;

	memset(w, 0, WORD);
	w[0] = (uint8_t)T_MAGIC;
	w[1] = (uint8_t)(T_MAGIC >> 8);
	w[2] = type;
	wr32(w + 4, a);
	if (blen > 20u)
		blen = 20u;
	if (blen)
		memcpy(w + 8, body, blen);
	seal(w);
	for (i = sv->trailer_end; i < FLBOOT_TRAILER_WORDS; i++) {
		addr = trailer_addr(core, slot, i);
		sv->trailer_end = (uint8_t)(i + 1u);
		if (flboot__read(s, addr, have, WORD) || !flboot__word_blank(have))
			continue;
		if (flboot__program_check(s, addr, w) == 0) {
			flboot__derive(s, v);
			return 0;
		}
	}
	return FLBOOT_E_FLASH;
}

uint8_t flboot__state(const flboot_view *v)
{
	const flboot_slotv *lead;

	if (v->active.lead_core < 0)
		return FLBOOT_STATE_EMPTY;
	lead = &v->slot[v->active.lead_core][v->active.lead_slot];
	if (!lead->confirmed)
		return lead->boots ? FLBOOT_STATE_TRIAL : FLBOOT_STATE_PENDING;
	return v->gone_core >= 0 ? FLBOOT_STATE_ROLLED_BACK : FLBOOT_STATE_CONFIRMED;
}

uint8_t flboot__stage_slot(const flboot_store *s, const flboot_view *v, uint8_t core)
{
	uint32_t c = core - 1u;

	if (v->active.at[c] >= 0)
		return (uint8_t)(1 - v->active.at[c]);
	if (s->stage[c].on)
		return s->stage[c].slot;
	return 0;
}

int flboot__confirm(flboot_store *s, flboot_view *v, const char **why)
{
	const flboot_slotv *lead;

	if (v->active.lead_core < 0) {
		*why = "nothing on trial to confirm";
		return FLBOOT_E_STATE;
	}
	lead = &v->slot[v->active.lead_core][v->active.lead_slot];
	if (lead->confirmed)
		return 0;
	if (!lead->boots) {
		*why = "the new pair has not booted yet; reboot first";
		return FLBOOT_E_STATE;
	}
	*why = "metadata write failed";
	return flboot__trailer_append(s, v, (uint8_t)(v->active.lead_core + 1), (uint8_t)v->active.lead_slot,
	                              FLBOOT_T_CONFIRM, v->active.seq, NULL, 0);
}
