/* ELF32 input of flasher pack: the loadable image of an STM32 application
 * (docs/package-format.md, "Input files"). Private to libflasher. */
#ifndef FLASHER_ELF_LOAD_H
#define FLASHER_ELF_LOAD_H

#include <stddef.h>
#include <stdint.h>

/** Non-zero when data starts with the ELF magic (0x7F 'E' 'L' 'F'). */
int flasher__elf_is_elf(const uint8_t *data, size_t len);

/** Flatten the PT_LOAD segments (p_filesz > 0) of an ELF32 little-endian ARM
 *  file into a payload that starts at `base`, placing each segment at its
 *  physical address (LMA) and filling gaps with 0xFF. Every segment must lie
 *  inside [base, end). `name` is used in error details. On success *out is
 *  malloc'ed (caller frees) and *out_len is the payload size.
 *  Errors: FLASHER_EFORMAT (not ELF, truncated, no loadable segment, segment
 *  outside the slot, overlapping segments), FLASHER_EUNSUPPORTED (ELF64,
 *  big-endian, not ARM), FLASHER_ENOMEM. */
int flasher__elf_load(const uint8_t *data, size_t len, const char *name, uint32_t base, uint32_t end,
                      uint8_t **out, size_t *out_len);

#endif
