/*
 * flashsim.h - a model of the STM32H755 flash for the host port and tests.
 *
 * Geometry from flboot/layout.h: 2 MiB from FLBOOT_FLASH_BASE in 16 sectors
 * of 128 KiB (two banks). Semantics that matter to a bootloader:
 *   - erased flash reads 0xFF;
 *   - a 32-byte flash word is programmed once per erase; programming it a
 *     second time fails with FLBOOT_E_FLASH and leaves the word with a
 *     double ECC error, as on the chip (even for 1 -> 0 only changes);
 *   - reading a range that holds an ECC-corrupt word returns FLBOOT_E_ECC;
 *   - unaligned or out-of-range program/erase returns FLBOOT_E_FLASH.
 * Power cuts can be armed at any erase/program operation and tear it
 * (before, during or after the operation); from then on the flash is
 * unpowered until flashsim_power_on().
 *
 * The state (data and per-word state) lives in RAM and, when opened with a
 * path, in a file (mapped shared) that holds every operation as it is
 * made, so it survives the process, even a killed one (a process restart
 * is a power cycle). The file is
 *   "FLSIM001" | 8 bytes reserved | data (2 MiB) | one state byte per word.
 *
 * A flashsim handle is used from one thread at a time.
 */
#ifndef FLASHSIM_H
#define FLASHSIM_H

#include <stddef.h>
#include <stdint.h>

#include "flboot/layout.h"
#include "flboot/proto.h"

typedef struct flashsim flashsim;

/** Per-word state as kept by the model. */
enum flashsim_word_state {
	FLASHSIM_WORD_ERASED = 0,     /* reads 0xFF, may be programmed */
	FLASHSIM_WORD_PROGRAMMED = 1, /* programmed since the last erase */
	FLASHSIM_WORD_CORRUPT = 2,    /* double ECC error: reads fail */
	/** reads its data (0xFF) without error but is not reliably erased: a
	 *  program reports success and leaves wrong data (a torn program or
	 *  erase of kind FLASHSIM_TORN_WEAK, a worn-out sector) */
	FLASHSIM_WORD_WEAK = 3,
};

/** What a cut DURING an operation leaves (the chip does all of these). */
enum flashsim_torn {
	/** a torn program leaves noise with an ECC error; a torn erase a mix
	 *  of erased, old and ECC-corrupt words (the default) */
	FLASHSIM_TORN_ECC = 0,
	/** the same, but the ECC miscorrects: the garbage reads back as wrong
	 *  data without an error */
	FLASHSIM_TORN_MISCORRECT = 1,
	/** a torn program leaves a word that reads 0xFF but cannot be
	 *  programmed cleanly; a torn erase a sector that reads blank
	 *  everywhere but is not reliably erased (weak words) */
	FLASHSIM_TORN_WEAK = 2,
};

/** Where in an operation an armed power cut strikes. */
enum flashsim_cut_phase {
	FLASHSIM_CUT_BEFORE = 0, /* the operation does nothing */
	FLASHSIM_CUT_DURING = 1, /* the operation is torn */
	FLASHSIM_CUT_AFTER = 2,  /* the operation completes */
};

/** Operation counters since open (reads are counted too, for tests). */
typedef struct flashsim_stats {
	uint64_t erases;   /**< erase calls while powered (the cut one included) */
	uint64_t programs; /**< program calls while powered (the cut one included) */
	uint64_t reads;    /**< read calls while powered */
	uint64_t failed;   /**< calls that returned an error (any kind) */
	uint64_t ecc_reads;/**< reads that returned FLBOOT_E_ECC */
	/** erases that reached sector n (a torn one included; refused ones not) */
	uint64_t sector_erases[FLBOOT_SECTOR_COUNT];
	uint64_t word_programs; /**< programs that reached a word (torn included) */
	/** modelled busy time of bank 0 (sectors 0-7) and 1 (8-15), in us:
	 *  FLASHSIM_ERASE_US per erase (half an erase for a torn one),
	 *  FLASHSIM_PROGRAM_US per program, whether or not the timing sleeps */
	uint64_t bank_busy_us[2];
} flashsim_stats;

/* Typical timings used by flashsim_set_timing(fs, 1) (DESIGN.md, DS12919):
 * sector erase 1.1 s typ. (2.2 s max) at x32 parallelism, flash-word program
 * 100-300 us; we take the typical erase and the middle of the program range. */
#define FLASHSIM_ERASE_US 1100000u
#define FLASHSIM_SECTORS_PER_BANK (FLBOOT_BANK_SIZE / FLBOOT_SECTOR_SIZE)
#define FLASHSIM_PROGRAM_US 200u

/** Size of the state file / snapshot in bytes. */
#define FLASHSIM_WORDS (FLBOOT_FLASH_SIZE / FLBOOT_FLASH_WORD)
#define FLASHSIM_FILE_HEADER 16u
#define FLASHSIM_STATE_BYTES (FLASHSIM_FILE_HEADER + FLBOOT_FLASH_SIZE + FLASHSIM_WORDS)

/** Open a flash. path NULL: RAM only, fully erased. Otherwise the file is
 *  created fully erased if absent, else loaded (it must be a flashsim file).
 *  Returns 0 and *out, or a negative errno value (-EINVAL for a file that is
 *  not a flashsim file or has the wrong size). */
int flashsim_open(flashsim **out, const char *path);

/** Close and free; accepts NULL. The file already holds every operation. */
void flashsim_close(flashsim *fs);

/** flboot_port.flash_read: 0, FLBOOT_E_ECC (a corrupt word in the range),
 *  or FLBOOT_E_FLASH (out of range, or unpowered). */
int flashsim_read(void *fs, uint32_t addr, void *buf, uint32_t len);

/** flboot_port.flash_erase: 0 or FLBOOT_E_FLASH. */
int flashsim_erase(void *fs, uint32_t sector);

/** flboot_port.flash_erase_start: starts the erase and returns; its bank
 *  (sectors 0-7 or 8-15) stays busy for FLASHSIM_ERASE_US of modelled time
 *  (real timing), while the other bank works on. Any later read, program
 *  or erase touching the bank first waits for the end. The contents change
 *  at once (nothing can read them before the end). A power cut strikes at
 *  the start, as for flashsim_erase. 0, or FLBOOT_E_FLASH (not started). */
int flashsim_erase_start(void *fs, uint32_t sector);

/** flboot_port.flash_wait: bank 0 or 1. 1 while the bank's erase runs
 *  (!block only), else the result of the erase started last on the bank
 *  (0 if none). Without real timing an erase ends at once. */
int flashsim_wait(void *fs, uint32_t bank, int block);

/** Microseconds until the erase started with flashsim_erase_start on bank
 *  ends (0: none running): when a caller that polls should look again. */
uint64_t flashsim_busy_left_us(const flashsim *fs, uint32_t bank);

/** flboot_port.flash_program: 0 or FLBOOT_E_FLASH. */
int flashsim_program(void *fs, uint32_t addr, const uint8_t word[32]);

/** Erase + program calls made while powered, since open. */
uint64_t flashsim_ops(const flashsim *fs);

/** Counters by kind. */
void flashsim_get_stats(const flashsim *fs, flashsim_stats *out);

/** State of the flash word holding addr (FLASHSIM_WORD_*), -1 if out of range. */
int flashsim_word_state(const flashsim *fs, uint32_t addr);

/** Arm a power cut at the op_number-th erase/program from now (1 = the next
 *  one) in the given phase (FLASHSIM_CUT_*). DURING tears the operation: a
 *  program leaves garbage with an ECC error; an erase leaves the sector a
 *  mix (chosen by seed) of erased words, old words and corrupt words. In
 *  every phase the flash is unpowered afterwards: every call returns
 *  FLBOOT_E_FLASH and changes nothing until flashsim_power_on(). The cut
 *  operation returns FLBOOT_E_FLASH for BEFORE/DURING and 0 for AFTER.
 *  op_number 0 disarms. */
void flashsim_arm_cut(flashsim *fs, uint64_t op_number, int phase, uint64_t seed);

/** flashsim_arm_cut with the kind of damage a DURING cut leaves
 *  (enum flashsim_torn); flashsim_arm_cut is FLASHSIM_TORN_ECC. */
void flashsim_arm_cut_torn(flashsim *fs, uint64_t op_number, int phase, uint64_t seed, int torn);

/** End of life: once a sector has been erased cycles times since open, its
 *  erases fail (FLBOOT_E_FLASH; the sector keeps its contents but some
 *  words turn weak). 0 (default): no limit. */
void flashsim_set_endurance(flashsim *fs, uint32_t cycles);

/** 1 once an armed cut has struck (until flashsim_power_on), else 0. */
int flashsim_cut_happened(const flashsim *fs);

/** Power comes back: clears the cut (and any armed cut); contents stay. */
void flashsim_power_on(flashsim *fs);

/** Copy the whole state (data + word states) into a malloc'd buffer the
 *  caller frees. Returns 0 or -ENOMEM. */
int flashsim_snapshot(const flashsim *fs, void **buf, size_t *len);

/** Replace the whole state with a snapshot (written through to the file).
 *  Power and armed cuts are left as they are. Returns 0, -EINVAL for a
 *  buffer that is not a snapshot, or a negative errno from the file. */
int flashsim_restore(flashsim *fs, const void *buf, size_t len);

/** real != 0: erase and program take their typical time (see
 *  FLASHSIM_ERASE_US / FLASHSIM_PROGRAM_US) on an absolute schedule per
 *  bank: a blocking call sleeps until its operation's modelled end, so a
 *  run's wall time is the datasheet sum (not that plus one sleep overshoot
 *  per word); the two banks are independent, one operation each at a time
 *  (flashsim_erase_start runs an erase in the background). Default 0:
 *  instant. */
void flashsim_set_timing(flashsim *fs, int real);

/** Write protection: bit n set = sector n refuses erase/program with
 *  FLBOOT_E_FLASH (WPSN option bytes). Default 0. */
void flashsim_set_protect(flashsim *fs, uint32_t sector_mask);

#endif
