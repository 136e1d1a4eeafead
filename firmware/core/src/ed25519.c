/* ed25519.c - ed25519 verification over GF(2^255 - 19), freestanding.
 *
 * Field elements are 16 signed 64-bit limbs of 16 bits (radix 2^16): slow
 * next to the 25.5-bit representations of ref10, but short, easy to check,
 * and the bootloader verifies one signature per image (the signature covers
 * the image header, whose SHA-256 covers the payload), so the time is a few
 * scalar multiplications, not a pass over the image. Points are extended
 * twisted Edwards coordinates (X:Y:Z:T), x*y = T/Z, curve -x^2 + y^2 =
 * 1 + d x^2 y^2. The constants d, 2d and sqrt(-1) are computed from their
 * definitions instead of being typed in as limbs. */
#include <string.h>

#include "flboot/ed25519.h"
#include "flboot/sha512.h"

typedef int64_t fe[16];

/* Limb carry: after it every limb is in [0, 2^16). 2^256 = 38 (mod p), so the
 * carry out of the top limb re-enters the bottom one times 38. The shift of a
 * negative limb is arithmetic (floor) on every compiler the project uses;
 * the product form avoids shifting a negative value left. */
static void fe_carry(fe o)
{
	for (int i = 0; i < 16; i++) {
		int64_t c = o[i] >> 16;

		o[i] -= c * 65536;
		if (i < 15)
			o[i + 1] += c;
		else
			o[0] += 38 * c;
	}
}

static void fe_set(fe o, int64_t v)
{
	memset(o, 0, sizeof(fe));
	o[0] = v;
}

static void fe_copy(fe o, const fe a)
{
	memcpy(o, a, sizeof(fe));
}

static void fe_add(fe o, const fe a, const fe b)
{
	for (int i = 0; i < 16; i++)
		o[i] = a[i] + b[i];
}

static void fe_sub(fe o, const fe a, const fe b)
{
	for (int i = 0; i < 16; i++)
		o[i] = a[i] - b[i];
}

static void fe_mul(fe o, const fe a, const fe b)
{
	int64_t t[31] = {0};

	for (int i = 0; i < 16; i++)
		for (int j = 0; j < 16; j++)
			t[i + j] += a[i] * b[j];
	for (int i = 0; i < 15; i++)
		t[i] += 38 * t[i + 16];
	for (int i = 0; i < 16; i++)
		o[i] = t[i];
	fe_carry(o);
	fe_carry(o);
}

static void fe_sq(fe o, const fe a)
{
	fe_mul(o, a, a);
}

/* o = a^e for an exponent given as 32 little-endian bytes. */
static void fe_pow(fe o, const fe a, const uint8_t e[32])
{
	fe r, base;

	fe_set(r, 1);
	fe_copy(base, a);
	for (int bit = 255; bit >= 0; bit--) {
		fe_sq(r, r);
		if ((e[bit >> 3] >> (bit & 7)) & 1)
			fe_mul(r, r, base);
	}
	fe_copy(o, r);
}

/* p - 2 (inversion), (p - 5) / 8 (square roots), (p - 1) / 4 (sqrt(-1)). */
static const uint8_t EXP_INV[32] = {0xeb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                    0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f};
static const uint8_t EXP_SQRT[32] = {0xfd, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x0f};
static const uint8_t EXP_I[32] = {0xfb, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x1f};

/* Canonical 32-byte little-endian encoding (fully reduced mod p). */
static void fe_pack(uint8_t out[32], const fe a)
{
	fe t, m;

	fe_copy(t, a);
	fe_carry(t);
	fe_carry(t);
	fe_carry(t);
	/* t < 2^256 < 2p + 2p: subtract p twice where it does not go negative. */
	for (int pass = 0; pass < 2; pass++) {
		int64_t borrow;

		m[0] = t[0] - 0xffed;
		for (int i = 1; i < 15; i++) {
			m[i] = t[i] - 0xffff - ((m[i - 1] >> 16) & 1);
			m[i - 1] &= 0xffff;
		}
		m[15] = t[15] - 0x7fff - ((m[14] >> 16) & 1);
		m[14] &= 0xffff;
		borrow = (m[15] >> 16) & 1;
		if (!borrow)
			fe_copy(t, m);
	}
	for (int i = 0; i < 16; i++) {
		out[2 * i] = (uint8_t)(t[i] & 0xff);
		out[2 * i + 1] = (uint8_t)((t[i] >> 8) & 0xff);
	}
}

static void fe_unpack(fe o, const uint8_t in[32])
{
	for (int i = 0; i < 16; i++)
		o[i] = in[2 * i] + ((int64_t)in[2 * i + 1] << 8);
	o[15] &= 0x7fff;
}

static int fe_equal(const fe a, const fe b)
{
	uint8_t x[32], y[32];

	fe_pack(x, a);
	fe_pack(y, b);
	return memcmp(x, y, 32) == 0;
}

static int fe_parity(const fe a)
{
	uint8_t x[32];

	fe_pack(x, a);
	return x[0] & 1;
}

static int fe_is_zero(const fe a)
{
	static const uint8_t zero[32];
	uint8_t x[32];

	fe_pack(x, a);
	return memcmp(x, zero, 32) == 0;
}

typedef struct {
	fe d, d2, sqrtm1;
} curve_consts;

static void curve_init(curve_consts *c)
{
	fe num, den;

	/* d = -121665 / 121666 */
	fe_set(num, 0);
	fe_set(den, 121665);
	fe_sub(num, num, den);
	fe_set(den, 121666);
	fe_pow(den, den, EXP_INV);
	fe_mul(c->d, num, den);
	fe_add(c->d2, c->d, c->d);
	fe_carry(c->d2);
	fe_set(num, 2);
	fe_pow(c->sqrtm1, num, EXP_I);
}

typedef struct {
	fe x, y, z, t;
} point;

static void point_identity(point *p)
{
	fe_set(p->x, 0);
	fe_set(p->y, 1);
	fe_set(p->z, 1);
	fe_set(p->t, 0);
}

/* p += q, the unified formula (add-2008-hwcd-3), valid for doubling too. */
static void point_add(const curve_consts *c, point *p, const point *q)
{
	fe a, b, cc, dd, e, f, g, h, t;

	fe_sub(a, p->y, p->x);
	fe_sub(t, q->y, q->x);
	fe_mul(a, a, t);
	fe_add(b, p->y, p->x);
	fe_add(t, q->y, q->x);
	fe_mul(b, b, t);
	fe_mul(cc, p->t, q->t);
	fe_mul(cc, cc, c->d2);
	fe_mul(dd, p->z, q->z);
	fe_add(dd, dd, dd);
	fe_sub(e, b, a);
	fe_sub(f, dd, cc);
	fe_add(g, dd, cc);
	fe_add(h, b, a);
	fe_mul(p->x, e, f);
	fe_mul(p->y, h, g);
	fe_mul(p->z, g, f);
	fe_mul(p->t, e, h);
}

static void point_encode(uint8_t out[32], const point *p)
{
	fe zi, x, y;

	fe_pow(zi, p->z, EXP_INV);
	fe_mul(x, p->x, zi);
	fe_mul(y, p->y, zi);
	fe_pack(out, y);
	out[31] ^= (uint8_t)(fe_parity(x) << 7);
}

/* y must be below p: an encoding with y >= p names the same point as a
 * smaller one, and libsodium refuses it for public keys. */
static int y_is_canonical(const uint8_t in[32])
{
	/* p = 2^255 - 19: LE bytes ed ff .. ff 7f */
	if ((in[31] & 0x7f) != 0x7f)
		return 1;
	for (int i = 30; i > 0; i--)
		if (in[i] != 0xff)
			return 1;
	return in[0] < 0xed;
}

/* Decompress: x^2 = (y^2 - 1) / (d y^2 + 1), x = u v^3 (u v^7)^((p-5)/8).
 * Returns -1 when the bytes are not a point. */
static int point_decode(const curve_consts *c, point *p, const uint8_t in[32])
{
	fe u, v, v3, t, chk;

	fe_unpack(p->y, in);
	fe_set(p->z, 1);
	fe_sq(u, p->y);
	fe_mul(v, u, c->d);
	fe_sub(u, u, p->z);
	fe_add(v, v, p->z);
	fe_sq(v3, v);
	fe_mul(v3, v3, v); /* v^3 */
	fe_sq(t, v3);
	fe_mul(t, t, v); /* v^7 */
	fe_mul(t, t, u);
	fe_pow(t, t, EXP_SQRT);
	fe_mul(t, t, v3);
	fe_mul(p->x, t, u);
	fe_sq(chk, p->x);
	fe_mul(chk, chk, v);
	if (!fe_equal(chk, u)) {
		fe_mul(p->x, p->x, c->sqrtm1);
		fe_sq(chk, p->x);
		fe_mul(chk, chk, v);
		if (!fe_equal(chk, u))
			return -1;
	}
	if (fe_is_zero(p->x) && (in[31] >> 7))
		return -1; /* x = 0 has no negative: not a valid encoding */
	if (fe_parity(p->x) != (in[31] >> 7)) {
		fe zero;

		fe_set(zero, 0);
		fe_sub(p->x, zero, p->x);
		fe_carry(p->x);
	}
	fe_mul(p->t, p->x, p->y);
	return 0;
}

static void point_negate(point *p)
{
	fe zero;

	fe_set(zero, 0);
	fe_sub(p->x, zero, p->x);
	fe_carry(p->x);
	fe_sub(p->t, zero, p->t);
	fe_carry(p->t);
}

/* Small order: [8]P is the identity (X = 0 and Y = Z). */
static int point_small_order(const curve_consts *c, const point *p)
{
	point q = *p;

	for (int i = 0; i < 3; i++) {
		point d = q;

		point_add(c, &q, &d);
	}
	return fe_is_zero(q.x) && fe_equal(q.y, q.z);
}

/* The group order L = 2^252 + 27742317777372353535851937790883648493,
 * little-endian. */
static const uint8_t ORDER[32] = {0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7,
                                  0xa2, 0xde, 0xf9, 0xde, 0x14, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00,
                                  0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x10};

/* a < L for a 32-byte little-endian scalar. */
static int scalar_below_order(const uint8_t a[32])
{
	for (int i = 31; i >= 0; i--) {
		if (a[i] < ORDER[i])
			return 1;
		if (a[i] > ORDER[i])
			return 0;
	}
	return 0;
}

/* out = in mod L, for a 64-byte little-endian number, one bit at a time
 * (shift in, subtract L when it fits): 512 steps of 9-word arithmetic. */
static void scalar_reduce(uint8_t out[32], const uint8_t in[64])
{
	uint32_t r[9] = {0}, l[9] = {0};

	for (int i = 0; i < 32; i++)
		l[i / 4] |= (uint32_t)ORDER[i] << (8 * (i % 4));
	for (int bit = 511; bit >= 0; bit--) {
		uint32_t t[9];
		uint64_t borrow = 0;

		for (int i = 8; i > 0; i--)
			r[i] = r[i] << 1 | r[i - 1] >> 31;
		r[0] = r[0] << 1 | ((in[bit >> 3] >> (bit & 7)) & 1u);
		for (int i = 0; i < 9; i++) {
			uint64_t d = (uint64_t)r[i] - l[i] - borrow;

			t[i] = (uint32_t)d;
			borrow = (d >> 63) & 1;
		}
		if (!borrow)
			memcpy(r, t, sizeof r);
	}
	for (int i = 0; i < 32; i++)
		out[i] = (uint8_t)(r[i / 4] >> (8 * (i % 4)));
}

/* The base point's standard encoding: y = 4/5, x even. */
static const uint8_t BASE[32] = {0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
                                 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66};

int flboot_ed25519_verify2(const uint8_t sig[64], const void *prefix, size_t prefix_len, const void *body,
                           size_t body_len, const uint8_t pubkey[32])
{
	curve_consts c;
	point a, b, r, acc;
	flboot_sha512_ctx h;
	uint8_t digest[64], k[32], check[32];

	if (!scalar_below_order(sig + 32) || !y_is_canonical(pubkey))
		return -1;
	curve_init(&c);
	if (point_decode(&c, &a, pubkey) != 0 || point_small_order(&c, &a))
		return -1;
	if (point_decode(&c, &r, sig) == 0 && point_small_order(&c, &r))
		return -1;
	if (point_decode(&c, &b, BASE) != 0)
		return -1;

	flboot_sha512_init(&h);
	flboot_sha512_update(&h, sig, 32);
	flboot_sha512_update(&h, pubkey, 32);
	flboot_sha512_update(&h, prefix, prefix_len);
	flboot_sha512_update(&h, body, body_len);
	flboot_sha512_final(&h, digest);
	scalar_reduce(k, digest);

	/* acc = [S]B + [k](-A), both scalars in one pass of doublings. */
	point_negate(&a);
	point_identity(&acc);
	for (int bit = 255; bit >= 0; bit--) {
		point d = acc;

		point_add(&c, &acc, &d);
		if ((sig[32 + (bit >> 3)] >> (bit & 7)) & 1)
			point_add(&c, &acc, &b);
		if ((k[bit >> 3] >> (bit & 7)) & 1)
			point_add(&c, &acc, &a);
	}
	point_encode(check, &acc);
	return memcmp(check, sig, 32) == 0 ? 0 : -1;
}

int flboot_ed25519_verify(const uint8_t sig[64], const void *msg, size_t len, const uint8_t pubkey[32])
{
	return flboot_ed25519_verify2(sig, msg, len, "", 0, pubkey);
}
