/* Full updates through the library against a real flasher-devsim. */
#include <criterion/criterion.h>
#include <signal.h>
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

static const flasher_slot *primary(const flasher_unit_info *u, flasher_core core)
{
	for (size_t i = 0; i < u->slot_count; i++)
		if (u->slots[i].core == core && u->slots[i].primary)
			return &u->slots[i];
	return NULL;
}

static void assert_runs(const char *port, const char *pkg_path, uint32_t cm7, uint32_t cm4)
{
	flasher_unit_info u;
	int err = e2e_info(port, &u);
	cr_assert_eq(err, 0, "info: %s", flasher_error_last());
	cr_assert_eq(u.mode, FLASHER_MODE_APPLICATION);
	cr_assert_eq(u.state, FLASHER_STATE_CONFIRMED);
	cr_assert_eq(u.cm7_version, cm7, "cm7 runs %08x, expected %08x", u.cm7_version, cm7);
	cr_assert_eq(u.cm4_version, cm4, "cm4 runs %08x, expected %08x", u.cm4_version, cm4);
	/* the primary slots hold exactly the package's images */
	flasher_package *pkg;
	cr_assert_eq(flasher_package_open(&pkg, pkg_path), 0);
	for (size_t i = 0; i < flasher_package_image_count(pkg); i++) {
		flasher_package_image img;
		cr_assert_eq(flasher_package_image(pkg, i, &img), 0);
		const flasher_slot *sl = primary(&u, img.core);
		cr_assert_not_null(sl);
		cr_assert_eq(sl->payload_crc32, img.payload_crc32, "core %d: slot crc %08x, package %08x", img.core,
		             sl->payload_crc32, img.payload_crc32);
	}
	flasher_package_free(pkg);
}

static int phases_seen;
static int count_phases(const flasher_progress *p, void *payload)
{
	(void)payload;
	phases_seen |= 1 << p->phase;
	cr_assert_leq(p->bytes_done, p->bytes_total);
	return 0;
}

Test(e2e_update, both_cores_then_one_core, .init = NULL, .fini = teardown, .timeout = 240)
{
	e2e_pkg_spec a = {.version = "1.0.1", .cm7_size = 200 * 1024, .cm4_size = 300 * 1024, .seed = 1,
	                  .compressible = 1};
	e2e_pkg_spec b = {.version = "1.0.2", .cm7_size = 150 * 1024 + 100, .seed = 2};
	const char *pa = e2e_make_pkg("a.pkg", &a);
	const char *pb = e2e_make_pkg("b.pkg", &b);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});

	flasher_unit_info u;
	cr_assert_eq(e2e_info(dev.pty, &u), 0, "%s", flasher_error_last());
	cr_assert_eq(u.mode, FLASHER_MODE_BOOTLOADER);
	cr_assert_eq(u.state, FLASHER_STATE_EMPTY);
	cr_assert_eq(strlen(u.uid), 24);

	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.progress = count_phases;
	flasher_update_result r;
	int err = e2e_update(dev.pty, pa, &uo, NULL, &r);
	cr_assert_eq(err, 0, "update to 1.0.1: %s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_eq(r.payload_bytes, 500 * 1024);
	cr_assert_eq(r.resumed_bytes, 0);
	cr_assert_geq(r.sent_bytes, r.payload_bytes);
	/* compressible images: fewer bytes on the wire than payload */
	cr_assert_lt(r.wire_bytes, r.payload_bytes, "wire %llu payload %llu", (unsigned long long)r.wire_bytes,
	             (unsigned long long)r.payload_bytes);
	cr_assert_eq(r.after.cm7_version, FLBOOT_VERSION(1, 0, 1));
	for (int ph = FLASHER_PHASE_CONNECT; ph <= FLASHER_PHASE_DONE; ph++)
		cr_assert(phases_seen & (1 << ph), "phase %s never reported", flasher_phase_name(ph));
	assert_runs(dev.pty, pa, FLBOOT_VERSION(1, 0, 1), FLBOOT_VERSION(1, 0, 1));

	/* only cm7; the application runs now, so the update enters the bootloader first */
	err = e2e_update(dev.pty, pb, NULL, NULL, &r);
	cr_assert_eq(err, 0, "update to 1.0.2: %s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_eq(r.old_cm7_version, FLBOOT_VERSION(1, 0, 1));
	/* random data does not compress: sent raw, wire slightly above payload */
	cr_assert_geq(r.wire_bytes, r.payload_bytes);
	assert_runs(dev.pty, pb, FLBOOT_VERSION(1, 0, 2), FLBOOT_VERSION(1, 0, 1));
}

Test(e2e_update, uncompressed_and_rebooted_devsim_keeps_firmware, .fini = teardown, .timeout = 240)
{
	e2e_pkg_spec a = {.version = "2.3.4", .cm7_size = 64 * 1024, .cm4_size = 33 * 1024 + 7, .seed = 9,
	                  .compressible = 1};
	const char *pa = e2e_make_pkg("a.pkg", &a);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	uo.compress = 0;
	flasher_update_result r;
	int err = e2e_update(dev.pty, pa, &uo, NULL, &r);
	cr_assert_eq(err, 0, "%s: %s", flasher_error_name(err), flasher_error_last());
	cr_assert_gt(r.wire_bytes, r.payload_bytes, "uncompressed: every payload byte is on the wire");
	/* power off and on: the unit boots the new pair from its flash file */
	e2e_devsim_kill(&dev, SIGKILL);
	e2e_devsim_start(&dev, e2e_path("unit.flash"), (const char *const[]){"--link-rate", "none", NULL});
	flasher_session *s;
	cr_assert_eq(flasher_session_open(&s, dev.pty, NULL), 0, "%s", flasher_error_last());
	flasher_unit_info u;
	/* the simulated app may need a moment to start answering */
	cr_assert_eq(flasher_session_info(s, &u), 0);
	flasher_session_close(s);
	cr_assert_eq(u.cm7_version, FLBOOT_VERSION(2, 3, 4));
	cr_assert_eq(u.cm4_version, FLBOOT_VERSION(2, 3, 4));
}
