/* Fault-injection wrapper: deterministic from its seed, so a failing test
 * run can be replayed exactly. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error_internal.h"
#include "transport_internal.h"

struct fault_impl {
	flasher_transport *inner;
	flasher_fault_config cfg;
	uint64_t rng;
	flasher_fault_stats st;
	/* Bytes produced by read faults (duplicates) that did not fit in the
	 * caller's buffer yet. */
	uint8_t *pending;
	size_t npending, cappending;
};

/* splitmix64: tiny, well mixed, and the same on every platform. */
static uint64_t next_rand(struct fault_impl *f)
{
	uint64_t z = (f->rng += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static int hit(struct fault_impl *f, uint32_t ppm)
{
	return ppm && next_rand(f) % 1000000u < ppm;
}

static void sleep_ms(uint32_t ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

static int disconnected(struct fault_impl *f)
{
	return flasher__error(FLASHER_EDISCONNECTED, "fault injection: link cut after %llu bytes",
	                      (unsigned long long)f->cfg.disconnect_after);
}

/* How many of n more bytes may pass before the cut. */
static size_t allowance(struct fault_impl *f, size_t n)
{
	if (!f->cfg.disconnect_after)
		return n;
	uint64_t left = f->cfg.disconnect_after > f->st.bytes ? f->cfg.disconnect_after - f->st.bytes : 0;
	return left < n ? (size_t)left : n;
}

/* Apply the per-byte faults to in[0..n) and append the result to out.
 * Returns bytes appended (out needs room for 2n). */
static size_t mangle(struct fault_impl *f, const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		uint8_t b = in[i];
		f->st.bytes++;
		if (hit(f, f->cfg.corrupt_ppm)) {
			b ^= (uint8_t)(1u << (next_rand(f) & 7));
			f->st.corrupted++;
		}
		if (hit(f, f->cfg.drop_ppm)) {
			f->st.dropped++;
			continue;
		}
		out[o++] = b;
		if (hit(f, f->cfg.duplicate_ppm)) {
			out[o++] = b;
			f->st.duplicated++;
		}
	}
	return o;
}

static int stall_count(struct fault_impl *f, size_t n)
{
	int stalls = 0;
	for (size_t i = 0; i < n && f->cfg.stall_ppm; i++)
		if (hit(f, f->cfg.stall_ppm))
			stalls++;
	return stalls;
}

static int fault_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct fault_impl *f = impl;
	if (f->st.disconnected)
		return disconnected(f);
	size_t n = allowance(f, len);
	int stalls = stall_count(f, n);
	uint8_t *tmp = malloc(2 * n + 1);
	if (!tmp)
		return flasher__error(FLASHER_ENOMEM, "fault injection: out of memory");
	size_t o = mangle(f, buf, n, tmp);
	for (int i = 0; i < stalls; i++) {
		f->st.stalls++;
		sleep_ms(f->cfg.stall_ms);
	}
	int rc = o ? flasher_transport_write(f->inner, tmp, o, timeout_ms) : 0;
	free(tmp);
	if (rc < 0)
		return rc;
	if (n < len) {
		f->st.disconnected = 1;
		return disconnected(f);
	}
	return 0;
}

static int fault_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct fault_impl *f = impl;
	if (!f->cfg.both_directions)
		return flasher_transport_read(f->inner, buf, cap, timeout_ms);
	if (f->npending) {
		size_t k = f->npending < cap ? f->npending : cap;
		memcpy(buf, f->pending, k);
		memmove(f->pending, f->pending + k, f->npending - k);
		f->npending -= k;
		return (int)k;
	}
	if (f->st.disconnected)
		return disconnected(f);
	int64_t deadline = timeout_ms < 0 ? -1 : flasher__tp_now_ms() + timeout_ms;
	for (;;) {
		int left = -1;
		if (deadline >= 0) {
			int64_t l = deadline - flasher__tp_now_ms();
			left = l > 0 ? (int)l : 0;
		}
		size_t want = allowance(f, cap);
		if (want == 0) {
			f->st.disconnected = 1;
			return disconnected(f);
		}
		uint8_t *tmp = malloc(3 * want);
		if (!tmp)
			return flasher__error(FLASHER_ENOMEM, "fault injection: out of memory");
		int n = flasher_transport_read(f->inner, tmp, want, left);
		if (n <= 0) {
			free(tmp);
			return n;
		}
		int stalls = stall_count(f, (size_t)n);
		for (int i = 0; i < stalls; i++) {
			f->st.stalls++;
			sleep_ms(f->cfg.stall_ms);
		}
		size_t o = mangle(f, tmp, (size_t)n, tmp + want);
		const uint8_t *res = tmp + want;
		size_t k = o < cap ? o : cap;
		memcpy(buf, res, k);
		if (o > k) {
			if (f->cappending < f->npending + (o - k)) {
				size_t nc = f->npending + (o - k) + 256;
				uint8_t *np = realloc(f->pending, nc);
				if (!np) {
					free(tmp);
					return flasher__error(FLASHER_ENOMEM, "fault injection: out of memory");
				}
				f->pending = np;
				f->cappending = nc;
			}
			memcpy(f->pending + f->npending, res + k, o - k);
			f->npending += o - k;
		}
		free(tmp);
		if (k > 0)
			return (int)k;
		/* Every byte dropped: keep waiting as a real lossy link would. */
		if (deadline >= 0 && flasher__tp_now_ms() >= deadline)
			return 0;
	}
}

static int fault_flush(void *impl)
{
	struct fault_impl *f = impl;
	f->npending = 0;
	return flasher_transport_flush_input(f->inner);
}

static void fault_close(void *impl)
{
	struct fault_impl *f = impl;
	if (!f)
		return;
	flasher_transport_close(f->inner);
	free(f->pending);
	free(f);
}

static const flasher_transport_ops fault_ops = {
	.name = "fault", .read = fault_read, .write = fault_write, .flush_input = fault_flush, .close = fault_close};

int flasher_transport_fault_wrap(flasher_transport **out, flasher_transport *inner, const flasher_fault_config *cfg)
{
	if (!out || !inner || !cfg)
		return flasher__error(FLASHER_EINVAL, "fault wrap: NULL argument");
	if (cfg->version != FLASHER_FAULT_CONFIG_VERSION)
		return flasher__error(FLASHER_EINVAL, "fault wrap: config version %u, expected %u", cfg->version,
		                      FLASHER_FAULT_CONFIG_VERSION);
	if (cfg->corrupt_ppm > 1000000 || cfg->drop_ppm > 1000000 || cfg->duplicate_ppm > 1000000 ||
	    cfg->stall_ppm > 1000000)
		return flasher__error(FLASHER_EINVAL, "fault wrap: a rate is above 1000000 ppm");
	struct fault_impl *f = calloc(1, sizeof *f);
	if (!f)
		return flasher__error(FLASHER_ENOMEM, "fault wrap: out of memory");
	f->inner = inner;
	f->cfg = *cfg;
	f->rng = cfg->seed;
	char desc[300];
	snprintf(desc, sizeof desc, "fault(%s)", flasher_transport_description(inner));
	return flasher_transport_new(out, &fault_ops, f, desc);
}

int flasher_transport_fault_stats(const flasher_transport *t, flasher_fault_stats *out)
{
	struct fault_impl *f = flasher__transport_impl(t, &fault_ops);
	if (!f || !out)
		return flasher__error(FLASHER_EINVAL, "fault stats: not a fault-injection transport");
	*out = f->st;
	return 0;
}
