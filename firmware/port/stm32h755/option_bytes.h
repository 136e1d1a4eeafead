/*
 * option_bytes.h - the explicit, one-time provisioning of a unit's option
 * bytes (docs/porting.md "First flashing"). The bootloader never changes
 * option bytes itself; a vendor runs flasher-provision-h755.elf once (from
 * RAM, through ST-LINK) after writing the bootloader.
 */
#ifndef H7_OPTION_BYTES_H
#define H7_OPTION_BYTES_H

#include <stdint.h>

/** What provisioning sets. Boot addresses are address >> 16. */
typedef struct h7_ob_config {
	uint16_t boot_cm7_add0; /**< 0x0800: the bootloader (bank 1 sector 0) */
	uint16_t boot_cm4_add0; /**< 0x0800: the bootloader's CM4 trampoline */
	uint8_t protect_sectors_bank1; /**< bit n = write-protect sector n (bit 0: bootloader) */
	uint8_t hold_cm4;       /**< 1: BCM4 = 0, the CM4 waits for RCC_GCR.BOOT_C2 */
} h7_ob_config;

#define H7_OB_CONFIG_DEFAULT {0x0800u, 0x0800u, 0x01u, 1u}

/** The option bytes as they are in effect. */
typedef struct h7_ob_state {
	uint32_t optsr;      /**< FLASH_OPTSR_CUR */
	uint32_t wpsn_bank1; /**< FLASH_WPSN_CUR1R: bit n = 0 means sector n protected */
	uint32_t boot7;      /**< FLASH_BOOT7_CURR */
	uint32_t boot4;      /**< FLASH_BOOT4_CURR */
} h7_ob_state;

enum {
	H7_OB_OK = 0,
	H7_OB_E_UNLOCK = -1,  /**< OPTLOCK did not clear */
	H7_OB_E_CHANGE = -2,  /**< OPTCHANGEERR after OPTSTART */
	H7_OB_E_VERIFY = -3,  /**< values in effect differ from those written */
	H7_OB_E_BUSY = -4,    /**< OPT_BUSY did not clear within its bound */
};

void h7_ob_read(h7_ob_state *out);
/** Program cfg, wait, read back and compare. Returns H7_OB_OK or H7_OB_E_*. */
int h7_ob_provision(const h7_ob_config *cfg, h7_ob_state *after);

#endif
