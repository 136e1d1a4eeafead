/*
 * journal.c - the metadata journal in sectors 14/15 (docs/bootloader.md,
 * "Journal").
 *
 * An append-only log of records, each a whole number of 32-byte flash
 * words: a 12-byte head (magic, type, word count, sequence number, CRC32)
 * and a body. A record that does not read back whole (ECC error, CRC
 * mismatch, partly erased) counts as never written, which makes every
 * record an atomic commit point. When the active sector is full, a
 * snapshot of the whole state goes into the freshly erased other sector;
 * the sector holding the highest valid sequence number is the active one,
 * so a cut at any moment of a compaction loses nothing.
 */
#include <string.h>

#include "core.h"
#include "flboot/crc32.h"

#define J_MAGIC 0x4A46u /* "FJ" */
#define SECTOR_WORDS (FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD)

_Static_assert(sizeof(flboot_jstate) == 16u + 6u * 20u + FLBOOT_IMAGE_HEADER_SIZE, "jstate has no padding");
_Static_assert(FLBOOT_J_HEAD + sizeof(flboot_jstate) <= FLBOOT_J_MAX_WORDS * FLBOOT_FLASH_WORD, "snapshot fits a record");

typedef struct walk_result {
	uint32_t maxseq; /* highest valid sequence number seen */
	uint32_t end;    /* word index where the log ends (first blank record start) */
} walk_result;

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

static uint32_t rec_crc(const uint8_t *rec, uint32_t len)
{
	uint32_t c = flboot_crc32(0, rec, 8);
	return flboot_crc32(c, rec + FLBOOT_J_HEAD, len - FLBOOT_J_HEAD);
}

static int blank32(const uint8_t *w)
{
	uint32_t i;
	for (i = 0; i < FLBOOT_FLASH_WORD; i++)
		if (w[i] != 0xFFu)
			return 0;
	return 1;
}

/* Walk one journal sector from its start. Valid records are applied to st
 * (when not NULL) in order; only strictly increasing sequence numbers are
 * taken, so leftovers of an older era can never be replayed. */
static void walk(flboot_store *s, uint8_t sector, flboot_jstate *st, walk_result *w)
{
	uint8_t rec[FLBOOT_J_MAX_WORDS * FLBOOT_FLASH_WORD];
	uint32_t base = FLBOOT_SECTOR_ADDR(sector), p = 0, n, seq;

	w->maxseq = 0;
	while (p < SECTOR_WORDS) {
		if (flboot__read(s, base + p * FLBOOT_FLASH_WORD, rec, FLBOOT_FLASH_WORD)) {
			p++; /* torn word: whatever it was, it was never written */
			continue;
		}
		if (blank32(rec))
			break;
		n = rec[3];
		if ((rec[0] | rec[1] << 8) != J_MAGIC || n == 0 || n > FLBOOT_J_MAX_WORDS || p + n > SECTOR_WORDS) {
			p++;
			continue;
		}
		/* A torn record's later words are skipped with it: they were
		 * programmed (or not) by the same interrupted append. */
		if ((n > 1 && flboot__read(s, base + (p + 1u) * FLBOOT_FLASH_WORD, rec + FLBOOT_FLASH_WORD,
		                           (n - 1u) * FLBOOT_FLASH_WORD)) ||
		    rec_crc(rec, n * FLBOOT_FLASH_WORD) != rd32(rec + 8)) {
			p += n;
			continue;
		}
		seq = rd32(rec + 4);
		if (seq > w->maxseq) {
			if (st)
				flboot__journal_apply(st, rec[2], rec + FLBOOT_J_HEAD, n * FLBOOT_FLASH_WORD - FLBOOT_J_HEAD);
			w->maxseq = seq;
		}
		p += n;
	}
	w->end = p;
}

int flboot__journal_load(flboot_store *s, const flboot_port *port)
{
	walk_result a, b, w;
	uint8_t active;

	memset(s, 0, sizeof *s);
	s->port = port;
	walk(s, FLBOOT_META_SECTOR_A, NULL, &a);
	walk(s, FLBOOT_META_SECTOR_B, NULL, &b);
	active = b.maxseq > a.maxseq ? FLBOOT_META_SECTOR_B : FLBOOT_META_SECTOR_A;
	walk(s, active, &s->st, &w);
	s->sector = active;
	s->pos = w.end;
	s->seq = a.maxseq > b.maxseq ? a.maxseq : b.maxseq;
	s->loaded = 1;
	return 0;
}

/* Program one record at word index pos of the active sector and read it
 * back. */
static int put(flboot_store *s, uint32_t pos, const uint8_t *rec, uint32_t n)
{
	uint8_t back[FLBOOT_FLASH_WORD];
	uint32_t addr = FLBOOT_SECTOR_ADDR(s->sector) + pos * FLBOOT_FLASH_WORD, i;
	int rc;

	for (i = 0; i < n; i++) {
		rc = flboot__program(s, addr + i * FLBOOT_FLASH_WORD, rec + i * FLBOOT_FLASH_WORD);
		if (rc)
			return rc;
	}
	for (i = 0; i < n; i++)
		if (flboot__read(s, addr + i * FLBOOT_FLASH_WORD, back, FLBOOT_FLASH_WORD) ||
		    memcmp(back, rec + i * FLBOOT_FLASH_WORD, FLBOOT_FLASH_WORD) != 0)
			return FLBOOT_E_FLASH;
	return 0;
}

static uint32_t build(uint8_t *rec, uint8_t type, uint32_t seq, const void *body, uint32_t len)
{
	uint32_t n = (FLBOOT_J_HEAD + len + FLBOOT_FLASH_WORD - 1u) / FLBOOT_FLASH_WORD;

	/* Padding is 0x00 so that no word of a record reads as erased. */
	memset(rec, 0, n * FLBOOT_FLASH_WORD);
	rec[0] = (uint8_t)J_MAGIC;
	rec[1] = (uint8_t)(J_MAGIC >> 8);
	rec[2] = type;
	rec[3] = (uint8_t)n;
	wr32(rec + 4, seq);
	if (len)
		memcpy(rec + FLBOOT_J_HEAD, body, len);
	wr32(rec + 8, rec_crc(rec, n * FLBOOT_FLASH_WORD));
	return n;
}

/* Move the state into the other sector: erase it, write a snapshot. Until
 * the snapshot reads back whole, the old sector stays the active one. */
static int compact(flboot_store *s)
{
	uint8_t rec[FLBOOT_J_MAX_WORDS * FLBOOT_FLASH_WORD];
	uint8_t other = s->sector == FLBOOT_META_SECTOR_A ? FLBOOT_META_SECTOR_B : FLBOOT_META_SECTOR_A;
	uint32_t n;
	int rc;

	rc = flboot__erase(s, other);
	if (rc)
		return rc;
	n = build(rec, FLBOOT_J_SNAPSHOT, s->seq + 1u, &s->st, sizeof s->st);
	s->sector = other;
	rc = put(s, 0, rec, n);
	if (rc) {
		/* The old sector stays active; never erase it for a retry. */
		s->sector = other == FLBOOT_META_SECTOR_A ? FLBOOT_META_SECTOR_B : FLBOOT_META_SECTOR_A;
		return rc;
	}
	s->seq++;
	s->pos = n;
	return 0;
}

int flboot__journal_append(flboot_store *s, uint8_t type, const void *body, uint32_t len)
{
	uint8_t rec[FLBOOT_J_MAX_WORDS * FLBOOT_FLASH_WORD];
	uint32_t n;
	int rc, tries;

	if (FLBOOT_J_HEAD + len > FLBOOT_J_MAX_WORDS * FLBOOT_FLASH_WORD)
		return FLBOOT_E_FRAME;
	n = (FLBOOT_J_HEAD + len + FLBOOT_FLASH_WORD - 1u) / FLBOOT_FLASH_WORD;
	for (tries = 0;; tries++) {
		/* Only ever program words that read erased: after a torn erase
		 * or stray garbage the log moves on to a clean sector. */
		if (s->pos + n <= SECTOR_WORDS &&
		    flboot__is_blank(s, FLBOOT_SECTOR_ADDR(s->sector) + s->pos * FLBOOT_FLASH_WORD,
		                     n * FLBOOT_FLASH_WORD))
			break;
		if (tries)
			return FLBOOT_E_FLASH;
		rc = compact(s);
		if (rc)
			return rc;
	}
	build(rec, type, s->seq + 1u, body, len);
	rc = put(s, s->pos, rec, n);
	s->pos += n; /* also past a failed record: never program it twice */
	if (rc)
		return rc;
	s->seq++;
	flboot__journal_apply(&s->st, type, rec + FLBOOT_J_HEAD, len);
	return 0;
}

void flboot__journal_apply(flboot_jstate *st, uint8_t type, const uint8_t *body, uint32_t len)
{
	uint8_t c, bit, i;
	flboot_imgref tmp;
	int16_t reason;

	switch (type) {
	case FLBOOT_J_SNAPSHOT:
		if (len >= sizeof *st)
			memcpy(st, body, sizeof *st);
		break;
	case FLBOOT_J_BEGIN:
		if (len < sizeof st->xfer_hdr)
			break;
		c = body[offsetof(flboot_image_header, core)];
		if (c != FLBOOT_CORE_CM7 && c != FLBOOT_CORE_CM4)
			break;
		memcpy(&st->xfer_hdr, body, sizeof st->xfer_hdr);
		st->xfer_core = c;
		st->xfer_erased = 0;
		st->xfer_progress = 0;
		st->staged_mask &= (uint8_t)~FLBOOT_CORE_BIT(c);
		/* The secondary about to be overwritten may hold a previous
		 * image: the previous pair is gone as a whole, never half. */
		st->prev_mask = 0;
		break;
	case FLBOOT_J_DIRTY:
		if (len >= 1 && body[0] < 8)
			st->xfer_erased &= (uint8_t)~(1u << body[0]);
		break;
	case FLBOOT_J_ERASED:
		if (len >= 1 && body[0] < 8)
			st->xfer_erased |= (uint8_t)(1u << body[0]);
		break;
	case FLBOOT_J_PROGRESS:
		if (len >= 4)
			st->xfer_progress = rd32(body);
		break;
	case FLBOOT_J_STAGED:
		if (len < 1 + sizeof(flboot_imgref) || (body[0] != FLBOOT_CORE_CM7 && body[0] != FLBOOT_CORE_CM4))
			break;
		c = body[0];
		memcpy(&st->staged[c - 1], body + 1, sizeof(flboot_imgref));
		st->staged_mask |= (uint8_t)FLBOOT_CORE_BIT(c);
		if (st->xfer_core == c)
			st->xfer_core = 0;
		break;
	case FLBOOT_J_ABORT:
		st->xfer_core = 0;
		st->xfer_erased = 0;
		break;
	case FLBOOT_J_ACTIVATE:
		if (len >= 1)
			st->pending = body[0] & 3u;
		break;
	case FLBOOT_J_SWAP:
		if (len >= 1)
			st->swap_done = body[0];
		break;
	case FLBOOT_J_COMMIT:
		if (st->revert) {
			for (i = 0; i < 2; i++) {
				if (!(st->revert & (1u << i)))
					continue;
				tmp = st->active[i];
				st->active[i] = st->previous[i];
				st->previous[i] = tmp;
			}
			st->boot_state = FLBOOT_STATE_ROLLED_BACK;
			st->prev_mask = 0;
			st->revert = 0;
		} else if (st->pending) {
			for (i = 0; i < 2; i++) {
				bit = (uint8_t)(1u << i);
				if (!(st->pending & bit))
					continue;
				st->previous[i] = st->active[i];
				st->active[i] = st->staged[i];
				memset(&st->staged[i], 0, sizeof st->staged[i]);
				st->staged_mask &= (uint8_t)~bit;
			}
			st->prev_mask = st->pending;
			st->pending = 0;
			st->boot_state = FLBOOT_STATE_TRIAL;
			st->last_boot_error = 0;
		}
		st->trial_boots = 0;
		st->swap_done = 0;
		break;
	case FLBOOT_J_TRIAL_BOOT:
		if (st->trial_boots < 0xFFu)
			st->trial_boots++;
		break;
	case FLBOOT_J_CONFIRM:
		if (st->boot_state == FLBOOT_STATE_TRIAL) {
			st->boot_state = FLBOOT_STATE_CONFIRMED;
			st->trial_boots = 0;
		}
		break;
	case FLBOOT_J_REVERT:
		if (len >= 3) {
			st->revert = body[0] & 3u;
			memcpy(&reason, body + 1, 2);
			st->last_boot_error = reason;
		}
		break;
	default: /* FLBOOT_J_NOP and unknown types change nothing */
		break;
	}
}

uint8_t flboot__reported_state(const flboot_jstate *st)
{
	if (st->pending || st->revert)
		return FLBOOT_STATE_PENDING;
	return st->boot_state;
}
