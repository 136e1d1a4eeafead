/* Record wrapper and replay transport: a recorded exchange replays, and a
 * host that deviates is caught at the right offset. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "flasher.h"
#include "mem_transport.h"

static char path[64];

static void mkpath(void)
{
	snprintf(path, sizeof path, "/tmp/flasher-rec-%d.txt", (int)getpid());
}

static void rmpath(void)
{
	unlink(path);
}

TestSuite(transport_record, .init = mkpath, .fini = rmpath, .timeout = 20);

/* A fake unit: answers "ACK<n>" to every write; we record one exchange. */
static void record_session(void)
{
	struct mem_link l = {0};
	flasher_transport *inner, *t;
	cr_assert_eq(mem_transport_new(&inner, &l), 0);
	cr_assert_eq(flasher_transport_record_wrap(&t, inner, path), 0, "%s", flasher_error_last());
	uint8_t buf[64];
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"HELLO\0", 6, 100), 0);
	mem_link_feed(&l, "INFO:1234\0", 10);
	cr_assert_eq(flasher_transport_read(t, buf, 4, 100), 4); /* chunked read */
	cr_assert_eq(flasher_transport_read(t, buf, sizeof buf, 100), 6);
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"DATA", 4, 100), 0);
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"\x01\x02\xff", 3, 100), 0);
	mem_link_feed(&l, "ACK", 3);
	cr_assert_eq(flasher_transport_read(t, buf, sizeof buf, 100), 3);
	l.closed = 1;
	cr_assert_eq(flasher_transport_read(t, buf, sizeof buf, 100), FLASHER_EDISCONNECTED);
	flasher_transport_close(t);
	mem_link_free(&l);
}

static int read_all(flasher_transport *t, uint8_t *buf, size_t len)
{
	size_t got = 0;
	while (got < len) {
		int n = flasher_transport_read(t, buf + got, len - got, 100);
		if (n <= 0)
			return n < 0 ? n : (int)got;
		got += (size_t)n;
	}
	return (int)got;
}

Test(transport_record, file_is_documented_text_format)
{
	record_session();
	FILE *f = fopen(path, "r");
	cr_assert_not_null(f);
	char line[256];
	cr_assert_not_null(fgets(line, sizeof line, f));
	cr_expect_str_eq(line, "flasher-recording 1\n");
	int w = 0, r = 0, d = 0;
	while (fgets(line, sizeof line, f)) {
		if (line[0] == '#')
			continue;
		char dir;
		long long us;
		char data[200] = "";
		cr_assert_geq(sscanf(line, "%lld %c %199s", &us, &dir, data), 2, "bad line: %s", line);
		cr_expect_geq(us, 0);
		if (dir == 'W' && w++ == 0)
			cr_expect_str_eq(data, "48454c4c4f00", "first write is HELLO\\0 in hex");
		r += dir == 'R';
		d += dir == 'D';
	}
	fclose(f);
	cr_expect_eq(w, 3);
	cr_expect_eq(r, 3);
	cr_expect_eq(d, 1);
}

Test(transport_record, replay_plays_back_the_unit)
{
	record_session();
	flasher_transport *t;
	cr_assert_eq(flasher_transport_replay_open(&t, path), 0, "%s", flasher_error_last());
	uint8_t buf[64];
	/* The unit has not answered before the host spoke. */
	cr_expect_eq(flasher_transport_read(t, buf, sizeof buf, 0), 0);
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"HEL", 3, 100), 0);
	cr_expect_eq(flasher_transport_read(t, buf, sizeof buf, 0), 0, "HELLO not complete yet");
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"LO\0", 3, 100), 0);
	cr_assert_eq(read_all(t, buf, 10), 10);
	cr_expect_arr_eq(buf, "INFO:1234\0", 10);
	/* Different chunking than recorded is fine: streams, not chunks. */
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"DATA\x01\x02\xff", 7, 100), 0);
	cr_expect_eq(flasher_transport_replay_finished(t), 0, "%s", flasher_error_last());
	cr_assert_eq(read_all(t, buf, 3), 3);
	cr_expect_arr_eq(buf, "ACK", 3);
	cr_expect_eq(flasher_transport_read(t, buf, sizeof buf, 0), FLASHER_EDISCONNECTED);
	flasher_transport_close(t);
}

Test(transport_record, replay_catches_a_host_deviation_with_its_offset)
{
	record_session();
	flasher_transport *t;
	cr_assert_eq(flasher_transport_replay_open(&t, path), 0, "%s", flasher_error_last());
	uint8_t buf[16];
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"HELLO\0", 6, 100), 0);
	cr_assert_eq(read_all(t, buf, 10), 10);
	/* Host->unit offset 11 (6 bytes of HELLO, then DATA\x01) holds 0x02. */
	int rc = flasher_transport_write(t, (const uint8_t *)"DATA\x01\x03", 6, 100);
	cr_expect_eq(rc, FLASHER_EPROTOCOL);
	cr_expect(strstr(flasher_error_last(), "offset 11") != NULL, "detail: %s", flasher_error_last());
	cr_expect(strstr(flasher_error_last(), "0x03") && strstr(flasher_error_last(), "0x02"), "detail: %s",
	          flasher_error_last());
	flasher_transport_close(t);
}

Test(transport_record, replay_reports_unfinished_host)
{
	record_session();
	flasher_transport *t;
	cr_assert_eq(flasher_transport_replay_open(&t, path), 0);
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"HELLO\0", 6, 100), 0);
	cr_expect_eq(flasher_transport_replay_finished(t), FLASHER_EPROTOCOL);
	cr_expect(strstr(flasher_error_last(), "offset 6") != NULL, "detail: %s", flasher_error_last());
	flasher_transport_close(t);
}

Test(transport_record, replay_refuses_extra_host_bytes)
{
	record_session();
	flasher_transport *t;
	cr_assert_eq(flasher_transport_replay_open(&t, path), 0);
	uint8_t buf[16];
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"HELLO\0", 6, 100), 0);
	read_all(t, buf, 10);
	cr_assert_eq(flasher_transport_write(t, (const uint8_t *)"DATA\x01\x02\xff", 7, 100), 0);
	read_all(t, buf, 3);
	int rc = flasher_transport_write(t, (const uint8_t *)"X", 1, 100);
	cr_expect(rc == FLASHER_EPROTOCOL || rc == FLASHER_EDISCONNECTED, "rc %d", rc);
	flasher_transport_close(t);
}

Test(transport_record, malformed_recordings_are_refused_with_line)
{
	FILE *f = fopen(path, "w");
	fputs("flasher-recording 1\n10 W 4142\n20 R 4x\n", f);
	fclose(f);
	flasher_transport *t = NULL;
	cr_expect_eq(flasher_transport_replay_open(&t, path), FLASHER_EFORMAT);
	cr_expect(strstr(flasher_error_last(), "line 3") != NULL, "detail: %s", flasher_error_last());
	f = fopen(path, "w");
	fputs("something else\n", f);
	fclose(f);
	cr_expect_eq(flasher_transport_replay_open(&t, path), FLASHER_EFORMAT);
	cr_expect_eq(flasher_transport_replay_open(&t, "/tmp/flasher-no-such-recording"), FLASHER_ENOTFOUND);
}

Test(transport_record, large_echo_round_trip_replays)
{
	/* Counters of the outer handle count what the host did. */
	struct mem_link l = {0};
	l.echo = 1;
	flasher_transport *inner, *t;
	cr_assert_eq(mem_transport_new(&inner, &l), 0);
	cr_assert_eq(flasher_transport_record_wrap(&t, inner, path), 0);
	uint8_t big[5000], back[5000];
	for (size_t i = 0; i < sizeof big; i++)
		big[i] = (uint8_t)rand();
	cr_assert_eq(flasher_transport_write(t, big, sizeof big, 100), 0);
	cr_assert_eq(read_all(t, back, sizeof back), (int)sizeof back);
	uint64_t w, r;
	flasher_transport_counters(t, &w, &r);
	cr_expect_eq(w, sizeof big);
	cr_expect_eq(r, sizeof big);
	flasher_transport_close(t);
	mem_link_free(&l);

	cr_assert_eq(flasher_transport_replay_open(&t, path), 0);
	cr_assert_eq(flasher_transport_write(t, big, sizeof big, 100), 0);
	memset(back, 0, sizeof back);
	cr_assert_eq(read_all(t, back, sizeof back), (int)sizeof back);
	cr_expect_arr_eq(back, big, sizeof big);
	cr_expect_eq(flasher_transport_replay_finished(t), 0);
	flasher_transport_close(t);
}
