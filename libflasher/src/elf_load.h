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

/** Lowest load address (LMA) of a PT_LOAD segment with file bytes, to see
 *  which slot the file is linked for. -1 if there is none or the headers
 *  are not sound (flasher__elf_load then says why). */
int flasher__elf_first_lma(const uint8_t *data, size_t len, uint32_t *lma);

/** Turn payload (payload_len bytes at base, flattened by flasher__elf_load
 *  from this file, linked for the slot at from_slot) into the image a link
 *  for to_slot gives, by applying again the relocations the file keeps
 *  (-Wl,--emit-relocs) with addresses in [from_slot, from_slot + slot_size]
 *  moved by to_slot - from_slot. Both slots 64 KiB aligned.
 *  Errors: FLASHER_ENOTFOUND (no relocations: not linked with
 *  --emit-relocs), FLASHER_EUNSUPPORTED naming the relocation type and
 *  place that cannot move, FLASHER_EFORMAT (malformed sections). */
int flasher__elf_relocate(const uint8_t *data, size_t len, const char *name, uint32_t from_slot, uint32_t to_slot,
                          uint32_t slot_size, uint32_t base, uint8_t *payload, size_t payload_len);

#endif
