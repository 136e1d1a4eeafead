/* Address-record input of flasher pack (Intel HEX, Motorola S-record): the
 * bytes a file puts at each address, and the payload they make for one
 * slot (docs/package-format.md, "Input files"). Private to libflasher. */
#ifndef FLASHER_MEMIMAGE_H
#define FLASHER_MEMIMAGE_H

#include <stddef.h>
#include <stdint.h>

/** One run of contiguous bytes and the line of the file that starts it. */
typedef struct flasher__memrun {
	uint32_t addr;
	uint32_t len;
	size_t off; /* into flasher__memimage.bytes */
	unsigned line;
} flasher__memrun;

/** The data records of a file, in file order; contiguous records are
 *  merged into one run. Zero-initialise, free with flasher__memimage_free. */
typedef struct flasher__memimage {
	flasher__memrun *runs;
	size_t nruns, runs_cap;
	uint8_t *bytes;
	size_t nbytes, bytes_cap;
} flasher__memimage;

/** Append len bytes at addr, read from line `line` of the file.
 *  addr + len must not pass 4 GiB (the readers check). FLASHER_ENOMEM. */
int flasher__memimage_add(flasher__memimage *m, uint32_t addr, const uint8_t *data, size_t len, unsigned line);

void flasher__memimage_free(flasher__memimage *m);

/** Lowest address that holds a byte; -1 when there is none. */
int flasher__memimage_lowest(const flasher__memimage *m, uint32_t *addr);

/** The payload that starts at `base`: every byte at its address, gaps 0xFF
 *  like erased flash, ending at the highest byte. Every byte must lie in
 *  [base, end) and no address may be given twice. `name` is the file, for
 *  the error detail. *out malloc'ed (caller frees).
 *  Errors: FLASHER_EFORMAT (no data, a record outside [base, end) named by
 *  its line and range, an address given twice), FLASHER_ENOMEM. */
int flasher__memimage_flatten(const flasher__memimage *m, const char *name, uint32_t base, uint32_t end,
                              uint8_t **out, size_t *out_len);

/** Read an Intel HEX file (record types 00-05: data, end of file, extended
 *  segment and linear addresses, start addresses) into out. Every record's
 *  checksum is checked; the file must end with an end-of-file record.
 *  Errors: FLASHER_EFORMAT naming the file, the line and what is wrong;
 *  FLASHER_ECORRUPT for a checksum mismatch; FLASHER_ENOMEM. */
int flasher__ihex_parse(const uint8_t *data, size_t len, const char *name, flasher__memimage *out);

/** Read an S-record file (S0 header, S1/S2/S3 data, S5/S6 counts, S7/S8/S9
 *  termination) into out. Checksums and record counts are checked; the
 *  file must end with a termination record.
 *  Errors: as flasher__ihex_parse. */
int flasher__srec_parse(const uint8_t *data, size_t len, const char *name, flasher__memimage *out);

#endif
