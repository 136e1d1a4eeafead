/* What checking a signed image costs the bootloader on a Cortex-M7: SHA-256
 * over a 512 KiB payload (the hash the signature binds) and one ed25519
 * verification of the header's signature, on QEMU's mps2-an500, built with
 * the bootloader's flags. QEMU runs with -icount shift=0 (one instruction =
 * 1 ns of virtual time) and SysTick counts virtual time, so the figures are
 * instruction counts; bench/crypto.sh turns them into a table. */
#include <stdint.h>
#include <string.h>

#include "flboot/ed25519.h"
#include "flboot/sha256.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)
#define SCB_ICSR (*(volatile uint32_t *)0xE000ED04u)
#define SYSCLK_NS 40u /* mps2-an500: 25 MHz system clock */

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
void Reset_Handler(void);
void SysTick_Handler(void);
void Fault_Handler(void);

static volatile uint32_t wraps;
static uint8_t image[512 * 1024];

static uint32_t semihost(uint32_t op, const void *arg)
{
	register uint32_t r0 __asm__("r0") = op;
	register const void *r1 __asm__("r1") = arg;
	__asm__ volatile("bkpt 0xAB" : "+r"(r0) : "r"(r1) : "memory");
	return r0;
}

static void put(const char *s)
{
	semihost(0x04 /* SYS_WRITE0 */, s);
}

static void put_u64(uint64_t v)
{
	char b[24];
	int i = 23;

	b[i] = 0;
	do {
		b[--i] = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put(b + i);
}

static void finish(uint32_t code)
{
	uint32_t blk[2] = {0x20026u /* ADP_Stopped_ApplicationExit */, code};
	semihost(0x20 /* SYS_EXIT_EXTENDED */, blk);
	for (;;)
		;
}

void SysTick_Handler(void)
{
	wraps++;
}

void Fault_Handler(void)
{
	put("FAULT\n");
	finish(99);
}

/* Virtual nanoseconds since start (= instructions under -icount shift=0). */
static uint64_t now_ns(void)
{
	uint32_t w, v, pending;

	do {
		w = wraps;
		v = SYST_CVR;
		pending = SCB_ICSR & (1u << 26); /* wrapped, interrupt not taken yet */
	} while (w != wraps);
	if (pending && v > (1u << 23))
		w++;
	return ((uint64_t)w * (1u << 24) + ((1u << 24) - 1u - v)) * SYSCLK_NS;
}

static uint8_t hexval(char c)
{
	return (uint8_t)(c <= '9' ? c - '0' : c - 'a' + 10);
}

static void unhex(const char *h, uint8_t *out, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		out[i] = (uint8_t)(hexval(h[2 * i]) << 4 | hexval(h[2 * i + 1]));
}

int main(void)
{
	/* RFC 8032 test 3: a valid signature, so the whole verification runs */
	uint8_t pk[32], sig[64], msg[2] = {0xaf, 0x82}, digest[32];
	uint64_t t0, t1, t2;
	uint32_t x = 1;
	int ok, bad;

	unhex("fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", pk, 32);
	unhex("6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc659"
	      "4a7c15e9716ed28dc027beceea1ec40a",
	      sig, 64);
	for (uint32_t i = 0; i < sizeof image; i++) {
		x = x * 1103515245u + 12345u;
		image[i] = (uint8_t)(x >> 16);
	}
	SYST_RVR = (1u << 24) - 1u;
	SYST_CVR = 0;
	SYST_CSR = 7u; /* processor clock, interrupt, enable */
	while (SYST_CVR == 0)
		; /* the first tick loads RVR */
	t0 = now_ns();
	flboot_sha256(image, sizeof image, digest);
	t1 = now_ns();
	ok = flboot_ed25519_verify(sig, msg, sizeof msg, pk);
	t2 = now_ns();
	sig[40] ^= 1;
	bad = flboot_ed25519_verify(sig, msg, sizeof msg, pk);
	put("sha256_512k_insns ");
	put_u64(t1 - t0);
	put("\ned25519_verify_insns ");
	put_u64(t2 - t1);
	put("\nverify_ok ");
	put(ok == 0 && bad != 0 ? "1" : "0");
	put("\n");
	finish(ok == 0 && bad != 0 ? 0 : 1);
	return 0;
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

typedef void (*vector)(void);
__attribute__((section(".isr_vector"), used)) static const vector vectors[16] = {
	(vector)(uintptr_t)&_estack,
	Reset_Handler,
	Fault_Handler,
	Fault_Handler,
	Fault_Handler,
	Fault_Handler,
	Fault_Handler,
	0, 0, 0, 0,
	Fault_Handler,
	Fault_Handler,
	0,
	Fault_Handler,
	SysTick_Handler,
};
