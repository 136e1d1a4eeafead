/*
 * core.h - private interfaces shared by the files of the bootloader core.
 * Not installed, not part of any contract; tests may include it to reach
 * the journal directly (fill it, inspect it).
 */
#ifndef FLBOOT_CORE_PRIVATE_H
#define FLBOOT_CORE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "flboot/flboot.h"
#include "flboot/layout.h"

typedef struct flboot_store flboot_store;
typedef struct flboot_jstate flboot_jstate;
typedef struct flboot_imgref flboot_imgref;

/* ---- slots -------------------------------------------------------------- */
static inline uint32_t flboot__primary_sector(uint8_t core)
{
	return core == FLBOOT_CORE_CM7 ? FLBOOT_CM7_PRIMARY_SECTOR : FLBOOT_CM4_PRIMARY_SECTOR;
}
static inline uint32_t flboot__secondary_sector(uint8_t core)
{
	return core == FLBOOT_CORE_CM7 ? FLBOOT_CM7_SECONDARY_SECTOR : FLBOOT_CM4_SECONDARY_SECTOR;
}
static inline uint32_t flboot__app_addr(uint8_t core)
{
	return FLBOOT_SECTOR_ADDR(flboot__primary_sector(core)) + FLBOOT_IMAGE_HEADER_AREA;
}
/* Sectors an image occupies (header area + payload), 0 for none. */
static inline uint32_t flboot__img_sectors(const flboot_imgref *r)
{
	if (!r->present)
		return 0;
	return (FLBOOT_IMAGE_HEADER_AREA + r->payload_size + FLBOOT_SECTOR_SIZE - 1u) / FLBOOT_SECTOR_SIZE;
}

/* ---- flash (flash.c): counted, guarded wrappers around the port -------- */
int flboot__read(flboot_store *s, uint32_t addr, void *buf, uint32_t len);
int flboot__erase(flboot_store *s, uint32_t sector);
int flboot__program(flboot_store *s, uint32_t addr, const uint8_t word[32]);
/** 1 when [addr, addr+len) reads all 0xFF without ECC errors, else 0. */
int flboot__is_blank(flboot_store *s, uint32_t addr, uint32_t len);
/** Erase dst, then copy src's words into it (a word that reads with an
 *  ECC error is left erased). */
int flboot__copy_sector(flboot_store *s, uint32_t dst, uint32_t src);

/* ---- journal (journal.c) ------------------------------------------------ */
enum flboot_jrec {
	FLBOOT_J_SNAPSHOT = 1,   /* body: flboot_jstate */
	FLBOOT_J_BEGIN = 2,      /* body: flboot_image_header */
	FLBOOT_J_DIRTY = 3,      /* body: u8 slot sector no longer known erased */
	FLBOOT_J_ERASED = 4,     /* body: u8 slot sector erased for the transfer */
	FLBOOT_J_PROGRESS = 5,   /* body: u32 durable payload offset */
	FLBOOT_J_STAGED = 6,     /* body: u8 core, flboot_imgref */
	FLBOOT_J_ABORT = 7,      /* no body */
	FLBOOT_J_ACTIVATE = 8,   /* body: u8 cores */
	FLBOOT_J_SWAP = 9,       /* body: u8 steps done */
	FLBOOT_J_COMMIT = 10,    /* no body: the swap is complete */
	FLBOOT_J_TRIAL_BOOT = 11,/* no body */
	FLBOOT_J_CONFIRM = 12,   /* no body */
	FLBOOT_J_REVERT = 13,    /* body: u8 cores, i16 reason */
	FLBOOT_J_NOP = 14,       /* no body: padding (tests) */
};
#define FLBOOT_J_HEAD 12u
#define FLBOOT_J_MAX_WORDS 12u

/** Replay the journal into s->st (reads only). */
int flboot__journal_load(flboot_store *s, const flboot_port *port);
/** Append one record (compacting into the other sector when needed) and
 *  apply it to s->st. Returns 0, FLBOOT_E_FLASH. */
int flboot__journal_append(flboot_store *s, uint8_t type, const void *body, uint32_t len);
/** Apply a record to a state (the single definition of what records mean). */
void flboot__journal_apply(flboot_jstate *st, uint8_t type, const uint8_t *body, uint32_t len);
/** The state a host reports (PENDING while a swap is requested). */
uint8_t flboot__reported_state(const flboot_jstate *st);

/* ---- images (image.c) --------------------------------------------------- */
/** Small string builder for reason texts (no libc printf). */
typedef struct flboot__str {
	char *p;
	uint32_t cap;
	uint32_t len;
} flboot__str;
void flboot__s(flboot__str *s, const char *t);
void flboot__sn(flboot__str *s, const char *t, uint32_t max);
void flboot__su(flboot__str *s, uint32_t v);
void flboot__sx(flboot__str *s, uint32_t v);
void flboot__sv(flboot__str *s, uint32_t v);

/** Magic, version, size and CRC of a header. 0 or FLBOOT_E_HEADER. */
int flboot__header_ok(const flboot_image_header *h, flboot__str *why);
/** CRC32 + SHA-256 of len bytes of flash. */
int flboot__hash_flash(flboot_store *s, uint32_t addr, uint32_t len, uint8_t *buf, uint32_t cap,
                       uint32_t *crc, uint8_t sha[32]);
/** Verify the image in the slot at sector `sector` for core: header sane,
 *  for this core's primary address, header CRC equal to ref's, payload
 *  CRC32 and SHA-256 equal to the header's. */
int flboot__verify_slot(flboot_store *s, uint8_t core, uint32_t sector, const flboot_imgref *ref,
                        uint8_t *buf, uint32_t cap, flboot__str *why);
/** Same, also handing out the CRC32 and SHA-256 computed over flash (valid
 *  when the result is 0, FLBOOT_E_CRC or FLBOOT_E_SHA). */
int flboot__verify_slot_hash(flboot_store *s, uint8_t core, uint32_t sector, const flboot_imgref *ref,
                             uint8_t *buf, uint32_t cap, flboot__str *why, uint32_t *crc_out,
                             uint8_t sha_out[32]);

/* ---- protocol engine (engine.c) ---------------------------------------- */
void flboot__engine_start(flboot *bl, uint8_t mode);

#endif
