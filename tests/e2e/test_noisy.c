/* Noisy link: seeded corruption, drops and duplicates both ways. Every run
 * ends in a verified update or a clean error, never a wrong image. */
#include <criterion/criterion.h>
#include <signal.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "e2e.h"
#include "flboot/image.h"
#include "flboot/proto.h"

static e2e_devsim dev;

static void teardown(void)
{
	e2e_devsim_kill(&dev, SIGTERM);
	e2e_cleanup();
}

typedef struct noise_case {
	uint64_t seed;
	uint32_t corrupt_ppm, drop_ppm, duplicate_ppm;
} noise_case;

ParameterizedTestParameters(e2e_noisy, verified_or_clean_error)
{
	static noise_case cases[] = {
		{1, 20, 0, 0}, {2, 0, 20, 0}, {3, 0, 0, 20}, {4, 30, 30, 30}, {5, 100, 50, 50}, {6, 300, 100, 100},
	};
	return cr_make_param_array(noise_case, cases, sizeof cases / sizeof cases[0]);
}

static const flasher_slot *primary(const flasher_unit_info *u, flasher_core core)
{
	for (size_t i = 0; i < u->slot_count; i++)
		if (u->slots[i].core == core && u->slots[i].primary)
			return &u->slots[i];
	return NULL;
}

ParameterizedTest(noise_case *c, e2e_noisy, verified_or_clean_error, .fini = teardown, .timeout = 600)
{
	e2e_pkg_spec spec = {.version = "4.5.6", .cm7_size = 96 * 1024 + 32, .cm4_size = 64 * 1024 + 5,
	                     .seed = (uint32_t)c->seed, .compressible = (int)(c->seed & 1)};
	const char *pkg_path = e2e_make_pkg("n.pkg", &spec);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	flasher_fault_config f = FLASHER_FAULT_CONFIG_INIT;
	f.seed = c->seed;
	f.corrupt_ppm = c->corrupt_ppm;
	f.drop_ppm = c->drop_ppm;
	f.duplicate_ppm = c->duplicate_ppm;
	f.both_directions = 1;
	flasher_session_options so = FLASHER_SESSION_OPTIONS_INIT;
	so.fault = &f;
	so.timeout_ms = 300;
	flasher_update_result r;
	int err = e2e_update(dev.pty, pkg_path, NULL, &so, &r);
	cr_log_info("seed %llu (%u/%u/%u ppm): %s, payload %llu, sent %llu, wire %llu", (unsigned long long)c->seed,
	            c->corrupt_ppm, c->drop_ppm, c->duplicate_ppm, flasher_error_name(err),
	            (unsigned long long)r.payload_bytes, (unsigned long long)r.sent_bytes, (unsigned long long)r.wire_bytes);
	if (err)
		cr_log_warn("seed %llu: clean error %s: %s", (unsigned long long)c->seed, flasher_error_name(err),
		            flasher_error_last());
	/* a clean error is one of the link/timeouts kinds, with a detail */
	cr_assert(err == 0 || err == FLASHER_ETIMEOUT || err == FLASHER_EDISCONNECTED || err == FLASHER_EPROTOCOL,
	          "seed %llu: %s: %s", (unsigned long long)c->seed, flasher_error_name(err), flasher_error_last());
	if (err)
		cr_assert_neq(flasher_error_last()[0], '\0');
	else
		cr_assert_geq(r.sent_bytes, r.payload_bytes - r.resumed_bytes);

	/* a clean link finishes the job (resuming) and the unit runs exactly the package */
	if (err) {
		flasher_update_result r2;
		err = e2e_update(dev.pty, pkg_path, NULL, NULL, &r2);
		cr_assert_eq(err, 0, "after noise: %s: %s", flasher_error_name(err), flasher_error_last());
	}
	flasher_unit_info u;
	cr_assert_eq(e2e_info(dev.pty, &u), 0);
	cr_assert_eq(u.cm7_version, FLBOOT_VERSION(4, 5, 6));
	cr_assert_eq(u.cm4_version, FLBOOT_VERSION(4, 5, 6));
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, pkg_path), 0);
	for (size_t i = 0; i < flasher_package_image_count(pkg); i++) {
		flasher_package_image img;
		cr_assert_eq(flasher_package_image(pkg, i, &img), 0);
		const flasher_slot *sl = primary(&u, img.core);
		cr_assert_not_null(sl);
		cr_assert_eq(sl->payload_crc32, img.payload_crc32, "core %d runs an image with CRC %08x, package %08x",
		             img.core, sl->payload_crc32, img.payload_crc32);
	}
	flasher_package_free(pkg);
}
