/*
 * qemu-mps2/main.c - the bootloader core on an emulated Cortex-M7.
 *
 * QEMU's mps2-an500 has no STM32 peripherals, so this port keeps what can be
 * emulated faithfully and models the rest:
 *   - the core's object code is the same cross-compiled code as on the chip
 *     (same CPU flags), running on a real Cortex-M7 model;
 *   - transport = CMSDK UART0 (0x40004000), which QEMU connects to a Unix
 *     socket the host library opens as `unix:PATH`;
 *   - flash = 2 MiB of RAM with the H7's geometry and rules (erased 0xFF,
 *     a 32-byte word programmed once per erase, a second program leaves it
 *     with a double ECC error that reads report as FLBOOT_E_ECC);
 *   - reset = re-initialise the core from a zeroed struct in-process; the
 *     flash model and the boot flags (backup SRAM on the chip) survive it;
 *   - the application is simulated after the "jump", as flasher-devsim
 *     does: the core's app agent answers on the UART and confirms a trial
 *     boot after APP_CONFIRM_MS; an unconfirmed trial is reset by the
 *     modelled watchdog.
 * Progress lines go to the host through semihosting (QEMU's stdout), for
 * the test to check; they are not part of the protocol.
 */
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "flboot/flboot.h"
#include "flboot/layout.h"

#define APP_CONFIRM_MS 200u
#define CORE_CLOCK_HZ 25000000u /* mps2-an500 SYSCLK as QEMU models it */

/* ---- CMSDK UART0 --------------------------------------------------------- */
#define UART0_BASE 0x40004000u
#define UART_REG(o) (*(volatile uint32_t *)(UART0_BASE + (o)))
#define UART_DATA UART_REG(0x00)
#define UART_STATE UART_REG(0x04) /* bit0 TX full, bit1 RX full */
#define UART_CTRL UART_REG(0x08)  /* bit0 TX en, bit1 RX en, bit3 RX irq en */
#define UART_INTSTATUS UART_REG(0x0C)
#define UART_BAUDDIV UART_REG(0x10)
#define UART0_RX_IRQ 0u

/* ---- Cortex-M system registers ------------------------------------------- */
#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define NVIC_ISER0 (*(volatile uint32_t *)0xE000E100u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void Reset_Handler(void);
void SysTick_Handler(void);
void Uart0Rx_Handler(void);
void Fault_Handler(void);
int main(void);

/* ---- semihosting ------------------------------------------------------------ */
static uint32_t semihost(uint32_t op, const void *arg)
{
	register uint32_t r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;
	__asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
	return r0;
}

static void log_str(const char *s)
{
	semihost(0x04 /* SYS_WRITE0 */, s);
}

/* Small formatter: the qemu image does without printf. */
typedef struct line {
	char buf[160];
	uint32_t len;
} line;

static void l_str(line *l, const char *s)
{
	while (*s && l->len < sizeof(l->buf) - 2)
		l->buf[l->len++] = *s++;
}

static void l_dec(line *l, uint32_t v)
{
	char tmp[11];
	int n = 0;
	do {
		tmp[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v);
	while (n && l->len < sizeof(l->buf) - 2)
		l->buf[l->len++] = tmp[--n];
}

static void l_ver(line *l, uint32_t v)
{
	l_dec(l, FLBOOT_VERSION_MAJOR(v));
	l_str(l, ".");
	l_dec(l, FLBOOT_VERSION_MINOR(v));
	l_str(l, ".");
	l_dec(l, FLBOOT_VERSION_PATCH(v));
}

static void l_end(line *l)
{
	l->buf[l->len++] = '\n';
	l->buf[l->len] = 0;
	log_str(l->buf);
}

/* ---- options from the host: -semihosting-config arg=... ------------------- */
/* no-confirm=X.Y.Z  the simulated app does not confirm a trial of CM7 X.Y.Z
 *                   (the trial watchdog resets it; the core rolls back)
 * cut-at=N          power cut at flash operation N (counted from power-on):
 *                   the operation is torn, RAM and boot flags are lost, the
 *                   flash model keeps what the cut left */
static uint32_t opt_no_confirm;
static uint32_t opt_cut_at;
static bool power_cut;

static uint32_t parse_u32(const char **p)
{
	uint32_t v = 0;
	while (**p >= '0' && **p <= '9')
		v = v * 10u + (uint32_t)(*(*p)++ - '0');
	return v;
}

static bool starts(const char *s, const char *prefix)
{
	while (*prefix)
		if (*s++ != *prefix++)
			return false;
	return true;
}

static void read_options(void)
{
	static char cmdline[256];
	uint32_t blk[2] = {(uint32_t)(uintptr_t)cmdline, sizeof(cmdline)};
	if (semihost(0x15 /* SYS_GET_CMDLINE */, blk) != 0)
		return;
	for (const char *p = cmdline; *p;) {
		if (starts(p, "no-confirm=")) {
			p += 11;
			uint32_t maj = parse_u32(&p);
			p += *p == '.';
			uint32_t min = parse_u32(&p);
			p += *p == '.';
			uint32_t pat = parse_u32(&p);
			opt_no_confirm = FLBOOT_VERSION(maj, min, pat);
		} else if (starts(p, "cut-at=")) {
			p += 7;
			opt_cut_at = parse_u32(&p);
		} else {
			p++;
		}
	}
}

/* ---- time -------------------------------------------------------------------- */
static volatile uint32_t ticks_ms;

void SysTick_Handler(void)
{
	ticks_ms++;
}

void Uart0Rx_Handler(void)
{
	UART_INTSTATUS = 2u; /* only wakes the idle loop; the data stays in DATA */
}

/* ---- the flash model ----------------------------------------------------------- */
enum { WORD_ERASED = 0, WORD_PROGRAMMED = 1, WORD_CORRUPT = 2 };
#define N_WORDS (FLBOOT_FLASH_SIZE / FLBOOT_FLASH_WORD)

static uint8_t flash_mem[FLBOOT_FLASH_SIZE] __attribute__((section(".flashmodel"), aligned(32)));
static uint8_t word_state[N_WORDS];
static uint32_t boot_flags; /* backup SRAM: survives a reset, not a power cut */
static uint32_t flash_ops;

static bool in_flash(uint32_t addr, uint32_t len)
{
	return addr >= FLBOOT_FLASH_BASE && len <= FLBOOT_FLASH_SIZE &&
	       addr - FLBOOT_FLASH_BASE <= FLBOOT_FLASH_SIZE - len;
}

static int q_flash_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
	(void)ctx;
	if (!in_flash(addr, len))
		return FLBOOT_E_RANGE;
	if (len == 0)
		return 0;
	uint32_t off = addr - FLBOOT_FLASH_BASE;
	for (uint32_t w = off / FLBOOT_FLASH_WORD; w <= (off + len - 1u) / FLBOOT_FLASH_WORD; w++)
		if (word_state[w] == WORD_CORRUPT)
			return FLBOOT_E_ECC;
	memcpy(buf, &flash_mem[off], len);
	return 0;
}

/* An armed power cut strikes at this operation: true when it does (the
 * caller tears the operation) and from then on the flash is unpowered. */
static bool cut_now(void)
{
	if (power_cut)
		return true;
	if (opt_cut_at && flash_ops == opt_cut_at) {
		power_cut = true;
		opt_cut_at = 0;
		log_str("qemu: power cut\n");
		return true;
	}
	return false;
}

static int q_flash_erase(void *ctx, uint32_t sector)
{
	(void)ctx;
	if (sector >= FLBOOT_SECTOR_COUNT)
		return FLBOOT_E_FLASH;
	if (power_cut)
		return FLBOOT_E_FLASH;
	flash_ops++;
	if (cut_now()) {
		/* Torn erase: the first half erased, one word in the middle broken. */
		uint32_t w0 = sector * (FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD);
		memset(&flash_mem[sector * FLBOOT_SECTOR_SIZE], 0xFF, FLBOOT_SECTOR_SIZE / 2u);
		memset(&word_state[w0], WORD_ERASED, FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD / 2u);
		word_state[w0 + FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD / 2u] = WORD_CORRUPT;
		return FLBOOT_E_FLASH;
	}
	memset(&flash_mem[sector * FLBOOT_SECTOR_SIZE], 0xFF, FLBOOT_SECTOR_SIZE);
	memset(&word_state[sector * (FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD)], WORD_ERASED,
	       FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD);
	return 0;
}

static int q_flash_program(void *ctx, uint32_t addr, const uint8_t word[32])
{
	(void)ctx;
	if (!in_flash(addr, FLBOOT_FLASH_WORD) || (addr % FLBOOT_FLASH_WORD) != 0)
		return FLBOOT_E_FLASH;
	if (power_cut)
		return FLBOOT_E_FLASH;
	flash_ops++;
	uint32_t off = addr - FLBOOT_FLASH_BASE;
	uint32_t w = off / FLBOOT_FLASH_WORD;
	if (cut_now()) {
		/* Torn program: half the bits landed, the ECC does not match. */
		for (uint32_t i = 0; i < FLBOOT_FLASH_WORD / 2u; i++)
			flash_mem[off + i] = word[i];
		word_state[w] = WORD_CORRUPT;
		return FLBOOT_E_FLASH;
	}
	if (word_state[w] != WORD_ERASED) {
		/* As on the chip: the second program breaks the word's ECC. */
		word_state[w] = WORD_CORRUPT;
		return FLBOOT_E_FLASH;
	}
	memcpy(&flash_mem[off], word, FLBOOT_FLASH_WORD);
	word_state[w] = WORD_PROGRAMMED;
	return 0;
}

/* ---- transport: CMSDK UART --------------------------------------------------- */
static uint32_t idle_polls;

static uint32_t q_transport_read(void *ctx, uint8_t *buf, uint32_t cap)
{
	(void)ctx;
	uint32_t n = 0;
	while (n < cap && (UART_STATE & 2u))
		buf[n++] = (uint8_t)UART_DATA;
	if (n)
		idle_polls = 0;
	else
		idle_polls++;
	return n;
}

static void q_transport_write(void *ctx, const uint8_t *buf, uint32_t len)
{
	(void)ctx;
	if (power_cut) /* an unpowered unit answers nothing */
		return;
	for (uint32_t i = 0; i < len; i++) {
		while (UART_STATE & 1u)
			;
		UART_DATA = buf[i];
	}
}

/* ---- time, reset, boot flags, identity -------------------------------------------- */
static bool reset_requested;
static bool watchdog_armed;
static uint32_t watchdog_deadline;

static uint32_t q_millis(void *ctx)
{
	(void)ctx;
	return ticks_ms;
}

static void q_reset(void *ctx)
{
	(void)ctx;
	reset_requested = true;
}

static bool must_reset(void)
{
	return reset_requested || power_cut;
}

static uint32_t q_boot_flags_get(void *ctx)
{
	(void)ctx;
	return boot_flags;
}

static void q_boot_flags_set(void *ctx, uint32_t flags)
{
	(void)ctx;
	boot_flags = flags;
}

static void q_watchdog_start(void *ctx, uint32_t timeout_ms)
{
	(void)ctx;
	watchdog_armed = true;
	watchdog_deadline = ticks_ms + timeout_ms;
}

static void q_watchdog_kick(void *ctx)
{
	(void)ctx;
	/* The trial watchdog models the app failing to confirm: kicks by the
	 * bootloader do not extend a trial (the IWDG is not stopped either). */
}

static const uint8_t qemu_uid[FLBOOT_UID_SIZE] = {0x51, 0x45, 0x4d, 0x55, 0x00, 0x37,
                                                  0x48, 0x37, 0x35, 0x35, 0x00, 0x01};

static void q_identity(void *ctx, flboot_identity *out)
{
	static const char hex[] = "0123456789ABCDEF";
	(void)ctx;
	memset(out, 0, sizeof(*out));
	memcpy(out->uid, qemu_uid, sizeof(out->uid));
	for (uint32_t i = 0; i < FLBOOT_UID_SIZE; i++) {
		out->serial[2 * i] = hex[qemu_uid[i] >> 4];
		out->serial[2 * i + 1] = hex[qemu_uid[i] & 15u];
	}
	memcpy(out->product, "demo", 5);
	memcpy(out->hw_rev, "A", 2);
	out->bootloader_version = FLBOOT_VERSION(1, 0, 0);
}

static const flboot_port qemu_port = {
	.ctx = 0,
	.flash_read = q_flash_read,
	.flash_erase = q_flash_erase,
	.flash_program = q_flash_program,
	.transport_read = q_transport_read,
	.transport_write = q_transport_write,
	.millis = q_millis,
	.reset = q_reset,
	.boot_flags_get = q_boot_flags_get,
	.boot_flags_set = q_boot_flags_set,
	.enter_pin = 0,
	.watchdog_start = q_watchdog_start,
	.watchdog_kick = q_watchdog_kick,
	.identity = q_identity,
};

/* ---- main loop ------------------------------------------------------------------ */
static flboot bl;

/* Sleep until a byte or the next tick, without losing a byte that arrived
 * between the check and the sleep (WFI wakes on a pending IRQ even when
 * PRIMASK masks it). */
static void idle(void)
{
	if (idle_polls < 64u)
		return;
	__asm__ volatile("cpsid i" ::: "memory");
	if (!(UART_STATE & 2u))
		__asm__ volatile("wfi");
	__asm__ volatile("cpsie i" ::: "memory");
}

static void run_app(const flboot_boot_target *t)
{
	line l = {{0}, 0};
	l_str(&l, "qemu: app running cm7 ");
	l_ver(&l, t->cm7_version);
	l_str(&l, t->cm4_entry ? " cm4 " : " cm4 held");
	if (t->cm4_entry)
		l_ver(&l, t->cm4_version);
	l_str(&l, t->trial ? " trial" : " confirmed");
	l_end(&l);

	if (t->trial) /* as the chip port does: a trial runs under the IWDG */
		q_watchdog_start(0, FLBOOT_TRIAL_WATCHDOG_MS);
	flboot_app_init(&bl, &qemu_port);
	uint32_t start = ticks_ms;
	bool confirmed = !t->trial;
	while (!must_reset()) {
		flboot_app_poll(&bl);
		if (!confirmed && ticks_ms - start >= APP_CONFIRM_MS && t->cm7_version != opt_no_confirm) {
			int rc = flboot_app_confirm(&qemu_port);
			l.len = 0;
			l_str(&l, rc == 0 ? "qemu: app confirmed cm7 " : "qemu: app confirm failed cm7 ");
			l_ver(&l, t->cm7_version);
			l_end(&l);
			confirmed = true;
			watchdog_armed = false; /* the app stops feeding a trial watchdog once it is sure */
		}
		if (watchdog_armed && (int32_t)(ticks_ms - watchdog_deadline) >= 0) {
			log_str("qemu: trial watchdog reset\n");
			reset_requested = true;
		}
		idle();
	}
}

int main(void)
{
	UART_BAUDDIV = 16u;
	UART_CTRL = 0x0Bu; /* TX, RX, RX interrupt (wakes WFI) */
	NVIC_ISER0 = 1u << UART0_RX_IRQ;
	SYST_RVR = CORE_CLOCK_HZ / 1000u - 1u;
	SYST_CVR = 0;
	SYST_CSR = 7u; /* processor clock, interrupt, enable */

	/* Power-on: the flash is blank apart from what the port puts there. */
	memset(flash_mem, 0xFF, sizeof(flash_mem));
	memset(word_state, WORD_ERASED, sizeof(word_state));
	boot_flags = 0;
	read_options();
	log_str("qemu: flboot on cortex-m7 (mps2-an500), flash model 2 MiB\n");

	for (uint32_t boot = 1;; boot++) {
		line l = {{0}, 0};
		memset(&bl, 0, sizeof(bl)); /* nothing in RAM survives a reset */
		reset_requested = false;
		watchdog_armed = false;
		flboot_init(&bl, &qemu_port);
		flboot_boot_target target;
		memset(&target, 0, sizeof(target));
		int r = flboot_boot(&bl, &target);
		l_str(&l, "qemu: boot ");
		l_dec(&l, boot);
		l_str(&l, r == FLBOOT_BOOT_APP ? ": application" : ": bootloader");
		l_str(&l, " (flash ops ");
		l_dec(&l, flash_ops);
		l_str(&l, ")");
		l_end(&l);
		if (r == FLBOOT_BOOT_APP) {
			run_app(&target);
		} else {
			while (!must_reset()) {
				flboot_poll(&bl);
				idle();
			}
		}
		if (power_cut) {
			/* Power back on: RAM and backup registers are gone, flash stays. */
			power_cut = false;
			boot_flags = 0;
			log_str("qemu: power on\n");
		} else {
			log_str("qemu: reset\n");
		}
	}
}

/* ---- startup ---------------------------------------------------------------- */
void Fault_Handler(void)
{
	log_str("qemu: FAULT\n");
	uint32_t blk[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, 99u};
	semihost(0x20 /* SYS_EXIT_EXTENDED */, blk);
	for (;;)
		;
}

void Reset_Handler(void)
{
	uint32_t *src = &_sidata;
	for (uint32_t *dst = &_sdata; dst < &_edata;)
		*dst++ = *src++;
	for (uint32_t *dst = &_sbss; dst < &_ebss;)
		*dst++ = 0;
	SCB_CPACR |= 0xFu << 20; /* FPU on: the code is built for the hard-float ABI */
	__asm__ volatile("dsb\n\tisb" ::: "memory");
	main();
	for (;;)
		;
}

typedef void (*vector)(void);
__attribute__((section(".isr_vector"), used)) static const vector vectors[16 + 1] = {
	(vector)(uintptr_t)&_estack,
	Reset_Handler,
	Fault_Handler, /* NMI */
	Fault_Handler, /* HardFault */
	Fault_Handler, /* MemManage */
	Fault_Handler, /* BusFault */
	Fault_Handler, /* UsageFault */
	0, 0, 0, 0,
	Fault_Handler, /* SVC */
	Fault_Handler, /* DebugMon */
	0,
	Fault_Handler, /* PendSV */
	SysTick_Handler,
	Uart0Rx_Handler, /* IRQ0: UART0 RX */
};
