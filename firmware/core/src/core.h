/*
 * core.h - private interfaces shared by the files of the bootloader core.
 * Not installed, not part of any contract; tests may include it to reach
 * the metadata directly (fill it, inspect it).
 */
#ifndef FLBOOT_CORE_PRIVATE_H
#define FLBOOT_CORE_PRIVATE_H

#include <stddef.h>
#include <stdint.h>

#include "flboot/flboot.h"
#include "flboot/layout.h"

typedef struct flboot_store flboot_store;
typedef struct flboot_stage flboot_stage;
typedef struct flboot_view flboot_view;
typedef struct flboot_slotv flboot_slotv;
typedef struct flboot_pair flboot_pair;

/* ---- slots -------------------------------------------------------------- */
static inline uint32_t flboot__slot_addr(uint8_t core, uint32_t slot)
{
	return FLBOOT_SLOT_ADDR(core, slot);
}
static inline uint32_t flboot__slot_sector(uint8_t core, uint32_t slot)
{
	return (flboot__slot_addr(core, slot) - FLBOOT_FLASH_BASE) / FLBOOT_SECTOR_SIZE;
}
static inline uint32_t flboot__slot_sectors(uint8_t core)
{
	return FLBOOT_CORE_SLOT_SIZE(core) / FLBOOT_SECTOR_SIZE;
}
static inline uint32_t flboot__bank(uint8_t core)
{
	return core == FLBOOT_CORE_CM7 ? 0u : 1u;
}
/* Slot sectors an image of payload_size bytes occupies. */
static inline uint32_t flboot__img_sectors(uint32_t payload_size)
{
	return (FLBOOT_HEADER_AREA + payload_size + FLBOOT_SECTOR_SIZE - 1u) / FLBOOT_SECTOR_SIZE;
}

/* ---- flash (flash.c): counted, guarded wrappers around the port -------- */
int flboot__read(flboot_store *s, uint32_t addr, void *buf, uint32_t len);
int flboot__erase(flboot_store *s, uint32_t sector);
/** Start an erase (async when the port can, else blocking). */
int flboot__erase_start(flboot_store *s, uint32_t sector);
/** Bank idle? block: wait. 1 busy (!block only), else the last erase's result. */
int flboot__erase_wait(flboot_store *s, uint32_t bank, int block);
int flboot__program(flboot_store *s, uint32_t addr, const uint8_t word[32]);
/** Program a word and read it back: 0, or FLBOOT_E_FLASH when the program
 *  fails or the word does not read back as written. */
int flboot__program_check(flboot_store *s, uint32_t addr, const uint8_t word[32]);
int flboot__word_blank(const uint8_t *w);

/* ---- metadata (meta.c) -------------------------------------------------- */
/* Staging log records (sector 7), one flash word each. */
enum flboot_lrec {
	FLBOOT_L_EPOCH = 1,    /* word 0 of a formatted log */
	FLBOOT_L_STAGE = 2,    /* a staging of (core, slot, header) starts */
	FLBOOT_L_ERASED = 3,   /* slot sector k erased for that staging */
	FLBOOT_L_DIRTY = 4,    /* slot sector k no longer known erased */
	FLBOOT_L_PROGRESS = 5, /* payload below this offset is programmed */
	FLBOOT_L_ABORT = 6,    /* the staging of core is forgotten */
	FLBOOT_L_NOP = 7,      /* padding (tests) */
};
/* Slot trailer records (slot + FLBOOT_TRAILER_OFFSET), one flash word each. */
enum flboot_trec {
	FLBOOT_T_VERIFIED = 1, /* the image verified after its transfer */
	FLBOOT_T_ACTIVATE = 2, /* this slot leads a pair: seq, partner, set id */
	FLBOOT_T_BOOT = 3,     /* one trial boot of the pair */
	FLBOOT_T_CONFIRM = 4,  /* the pair is confirmed */
	FLBOOT_T_REVERT = 5,   /* the pair is given up (reason) */
	FLBOOT_T_BAD = 6,      /* a verified image no longer verifies */
};
#define FLBOOT_TRAILER_OFFSET 0x200u
#define FLBOOT_TRAILER_WORDS ((FLBOOT_HEADER_AREA - FLBOOT_TRAILER_OFFSET) / FLBOOT_FLASH_WORD)
#define FLBOOT_LOG_WORDS (FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD)

/** Read the staging log into s (reads only). */
void flboot__log_load(flboot_store *s, const flboot_port *port);
/** Append one record about the staging of core (formatting or compacting
 *  the log sector when needed) and apply it. 0 or FLBOOT_E_FLASH. */
int flboot__log_append(flboot_store *s, uint8_t type, uint8_t core, uint8_t k, uint32_t v);
/** Record that a new staging of (core, slot, header) starts. */
int flboot__log_stage(flboot_store *s, uint8_t core, uint8_t slot, uint32_t hcrc, uint32_t size);
/** Advance background erases of the stagings' queued sectors; block_bank
 *  (0, 1 or -1): wait for that bank's erase. 0 or FLBOOT_E_FLASH. */
int flboot__pump(flboot_store *s, int block_bank);
/** Make slot sector k of core's staging erased (and logged as such). */
int flboot__stage_need(flboot_store *s, uint8_t core, uint32_t k);
/** Slot sector k holds a bad word: log it as not erased, erase it again. */
int flboot__stage_dirty(flboot_store *s, uint8_t core, uint32_t k);
/** Derive the view from the slots (reads only). */
void flboot__derive(flboot_store *s, flboot_view *v);
/** Append a record to the trailer of (core, slot). */
int flboot__trailer_append(flboot_store *s, flboot_view *v, uint8_t core, uint8_t slot, uint8_t type, uint32_t a,
                           const uint8_t *body, uint32_t blen);
/** The boot state a host is told (flboot_boot_state). */
uint8_t flboot__state(const flboot_view *v);
/** The slot BEGIN stages into for core. */
uint8_t flboot__stage_slot(const flboot_store *s, const flboot_view *v, uint8_t core);
/** Record CONFIRM for the active pair (booted trial). 0, FLBOOT_E_STATE. */
int flboot__confirm(flboot_store *s, flboot_view *v, const char **why);

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
/** Header fits (core, slot): core, load address (0 or slot + 0x400), size. */
int flboot__header_fits(const flboot_image_header *h, uint8_t core, uint32_t slot);
/** CRC32 + SHA-256 of len bytes of flash. */
int flboot__hash_flash(flboot_store *s, uint32_t addr, uint32_t len, uint8_t *buf, uint32_t cap,
                       uint32_t *crc, uint8_t sha[32]);
/** Verify the image in (core, slot): header sane and fitting the slot,
 *  payload CRC32 and SHA-256 equal to the header's, trusted. crc/sha: the
 *  values computed over flash (may be NULL). */
int flboot__verify_slot(flboot *bl, uint8_t core, uint32_t slot, flboot__str *why, uint32_t *crc, uint8_t sha[32]);
/** Verify a pair: every member, the set id and partner records, a CM7. */
int flboot__verify_pair(flboot *bl, const flboot_pair *p, flboot__str *why);
/** Hook for signed images (trust_hook.c): area_after_header = the
 *  FLBOOT_TRAILER_OFFSET - 128 bytes of the header area after the image
 *  header (signature and encryption blocks). 0 or a negative flboot_err. */
int flboot__trust_image(flboot *bl, const flboot_image_header *h, const uint8_t *area_after_header,
                        flboot__str *why);

/* ---- protocol engine (engine.c) ---------------------------------------- */
void flboot__engine_start(flboot *bl, uint8_t mode);

#endif
