/* Shared helpers of the package tests: temp dirs, files, ELF builder,
 * running the real flasher CLI. */
#ifndef TEST_PACKAGE_HELPERS_H
#define TEST_PACKAGE_HELPERS_H

#include <stddef.h>
#include <stdint.h>

/* A fresh temp directory (removed by rm_tree). */
char *make_temp_dir(void);
void rm_tree(const char *dir);
/* dir + "/" + name, malloc'ed. */
char *path_in(const char *dir, const char *name);
void write_bytes(const char *path, const void *data, size_t len);
/* Whole file, malloc'ed; NULL if it cannot be read. */
uint8_t *read_bytes(const char *path, size_t *len);
/* Code-like bytes (a small dictionary of words, compresses ~1.5x). */
void fill_code_like(uint8_t *buf, size_t len, uint32_t seed);
/* A Cortex-M vector table's first two words: initial SP and reset handler. */
void put_vectors(uint8_t *buf, uint32_t sp, uint32_t reset);
/* Bytes zlib cannot shrink. */
void fill_random(uint8_t *buf, size_t len, uint32_t seed);
/* Number of directory entries other than . and .. */
int count_entries(const char *dir);

/* ELF32 builder: one program header per segment, data after the headers. */
struct elf_seg {
	uint32_t type;  /* 1 = PT_LOAD */
	uint32_t vaddr; /* where it runs */
	uint32_t paddr; /* where it is stored (LMA) */
	const uint8_t *data;
	uint32_t filesz;
	uint32_t memsz;
};
/* Returns malloc'ed bytes of an ELF32 LE ARM executable; *len set. */
uint8_t *build_elf(const struct elf_seg *segs, size_t n, size_t *len);

/* Run the real CLI with argv (NULL-terminated, without argv[0]); stdout and
 * stderr captured into malloc'ed strings (may pass NULL). Returns the exit
 * status, or -1 if it did not exit normally. */
int run_cli(char **out, char **err, const char *const *args);

#endif
