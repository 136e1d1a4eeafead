/* bench_flashsim: does flashsim's --timing real take the datasheet time?
 *   bench_flashsim [WORDS]
 * Runs the flash work of one full update on the simulated flash with real
 * timing, the way the bootloader core does it: both banks' staging sectors
 * erased in the background at once (3 on bank 1, 4 on bank 2), then WORDS
 * programs into bank 1 and WORDS * 4/3 into bank 2, one bank after the
 * other. Prints the wall time beside the modelled time of that schedule
 * (the longer bank's erases, then both banks' programs) and their ratio;
 * issue 16 wants them within 3 %. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flashsim.h"

static double now_s(void)
{
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return (double)t.tv_sec + (double)t.tv_nsec / 1e9;
}

static int program_words(flashsim *fs, uint32_t base, uint32_t n, const uint8_t w[32])
{
	for (uint32_t i = 0; i < n; i++)
		if (flashsim_program(fs, base + i * FLBOOT_FLASH_WORD, w))
			return -1;
	return 0;
}

int main(int argc, char **argv)
{
	uint32_t words7 = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 12160u; /* 380 KiB */
	uint32_t words4 = words7 / 3u * 4u;
	flashsim *fs;
	flashsim_stats st;
	uint8_t w[32];
	uint32_t k;
	double t0, t_erased, t1, model_erase, model_total;

	if (words7 == 0 || words7 > 3u * FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD) {
		fprintf(stderr, "usage: bench_flashsim [WORDS 1..%u]\n", 3u * FLBOOT_SECTOR_SIZE / FLBOOT_FLASH_WORD);
		return 2;
	}
	if (flashsim_open(&fs, NULL) != 0)
		return 1;
	flashsim_set_timing(fs, 1);
	memset(w, 0x5A, sizeof w);
	t0 = now_s();
	/* the two banks erase at once, one sector at a time each */
	for (k = 0; k < 4; k++) {
		if (k < 3 && (flashsim_wait(fs, 0, 1) || flashsim_erase_start(fs, 4 + k)))
			return 1;
		if (flashsim_wait(fs, 1, 1) || flashsim_erase_start(fs, 12 + k))
			return 1;
	}
	if (flashsim_wait(fs, 0, 1) || flashsim_wait(fs, 1, 1))
		return 1;
	t_erased = now_s();
	if (program_words(fs, FLBOOT_SECTOR_ADDR(4), words7, w) || program_words(fs, FLBOOT_SECTOR_ADDR(12), words4, w))
		return 1;
	t1 = now_s();
	flashsim_get_stats(fs, &st);
	model_erase = 4 * FLASHSIM_ERASE_US / 1e6;
	model_total = model_erase + (double)(words7 + words4) * FLASHSIM_PROGRAM_US / 1e6;
	printf("%-28s %9s %9s %7s\n", "flashsim --timing real", "wall s", "model s", "wall/model");
	printf("%-28s %9.3f %9.3f %7.3f\n", "erase 3+4 sectors, 2 banks", t_erased - t0, model_erase,
	       (t_erased - t0) / model_erase);
	printf("%-28s %9.3f %9.3f %7.3f\n", "program words (one by one)", t1 - t_erased, model_total - model_erase,
	       (t1 - t_erased) / (model_total - model_erase));
	printf("%-28s %9.3f %9.3f %7.3f\n", "total", t1 - t0, model_total, (t1 - t0) / model_total);
	printf("modelled busy per bank: %.3f s, %.3f s; %u + %u words programmed (goal: wall within 3 %% of model)\n",
	       st.bank_busy_us[0] / 1e6, st.bank_busy_us[1] / 1e6, (unsigned)words7, (unsigned)words4);
	flashsim_close(fs);
	return 0;
}
