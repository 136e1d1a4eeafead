/* port.c - the flboot_port of the STM32H755 (CM7). */
#include <string.h>

#include "h7.h"
#include "usb_desc.h"

static int p_flash_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
	(void)ctx;
	return h7_flash_read(addr, buf, len);
}

static int p_flash_erase(void *ctx, uint32_t sector)
{
	(void)ctx;
	return h7_flash_erase(sector);
}

/* The H7 runs one operation per bank at once, so the core can erase the
 * staging sectors of both banks at the same time (PREPARE). */
static int p_flash_erase_start(void *ctx, uint32_t sector)
{
	(void)ctx;
	return h7_flash_erase_start(sector);
}

static int p_flash_wait(void *ctx, uint32_t bank, bool block)
{
	(void)ctx;
	return h7_flash_wait(bank, block);
}

static int p_flash_program(void *ctx, uint32_t addr, const uint8_t word[32])
{
	(void)ctx;
	return h7_flash_program(addr, word);
}

static uint32_t p_transport_read(void *ctx, uint8_t *buf, uint32_t cap)
{
	(void)ctx;
	return usb_cdc_read(buf, cap);
}

static void p_transport_write(void *ctx, const uint8_t *buf, uint32_t len)
{
	(void)ctx;
	usb_cdc_write(buf, len);
}

static uint32_t p_millis(void *ctx)
{
	(void)ctx;
	return h7_millis();
}

static void p_reset(void *ctx)
{
	(void)ctx;
	/* Let the answer leave before the link drops. */
	uint32_t t0 = h7_millis();
	while (h7_millis() - t0 < 20u)
		usb_cdc_poll();
	h7_reset();
}

static uint32_t p_boot_flags_get(void *ctx)
{
	(void)ctx;
	return h7_boot_flags_get();
}

static void p_boot_flags_set(void *ctx, uint32_t flags)
{
	(void)ctx;
	h7_boot_flags_set(flags);
}

static bool p_enter_pin(void *ctx)
{
	(void)ctx;
	return h7_enter_pin();
}

static void p_watchdog_start(void *ctx, uint32_t timeout_ms)
{
	(void)ctx;
	h7_watchdog_start(timeout_ms);
}

static void p_watchdog_kick(void *ctx)
{
	(void)ctx;
	h7_watchdog_kick();
}

#ifndef H7_PRODUCT
#define H7_PRODUCT "demo"
#endif
#ifndef H7_HW_REV
#define H7_HW_REV "A"
#endif

static void p_identity(void *ctx, flboot_identity *out)
{
	(void)ctx;
	memset(out, 0, sizeof(*out));
	h7_uid(out->uid);
	usb_serial_from_uid(out->uid, out->serial);
	memcpy(out->product, H7_PRODUCT, sizeof(H7_PRODUCT));
	memcpy(out->hw_rev, H7_HW_REV, sizeof(H7_HW_REV));
	out->bootloader_version = FLBOOT_VERSION(1, 0, 0);
}

const flboot_port h7_port = {
	.ctx = 0,
	.flash_read = p_flash_read,
	.flash_erase = p_flash_erase,
	.flash_program = p_flash_program,
	.flash_erase_start = p_flash_erase_start,
	.flash_wait = p_flash_wait,
	.transport_read = p_transport_read,
	.transport_write = p_transport_write,
	.millis = p_millis,
	.reset = p_reset,
	.boot_flags_get = p_boot_flags_get,
	.boot_flags_set = p_boot_flags_set,
	.enter_pin = p_enter_pin,
	.watchdog_start = p_watchdog_start,
	.watchdog_kick = p_watchdog_kick,
	.identity = p_identity,
};
