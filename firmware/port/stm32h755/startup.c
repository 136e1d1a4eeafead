/*
 * startup.c - vector table and reset path of the CM7 (bootloader and, built
 * with H7_APP, the example application).
 *
 * The bootloader's reset handler is also the CM4's: the CM4 boot address
 * (option byte BOOT_CM4_ADD0) points at this sector, because boot addresses
 * have 64 KiB granularity and the CM4 image's vector table sits 0x400 into
 * its slot. On the CM4 the handler jumps to the entry the CM7 left in the
 * SRAM4 mailbox, without touching the stack (the initial SP is in the CM7's
 * DTCM, which the CM4 cannot reach), or sleeps in WFE until there is one.
 * The handler clears the mailbox's magic before jumping (an entry is used
 * once) and the CM7 clears the whole mailbox on every reset (main.c), since
 * SRAM4 survives a system reset.
 */
#include <stdint.h>

#include "h7.h"
#include "regs.h"

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern uint32_t _siramfunc, _sramfunc, _eramfunc;
extern uint32_t _vtable_ram[];

int main(void);
void h7_cm7_start(void);
void Reset_Handler(void);
void Default_Handler(void);
void HardFault_Handler(void);
void BusFault_Handler(void);
void SysTick_Handler(void);
void OTG_FS_IRQHandler(void);

#define N_IRQS 150u
#define N_VECTORS (16u + N_IRQS)

void Default_Handler(void)
{
	h7_reset();
}

void HardFault_Handler(void)
{
	h7_reset();
}

/* Hand the stacked frame to the flash driver (ECC errors on reads). */
__attribute__((naked)) void BusFault_Handler(void)
{
	__asm__ volatile(".syntax unified\n\t"
	                 "tst lr, #4\n\t"
	                 "ite eq\n\t"
	                 "mrseq r0, msp\n\t"
	                 "mrsne r0, psp\n\t"
	                 "b h7_busfault\n\t");
}

RAMFUNC void SysTick_Handler(void)
{
	void h7_systick_irq(void);
	h7_systick_irq();
}

RAMFUNC void OTG_FS_IRQHandler(void)
{
	usb_otg_irq();
}

#ifndef H7_APP
/* Both cores enter here; see the file comment. */
__asm__(".syntax unified\n"
        ".section .text.Reset_Handler,\"ax\",%progbits\n"
        ".global Reset_Handler\n"
        ".type Reset_Handler, %function\n"
        ".thumb_func\n"
        "Reset_Handler:\n"
        "  ldr r0, =0xE000ED00\n"      /* SCB_CPUID */
        "  ldr r0, [r0]\n"
        "  ubfx r0, r0, #4, #12\n"
        "  movw r1, #0xC24\n"          /* Cortex-M4 */
        "  cmp r0, r1\n"
        "  beq 1f\n"
        "  ldr r0, =_estack\n"
        "  mov sp, r0\n"
        "  b h7_cm7_start\n"
        "1:\n"
        "  ldr r0, =0x3800FFE0\n"      /* H7_CM4_MAILBOX */
        "  ldr r1, [r0]\n"
        "  ldr r2, =0x4B4F344D\n"      /* H7_CM4_MAILBOX_MAGIC */
        "  cmp r1, r2\n"
        "  bne 2f\n"
        "  ldr r1, [r0, #4]\n"
        "  ldr r3, [r0, #8]\n"
        "  mvns r3, r3\n"
        "  cmp r1, r3\n"
        "  bne 2f\n"
        "  movs r2, #0\n"              /* consume: used once, this boot */
        "  str r2, [r0]\n"
        "  dsb\n"
        "  ldr r2, =0xE000ED08\n"      /* the CM4's own VTOR */
        "  str r1, [r2]\n"
        "  ldr r2, [r1]\n"
        "  msr msp, r2\n"
        "  ldr r2, [r1, #4]\n"
        "  bx r2\n"
        "2:\n"
        "  wfe\n"                     /* the CM7 writes the mailbox, then SEV */
        "  b 1b\n"
        ".ltorg\n"
        ".size Reset_Handler, .-Reset_Handler\n"
        ".text\n");
_Static_assert(H7_CM4_MAILBOX == 0x3800FFE0u && H7_CM4_MAILBOX_MAGIC == 0x4B4F344Du,
               "Reset_Handler's literals must match h7.h");
#else
void Reset_Handler(void)
{
	h7_cm7_start();
}
#endif

void h7_cm7_start(void)
{
	uint32_t *src = &_sidata;
	for (uint32_t *dst = &_sdata; dst < &_edata;)
		*dst++ = *src++;
	for (uint32_t *dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	src = &_siramfunc;
	for (uint32_t *dst = &_sramfunc; dst < &_eramfunc;)
		*dst++ = *src++;

	/* Vectors in DTCM: fetching them from bank 1 would stall while bank 1
	 * is erased. */
	extern const uint32_t h7_vectors[N_VECTORS];
	for (uint32_t i = 0; i < N_VECTORS; i++)
		_vtable_ram[i] = h7_vectors[i];
	SCB_VTOR = (uint32_t)(uintptr_t)_vtable_ram;

	SCB_CPACR |= 0xFu << 20; /* FPU: hard-float ABI */
	SCB_SHCSR |= SCB_SHCSR_BUSFAULTENA;
	dsb();
	isb();
	SCB_ICIALLU = 0;
	dsb();
	isb();
	SCB_CCR |= SCB_CCR_IC;
	dsb();
	isb();
	main();
	h7_reset();
}

#define V(f) ((uint32_t)(uintptr_t)(f))
__attribute__((section(".isr_vector"), used)) const uint32_t h7_vectors[N_VECTORS] = {
	[0] = V(&_estack),
	[1] = V(Reset_Handler),
	[2] = V(Default_Handler),   /* NMI */
	[3] = V(HardFault_Handler),
	[4] = V(Default_Handler),   /* MemManage */
	[5] = V(BusFault_Handler),
	[6] = V(Default_Handler),   /* UsageFault */
	[11] = V(Default_Handler),  /* SVCall */
	[12] = V(Default_Handler),  /* DebugMon */
	[14] = V(Default_Handler),  /* PendSV */
	[15] = V(SysTick_Handler),
	[16 + OTG_FS_IRQN] = V(OTG_FS_IRQHandler),
};
