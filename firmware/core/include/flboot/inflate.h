/* flboot/inflate.h - raw deflate (RFC 1951) decoder into a flat buffer,
 * freestanding and allocation-free: the whole output of one DATA block lives
 * in the caller's buffer, which is also the back-reference window, so the
 * device needs no 32 KiB history. Used for compressed DATA blocks. */
#ifndef FLBOOT_INFLATE_H
#define FLBOOT_INFLATE_H
#include <stddef.h>
#include <stdint.h>
/** Inflate one complete raw deflate stream. Returns the number of bytes
 *  written (<= out_cap), or a negative value when the stream is malformed,
 *  truncated, or would write more than out_cap bytes. Never reads or writes
 *  outside the given buffers. */
long flboot_inflate(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap);

/* Negative results of flboot_inflate (added by the codec work; any negative
 * value means the block is unusable, these only tell why). */
#define FLBOOT_INFLATE_E_TRUNCATED (-1) /* input ended inside the stream      */
#define FLBOOT_INFLATE_E_DATA (-2)      /* malformed block, code or length    */
#define FLBOOT_INFLATE_E_DISTANCE (-3)  /* reference before the output start  */
#define FLBOOT_INFLATE_E_OUTPUT (-4)    /* would write more than out_cap      */
#endif
