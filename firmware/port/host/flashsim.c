/*
 * flashsim.c - STM32H755 flash model with power-cut injection (flashsim.h).
 */
#include "flashsim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WORD FLBOOT_FLASH_WORD
#define DATA_OFF FLASHSIM_FILE_HEADER
#define WORDS_PER_SECTOR (FLBOOT_SECTOR_SIZE / WORD)
static const char file_magic[8] = { 'F', 'L', 'S', 'I', 'M', '0', '0', '1' };

struct flashsim {
	uint8_t *data;  /* FLBOOT_FLASH_SIZE bytes */
	uint8_t *state; /* FLASHSIM_WORDS bytes, enum flashsim_word_state */
	int fd;         /* -1: RAM only */
	uint8_t *map;   /* the file mapped shared; data and state point into it */
	flashsim_stats stats;
	uint64_t since_arm; /* ops counted since flashsim_arm_cut */
	uint64_t cut_at;    /* 0: no cut armed */
	int cut_phase;
	int cut_torn;       /* enum flashsim_torn of the armed cut */
	uint32_t endurance; /* erase cycles per sector before erases fail, 0 = no limit */
	uint64_t rng;
	int unpowered;
	int real_timing;
	uint32_t protect;
	/* per bank (0: sectors 0-7, 1: 8-15): the modelled end of the last
	 * operation (CLOCK_MONOTONIC ns, real timing only), whether an erase
	 * started with flashsim_erase_start has not been waited for yet, and
	 * the result of the erase started last */
	int64_t bank_end_ns[2];
	int64_t late_ns[2]; /* how late the last sleep on the bank woke up */
	int erase_inflight[2];
	int erase_result[2];
};

/* splitmix64: small, seedable, good enough to scatter torn words. */
static uint64_t rng_next(uint64_t *s)
{
	uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
	z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
	z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
	return z ^ (z >> 31);
}

static void fill_random(uint64_t *s, uint8_t *p, size_t n)
{
	while (n) {
		uint64_t r = rng_next(s);
		size_t k = n < sizeof(r) ? n : sizeof(r);
		memcpy(p, &r, k);
		p += k;
		n -= k;
	}
}

/* ---- timing: an absolute schedule per bank ----------------------------------
 * Each bank runs one operation at a time. An operation starts when both the
 * caller and the bank are ready, and ends FLASHSIM_*_US later; a blocking
 * call sleeps until that end (an absolute deadline), so a sleep's overshoot
 * is not added to the next operation: the firmware on the chip issues the
 * next word within microseconds of the last one, while the host wakes up
 * 50-100 us late, and much later on a loaded machine. So a caller arriving
 * after the bank became idle is taken as back to back with it when the gap
 * is no more than how late the last sleep on the bank woke up plus
 * SCHEDULE_SLACK_NS (the caller's own work in between, also stretched by a
 * loaded host); a longer gap is real idle time and the operation starts
 * when it is called. N back-to-back operations then take exactly N times
 * their datasheet time, never less. */
#define SCHEDULE_SLACK_NS 10000000ll

static int64_t mono_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static void sleep_until_ns(int64_t t)
{
	struct timespec ts = { .tv_sec = (time_t)(t / 1000000000ll), .tv_nsec = (long)(t % 1000000000ll) };
	while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL) == EINTR)
		;
}

static int bank_of_sector(uint32_t sector)
{
	return sector >= FLASHSIM_SECTORS_PER_BANK ? 1 : 0;
}

/* An erase started on bank b and not waited for ends now: any call that
 * touches the bank waits for it first, as the chip stalls such an access.
 * Its result stays for flashsim_wait. */
/* Sleep until bank b's last operation ends; note how late we woke. */
static void sleep_bank(flashsim *fs, int b)
{
	int64_t late;

	sleep_until_ns(fs->bank_end_ns[b]);
	late = mono_ns() - fs->bank_end_ns[b];
	fs->late_ns[b] = late > 0 ? late : 0;
}

static void settle_bank(flashsim *fs, int b)
{
	if (!fs->erase_inflight[b])
		return;
	fs->erase_inflight[b] = 0;
	if (fs->real_timing)
		sleep_bank(fs, b);
}

/* Book an operation of us microseconds on bank b; returns its end. */
static int64_t book(flashsim *fs, int b, uint32_t us)
{
	int64_t now = mono_ns(), start = fs->bank_end_ns[b];

	if (now - start > SCHEDULE_SLACK_NS + fs->late_ns[b])
		start = now; /* the bank was idle: from now */
	fs->late_ns[b] = 0;
	fs->bank_end_ns[b] = start + (int64_t)us * 1000;
	return fs->bank_end_ns[b];
}

/* Count the busy time and, with real timing, book it; block != 0 waits
 * for the operation's end. A wait of less than SLEEP_QUANTUM_NS returns at
 * once: the schedule is absolute, so the next operation starts at this
 * one's modelled end anyway, and the caller is never more than the quantum
 * ahead of the model. That is one sleep per five 200 us programs instead of
 * one per program: far fewer wake-ups, which a loaded host serves late. */
#define SLEEP_QUANTUM_NS 1000000ll

static void busy(flashsim *fs, int b, uint32_t us, int block)
{
	int64_t end;

	fs->stats.bank_busy_us[b] += us;
	if (!fs->real_timing)
		return;
	end = book(fs, b, us);
	if (block && end - mono_ns() > SLEEP_QUANTUM_NS)
		sleep_bank(fs, b);
}

static int pwrite_all(int fd, const void *buf, size_t len, off_t off)
{
	const uint8_t *p = buf;
	while (len) {
		ssize_t n = pwrite(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

static int pread_all(int fd, void *buf, size_t len, off_t off)
{
	uint8_t *p = buf;
	while (len) {
		ssize_t n = pread(fd, p, len, off);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return -EINVAL;
		p += n;
		len -= (size_t)n;
		off += n;
	}
	return 0;
}

/* Write through the words [first, first+count) (data and states). A mapped
 * file needs nothing: a store to a shared mapping is in the page cache at
 * once, so a killed process loses no operation, exactly as with pwrite, and
 * a program costs no system calls. */
static int sync_words(flashsim *fs, uint32_t first, uint32_t count)
{
	int rc;

	if (fs->fd < 0 || fs->map)
		return 0;
	rc = pwrite_all(fs->fd, fs->data + (size_t)first * WORD, (size_t)count * WORD,
	                (off_t)DATA_OFF + (off_t)first * WORD);
	if (rc == 0)
		rc = pwrite_all(fs->fd, fs->state + first, count,
		                (off_t)DATA_OFF + FLBOOT_FLASH_SIZE + first);
	return rc;
}

int flashsim_open(flashsim **out, const char *path)
{
	flashsim *fs;
	void *map;
	int rc = 0;

	*out = NULL;
	fs = calloc(1, sizeof(*fs));
	if (!fs)
		return -ENOMEM;
	fs->fd = -1;
	fs->data = malloc(FLBOOT_FLASH_SIZE);
	fs->state = calloc(1, FLASHSIM_WORDS);
	if (!fs->data || !fs->state) {
		rc = -ENOMEM;
		goto fail;
	}
	memset(fs->data, 0xFF, FLBOOT_FLASH_SIZE);

	if (path) {
		struct stat st;
		uint8_t head[FLASHSIM_FILE_HEADER];

		fs->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
		if (fs->fd < 0) {
			rc = -errno;
			goto fail;
		}
		if (fstat(fs->fd, &st) != 0) {
			rc = -errno;
			goto fail;
		}
		if (st.st_size == 0) {
			/* new file: a fully erased part */
			memset(head, 0, sizeof(head));
			memcpy(head, file_magic, sizeof(file_magic));
			rc = pwrite_all(fs->fd, head, sizeof(head), 0);
			if (rc == 0)
				rc = sync_words(fs, 0, FLASHSIM_WORDS);
			if (rc)
				goto fail;
		} else {
			if (st.st_size != (off_t)FLASHSIM_STATE_BYTES) {
				rc = -EINVAL;
				goto fail;
			}
			rc = pread_all(fs->fd, head, sizeof(head), 0);
			if (rc == 0 && memcmp(head, file_magic, sizeof(file_magic)) != 0)
				rc = -EINVAL;
			if (rc)
				goto fail;
		}
		/* reserve every block (a sparse file copied in is possible) so
		 * stores to the mapping cannot fault for want of space */
		rc = posix_fallocate(fs->fd, 0, (off_t)FLASHSIM_STATE_BYTES);
		if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
			rc = -rc;
			goto fail;
		}
		rc = 0;
		map = mmap(NULL, FLASHSIM_STATE_BYTES, PROT_READ | PROT_WRITE, MAP_SHARED, fs->fd, 0);
		if (map == MAP_FAILED) {
			rc = -errno;
			goto fail;
		}
		free(fs->data);
		free(fs->state);
		fs->map = map;
		fs->data = fs->map + DATA_OFF;
		fs->state = fs->map + DATA_OFF + FLBOOT_FLASH_SIZE;
	}
	*out = fs;
	return 0;
fail:
	flashsim_close(fs);
	return rc;
}

void flashsim_close(flashsim *fs)
{
	if (!fs)
		return;
	if (fs->map) {
		munmap(fs->map, FLASHSIM_STATE_BYTES);
	} else {
		free(fs->data);
		free(fs->state);
	}
	if (fs->fd >= 0)
		close(fs->fd);
	free(fs);
}

/* Counts the operation and decides whether the armed cut strikes now. */
static int cut_now(flashsim *fs)
{
	fs->since_arm++;
	return fs->cut_at != 0 && fs->since_arm == fs->cut_at;
}

int flashsim_read(void *ctx, uint32_t addr, void *buf, uint32_t len)
{
	flashsim *fs = ctx;
	uint32_t off, w;

	if (fs->unpowered) {
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	fs->stats.reads++;
	if (addr < FLBOOT_FLASH_BASE || addr - FLBOOT_FLASH_BASE > FLBOOT_FLASH_SIZE ||
	    len > FLBOOT_FLASH_SIZE - (addr - FLBOOT_FLASH_BASE)) {
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	if (len == 0)
		return 0;
	off = addr - FLBOOT_FLASH_BASE;
	settle_bank(fs, off < FLBOOT_BANK_SIZE ? 0 : 1);
	if (off + len > FLBOOT_BANK_SIZE)
		settle_bank(fs, 1);
	for (w = off / WORD; w <= (off + len - 1) / WORD; w++) {
		if (fs->state[w] == FLASHSIM_WORD_CORRUPT) {
			fs->stats.failed++;
			fs->stats.ecc_reads++;
			return FLBOOT_E_ECC;
		}
	}
	memcpy(buf, fs->data + off, len);
	return 0;
}

/* An erase; block 0: it runs on in the model's time (its bank is busy
 * until its end), its effect on the contents is there at once (nothing
 * reads the bank before the end: settle_bank). */
static int erase_op(flashsim *fs, uint32_t sector, int block)
{
	uint32_t first = sector * WORDS_PER_SECTOR, w, us;
	int cut, worn;

	if (fs->unpowered) {
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	fs->stats.erases++;
	cut = cut_now(fs);
	if (sector < FLBOOT_SECTOR_COUNT)
		settle_bank(fs, bank_of_sector(sector));
	if (sector >= FLBOOT_SECTOR_COUNT || (fs->protect & (1u << sector))) {
		/* a refused erase still counts as an operation a cut can hit */
		if (cut)
			fs->unpowered = 1;
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	if (cut && fs->cut_phase == FLASHSIM_CUT_BEFORE) {
		fs->unpowered = 1;
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	worn = fs->endurance && fs->stats.sector_erases[sector] >= fs->endurance;
	fs->stats.sector_erases[sector]++;
	us = cut && fs->cut_phase == FLASHSIM_CUT_DURING ? FLASHSIM_ERASE_US / 2 : FLASHSIM_ERASE_US;
	busy(fs, bank_of_sector(sector), us, block || cut);
	if (worn) {
		/* past its endurance: the erase fails and leaves the sector as it
		 * was but for a seeded scatter of words it could not hold */
		for (w = first; w < first + WORDS_PER_SECTOR; w++)
			if (rng_next(&fs->rng) % 8 == 0)
				fs->state[w] = FLASHSIM_WORD_WEAK;
	} else if (cut && fs->cut_phase == FLASHSIM_CUT_DURING && fs->cut_torn == FLASHSIM_TORN_WEAK) {
		/* reads blank everywhere, but much of it is not reliably erased */
		memset(fs->data + (size_t)first * WORD, 0xFF, FLBOOT_SECTOR_SIZE);
		for (w = first; w < first + WORDS_PER_SECTOR; w++)
			fs->state[w] = rng_next(&fs->rng) % 2 ? FLASHSIM_WORD_WEAK : FLASHSIM_WORD_ERASED;
	} else if (cut && fs->cut_phase == FLASHSIM_CUT_DURING) {
		/* torn erase: each word independently done, untouched or garbage,
		 * flagged by the ECC (FLASHSIM_TORN_ECC) or miscorrected into
		 * data that reads without an error (FLASHSIM_TORN_MISCORRECT) */
		for (w = first; w < first + WORDS_PER_SECTOR; w++) {
			switch (rng_next(&fs->rng) % 3) {
			case 0:
				memset(fs->data + (size_t)w * WORD, 0xFF, WORD);
				fs->state[w] = FLASHSIM_WORD_ERASED;
				break;
			case 1:
				break;
			default:
				fill_random(&fs->rng, fs->data + (size_t)w * WORD, WORD);
				fs->state[w] = fs->cut_torn == FLASHSIM_TORN_MISCORRECT ? FLASHSIM_WORD_PROGRAMMED
				                                                         : FLASHSIM_WORD_CORRUPT;
				break;
			}
		}
	} else {
		memset(fs->data + (size_t)first * WORD, 0xFF, FLBOOT_SECTOR_SIZE);
		memset(fs->state + first, FLASHSIM_WORD_ERASED, WORDS_PER_SECTOR);
	}
	if (sync_words(fs, first, WORDS_PER_SECTOR) != 0 && !cut) {
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	if (cut) {
		fs->unpowered = 1;
		if (fs->cut_phase == FLASHSIM_CUT_DURING) {
			fs->stats.failed++;
			return FLBOOT_E_FLASH;
		}
	}
	if (worn) {
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	return 0;
}

int flashsim_erase(void *ctx, uint32_t sector)
{
	return erase_op(ctx, sector, 1);
}

int flashsim_erase_start(void *ctx, uint32_t sector)
{
	flashsim *fs = ctx;
	int rc = erase_op(fs, sector, 0);

	if (rc)
		return rc; /* refused, or cut: not started */
	fs->erase_inflight[bank_of_sector(sector)] = 1;
	fs->erase_result[bank_of_sector(sector)] = 0;
	return 0;
}

int flashsim_wait(void *ctx, uint32_t bank, int block)
{
	flashsim *fs = ctx;

	if (bank > 1u)
		return FLBOOT_E_FLASH;
	if (fs->erase_inflight[bank] && fs->real_timing && !block && mono_ns() < fs->bank_end_ns[bank])
		return 1;
	settle_bank(fs, (int)bank);
	return fs->erase_result[bank];
}

uint64_t flashsim_busy_left_us(const flashsim *fs, uint32_t bank)
{
	int64_t left;

	if (bank > 1u || !fs->erase_inflight[bank] || !fs->real_timing)
		return 0;
	left = fs->bank_end_ns[bank] - mono_ns();
	return left > 0 ? (uint64_t)(left + 999) / 1000u : 0;
}

/* Make a word differ from what was meant: one bit that should be 0 stays
 * 1 (a word of all 0xFF has none: it is left as it is). */
static void wrong_bit(uint8_t *p)
{
	uint32_t i;

	for (i = 0; i < WORD; i++) {
		if (p[i] != 0xFFu) {
			p[i] = (uint8_t)(p[i] | (uint8_t)(~p[i] & -(~p[i])));
			return;
		}
	}
}

int flashsim_program(void *ctx, uint32_t addr, const uint8_t word[32])
{
	flashsim *fs = ctx;
	uint32_t off, w;
	int cut, rc = 0;

	if (fs->unpowered) {
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	fs->stats.programs++;
	cut = cut_now(fs);
	off = addr - FLBOOT_FLASH_BASE;
	if (addr < FLBOOT_FLASH_BASE || off >= FLBOOT_FLASH_SIZE || (off % WORD) != 0 ||
	    (fs->protect & (1u << (off / FLBOOT_SECTOR_SIZE)))) {
		if (cut)
			fs->unpowered = 1;
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	w = off / WORD;
	settle_bank(fs, off < FLBOOT_BANK_SIZE ? 0 : 1);
	if (cut && fs->cut_phase == FLASHSIM_CUT_BEFORE) {
		fs->unpowered = 1;
		fs->stats.failed++;
		return FLBOOT_E_FLASH;
	}
	fs->stats.word_programs++;
	busy(fs, off < FLBOOT_BANK_SIZE ? 0 : 1, FLASHSIM_PROGRAM_US, 1);
	if (cut && fs->cut_phase == FLASHSIM_CUT_DURING && fs->cut_torn == FLASHSIM_TORN_WEAK &&
	    fs->state[w] == FLASHSIM_WORD_ERASED) {
		/* torn before any bit landed: reads erased, programs badly */
		fs->state[w] = FLASHSIM_WORD_WEAK;
		rc = FLBOOT_E_FLASH;
	} else if (cut && fs->cut_phase == FLASHSIM_CUT_DURING) {
		/* torn: some bits of the new word landed, the ECC did not; the
		 * word reads with an ECC error, or (FLASHSIM_TORN_MISCORRECT) the
		 * ECC "corrects" it into wrong data that reads without one */
		uint8_t noise[WORD];
		uint32_t i;

		fill_random(&fs->rng, noise, sizeof(noise));
		for (i = 0; i < WORD; i++)
			fs->data[off + i] &= (uint8_t)(word[i] | noise[i]);
		if (fs->cut_torn == FLASHSIM_TORN_MISCORRECT) {
			if (memcmp(fs->data + off, word, WORD) == 0)
				wrong_bit(fs->data + off);
			fs->state[w] = FLASHSIM_WORD_PROGRAMMED;
		} else {
			fs->state[w] = FLASHSIM_WORD_CORRUPT;
		}
		rc = FLBOOT_E_FLASH;
	} else if (fs->state[w] == FLASHSIM_WORD_WEAK) {
		/* not reliably erased: the program reports success, but some bits
		 * do not take (reads back wrong, without an ECC error) */
		memcpy(fs->data + off, word, WORD);
		wrong_bit(fs->data + off);
		fs->state[w] = FLASHSIM_WORD_PROGRAMMED;
	} else if (fs->state[w] != FLASHSIM_WORD_ERASED) {
		/* second program without erase: the chip writes, the ECC breaks */
		uint32_t i;

		for (i = 0; i < WORD; i++)
			fs->data[off + i] &= word[i];
		fs->state[w] = FLASHSIM_WORD_CORRUPT;
		rc = FLBOOT_E_FLASH;
	} else {
		memcpy(fs->data + off, word, WORD);
		fs->state[w] = FLASHSIM_WORD_PROGRAMMED;
	}
	if (sync_words(fs, w, 1) != 0)
		rc = FLBOOT_E_FLASH;
	if (cut)
		fs->unpowered = 1;
	if (rc)
		fs->stats.failed++;
	return rc;
}

uint64_t flashsim_ops(const flashsim *fs)
{
	return fs->stats.erases + fs->stats.programs;
}

void flashsim_get_stats(const flashsim *fs, flashsim_stats *out)
{
	*out = fs->stats;
}

int flashsim_word_state(const flashsim *fs, uint32_t addr)
{
	uint32_t off = addr - FLBOOT_FLASH_BASE;

	if (addr < FLBOOT_FLASH_BASE || off >= FLBOOT_FLASH_SIZE)
		return -1;
	return fs->state[off / WORD];
}

void flashsim_arm_cut(flashsim *fs, uint64_t op_number, int phase, uint64_t seed)
{
	flashsim_arm_cut_torn(fs, op_number, phase, seed, FLASHSIM_TORN_ECC);
}

void flashsim_arm_cut_torn(flashsim *fs, uint64_t op_number, int phase, uint64_t seed, int torn)
{
	fs->since_arm = 0;
	fs->cut_at = op_number;
	fs->cut_phase = phase;
	fs->cut_torn = torn;
	fs->rng = seed;
}

void flashsim_set_endurance(flashsim *fs, uint32_t cycles)
{
	fs->endurance = cycles;
}

int flashsim_cut_happened(const flashsim *fs)
{
	return fs->unpowered;
}

void flashsim_power_on(flashsim *fs)
{
	/* a cut aborted any erase in flight; its torn contents stay */
	fs->erase_inflight[0] = fs->erase_inflight[1] = 0;
	fs->erase_result[0] = fs->erase_result[1] = 0;
	fs->unpowered = 0;
	fs->cut_at = 0;
	fs->since_arm = 0;
}

int flashsim_snapshot(const flashsim *fs, void **buf, size_t *len)
{
	uint8_t *p = malloc(FLASHSIM_STATE_BYTES);

	*buf = NULL;
	*len = 0;
	if (!p)
		return -ENOMEM;
	memset(p, 0, FLASHSIM_FILE_HEADER);
	memcpy(p, file_magic, sizeof(file_magic));
	memcpy(p + DATA_OFF, fs->data, FLBOOT_FLASH_SIZE);
	memcpy(p + DATA_OFF + FLBOOT_FLASH_SIZE, fs->state, FLASHSIM_WORDS);
	*buf = p;
	*len = FLASHSIM_STATE_BYTES;
	return 0;
}

int flashsim_restore(flashsim *fs, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	uint32_t w;

	if (len != FLASHSIM_STATE_BYTES || memcmp(p, file_magic, sizeof(file_magic)) != 0)
		return -EINVAL;
	for (w = 0; w < FLASHSIM_WORDS; w++)
		if (p[DATA_OFF + FLBOOT_FLASH_SIZE + w] > FLASHSIM_WORD_WEAK)
			return -EINVAL;
	memcpy(fs->data, p + DATA_OFF, FLBOOT_FLASH_SIZE);
	memcpy(fs->state, p + DATA_OFF + FLBOOT_FLASH_SIZE, FLASHSIM_WORDS);
	return sync_words(fs, 0, FLASHSIM_WORDS);
}

void flashsim_set_timing(flashsim *fs, int real)
{
	fs->real_timing = real;
	fs->bank_end_ns[0] = fs->bank_end_ns[1] = 0;
	fs->late_ns[0] = fs->late_ns[1] = 0;
}

void flashsim_set_protect(flashsim *fs, uint32_t sector_mask)
{
	fs->protect = sector_mask;
}
