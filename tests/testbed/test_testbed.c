/* Runs inside `flasher-testbed --units 3` (echoing units): discovery,
 * the real `flasher list --json`, and libserialport I/O as on hardware. */
#include <criterion/criterion.h>
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flasher.h"

static void expected_serials(char out[3][32])
{
	const char *s = getenv("FLASHER_TESTBED_SERIALS");
	cr_assert_not_null(s, "not running inside flasher-testbed");
	cr_assert_eq(sscanf(s, "%31[^,],%31[^,],%31s", out[0], out[1], out[2]), 3, "serials: %s", s);
}

TestSuite(testbed, .timeout = 60);

Test(testbed, library_lists_three_units_with_ids)
{
	char want[3][32];
	expected_serials(want);
	flasher_port_info *ports;
	size_t n;
	cr_assert_eq(flasher_port_list(&ports, &n, 0), 0, "%s", flasher_error_last());
	cr_assert_eq(n, 3, "found %zu units", n);
	for (size_t i = 0; i < n; i++) {
		char path[32];
		snprintf(path, sizeof path, "/dev/ttyACM%zu", i);
		cr_expect_str_eq(ports[i].path, path);
		cr_expect_eq(ports[i].vid, 0x0483);
		cr_expect_eq(ports[i].pid, 0x5740);
		cr_expect_str_eq(ports[i].serial, want[i]);
		cr_expect_eq(strlen(ports[i].serial), 24, "uid must be 24 hex digits: %s", ports[i].serial);
		cr_expect_eq(ports[i].bus, 1);
		cr_expect_eq(ports[i].address, (int)i + 2);
	}
	cr_expect_str_neq(ports[0].serial, ports[1].serial);
	flasher_port_list_free(ports);
}

Test(testbed, find_matches_the_full_serial_only)
{
	char want[3][32];
	expected_serials(want);
	char path[64];
	cr_assert_eq(flasher_port_find(want[2], path, sizeof path), 0, "%s", flasher_error_last());
	cr_expect_str_eq(path, "/dev/ttyACM2");
	char prefix[32];
	snprintf(prefix, sizeof prefix, "%.*s", 23, want[2]);
	cr_expect_eq(flasher_port_find(prefix, path, sizeof path), FLASHER_ENOTFOUND, "a prefix must not match");
	cr_expect(strstr(flasher_error_last(), prefix) != NULL, "%s", flasher_error_last());
}

Test(testbed, cli_list_json_shows_three_units)
{
	char want[3][32];
	expected_serials(want);
	FILE *p = popen(FLASHER_CLI_PATH " list --json", "r");
	cr_assert_not_null(p);
	static char out[65536];
	size_t len = fread(out, 1, sizeof out - 1, p);
	out[len] = '\0';
	int st = pclose(p);
	cr_assert_eq(st, 0, "flasher list --json exited with %d", st);
	cJSON *root = cJSON_Parse(out);
	cr_assert_not_null(root, "stdout is not one JSON document: %s", out);
	cJSON *arr = cJSON_GetObjectItem(root, "ports");
	cr_assert(cJSON_IsArray(arr));
	cr_assert_eq(cJSON_GetArraySize(arr), 3, "%s", out);
	for (int i = 0; i < 3; i++) {
		cJSON *o = cJSON_GetArrayItem(arr, i);
		cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "vid")), "0483");
		cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "pid")), "5740");
		cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "serial")), want[i]);
		char path[32];
		snprintf(path, sizeof path, "/dev/ttyACM%d", i);
		cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetObjectItem(o, "path")), path);
	}
	cJSON_Delete(root);
}

static void round_trip(const char *port, size_t size)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, port), 0, "%s: %s", port, flasher_error_last());
	/* libserialport knows a umockdev ttyACM: no termios fallback. */
	cr_expect(strncmp(flasher_transport_description(t), "serial:", 7) == 0, "backend %s",
	          flasher_transport_description(t));
	uint8_t *out = malloc(size), *in = malloc(size);
	for (size_t i = 0; i < size; i++)
		out[i] = (uint8_t)(i * 13 + (i >> 7));
	size_t got = 0;
	/* Write in chunks while reading, as the relay's buffers are finite. */
	for (size_t off = 0; off < size || got < size;) {
		if (off < size) {
			size_t k = size - off < 4096 ? size - off : 4096;
			cr_assert_eq(flasher_transport_write(t, out + off, k, 5000), 0, "%s", flasher_error_last());
			off += k;
		}
		int n = flasher_transport_read(t, in + got, size - got, off < size ? 0 : 5000);
		cr_assert_geq(n, 0, "read: %s", flasher_error_last());
		if (off >= size)
			cr_assert_gt(n, 0, "echo stalled after %zu of %zu bytes", got, size);
		got += (size_t)n;
	}
	cr_assert_arr_eq(in, out, size);
	uint64_t w, r;
	flasher_transport_counters(t, &w, &r);
	cr_expect_eq(w, size);
	cr_expect_eq(r, size);
	free(out);
	free(in);
	flasher_transport_close(t);
}

Test(testbed, libserialport_round_trip_through_a_unit)
{
	round_trip("/dev/ttyACM1", 65536);
}

Test(testbed, each_unit_has_its_own_link)
{
	round_trip("/dev/ttyACM0", 1000);
	round_trip("/dev/ttyACM2", 1000);
}
