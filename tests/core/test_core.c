/*
 * test_core.c - the bootloader core through its real protocol: loopback
 * transport, flashsim flash, reset = zeroed struct + init + boot.
 * Layout v2: images run in place from slot A or B; every transition is a
 * word written into a slot trailer.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../firmware/core/src/core.h"
#include "harness.h"

#define CM7 FLBOOT_CORE_CM7
#define CM4 FLBOOT_CORE_CM4
#define A7 FLBOOT_CM7_SLOT_A_ADDR
#define B7 FLBOOT_CM7_SLOT_B_ADDR
#define A4 FLBOOT_CM4_SLOT_A_ADDR
#define B4 FLBOOT_CM4_SLOT_B_ADDR

static unit *u;
static image a7, a4, b7, b4;

static void setup(void)
{
	u = unit_new();
	/* CM7 image spans two sectors (header area + 140 KiB). */
	image_make(&a7, CM7, FLBOOT_VERSION(1, 0, 0), 140 * 1024 + 100, 1, 0);
	image_make(&a4, CM4, FLBOOT_VERSION(1, 0, 0), 20 * 1024 + 7, 2, 0);
	image_make(&b7, CM7, FLBOOT_VERSION(2, 0, 0), 150 * 1024, 3, 0);
	image_make(&b4, CM4, FLBOOT_VERSION(2, 0, 0), 24 * 1024 + 32, 4, 0);
	memcpy(b7.hdr.set_id, "SETID002", 8);
	memcpy(b4.hdr.set_id, "SETID002", 8);
	image_seal(&b7);
	image_seal(&b4);
}

static void teardown(void)
{
	unit_free(u);
	image_free(&a7);
	image_free(&a4);
	image_free(&b7);
	image_free(&b4);
}

static flboot_hello hello(void)
{
	flboot_hello h;
	cr_assert_eq(unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0), 0);
	cr_assert_eq(u->body_len, sizeof h);
	memcpy(&h, u->body, sizeof h);
	return h;
}

static char *reason(void)
{
	static char r[FLBOOT_REASON_MAX + 1];
	memcpy(r, u->body, u->body_len);
	r[u->body_len] = 0;
	return r;
}

static flashsim_stats stats(void)
{
	flashsim_stats s;
	flashsim_get_stats(u->fs, &s);
	return s;
}

/* Break the flash word at addr (a second program leaves an ECC error). */
static void corrupt(uint32_t addr)
{
	uint8_t w[32];
	memset(w, 0x5A, sizeof w);
	flashsim_program(u->fs, addr & ~31u, w);
	flashsim_program(u->fs, addr & ~31u, w);
}

/* Install a confirmed pair a7+a4 (slots A). */
static void install_a(void)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
}

/* install_a, then b7+b4 (slots B) on trial, booted once. */
static void trial_b(flboot_boot_target *t)
{
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, &b4, t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(t->trial);
}

static int activate(uint8_t cores)
{
	flboot_activate_req a = { cores };
	return unit_request(u, FLBOOT_MSG_ACTIVATE, 0, &a, 1);
}

static int reboot(flboot_boot_target *t)
{
	flboot_reboot_req r = { FLBOOT_REBOOT_NORMAL };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, 1), 0);
	cr_assert(u->reset_requested);
	return unit_boot(u, t);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 60);

Test(core, hello_fields_on_empty_unit)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	flboot_hello h = hello();
	cr_assert_eq(u->resp_type, FLBOOT_MSG_HELLO | FLBOOT_MSG_RESPONSE);
	cr_assert_eq(u->resp_seq, u->seq);
	cr_assert_eq(h.proto_version, FLBOOT_PROTO_VERSION);
	cr_assert_eq(h.proto_minor, FLBOOT_PROTO_MINOR);
	cr_assert_eq(FLBOOT_PROTO_MINOR, 2u);
	cr_assert_eq(h.mode, FLBOOT_MODE_BOOTLOADER);
	cr_assert_eq(h.boot_state, FLBOOT_STATE_EMPTY);
	cr_assert_eq(h.bootloader_version, FLBOOT_VERSION(1, 2, 0));
	cr_assert_str_eq(h.product, "demo");
	cr_assert_str_eq(h.hw_rev, "B");
	cr_assert_str_eq(h.serial, "0102030405060708090a0b0c");
	cr_assert_eq(memcmp(h.uid, u->id.uid, 12), 0);
	cr_assert_eq(h.max_payload, FLBOOT_MAX_BLOCK + sizeof(flboot_data_head));
	cr_assert_eq(h.window, FLBOOT_WINDOW);
	cr_assert_eq(h.n_slots, 4);
	cr_assert_eq(h.op_timeout_ms, 5000);
	cr_assert_eq(h.features, FLBOOT_FEAT_DEFLATE | FLBOOT_FEAT_RESUME | FLBOOT_FEAT_PREPARE);
	uint32_t addr[4] = { 0x08020000u, 0x08080000u, 0x08100000u, 0x08180000u };
	uint32_t size[4] = { 384 * 1024, 384 * 1024, 512 * 1024, 512 * 1024 };
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(h.slots[i].core, i < 2 ? CM7 : CM4);
		cr_assert_eq(h.slots[i].address, addr[i]);
		cr_assert_eq(h.slots[i].size, size[i]);
		cr_assert_eq(h.slots[i].state, FLBOOT_SLOT_EMPTY);
		cr_assert_eq(h.slots[i].role, i % 2 ? FLBOOT_ROLE_PRIMARY : FLBOOT_ROLE_SECONDARY, "A is staged first");
	}
	cr_assert_eq(h.stage_addr[0], A7);
	cr_assert_eq(h.stage_addr[1], A4);
	cr_assert_eq(flashsim_ops(u->fs), 0, "HELLO on an empty unit touches no flash");
}

Test(core, full_update_boots_new_pair_on_trial_in_place)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0);
	flboot_end_resp e;
	memcpy(&e, u->body, sizeof e);
	cr_assert_eq(e.crc32, a7.hdr.payload_crc32);
	cr_assert_eq(memcmp(e.sha256, a7.hdr.payload_sha256, 32), 0);
	cr_assert_eq(unit_transfer(u, &a4, 4096, 0), 0);
	flboot_hello h = hello();
	cr_assert_eq(h.slots[0].state, FLBOOT_SLOT_STAGED);
	cr_assert_eq(h.slots[2].state, FLBOOT_SLOT_STAGED);
	cr_assert_eq(h.slots[0].version, a7.hdr.version);

	cr_assert_eq(activate(3), 0);
	h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_PENDING);
	cr_assert_eq(h.stage_addr[0], B7, "the next update goes to the other slot");
	cr_assert_eq(activate(3), 0, "a repeated ACTIVATE is answered OK");
	flboot_reboot_req r = { FLBOOT_REBOOT_NORMAL };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, 1), 0);
	cr_assert(u->reset_requested);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0), NO_RESPONSE, "nothing after a reset");

	uint64_t erases = stats().erases;
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(stats().erases, erases, "booting a new pair copies nothing");
	cr_assert(t.trial);
	cr_assert_eq(t.cm7_entry, A7 + 0x400);
	cr_assert_eq(t.cm4_entry, A4 + 0x400);
	cr_assert(unit_runs(u, &t, &a7));
	cr_assert(unit_runs(u, &t, &a4));
	h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_TRIAL);
	cr_assert_eq(h.trial_boots, 1);
	cr_assert_eq(h.running_cm7, a7.hdr.version);
	cr_assert_eq(h.slots[0].state, FLBOOT_SLOT_ACTIVE);
	cr_assert_eq(h.slots[0].role, FLBOOT_ROLE_PRIMARY);
	cr_assert_eq(h.slots[1].role, FLBOOT_ROLE_SECONDARY);
	cr_assert_eq(h.slots[0].payload_crc32, a7.hdr.payload_crc32);
}

Test(core, updates_alternate_slots)
{
	flboot_boot_target t;
	image c7, c4;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(hello().stage_addr[1], B4);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(t.cm7_entry, B7 + 0x400);
	cr_assert_eq(t.cm4_entry, B4 + 0x400);
	cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &b4));
	cr_assert(unit_holds(u, A7, &a7) && unit_holds(u, A4, &a4), "the previous pair stays where it ran");
	flboot_hello h = hello();
	cr_assert_eq(h.slots[0].state, FLBOOT_SLOT_PREVIOUS);
	cr_assert_eq(h.slots[1].state, FLBOOT_SLOT_ACTIVE);
	cr_assert_eq(h.slots[1].role, FLBOOT_ROLE_PRIMARY);
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	image_make(&c7, CM7, FLBOOT_VERSION(3, 0, 0), 1000, 5, 0);
	image_make(&c4, CM4, FLBOOT_VERSION(3, 0, 0), 1000, 6, 0);
	cr_assert_eq(unit_update(u, &c7, &c4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(t.cm7_entry, A7 + 0x400, "back to slot A");
	cr_assert(unit_runs(u, &t, &c7) && unit_runs(u, &t, &c4));
	image_free(&c7);
	image_free(&c4);
}

Test(core, linked_image_must_match_the_stage_slot)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	image_link(&b7, A7);
	uint64_t ops = flashsim_ops(u->fs);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &b7.hdr, 128), FLBOOT_E_RANGE);
	cr_assert(strstr(reason(), "linked for 0x08020400, this unit stages cm7 into the slot at 0x08080000"), "%s",
	          reason());
	cr_assert_eq(flashsim_ops(u->fs), ops);
	image_link(&b7, B7);
	image_link(&b4, B4);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(t.cm7_entry, B7 + 0x400);
	cr_assert(unit_runs(u, &t, &b7));
}

Test(core, full_size_images_fit)
{
	flboot_boot_target t;
	image f7, f4;
	image_make(&f7, CM7, FLBOOT_VERSION(1, 0, 0), 384 * 1024 - 1024, 7, 1);
	image_make(&f4, CM4, FLBOOT_VERSION(1, 0, 0), 512 * 1024 - 1024, 8, 1);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &f7, &f4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &f7) && unit_runs(u, &t, &f4));
	image_free(&f7);
	image_free(&f4);
}

Test(core, erases_exactly_the_staged_sectors)
{
	flboot_boot_target t;
	image f7, f4, g7, g4;
	image_make(&f7, CM7, FLBOOT_VERSION(1, 0, 0), 380 * 1024, 7, 1);
	image_make(&f4, CM4, FLBOOT_VERSION(1, 0, 0), 508 * 1024, 8, 1);
	image_make(&g7, CM7, FLBOOT_VERSION(2, 0, 0), 380 * 1024, 9, 1);
	image_make(&g4, CM4, FLBOOT_VERSION(2, 0, 0), 508 * 1024, 10, 1);
	/* A blank unit: every sector reads erased, all are erased anyway,
	 * plus the metadata sector once (its first use). */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &f7, &f4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(stats().erases, 3 + 4 + 1);
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	uint64_t e0 = stats().erases, p0 = stats().programs;
	cr_assert_eq(unit_update(u, &g7, &g4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(stats().erases - e0, 7, "an update erases the 7 sectors it stages");
	/* confirm from the application: one word, no erase */
	e0 = stats().erases;
	p0 = stats().programs;
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(stats().erases, e0);
	cr_assert_eq(stats().programs - p0, 1, "confirm writes one word");
	/* rollback: one word, no erase */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &f7) && unit_runs(u, &t, &f4));
	cr_assert_eq(stats().erases, e0, "a rollback erases nothing");
	image_free(&f7);
	image_free(&f4);
	image_free(&g7);
	image_free(&g4);
}

Test(core, prepare_erases_both_banks_at_once)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	uint8_t hdrs[256];
	memcpy(hdrs, &a7.hdr, 128);
	memcpy(hdrs + 128, &a4.hdr, 128);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_PREPARE, 0, hdrs, sizeof hdrs), 0);
	cr_assert_geq(u->parallel_erases, 1, "PREPARE starts an erase on each bank");
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0);
	cr_assert_eq(unit_transfer(u, &a4, 4096, 0), 0);
	cr_assert_eq(activate(3), 0);
	/* a PREPARE for one core twice */
	memcpy(hdrs + 128, &a7.hdr, 128);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_PREPARE, 0, hdrs, sizeof hdrs), FLBOOT_E_FRAME);
}

Test(core, blocking_port_updates_too)
{
	flboot_boot_target t;
	u->blocking_erase = 1;
	install_a();
	cr_assert_eq(u->erases_started, 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &b4));
}

Test(core, confirm_makes_pair_permanent)
{
	flboot_boot_target t;
	install_a();
	for (int i = 0; i < 4; i++) {
		cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
		cr_assert_not(t.trial);
	}
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
	cr_assert(unit_runs(u, &t, &a7));
}

Test(core, confirm_command_in_bootloader)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
}

Test(core, confirm_refused_for_a_pair_that_never_booted)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_transfer(u, &b7, 4096, 0), 0);
	cr_assert_eq(unit_transfer(u, &b4, 4096, 0), 0);
	cr_assert_eq(activate(3), 0);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0), FLBOOT_E_STATE);
	cr_assert(strstr(reason(), "not booted"), "%s", reason());
	cr_assert_neq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_PENDING);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(t.trial, "still a trial: the CONFIRM did not count");
}

Test(core, unconfirmed_trial_reverts_to_old_pair)
{
	flboot_boot_target t;
	trial_b(&t);
	cr_assert_eq(t.cm7_version, b7.hdr.version);
	for (unsigned i = 1; i < FLBOOT_TRIAL_MAX_BOOTS; i++) {
		cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
		cr_assert(t.trial);
		cr_assert_eq(t.cm7_version, b7.hdr.version);
	}
	uint64_t e0 = stats().erases;
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(stats().erases, e0, "a revert erases nothing");
	cr_assert_not(t.trial);
	cr_assert(unit_runs(u, &t, &a7));
	cr_assert(unit_runs(u, &t, &a4));
	flboot_hello h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_ROLLED_BACK);
	cr_assert_eq(h.last_boot_error, FLBOOT_E_TRIAL);
	cr_assert_eq(h.slots[1].state, FLBOOT_SLOT_EMPTY, "the failed pair is not offered as staged");
}

Test(core, rollback_command_restores_previous_pair)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), FLBOOT_E_NO_ROLLBACK, "first install");
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	flboot_hello h = hello();
	cr_assert_eq(h.slots[0].state, FLBOOT_SLOT_PREVIOUS);
	cr_assert_eq(h.slots[0].version, a7.hdr.version);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	/* the same request again (a lost answer): not a second rollback */
	u->seq--;
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	cr_assert_eq(hello().running_cm7, a7.hdr.version);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert_not(t.trial);
	cr_assert(unit_runs(u, &t, &a7));
	cr_assert(unit_runs(u, &t, &a4));
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_ROLLED_BACK);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), FLBOOT_E_NO_ROLLBACK);
}

Test(core, rollback_during_trial_and_while_pending)
{
	flboot_boot_target t;
	trial_b(&t);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &a7) && !t.trial);
	/* pending: activated, not booted yet */
	image_free(&b7);
	image_make(&b7, CM7, FLBOOT_VERSION(2, 1, 0), 2000, 31, 0);
	cr_assert_eq(unit_transfer(u, &b7, 4096, 0), 0);
	cr_assert_eq(activate(1), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_PENDING);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &b4.hdr, 128), FLBOOT_E_STATE, "way back kept");
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &a7) && unit_runs(u, &t, &a4) && !t.trial);
}

Test(core, rollback_refused_when_the_previous_pair_is_corrupt)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	corrupt(A4 + 0x400 + 4096);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), FLBOOT_E_NO_ROLLBACK);
	cr_assert(strstr(reason(), "previous pair does not verify"), "%s", reason());
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &b4), "the running pair was kept");
}

Test(core, expired_trial_with_corrupt_way_back_keeps_the_new_pair)
{
	/* landed defect: a revert onto a corrupt previous image stranded the
	 * good pair. Now the trial pair stays; CONFIRM or an update get out. */
	flboot_boot_target t;
	trial_b(&t);
	corrupt(A7 + 0x400 + 100);
	for (unsigned i = 1; i < FLBOOT_TRIAL_MAX_BOOTS; i++)
		cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_STAY);
	flboot_hello h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_TRIAL);
	cr_assert_eq(h.last_boot_error, FLBOOT_E_TRIAL);
	cr_assert(unit_holds(u, B7, &b7) && unit_holds(u, B4, &b4));
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), FLBOOT_E_NO_ROLLBACK);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0), 0);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &b7) && !t.trial);
}

Test(core, expired_trial_without_way_back_takes_an_update)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP, "%s", reason());
	for (unsigned i = 1; i < FLBOOT_TRIAL_MAX_BOOTS; i++)
		cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_STAY);
	flboot_hello h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_EMPTY);
	cr_assert_eq(h.last_boot_error, FLBOOT_E_TRIAL);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7) && t.trial);
}

Test(core, broken_trial_pair_reverts)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_transfer(u, &b7, 4096, 0), 0);
	cr_assert_eq(unit_transfer(u, &b4, 4096, 0), 0);
	cr_assert_eq(activate(3), 0);
	corrupt(B7 + 0x400 + 64);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &a7) && !t.trial);
	flboot_hello h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_ROLLED_BACK);
	cr_assert_lt(h.last_boot_error, 0);
}

Test(core, corrupt_confirmed_pair_has_exits)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	corrupt(B4 + 0x400 + 64);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_STAY);
	cr_assert_lt(hello().last_boot_error, 0);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0, "exit 1: the previous pair");
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &a7) && unit_runs(u, &t, &a4));
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "exit 2: an update: %s", reason());
	cr_assert(unit_runs(u, &t, &b4));
}

Test(core, cm7_only_update_keeps_cm4)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, NULL, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7));
	cr_assert(unit_runs(u, &t, &a4));
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	/* then the CM4 alone, its pair keeps the CM7 */
	cr_assert_eq(unit_update(u, NULL, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &b4));
	/* and back, one step at a time */
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	cr_assert_eq(reboot(&t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &a4));
}

Test(core, cm4_only_package_on_a_unit_without_cm7)
{
	/* landed defect: it stayed on trial forever. Now refused, and the
	 * whole package gets the unit going. */
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_transfer(u, &a4, 4096, 0), 0);
	cr_assert_eq(activate(2), FLBOOT_E_CORE);
	cr_assert(strstr(reason(), "no cm7 image"), "%s", reason());
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_EMPTY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &a7) && unit_runs(u, &t, &a4));
}

Test(core, activate_refuses_images_of_two_packages)
{
	/* landed defect: ACTIVATE took a CM7 and a CM4 of two packages */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0);
	cr_assert_eq(unit_transfer(u, &b4, 4096, 0), 0);
	uint64_t ops = flashsim_ops(u->fs);
	cr_assert_eq(activate(3), FLBOOT_E_SET_ID);
	cr_assert(strstr(reason(), "two packages"), "%s", reason());
	cr_assert_eq(flashsim_ops(u->fs), ops);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_EMPTY);
}

Test(core, end_after_already_staged_verifies_that_core)
{
	/* landed defect: with two images of one size, END after "already
	 * staged" verified the CM7 for a CM4 BEGIN */
	image s7, s4;
	image_make(&s7, CM7, FLBOOT_VERSION(1, 0, 0), 50000, 21, 0);
	image_make(&s4, CM4, FLBOOT_VERSION(1, 0, 0), 50000, 22, 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_transfer(u, &s7, 4096, 0), 0);
	cr_assert_eq(unit_transfer(u, &s4, 4096, 0), 0);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &s4.hdr, 128), 0);
	flboot_begin_resp b;
	memcpy(&b, u->body, sizeof b);
	cr_assert_eq(b.resume_offset, s4.size, "already staged");
	cr_assert_eq(unit_request(u, FLBOOT_MSG_END, 0, NULL, 0), 0);
	flboot_end_resp e;
	memcpy(&e, u->body, sizeof e);
	cr_assert_eq(e.crc32, s4.hdr.payload_crc32, "END verified the cm4 image");
	cr_assert_neq(e.crc32, s7.hdr.payload_crc32);
	image_free(&s7);
	image_free(&s4);
}

static void send_blocks(const image *im, uint32_t from, uint32_t count)
{
	uint8_t buf[8 + 4096];
	flboot_data_head d;
	for (uint32_t i = 0; i < count; i++) {
		d.offset = from + i * 4096;
		d.raw_length = 4096;
		memcpy(buf, &d, 8);
		memcpy(buf + 8, im->payload + d.offset, 4096);
		cr_assert_eq(unit_request(u, FLBOOT_MSG_DATA, 0, buf, sizeof buf), 0);
		cr_assert_eq(u->detail, d.offset + 4096);
	}
}

Test(core, resume_after_reset_answers_durable_offset)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	flboot_begin_resp b;
	memcpy(&b, u->body, sizeof b);
	cr_assert_eq(b.resume_offset, 0);
	cr_assert_eq(b.max_block, FLBOOT_MAX_BLOCK);
	send_blocks(&a7, 0, 33); /* into the second sector */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	flboot_status s;
	cr_assert_eq(unit_request(u, FLBOOT_MSG_STATUS, 0, NULL, 0), 0);
	memcpy(&s, u->body, sizeof s);
	cr_assert_eq(s.receiving_core, CM7);
	cr_assert_eq(s.total, a7.size);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	memcpy(&b, u->body, sizeof b);
	/* the last word is sent again: a cut may have torn it into bad data */
	cr_assert_eq(b.resume_offset, 33 * 4096 - 32);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0, "completes from the resume point");
}

Test(core, resume_does_not_resend_acknowledged_ff_runs)
{
	/* landed defect: the resume scan stopped at the last programmed word
	 * and had acknowledged 0xFF runs sent again */
	image f;
	image_make(&f, CM7, FLBOOT_VERSION(1, 0, 0), 200 * 1024, 23, 0);
	memset(f.payload + 8192, 0xFF, 120 * 1024);
	image_seal(&f);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &f.hdr, 128), 0);
	send_blocks(&f, 0, 32); /* 128 KiB acknowledged, most of it 0xFF */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &f.hdr, 128), 0);
	flboot_begin_resp b;
	memcpy(&b, u->body, sizeof b);
	cr_assert_geq(b.resume_offset + FLBOOT_WINDOW * FLBOOT_MAX_BLOCK, 32u * 4096,
	              "resume at %u re-sends more than one window", b.resume_offset);
	cr_assert_leq(b.resume_offset, 32u * 4096);
	cr_assert_eq(unit_transfer(u, &f, 4096, 0), 0);
	image_free(&f);
}

Test(core, resume_after_torn_word)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	send_blocks(&a7, 0, 32);
	/* tear the 50th operation from here */
	flashsim_arm_cut(u->fs, 50, FLASHSIM_CUT_DURING, 7);
	uint8_t buf[8 + 4096];
	flboot_data_head d = { 32 * 4096, 4096 };
	memcpy(buf, &d, 8);
	memcpy(buf + 8, a7.payload + d.offset, 4096);
	unit_request(u, FLBOOT_MSG_DATA, 0, buf, sizeof buf);
	cr_assert(flashsim_cut_happened(u->fs));
	flashsim_power_on(u->fs);
	u->flags = 0;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	flboot_begin_resp b;
	memcpy(&b, u->body, sizeof b);
	cr_assert_leq(b.resume_offset, 33 * 4096);
	cr_assert_geq(b.resume_offset, FLBOOT_SECTOR_SIZE - FLBOOT_HEADER_AREA);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0);
}

Test(core, out_of_order_data_is_naked_with_expected_offset)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	send_blocks(&a7, 0, 2);
	uint64_t ops = flashsim_ops(u->fs);
	uint8_t buf[8 + 4096];
	flboot_data_head d = { 4 * 4096, 4096 };
	memcpy(buf, &d, 8);
	memcpy(buf + 8, a7.payload + d.offset, 4096);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_DATA, 0, buf, sizeof buf), FLBOOT_E_OFFSET);
	cr_assert_eq(u->detail, 2 * 4096);
	/* duplicate: ACK with the expected offset, nothing rewritten */
	d.offset = 4096;
	memcpy(buf, &d, 8);
	memcpy(buf + 8, a7.payload + d.offset, 4096);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_DATA, 0, buf, sizeof buf), 0);
	cr_assert_eq(u->detail, 2 * 4096);
	/* misaligned */
	d.offset = 2 * 4096;
	d.raw_length = 100;
	memcpy(buf, &d, 8);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_DATA, 0, buf, 108), FLBOOT_E_ALIGN);
	cr_assert_eq(u->detail, 2 * 4096);
	flashsim_stats st = stats();
	cr_assert_leq(st.programs + st.erases, ops + 4, "no image data written (background erases only)");
}

Test(core, windowed_data_all_acked_in_order)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	uint8_t buf[8 + 4096];
	uint16_t seqs[FLBOOT_WINDOW];
	for (unsigned i = 0; i < FLBOOT_WINDOW; i++) {
		flboot_data_head d = { i * 4096, 4096 };
		memcpy(buf, &d, 8);
		memcpy(buf + 8, a7.payload + d.offset, 4096);
		seqs[i] = unit_send(u, FLBOOT_MSG_DATA, 0, buf, sizeof buf);
	}
	for (unsigned i = 0; i < FLBOOT_WINDOW; i++) {
		cr_assert_eq(unit_recv(u), 0);
		cr_assert_eq(u->resp_seq, seqs[i]);
		cr_assert_eq(u->detail, (i + 1) * 4096);
	}
}

Test(core, compressed_data)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	image s;
	image_make(&s, CM7, FLBOOT_VERSION(3, 0, 0), 100 * 1024 + 3, 9, 1); /* compressible */
	cr_assert_eq(unit_transfer(u, &s, 4096, 1), 0);
	flboot_end_resp e;
	memcpy(&e, u->body, sizeof e);
	cr_assert_eq(e.crc32, s.hdr.payload_crc32);
	/* a block that does not inflate to raw_length */
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	uint8_t buf[64] = { 0 };
	flboot_data_head d = { 0, 4096 };
	memcpy(buf, &d, 8);
	buf[8] = 0x03; /* an empty final fixed block: inflates to 0 bytes */
	buf[9] = 0x00;
	cr_assert_eq(unit_request(u, FLBOOT_MSG_DATA, FLBOOT_FLAG_COMPRESSED, buf, 10), FLBOOT_E_DECOMPRESS);
	cr_assert_eq(u->detail, 0);
	image_free(&s);
}

static void refused(image *im, int code, const char *needle)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	uint64_t ops = flashsim_ops(u->fs);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &im->hdr, 128), code, "reason: %s", reason());
	cr_assert(strstr(reason(), needle), "reason '%s' lacks '%s'", reason(), needle);
	cr_assert_eq(flashsim_ops(u->fs), ops, "refused before any flash operation");
}

Test(core, refuses_other_product)
{
	strcpy(a7.hdr.product, "other");
	image_seal(&a7);
	refused(&a7, FLBOOT_E_PRODUCT, "image for product 'other', this unit is 'demo'");
}

Test(core, refuses_other_hw_rev)
{
	strcpy(a7.hdr.hw_revs[0], "A");
	strcpy(a7.hdr.hw_revs[1], "C");
	image_seal(&a7);
	refused(&a7, FLBOOT_E_HW_REV, "this unit is 'B'");
}

Test(core, accepts_listed_hw_rev)
{
	strcpy(a7.hdr.hw_revs[0], "A");
	strcpy(a7.hdr.hw_revs[1], "B");
	image_seal(&a7);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
}

Test(core, refuses_newer_bootloader_requirement)
{
	a7.hdr.min_bootloader = FLBOOT_VERSION(1, 3, 0);
	image_seal(&a7);
	refused(&a7, FLBOOT_E_BL_VERSION, "needs bootloader 1.3.0, this unit has 1.2.0");
}

Test(core, refuses_too_big)
{
	a7.hdr.payload_size = 384 * 1024 - 0x400 + 32;
	image_seal(&a7);
	refused(&a7, FLBOOT_E_RANGE, "the cm7 slot holds 1 to 392192");
}

Test(core, refuses_too_big_cm4)
{
	a4.hdr.payload_size = 512 * 1024 - 0x400 + 1;
	image_seal(&a4);
	refused(&a4, FLBOOT_E_RANGE, "the cm4 slot holds 1 to 523264");
}

Test(core, refuses_bad_header_crc)
{
	a7.hdr.header_crc32 ^= 1;
	refused(&a7, FLBOOT_E_HEADER, "header CRC");
}

Test(core, refuses_wrong_load_address)
{
	image_link(&a7, A4);
	refused(&a7, FLBOOT_E_RANGE, "linked for 0x08100400");
}

Test(core, refuses_bootloader_sector)
{
	a7.hdr.load_address = FLBOOT_FLASH_BASE + 0x400;
	image_seal(&a7);
	refused(&a7, FLBOOT_E_PROTECTED, "linked for 0x08000400");
}

Test(core, refuses_wrong_core)
{
	a7.hdr.core = 3;
	image_seal(&a7);
	refused(&a7, FLBOOT_E_CORE, "image for core 3");
}

Test(core, activate_needs_staged_images)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0);
	cr_assert_eq(activate(3), FLBOOT_E_NOT_STAGED);
	cr_assert_eq(u->detail, 2);
	cr_assert(strstr(reason(), "cm4"));
}

Test(core, end_detects_corrupted_flash)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	/* header claims other contents than sent */
	a7.payload[5000] ^= 0x40;
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), FLBOOT_E_CRC, "%s", reason());
	a7.payload[5000] ^= 0x40;
	cr_assert_eq(activate(1), FLBOOT_E_NOT_STAGED);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0, "a fresh transfer works");
}

Test(core, end_before_all_data)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	send_blocks(&a7, 0, 1);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_END, 0, NULL, 0), FLBOOT_E_STATE);
	cr_assert_eq(u->detail, 4096);
}

Test(core, abort_forgets_the_staging)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	send_blocks(&a7, 0, 3);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ABORT, 0, NULL, 0), 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	flboot_begin_resp b;
	memcpy(&b, u->body, sizeof b);
	cr_assert_eq(b.resume_offset, 0);
}

Test(core, flash_failure_while_staging_leaves_the_unit_usable)
{
	/* landed defect: a flash error in a swap refused everything. Now a
	 * sector that will not erase fails BEGIN; the pair keeps running. */
	flboot_boot_target t;
	install_a();
	flashsim_set_protect(u->fs, 1u << 5); /* CM7 slot B, second sector */
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_lt(unit_update(u, &b7, &b4, &t), 0);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert(unit_runs(u, &t, &a7) && unit_runs(u, &t, &a4));
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
	flashsim_set_protect(u->fs, 0);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7));
}

Test(core, worn_out_staging_sector_fails_the_update_and_keeps_the_pair)
{
	/* Flash at the end of its life: an erase fails. The update must fail
	 * with a reason naming the erase, before anything of the new pair is
	 * active; the confirmed pair keeps booting; asking again fails the same
	 * way (no state the unit cannot leave); rollback needs no erase. */
	flboot_boot_target t;
	install_a();                           /* slot A sectors: 1 erase each */
	flashsim_set_endurance(u->fs, 1);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "slot B has cycles left: %s", reason());
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &b4));
	/* a new package stages into slot A again: its sectors are worn out */
	image c7, c4;
	image_make(&c7, CM7, FLBOOT_VERSION(3, 0, 0), 100 * 1024, 5, 0);
	image_make(&c4, CM4, FLBOOT_VERSION(3, 0, 0), 16 * 1024, 6, 0);
	memcpy(c7.hdr.set_id, "SETID003", 8);
	memcpy(c4.hdr.set_id, "SETID003", 8);
	image_seal(&c7);
	image_seal(&c4);
	for (int attempt = 0; attempt < 2; attempt++) {
		cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
		int rc = unit_update(u, &c7, &c4, &t);
		cr_assert_lt(rc, 0, "attempt %d: a worn-out sector must fail the update", attempt);
		cr_log_info("attempt %d: %s", attempt, reason());
		cr_assert(strstr(reason(), "will not erase") != NULL, "attempt %d: the reason names the erase: '%s'", attempt,
		          reason());
		cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP, "attempt %d", attempt);
		cr_assert(unit_runs(u, &t, &b7) && unit_runs(u, &t, &b4), "attempt %d: the confirmed pair runs", attempt);
		cr_assert_not(t.trial);
		cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
	}
	image_free(&c7);
	image_free(&c4);
}

Test(core, stay_flag_and_reboot_to_bootloader)
{
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	/* application agent asks for the bootloader */
	flboot_app_init(u->bl, &u->port);
	flboot_hello h = hello();
	cr_assert_eq(h.mode, FLBOOT_MODE_APPLICATION);
	cr_assert_eq(h.running_cm7, a7.hdr.version);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &b7.hdr, 128), FLBOOT_E_MODE);
	cr_assert(strstr(reason(), "application mode"));
	flboot_reboot_req r = { FLBOOT_REBOOT_BOOTLOADER };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, 1), 0);
	cr_assert(u->reset_requested);
	cr_assert(u->flags & FLBOOT_BOOTFLAG_STAY);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_not(u->flags & FLBOOT_BOOTFLAG_STAY, "flag cleared");
	cr_assert_eq(hello().mode, FLBOOT_MODE_BOOTLOADER);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
}

Test(core, app_agent_confirms_trial)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP, "%s", reason());
	flboot_app_init(u->bl, &u->port);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_TRIAL);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_not(t.trial);
}

Test(core, app_agent_sees_self_confirm)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP, "%s", reason());
	flboot_app_init(u->bl, &u->port);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_TRIAL);
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
	cr_assert_eq(hello().mode, FLBOOT_MODE_APPLICATION);
}

Test(core, unknown_type_and_bad_frames)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, 0x55, 0, NULL, 0), FLBOOT_E_UNKNOWN);
	/* a corrupted frame is dropped and counted, the next one answered */
	size_t at = u->in_len;
	unit_send(u, FLBOOT_MSG_HELLO, 0, NULL, 0);
	u->in[at + 3] ^= 0x10;
	cr_assert_eq(unit_request(u, FLBOOT_MSG_STATUS, 0, NULL, 0), 0);
	flboot_status s;
	memcpy(&s, u->body, sizeof s);
	cr_assert_eq(s.frames_dropped, 1);
	cr_assert_eq(s.mode, FLBOOT_MODE_BOOTLOADER);
}

Test(core, log_compaction_keeps_the_staging)
{
	flboot_boot_target t;
	u->blocking_erase = 1; /* erases only when a sector is needed */
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	u->flags = FLBOOT_BOOTFLAG_STAY;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &b7.hdr, 128), 0);
	send_blocks(&b7, 0, 10);
	/* fill the log sector, then keep going: it is compacted */
	flboot_store *s = &u->bl->store;
	while (s->log_pos + 18 < FLBOOT_LOG_WORDS)
		cr_assert_eq(flboot__log_append(s, FLBOOT_L_NOP, CM7, 0, 0), 0);
	uint64_t e0 = stats().erases;
	send_blocks(&b7, 10 * 4096, 20);
	cr_assert_eq(stats().erases - e0, 1, "the log sector, once (%llu)", (unsigned long long)(stats().erases - e0));
	cr_assert_lt(s->log_pos, 32, "compacted");
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	u->flags = FLBOOT_BOOTFLAG_STAY;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &b7.hdr, 128), 0);
	flboot_begin_resp b;
	memcpy(&b, u->body, sizeof b);
	cr_assert_geq(b.resume_offset, 28 * 4096, "the staging survived the compaction");
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7));
}

Test(core, begin_refused_during_trial)
{
	flboot_boot_target t;
	trial_b(&t);
	uint64_t ops = flashsim_ops(u->fs);
	image_free(&a7);
	image_make(&a7, CM7, FLBOOT_VERSION(4, 0, 0), 1000, 41, 0);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), FLBOOT_E_STATE);
	cr_assert(strstr(reason(), "trial"));
	cr_assert_eq(activate(1), FLBOOT_E_STATE);
	cr_assert_eq(flashsim_ops(u->fs), ops);
}

Test(core, update_after_rollback)
{
	flboot_boot_target t;
	trial_b(&t);
	for (unsigned i = 0; i < FLBOOT_TRIAL_MAX_BOOTS; i++)
		unit_boot(u, &t);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_ROLLED_BACK);
	cr_assert_eq(hello().stage_addr[0], B7);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP, "%s", reason());
	cr_assert(unit_runs(u, &t, &b7) && t.trial);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
}
