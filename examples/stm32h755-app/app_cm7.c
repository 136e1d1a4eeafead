/*
 * app_cm7.c - minimal CM7 application for the primary slot: blinks LD1
 * (PB0), serves the flasher agent on USB CDC, confirms its trial boot after
 * one second of healthy running. The clocks are the bootloader's (400 MHz).
 */
#include <stdbool.h>

#include "flasher_app.h"
#include "h7.h"
#include "regs.h"

int main(void);

int main(void)
{
	h7_systick_init();
	__asm__ volatile("cpsie i" ::: "memory");
	RCC_C1_AHB4ENR |= RCC_AHB4_GPIOB;
	(void)RCC_C1_AHB4ENR;
	GPIO_MODER(GPIOB) = (GPIO_MODER(GPIOB) & ~3u) | 1u; /* PB0 output */

	flasher_app_start();
	bool confirmed = false, led = false;
	uint32_t last = h7_millis(), start = last;
	for (;;) {
		flasher_app_poll();
		uint32_t now = h7_millis();
		if (!confirmed && now - start > 1000u) {
			/* A real application checks itself here first. */
			confirmed = flasher_app_confirm() == 0;
		}
		if (now - last >= 250u) {
			last = now;
			led = !led;
			GPIO_BSRR(GPIOB) = led ? 1u : (1u << 16);
		}
	}
}
