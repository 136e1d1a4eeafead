/*
 * system.c - time, identity, reset, boot flags, entry pin, watchdog, and
 * starting the applications on both cores.
 */
#include <string.h>

#include "flboot/layout.h"
#include "h7.h"
#include "regs.h"

/* In DTCM: the flash driver's ITCM wait loops read it (h7_io_ms). */
volatile uint32_t h7_ticks_ms;

RAMFUNC void h7_systick_irq(void);
RAMFUNC void h7_systick_irq(void)
{
	h7_ticks_ms++;
}

void h7_systick_init(void)
{
	SYST_RVR = H7_SYSCLK_HZ / 1000u - 1u;
	SYST_CVR = 0;
	SYST_CSR = 7u; /* CPU clock, interrupt, enable */
}

uint32_t h7_millis(void)
{
	return h7_ticks_ms;
}

void h7_uid(uint8_t out[FLBOOT_UID_SIZE])
{
	for (uint32_t i = 0; i < 3u; i++) {
		uint32_t w = REG32(UID_BASE + 4u * i);
		for (uint32_t k = 0; k < 4u; k++)
			out[4u * i + k] = (uint8_t)(w >> (8u * k));
	}
}

void h7_reset(void)
{
	dsb();
	SCB_AIRCR = SCB_AIRCR_SYSRESETREQ;
	dsb();
	for (;;)
		;
}

/* Boot flags live in RTC backup register 0 (kept over a system reset, lost
 * on a power cut unless VBAT is fed: the flag is a request, never state the
 * update depends on). Upper half a magic so garbage after power-up reads 0. */
#define BKP_MAGIC 0xF1B0u

void h7_backup_init(void)
{
	RCC_C1_APB4ENR |= RCC_APB4_RTCAPB;
	(void)RCC_C1_APB4ENR;
	PWR_CR1 |= PWR_CR1_DBP;
	/* Bounded: without DBP the flag reads 0 and writes are ignored, which
	 * only costs the STAY request. */
	(void)h7_poll(&PWR_CR1, PWR_CR1_DBP, PWR_CR1_DBP);
}

uint32_t h7_boot_flags_get(void)
{
	uint32_t v = RTC_BKP0R;
	return (v >> 16) == BKP_MAGIC ? (v & 0xFFFFu) : 0u;
}

void h7_boot_flags_set(uint32_t flags)
{
	RTC_BKP0R = (BKP_MAGIC << 16) | (flags & 0xFFFFu);
}

bool h7_enter_pin(void)
{
	RCC_C1_AHB4ENR |= 1u << H7_BUTTON_PORT;
	(void)RCC_C1_AHB4ENR;
	GPIO_MODER(H7_BUTTON_PORT) &= ~(3u << (2u * H7_BUTTON_PIN)); /* input */
	for (volatile int i = 0; i < 100; i++)
		;
	return (GPIO_IDR(H7_BUTTON_PORT) >> H7_BUTTON_PIN) & 1u;
}

/* IWDG1 on LSI (32 kHz), prescaler /256: 125 Hz, up to 32.7 s. Once
 * started it cannot be stopped: the application must confirm, or keep
 * kicking it, or the unit resets and the bootloader counts a failed trial. */
static bool wdg_running;

void h7_watchdog_start(uint32_t timeout_ms)
{
	uint32_t reload = timeout_ms / 8u;
	if (reload > 0xFFFu)
		reload = 0xFFFu;
	if (reload == 0)
		reload = 1;
	IWDG_KR = IWDG_KEY_START;
	IWDG_KR = IWDG_KEY_ACCESS;
	IWDG_PR = 6u; /* /256 */
	IWDG_RLR = reload;
	/* PVU/RVU/WVU clear within a few LSI periods; bounded, the IWDG runs
	 * with the values it has either way. */
	(void)h7_poll(&IWDG_SR, 7u, 0u);
	IWDG_KR = IWDG_KEY_REFRESH;
	wdg_running = true;
}

void h7_watchdog_kick(void)
{
	IWDG_KR = IWDG_KEY_REFRESH;
}

bool h7_watchdog_running(void)
{
	return wdg_running;
}

void h7_cm4_mailbox_clear(void)
{
	volatile uint32_t *mb = (volatile uint32_t *)H7_CM4_MAILBOX;
	mb[0] = 0;
	mb[1] = 0;
	mb[2] = 0;
	dsb();
}

/* Start the CM4 on its verified image (the payload in its active slot):
 * its boot address (BOOT_CM4_ADD0 = 0x0800) points at this bootloader's
 * vector table, whose reset handler, on the CM4, waits for and consumes the
 * entry left in the SRAM4 mailbox (startup.c). A 64 KiB-aligned boot
 * address could not point at the image payload (slot + 0x400) directly.
 * Provisioned (BCM4 = 0) the CM4 is held at reset and BOOT_C2 releases it;
 * with BCM4 = 1 it is already waiting in WFE and SEV wakes it. */
static void start_cm4(uint32_t entry)
{
	volatile uint32_t *mb = (volatile uint32_t *)H7_CM4_MAILBOX;
	mb[1] = entry;
	mb[2] = ~entry;
	mb[0] = H7_CM4_MAILBOX_MAGIC;
	dsb();
	RCC_C1_APB4ENR |= RCC_APB4_SYSCFG;
	(void)RCC_C1_APB4ENR;
	if (SYSCFG_UR1 & SYSCFG_UR1_BCM4)
		sev();
	else
		RCC_GCR |= RCC_GCR_BOOT_C2;
}

void h7_start_app(const flboot_boot_target *t)
{
	if (t->trial && !wdg_running)
		h7_watchdog_start(FLBOOT_TRIAL_WATCHDOG_MS);
	if (t->cm4_entry)
		start_cm4(t->cm4_entry);

	/* Leave the CM7 as after reset, apart from the clocks: no interrupt
	 * enabled or pending, SysTick off, USB reset (the app enumerates anew). */
	__asm__ volatile("cpsid i" ::: "memory");
	usb_cdc_deinit();
	SYST_CSR = 0;
	for (uint32_t i = 0; i < 8u; i++) {
		NVIC_ICER(i) = 0xFFFFFFFFu;
		NVIC_ICPR(i) = 0xFFFFFFFFu;
	}
	SCB_ICSR = 1u << 25; /* PENDSTCLR */
	/* The app's code was just written through the data side: drop any I-cache
	 * line of it; the D-cache is off in the bootloader. */
	dsb();
	isb();
	SCB_ICIALLU = 0;
	dsb();
	isb();

	uint32_t vtor = t->cm7_entry;
	uint32_t sp = *(volatile uint32_t *)vtor;
	uint32_t pc = *(volatile uint32_t *)(vtor + 4u);
	SCB_VTOR = vtor;
	dsb();
	isb();
	__asm__ volatile("msr msp, %0\n\t"
	                 "cpsie i\n\t"
	                 "bx %1\n\t"
	                 :
	                 : "r"(sp), "r"(pc)
	                 : "memory");
	for (;;)
		;
}
