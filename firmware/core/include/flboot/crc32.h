/* flboot/crc32.h - CRC-32 (IEEE 802.3, zlib's crc32()), freestanding. */
#ifndef FLBOOT_CRC32_H
#define FLBOOT_CRC32_H
#include <stddef.h>
#include <stdint.h>
/** Same contract as zlib's crc32(): start with crc = 0, feed in pieces. */
uint32_t flboot_crc32(uint32_t crc, const void *data, size_t len);
#endif
