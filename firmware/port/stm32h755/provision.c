/*
 * provision.c - flasher-provision-h755.elf: a tiny program run from AXI SRAM
 * through a debugger, once per unit, after the bootloader is written. It
 * write-protects the bootloader sector, points both cores' boot addresses at
 * it and makes the CM4 wait for the CM7 (BCM4 = 0). The result is left in
 * `provision_result` / `provision_state` and the program stops at a
 * breakpoint, so the debugger script can read and check it:
 *
 *   openocd -f board/st_nucleo_h745zi.cfg &
 *   arm-none-eabi-gdb -batch -ex 'target extended-remote :3333' \
 *     -ex 'monitor reset halt' -ex load -ex continue \
 *     -ex 'print provision_result' flasher-provision-h755.elf
 *
 * The option bytes take effect at the next reset (OPTSTART reloads them).
 */
#include "option_bytes.h"

void provision_entry(void);

volatile int32_t provision_result = 1; /* 1 = did not run */
volatile h7_ob_state provision_state;

__attribute__((noreturn, used)) static void provision_main(void)
{
	static const h7_ob_config cfg = H7_OB_CONFIG_DEFAULT;
	h7_ob_state st;
	provision_result = h7_ob_provision(&cfg, &st);
	provision_state = st;
	for (;;)
		__asm__ volatile("bkpt 0");
}

__attribute__((naked, section(".entry"))) void provision_entry(void)
{
	__asm__ volatile("ldr r0, =_estack\n\t"
	                 "mov sp, r0\n\t"
	                 "b provision_main\n\t"
	                 ".ltorg\n\t");
}
