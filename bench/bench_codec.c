/* bench_codec.c - throughput of the shared freestanding code on this host:
 * frame encode/decode, CRC32, SHA-256 and inflate, with zlib beside them for
 * scale. Usage: bench_codec [MiB per measurement, default 64]. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "flboot/crc32.h"
#include "flboot/frame.h"
#include "flboot/inflate.h"
#include "flboot/sha256.h"

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static uint64_t rs = 88172645463325252ull;
static uint32_t rnd(void)
{
	rs ^= rs << 13;
	rs ^= rs >> 7;
	rs ^= rs << 17;
	return (uint32_t)rs;
}

static void report(const char *what, double bytes, double secs)
{
	printf("%-44s %9.1f MB/s\n", what, bytes / secs / 1e6);
}

/* Firmware-like bytes: Thumb-2 shapes with varying immediates (deflates
 * roughly like real Cortex-M code, ~1.5-2x). */
static void fill_code(uint8_t *p, size_t n)
{
	static const uint8_t ops[][4] = {{0x2d, 0xe9, 0xf0, 0x41}, {0x00, 0x20, 0x70, 0x47},
	                                 {0x4f, 0xf0, 0x00, 0x00}, {0xd0, 0xf8, 0x00, 0x30},
	                                 {0x13, 0x4b, 0x1b, 0x68}, {0xbd, 0xe8, 0xf0, 0x81}};
	for (size_t i = 0; i < n; i += 4) {
		uint8_t ins[4];
		memcpy(ins, ops[rnd() % 6], 4);
		if (rnd() % 2)
			ins[0] = (uint8_t)rnd();
		if (rnd() % 4 == 0)
			ins[2] = (uint8_t)rnd();
		memcpy(p + i, ins, n - i < 4 ? n - i : 4);
	}
}

static void bench_frames(double total, size_t payload_len, size_t chunk)
{
	enum { NF = 64 };
	uint8_t *payload = malloc(payload_len ? payload_len : 1);
	uint8_t *wire = malloc(NF * FLBOOT_FRAME_MAX_WIRE);
	uint8_t *dbuf = malloc(FLBOOT_FRAME_MAX_WIRE);
	size_t wlen = 0, reps = (size_t)(total / ((double)payload_len * NF)) + 1;
	char label[80];
	double t0, t1, sink = 0;

	for (size_t i = 0; i < payload_len; i++)
		payload[i] = (uint8_t)rnd();
	t0 = now();
	for (size_t r = 0; r < reps; r++) {
		wlen = 0;
		for (int i = 0; i < NF; i++)
			wlen += flboot_frame_encode(0x11, (uint16_t)i, 0, payload, payload_len, wire + wlen,
			                            FLBOOT_FRAME_MAX_WIRE);
	}
	t1 = now();
	snprintf(label, sizeof(label), "frame encode, %zu B payload", payload_len);
	report(label, (double)reps * NF * (double)payload_len, t1 - t0);

	flboot_frame_decoder dec;
	flboot_frame_decoder_init(&dec, dbuf, FLBOOT_FRAME_MAX_WIRE, 0);
	t0 = now();
	for (size_t r = 0; r < reps; r++) {
		for (size_t off = 0; off < wlen;) {
			size_t k = chunk < wlen - off ? chunk : wlen - off;
			size_t c = 0;
			while (c < k) {
				flboot_frame f;
				int got;
				c += flboot_frame_decoder_feed(&dec, wire + off + c, k - c, &f, &got);
				if (got)
					sink += f.header.length;
			}
			off += k;
		}
	}
	t1 = now();
	if (dec.stats.frames != reps * NF || sink != (double)reps * NF * (double)payload_len) {
		fprintf(stderr, "decode lost frames\n");
		exit(1);
	}
	snprintf(label, sizeof(label), "frame decode, %zu B payload, %zu B reads", payload_len, chunk);
	report(label, (double)reps * NF * (double)payload_len, t1 - t0);
	free(payload);
	free(wire);
	free(dbuf);
}

int main(int argc, char **argv)
{
	double mib = argc > 1 ? atof(argv[1]) : 64.0;
	double total = mib * 1048576.0;
	size_t n = 1u << 20;
	uint8_t *buf = malloc(n);
	double t0, t1;
	volatile uint32_t vsink = 0;
	size_t reps = (size_t)(total / (double)n) + 1;

	for (size_t i = 0; i < n; i++)
		buf[i] = (uint8_t)rnd();

	printf("flasher codec benchmark (%.0f MiB per line)\n", mib);
	t0 = now();
	for (size_t r = 0; r < reps; r++)
		vsink += flboot_crc32(0, buf, n);
	t1 = now();
	report("crc32 (flboot)", (double)reps * (double)n, t1 - t0);
	t0 = now();
	for (size_t r = 0; r < reps; r++)
		vsink += (uint32_t)crc32(0, buf, (uInt)n);
	t1 = now();
	report("crc32 (zlib, for scale)", (double)reps * (double)n, t1 - t0);

	uint8_t d[32];
	t0 = now();
	for (size_t r = 0; r < reps; r++)
		flboot_sha256(buf, n, d);
	t1 = now();
	vsink += d[0];
	report("sha256 (flboot)", (double)reps * (double)n, t1 - t0);

	bench_frames(total, FLBOOT_FRAME_MAX_PAYLOAD, 64);
	bench_frames(total, FLBOOT_FRAME_MAX_PAYLOAD, 1u << 16);
	bench_frames(total, 256, 64);

	/* inflate: 4 KiB blocks of firmware-like data, as DATA frames carry */
	{
		enum { BLK = 4096, NB = 256 };
		uint8_t *src = malloc(BLK * NB), *z = malloc(NB * (BLK + 64)), *out = malloc(BLK);
		size_t zlen[NB], zoff[NB], ztot = 0;
		fill_code(src, BLK * NB);
		for (int level = 1; level <= 9; level += 5) {
			ztot = 0;
			for (int b = 0; b < NB; b++) {
				z_stream zs;
				memset(&zs, 0, sizeof(zs));
				deflateInit2(&zs, level, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
				zs.next_in = src + (size_t)b * BLK;
				zs.avail_in = BLK;
				zs.next_out = z + ztot;
				zs.avail_out = BLK + 64;
				deflate(&zs, Z_FINISH);
				zoff[b] = ztot;
				zlen[b] = zs.total_out;
				ztot += zs.total_out;
				deflateEnd(&zs);
			}
			size_t ireps = (size_t)(total / ((double)BLK * NB)) + 1;
			t0 = now();
			for (size_t r = 0; r < ireps; r++)
				for (int b = 0; b < NB; b++) {
					long got = flboot_inflate(z + zoff[b], zlen[b], out, BLK);
					if (got != BLK || memcmp(out, src + (size_t)b * BLK, BLK) != 0) {
						fprintf(stderr, "inflate mismatch\n");
						return 1;
					}
				}
			t1 = now();
			char label[80];
			snprintf(label, sizeof(label), "inflate (flboot), 4 KiB blocks, level %d, ratio %.2f", level,
			         (double)BLK * NB / (double)ztot);
			report(label, (double)ireps * BLK * NB, t1 - t0);
			t0 = now();
			for (size_t r = 0; r < ireps; r++)
				for (int b = 0; b < NB; b++) {
					uLongf ol = BLK;
					z_stream zs;
					memset(&zs, 0, sizeof(zs));
					inflateInit2(&zs, -15);
					zs.next_in = z + zoff[b];
					zs.avail_in = (uInt)zlen[b];
					zs.next_out = out;
					zs.avail_out = (uInt)ol;
					inflate(&zs, Z_FINISH);
					inflateEnd(&zs);
				}
			t1 = now();
			snprintf(label, sizeof(label), "inflate (zlib, for scale), level %d", level);
			report(label, (double)ireps * BLK * NB, t1 - t0);
		}
		free(src);
		free(z);
		free(out);
	}
	free(buf);
	return vsink == 0xFFFFFFFFu ? 2 : 0;
}
