/* option_bytes.c - option-byte programming (RM0399 "Option bytes"). */
#include "option_bytes.h"
#include "regs.h"

/* OPT_BUSY lasts while the option words are rewritten (milliseconds to a
 * few hundred ms); no SysTick runs here, so the bound counts reads:
 * 400 M reads take well over 2 s at any clock (a peripheral read costs
 * several bus cycles). */
#define OB_POLL_LIMIT 400000000u

static int wait_not_busy(void)
{
	for (uint32_t i = 0; i < OB_POLL_LIMIT; i++)
		if (!(FLASH_OPTSR_CUR & FLASH_OPTSR_OPT_BUSY))
			return H7_OB_OK;
	return H7_OB_E_BUSY;
}

void h7_ob_read(h7_ob_state *out)
{
	out->optsr = FLASH_OPTSR_CUR;
	out->wpsn_bank1 = FLASH_WPSN_CUR(0);
	out->boot7 = FLASH_BOOT7_CUR;
	out->boot4 = FLASH_BOOT4_CUR;
}

int h7_ob_provision(const h7_ob_config *cfg, h7_ob_state *after)
{
	if (FLASH_OPTCR & FLASH_OPTCR_OPTLOCK) {
		FLASH_OPTKEYR = FLASH_OPTKEY1;
		FLASH_OPTKEYR = FLASH_OPTKEY2;
	}
	if (FLASH_OPTCR & FLASH_OPTCR_OPTLOCK)
		return H7_OB_E_UNLOCK;
	if (wait_not_busy() != H7_OB_OK) {
		FLASH_OPTCR |= FLASH_OPTCR_OPTLOCK;
		return H7_OB_E_BUSY;
	}

	/* Write protection: WRPSn = 0 protects sector n; keep others as they are. */
	uint32_t wpsn = FLASH_WPSN_CUR(0) & 0xFFu;
	wpsn &= ~(uint32_t)cfg->protect_sectors_bank1;
	FLASH_WPSN_PRG(0) = (FLASH_WPSN_PRG(0) & ~0xFFu) | wpsn;
	/* Boot addresses: ADD0 (BOOT pin low) changes, ADD1 (pin high, ST ROM
	 * loader by default) stays so the ROM DFU loader remains reachable. */
	FLASH_BOOT7_PRG = (FLASH_BOOT7_CUR & 0xFFFF0000u) | cfg->boot_cm7_add0;
	FLASH_BOOT4_PRG = (FLASH_BOOT4_CUR & 0xFFFF0000u) | cfg->boot_cm4_add0;
	uint32_t optsr = FLASH_OPTSR_CUR | FLASH_OPTSR_BCM7;
	if (cfg->hold_cm4)
		optsr &= ~FLASH_OPTSR_BCM4;
	else
		optsr |= FLASH_OPTSR_BCM4;
	optsr &= ~FLASH_OPTSR_SWAP_BANK; /* the slots assume unswapped banks */
	FLASH_OPTSR_PRG = optsr & ~(FLASH_OPTSR_OPT_BUSY | FLASH_OPTSR_OPTCHANGEERR);

	FLASH_OPTCCR = FLASH_OPTCCR_CLR_OPTCHANGEERR;
	FLASH_OPTCR |= FLASH_OPTCR_OPTSTART;
	int rc = wait_not_busy();
	if (rc == H7_OB_OK && (FLASH_OPTSR_CUR & FLASH_OPTSR_OPTCHANGEERR))
		rc = H7_OB_E_CHANGE;
	FLASH_OPTCR |= FLASH_OPTCR_OPTLOCK;

	h7_ob_read(after);
	if (rc == H7_OB_OK &&
	    ((after->wpsn_bank1 & cfg->protect_sectors_bank1) != 0 ||
	     (after->boot7 & 0xFFFFu) != cfg->boot_cm7_add0 || (after->boot4 & 0xFFFFu) != cfg->boot_cm4_add0 ||
	     (cfg->hold_cm4 && (after->optsr & FLASH_OPTSR_BCM4))))
		rc = H7_OB_E_VERIFY;
	return rc;
}
