/*
 * regs.h - the STM32H755 registers this port uses, written for this project
 * from RM0399 (STM32H745/755/747/757 reference manual) and DS12919. Only
 * what the port touches is here; values marked in docs/porting.md
 * ("bring-up checklist") must be checked against the manual on first
 * bring-up, as no board was available when this was written.
 */
#ifndef H7_REGS_H
#define H7_REGS_H

#include <stdint.h>

#define REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* ---- RCC (0x5802_4400) ------------------------------------------------ */
#define RCC_BASE 0x58024400u
#define RCC_CR REG32(RCC_BASE + 0x000u)
#define RCC_CR_HSION (1u << 0)
#define RCC_CR_HSIRDY (1u << 2)
#define RCC_CR_HSI48ON (1u << 12)
#define RCC_CR_HSI48RDY (1u << 13)
#define RCC_CR_PLL1ON (1u << 24)
#define RCC_CR_PLL1RDY (1u << 25)
#define RCC_CFGR REG32(RCC_BASE + 0x010u)
#define RCC_CFGR_SW_MASK 0x7u
#define RCC_CFGR_SW_PLL1 0x3u
#define RCC_CFGR_SWS_SHIFT 3u
#define RCC_D1CFGR REG32(RCC_BASE + 0x018u)
#define RCC_D2CFGR REG32(RCC_BASE + 0x01Cu)
#define RCC_D3CFGR REG32(RCC_BASE + 0x020u)
#define RCC_PLLCKSELR REG32(RCC_BASE + 0x028u)
#define RCC_PLLCFGR REG32(RCC_BASE + 0x02Cu)
#define RCC_PLL1DIVR REG32(RCC_BASE + 0x030u)
#define RCC_D2CCIP2R REG32(RCC_BASE + 0x054u)
#define RCC_D2CCIP2R_USBSEL_SHIFT 20u
#define RCC_D2CCIP2R_USBSEL_HSI48 3u
#define RCC_BDCR REG32(RCC_BASE + 0x070u)
#define RCC_CSR REG32(RCC_BASE + 0x074u)
#define RCC_CSR_LSION (1u << 0)
#define RCC_AHB1RSTR REG32(RCC_BASE + 0x080u)
#define RCC_GCR REG32(RCC_BASE + 0x0A0u)
#define RCC_GCR_BOOT_C2 (1u << 3)
#define RCC_C1_RSR REG32(RCC_BASE + 0x130u)
#define RCC_RSR_RMVF (1u << 16)
#define RCC_RSR_IWDG1RSTF (1u << 26)
#define RCC_C1_AHB1ENR REG32(RCC_BASE + 0x138u)
#define RCC_AHB1_USB2OTGFS (1u << 27)
#define RCC_C1_AHB2ENR REG32(RCC_BASE + 0x13Cu)
#define RCC_C1_AHB4ENR REG32(RCC_BASE + 0x140u)
#define RCC_AHB4_GPIOA (1u << 0)
#define RCC_AHB4_GPIOB (1u << 1)
#define RCC_AHB4_GPIOC (1u << 2)
#define RCC_AHB4_GPIOE (1u << 4)
#define RCC_AHB4_BKPRAM (1u << 28)
#define RCC_C1_APB1HENR REG32(RCC_BASE + 0x14Cu)
#define RCC_APB1H_CRS (1u << 1)
#define RCC_C1_APB4ENR REG32(RCC_BASE + 0x154u)
#define RCC_APB4_SYSCFG (1u << 1)
#define RCC_APB4_RTCAPB (1u << 16)

/* ---- PWR (0x5802_4800) ------------------------------------------------ */
#define PWR_BASE 0x58024800u
#define PWR_CR1 REG32(PWR_BASE + 0x00u)
#define PWR_CR1_DBP (1u << 8)
#define PWR_CSR1 REG32(PWR_BASE + 0x04u)
#define PWR_CSR1_ACTVOSRDY (1u << 13)
#define PWR_CR3 REG32(PWR_BASE + 0x0Cu)
#define PWR_CR3_BYPASS (1u << 0)
#define PWR_CR3_LDOEN (1u << 1)
#define PWR_CR3_SDEN (1u << 2)
#define PWR_CR3_USB33DEN (1u << 24)
#define PWR_CR3_USB33RDY (1u << 26)
#define PWR_D3CR REG32(PWR_BASE + 0x18u)
#define PWR_D3CR_VOS_SHIFT 14u
#define PWR_D3CR_VOSRDY (1u << 13)

/* ---- embedded flash (0x5200_2000), two banks --------------------------- */
#define FLASH_BASE 0x52002000u
#define FLASH_ACR REG32(FLASH_BASE + 0x000u)
#define FLASH_KEYR(b) REG32(FLASH_BASE + 0x004u + 0x100u * (b))
#define FLASH_OPTKEYR REG32(FLASH_BASE + 0x008u)
#define FLASH_CR(b) REG32(FLASH_BASE + 0x00Cu + 0x100u * (b))
#define FLASH_SR(b) REG32(FLASH_BASE + 0x010u + 0x100u * (b))
#define FLASH_CCR(b) REG32(FLASH_BASE + 0x014u + 0x100u * (b))
#define FLASH_OPTCR REG32(FLASH_BASE + 0x018u)
#define FLASH_OPTSR_CUR REG32(FLASH_BASE + 0x01Cu)
#define FLASH_OPTSR_PRG REG32(FLASH_BASE + 0x020u)
#define FLASH_OPTCCR REG32(FLASH_BASE + 0x024u)
#define FLASH_WPSN_CUR(b) REG32(FLASH_BASE + 0x038u + 0x100u * (b))
#define FLASH_WPSN_PRG(b) REG32(FLASH_BASE + 0x03Cu + 0x100u * (b))
#define FLASH_BOOT7_CUR REG32(FLASH_BASE + 0x040u)
#define FLASH_BOOT7_PRG REG32(FLASH_BASE + 0x044u)
#define FLASH_BOOT4_CUR REG32(FLASH_BASE + 0x048u)
#define FLASH_BOOT4_PRG REG32(FLASH_BASE + 0x04Cu)
#define FLASH_KEY1 0x45670123u
#define FLASH_KEY2 0xCDEF89ABu
#define FLASH_OPTKEY1 0x08192A3Bu
#define FLASH_OPTKEY2 0x4C5D6E7Fu
/* FLASH_CRx */
#define FLASH_CR_LOCK (1u << 0)
#define FLASH_CR_PG (1u << 1)
#define FLASH_CR_SER (1u << 2)
#define FLASH_CR_PSIZE_X64 (3u << 4)
#define FLASH_CR_FW (1u << 6)
#define FLASH_CR_START (1u << 7)
#define FLASH_CR_SNB_SHIFT 8u
#define FLASH_CR_SNB_MASK (7u << FLASH_CR_SNB_SHIFT)
/* FLASH_SRx / FLASH_CCRx */
#define FLASH_SR_BSY (1u << 0)
#define FLASH_SR_WBNE (1u << 1)
#define FLASH_SR_QW (1u << 2)
#define FLASH_SR_EOP (1u << 16)
#define FLASH_SR_WRPERR (1u << 17)
#define FLASH_SR_PGSERR (1u << 18)
#define FLASH_SR_STRBERR (1u << 19)
#define FLASH_SR_INCERR (1u << 21)
#define FLASH_SR_OPERR (1u << 22)
#define FLASH_SR_RDPERR (1u << 23)
#define FLASH_SR_RDSERR (1u << 24)
#define FLASH_SR_SNECCERR (1u << 25)
#define FLASH_SR_DBECCERR (1u << 26)
#define FLASH_SR_ERRORS (FLASH_SR_WRPERR | FLASH_SR_PGSERR | FLASH_SR_STRBERR | FLASH_SR_INCERR | \
                         FLASH_SR_OPERR | FLASH_SR_RDPERR | FLASH_SR_RDSERR)
#define FLASH_CCR_ALL 0x0FEF0000u
/* FLASH_OPTCR / OPTSR */
#define FLASH_OPTCR_OPTLOCK (1u << 0)
#define FLASH_OPTCR_OPTSTART (1u << 1)
#define FLASH_OPTSR_OPT_BUSY (1u << 0)
#define FLASH_OPTSR_BCM4 (1u << 22)
#define FLASH_OPTSR_BCM7 (1u << 23)
#define FLASH_OPTSR_OPTCHANGEERR (1u << 30)
#define FLASH_OPTSR_SWAP_BANK (1u << 31)
#define FLASH_OPTCCR_CLR_OPTCHANGEERR (1u << 30)

/* ---- GPIO (port x at 0x5802_0000 + 0x400 * x) --------------------------- */
#define GPIO_BASE(p) (0x58020000u + 0x400u * (p))
#define GPIO_MODER(p) REG32(GPIO_BASE(p) + 0x00u)
#define GPIO_OSPEEDR(p) REG32(GPIO_BASE(p) + 0x08u)
#define GPIO_PUPDR(p) REG32(GPIO_BASE(p) + 0x0Cu)
#define GPIO_IDR(p) REG32(GPIO_BASE(p) + 0x10u)
#define GPIO_BSRR(p) REG32(GPIO_BASE(p) + 0x18u)
#define GPIO_AFRL(p) REG32(GPIO_BASE(p) + 0x20u)
#define GPIO_AFRH(p) REG32(GPIO_BASE(p) + 0x24u)
enum { GPIOA = 0, GPIOB = 1, GPIOC = 2, GPIOD = 3, GPIOE = 4 };

/* ---- USB2 OTG FS (0x4008_0000), Synopsys DWC2 core ---------------------- */
#define OTG_BASE 0x40080000u
#define OTG_GOTGCTL REG32(OTG_BASE + 0x000u)
#define OTG_GAHBCFG REG32(OTG_BASE + 0x008u)
#define OTG_GUSBCFG REG32(OTG_BASE + 0x00Cu)
#define OTG_GRSTCTL REG32(OTG_BASE + 0x010u)
#define OTG_GINTSTS REG32(OTG_BASE + 0x014u)
#define OTG_GINTMSK REG32(OTG_BASE + 0x018u)
#define OTG_GRXSTSP REG32(OTG_BASE + 0x020u)
#define OTG_GRXFSIZ REG32(OTG_BASE + 0x024u)
#define OTG_DIEPTXF0 REG32(OTG_BASE + 0x028u)
#define OTG_GCCFG REG32(OTG_BASE + 0x038u)
#define OTG_DIEPTXF(n) REG32(OTG_BASE + 0x104u + 4u * ((n)-1u))
#define OTG_DCFG REG32(OTG_BASE + 0x800u)
#define OTG_DCTL REG32(OTG_BASE + 0x804u)
#define OTG_DIEPMSK REG32(OTG_BASE + 0x810u)
#define OTG_DOEPMSK REG32(OTG_BASE + 0x814u)
#define OTG_DAINT REG32(OTG_BASE + 0x818u)
#define OTG_DAINTMSK REG32(OTG_BASE + 0x81Cu)
#define OTG_DIEPCTL(n) REG32(OTG_BASE + 0x900u + 0x20u * (n))
#define OTG_DIEPINT(n) REG32(OTG_BASE + 0x908u + 0x20u * (n))
#define OTG_DIEPTSIZ(n) REG32(OTG_BASE + 0x910u + 0x20u * (n))
#define OTG_DTXFSTS(n) REG32(OTG_BASE + 0x918u + 0x20u * (n))
#define OTG_DOEPCTL(n) REG32(OTG_BASE + 0xB00u + 0x20u * (n))
#define OTG_DOEPINT(n) REG32(OTG_BASE + 0xB08u + 0x20u * (n))
#define OTG_DOEPTSIZ(n) REG32(OTG_BASE + 0xB10u + 0x20u * (n))
#define OTG_PCGCCTL REG32(OTG_BASE + 0xE00u)
#define OTG_FIFO(n) REG32(OTG_BASE + 0x1000u + 0x1000u * (n))
/* bits */
#define OTG_GAHBCFG_GINTMSK (1u << 0)
#define OTG_GUSBCFG_PHYSEL (1u << 6)
#define OTG_GUSBCFG_FDMOD (1u << 30)
#define OTG_GUSBCFG_TRDT(x) ((uint32_t)(x) << 10)
#define OTG_GRSTCTL_CSRST (1u << 0)
#define OTG_GRSTCTL_RXFFLSH (1u << 4)
#define OTG_GRSTCTL_TXFFLSH (1u << 5)
#define OTG_GRSTCTL_TXFNUM_ALL (0x10u << 6)
#define OTG_GRSTCTL_AHBIDL (1u << 31)
#define OTG_GINT_RXFLVL (1u << 4)
#define OTG_GINT_USBSUSP (1u << 11)
#define OTG_GINT_USBRST (1u << 12)
#define OTG_GINT_ENUMDNE (1u << 13)
#define OTG_GINT_IEPINT (1u << 18)
#define OTG_GINT_OEPINT (1u << 19)
#define OTG_GCCFG_PWRDWN (1u << 16)
#define OTG_GCCFG_VBDEN (1u << 21)
#define OTG_DCFG_DSPD_FS 3u
#define OTG_DCFG_DAD_SHIFT 4u
#define OTG_DCTL_SDIS (1u << 1)
#define OTG_DCTL_CGINAK (1u << 8)
#define OTG_DCTL_CGONAK (1u << 10)
#define OTG_EPCTL_USBAEP (1u << 15)
#define OTG_EPCTL_EPTYP_SHIFT 18u
#define OTG_EPCTL_STALL (1u << 21)
#define OTG_EPCTL_TXFNUM_SHIFT 22u
#define OTG_EPCTL_CNAK (1u << 26)
#define OTG_EPCTL_SNAK (1u << 27)
#define OTG_EPCTL_SD0PID (1u << 28)
#define OTG_EPCTL_EPDIS (1u << 30)
#define OTG_EPCTL_EPENA (1u << 31)
#define OTG_EPINT_XFRC (1u << 0)
#define OTG_EPINT_STUP (1u << 3)
#define OTG_TSIZ_PKTCNT_SHIFT 19u
#define OTG_DOEPTSIZ0_STUPCNT3 (3u << 29)
#define OTG_RXSTS_EPNUM(s) ((s)&0xFu)
#define OTG_RXSTS_BCNT(s) (((s) >> 4) & 0x7FFu)
#define OTG_RXSTS_PKTSTS(s) (((s) >> 17) & 0xFu)
#define OTG_PKTSTS_OUT_DATA 2u
#define OTG_PKTSTS_SETUP_DATA 6u
#define OTG_FS_IRQN 101u

/* ---- CRS (0x4000_8400): trims HSI48 on the USB start-of-frame ------------ */
#define CRS_BASE 0x40008400u
#define CRS_CR REG32(CRS_BASE + 0x00u)
#define CRS_CR_CEN (1u << 5)
#define CRS_CR_AUTOTRIMEN (1u << 6)
#define CRS_CFGR REG32(CRS_BASE + 0x04u)
#define CRS_CFGR_SYNCSRC_MASK (3u << 28)
/* SYNCSRC: 0 pin, 1 LSE, 2 USB1 (OTG_HS) SOF, 3 USB2 (OTG_FS) SOF. The port
 * drives USB2 OTG FS (0x4008_0000), so its SOF is source 3. */
#define CRS_CFGR_SYNCSRC_USB (3u << 28)

/* ---- IWDG1 (0x5800_4800) -------------------------------------------------- */
#define IWDG1_BASE 0x58004800u
#define IWDG_KR REG32(IWDG1_BASE + 0x00u)
#define IWDG_PR REG32(IWDG1_BASE + 0x04u)
#define IWDG_RLR REG32(IWDG1_BASE + 0x08u)
#define IWDG_SR REG32(IWDG1_BASE + 0x0Cu)
#define IWDG_KEY_START 0xCCCCu
#define IWDG_KEY_ACCESS 0x5555u
#define IWDG_KEY_REFRESH 0xAAAAu

/* ---- RTC backup registers (0x5800_4000): boot flags ----------------------- */
/* The H755's RTC has no TAMP block: BKP0R..BKP31R follow OR (0x4C) in the
 * RTC itself, from 0x50. */
#define RTC_BASE 0x58004000u
#define RTC_BKP0R REG32(RTC_BASE + 0x050u)

/* ---- SYSCFG (0x5800_0400) ---------------------------------------------------- */
#define SYSCFG_BASE 0x58000400u
#define SYSCFG_UR1 REG32(SYSCFG_BASE + 0x304u) /* BCM4/BCM7 as loaded (read-only) */
#define SYSCFG_UR1_BCM4 (1u << 0)
#define SYSCFG_UR1_BCM7 (1u << 16)

/* ---- unique device id, 96 bits ------------------------------------------------- */
#define UID_BASE 0x1FF1E800u

/* ---- Cortex-M7 system control block and friends -------------------------------- */
#define SCB_CPUID REG32(0xE000ED00u)
#define SCB_ICSR REG32(0xE000ED04u)
#define SCB_VTOR REG32(0xE000ED08u)
#define SCB_AIRCR REG32(0xE000ED0Cu)
#define SCB_AIRCR_SYSRESETREQ (0x05FA0000u | (1u << 2))
#define SCB_CCR REG32(0xE000ED14u)
#define SCB_CCR_DC (1u << 16)
#define SCB_CCR_IC (1u << 17)
#define SCB_SHCSR REG32(0xE000ED24u)
#define SCB_SHCSR_BUSFAULTENA (1u << 17)
#define SCB_CFSR REG32(0xE000ED28u)
#define SCB_CFSR_BUSFAULT_MASK 0x0000FF00u
#define SCB_BFAR REG32(0xE000ED38u)
#define SCB_CPACR REG32(0xE000ED88u)
#define SCB_ICIALLU REG32(0xE000EF50u)
#define SCB_DCIMVAC REG32(0xE000EF5Cu)
#define SCB_DCCIMVAC REG32(0xE000EF70u)
#define SYST_CSR REG32(0xE000E010u)
#define SYST_RVR REG32(0xE000E014u)
#define SYST_CVR REG32(0xE000E018u)
#define NVIC_ISER(n) REG32(0xE000E100u + 4u * (n))
#define NVIC_ICER(n) REG32(0xE000E180u + 4u * (n))
#define NVIC_ICPR(n) REG32(0xE000E280u + 4u * (n))
#define CPUID_PARTNO(id) (((id) >> 4) & 0xFFFu)
#define CPUID_PARTNO_M4 0xC24u
#define CPUID_PARTNO_M7 0xC27u

#if defined(__arm__)
static inline void dsb(void) { __asm__ volatile("dsb 0xF" ::: "memory"); }
static inline void isb(void) { __asm__ volatile("isb 0xF" ::: "memory"); }
static inline void sev(void) { __asm__ volatile("sev" ::: "memory"); }
#else /* host builds of the drivers (tests/firmware): barriers are no-ops */
static inline void dsb(void) {}
static inline void isb(void) {}
static inline void sev(void) {}
#endif

#endif
