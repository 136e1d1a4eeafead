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
#define RAMFUNC __attribute__((section(".ramfunc"), noinline, long_call))

/* Mailbox in SRAM4 (D3, seen by both cores): the CM7 bootloader writes the
 * verified CM4 entry here before releasing the CM4 (RCC_GCR.BOOT_C2). */
#define H7_CM4_MAILBOX 0x3800FFE0u
#define H7_CM4_MAILBOX_MAGIC 0x4B4F344Du /* "M4OK" */

/* Board (NUCLEO-H755ZI-Q): user button PC13 (high when pressed). */
#define H7_BUTTON_PORT 2u
#define H7_BUTTON_PIN 13u

#define H7_SYSCLK_HZ 400000000u

/* clock.c */
void h7_clock_init(void);
void h7_usb_clock_init(void);

/* system.c */
void h7_systick_init(void);
uint32_t h7_millis(void);
void h7_uid(uint8_t out[FLBOOT_UID_SIZE]);
__attribute__((noreturn)) void h7_reset(void);
void h7_backup_init(void);
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
int h7_flash_program(uint32_t addr, const uint8_t word[32]);
/* Bus-fault-safe 32-bit read: 0 and *out, or FLBOOT_E_ECC. */
int h7_flash_probe32(uint32_t addr, uint32_t *out);
void h7_busfault(uint32_t *frame);

/* usb_otg.c: CDC-ACM device on USB2 OTG FS (PA11/PA12) */
void usb_cdc_init(const uint8_t uid[FLBOOT_UID_SIZE]);
void usb_cdc_deinit(void);
void usb_cdc_poll(void);
uint32_t usb_cdc_read(uint8_t *buf, uint32_t cap);
void usb_cdc_write(const uint8_t *buf, uint32_t len);
void usb_otg_irq(void);

/* port.c: the flboot_port of this chip */
extern const flboot_port h7_port;

#endif
