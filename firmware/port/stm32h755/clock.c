/*
 * clock.c - clocks of the CM7: 400 MHz from PLL1 on HSI (64 MHz), AXI/AHB
 * 200 MHz, APBs 100 MHz; USB 48 MHz from HSI48 trimmed by CRS on the USB
 * start-of-frame (no crystal needed). Values: RM0399 "RCC", DS12919 table
 * "general operating conditions" (VOS1: 400 MHz CPU, flash 2 wait states at
 * 200 MHz AXI). See docs/porting.md for the bring-up checklist.
 */
#include "h7.h"
#include "regs.h"

/* Supply configuration is board wiring: NUCLEO-H755ZI-Q feeds the core from
 * the SMPS ("direct SMPS"). A board using the LDO sets PWR_CR3_LDOEN here.
 * It can be written once per power-on; a wrong value locks up the chip
 * until a power cycle, so it must match the board. */
#ifndef H7_SUPPLY_CONFIG
#define H7_SUPPLY_CONFIG PWR_CR3_SDEN
#endif

bool h7_clock_init(void)
{
	PWR_CR3 = (PWR_CR3 & ~(PWR_CR3_BYPASS | PWR_CR3_LDOEN | PWR_CR3_SDEN)) | H7_SUPPLY_CONFIG;
	if (!h7_poll(&PWR_CSR1, PWR_CSR1_ACTVOSRDY, PWR_CSR1_ACTVOSRDY))
		return false; /* supply configuration does not match the board */
	/* VOS1 (0b11) for 400 MHz. */
	PWR_D3CR = (PWR_D3CR & ~(3u << PWR_D3CR_VOS_SHIFT)) | (3u << PWR_D3CR_VOS_SHIFT);
	if (!h7_poll(&PWR_D3CR, PWR_D3CR_VOSRDY, PWR_D3CR_VOSRDY))
		return false;

	RCC_CR |= RCC_CR_HSION;
	if (!h7_poll(&RCC_CR, RCC_CR_HSIRDY, RCC_CR_HSIRDY))
		return false;
	/* PLL1: HSI 64 MHz / M=16 -> 4 MHz ref (range 4-8 MHz, wide VCO),
	 * x N=200 -> 800 MHz VCO, / P=2 -> 400 MHz, Q=R=/4 (unused). */
	RCC_PLLCKSELR = (16u << 4) | 0u; /* DIVM1 = 16, PLLSRC = HSI */
	RCC_PLLCFGR = (RCC_PLLCFGR & ~0x1FFu) | (2u << 2) /* PLL1RGE 4-8 MHz */ | (1u << 16) /* DIVP1EN */;
	RCC_PLL1DIVR = (199u << 0) | (1u << 9) | (3u << 16) | (3u << 24);
	RCC_CR |= RCC_CR_PLL1ON;
	if (!h7_poll(&RCC_CR, RCC_CR_PLL1RDY, RCC_CR_PLL1RDY))
		return false;

	/* Bus prescalers before the switch: HPRE /2 (AXI 200 MHz), APB3 /2 (D1),
	 * APB1 /2, APB2 /2 (D2), APB4 /2 (D3). */
	RCC_D1CFGR = (8u << 0) | (4u << 4);
	RCC_D2CFGR = (4u << 4) | (4u << 8);
	RCC_D3CFGR = (4u << 4);
	/* Flash: 2 wait states, WRHIGHFREQ 2 for 185-225 MHz AXI at VOS1. */
	FLASH_ACR = (2u << 4) | 2u;
	if (!h7_poll(&FLASH_ACR, 0xFu, 2u))
		return false;

	RCC_CFGR = (RCC_CFGR & ~RCC_CFGR_SW_MASK) | RCC_CFGR_SW_PLL1;
	return h7_poll(&RCC_CFGR, 7u << RCC_CFGR_SWS_SHIFT, RCC_CFGR_SW_PLL1 << RCC_CFGR_SWS_SHIFT);
}

bool h7_usb_clock_init(void)
{
	RCC_CR |= RCC_CR_HSI48ON;
	if (!h7_poll(&RCC_CR, RCC_CR_HSI48RDY, RCC_CR_HSI48RDY))
		return false;
	RCC_D2CCIP2R = (RCC_D2CCIP2R & ~(3u << RCC_D2CCIP2R_USBSEL_SHIFT)) |
	               (RCC_D2CCIP2R_USBSEL_HSI48 << RCC_D2CCIP2R_USBSEL_SHIFT);
	/* CRS: keep HSI48 on 48 MHz using the host's 1 kHz SOF of the OTG FS
	 * core (USB2; reset values of RELOAD/FELIM are for exactly that). */
	RCC_C1_APB1HENR |= RCC_APB1H_CRS;
	(void)RCC_C1_APB1HENR;
	CRS_CFGR = (CRS_CFGR & ~CRS_CFGR_SYNCSRC_MASK) | CRS_CFGR_SYNCSRC_USB;
	CRS_CR |= CRS_CR_AUTOTRIMEN | CRS_CR_CEN;
	return true;
}
