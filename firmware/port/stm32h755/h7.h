/*
 * h7.h - the STM32H755 port's internal interface (bootloader and the
 * application-side library of examples/stm32h755-app share it).
 */
#ifndef H7_H
#define H7_H

#include <stdbool.h>
#include <stdint.h>

#include "flboot/flboot.h"

/* Code that must keep running while bank 1 is being erased or programmed
 * (a read of a busy bank stalls the bus until the operation ends): the
 * flash driver's wait loops and the USB/SysTick interrupt handlers. The
 * startup code copies .ramfunc from flash into ITCM. long_call: ITCM is
 * out of BL range of flash. */
#ifdef H7_HOST_MODEL
#define RAMFUNC
#else
#define RAMFUNC __attribute__((section(".ramfunc"), noinline, long_call))
#endif

/* Mailbox in SRAM4 (D3, seen by both cores): the CM7 bootloader writes the
 * verified CM4 entry here before releasing the CM4 (RCC_GCR.BOOT_C2, or
 * SEV when BCM4 = 1 started it at reset). SRAM4 keeps its contents over a
 * system reset, so the CM7 clears the mailbox first thing on every reset
 * and the CM4 consumes (clears) it before jumping: an entry is used at most
 * once, in the boot that verified it. */
#define H7_CM4_MAILBOX 0x3800FFE0u
#define H7_CM4_MAILBOX_MAGIC 0x4B4F344Du /* "M4OK" */

/* Board (NUCLEO-H755ZI-Q): user button PC13 (high when pressed). */
#define H7_BUTTON_PORT 2u
#define H7_BUTTON_PIN 13u

#define H7_SYSCLK_HZ 400000000u

/* Bounds of the port's waits. Before SysTick runs (clocks, supply) a wait
 * counts polls: H7_POLL_LIMIT register reads take >= 5 ms at any clock this
 * port runs (each read of a peripheral register costs several bus cycles),
 * far longer than the oscillators, PLL and regulators need (< 1 ms in
 * DS12919). Later waits count SysTick milliseconds. Always inlined: the
 * interrupt and flash paths in ITCM use it and must not call into flash. */
#define H7_POLL_LIMIT 2000000u
#define H7_FLASH_ERASE_MS 5000u  /* one 128 KiB sector; DS12919 max ~4 s */
#define H7_FLASH_PROGRAM_MS 5u   /* one 256-bit flash word; max ~0.1 ms */
#define H7_USB_WRITE_STALL_MS 500u /* host stopped reading: drop the rest */

/** Poll until (*reg & mask) == want, at most H7_POLL_LIMIT reads. Returns
 *  true when reached. */
__attribute__((always_inline)) static inline bool h7_poll(volatile uint32_t *reg, uint32_t mask,
                                                        uint32_t want)
{
	for (uint32_t i = 0; i < H7_POLL_LIMIT; i++)
		if ((*reg & mask) == want)
			return true;
	return false;
}

/* clock.c: false when an oscillator, the PLL or the supply did not get
 * ready within its bound */
bool h7_clock_init(void);
bool h7_usb_clock_init(void);

/* system.c */
void h7_systick_init(void);
uint32_t h7_millis(void);
void h7_uid(uint8_t out[FLBOOT_UID_SIZE]);
__attribute__((noreturn)) void h7_reset(void);
void h7_backup_init(void);
void h7_cm4_mailbox_clear(void);
uint32_t h7_boot_flags_get(void);
void h7_boot_flags_set(uint32_t flags);
bool h7_enter_pin(void);
void h7_watchdog_start(uint32_t timeout_ms);
void h7_watchdog_kick(void);
bool h7_watchdog_running(void);
__attribute__((noreturn)) void h7_start_app(const flboot_boot_target *t);

/* flash.c */
int h7_flash_read(uint32_t addr, void *buf, uint32_t len);
int h7_flash_erase(uint32_t sector);
/* Start erasing a sector and return; one operation per bank at once, so the
 * two banks (sectors 0-7, 8-15) erase in parallel. */
int h7_flash_erase_start(uint32_t sector);
/* Bank 0/1: 1 while busy (only when !block), else the result of the erase
 * started last on the bank (0 or FLBOOT_E_FLASH; 0 if none). */
int h7_flash_wait(uint32_t bank, bool block);
int h7_flash_program(uint32_t addr, const uint8_t word[32]);
/* Bus-fault-safe 32-bit read: 0 and *out, or FLBOOT_E_ECC. */
int h7_flash_probe32(uint32_t addr, uint32_t *out);
void h7_busfault(uint32_t *frame);

/* usb_otg.c: CDC-ACM device on USB2 OTG FS (PA11/PA12) */
bool usb_cdc_init(const uint8_t uid[FLBOOT_UID_SIZE]);
void usb_cdc_deinit(void);
void usb_cdc_poll(void);
uint32_t usb_cdc_read(uint8_t *buf, uint32_t cap);
void usb_cdc_write(const uint8_t *buf, uint32_t len);
void usb_otg_irq(void);

/* port.c: the flboot_port of this chip */
extern const flboot_port h7_port;

#endif
