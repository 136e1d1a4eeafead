/*
 * The STM32H755 flash driver's sequences (firmware/port/stm32h755/flash.c,
 * built with H7_HOST_MODEL) against a register model of the two banks as
 * RM0399 describes them: KEYR unlock sequence, CR ignored while locked,
 * 8 x 32-bit writes fill the write buffer (WBNE) and start programming
 * (QW/BSY), sector erase with SER/SNB/START, error flags cleared by CCR.
 * Time is model time: each SR read advances it by 10 us.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "flboot/layout.h"
#include "h7.h"
#include "h7_io.h"
#include "regs.h"

#define A(reg) ((uintptr_t) & (reg))

static struct {
	uint32_t cr[2], sr[2];
	int key_step[2];
	uint64_t now_us;
	uint64_t busy_until[2];
	int op[2]; /* 0 none, 1 erase, 2 program */
	uint32_t op_sector[2];
	uint32_t buf_n[2];
	uint32_t inject_err[2]; /* SR error bits at the end of the next operation */
	bool drop_write;        /* lose the 5th data write (WBNE stays) */
	bool never_done;        /* BSY never clears */
	uint32_t fw_writes;
	uint8_t mem[FLBOOT_FLASH_SIZE];
} m;

static void finish(uint32_t b)
{
	if (m.op[b] == 0 || m.never_done || m.now_us < m.busy_until[b])
		return;
	if (m.op[b] == 1)
		memset(m.mem + m.op_sector[b] * FLBOOT_SECTOR_SIZE, 0xFF, FLBOOT_SECTOR_SIZE);
	m.sr[b] &= ~(FLASH_SR_BSY | FLASH_SR_QW);
	m.sr[b] |= FLASH_SR_EOP | m.inject_err[b];
	m.inject_err[b] = 0;
	m.op[b] = 0;
}

uint32_t h7_io_ms(void)
{
	return (uint32_t)(m.now_us / 1000u);
}

uint32_t h7_io_rd(uintptr_t a)
{
	for (uint32_t b = 0; b < 2; b++) {
		if (a == A(FLASH_SR(b))) {
			m.now_us += 10;
			finish(b);
			return m.sr[b];
		}
		if (a == A(FLASH_CR(b)))
			return m.cr[b];
	}
	return 0; /* SCB_CCR: D-cache off */
}

void h7_io_wr(uintptr_t a, uint32_t v)
{
	for (uint32_t b = 0; b < 2; b++) {
		if (a == A(FLASH_KEYR(b))) {
			if (m.key_step[b] == 0 && v == FLASH_KEY1) {
				m.key_step[b] = 1;
			} else if (m.key_step[b] == 1 && v == FLASH_KEY2) {
				m.cr[b] &= ~FLASH_CR_LOCK;
				m.key_step[b] = 0;
			} else {
				m.key_step[b] = -1; /* wrong sequence: locked until reset */
			}
			return;
		}
		if (a == A(FLASH_CCR(b))) {
			m.sr[b] &= ~(v & FLASH_CCR_ALL);
			return;
		}
		if (a == A(FLASH_CR(b))) {
			if (m.cr[b] & FLASH_CR_LOCK)
				return; /* ignored while locked */
			if ((v & FLASH_CR_START) && (v & FLASH_CR_SER)) {
				m.op[b] = 1;
				m.op_sector[b] = b * 8u + ((v >> FLASH_CR_SNB_SHIFT) & 7u);
				m.sr[b] |= FLASH_SR_BSY | FLASH_SR_QW;
				m.busy_until[b] = m.now_us + 1800000u; /* ~1.8 s per sector */
			}
			if ((v & FLASH_CR_FW) && (m.sr[b] & FLASH_SR_WBNE)) {
				m.fw_writes++;
				m.sr[b] &= ~FLASH_SR_WBNE;
				m.buf_n[b] = 0;
			}
			m.cr[b] = v & ~(FLASH_CR_START | FLASH_CR_FW);
			return;
		}
	}
	if (a >= FLBOOT_FLASH_BASE && a < FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE) {
		uint32_t b = (uint32_t)(a - FLBOOT_FLASH_BASE) / FLBOOT_BANK_SIZE;
		cr_assert(m.cr[b] & FLASH_CR_PG, "flash write without PG");
		if (m.drop_write && m.buf_n[b] == 4) {
			m.drop_write = false;
			m.sr[b] |= FLASH_SR_WBNE;
			return;
		}
		memcpy(m.mem + (a - FLBOOT_FLASH_BASE), &v, 4);
		m.sr[b] |= FLASH_SR_WBNE;
		if (++m.buf_n[b] == 8) {
			m.buf_n[b] = 0;
			m.sr[b] = (m.sr[b] & ~FLASH_SR_WBNE) | FLASH_SR_QW | FLASH_SR_BSY;
			m.op[b] = 2;
			m.busy_until[b] = m.now_us + 20u;
		}
	}
}

static void reset_model(void)
{
	memset(&m, 0, sizeof(m));
	memset(m.mem, 0xFF, sizeof(m.mem));
	m.cr[0] = m.cr[1] = FLASH_CR_LOCK;
}

static uint8_t word[32];

TestSuite(flash, .init = reset_model);

Test(flash, program_unlocks_writes_one_word_and_locks_again)
{
	for (int i = 0; i < 32; i++)
		word[i] = (uint8_t)(i * 7);
	cr_assert_eq(h7_flash_program(0x08020040u, word), 0);
	cr_assert_arr_eq(m.mem + 0x20040, word, 32);
	cr_assert(m.cr[0] & FLASH_CR_LOCK, "bank locked again");
	cr_assert_not(m.cr[0] & FLASH_CR_PG, "PG cleared");
	cr_assert_eq(m.sr[0] & (FLASH_SR_QW | FLASH_SR_BSY | FLASH_SR_WBNE), 0);
	cr_assert_eq(h7_flash_program(0x08120000u, word), 0, "bank 2 through its own registers");
	cr_assert_arr_eq(m.mem + 0x120000, word, 32);
	cr_assert_eq(h7_flash_program(0x08000000u, word), FLBOOT_E_FLASH, "bootloader sector refused");
	cr_assert_eq(h7_flash_program(0x08020010u, word), FLBOOT_E_FLASH, "unaligned refused");
}

Test(flash, erase_waits_for_the_sector_and_reports_errors)
{
	memset(m.mem + 3 * FLBOOT_SECTOR_SIZE, 0, FLBOOT_SECTOR_SIZE);
	cr_assert_eq(h7_flash_erase(3), 0);
	cr_assert_eq(m.mem[3 * FLBOOT_SECTOR_SIZE + 100], 0xFF);
	cr_assert_geq(m.now_us, 1800000u, "waited for the erase");
	cr_assert(m.cr[0] & FLASH_CR_LOCK);
	cr_assert_eq(m.cr[0] & (FLASH_CR_SER | FLASH_CR_SNB_MASK), 0);
	m.inject_err[1] = FLASH_SR_WRPERR;
	cr_assert_eq(h7_flash_erase(12), FLBOOT_E_FLASH, "WRPERR reported");
	cr_assert_eq(m.sr[1] & FLASH_SR_ERRORS, 0, "and cleared");
	cr_assert_eq(h7_flash_erase(12), 0, "the next erase is not failed by it");
	cr_assert_eq(h7_flash_erase(0), FLBOOT_E_FLASH, "bootloader sector refused");
}

Test(flash, stale_error_flags_do_not_fail_the_next_operation)
{
	m.sr[0] = FLASH_SR_PGSERR | FLASH_SR_OPERR | FLASH_SR_DBECCERR;
	cr_assert_eq(h7_flash_program(0x08040000u, word), 0);
	cr_assert_eq(m.sr[0] & (FLASH_SR_ERRORS | FLASH_SR_DBECCERR), 0);
}

Test(flash, stuck_write_buffer_is_bounded_and_flushed)
{
	m.drop_write = true;
	uint64_t t0 = m.now_us;
	cr_assert_eq(h7_flash_program(0x08040020u, word), FLBOOT_E_FLASH);
	cr_assert_geq(m.now_us - t0, H7_FLASH_PROGRAM_MS * 1000u, "waited its bound");
	cr_assert_lt(m.now_us - t0, 10u * H7_FLASH_PROGRAM_MS * 1000u, "and not much longer");
	cr_assert_eq(m.fw_writes, 1u, "FW forced the partial word out");
	cr_assert_eq(m.sr[0] & FLASH_SR_WBNE, 0);
	cr_assert_eq(h7_flash_program(0x08040040u, word), 0, "bank usable again");
}

Test(flash, an_erase_that_never_ends_times_out)
{
	m.never_done = true;
	cr_assert_eq(h7_flash_erase(5), FLBOOT_E_FLASH);
	cr_assert_geq(h7_io_ms(), H7_FLASH_ERASE_MS);
	cr_assert_lt(h7_io_ms(), 2u * H7_FLASH_ERASE_MS + 100u);
}

Test(flash, the_two_banks_erase_at_the_same_time)
{
	cr_assert_eq(h7_flash_erase_start(2), 0);
	cr_assert_eq(h7_flash_erase_start(10), 0);
	cr_assert(m.sr[0] & FLASH_SR_BSY);
	cr_assert(m.sr[1] & FLASH_SR_BSY, "both banks busy at once");
	cr_assert_eq(h7_flash_wait(0, false), 1, "still busy");
	cr_assert_eq(h7_flash_wait(0, true), 0);
	cr_assert_eq(h7_flash_wait(1, true), 0);
	cr_assert_lt(m.now_us, 2u * 1800000u, "overlapped, not one after the other");
	/* A program on a bank with an erase in flight waits for it first. */
	m.inject_err[0] = FLASH_SR_OPERR;
	cr_assert_eq(h7_flash_erase_start(4), 0);
	cr_assert_eq(h7_flash_program(0x08080000u, word), 0);
	cr_assert_eq(h7_flash_wait(0, false), FLBOOT_E_FLASH, "the erase's own result is kept");
}

Test(flash, a_failed_unlock_is_an_error)
{
	m.key_step[0] = -1; /* a wrong key earlier: locked until reset */
	cr_assert_eq(h7_flash_program(0x08040000u, word), FLBOOT_E_FLASH);
	cr_assert_eq(m.mem[0x40000], 0xFF);
}
