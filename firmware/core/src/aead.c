/* aead.c - ChaCha20 (RFC 8439), HChaCha20, Poly1305 and their XChaCha20-
 * Poly1305 IETF composition, decryption side only (flboot/aead.h). */
#include <string.h>

#include "flboot/aead.h"

#define ROTL32(x, n) ((uint32_t)(((x) << (n)) | ((x) >> (32 - (n)))))

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

#define QR(a, b, c, d)                                                                                       \
	do {                                                                                                     \
		a += b;                                                                                              \
		d = ROTL32(d ^ a, 16);                                                                               \
		c += d;                                                                                              \
		b = ROTL32(b ^ c, 12);                                                                               \
		a += b;                                                                                              \
		d = ROTL32(d ^ a, 8);                                                                                \
		c += d;                                                                                              \
		b = ROTL32(b ^ c, 7);                                                                                \
	} while (0)

static void rounds(uint32_t x[16])
{
	for (int i = 0; i < 10; i++) {
		QR(x[0], x[4], x[8], x[12]);
		QR(x[1], x[5], x[9], x[13]);
		QR(x[2], x[6], x[10], x[14]);
		QR(x[3], x[7], x[11], x[15]);
		QR(x[0], x[5], x[10], x[15]);
		QR(x[1], x[6], x[11], x[12]);
		QR(x[2], x[7], x[8], x[13]);
		QR(x[3], x[4], x[9], x[14]);
	}
}

/* "expand 32-byte k" */
static void init_state(uint32_t s[16], const uint8_t key[32])
{
	s[0] = 0x61707865u;
	s[1] = 0x3320646eu;
	s[2] = 0x79622d32u;
	s[3] = 0x6b206574u;
	for (int i = 0; i < 8; i++)
		s[4 + i] = le32(key + 4 * i);
}

static void hchacha20(uint8_t out[32], const uint8_t key[32], const uint8_t in[16])
{
	uint32_t x[16];

	init_state(x, key);
	for (int i = 0; i < 4; i++)
		x[12 + i] = le32(in + 4 * i);
	rounds(x);
	for (int i = 0; i < 4; i++) {
		put_le32(out + 4 * i, x[i]);
		put_le32(out + 16 + 4 * i, x[12 + i]);
	}
}

/* One 64-byte ChaCha20 block (IETF: 32-bit counter, 96-bit nonce). */
static void chacha20_block(uint8_t out[64], const uint8_t key[32], const uint8_t nonce[12], uint32_t counter)
{
	uint32_t s[16], x[16];

	init_state(s, key);
	s[12] = counter;
	for (int i = 0; i < 3; i++)
		s[13 + i] = le32(nonce + 4 * i);
	memcpy(x, s, sizeof x);
	rounds(x);
	for (int i = 0; i < 16; i++)
		put_le32(out + 4 * i, x[i] + s[i]);
}

/* ---- Poly1305, 26-bit limbs -------------------------------------------- */
typedef struct {
	uint32_t r[5], h[5], pad[4];
	uint8_t buf[16];
	size_t fill;
} poly1305;

static void poly_init(poly1305 *p, const uint8_t key[32])
{
	p->r[0] = le32(key + 0) & 0x3ffffff;
	p->r[1] = (le32(key + 3) >> 2) & 0x3ffff03;
	p->r[2] = (le32(key + 6) >> 4) & 0x3ffc0ff;
	p->r[3] = (le32(key + 9) >> 6) & 0x3f03fff;
	p->r[4] = (le32(key + 12) >> 8) & 0x00fffff;
	memset(p->h, 0, sizeof p->h);
	for (int i = 0; i < 4; i++)
		p->pad[i] = le32(key + 16 + 4 * i);
	p->fill = 0;
}

/* h = (h + block + hibit * 2^128) * r mod 2^130 - 5 */
static void poly_block(poly1305 *p, const uint8_t m[16], uint32_t hibit)
{
	const uint32_t *r = p->r;
	uint32_t s1 = r[1] * 5, s2 = r[2] * 5, s3 = r[3] * 5, s4 = r[4] * 5;
	uint32_t h0 = p->h[0], h1 = p->h[1], h2 = p->h[2], h3 = p->h[3], h4 = p->h[4];
	uint64_t d0, d1, d2, d3, d4;
	uint32_t c;

	h0 += le32(m + 0) & 0x3ffffff;
	h1 += (le32(m + 3) >> 2) & 0x3ffffff;
	h2 += (le32(m + 6) >> 4) & 0x3ffffff;
	h3 += (le32(m + 9) >> 6) & 0x3ffffff;
	h4 += (le32(m + 12) >> 8) | hibit;

	d0 = (uint64_t)h0 * r[0] + (uint64_t)h1 * s4 + (uint64_t)h2 * s3 + (uint64_t)h3 * s2 + (uint64_t)h4 * s1;
	d1 = (uint64_t)h0 * r[1] + (uint64_t)h1 * r[0] + (uint64_t)h2 * s4 + (uint64_t)h3 * s3 + (uint64_t)h4 * s2;
	d2 = (uint64_t)h0 * r[2] + (uint64_t)h1 * r[1] + (uint64_t)h2 * r[0] + (uint64_t)h3 * s4 + (uint64_t)h4 * s3;
	d3 = (uint64_t)h0 * r[3] + (uint64_t)h1 * r[2] + (uint64_t)h2 * r[1] + (uint64_t)h3 * r[0] + (uint64_t)h4 * s4;
	d4 = (uint64_t)h0 * r[4] + (uint64_t)h1 * r[3] + (uint64_t)h2 * r[2] + (uint64_t)h3 * r[1] + (uint64_t)h4 * r[0];

	c = (uint32_t)(d0 >> 26);
	h0 = (uint32_t)d0 & 0x3ffffff;
	d1 += c;
	c = (uint32_t)(d1 >> 26);
	h1 = (uint32_t)d1 & 0x3ffffff;
	d2 += c;
	c = (uint32_t)(d2 >> 26);
	h2 = (uint32_t)d2 & 0x3ffffff;
	d3 += c;
	c = (uint32_t)(d3 >> 26);
	h3 = (uint32_t)d3 & 0x3ffffff;
	d4 += c;
	c = (uint32_t)(d4 >> 26);
	h4 = (uint32_t)d4 & 0x3ffffff;
	h0 += c * 5;
	c = h0 >> 26;
	h0 &= 0x3ffffff;
	h1 += c;

	p->h[0] = h0;
	p->h[1] = h1;
	p->h[2] = h2;
	p->h[3] = h3;
	p->h[4] = h4;
}

static void poly_update(poly1305 *p, const uint8_t *m, size_t len)
{
	while (len > 0) {
		size_t n = 16 - p->fill;

		if (n > len)
			n = len;
		memcpy(p->buf + p->fill, m, n);
		p->fill += n;
		m += n;
		len -= n;
		if (p->fill == 16) {
			poly_block(p, p->buf, 1u << 24);
			p->fill = 0;
		}
	}
}

/* Zero padding to the next 16-byte boundary, as the AEAD construction
 * pads the associated data and the ciphertext. */
static void poly_pad16(poly1305 *p)
{
	static const uint8_t zero[16];

	if (p->fill)
		poly_update(p, zero, 16 - p->fill);
}

static void poly_final(poly1305 *p, uint8_t tag[16])
{
	uint32_t h0, h1, h2, h3, h4, c, g0, g1, g2, g3, g4, mask;
	uint64_t f;

	if (p->fill) {
		p->buf[p->fill] = 1;
		memset(p->buf + p->fill + 1, 0, 16 - p->fill - 1);
		poly_block(p, p->buf, 0);
	}
	h0 = p->h[0];
	h1 = p->h[1];
	h2 = p->h[2];
	h3 = p->h[3];
	h4 = p->h[4];
	c = h1 >> 26;
	h1 &= 0x3ffffff;
	h2 += c;
	c = h2 >> 26;
	h2 &= 0x3ffffff;
	h3 += c;
	c = h3 >> 26;
	h3 &= 0x3ffffff;
	h4 += c;
	c = h4 >> 26;
	h4 &= 0x3ffffff;
	h0 += c * 5;
	c = h0 >> 26;
	h0 &= 0x3ffffff;
	h1 += c;

	/* h - p: take it when it does not go negative */
	g0 = h0 + 5;
	c = g0 >> 26;
	g0 &= 0x3ffffff;
	g1 = h1 + c;
	c = g1 >> 26;
	g1 &= 0x3ffffff;
	g2 = h2 + c;
	c = g2 >> 26;
	g2 &= 0x3ffffff;
	g3 = h3 + c;
	c = g3 >> 26;
	g3 &= 0x3ffffff;
	g4 = h4 + c - (1u << 26);
	mask = (g4 >> 31) - 1u; /* all ones when h >= p */
	h0 = (h0 & ~mask) | (g0 & mask);
	h1 = (h1 & ~mask) | (g1 & mask);
	h2 = (h2 & ~mask) | (g2 & mask);
	h3 = (h3 & ~mask) | (g3 & mask);
	h4 = (h4 & ~mask) | (g4 & mask);

	/* to 4 x 32 bits, then + pad mod 2^128 */
	h0 = h0 | (h1 << 26);
	h1 = (h1 >> 6) | (h2 << 20);
	h2 = (h2 >> 12) | (h3 << 14);
	h3 = (h3 >> 18) | (h4 << 8);
	f = (uint64_t)h0 + p->pad[0];
	put_le32(tag + 0, (uint32_t)f);
	f = (uint64_t)h1 + p->pad[1] + (f >> 32);
	put_le32(tag + 4, (uint32_t)f);
	f = (uint64_t)h2 + p->pad[2] + (f >> 32);
	put_le32(tag + 8, (uint32_t)f);
	f = (uint64_t)h3 + p->pad[3] + (f >> 32);
	put_le32(tag + 12, (uint32_t)f);
	memset(p, 0, sizeof *p);
}

int flboot_aead_open(uint8_t *m, const uint8_t *c, size_t clen, const uint8_t *ad, size_t adlen,
                     const uint8_t nonce[24], const uint8_t key[32])
{
	uint8_t subkey[32], n12[12], block[64], tag[16], lens[16];
	poly1305 p;
	size_t mlen;
	unsigned diff = 0;

	if (clen < FLBOOT_AEAD_TAG_SIZE)
		return -1;
	mlen = clen - FLBOOT_AEAD_TAG_SIZE;
	hchacha20(subkey, key, nonce);
	memset(n12, 0, 4);
	memcpy(n12 + 4, nonce + 16, 8);

	chacha20_block(block, subkey, n12, 0);
	poly_init(&p, block);
	poly_update(&p, ad, adlen);
	poly_pad16(&p);
	poly_update(&p, c, mlen);
	poly_pad16(&p);
	for (int i = 0; i < 8; i++) {
		lens[i] = (uint8_t)((uint64_t)adlen >> (8 * i));
		lens[8 + i] = (uint8_t)((uint64_t)mlen >> (8 * i));
	}
	poly_update(&p, lens, 16);
	poly_final(&p, tag);
	for (int i = 0; i < 16; i++)
		diff |= tag[i] ^ c[mlen + i];
	if (diff) {
		memset(subkey, 0, sizeof subkey);
		if (m != c)
			memset(m, 0, mlen);
		return -1;
	}
	for (size_t off = 0; off < mlen; off += 64) {
		size_t n = mlen - off < 64 ? mlen - off : 64;

		chacha20_block(block, subkey, n12, (uint32_t)(1 + off / 64));
		for (size_t i = 0; i < n; i++)
			m[off + i] = c[off + i] ^ block[i];
	}
	memset(subkey, 0, sizeof subkey);
	memset(block, 0, sizeof block);
	return 0;
}
