/* fuzz_frame.c - libFuzzer target for the streaming frame decoder.
 *
 * Input layout: byte 0 picks the decoder buffer size, byte 1 the payload
 * limit, byte 2 the chunking; the rest is the wire stream, fed in chunks
 * whose sizes come from the input itself. Every delivered frame must obey
 * the limits and survive a re-encode/decode round trip unchanged.
 */
// fuzz-sources: firmware/core/src/frame.c firmware/core/src/crc32.c
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "flboot/frame.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

static uint8_t reenc[FLBOOT_FRAME_MAX_WIRE];

static void check_frame(const flboot_frame_decoder *dec, const flboot_frame *f)
{
	flboot_frame_decoder d2;
	flboot_frame g;
	uint8_t *buf2;
	size_t n, used;
	int got = 0;

	CHECK(f->header.version == FLBOOT_PROTO_VERSION);
	CHECK(f->header.length <= dec->max_payload);
	CHECK(f->payload >= dec->buf && f->payload + f->header.length <= dec->buf + dec->cap);

	n = flboot_frame_encode(f->header.type, f->header.seq, f->header.flags, f->payload, f->header.length,
	                        reenc, sizeof(reenc));
	CHECK(n > 0);
	buf2 = malloc(FLBOOT_FRAME_MAX_WIRE);
	flboot_frame_decoder_init(&d2, buf2, FLBOOT_FRAME_MAX_WIRE, 0);
	used = flboot_frame_decoder_feed(&d2, reenc, n, &g, &got);
	CHECK(got == 1 && used == n);
	CHECK(g.header.type == f->header.type && g.header.seq == f->header.seq);
	CHECK(g.header.flags == f->header.flags && g.header.length == f->header.length);
	CHECK(memcmp(g.payload, f->payload, f->header.length) == 0);
	free(buf2);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	flboot_frame_decoder dec;
	uint8_t *buf;
	size_t cap, max_payload, off = 0, chunk_i = 0;
	uint8_t chunking;
	uint32_t delivered = 0;

	if (size < 3)
		return 0;
	/* 0 .. full size; small buffers exercise the overflow path. */
	cap = data[0] == 0xFF ? FLBOOT_FRAME_MAX_WIRE : (size_t)data[0] * 17u;
	max_payload = (size_t)data[1] * 18u;
	chunking = data[2];
	data += 3;
	size -= 3;

	buf = malloc(cap ? cap : 1);
	flboot_frame_decoder_init(&dec, cap ? buf : NULL, cap, max_payload);
	while (off < size) {
		size_t k;

		/* chunk sizes from the input's own bytes, or fixed small steps */
		if (chunking & 0x80)
			k = (size_t)(data[(chunk_i++ * 7u + chunking) % size] & (chunking & 0x7Fu)) + 1u;
		else
			k = (size_t)(chunking & 0x0Fu) + 1u;
		if (k > size - off)
			k = size - off;
		{
			/* a copy of exactly k bytes: ASan sees any read past the chunk */
			uint8_t *chunk = malloc(k);
			size_t coff = 0;

			memcpy(chunk, data + off, k);
			while (coff < k) {
				flboot_frame f;
				int got = 0;
				size_t used = flboot_frame_decoder_feed(&dec, chunk + coff, k - coff, &f, &got);

				CHECK(used <= k - coff);
				CHECK(used > 0);
				coff += used;
				if (got) {
					delivered++;
					check_frame(&dec, &f);
				}
			}
			free(chunk);
		}
		off += k;
	}
	CHECK(dec.stats.frames == delivered);
	CHECK(dec.len <= dec.cap);
	free(buf);
	return 0;
}
