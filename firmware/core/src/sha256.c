/* sha256.c - SHA-256 (FIPS 180-4), freestanding: no allocation, only
 * memcpy/memset from the C library. */
#include <string.h>

#include "flboot/sha256.h"

static const uint32_t K[64] = {
	0x428a2f98u, 0x71374491u, 0xb5c0fbcfu, 0xe9b5dba5u, 0x3956c25bu, 0x59f111f1u, 0x923f82a4u, 0xab1c5ed5u,
	0xd807aa98u, 0x12835b01u, 0x243185beu, 0x550c7dc3u, 0x72be5d74u, 0x80deb1feu, 0x9bdc06a7u, 0xc19bf174u,
	0xe49b69c1u, 0xefbe4786u, 0x0fc19dc6u, 0x240ca1ccu, 0x2de92c6fu, 0x4a7484aau, 0x5cb0a9dcu, 0x76f988dau,
	0x983e5152u, 0xa831c66du, 0xb00327c8u, 0xbf597fc7u, 0xc6e00bf3u, 0xd5a79147u, 0x06ca6351u, 0x14292967u,
	0x27b70a85u, 0x2e1b2138u, 0x4d2c6dfcu, 0x53380d13u, 0x650a7354u, 0x766a0abbu, 0x81c2c92eu, 0x92722c85u,
	0xa2bfe8a1u, 0xa81a664bu, 0xc24b8b70u, 0xc76c51a3u, 0xd192e819u, 0xd6990624u, 0xf40e3585u, 0x106aa070u,
	0x19a4c116u, 0x1e376c08u, 0x2748774cu, 0x34b0bcb5u, 0x391c0cb3u, 0x4ed8aa4au, 0x5b9cca4fu, 0x682e6ff3u,
	0x748f82eeu, 0x78a5636fu, 0x84c87814u, 0x8cc70208u, 0x90befffau, 0xa4506cebu, 0xbef9a3f7u, 0xc67178f2u,
};

#define ROR(x, n) (((x) >> (n)) | ((x) << (32 - (n))))

static uint32_t load_be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | (uint32_t)p[3];
}

static void store_be32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)(v >> 24);
	p[1] = (uint8_t)(v >> 16);
	p[2] = (uint8_t)(v >> 8);
	p[3] = (uint8_t)v;
}

/* A 16-word rolling schedule instead of 64 words: 192 bytes less stack on
 * the bootloader. */
static void compress(uint32_t state[8], const uint8_t *blk)
{
	uint32_t w[16];
	uint32_t a = state[0], b = state[1], c = state[2], d = state[3];
	uint32_t e = state[4], f = state[5], g = state[6], h = state[7];
	unsigned i;

	for (i = 0; i < 64; i++) {
		uint32_t t1, t2;

		if (i < 16) {
			w[i] = load_be32(blk + 4 * i);
		} else {
			uint32_t w15 = w[(i - 15) & 15], w2 = w[(i - 2) & 15];
			uint32_t s0 = ROR(w15, 7) ^ ROR(w15, 18) ^ (w15 >> 3);
			uint32_t s1 = ROR(w2, 17) ^ ROR(w2, 19) ^ (w2 >> 10);

			w[i & 15] += s0 + w[(i - 7) & 15] + s1;
		}
		t1 = h + (ROR(e, 6) ^ ROR(e, 11) ^ ROR(e, 25)) + ((e & f) ^ (~e & g)) + K[i] + w[i & 15];
		t2 = (ROR(a, 2) ^ ROR(a, 13) ^ ROR(a, 22)) + ((a & b) ^ (a & c) ^ (b & c));
		h = g;
		g = f;
		f = e;
		e = d + t1;
		d = c;
		c = b;
		b = a;
		a = t1 + t2;
	}
	state[0] += a;
	state[1] += b;
	state[2] += c;
	state[3] += d;
	state[4] += e;
	state[5] += f;
	state[6] += g;
	state[7] += h;
}

void flboot_sha256_init(flboot_sha256_ctx *ctx)
{
	static const uint32_t iv[8] = {
		0x6a09e667u, 0xbb67ae85u, 0x3c6ef372u, 0xa54ff53au,
		0x510e527fu, 0x9b05688cu, 0x1f83d9abu, 0x5be0cd19u,
	};

	memcpy(ctx->state, iv, sizeof(iv));
	ctx->bytes = 0;
	ctx->fill = 0;
}

void flboot_sha256_update(flboot_sha256_ctx *ctx, const void *data, size_t len)
{
	const uint8_t *p = (const uint8_t *)data;

	if (len == 0)
		return;
	ctx->bytes += len;
	if (ctx->fill) {
		size_t take = 64u - ctx->fill;

		if (take > len)
			take = len;
		memcpy(ctx->block + ctx->fill, p, take);
		ctx->fill += (uint32_t)take;
		p += take;
		len -= take;
		if (ctx->fill < 64u)
			return;
		compress(ctx->state, ctx->block);
		ctx->fill = 0;
	}
	/* Whole blocks straight from the caller's memory: no copy. */
	while (len >= 64u) {
		compress(ctx->state, p);
		p += 64;
		len -= 64;
	}
	if (len) {
		memcpy(ctx->block, p, len);
		ctx->fill = (uint32_t)len;
	}
}

void flboot_sha256_final(flboot_sha256_ctx *ctx, uint8_t out[32])
{
	uint64_t bits = ctx->bytes * 8u;
	unsigned i;

	ctx->block[ctx->fill++] = 0x80;
	if (ctx->fill > 56u) {
		memset(ctx->block + ctx->fill, 0, 64u - ctx->fill);
		compress(ctx->state, ctx->block);
		ctx->fill = 0;
	}
	memset(ctx->block + ctx->fill, 0, 56u - ctx->fill);
	store_be32(ctx->block + 56, (uint32_t)(bits >> 32));
	store_be32(ctx->block + 60, (uint32_t)bits);
	compress(ctx->state, ctx->block);
	for (i = 0; i < 8; i++)
		store_be32(out + 4 * i, ctx->state[i]);
	/* Leave no message-derived state behind in the caller's context. */
	memset(ctx, 0, sizeof(*ctx));
}

void flboot_sha256(const void *data, size_t len, uint8_t out[32])
{
	flboot_sha256_ctx ctx;

	flboot_sha256_init(&ctx);
	flboot_sha256_update(&ctx, data, len);
	flboot_sha256_final(&ctx, out);
}
