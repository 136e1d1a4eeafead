/*
 * The port's register definitions (firmware/port/stm32h755/regs.h) held
 * against the reference manual. The expected column is typed in here from
 * RM0399 (STM32H745/755/747/757), independently of regs.h; each row names
 * the RM0399 chapter and register section it comes from. regs.h is compiled
 * for the host: a REG32() name is an lvalue, so &NAME is its address and no
 * register is ever dereferenced.
 *
 * A row failing means regs.h and the manual disagree: fix regs.h (or, after
 * checking the manual again, the row), never both to match each other.
 */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdint.h>

#include "regs.h"

#define A(reg) ((uint32_t)(uintptr_t) & (reg))

typedef struct fact {
	const char *what;
	uint32_t regs_h;   /* what the port uses */
	uint32_t manual;   /* what RM0399 says */
	const char *where; /* RM0399 chapter > section */
} fact;

#define MAP "RM0399 Memory and bus architecture > Memory map and register boundary addresses"
#define F_REG "RM0399 Embedded flash memory (FLASH) > FLASH registers"
#define RCC_REG "RM0399 Reset and clock control (RCC) > RCC register description"
#define PWR_REG "RM0399 Power control (PWR) > PWR registers"
#define RTC_REG "RM0399 Real-time clock (RTC) > RTC registers"
#define CRS_REG "RM0399 Clock recovery system (CRS) > CRS registers"
#define OTG_REG "RM0399 USB on-the-go full-speed/high-speed (OTG_FS/OTG_HS) > OTG registers"
#define IWDG_REG "RM0399 Independent watchdog (IWDG) > IWDG registers"
#define SYSCFG_REG "RM0399 System configuration controller (SYSCFG) > SYSCFG registers"
#define SIG "RM0399 Device electronic signature > Unique device ID register (96 bits)"
#define GPIO_REG "RM0399 General-purpose I/Os (GPIO) > GPIO registers"
#define NVIC_TAB "RM0399 Extended interrupt and event controller (EXTI) / NVIC > vector table"

static const fact facts[] = {
	/* ---- base addresses ------------------------------------------------ */
	{"FLASH registers base", FLASH_BASE, 0x52002000u, MAP " (D1 AHB3: FLASH)"},
	{"RCC base", RCC_BASE, 0x58024400u, MAP " (D3 AHB4: RCC)"},
	{"PWR base", PWR_BASE, 0x58024800u, MAP " (D3 AHB4: PWR)"},
	{"RTC base", RTC_BASE, 0x58004000u, MAP " (D3 APB4: RTC & BKP registers)"},
	{"CRS base", CRS_BASE, 0x40008400u, MAP " (D2 APB1: CRS)"},
	{"USB2 OTG FS base", OTG_BASE, 0x40080000u, MAP " (D2 AHB1: USB2 OTG_FS)"},
	{"IWDG1 base", IWDG1_BASE, 0x58004800u, MAP " (D3 APB4: IWDG1)"},
	{"SYSCFG base", SYSCFG_BASE, 0x58000400u, MAP " (D3 APB4: SYSCFG)"},
	{"GPIOA base", GPIO_BASE(GPIOA), 0x58020000u, MAP " (D3 AHB4: GPIOA)"},
	{"GPIOC base", GPIO_BASE(GPIOC), 0x58020800u, MAP " (D3 AHB4: GPIOC)"},
	{"UID base", UID_BASE, 0x1FF1E800u, SIG},
	{"OTG_FS interrupt number", OTG_FS_IRQN, 101u, NVIC_TAB " (OTG_FS global interrupt, position 101)"},

	/* ---- FLASH --------------------------------------------------------- */
	{"FLASH_ACR", A(FLASH_ACR), 0x52002000u, F_REG " > FLASH access control register (FLASH_ACR) offset 0x000"},
	{"FLASH_KEYR1", A(FLASH_KEYR(0)), 0x52002004u, F_REG " > FLASH_KEYR1 offset 0x004"},
	{"FLASH_KEYR2", A(FLASH_KEYR(1)), 0x52002104u, F_REG " > FLASH_KEYR2 offset 0x104"},
	{"FLASH_OPTKEYR", A(FLASH_OPTKEYR), 0x52002008u, F_REG " > FLASH_OPTKEYR offset 0x008"},
	{"FLASH_CR1", A(FLASH_CR(0)), 0x5200200Cu, F_REG " > FLASH_CR1 offset 0x00C"},
	{"FLASH_CR2", A(FLASH_CR(1)), 0x5200210Cu, F_REG " > FLASH_CR2 offset 0x10C"},
	{"FLASH_SR1", A(FLASH_SR(0)), 0x52002010u, F_REG " > FLASH_SR1 offset 0x010"},
	{"FLASH_SR2", A(FLASH_SR(1)), 0x52002110u, F_REG " > FLASH_SR2 offset 0x110"},
	{"FLASH_CCR1", A(FLASH_CCR(0)), 0x52002014u, F_REG " > FLASH_CCR1 offset 0x014"},
	{"FLASH_CCR2", A(FLASH_CCR(1)), 0x52002114u, F_REG " > FLASH_CCR2 offset 0x114"},
	{"FLASH_OPTCR", A(FLASH_OPTCR), 0x52002018u, F_REG " > FLASH_OPTCR offset 0x018"},
	{"FLASH_OPTSR_CUR", A(FLASH_OPTSR_CUR), 0x5200201Cu, F_REG " > FLASH_OPTSR_CUR offset 0x01C"},
	{"FLASH_OPTSR_PRG", A(FLASH_OPTSR_PRG), 0x52002020u, F_REG " > FLASH_OPTSR_PRG offset 0x020"},
	{"FLASH_OPTCCR", A(FLASH_OPTCCR), 0x52002024u, F_REG " > FLASH_OPTCCR offset 0x024"},
	{"FLASH_WPSN_CUR1", A(FLASH_WPSN_CUR(0)), 0x52002038u, F_REG " > FLASH_WPSN_CUR1R offset 0x038"},
	{"FLASH_WPSN_PRG1", A(FLASH_WPSN_PRG(0)), 0x5200203Cu, F_REG " > FLASH_WPSN_PRG1R offset 0x03C"},
	{"FLASH_BOOT7_CUR", A(FLASH_BOOT7_CUR), 0x52002040u, F_REG " > FLASH_BOOT7_CURR offset 0x040"},
	{"FLASH_BOOT7_PRG", A(FLASH_BOOT7_PRG), 0x52002044u, F_REG " > FLASH_BOOT7_PRGR offset 0x044"},
	{"FLASH_BOOT4_CUR", A(FLASH_BOOT4_CUR), 0x52002048u, F_REG " > FLASH_BOOT4_CURR offset 0x048"},
	{"FLASH_BOOT4_PRG", A(FLASH_BOOT4_PRG), 0x5200204Cu, F_REG " > FLASH_BOOT4_PRGR offset 0x04C"},
	{"FLASH key 1", FLASH_KEY1, 0x45670123u, F_REG " > FLASH_KEYR1 (KEY1)"},
	{"FLASH key 2", FLASH_KEY2, 0xCDEF89ABu, F_REG " > FLASH_KEYR1 (KEY2)"},
	{"FLASH option key 1", FLASH_OPTKEY1, 0x08192A3Bu, F_REG " > FLASH_OPTKEYR (OPTKEY1)"},
	{"FLASH option key 2", FLASH_OPTKEY2, 0x4C5D6E7Fu, F_REG " > FLASH_OPTKEYR (OPTKEY2)"},
	{"FLASH_CR.LOCK", FLASH_CR_LOCK, 1u << 0, F_REG " > FLASH_CR1 bit 0 LOCK1"},
	{"FLASH_CR.PG", FLASH_CR_PG, 1u << 1, F_REG " > FLASH_CR1 bit 1 PG1"},
	{"FLASH_CR.SER", FLASH_CR_SER, 1u << 2, F_REG " > FLASH_CR1 bit 2 SER1"},
	{"FLASH_CR.PSIZE x64", FLASH_CR_PSIZE_X64, 3u << 4, F_REG " > FLASH_CR1 bits 5:4 PSIZE1 = 11"},
	{"FLASH_CR.FW", FLASH_CR_FW, 1u << 6, F_REG " > FLASH_CR1 bit 6 FW1"},
	{"FLASH_CR.START", FLASH_CR_START, 1u << 7, F_REG " > FLASH_CR1 bit 7 START1"},
	{"FLASH_CR.SNB", FLASH_CR_SNB_MASK, 7u << 8, F_REG " > FLASH_CR1 bits 10:8 SNB1"},
	{"FLASH_SR.BSY", FLASH_SR_BSY, 1u << 0, F_REG " > FLASH_SR1 bit 0 BSY1"},
	{"FLASH_SR.WBNE", FLASH_SR_WBNE, 1u << 1, F_REG " > FLASH_SR1 bit 1 WBNE1"},
	{"FLASH_SR.QW", FLASH_SR_QW, 1u << 2, F_REG " > FLASH_SR1 bit 2 QW1"},
	{"FLASH_SR.EOP", FLASH_SR_EOP, 1u << 16, F_REG " > FLASH_SR1 bit 16 EOP1"},
	{"FLASH_SR.WRPERR", FLASH_SR_WRPERR, 1u << 17, F_REG " > FLASH_SR1 bit 17 WRPERR1"},
	{"FLASH_SR.PGSERR", FLASH_SR_PGSERR, 1u << 18, F_REG " > FLASH_SR1 bit 18 PGSERR1"},
	{"FLASH_SR.STRBERR", FLASH_SR_STRBERR, 1u << 19, F_REG " > FLASH_SR1 bit 19 STRBERR1"},
	{"FLASH_SR.INCERR", FLASH_SR_INCERR, 1u << 21, F_REG " > FLASH_SR1 bit 21 INCERR1"},
	{"FLASH_SR.OPERR", FLASH_SR_OPERR, 1u << 22, F_REG " > FLASH_SR1 bit 22 OPERR1"},
	{"FLASH_SR.RDPERR", FLASH_SR_RDPERR, 1u << 23, F_REG " > FLASH_SR1 bit 23 RDPERR1"},
	{"FLASH_SR.RDSERR", FLASH_SR_RDSERR, 1u << 24, F_REG " > FLASH_SR1 bit 24 RDSERR1"},
	{"FLASH_SR.SNECCERR", FLASH_SR_SNECCERR, 1u << 25, F_REG " > FLASH_SR1 bit 25 SNECCERR1"},
	{"FLASH_SR.DBECCERR", FLASH_SR_DBECCERR, 1u << 26, F_REG " > FLASH_SR1 bit 26 DBECCERR1"},
	{"FLASH_CCR clear-all mask", FLASH_CCR_ALL, 0x0FEF0000u, F_REG " > FLASH_CCR1 bits 27:21 and 19:16 (bit 20 reserved)"},
	{"FLASH_OPTCR.OPTLOCK", FLASH_OPTCR_OPTLOCK, 1u << 0, F_REG " > FLASH_OPTCR bit 0 OPTLOCK"},
	{"FLASH_OPTCR.OPTSTART", FLASH_OPTCR_OPTSTART, 1u << 1, F_REG " > FLASH_OPTCR bit 1 OPTSTART"},
	{"FLASH_OPTSR.OPT_BUSY", FLASH_OPTSR_OPT_BUSY, 1u << 0, F_REG " > FLASH_OPTSR_CUR bit 0 OPT_BUSY"},
	{"FLASH_OPTSR.BCM4", FLASH_OPTSR_BCM4, 1u << 22, F_REG " > FLASH_OPTSR_CUR bit 22 BCM4"},
	{"FLASH_OPTSR.BCM7", FLASH_OPTSR_BCM7, 1u << 23, F_REG " > FLASH_OPTSR_CUR bit 23 BCM7"},
	{"FLASH_OPTSR.OPTCHANGEERR", FLASH_OPTSR_OPTCHANGEERR, 1u << 30, F_REG " > FLASH_OPTSR_CUR bit 30 OPTCHANGEERR"},
	{"FLASH_OPTSR.SWAP_BANK", FLASH_OPTSR_SWAP_BANK, 1u << 31, F_REG " > FLASH_OPTSR_CUR bit 31 SWAP_BANK_OPT"},
	{"FLASH_OPTCCR.CLR_OPTCHANGEERR", FLASH_OPTCCR_CLR_OPTCHANGEERR, 1u << 30, F_REG " > FLASH_OPTCCR bit 30"},

	/* ---- RCC ----------------------------------------------------------- */
	{"RCC_CR", A(RCC_CR), 0x58024400u, RCC_REG " > RCC_CR offset 0x000"},
	{"RCC_CR.HSION", RCC_CR_HSION, 1u << 0, RCC_REG " > RCC_CR bit 0 HSION"},
	{"RCC_CR.HSIRDY", RCC_CR_HSIRDY, 1u << 2, RCC_REG " > RCC_CR bit 2 HSIRDY"},
	{"RCC_CR.HSI48ON", RCC_CR_HSI48ON, 1u << 12, RCC_REG " > RCC_CR bit 12 HSI48ON"},
	{"RCC_CR.HSI48RDY", RCC_CR_HSI48RDY, 1u << 13, RCC_REG " > RCC_CR bit 13 HSI48RDY"},
	{"RCC_CR.PLL1ON", RCC_CR_PLL1ON, 1u << 24, RCC_REG " > RCC_CR bit 24 PLL1ON"},
	{"RCC_CR.PLL1RDY", RCC_CR_PLL1RDY, 1u << 25, RCC_REG " > RCC_CR bit 25 PLL1RDY"},
	{"RCC_CFGR", A(RCC_CFGR), 0x58024410u, RCC_REG " > RCC_CFGR offset 0x010"},
	{"RCC_D1CFGR", A(RCC_D1CFGR), 0x58024418u, RCC_REG " > RCC_D1CFGR offset 0x018"},
	{"RCC_D2CFGR", A(RCC_D2CFGR), 0x5802441Cu, RCC_REG " > RCC_D2CFGR offset 0x01C"},
	{"RCC_D3CFGR", A(RCC_D3CFGR), 0x58024420u, RCC_REG " > RCC_D3CFGR offset 0x020"},
	{"RCC_PLLCKSELR", A(RCC_PLLCKSELR), 0x58024428u, RCC_REG " > RCC_PLLCKSELR offset 0x028"},
	{"RCC_PLLCFGR", A(RCC_PLLCFGR), 0x5802442Cu, RCC_REG " > RCC_PLLCFGR offset 0x02C"},
	{"RCC_PLL1DIVR", A(RCC_PLL1DIVR), 0x58024430u, RCC_REG " > RCC_PLL1DIVR offset 0x030"},
	{"RCC_D2CCIP2R", A(RCC_D2CCIP2R), 0x58024454u, RCC_REG " > RCC_D2CCIP2R offset 0x054"},
	{"RCC_D2CCIP2R.USBSEL", 3u << RCC_D2CCIP2R_USBSEL_SHIFT, 3u << 20, RCC_REG " > RCC_D2CCIP2R bits 21:20 USBSEL"},
	{"RCC_D2CCIP2R.USBSEL = HSI48", RCC_D2CCIP2R_USBSEL_HSI48, 3u, RCC_REG " > RCC_D2CCIP2R USBSEL = 11 (hsi48_ck)"},
	{"RCC_AHB1RSTR", A(RCC_AHB1RSTR), 0x58024480u, RCC_REG " > RCC_AHB1RSTR offset 0x080"},
	{"RCC_GCR", A(RCC_GCR), 0x580244A0u, RCC_REG " > RCC global control register (RCC_GCR) offset 0x0A0"},
	{"RCC_GCR.BOOT_C2", RCC_GCR_BOOT_C2, 1u << 3, RCC_REG " > RCC_GCR bit 3 BOOT_C2"},
	{"RCC_C1_RSR", A(RCC_C1_RSR), 0x58024530u, RCC_REG " > RCC_C1_RSR offset 0x130"},
	{"RCC_RSR.RMVF", RCC_RSR_RMVF, 1u << 16, RCC_REG " > RCC_RSR bit 16 RMVF"},
	{"RCC_RSR.IWDG1RSTF", RCC_RSR_IWDG1RSTF, 1u << 26, RCC_REG " > RCC_RSR bit 26 IWDG1RSTF"},
	{"RCC_C1_AHB1ENR", A(RCC_C1_AHB1ENR), 0x58024538u, RCC_REG " > RCC_C1_AHB1ENR offset 0x138"},
	{"AHB1ENR.USB2OTGFSEN", RCC_AHB1_USB2OTGFS, 1u << 27, RCC_REG " > RCC_AHB1ENR bit 27 USB2OTGFSEN"},
	{"RCC_C1_AHB4ENR", A(RCC_C1_AHB4ENR), 0x58024540u, RCC_REG " > RCC_C1_AHB4ENR offset 0x140"},
	{"AHB4ENR.GPIOAEN", RCC_AHB4_GPIOA, 1u << 0, RCC_REG " > RCC_AHB4ENR bit 0 GPIOAEN"},
	{"AHB4ENR.GPIOCEN", RCC_AHB4_GPIOC, 1u << 2, RCC_REG " > RCC_AHB4ENR bit 2 GPIOCEN"},
	{"RCC_C1_APB1HENR", A(RCC_C1_APB1HENR), 0x5802454Cu, RCC_REG " > RCC_C1_APB1HENR offset 0x14C"},
	{"APB1HENR.CRSEN", RCC_APB1H_CRS, 1u << 1, RCC_REG " > RCC_APB1HENR bit 1 CRSEN"},
	{"RCC_C1_APB4ENR", A(RCC_C1_APB4ENR), 0x58024554u, RCC_REG " > RCC_C1_APB4ENR offset 0x154"},
	{"APB4ENR.SYSCFGEN", RCC_APB4_SYSCFG, 1u << 1, RCC_REG " > RCC_APB4ENR bit 1 SYSCFGEN"},
	{"APB4ENR.RTCAPBEN", RCC_APB4_RTCAPB, 1u << 16, RCC_REG " > RCC_APB4ENR bit 16 RTCAPBEN"},

	/* ---- PWR ----------------------------------------------------------- */
	{"PWR_CR1", A(PWR_CR1), 0x58024800u, PWR_REG " > PWR_CR1 offset 0x00"},
	{"PWR_CR1.DBP", PWR_CR1_DBP, 1u << 8, PWR_REG " > PWR_CR1 bit 8 DBP"},
	{"PWR_CSR1", A(PWR_CSR1), 0x58024804u, PWR_REG " > PWR_CSR1 offset 0x04"},
	{"PWR_CSR1.ACTVOSRDY", PWR_CSR1_ACTVOSRDY, 1u << 13, PWR_REG " > PWR_CSR1 bit 13 ACTVOSRDY"},
	{"PWR_CR3", A(PWR_CR3), 0x5802480Cu, PWR_REG " > PWR_CR3 offset 0x0C"},
	{"PWR_CR3.BYPASS", PWR_CR3_BYPASS, 1u << 0, PWR_REG " > PWR_CR3 bit 0 BYPASS"},
	{"PWR_CR3.LDOEN", PWR_CR3_LDOEN, 1u << 1, PWR_REG " > PWR_CR3 bit 1 LDOEN"},
	{"PWR_CR3.SDEN", PWR_CR3_SDEN, 1u << 2, PWR_REG " > PWR_CR3 bit 2 SDEN"},
	{"PWR_CR3.USB33DEN", PWR_CR3_USB33DEN, 1u << 24, PWR_REG " > PWR_CR3 bit 24 USB33DEN"},
	{"PWR_CR3.USB33RDY", PWR_CR3_USB33RDY, 1u << 26, PWR_REG " > PWR_CR3 bit 26 USB33RDY"},
	{"PWR_D3CR", A(PWR_D3CR), 0x58024818u, PWR_REG " > PWR_D3CR offset 0x18"},
	{"PWR_D3CR.VOS", 3u << PWR_D3CR_VOS_SHIFT, 3u << 14, PWR_REG " > PWR_D3CR bits 15:14 VOS"},
	{"PWR_D3CR.VOSRDY", PWR_D3CR_VOSRDY, 1u << 13, PWR_REG " > PWR_D3CR bit 13 VOSRDY"},

	/* ---- RTC backup registers: no TAMP block on this part -------------- */
	{"RTC_BKP0R", A(RTC_BKP0R), 0x58004050u, RTC_REG " > RTC backup registers (RTC_BKPxR) offset 0x50 + 4x"},

	/* ---- CRS ----------------------------------------------------------- */
	{"CRS_CR", A(CRS_CR), 0x40008400u, CRS_REG " > CRS_CR offset 0x00"},
	{"CRS_CR.CEN", CRS_CR_CEN, 1u << 5, CRS_REG " > CRS_CR bit 5 CEN"},
	{"CRS_CR.AUTOTRIMEN", CRS_CR_AUTOTRIMEN, 1u << 6, CRS_REG " > CRS_CR bit 6 AUTOTRIMEN"},
	{"CRS_CFGR", A(CRS_CFGR), 0x40008404u, CRS_REG " > CRS_CFGR offset 0x04"},
	{"CRS_CFGR.SYNCSRC field", CRS_CFGR_SYNCSRC_MASK, 3u << 28, CRS_REG " > CRS_CFGR bits 29:28 SYNCSRC"},
	{"CRS_CFGR.SYNCSRC = USB2 (OTG_FS) SOF", CRS_CFGR_SYNCSRC_USB, 3u << 28,
	 CRS_REG " > CRS_CFGR SYNCSRC = 11 (USB2 SOF; 10 is USB1 = OTG_HS)"},

	/* ---- USB2 OTG FS ---------------------------------------------------- */
	{"OTG_GOTGCTL", A(OTG_GOTGCTL), 0x40080000u, OTG_REG " > OTG_GOTGCTL offset 0x000"},
	{"OTG_GAHBCFG", A(OTG_GAHBCFG), 0x40080008u, OTG_REG " > OTG_GAHBCFG offset 0x008"},
	{"OTG_GUSBCFG", A(OTG_GUSBCFG), 0x4008000Cu, OTG_REG " > OTG_GUSBCFG offset 0x00C"},
	{"OTG_GRSTCTL", A(OTG_GRSTCTL), 0x40080010u, OTG_REG " > OTG_GRSTCTL offset 0x010"},
	{"OTG_GINTSTS", A(OTG_GINTSTS), 0x40080014u, OTG_REG " > OTG_GINTSTS offset 0x014"},
	{"OTG_GINTMSK", A(OTG_GINTMSK), 0x40080018u, OTG_REG " > OTG_GINTMSK offset 0x018"},
	{"OTG_GRXSTSP", A(OTG_GRXSTSP), 0x40080020u, OTG_REG " > OTG_GRXSTSP offset 0x020"},
	{"OTG_GRXFSIZ", A(OTG_GRXFSIZ), 0x40080024u, OTG_REG " > OTG_GRXFSIZ offset 0x024"},
	{"OTG_DIEPTXF0", A(OTG_DIEPTXF0), 0x40080028u, OTG_REG " > OTG_DIEPTXF0 offset 0x028"},
	{"OTG_GCCFG", A(OTG_GCCFG), 0x40080038u, OTG_REG " > OTG_GCCFG offset 0x038"},
	{"OTG_DIEPTXF1", A(OTG_DIEPTXF(1)), 0x40080104u, OTG_REG " > OTG_DIEPTXFx offset 0x104 + 4(x-1)"},
	{"OTG_DCFG", A(OTG_DCFG), 0x40080800u, OTG_REG " > OTG_DCFG offset 0x800"},
	{"OTG_DCTL", A(OTG_DCTL), 0x40080804u, OTG_REG " > OTG_DCTL offset 0x804"},
	{"OTG_DIEPMSK", A(OTG_DIEPMSK), 0x40080810u, OTG_REG " > OTG_DIEPMSK offset 0x810"},
	{"OTG_DOEPMSK", A(OTG_DOEPMSK), 0x40080814u, OTG_REG " > OTG_DOEPMSK offset 0x814"},
	{"OTG_DAINT", A(OTG_DAINT), 0x40080818u, OTG_REG " > OTG_DAINT offset 0x818"},
	{"OTG_DAINTMSK", A(OTG_DAINTMSK), 0x4008081Cu, OTG_REG " > OTG_DAINTMSK offset 0x81C"},
	{"OTG_DIEPCTL1", A(OTG_DIEPCTL(1)), 0x40080920u, OTG_REG " > OTG_DIEPCTLx offset 0x900 + 0x20x"},
	{"OTG_DIEPINT1", A(OTG_DIEPINT(1)), 0x40080928u, OTG_REG " > OTG_DIEPINTx offset 0x908 + 0x20x"},
	{"OTG_DIEPTSIZ1", A(OTG_DIEPTSIZ(1)), 0x40080930u, OTG_REG " > OTG_DIEPTSIZx offset 0x910 + 0x20x"},
	{"OTG_DTXFSTS1", A(OTG_DTXFSTS(1)), 0x40080938u, OTG_REG " > OTG_DTXFSTSx offset 0x918 + 0x20x"},
	{"OTG_DOEPCTL1", A(OTG_DOEPCTL(1)), 0x40080B20u, OTG_REG " > OTG_DOEPCTLx offset 0xB00 + 0x20x"},
	{"OTG_DOEPINT1", A(OTG_DOEPINT(1)), 0x40080B28u, OTG_REG " > OTG_DOEPINTx offset 0xB08 + 0x20x"},
	{"OTG_DOEPTSIZ1", A(OTG_DOEPTSIZ(1)), 0x40080B30u, OTG_REG " > OTG_DOEPTSIZx offset 0xB10 + 0x20x"},
	{"OTG_PCGCCTL", A(OTG_PCGCCTL), 0x40080E00u, OTG_REG " > OTG_PCGCCTL offset 0xE00"},
	{"OTG FIFO 1", A(OTG_FIFO(1)), 0x40082000u, OTG_REG " > data FIFO access: 0x1000 + 0x1000 n"},
	{"GUSBCFG.PHYSEL", OTG_GUSBCFG_PHYSEL, 1u << 6, OTG_REG " > OTG_GUSBCFG bit 6 PHYSEL"},
	{"GUSBCFG.FDMOD", OTG_GUSBCFG_FDMOD, 1u << 30, OTG_REG " > OTG_GUSBCFG bit 30 FDMOD"},
	{"GUSBCFG.TRDT", OTG_GUSBCFG_TRDT(0xF), 0xFu << 10, OTG_REG " > OTG_GUSBCFG bits 13:10 TRDT"},
	{"GRSTCTL.CSRST", OTG_GRSTCTL_CSRST, 1u << 0, OTG_REG " > OTG_GRSTCTL bit 0 CSRST"},
	{"GRSTCTL.RXFFLSH", OTG_GRSTCTL_RXFFLSH, 1u << 4, OTG_REG " > OTG_GRSTCTL bit 4 RXFFLSH"},
	{"GRSTCTL.TXFFLSH", OTG_GRSTCTL_TXFFLSH, 1u << 5, OTG_REG " > OTG_GRSTCTL bit 5 TXFFLSH"},
	{"GRSTCTL.TXFNUM all", OTG_GRSTCTL_TXFNUM_ALL, 0x10u << 6, OTG_REG " > OTG_GRSTCTL bits 10:6 TXFNUM = 10000"},
	{"GRSTCTL.AHBIDL", OTG_GRSTCTL_AHBIDL, 1u << 31, OTG_REG " > OTG_GRSTCTL bit 31 AHBIDL"},
	{"GINTSTS.RXFLVL", OTG_GINT_RXFLVL, 1u << 4, OTG_REG " > OTG_GINTSTS bit 4 RXFLVL"},
	{"GINTSTS.USBSUSP", OTG_GINT_USBSUSP, 1u << 11, OTG_REG " > OTG_GINTSTS bit 11 USBSUSP"},
	{"GINTSTS.USBRST", OTG_GINT_USBRST, 1u << 12, OTG_REG " > OTG_GINTSTS bit 12 USBRST"},
	{"GINTSTS.ENUMDNE", OTG_GINT_ENUMDNE, 1u << 13, OTG_REG " > OTG_GINTSTS bit 13 ENUMDNE"},
	{"GINTSTS.IEPINT", OTG_GINT_IEPINT, 1u << 18, OTG_REG " > OTG_GINTSTS bit 18 IEPINT"},
	{"GINTSTS.OEPINT", OTG_GINT_OEPINT, 1u << 19, OTG_REG " > OTG_GINTSTS bit 19 OEPINT"},
	{"GCCFG.PWRDWN", OTG_GCCFG_PWRDWN, 1u << 16, OTG_REG " > OTG_GCCFG bit 16 PWRDWN"},
	{"DCTL.SDIS", OTG_DCTL_SDIS, 1u << 1, OTG_REG " > OTG_DCTL bit 1 SDIS"},
	{"DCTL.CGINAK", OTG_DCTL_CGINAK, 1u << 8, OTG_REG " > OTG_DCTL bit 8 CGINAK"},
	{"DCTL.CGONAK", OTG_DCTL_CGONAK, 1u << 10, OTG_REG " > OTG_DCTL bit 10 CGONAK"},
	{"EPCTL.USBAEP", OTG_EPCTL_USBAEP, 1u << 15, OTG_REG " > OTG_DxEPCTLx bit 15 USBAEP"},
	{"EPCTL.STALL", OTG_EPCTL_STALL, 1u << 21, OTG_REG " > OTG_DxEPCTLx bit 21 STALL"},
	{"EPCTL.CNAK", OTG_EPCTL_CNAK, 1u << 26, OTG_REG " > OTG_DxEPCTLx bit 26 CNAK"},
	{"EPCTL.SNAK", OTG_EPCTL_SNAK, 1u << 27, OTG_REG " > OTG_DxEPCTLx bit 27 SNAK"},
	{"EPCTL.SD0PID", OTG_EPCTL_SD0PID, 1u << 28, OTG_REG " > OTG_DxEPCTLx bit 28 SD0PID/SEVNFRM"},
	{"EPCTL.EPDIS", OTG_EPCTL_EPDIS, 1u << 30, OTG_REG " > OTG_DxEPCTLx bit 30 EPDIS"},
	{"EPCTL.EPENA", OTG_EPCTL_EPENA, 1u << 31, OTG_REG " > OTG_DxEPCTLx bit 31 EPENA"},
	{"EPINT.XFRC", OTG_EPINT_XFRC, 1u << 0, OTG_REG " > OTG_DxEPINTx bit 0 XFRC"},
	{"DOEPINT.STUP", OTG_EPINT_STUP, 1u << 3, OTG_REG " > OTG_DOEPINTx bit 3 STUP"},
	{"DOEPTSIZ0.STUPCNT = 3", OTG_DOEPTSIZ0_STUPCNT3, 3u << 29, OTG_REG " > OTG_DOEPTSIZ0 bits 30:29 STUPCNT"},
	{"RXSTSP PKTSTS OUT data", OTG_PKTSTS_OUT_DATA, 2u, OTG_REG " > OTG_GRXSTSP PKTSTS = 0010"},
	{"RXSTSP PKTSTS SETUP data", OTG_PKTSTS_SETUP_DATA, 6u, OTG_REG " > OTG_GRXSTSP PKTSTS = 0110"},

	/* ---- IWDG1 ---------------------------------------------------------- */
	{"IWDG_KR", A(IWDG_KR), 0x58004800u, IWDG_REG " > IWDG_KR offset 0x00"},
	{"IWDG_PR", A(IWDG_PR), 0x58004804u, IWDG_REG " > IWDG_PR offset 0x04"},
	{"IWDG_RLR", A(IWDG_RLR), 0x58004808u, IWDG_REG " > IWDG_RLR offset 0x08"},
	{"IWDG_SR", A(IWDG_SR), 0x5800480Cu, IWDG_REG " > IWDG_SR offset 0x0C"},
	{"IWDG start key", IWDG_KEY_START, 0xCCCCu, IWDG_REG " > IWDG_KR KEY = 0xCCCC"},
	{"IWDG access key", IWDG_KEY_ACCESS, 0x5555u, IWDG_REG " > IWDG_KR KEY = 0x5555"},
	{"IWDG refresh key", IWDG_KEY_REFRESH, 0xAAAAu, IWDG_REG " > IWDG_KR KEY = 0xAAAA"},

	/* ---- SYSCFG ---------------------------------------------------------- */
	{"SYSCFG_UR1", A(SYSCFG_UR1), 0x58000704u, SYSCFG_REG " > SYSCFG user register 1 (SYSCFG_UR1) offset 0x304"},
	{"SYSCFG_UR1.BCM4", SYSCFG_UR1_BCM4, 1u << 0, SYSCFG_REG " > SYSCFG_UR1 bit 0 BCM4"},
	{"SYSCFG_UR1.BCM7", SYSCFG_UR1_BCM7, 1u << 16, SYSCFG_REG " > SYSCFG_UR1 bit 16 BCM7"},

	/* ---- GPIO ------------------------------------------------------------ */
	{"GPIO_MODER", A(GPIO_MODER(GPIOA)), 0x58020000u, GPIO_REG " > GPIOx_MODER offset 0x00"},
	{"GPIO_IDR", A(GPIO_IDR(GPIOC)), 0x58020810u, GPIO_REG " > GPIOx_IDR offset 0x10"},
	{"GPIO_AFRH", A(GPIO_AFRH(GPIOA)), 0x58020024u, GPIO_REG " > GPIOx_AFRH offset 0x24"},
};

/* Rows where regs.h and the manual differ; with log, each is reported with
 * its source (Criterion counts a logged error as a failure). */
static size_t mismatches(const fact *t, size_t n, bool log)
{
	size_t bad = 0;
	for (size_t i = 0; i < n; i++) {
		if (t[i].regs_h != t[i].manual) {
			if (log)
				cr_log_error("%s: regs.h 0x%08X, manual 0x%08X (%s)", t[i].what, (unsigned)t[i].regs_h,
			             (unsigned)t[i].manual, t[i].where);
			bad++;
		}
	}
	return bad;
}

Test(regs_facts, every_register_fact_matches_the_reference_manual)
{
	size_t n = sizeof(facts) / sizeof(facts[0]);
	size_t bad = mismatches(facts, n, true);
	cr_assert_eq(bad, 0, "%zu of %zu register facts differ from RM0399", bad, n);
}

/* The names other checks rely on (issue 11) exist, are REG32 registers
 * (addressable lvalues) and, for the value, sit in bits 29:28. */
Test(regs_facts, contract_names_are_reg32_registers)
{
	volatile uint32_t *bkp = &RTC_BKP0R, *ur1 = &SYSCFG_UR1;
	cr_assert_eq((uintptr_t)bkp, (uintptr_t)0x58004050u);
	cr_assert_eq((uintptr_t)ur1, (uintptr_t)0x58000704u);
	cr_assert_eq(CRS_CFGR_SYNCSRC_USB & ~(3u << 28), 0u, "SYNCSRC lives in bits 29:28");
	cr_assert_eq(CRS_CFGR_SYNCSRC_USB >> 28, 3u, "OTG FS (USB2) SOF");
}

/* The checker catches the mistakes this issue found: the old TAMP-style
 * backup offset, the OTG HS sync source and UR0 taken for UR1. */
Test(regs_facts, the_checker_catches_the_old_mistakes)
{
	const fact old[] = {
		{"RTC_BKP0R", 0x58004100u, 0x58004050u, RTC_REG},
		{"CRS_CFGR.SYNCSRC", 2u << 28, 3u << 28, CRS_REG},
		{"SYSCFG_UR1", 0x58000700u, 0x58000704u, SYSCFG_REG},
		{"RCC_GCR", A(RCC_GCR), 0x580244A0u, RCC_REG},
	};
	cr_assert_eq(mismatches(old, 4, false), 3);
}
