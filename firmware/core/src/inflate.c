/* inflate.c - raw deflate (RFC 1951) decoder into a flat buffer.
 *
 * Written for the bootloader: no allocation, no recursion, about 1.3 KiB of
 * stack (the Huffman tables), and every read of the input and every write
 * or back-reference into the output is bounds-checked. The output buffer is
 * the window: a distance may reach back to the start of this block's output
 * and no further.
 *
 * Huffman codes are decoded canonically, one bit at a time against per-length
 * code counts (RFC 1951 3.2.2): slower than lookup tables but tiny, and
 * inflating a 4 KiB DATA block still takes far less time than programming
 * it into flash. */
#include <string.h>

#include "flboot/inflate.h"

#define MAXBITS 15u    /* longest code */
#define NLITLEN 288u   /* literal/length symbols incl. the two unused ones */
#define NDIST 30u      /* distance symbols that can occur */
#define NCLEN 19u      /* code length code symbols */

struct huff {
	uint16_t count[MAXBITS + 1]; /* codes of each length; count[0] unused */
	uint16_t *symbol;            /* symbols ordered by code */
};

struct state {
	const uint8_t *in;
	size_t in_len;
	size_t in_pos;
	uint32_t bitbuf;
	unsigned bitcnt;
	uint8_t *out;
	size_t out_cap;
	size_t out_pos;
};

/* Take n (<= 16) bits, least significant first. Returns -1 when the input
 * ends first. */
static long bits(struct state *s, unsigned n)
{
	uint32_t v;

	while (s->bitcnt < n) {
		if (s->in_pos >= s->in_len)
			return -1;
		s->bitbuf |= (uint32_t)s->in[s->in_pos++] << s->bitcnt;
		s->bitcnt += 8;
	}
	v = s->bitbuf & ((1u << n) - 1u);
	s->bitbuf >>= n;
	s->bitcnt -= n;
	return (long)v;
}

/* Build a canonical decoding table from code lengths. Returns 0 for a
 * complete code, > 0 for an incomplete one, < 0 for an over-subscribed one. */
static int build(struct huff *h, const uint8_t *length, unsigned n)
{
	uint16_t offs[MAXBITS + 1];
	unsigned len, sym;
	int left;

	memset(h->count, 0, sizeof(h->count));
	for (sym = 0; sym < n; sym++)
		h->count[length[sym]]++;
	if (h->count[0] == n)
		return 0; /* no codes: decode() fails if one is ever used */
	left = 1;
	for (len = 1; len <= MAXBITS; len++) {
		left <<= 1;
		left -= h->count[len];
		if (left < 0)
			return -1;
	}
	offs[1] = 0;
	for (len = 1; len < MAXBITS; len++)
		offs[len + 1] = (uint16_t)(offs[len] + h->count[len]);
	for (sym = 0; sym < n; sym++)
		if (length[sym])
			h->symbol[offs[length[sym]]++] = (uint16_t)sym;
	return left;
}

/* Decode one symbol. Codes are packed most significant bit first, so the
 * code is built up a bit at a time and compared against the first code of
 * each length. Returns the symbol, -1 at end of input, -2 for a bit
 * pattern that is no code. */
static int decode(struct state *s, const struct huff *h)
{
	int code = 0, first = 0, index = 0;
	unsigned len;

	for (len = 1; len <= MAXBITS; len++) {
		long b = bits(s, 1);
		int count;

		if (b < 0)
			return -1;
		code |= (int)b;
		count = h->count[len];
		if (code - first < count)
			return h->symbol[index + (code - first)];
		index += count;
		first += count;
		first <<= 1;
		code <<= 1;
	}
	return -2;
}

static const uint16_t len_base[29] = {
	3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31,
	35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
static const uint8_t len_extra[29] = {
	0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2,
	3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const uint16_t dist_base[30] = {
	1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193,
	257, 385, 513, 769, 1025, 1537, 2049, 3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const uint8_t dist_extra[30] = {
	0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6,
	7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* Decode literals and matches until end of block. */
static long codes(struct state *s, const struct huff *lencode, const struct huff *distcode)
{
	for (;;) {
		int sym = decode(s, lencode);
		long e;
		size_t len, dist;

		if (sym < 0)
			return sym == -1 ? FLBOOT_INFLATE_E_TRUNCATED : FLBOOT_INFLATE_E_DATA;
		if (sym < 256) {
			if (s->out_pos >= s->out_cap)
				return FLBOOT_INFLATE_E_OUTPUT;
			s->out[s->out_pos++] = (uint8_t)sym;
			continue;
		}
		if (sym == 256)
			return 0;
		sym -= 257;
		if (sym >= 29)
			return FLBOOT_INFLATE_E_DATA; /* 286, 287 never occur */
		e = bits(s, len_extra[sym]);
		if (e < 0)
			return FLBOOT_INFLATE_E_TRUNCATED;
		len = len_base[sym] + (size_t)e;

		sym = decode(s, distcode);
		if (sym < 0)
			return sym == -1 ? FLBOOT_INFLATE_E_TRUNCATED : FLBOOT_INFLATE_E_DATA;
		if (sym >= (int)NDIST)
			return FLBOOT_INFLATE_E_DATA;
		e = bits(s, dist_extra[sym]);
		if (e < 0)
			return FLBOOT_INFLATE_E_TRUNCATED;
		dist = dist_base[sym] + (size_t)e;

		if (dist > s->out_pos)
			return FLBOOT_INFLATE_E_DISTANCE;
		if (len > s->out_cap - s->out_pos)
			return FLBOOT_INFLATE_E_OUTPUT;
		/* Byte by byte: a match may overlap the bytes it produces. */
		{
			uint8_t *d = s->out + s->out_pos;
			const uint8_t *from = d - dist;
			size_t k;

			for (k = 0; k < len; k++)
				d[k] = from[k];
			s->out_pos += len;
		}
	}
}

static long stored(struct state *s)
{
	size_t len, nlen;

	/* Skip to a byte boundary; whole bytes still in bitbuf are given back
	 * to the input (bits() fetches at most what it needs, so there are
	 * fewer than 8 left). */
	s->bitbuf = 0;
	s->bitcnt = 0;
	if (s->in_len - s->in_pos < 4)
		return FLBOOT_INFLATE_E_TRUNCATED;
	len = (size_t)s->in[s->in_pos] | (size_t)s->in[s->in_pos + 1] << 8;
	nlen = (size_t)s->in[s->in_pos + 2] | (size_t)s->in[s->in_pos + 3] << 8;
	s->in_pos += 4;
	if (len != (~nlen & 0xFFFFu))
		return FLBOOT_INFLATE_E_DATA;
	if (len > s->in_len - s->in_pos)
		return FLBOOT_INFLATE_E_TRUNCATED;
	if (len > s->out_cap - s->out_pos)
		return FLBOOT_INFLATE_E_OUTPUT;
	if (len)
		memcpy(s->out + s->out_pos, s->in + s->in_pos, len);
	s->in_pos += len;
	s->out_pos += len;
	return 0;
}

/* Tables for one block; kept together so the caller owns all of the stack. */
struct tables {
	uint16_t lensym[NLITLEN];
	uint16_t distsym[NDIST + 2];
	uint8_t lengths[NLITLEN + NDIST + 2];
	struct huff lencode, distcode;
};

static long fixed(struct state *s, struct tables *t)
{
	unsigned sym;

	for (sym = 0; sym < 144; sym++)
		t->lengths[sym] = 8;
	for (; sym < 256; sym++)
		t->lengths[sym] = 9;
	for (; sym < 280; sym++)
		t->lengths[sym] = 7;
	for (; sym < NLITLEN; sym++)
		t->lengths[sym] = 8;
	build(&t->lencode, t->lengths, NLITLEN);
	/* 32 fixed distance codes of 5 bits; 30 and 31 are rejected in codes(). */
	for (sym = 0; sym < NDIST + 2; sym++)
		t->lengths[sym] = 5;
	build(&t->distcode, t->lengths, NDIST + 2);
	return codes(s, &t->lencode, &t->distcode);
}

static long dynamic(struct state *s, struct tables *t)
{
	static const uint8_t order[NCLEN] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15};
	long nlen, ndist, ncode, v;
	unsigned idx;
	int err;

	nlen = bits(s, 5);
	ndist = bits(s, 5);
	ncode = bits(s, 4);
	if (nlen < 0 || ndist < 0 || ncode < 0)
		return FLBOOT_INFLATE_E_TRUNCATED;
	nlen += 257;
	ndist += 1;
	ncode += 4;
	if (nlen > 286 || ndist > 30)
		return FLBOOT_INFLATE_E_DATA;

	/* Code length code: reuse the literal table's storage. */
	for (idx = 0; idx < (unsigned)ncode; idx++) {
		v = bits(s, 3);
		if (v < 0)
			return FLBOOT_INFLATE_E_TRUNCATED;
		t->lengths[order[idx]] = (uint8_t)v;
	}
	for (; idx < NCLEN; idx++)
		t->lengths[order[idx]] = 0;
	if (build(&t->lencode, t->lengths, NCLEN) != 0)
		return FLBOOT_INFLATE_E_DATA; /* must be complete */

	idx = 0;
	while (idx < (unsigned)(nlen + ndist)) {
		int sym = decode(s, &t->lencode);
		unsigned rep;
		uint8_t val = 0;

		if (sym < 0)
			return sym == -1 ? FLBOOT_INFLATE_E_TRUNCATED : FLBOOT_INFLATE_E_DATA;
		if (sym < 16) {
			t->lengths[idx++] = (uint8_t)sym;
			continue;
		}
		if (sym == 16) {
			if (idx == 0)
				return FLBOOT_INFLATE_E_DATA; /* nothing to repeat */
			val = t->lengths[idx - 1];
			v = bits(s, 2);
			rep = 3;
		} else if (sym == 17) {
			v = bits(s, 3);
			rep = 3;
		} else {
			v = bits(s, 7);
			rep = 11;
		}
		if (v < 0)
			return FLBOOT_INFLATE_E_TRUNCATED;
		rep += (unsigned)v;
		if (idx + rep > (unsigned)(nlen + ndist))
			return FLBOOT_INFLATE_E_DATA;
		while (rep--)
			t->lengths[idx++] = val;
	}
	if (t->lengths[256] == 0)
		return FLBOOT_INFLATE_E_DATA; /* no end-of-block code */

	/* Incomplete codes are only legal as a single code (RFC 1951 allows
	 * one distance code; zlib also emits a lone literal/length code). */
	err = build(&t->lencode, t->lengths, (unsigned)nlen);
	if (err < 0 || (err > 0 && nlen - t->lencode.count[0] != 1))
		return FLBOOT_INFLATE_E_DATA;
	err = build(&t->distcode, t->lengths + nlen, (unsigned)ndist);
	if (err < 0 || (err > 0 && ndist - t->distcode.count[0] != 1))
		return FLBOOT_INFLATE_E_DATA;
	return codes(s, &t->lencode, &t->distcode);
}

long flboot_inflate(const uint8_t *in, size_t in_len, uint8_t *out, size_t out_cap)
{
	struct state s;
	struct tables t;
	long last, type, err;

	if ((in == NULL && in_len) || (out == NULL && out_cap))
		return FLBOOT_INFLATE_E_DATA;
	memset(&s, 0, sizeof(s));
	s.in = in;
	s.in_len = in_len;
	s.out = out;
	s.out_cap = out_cap;
	t.lencode.symbol = t.lensym;
	t.distcode.symbol = t.distsym;

	do {
		last = bits(&s, 1);
		type = bits(&s, 2);
		if (last < 0 || type < 0)
			return FLBOOT_INFLATE_E_TRUNCATED;
		switch (type) {
		case 0:
			err = stored(&s);
			break;
		case 1:
			err = fixed(&s, &t);
			break;
		case 2:
			err = dynamic(&s, &t);
			break;
		default:
			err = FLBOOT_INFLATE_E_DATA;
			break;
		}
		if (err < 0)
			return err;
	} while (!last);
	/* out_pos <= out_cap, and callers' blocks are far below LONG_MAX. */
	return (long)s.out_pos;
}
