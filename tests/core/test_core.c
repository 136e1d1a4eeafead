/*
 * test_core.c - the bootloader core through its real protocol: loopback
 * transport, flashsim flash, reset = zeroed struct + init + boot.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "../../firmware/core/src/core.h"
#include "harness.h"

#define CM7 FLBOOT_CORE_CM7
#define CM4 FLBOOT_CORE_CM4

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

/* Install a confirmed pair a7+a4. */
static void install_a(void)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
}

TestSuite(core, .init = setup, .fini = teardown, .timeout = 60);

Test(core, hello_fields_on_empty_unit)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	flboot_hello h = hello();
	cr_assert_eq(u->resp_type, FLBOOT_MSG_HELLO | FLBOOT_MSG_RESPONSE);
	cr_assert_eq(u->resp_seq, u->seq);
	cr_assert_eq(h.proto_version, FLBOOT_PROTO_VERSION);
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
	cr_assert_eq(h.features, FLBOOT_FEAT_DEFLATE | FLBOOT_FEAT_RESUME);
	cr_assert_eq(h.slots[0].core, CM7);
	cr_assert_eq(h.slots[0].role, FLBOOT_ROLE_PRIMARY);
	cr_assert_eq(h.slots[0].address, 0x08020000u);
	cr_assert_eq(h.slots[1].address, 0x08080000u);
	cr_assert_eq(h.slots[2].address, 0x08100000u);
	cr_assert_eq(h.slots[3].address, 0x08160000u);
	cr_assert_eq(h.slots[3].role, FLBOOT_ROLE_SECONDARY);
	cr_assert_eq(h.slots[0].size, FLBOOT_SLOT_SIZE);
	cr_assert_eq(h.slots[0].state, FLBOOT_SLOT_EMPTY);
	cr_assert_eq(flashsim_ops(u->fs), 0, "HELLO on an empty unit touches no flash");
}

Test(core, full_update_boots_new_pair_on_trial)
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
	cr_assert_eq(h.slots[1].state, FLBOOT_SLOT_STAGED);
	cr_assert_eq(h.slots[3].state, FLBOOT_SLOT_STAGED);
	cr_assert_eq(h.slots[1].version, a7.hdr.version);

	flboot_activate_req a = { 3 };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ACTIVATE, 0, &a, 1), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_PENDING);
	flboot_reboot_req r = { FLBOOT_REBOOT_NORMAL };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, 1), 0);
	cr_assert(u->reset_requested);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_HELLO, 0, NULL, 0), NO_RESPONSE, "nothing after a reset");

	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert(t.trial);
	cr_assert_eq(t.cm7_entry, FLBOOT_CM7_APP_ADDR);
	cr_assert_eq(t.cm4_entry, FLBOOT_CM4_APP_ADDR);
	cr_assert_eq(t.cm7_version, a7.hdr.version);
	cr_assert_eq(t.cm4_version, a4.hdr.version);
	cr_assert(unit_primary_is(u, &a7));
	cr_assert(unit_primary_is(u, &a4));
	h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_TRIAL);
	cr_assert_eq(h.trial_boots, 1);
	cr_assert_eq(h.running_cm7, a7.hdr.version);
	cr_assert_eq(h.slots[0].state, FLBOOT_SLOT_ACTIVE);
	cr_assert_eq(h.slots[0].payload_crc32, a7.hdr.payload_crc32);
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
	cr_assert(unit_primary_is(u, &a7));
}

Test(core, confirm_command_in_bootloader)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_CONFIRM, 0, NULL, 0), 0);
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_CONFIRMED);
}

Test(core, unconfirmed_trial_reverts_to_old_pair)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP);
	cr_assert(t.trial);
	cr_assert_eq(t.cm7_version, b7.hdr.version);
	for (unsigned i = 1; i < FLBOOT_TRIAL_MAX_BOOTS; i++) {
		cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
		cr_assert(t.trial);
		cr_assert_eq(t.cm7_version, b7.hdr.version);
	}
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_not(t.trial);
	cr_assert_eq(t.cm7_version, a7.hdr.version);
	cr_assert_eq(t.cm4_version, a4.hdr.version);
	cr_assert(unit_primary_is(u, &a7));
	cr_assert(unit_primary_is(u, &a4));
	flboot_hello h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_ROLLED_BACK);
	cr_assert_eq(h.last_boot_error, FLBOOT_E_TRIAL);
}

Test(core, rollback_command_restores_previous_pair)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), FLBOOT_E_NO_ROLLBACK, "first install");
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	flboot_hello h = hello();
	cr_assert_eq(h.slots[1].state, FLBOOT_SLOT_PREVIOUS);
	cr_assert_eq(h.slots[1].version, a7.hdr.version);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), 0);
	flboot_reboot_req r = { 0 };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_REBOOT, 0, &r, 1), 0);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(t.cm7_version, a7.hdr.version);
	cr_assert(unit_primary_is(u, &a7));
	cr_assert(unit_primary_is(u, &a4));
	cr_assert_eq(hello().boot_state, FLBOOT_STATE_ROLLED_BACK);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ROLLBACK, 0, NULL, 0), FLBOOT_E_NO_ROLLBACK);
}

Test(core, cm7_only_update_keeps_cm4)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	cr_assert_eq(unit_update(u, &b7, NULL, &t), FLBOOT_BOOT_APP);
	cr_assert_eq(t.cm7_version, b7.hdr.version);
	cr_assert_eq(t.cm4_version, a4.hdr.version);
	cr_assert(unit_primary_is(u, &b7));
	cr_assert(unit_primary_is(u, &a4));
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
	cr_assert_eq(b.resume_offset, 33 * 4096);
	cr_assert_eq(unit_transfer(u, &a7, 4096, 0), 0, "completes from the resume point");
}

Test(core, resume_after_torn_word)
{
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &a7.hdr, 128), 0);
	send_blocks(&a7, 0, 32);
	/* tear the 50th word programmed from here */
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
	/* the torn word's sector (slot sector 1) is erased again */
	cr_assert_eq(b.resume_offset, FLBOOT_SECTOR_SIZE - FLBOOT_IMAGE_HEADER_AREA);
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
	cr_assert_eq(flashsim_ops(u->fs), ops);
	/* misaligned */
	d.offset = 2 * 4096;
	d.raw_length = 100;
	memcpy(buf, &d, 8);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_DATA, 0, buf, 108), FLBOOT_E_ALIGN);
	cr_assert_eq(u->detail, 2 * 4096);
	cr_assert_eq(flashsim_ops(u->fs), ops);
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
	a7.hdr.payload_size = FLBOOT_SLOT_SIZE - FLBOOT_IMAGE_HEADER_AREA + 32;
	image_seal(&a7);
	refused(&a7, FLBOOT_E_RANGE, "slot holds 1 to 392192");
}

Test(core, refuses_bad_header_crc)
{
	a7.hdr.header_crc32 ^= 1;
	refused(&a7, FLBOOT_E_HEADER, "header CRC");
}

Test(core, refuses_wrong_load_address)
{
	a7.hdr.load_address = FLBOOT_CM4_APP_ADDR;
	image_seal(&a7);
	refused(&a7, FLBOOT_E_RANGE, "image loads at 0x08100400");
}

Test(core, refuses_bootloader_sector)
{
	a7.hdr.load_address = FLBOOT_FLASH_BASE + 0x400;
	image_seal(&a7);
	refused(&a7, FLBOOT_E_PROTECTED, "bootloader sector");
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
	flboot_activate_req a = { 3 };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ACTIVATE, 0, &a, 1), FLBOOT_E_NOT_STAGED);
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
	flboot_activate_req a = { 1 };
	cr_assert_eq(unit_request(u, FLBOOT_MSG_ACTIVATE, 0, &a, 1), FLBOOT_E_NOT_STAGED);
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
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP);
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
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP);
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

Test(core, journal_compaction_keeps_state)
{
	flboot_boot_target t;
	install_a();
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_APP);
	/* fill the active sector with padding records, then keep updating */
	flboot_store *s = &u->bl->store;
	uint8_t first = s->sector;
	while (s->pos + 2 < FLBOOT_SECTOR_SIZE / 32)
		cr_assert_eq(flboot__journal_append(s, FLBOOT_J_NOP, NULL, 0), 0);
	cr_assert_eq(unit_update(u, &b7, &b4, &t), FLBOOT_BOOT_APP);
	cr_assert_neq(u->bl->store.sector, first, "moved to the other sector");
	cr_assert(t.trial);
	cr_assert_eq(t.cm7_version, b7.hdr.version);
	cr_assert_eq(flboot_app_confirm(&u->port), 0);
	cr_assert_eq(unit_boot(u, &t), FLBOOT_BOOT_APP);
	cr_assert_not(t.trial);
	flboot_hello h = hello();
	cr_assert_eq(h.boot_state, FLBOOT_STATE_CONFIRMED);
	cr_assert_eq(h.slots[1].state, FLBOOT_SLOT_PREVIOUS);
}

Test(core, begin_refused_during_trial)
{
	flboot_boot_target t;
	cr_assert_eq(unit_boot(u, NULL), FLBOOT_BOOT_STAY);
	cr_assert_eq(unit_update(u, &a7, &a4, &t), FLBOOT_BOOT_APP);
	uint64_t ops = flashsim_ops(u->fs);
	cr_assert_eq(unit_request(u, FLBOOT_MSG_BEGIN, 0, &b7.hdr, 128), FLBOOT_E_STATE);
	cr_assert(strstr(reason(), "trial"));
	cr_assert_eq(flashsim_ops(u->fs), ops);
}
