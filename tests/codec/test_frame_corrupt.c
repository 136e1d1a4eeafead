/* Frame decoder against corruption: every bad frame is dropped, counted in
 * the right counter, and the next good frame still arrives. */
#include <stdlib.h>
#include <string.h>

#include <criterion/criterion.h>

#include "codec_util.h"
#include "frame_util.h"

enum which { W_CRC, W_LENGTH, W_COBS, W_OVERSIZED, W_VERSION, W_ANY };

static uint32_t counter(const flboot_frame_stats *st, enum which w)
{
	switch (w) {
	case W_CRC: return st->bad_crc;
	case W_LENGTH: return st->bad_length;
	case W_COBS: return st->bad_cobs;
	case W_OVERSIZED: return st->oversized;
	case W_VERSION: return st->bad_version;
	default: return t_drops(st);
	}
}

/* Sends good frame A (seq 1), then the bad bytes, then good frame C
 * (seq 3), in the chunking chosen by seed (0: one call, 1: byte by byte,
 * else random pieces). Checks that exactly A and C arrive and that the drop
 * is counted `expect` times under `w` and nowhere else. */
static void expect_dropped(const uint8_t *bad, size_t bad_len, size_t cap, size_t max_payload,
                           enum which w, uint32_t expect, unsigned seed)
{
	size_t wire_cap = bad_len + 2 * 64;
	uint8_t *wire = malloc(wire_cap);
	uint8_t *buf = malloc(cap ? cap : 1);
	struct t_sink *s = calloc(1, sizeof(*s));
	flboot_frame_decoder dec;
	rng r;
	size_t n = 0;

	n += flboot_frame_encode(FLBOOT_MSG_DATA, 1, 0, "A-payload", 9, wire, 64);
	memcpy(wire + n, bad, bad_len);
	n += bad_len;
	n += flboot_frame_encode(FLBOOT_MSG_DATA, 3, 0, "C", 1, wire + n, 64);

	flboot_frame_decoder_init(&dec, buf, cap, max_payload);
	rng_seed(&r, seed);
	for (size_t off = 0; off < n;) {
		size_t k = seed == 0 ? n - off : seed == 1 ? 1 : rng_range(&r, 1, 40);
		if (k > n - off)
			k = n - off;
		t_feed_all(&dec, wire + off, k, s);
		off += k;
	}
	cr_assert_eq(s->n, 2, "delivered %zu frames, want A and C (seed %u)", s->n, seed);
	cr_assert_eq(s->f[0].h.seq, 1);
	cr_assert_arr_eq(s->f[0].payload, "A-payload", 9);
	cr_assert_eq(s->f[1].h.seq, 3);
	cr_assert_eq(s->f[1].payload[0], 'C');
	cr_assert_eq(dec.stats.frames, 2);
	if (w == W_ANY) {
		cr_assert_geq(t_drops(&dec.stats), expect, "seed %u", seed);
	} else {
		cr_assert_eq(counter(&dec.stats, w), expect, "counter %d = %u, want %u (crc %u len %u cobs %u over %u ver %u)",
		             (int)w, counter(&dec.stats, w), expect, dec.stats.bad_crc, dec.stats.bad_length,
		             dec.stats.bad_cobs, dec.stats.oversized, dec.stats.bad_version);
		cr_assert_eq(t_drops(&dec.stats), expect, "counted in another counter too");
	}
	free(s);
	free(buf);
	free(wire);
}

static void expect_dropped_all_chunkings(const uint8_t *bad, size_t bad_len, size_t cap, size_t max_payload,
                                         enum which w, uint32_t expect)
{
	for (unsigned seed = 0; seed < 6; seed++)
		expect_dropped(bad, bad_len, cap, max_payload, w, expect, seed);
}

static size_t wire_of(struct t_frame *f, uint8_t *wire)
{
	static uint8_t raw[FLBOOT_FRAME_MAX_RAW + 16];
	return t_wire(raw, t_raw(f, raw), wire);
}

#define DEC_CAP FLBOOT_FRAME_MAX_WIRE

Test(frame_corrupt, bit_flip_in_header_payload_or_crc_is_bad_crc)
{
	static uint8_t payload[300], raw[400], wire[500];
	rng r;

	for (unsigned seed = 0; seed < 300; seed++) {
		rng_seed(&r, seed);
		size_t len = rng_range(&r, 0, sizeof(payload));
		rng_fill(&r, payload, len);
		struct t_frame f = {.version = 1, .type = 0x11, .seq = 2, .length_field = -1, .payload = payload,
		                    .payload_len = len};
		size_t rn = t_raw(&f, raw);
		/* Flip one bit in the header, the payload or the CRC, in turn. */
		size_t at;
		switch (seed % 3) {
		case 0: at = rng_range(&r, 0, 7); break;
		case 1: at = len ? 8 + rng_range(&r, 0, len - 1) : 3; break;
		default: at = rn - 1 - rng_range(&r, 0, 3); break;
		}
		raw[at] ^= (uint8_t)(1u << (rng_u32(&r) % 8));
		size_t wn = t_wire(raw, rn, wire);
		expect_dropped(wire, wn, DEC_CAP, 0, W_CRC, 1, seed % 4);
	}
}

Test(frame_corrupt, length_field_mismatch_is_bad_length)
{
	static uint8_t payload[100], wire[300];
	const long fields[] = {0, 1, 99, 101, 4352, 0xFFFF};

	memset(payload, 7, sizeof(payload));
	for (size_t i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		/* CRC is correct over the lying header: only the length check can catch it. */
		struct t_frame f = {.version = 1, .type = 2, .length_field = fields[i], .payload = payload,
		                    .payload_len = 100};
		size_t wn = wire_of(&f, wire);
		expect_dropped_all_chunkings(wire, wn, DEC_CAP, 0, W_LENGTH, 1);
	}
}

Test(frame_corrupt, shorter_than_header_plus_crc_is_bad_length)
{
	static uint8_t raw[16], wire[40];

	for (size_t n = 1; n < FLBOOT_FRAME_HEADER_SIZE + FLBOOT_FRAME_CRC_SIZE; n++) {
		memset(raw, 0x5A, n);
		raw[0] = 1;
		size_t wn = t_wire(raw, n, wire);
		expect_dropped_all_chunkings(wire, wn, DEC_CAP, 0, W_LENGTH, 1);
	}
}

Test(frame_corrupt, bad_cobs_block_running_past_the_end)
{
	/* code 0x20 promises 31 bytes, only 3 follow */
	const uint8_t bad[] = {0x00, 0x20, 1, 2, 3, 0x00};
	/* a valid looking frame whose last code byte overruns by one */
	static uint8_t raw[FLBOOT_FRAME_MAX_RAW], wire[64];
	struct t_frame f = {.version = 1, .type = 1, .length_field = -1, .payload = (const uint8_t *)"xyz",
	                    .payload_len = 3};
	size_t wn = wire_of(&f, wire);
	(void)raw;
	/* Find the last code byte and make it point one past the end. */
	size_t at = 1, last = 1;
	while (at < wn - 1) {
		last = at;
		at += wire[at];
	}
	wire[last] = (uint8_t)(wire[last] + 1);

	expect_dropped_all_chunkings(bad, sizeof(bad), DEC_CAP, 0, W_COBS, 1);
	expect_dropped_all_chunkings(wire, wn, DEC_CAP, 0, W_COBS, 1);
}

Test(frame_corrupt, unknown_version_is_bad_version)
{
	static uint8_t wire[64];
	const uint8_t versions[] = {0, 2, 0x81, 0xFF};

	for (size_t i = 0; i < sizeof(versions); i++) {
		struct t_frame f = {.version = versions[i], .type = 1, .length_field = -1,
		                    .payload = (const uint8_t *)"v", .payload_len = 1};
		size_t wn = wire_of(&f, wire);
		expect_dropped_all_chunkings(wire, wn, DEC_CAP, 0, W_VERSION, 1);
	}
}

Test(frame_corrupt, payload_above_max_payload_is_oversized)
{
	static uint8_t payload[FLBOOT_FRAME_MAX_PAYLOAD + 300], wire[FLBOOT_FRAME_MAX_WIRE + 400];
	rng r;

	rng_seed(&r, 42);
	rng_fill(&r, payload, sizeof(payload));
	/* Decoder limited to 256-byte payloads: 257 (some zeros, so it fits the
	 * buffer and is only caught by the length check) and 4000 (caught while
	 * collecting). */
	const size_t lens[] = {257, 300, 4000};
	for (size_t i = 0; i < 3; i++) {
		struct t_frame f = {.version = 1, .type = 0x11, .length_field = -1, .payload = payload,
		                    .payload_len = lens[i]};
		size_t wn = wire_of(&f, wire);
		expect_dropped_all_chunkings(wire, wn, DEC_CAP, 256, W_OVERSIZED, 1);
	}
	/* Beyond the protocol maximum even with the largest decoder. */
	struct t_frame big = {.version = 1, .type = 0x11, .length_field = -1, .payload = payload,
	                      .payload_len = FLBOOT_FRAME_MAX_PAYLOAD + 1};
	size_t wn = wire_of(&big, wire);
	expect_dropped_all_chunkings(wire, wn, DEC_CAP, 0, W_OVERSIZED, 1);
	/* At the limit it passes. */
	struct t_sink *s = calloc(1, sizeof(*s));
	uint8_t *buf = malloc(DEC_CAP);
	flboot_frame_decoder dec;
	struct t_frame ok = {.version = 1, .type = 0x11, .length_field = -1, .payload = payload, .payload_len = 256};
	wn = wire_of(&ok, wire);
	flboot_frame_decoder_init(&dec, buf, DEC_CAP, 256);
	t_feed_all(&dec, wire, wn, s);
	cr_assert_eq(s->n, 1);
	free(buf);
	free(s);
}

Test(frame_corrupt, frame_longer_than_the_buffer_is_oversized)
{
	static uint8_t payload[1000], wire[1200];

	memset(payload, 0x33, sizeof(payload)); /* no zeros: one long COBS run */
	struct t_frame f = {.version = 1, .type = 0x11, .length_field = -1, .payload = payload,
	                    .payload_len = sizeof(payload)};
	size_t wn = wire_of(&f, wire);
	/* A 128-byte buffer still takes A and C but not this one. */
	expect_dropped_all_chunkings(wire, wn, 128, 0, W_OVERSIZED, 1);
}

Test(frame_corrupt, endless_garbage_without_delimiter_is_one_oversized_drop)
{
	static uint8_t junk[50000];

	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)(1 + i % 255);
	expect_dropped(junk, sizeof(junk), DEC_CAP, 0, W_OVERSIZED, 1, 0);
	expect_dropped(junk, sizeof(junk), DEC_CAP, 0, W_OVERSIZED, 1, 2);
}

Test(frame_corrupt, truncated_frame_is_dropped_when_next_frame_starts)
{
	static uint8_t payload[600], wire[700];
	rng r;

	for (unsigned seed = 0; seed < 200; seed++) {
		rng_seed(&r, seed);
		size_t len = rng_range(&r, 0, sizeof(payload));
		rng_fill(&r, payload, len);
		size_t wn = flboot_frame_encode(0x11, 2, 0, payload, len, wire, sizeof(wire));
		/* Keep the leading 0x00 and at least one body byte, lose the rest
		 * including the trailing delimiter: C's leading 0x00 ends it. */
		size_t cut = rng_range(&r, 2, wn - 2);
		expect_dropped(wire, cut, DEC_CAP, 0, W_ANY, 1, seed % 4);
	}
}

Test(frame_corrupt, bit_flips_on_the_wire_never_deliver_the_frame)
{
	static uint8_t payload[500], wire[600];
	rng r;

	for (unsigned seed = 0; seed < 400; seed++) {
		rng_seed(&r, seed);
		size_t len = rng_range(&r, 0, sizeof(payload));
		rng_fill(&r, payload, len);
		size_t wn = flboot_frame_encode(0x11, 2, 0, payload, len, wire, sizeof(wire));
		/* 1..3 flips anywhere in the body, code bytes included. */
		int flips = (int)rng_range(&r, 1, 3);
		for (int k = 0; k < flips; k++)
			wire[rng_range(&r, 1, wn - 2)] ^= (uint8_t)(1u << (rng_u32(&r) % 8));
		expect_dropped(wire, wn, DEC_CAP, 0, W_ANY, 1, seed % 4);
	}
}

Test(frame_corrupt, garbage_between_frames_then_resync)
{
	static uint8_t junk[3000];
	rng r;

	for (unsigned seed = 0; seed < 200; seed++) {
		rng_seed(&r, seed);
		size_t n = rng_range(&r, 1, sizeof(junk));
		rng_fill(&r, junk, n);
		/* Garbage with any bytes, zeros included: drops of any kind
		 * (or none, if the garbage is all delimiters), never a frame. */
		expect_dropped(junk, n, DEC_CAP, 0, W_ANY, 0, seed % 4);
	}
}

Test(frame_corrupt, missing_delimiters)
{
	static uint8_t wire[200];
	struct t_sink *s = calloc(1, sizeof(*s));
	uint8_t *buf = malloc(DEC_CAP);
	flboot_frame_decoder dec;
	size_t a, b, c;

	/* A without its trailing 0x00: B's leading 0x00 still ends A. */
	a = flboot_frame_encode(1, 10, 0, "a", 1, wire, sizeof(wire)) - 1;
	b = flboot_frame_encode(1, 11, 0, "b", 1, wire + a, sizeof(wire) - a);
	flboot_frame_decoder_init(&dec, buf, DEC_CAP, 0);
	t_feed_all(&dec, wire, a + b, s);
	cr_assert_eq(s->n, 2);
	cr_assert_eq(s->f[0].h.seq, 10);
	cr_assert_eq(s->f[1].h.seq, 11);

	/* A's trailing and B's leading delimiter both lost: A and B run
	 * together into one bad frame; C (seq 12) still arrives. */
	memset(s, 0, sizeof(*s));
	a = flboot_frame_encode(1, 10, 0, "a", 1, wire, sizeof(wire)) - 1;
	b = flboot_frame_encode(1, 11, 0, "b", 1, wire + a, sizeof(wire) - a);
	memmove(wire + a, wire + a + 1, b - 1);
	b -= 1;
	c = flboot_frame_encode(1, 12, 0, "c", 1, wire + a + b, sizeof(wire) - a - b);
	flboot_frame_decoder_init(&dec, buf, DEC_CAP, 0);
	t_feed_all(&dec, wire, a + b + c, s);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(s->f[0].h.seq, 12);
	cr_assert_eq(t_drops(&dec.stats), 1);
	free(buf);
	free(s);
}

Test(frame_corrupt, counters_accumulate_over_many_bad_frames)
{
	static uint8_t wire[64 * 40];
	static uint8_t raw[64];
	uint8_t *buf = malloc(DEC_CAP);
	struct t_sink *s = calloc(1, sizeof(*s));
	flboot_frame_decoder dec;
	size_t n = 0;

	/* 10 bad CRC, 7 bad version, 5 bad length, then one good frame. */
	for (int i = 0; i < 22; i++) {
		struct t_frame f = {.version = 1, .type = 1, .length_field = -1,
		                    .payload = (const uint8_t *)"zz", .payload_len = 2};
		if (i < 10)
			f.crc_xor = 1 << i;
		else if (i < 17)
			f.version = 9;
		else
			f.length_field = 3;
		n += t_wire(raw, t_raw(&f, raw), wire + n);
	}
	n += flboot_frame_encode(1, 99, 0, "ok", 2, wire + n, sizeof(wire) - n);
	flboot_frame_decoder_init(&dec, buf, DEC_CAP, 0);
	t_feed_all(&dec, wire, n, s);
	cr_assert_eq(s->n, 1);
	cr_assert_eq(s->f[0].h.seq, 99);
	cr_assert_eq(dec.stats.bad_crc, 10);
	cr_assert_eq(dec.stats.bad_version, 7);
	cr_assert_eq(dec.stats.bad_length, 5);
	cr_assert_eq(dec.stats.bad_cobs + dec.stats.oversized, 0);
	free(s);
	free(buf);
}
