/* codec_util.h - deterministic helpers for the codec tests. */
#ifndef CODEC_UTIL_H
#define CODEC_UTIL_H
#include <stddef.h>
#include <stdint.h>

/* xorshift64*: seeded, reproducible, independent of libc's rand(). */
typedef struct rng {
	uint64_t s;
} rng;

static inline void rng_seed(rng *r, uint64_t seed)
{
	r->s = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
	if (!r->s)
		r->s = 1;
}

static inline uint32_t rng_u32(rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (uint32_t)((r->s * 0x2545F4914F6CDD1Dull) >> 32);
}

/* uniform in [lo, hi] */
static inline size_t rng_range(rng *r, size_t lo, size_t hi)
{
	return lo + (size_t)(rng_u32(r) % (uint32_t)(hi - lo + 1));
}

static inline void rng_fill(rng *r, uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)rng_u32(r);
}

#endif
