/* fuzz_inflate.c - libFuzzer target for flboot_inflate, with zlib as the
 * oracle: whatever zlib inflates completely within the capacity, ours must
 * inflate to the same bytes.
 *
 * Input layout: bytes 0-1 = output capacity (LE, up to 64 KiB), the rest is
 * the raw deflate stream.
 */
// fuzz-sources: firmware/core/src/inflate.c
// fuzz-libs: -lz
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "flboot/inflate.h"

#define CHECK(c) do { if (!(c)) abort(); } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	size_t cap;
	uint8_t *in, *out, *ref;
	long got;
	z_stream z;
	int zr;

	if (size < 2)
		return 0;
	cap = (size_t)data[0] | (size_t)data[1] << 8;
	data += 2;
	size -= 2;
	/* exact-size copies so ASan flags any access outside them */
	in = malloc(size ? size : 1);
	memcpy(in, data, size);
	out = malloc(cap ? cap : 1);
	got = flboot_inflate(in, size, cap ? out : NULL, cap);
	CHECK(got < 0 ? got >= FLBOOT_INFLATE_E_OUTPUT : (size_t)got <= cap);

	ref = malloc(cap + 1);
	memset(&z, 0, sizeof(z));
	CHECK(inflateInit2(&z, -15) == Z_OK);
	z.next_in = in;
	z.avail_in = (uInt)size;
	z.next_out = ref;
	z.avail_out = (uInt)(cap + 1); /* one spare byte tells "fits" from "too big" */
	zr = inflate(&z, Z_FINISH);
	if (zr == Z_STREAM_END && z.total_out <= cap) {
		CHECK(got == (long)z.total_out);
		CHECK(memcmp(out, ref, z.total_out) == 0);
	}
	if (got >= 0 && zr == Z_STREAM_END)
		CHECK((size_t)got == z.total_out);
	inflateEnd(&z);
	free(ref);
	free(out);
	free(in);
	return 0;
}
