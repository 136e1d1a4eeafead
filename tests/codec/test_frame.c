/* Frame codec round trips: random frames in random chunkings. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>
#include <criterion/parameterized.h>

#include "codec_util.h"
#include "frame_util.h"

#define NFRAMES 12

struct gen {
	uint8_t type, flags;
	uint16_t seq;
	size_t len;
	uint8_t *payload;
};

static size_t pick_len(rng *r, size_t max)
{
	switch (rng_u32(r) % 6) {
	case 0: return 0;
	case 1: return max;
	case 2: return rng_range(r, 0, 16);
	default: return rng_range(r, 0, max);
	}
}

static void pick_payload(rng *r, uint8_t *p, size_t n)
{
	/* Mix random bytes with long zero and long non-zero runs: the COBS
	 * edge cases (254-byte blocks, zeros at block ends). */
	switch (rng_u32(r) % 4) {
	case 0: memset(p, 0, n); break;
	case 1: memset(p, 0xA5, n); break;
	case 2:
		rng_fill(r, p, n);
		for (size_t i = 0; i < n; i++)
			if (rng_u32(r) % 3 == 0)
				p[i] = 0;
		break;
	default: rng_fill(r, p, n); break;
	}
}

enum chunking { CHUNK_BYTE, CHUNK_RANDOM, CHUNK_ALL, CHUNK_COUNT };

static void round_trip(uint64_t seed, enum chunking how)
{
	rng r;
	struct gen g[NFRAMES];
	size_t wire_cap = NFRAMES * FLBOOT_FRAME_MAX_WIRE;
	uint8_t *wire = malloc(wire_cap);
	uint8_t *dbuf = malloc(FLBOOT_FRAME_MAX_WIRE);
	size_t wlen = 0;
	flboot_frame_decoder dec;

	rng_seed(&r, seed);
	for (int i = 0; i < NFRAMES; i++) {
		g[i].type = (uint8_t)rng_u32(&r);
		g[i].flags = (uint8_t)rng_u32(&r);
		g[i].seq = (uint16_t)rng_u32(&r);
		g[i].len = pick_len(&r, FLBOOT_FRAME_MAX_PAYLOAD);
		g[i].payload = malloc(g[i].len + 1);
		pick_payload(&r, g[i].payload, g[i].len);
		size_t n = flboot_frame_encode(g[i].type, g[i].seq, g[i].flags, g[i].payload, g[i].len,
		                               wire + wlen, wire_cap - wlen);
		cr_assert_gt(n, 0, "seed %llu frame %d: encode failed (len %zu)", (unsigned long long)seed, i, g[i].len);
		/* Only the delimiters may be zero. */
		cr_assert_eq(wire[wlen], 0);
		cr_assert_eq(wire[wlen + n - 1], 0);
		cr_assert_null(memchr(wire + wlen + 1, 0, n - 2), "zero byte inside a COBS body");
		cr_assert_leq(n, FLBOOT_FRAME_MAX_WIRE);
		wlen += n;
	}

	flboot_frame_decoder_init(&dec, dbuf, FLBOOT_FRAME_MAX_WIRE, FLBOOT_FRAME_MAX_PAYLOAD);
	size_t off = 0;
	int next = 0;
	while (off < wlen) {
		size_t chunk;
		switch (how) {
		case CHUNK_BYTE: chunk = 1; break;
		case CHUNK_RANDOM: chunk = rng_range(&r, 1, 3000); break;
		default: chunk = wlen; break;
		}
		if (chunk > wlen - off)
			chunk = wlen - off;
		/* Feed one chunk to exhaustion, like a transport read loop. */
		size_t coff = 0;
		while (coff < chunk) {
			flboot_frame f;
			int got = 0;
			size_t used = flboot_frame_decoder_feed(&dec, wire + off + coff, chunk - coff, &f, &got);
			cr_assert(used > 0, "decoder made no progress");
			cr_assert_leq(used, chunk - coff);
			coff += used;
			if (!got)
				continue;
			cr_assert_lt(next, NFRAMES, "more frames than were sent");
			cr_assert_eq(f.header.version, FLBOOT_PROTO_VERSION);
			cr_assert_eq(f.header.type, g[next].type, "seed %llu frame %d", (unsigned long long)seed, next);
			cr_assert_eq(f.header.seq, g[next].seq);
			cr_assert_eq(f.header.flags, g[next].flags);
			cr_assert_eq(f.header.reserved, 0);
			cr_assert_eq(f.header.length, g[next].len);
			if (g[next].len)
				cr_assert_arr_eq(f.payload, g[next].payload, g[next].len, "payload of frame %d", next);
			/* A delivered frame ends at its delimiter. */
			cr_assert_eq(wire[off + coff - 1], 0);
			next++;
		}
		off += chunk;
	}
	cr_assert_eq(next, NFRAMES, "seed %llu: delivered %d of %d", (unsigned long long)seed, next, NFRAMES);
	cr_assert_eq(dec.stats.frames, NFRAMES);
	cr_assert_eq(t_drops(&dec.stats), 0, "good frames must not be counted as drops");
	for (int i = 0; i < NFRAMES; i++)
		free(g[i].payload);
	free(wire);
	free(dbuf);
}

ParameterizedTestParameters(frame_roundtrip, random_frames)
{
	static unsigned seeds[48];
	for (unsigned i = 0; i < 48; i++)
		seeds[i] = i;
	return cr_make_param_array(unsigned, seeds, 48);
}

ParameterizedTest(unsigned *seed, frame_roundtrip, random_frames)
{
	for (int how = 0; how < CHUNK_COUNT; how++)
		round_trip(*seed, (enum chunking)how);
}

Test(frame_encode, matches_independent_cobs)
{
	/* The encoder and the test's own textbook COBS agree byte for byte. */
	static uint8_t payload[FLBOOT_FRAME_MAX_PAYLOAD], raw[FLBOOT_FRAME_MAX_RAW];
	static uint8_t a[FLBOOT_FRAME_MAX_WIRE], b[FLBOOT_FRAME_MAX_WIRE + 8];
	rng r;

	for (unsigned seed = 0; seed < 100; seed++) {
		rng_seed(&r, seed);
		size_t len = pick_len(&r, FLBOOT_FRAME_MAX_PAYLOAD);
		pick_payload(&r, payload, len);
		struct t_frame f = {.version = FLBOOT_PROTO_VERSION, .type = 0x11, .seq = (uint16_t)seed,
		                    .flags = 1, .length_field = -1, .payload = payload, .payload_len = len};
		size_t na = flboot_frame_encode(0x11, (uint16_t)seed, 1, payload, len, a, sizeof(a));
		size_t rn = t_raw(&f, raw);
		size_t nb = t_wire(raw, rn, b);
		cr_assert_eq(na, nb, "seed %u len %zu", seed, len);
		cr_assert_arr_eq(a, b, na);
	}
}

Test(frame_encode, rejects_too_large_or_small_buffer)
{
	static uint8_t payload[FLBOOT_FRAME_MAX_PAYLOAD + 1], out[FLBOOT_FRAME_MAX_WIRE + 64];

	memset(payload, 0xFF, sizeof(payload));
	cr_assert_eq(flboot_frame_encode(1, 0, 0, payload, FLBOOT_FRAME_MAX_PAYLOAD + 1, out, sizeof(out)), 0);
	/* The worst case (no zeros at all) fits FLBOOT_FRAME_MAX_WIRE exactly. */
	cr_assert_gt(flboot_frame_encode(1, 0, 0, payload, FLBOOT_FRAME_MAX_PAYLOAD, out, FLBOOT_FRAME_MAX_WIRE), 0);
	/* An empty payload needs 1 + 13 + 1 bytes at worst; one less fails. */
	cr_assert_eq(flboot_frame_encode(1, 0, 0, NULL, 0, out, 14), 0);
	size_t n = flboot_frame_encode(1, 0, 0, NULL, 0, out, 15);
	cr_assert(n > 0 && n <= 15);
	cr_assert_eq(flboot_frame_encode(1, 0, 0, NULL, 5, out, sizeof(out)), 0, "NULL payload with a length");
}

Test(frame_decode, one_frame_per_call_and_rest_consumed_later)
{
	static uint8_t wire[3 * 64], buf[FLBOOT_FRAME_MAX_WIRE];
	size_t n = 0;
	flboot_frame_decoder dec;
	flboot_frame f;
	int got;

	for (int i = 0; i < 3; i++)
		n += flboot_frame_encode(FLBOOT_MSG_HELLO, (uint16_t)(100 + i), 0, "hi", 2, wire + n, sizeof(wire) - n);
	flboot_frame_decoder_init(&dec, buf, sizeof(buf), 0);
	size_t off = 0;
	for (int i = 0; i < 3; i++) {
		size_t used = flboot_frame_decoder_feed(&dec, wire + off, n - off, &f, &got);
		cr_assert_eq(got, 1);
		cr_assert_eq(f.header.seq, 100 + i);
		cr_assert_arr_eq(f.payload, "hi", 2);
		off += used;
	}
	cr_assert_eq(off, n, "the third frame ends the input");
	cr_assert_eq(flboot_frame_decoder_feed(&dec, wire, 0, &f, &got), 0);
	cr_assert_eq(got, 0);
}

Test(frame_decode, idle_delimiters_are_not_errors)
{
	static uint8_t zeros[1000], buf[FLBOOT_FRAME_MAX_WIRE];
	flboot_frame_decoder dec;
	flboot_frame f;
	int got;

	flboot_frame_decoder_init(&dec, buf, sizeof(buf), 0);
	cr_assert_eq(flboot_frame_decoder_feed(&dec, zeros, sizeof(zeros), &f, &got), sizeof(zeros));
	cr_assert_eq(got, 0);
	cr_assert_eq(dec.stats.frames + t_drops(&dec.stats), 0);
}

Test(frame_decode, max_payload_zero_means_protocol_maximum)
{
	static uint8_t payload[FLBOOT_FRAME_MAX_PAYLOAD], wire[FLBOOT_FRAME_MAX_WIRE], buf[FLBOOT_FRAME_MAX_WIRE];
	flboot_frame_decoder dec;
	struct t_sink *s = calloc(1, sizeof(*s));

	size_t n = flboot_frame_encode(FLBOOT_MSG_DATA, 7, 0, payload, sizeof(payload), wire, sizeof(wire));
	flboot_frame_decoder_init(&dec, buf, sizeof(buf), 0);
	t_feed_all(&dec, wire, n, s);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(s->f[0].h.length, FLBOOT_FRAME_MAX_PAYLOAD);
	free(s);
}
