/* Fault-injection wrapper: determinism, rates, disconnect. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "flasher.h"
#include "mem_transport.h"

#define N 200000

static uint8_t payload[N];

static void fill(void)
{
	for (size_t i = 0; i < N; i++)
		payload[i] = (uint8_t)(i * 131 + (i >> 9));
}

TestSuite(transport_fault, .init = fill, .timeout = 30);

/* Push payload through a fault wrapper with cfg (in 1000-byte writes);
 * link receives what the unit saw. */
static flasher_fault_stats run_write(const flasher_fault_config *cfg, struct mem_link *link)
{
	flasher_transport *inner, *t;
	memset(link, 0, sizeof *link);
	cr_assert_eq(mem_transport_new(&inner, link), 0);
	cr_assert_eq(flasher_transport_fault_wrap(&t, inner, cfg), 0, "%s", flasher_error_last());
	for (size_t off = 0; off < N; off += 1000)
		cr_assert_eq(flasher_transport_write(t, payload + off, 1000, 1000), 0);
	flasher_fault_stats st;
	cr_assert_eq(flasher_transport_fault_stats(t, &st), 0);
	flasher_transport_close(t);
	return st;
}

Test(transport_fault, same_seed_same_faults_other_seed_other_faults)
{
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	cfg.seed = 42;
	cfg.corrupt_ppm = 2000;
	cfg.drop_ppm = 1000;
	cfg.duplicate_ppm = 1000;
	struct mem_link a, b, c;
	flasher_fault_stats sa = run_write(&cfg, &a);
	flasher_fault_stats sb = run_write(&cfg, &b);
	cfg.seed = 43;
	flasher_fault_stats sc = run_write(&cfg, &c);

	cr_assert_eq(a.nout, b.nout);
	cr_assert_arr_eq(a.out, b.out, a.nout, "same seed must give the same bytes");
	cr_expect_eq(sa.corrupted, sb.corrupted);
	cr_expect(a.nout != c.nout || memcmp(a.out, c.out, a.nout) != 0, "another seed gave identical faults");
	cr_expect(sa.corrupted != sc.corrupted || sa.dropped != sc.dropped || sa.duplicated != sc.duplicated);
	/* Length bookkeeping matches what was done. */
	cr_expect_eq(a.nout, N - sa.dropped + sa.duplicated);
	mem_link_free(&a);
	mem_link_free(&b);
	mem_link_free(&c);
}

Test(transport_fault, corrupt_rate_is_honoured_and_flips_one_bit)
{
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	cfg.seed = 7;
	cfg.corrupt_ppm = 10000; /* 1 %: expect ~2000 of 200000 */
	struct mem_link l;
	flasher_fault_stats st = run_write(&cfg, &l);
	cr_assert_eq(l.nout, N);
	size_t diff = 0;
	for (size_t i = 0; i < N; i++) {
		uint8_t x = l.out[i] ^ payload[i];
		if (x) {
			diff++;
			cr_assert_eq(__builtin_popcount(x), 1, "byte %zu: more than one bit flipped (0x%02x)", i, x);
		}
	}
	cr_expect_eq(diff, st.corrupted);
	cr_expect(diff > 1600 && diff < 2400, "1%% of %d bytes corrupted, got %zu", N, diff);
	cr_expect_eq(st.bytes, N);
	mem_link_free(&l);
}

Test(transport_fault, drop_and_duplicate_rates_are_honoured)
{
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	cfg.seed = 99;
	cfg.drop_ppm = 5000;      /* ~1000 */
	cfg.duplicate_ppm = 2500; /* ~500 */
	struct mem_link l;
	flasher_fault_stats st = run_write(&cfg, &l);
	cr_expect(st.dropped > 800 && st.dropped < 1200, "dropped %llu", (unsigned long long)st.dropped);
	cr_expect(st.duplicated > 380 && st.duplicated < 620, "duplicated %llu", (unsigned long long)st.duplicated);
	cr_expect_eq(l.nout, N - st.dropped + st.duplicated);
	cr_expect_eq(st.corrupted, 0);
	mem_link_free(&l);
}

Test(transport_fault, zero_rates_pass_bytes_unchanged)
{
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	struct mem_link l;
	run_write(&cfg, &l);
	cr_assert_eq(l.nout, N);
	cr_expect_arr_eq(l.out, payload, N);
	mem_link_free(&l);
}

Test(transport_fault, disconnect_after_cuts_exactly_there_and_stays_cut)
{
	struct mem_link l = {0};
	int closes = 0;
	l.close_count = &closes;
	flasher_transport *inner, *t;
	cr_assert_eq(mem_transport_new(&inner, &l), 0);
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	cfg.disconnect_after = 150;
	cr_assert_eq(flasher_transport_fault_wrap(&t, inner, &cfg), 0);
	cr_expect_eq(flasher_transport_write(t, payload, 100, 100), 0);
	cr_expect_eq(flasher_transport_write(t, payload + 100, 100, 100), FLASHER_EDISCONNECTED);
	cr_expect_eq(l.nout, 150, "the unit must see exactly disconnect_after bytes, saw %zu", l.nout);
	cr_expect_arr_eq(l.out, payload, 150);
	cr_expect_eq(flasher_transport_write(t, payload, 1, 100), FLASHER_EDISCONNECTED);
	uint8_t b[4];
	mem_link_feed(&l, "abcd", 4);
	cr_expect_eq(flasher_transport_read(t, b, sizeof b, 10), FLASHER_EDISCONNECTED);
	flasher_fault_stats st;
	cr_assert_eq(flasher_transport_fault_stats(t, &st), 0);
	cr_expect_eq(st.disconnected, 1);
	flasher_transport_close(t);
	cr_expect_eq(closes, 1, "closing the wrapper closes the inner transport once");
	mem_link_free(&l);
}

Test(transport_fault, both_directions_faults_reads_too)
{
	struct mem_link l = {0};
	flasher_transport *inner, *t;
	cr_assert_eq(mem_transport_new(&inner, &l), 0);
	mem_link_feed(&l, payload, N);
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	cfg.seed = 5;
	cfg.corrupt_ppm = 10000;
	cfg.duplicate_ppm = 10000;
	cfg.both_directions = 1;
	cr_assert_eq(flasher_transport_fault_wrap(&t, inner, &cfg), 0);
	uint8_t *in = malloc(2 * N);
	size_t got = 0;
	int n;
	while ((n = flasher_transport_read(t, in + got, 777, 0)) > 0)
		got += (size_t)n;
	cr_assert_eq(n, 0);
	flasher_fault_stats st;
	flasher_transport_fault_stats(t, &st);
	cr_expect_eq(got, N + st.duplicated, "duplicates held back by small reads must still arrive");
	cr_expect(st.corrupted > 1600 && st.corrupted < 2400, "corrupted %llu", (unsigned long long)st.corrupted);
	cr_expect(memcmp(in, payload, 1000) != 0 || st.corrupted == 0);
	free(in);
	flasher_transport_close(t);
	mem_link_free(&l);
}

Test(transport_fault, reads_untouched_when_one_direction)
{
	struct mem_link l = {0};
	flasher_transport *inner, *t;
	cr_assert_eq(mem_transport_new(&inner, &l), 0);
	mem_link_feed(&l, payload, 5000);
	flasher_fault_config cfg = FLASHER_FAULT_CONFIG_INIT;
	cfg.corrupt_ppm = 500000;
	cfg.both_directions = 0;
	cr_assert_eq(flasher_transport_fault_wrap(&t, inner, &cfg), 0);
	uint8_t in[5000];
	cr_assert_eq(flasher_transport_read(t, in, sizeof in, 0), 5000);
	cr_expect_arr_eq(in, payload, 5000);
	flasher_transport_close(t);
	mem_link_free(&l);
}

Test(transport_fault, stats_refuse_other_handles)
{
	struct mem_link l = {0};
	flasher_transport *t;
	cr_assert_eq(mem_transport_new(&t, &l), 0);
	flasher_fault_stats st;
	cr_expect_eq(flasher_transport_fault_stats(t, &st), FLASHER_EINVAL);
	flasher_transport_close(t);
}
