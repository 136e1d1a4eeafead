/*
 * app_cm4.c - minimal CM4 application for the CM4 primary slot: blinks LD2
 * (PE1). Started by the CM7 bootloader after it verified this image
 * (RCC_GCR.BOOT_C2, entry handed over in the SRAM4 mailbox).
 */
#include <stdint.h>

#define REG32(a) (*(volatile uint32_t *)(uintptr_t)(a))
#define RCC_C2_AHB4ENR REG32(0x58024400u + 0x1A0u)
#define GPIOE_MODER REG32(0x58021000u)
#define GPIOE_BSRR REG32(0x58021018u)
#define SCB_CPACR REG32(0xE000ED88u)

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void Reset_Handler(void);
void Default_Handler(void);
int main(void);

void Default_Handler(void)
{
	for (;;)
		;
}

int main(void)
{
	RCC_C2_AHB4ENR |= 1u << 4; /* GPIOE */
	(void)RCC_C2_AHB4ENR;
	GPIOE_MODER = (GPIOE_MODER & ~(3u << 2)) | (1u << 2);
	for (uint32_t n = 0;; n++) {
		for (volatile uint32_t i = 0; i < 2000000u; i++)
			;
		GPIOE_BSRR = (n & 1u) ? (1u << 1) : (1u << 17);
	}
}

void Reset_Handler(void)
{
	uint32_t *src = &_sidata;
	for (uint32_t *dst = &_sdata; dst < &_edata;)
		*dst++ = *src++;
	for (uint32_t *dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	SCB_CPACR |= 0xFu << 20;
	__asm__ volatile("dsb\n\tisb" ::: "memory");
	main();
	for (;;)
		;
}

#define V(f) ((uint32_t)(uintptr_t)(f))
__attribute__((section(".isr_vector"), used)) const uint32_t app_cm4_vectors[16] = {
	V(&_estack), V(Reset_Handler), V(Default_Handler), V(Default_Handler),
	V(Default_Handler), V(Default_Handler), V(Default_Handler), 0, 0, 0, 0,
	V(Default_Handler), V(Default_Handler), 0, V(Default_Handler), V(Default_Handler),
};
