/* The vector table check of flasher pack: a Cortex-M image starts with its
 * initial stack pointer and reset handler, and those two words show whether
 * a file is an application for this core and this slot at all
 * (docs/package-format.md, "Vector table"). Private to libflasher. */
#ifndef FLASHER_VECTORS_H
#define FLASHER_VECTORS_H

#include <stddef.h>
#include <stdint.h>

/** Check the vector table at the start of payload (len bytes) of core
 *  (1 = CM7, 2 = CM4), the build for the slot whose application area starts
 *  at `load`: the initial stack pointer lies in RAM the core can reach
 *  (its top included: the stack grows down from there) and the reset
 *  handler is a Thumb address inside the payload.
 *  load 0 is a raw .bin whose reset handler points into no slot of the
 *  core: random test data and images linked at address 0 pass; a real
 *  vector table (stack pointer in RAM) that points anywhere else (the
 *  bootloader's sector, the other core's slot, RAM) is refused.
 *  `name` is the file, for the detail. 0 or FLASHER_EFORMAT. */
int flasher__vectors_check(unsigned core, const uint8_t *payload, size_t len, uint32_t load, const char *name);

#endif
