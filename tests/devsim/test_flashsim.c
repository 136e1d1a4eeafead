/* Tests of the STM32H755 flash model used by flasher-devsim and the sweeps. */
#include <criterion/criterion.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flashsim.h"

#define SEC_ADDR(s) FLBOOT_SECTOR_ADDR(s)

static void fill_word(uint8_t w[32], uint8_t v)
{
	for (int i = 0; i < 32; i++)
		w[i] = (uint8_t)(v + i);
}

static char *tmp_path(void)
{
	static char path[64];
	snprintf(path, sizeof(path), "/tmp/flashsim-test-XXXXXX");
	int fd = mkstemp(path);
	cr_assert(fd >= 0);
	close(fd);
	unlink(path); /* flashsim creates it */
	return path;
}

Test(flashsim, fresh_flash_reads_erased)
{
	flashsim *fs;
	uint8_t buf[100];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(15) + FLBOOT_SECTOR_SIZE - 100, buf, 100), 0);
	for (int i = 0; i < 100; i++)
		cr_assert_eq(buf[i], 0xFF);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(3)), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_ops(fs), 0);
	flashsim_close(fs);
}

Test(flashsim, program_once_then_read_back)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x10);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(2) + 64, w), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(2) + 64, r, 32), 0);
	cr_assert_arr_eq(r, w, 32);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(2) + 64), FLASHSIM_WORD_PROGRAMMED);
	/* an unaligned read across the word boundary works */
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(2) + 90, r, 10), 0);
	cr_assert_eq(r[0], w[26]);
	cr_assert_eq(r[6], 0xFF);
	flashsim_close(fs);
}

Test(flashsim, second_program_fails_and_corrupts_ecc)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x80);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(5), w), 0);
	/* even clearing bits only (1 -> 0) is a second program */
	memset(w, 0, sizeof(w));
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(5), w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(5)), FLASHSIM_WORD_CORRUPT);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(5) + 31, r, 1), FLBOOT_E_ECC);
	/* a range that only touches the neighbour word reads fine */
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(5) + 32, r, 32), 0);
	/* reading across the corrupt word fails */
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(5) - 4, r, 8), FLBOOT_E_ECC);
	flashsim_stats st;
	flashsim_get_stats(fs, &st);
	cr_assert_eq(st.programs, 2);
	cr_assert_eq(st.ecc_reads, 2);
	flashsim_close(fs);
}

Test(flashsim, erase_clears_sector_only)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 1);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(4), w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(4) + FLBOOT_SECTOR_SIZE - 32, w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(5), w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(4), w), FLBOOT_E_FLASH); /* corrupt it */
	cr_assert_eq(flashsim_erase(fs, 4), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(4), r, 32), 0);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(r[i], 0xFF);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(4) + FLBOOT_SECTOR_SIZE - 32), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(5), r, 32), 0);
	cr_assert_arr_eq(r, w, 32);
	/* programmable again after erase */
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(4), w), 0);
	cr_assert_eq(flashsim_ops(fs), 6);
	flashsim_close(fs);
}

Test(flashsim, rejects_unaligned_and_out_of_range)
{
	flashsim *fs;
	uint8_t w[32] = { 0 }, r[4];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1) + 16, w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_program(fs, FLBOOT_FLASH_BASE - 32, w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_program(fs, FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE, w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_erase(fs, FLBOOT_SECTOR_COUNT), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_read(fs, FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE - 2, r, 4), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_read(fs, 0, r, 4), FLBOOT_E_FLASH);
	/* the misaligned program touched nothing */
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(1)), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(1) + 32), FLASHSIM_WORD_ERASED);
	flashsim_close(fs);
}

Test(flashsim, write_protect_refuses_sector)
{
	flashsim *fs;
	uint8_t w[32] = { 0 };

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	flashsim_set_protect(fs, 1u << 0);
	cr_assert_eq(flashsim_erase(fs, 0), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(0), w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(0)), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1), w), 0);
	flashsim_close(fs);
}

Test(flashsim, state_persists_through_close_open)
{
	char *path = tmp_path();
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, path), 0);
	fill_word(w, 0x42);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(9) + 0x200, w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(10), w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(10), w), FLBOOT_E_FLASH);
	flashsim_close(fs);

	cr_assert_eq(flashsim_open(&fs, path), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(9) + 0x200, r, 32), 0);
	cr_assert_arr_eq(r, w, 32);
	/* per-word state came back too: programmed stays write-once, corrupt stays corrupt */
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(9) + 0x200, w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(10), r, 32), FLBOOT_E_ECC);
	cr_assert_eq(flashsim_erase(fs, 10), 0);
	flashsim_close(fs);

	cr_assert_eq(flashsim_open(&fs, path), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(10), r, 32), 0);
	cr_assert_eq(r[0], 0xFF);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(9) + 0x200), FLASHSIM_WORD_CORRUPT);
	flashsim_close(fs);
	unlink(path);
}

/* "Kill = unplug": every operation is in the file the moment it returns,
 * even when the process dies without closing the flash. */
Test(flashsim, operations_reach_the_file_before_the_process_dies)
{
	char *path = tmp_path();
	uint8_t w[32], r[32], st;
	flashsim *fs;
	pid_t pid;
	int status, fd;

	fill_word(w, 0x5A);
	/* sector 4 programmed first, so the erase has something to clear */
	cr_assert_eq(flashsim_open(&fs, path), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(4), w), 0);
	flashsim_close(fs);
	pid = fork();
	cr_assert(pid >= 0);
	if (pid == 0) {
		if (flashsim_open(&fs, path) != 0 || flashsim_program(fs, SEC_ADDR(7) + 0x40, w) != 0 ||
		    flashsim_erase(fs, 4) != 0)
			_exit(1);
		raise(SIGKILL);
		_exit(2);
	}
	cr_assert_eq(waitpid(pid, &status, 0), pid);
	cr_assert(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL, "child status %d", status);

	/* the bytes themselves, read past the model */
	fd = open(path, O_RDONLY);
	cr_assert(fd >= 0);
	uint32_t off = SEC_ADDR(7) + 0x40 - FLBOOT_FLASH_BASE;
	cr_assert_eq(pread(fd, r, 32, FLASHSIM_FILE_HEADER + off), 32);
	cr_assert_arr_eq(r, w, 32);
	cr_assert_eq(pread(fd, &st, 1, FLASHSIM_FILE_HEADER + FLBOOT_FLASH_SIZE + off / 32), 1);
	cr_assert_eq(st, FLASHSIM_WORD_PROGRAMMED);
	off = SEC_ADDR(4) - FLBOOT_FLASH_BASE;
	cr_assert_eq(pread(fd, r, 32, FLASHSIM_FILE_HEADER + off), 32);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(r[i], 0xFF, "erased byte %d reads 0x%02x", i, r[i]);
	cr_assert_eq(pread(fd, &st, 1, FLASHSIM_FILE_HEADER + FLBOOT_FLASH_SIZE + off / 32), 1);
	cr_assert_eq(st, FLASHSIM_WORD_ERASED);
	close(fd);

	cr_assert_eq(flashsim_open(&fs, path), 0);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(7) + 0x40), FLASHSIM_WORD_PROGRAMMED);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(4), w), 0, "the erase did not persist");
	flashsim_close(fs);
	unlink(path);
}

Test(flashsim, refuses_foreign_file)
{
	char *path = tmp_path();
	FILE *f = fopen(path, "w");
	flashsim *fs = (flashsim *)1;

	cr_assert(f);
	fputs("not a flash", f);
	fclose(f);
	cr_assert_eq(flashsim_open(&fs, path), -EINVAL);
	cr_assert_null(fs);
	unlink(path);
}

/* Everything after a cut fails and changes nothing until power comes back. */
static void assert_unpowered(flashsim *fs)
{
	uint8_t w[32] = { 0 }, r[4];
	uint64_t ops = flashsim_ops(fs);

	cr_assert(flashsim_cut_happened(fs));
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(12), w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_erase(fs, 12), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(12), r, 4), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_ops(fs), ops);
	flashsim_power_on(fs);
	cr_assert_not(flashsim_cut_happened(fs));
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(12)), FLASHSIM_WORD_ERASED);
}

Test(flashsim_cut, program_before)
{
	flashsim *fs;
	uint8_t w[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 7);
	flashsim_arm_cut(fs, 2, FLASHSIM_CUT_BEFORE, 1);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1), w), 0);
	cr_assert_not(flashsim_cut_happened(fs));
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1) + 32, w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(1) + 32), FLASHSIM_WORD_ERASED);
	assert_unpowered(fs);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1) + 32, w), 0);
	flashsim_close(fs);
}

Test(flashsim_cut, program_during)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 7);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_DURING, 99);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1), w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(1)), FLASHSIM_WORD_CORRUPT);
	assert_unpowered(fs);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(1), r, 32), FLBOOT_E_ECC);
	flashsim_close(fs);
}

Test(flashsim_cut, program_after)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 7);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_AFTER, 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1), w), 0);
	assert_unpowered(fs);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(1), r, 32), 0);
	cr_assert_arr_eq(r, w, 32);
	flashsim_close(fs);
}

static void program_sector(flashsim *fs, uint32_t s, uint8_t v)
{
	uint8_t w[32];

	memset(w, v, sizeof(w));
	for (uint32_t a = 0; a < FLBOOT_SECTOR_SIZE; a += 32)
		cr_assert_eq(flashsim_program(fs, SEC_ADDR(s) + a, w), 0);
}

Test(flashsim_cut, erase_before)
{
	flashsim *fs;
	uint8_t r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	program_sector(fs, 6, 0x11);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_BEFORE, 0);
	cr_assert_eq(flashsim_erase(fs, 6), FLBOOT_E_FLASH);
	assert_unpowered(fs);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(6) + 4096, r, 32), 0);
	cr_assert_eq(r[0], 0x11);
	flashsim_close(fs);
}

Test(flashsim_cut, erase_during_leaves_seeded_mix)
{
	flashsim *fs, *fs2;
	unsigned counts[3] = { 0 };

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	cr_assert_eq(flashsim_open(&fs2, NULL), 0);
	program_sector(fs, 6, 0x11);
	program_sector(fs2, 6, 0x11);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_DURING, 1234);
	flashsim_arm_cut(fs2, 1, FLASHSIM_CUT_DURING, 1234);
	cr_assert_eq(flashsim_erase(fs, 6), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_erase(fs2, 6), FLBOOT_E_FLASH);
	assert_unpowered(fs);
	flashsim_power_on(fs2);
	for (uint32_t a = 0; a < FLBOOT_SECTOR_SIZE; a += 32) {
		int st = flashsim_word_state(fs, SEC_ADDR(6) + a);
		uint8_t r[32];
		cr_assert(st >= 0 && st <= 2);
		counts[st]++;
		/* same seed, same tear */
		cr_assert_eq(st, flashsim_word_state(fs2, SEC_ADDR(6) + a));
		if (st == FLASHSIM_WORD_ERASED) {
			cr_assert_eq(flashsim_read(fs, SEC_ADDR(6) + a, r, 32), 0);
			cr_assert_eq(r[31], 0xFF);
		} else if (st == FLASHSIM_WORD_PROGRAMMED) {
			cr_assert_eq(flashsim_read(fs, SEC_ADDR(6) + a, r, 32), 0);
			cr_assert_eq(r[31], 0x11);
		}
	}
	cr_assert_gt(counts[0], 0);
	cr_assert_gt(counts[1], 0);
	cr_assert_gt(counts[2], 0);
	/* the neighbour sectors are untouched */
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(5) + FLBOOT_SECTOR_SIZE - 32), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(7)), FLASHSIM_WORD_ERASED);
	/* a new erase repairs the sector */
	cr_assert_eq(flashsim_erase(fs, 6), 0);
	for (uint32_t a = 0; a < FLBOOT_SECTOR_SIZE; a += 32)
		cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(6) + a), FLASHSIM_WORD_ERASED);
	flashsim_close(fs);
	flashsim_close(fs2);
}

Test(flashsim_cut, erase_after)
{
	flashsim *fs;
	uint8_t r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	program_sector(fs, 6, 0x11);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_AFTER, 0);
	cr_assert_eq(flashsim_erase(fs, 6), 0);
	assert_unpowered(fs);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(6) + 4096, r, 32), 0);
	cr_assert_eq(r[0], 0xFF);
	flashsim_close(fs);
}

Test(flashsim_cut, counts_from_arming_and_disarms)
{
	flashsim *fs;
	uint8_t w[32] = { 0 };

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1), w), 0);
	flashsim_arm_cut(fs, 3, FLASHSIM_CUT_DURING, 5);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1) + 32, w), 0);
	cr_assert_eq(flashsim_erase(fs, 2), 0);
	cr_assert_not(flashsim_cut_happened(fs));
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(1) + 64, w), FLBOOT_E_FLASH);
	cr_assert(flashsim_cut_happened(fs));
	flashsim_power_on(fs);
	/* power_on drops the armed cut: no second cut later */
	for (uint32_t a = 96; a < 96 + 32 * 8; a += 32)
		cr_assert_eq(flashsim_program(fs, SEC_ADDR(1) + a, w), 0);
	cr_assert_not(flashsim_cut_happened(fs));
	flashsim_close(fs);
}

Test(flashsim_cut, persisted_tear_survives_restart)
{
	char *path = tmp_path();
	flashsim *fs;
	uint8_t w[32] = { 1 }, r[32];

	cr_assert_eq(flashsim_open(&fs, path), 0);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_DURING, 3);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(3), w), FLBOOT_E_FLASH);
	flashsim_close(fs);
	cr_assert_eq(flashsim_open(&fs, path), 0);
	cr_assert_not(flashsim_cut_happened(fs)); /* a new process is powered */
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(3), r, 32), FLBOOT_E_ECC);
	flashsim_close(fs);
	unlink(path);
}

Test(flashsim, snapshot_restore_roundtrip)
{
	char *path = tmp_path();
	flashsim *fs;
	void *snap;
	size_t len;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, path), 0);
	fill_word(w, 0x33);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(8), w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(8) + 32, w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(8) + 32, w), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_snapshot(fs, &snap, &len), 0);
	cr_assert_eq(len, FLASHSIM_STATE_BYTES);

	/* change everything the snapshot covers */
	cr_assert_eq(flashsim_erase(fs, 8), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(9), w), 0);
	cr_assert_eq(flashsim_restore(fs, snap, len), 0);

	cr_assert_eq(flashsim_read(fs, SEC_ADDR(8), r, 32), 0);
	cr_assert_arr_eq(r, w, 32);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(8) + 32), FLASHSIM_WORD_CORRUPT);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(9)), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(8), w), FLBOOT_E_FLASH); /* still programmed */
	flashsim_close(fs);

	/* the restore was written through */
	cr_assert_eq(flashsim_open(&fs, path), 0);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(9)), FLASHSIM_WORD_ERASED);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(8)), FLASHSIM_WORD_CORRUPT);
	cr_assert_eq(flashsim_restore(fs, snap, len - 1), -EINVAL);
	flashsim_close(fs);
	free(snap);
	unlink(path);
}

/* ---- counters ------------------------------------------------------------- */

Test(flashsim_stats, counts_erases_per_sector_programs_and_bank_busy_time)
{
	flashsim *fs;
	flashsim_stats st;
	uint8_t w[32] = { 0 };

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	flashsim_set_protect(fs, 1u << 0);
	cr_assert_eq(flashsim_erase(fs, 9), 0);
	cr_assert_eq(flashsim_erase(fs, 9), 0);
	cr_assert_eq(flashsim_erase(fs, 2), 0);
	cr_assert_eq(flashsim_erase(fs, 0), FLBOOT_E_FLASH);  /* protected: no erase */
	cr_assert_eq(flashsim_erase(fs, 16), FLBOOT_E_FLASH); /* no such sector */
	for (uint32_t a = 0; a < 3 * 32; a += 32)
		cr_assert_eq(flashsim_program(fs, SEC_ADDR(3) + a, w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(15), w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(3) + 1, w), FLBOOT_E_FLASH); /* unaligned */
	flashsim_get_stats(fs, &st);
	for (unsigned s = 0; s < FLBOOT_SECTOR_COUNT; s++)
		cr_assert_eq(st.sector_erases[s], s == 9 ? 2u : s == 2 ? 1u : 0u, "sector %u: %llu", s,
		             (unsigned long long)st.sector_erases[s]);
	cr_assert_eq(st.word_programs, 4);
	cr_assert_eq(st.bank_busy_us[0], FLASHSIM_ERASE_US + 3 * FLASHSIM_PROGRAM_US);
	cr_assert_eq(st.bank_busy_us[1], 2 * FLASHSIM_ERASE_US + FLASHSIM_PROGRAM_US);

	/* a cut before the operation costs nothing; a torn erase wears the sector */
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_BEFORE, 0);
	cr_assert_eq(flashsim_erase(fs, 4), FLBOOT_E_FLASH);
	flashsim_power_on(fs);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_DURING, 7);
	cr_assert_eq(flashsim_erase(fs, 5), FLBOOT_E_FLASH);
	flashsim_power_on(fs);
	flashsim_get_stats(fs, &st);
	cr_assert_eq(st.sector_erases[4], 0);
	cr_assert_eq(st.sector_erases[5], 1);
	cr_assert_eq(st.bank_busy_us[0], FLASHSIM_ERASE_US + FLASHSIM_ERASE_US / 2 + 3 * FLASHSIM_PROGRAM_US);
	flashsim_close(fs);
}

/* ---- background erases, one operation per bank -------------------------------- */

Test(flashsim_erase_start, erases_at_once_and_reports_the_result_per_bank)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x5A);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(2), w), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(10), w), 0);
	cr_assert_eq(flashsim_wait(fs, 0, 0), 0); /* nothing started: idle, result 0 */
	cr_assert_eq(flashsim_erase_start(fs, 2), 0);
	cr_assert_eq(flashsim_erase_start(fs, 10), 0);
	cr_assert_eq(flashsim_busy_left_us(fs, 0), 0); /* instant timing: ends at once */
	cr_assert_eq(flashsim_wait(fs, 0, 0), 0);
	cr_assert_eq(flashsim_wait(fs, 1, 1), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(2), r, sizeof r), 0);
	cr_assert_eq(r[0], 0xFF);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(10)), FLASHSIM_WORD_ERASED);
	/* a refused start is not started: the bank keeps its last result */
	flashsim_set_protect(fs, 1u << 3);
	cr_assert_eq(flashsim_erase_start(fs, 3), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_erase_start(fs, 16), FLBOOT_E_FLASH);
	cr_assert_eq(flashsim_wait(fs, 0, 1), 0);
	cr_assert_eq(flashsim_wait(fs, 2, 1), FLBOOT_E_FLASH); /* no such bank */
	flashsim_close(fs);
}

Test(flashsim_erase_start, real_timing_keeps_the_bank_busy_and_the_other_free)
{
	flashsim *fs;
	flashsim_stats st;
	uint8_t w[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	flashsim_set_timing(fs, 1);
	fill_word(w, 0x11);
	cr_assert_eq(flashsim_erase_start(fs, 9), 0);
	/* 1.1 s of modelled erase: still running right after the start */
	cr_assert_eq(flashsim_wait(fs, 1, 0), 1);
	cr_assert_gt(flashsim_busy_left_us(fs, 1), 0);
	cr_assert_eq(flashsim_busy_left_us(fs, 0), 0);
	/* bank index 0 works meanwhile */
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(3), w), 0);
	cr_assert_eq(flashsim_wait(fs, 1, 0), 1);
	/* a program on the erasing bank waits for the erase, then lands */
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(9), w), 0);
	cr_assert_eq(flashsim_busy_left_us(fs, 1), 0);
	cr_assert_eq(flashsim_wait(fs, 1, 0), 0);
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(9)), FLASHSIM_WORD_PROGRAMMED);
	flashsim_get_stats(fs, &st);
	cr_assert_eq(st.bank_busy_us[1], FLASHSIM_ERASE_US + FLASHSIM_PROGRAM_US);
	cr_assert_eq(st.bank_busy_us[0], FLASHSIM_PROGRAM_US);
	flashsim_close(fs);
}

Test(flashsim_erase_start, a_cut_at_the_start_leaves_no_erase_in_flight)
{
	flashsim *fs;
	uint8_t w[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x22);
	for (uint32_t a = 0; a < 64 * 32; a += 32)
		cr_assert_eq(flashsim_program(fs, SEC_ADDR(12) + a, w), 0);
	flashsim_arm_cut(fs, 1, FLASHSIM_CUT_DURING, 3);
	cr_assert_eq(flashsim_erase_start(fs, 12), FLBOOT_E_FLASH);
	cr_assert(flashsim_cut_happened(fs));
	flashsim_power_on(fs);
	cr_assert_eq(flashsim_wait(fs, 1, 1), 0); /* nothing in flight after power-on */
	flashsim_close(fs);
}

/* ---- what the chip does and the simple model forgave ------------------------- */

Test(flashsim_torn, a_miscorrected_program_reads_wrong_data_without_an_ecc_error)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x00);
	for (uint64_t seed = 1; seed < 20; seed++) {
		uint32_t a = SEC_ADDR(2) + (uint32_t)seed * 32;
		flashsim_arm_cut_torn(fs, 1, FLASHSIM_CUT_DURING, seed, FLASHSIM_TORN_MISCORRECT);
		cr_assert_eq(flashsim_program(fs, a, w), FLBOOT_E_FLASH);
		flashsim_power_on(fs);
		cr_assert_eq(flashsim_read(fs, a, r, 32), 0, "no ECC flag");
		cr_assert_neq(memcmp(r, w, 32), 0, "but not the word that was programmed");
		cr_assert_eq(flashsim_program(fs, a, w), FLBOOT_E_FLASH, "and it cannot be programmed again");
	}
	flashsim_close(fs);
}

Test(flashsim_torn, a_weak_program_reads_erased_but_does_not_program_cleanly)
{
	flashsim *fs;
	uint8_t w[32], r[32];

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x3C);
	flashsim_arm_cut_torn(fs, 1, FLASHSIM_CUT_DURING, 5, FLASHSIM_TORN_WEAK);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(3), w), FLBOOT_E_FLASH);
	flashsim_power_on(fs);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(3), r, 32), 0);
	for (int i = 0; i < 32; i++)
		cr_assert_eq(r[i], 0xFF, "reads erased");
	cr_assert_eq(flashsim_word_state(fs, SEC_ADDR(3)), FLASHSIM_WORD_WEAK);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(3), w), 0, "the program reports success");
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(3), r, 32), 0);
	cr_assert_neq(memcmp(r, w, 32), 0, "but the word is not what was programmed");
	/* an erase makes it good again */
	cr_assert_eq(flashsim_erase(fs, 3), 0);
	cr_assert_eq(flashsim_program(fs, SEC_ADDR(3), w), 0);
	cr_assert_eq(flashsim_read(fs, SEC_ADDR(3), r, 32), 0);
	cr_assert_eq(memcmp(r, w, 32), 0);
	flashsim_close(fs);
}

Test(flashsim_torn, a_weak_erase_reads_blank_but_is_not_reliably_erased)
{
	flashsim *fs;
	uint8_t w[32], r[32];
	unsigned weak = 0, bad = 0;

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	fill_word(w, 0x42);
	for (uint32_t a = 0; a < FLBOOT_SECTOR_SIZE; a += 32)
		cr_assert_eq(flashsim_program(fs, SEC_ADDR(11) + a, w), 0);
	flashsim_arm_cut_torn(fs, 1, FLASHSIM_CUT_DURING, 9, FLASHSIM_TORN_WEAK);
	cr_assert_eq(flashsim_erase(fs, 11), FLBOOT_E_FLASH);
	flashsim_power_on(fs);
	for (uint32_t a = 0; a < FLBOOT_SECTOR_SIZE; a += 32) {
		cr_assert_eq(flashsim_read(fs, SEC_ADDR(11) + a, r, 32), 0);
		for (int i = 0; i < 32; i++)
			cr_assert_eq(r[i], 0xFF, "the whole sector reads blank");
		weak += flashsim_word_state(fs, SEC_ADDR(11) + a) == FLASHSIM_WORD_WEAK;
	}
	cr_assert_gt(weak, 0);
	for (uint32_t a = 0; a < FLBOOT_SECTOR_SIZE; a += 32) {
		cr_assert_eq(flashsim_program(fs, SEC_ADDR(11) + a, w), 0);
		cr_assert_eq(flashsim_read(fs, SEC_ADDR(11) + a, r, 32), 0);
		bad += memcmp(r, w, 32) != 0;
	}
	cr_assert_eq(bad, weak, "every weak word programs wrong");
	flashsim_close(fs);
}

Test(flashsim_torn, erases_fail_past_the_endurance)
{
	flashsim *fs;
	flashsim_stats st;

	cr_assert_eq(flashsim_open(&fs, NULL), 0);
	flashsim_set_endurance(fs, 3);
	for (int i = 0; i < 3; i++)
		cr_assert_eq(flashsim_erase(fs, 5), 0);
	cr_assert_eq(flashsim_erase(fs, 5), FLBOOT_E_FLASH, "the 4th erase of a 3-cycle sector fails");
	cr_assert_eq(flashsim_erase(fs, 6), 0, "other sectors wear on their own");
	cr_assert_eq(flashsim_erase_start(fs, 5), FLBOOT_E_FLASH);
	flashsim_get_stats(fs, &st);
	cr_assert_eq(st.sector_erases[5], 5);
	flashsim_close(fs);
}
