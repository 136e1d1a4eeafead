/* What kind of file flasher pack was given: the contents decide, not the
 * name (docs/package-format.md, "Input files"). Private to libflasher. */
#ifndef FLASHER_FWINPUT_H
#define FLASHER_FWINPUT_H

#include <stddef.h>
#include <stdint.h>

typedef enum flasher__fwinput_kind {
	FLASHER__INPUT_RAW,     /* a .bin: the bytes as they run */
	FLASHER__INPUT_ELF,     /* 7F 'E' 'L' 'F' */
	FLASHER__INPUT_IHEX,    /* Intel HEX */
	FLASHER__INPUT_SREC,    /* Motorola S-record */
	FLASHER__INPUT_REFUSED, /* text or another known format: *why says what it is */
} flasher__fwinput_kind;

/** Classify data. For FLASHER__INPUT_REFUSED, *why is a static phrase
 *  that completes "'FILE' is ..." ("a text file, not firmware"). */
flasher__fwinput_kind flasher__fwinput_kind_of(const uint8_t *data, size_t len, const char **why);

#endif
