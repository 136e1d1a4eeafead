/* elf32.h - a small reader of little-endian ELF32 files (ARM firmware) for tests. */
#ifndef TEST_ELF32_H
#define TEST_ELF32_H

#include <stddef.h>
#include <stdint.h>

typedef struct elf32_segment {
	uint32_t offset, vaddr, paddr, filesz, memsz, flags;
} elf32_segment;

typedef struct elf32 {
	uint8_t *data;
	size_t size;
	uint16_t machine;
	uint32_t entry;
	elf32_segment seg[16];
	int nseg; /* PT_LOAD segments */
	const uint8_t *symtab, *strtab;
	uint32_t nsyms, strtab_size;
} elf32;

/** Load and check the file. Returns 0, or -1 with a reason in err. */
int elf32_open(elf32 *e, const char *path, char *err, size_t errlen);
void elf32_close(elf32 *e);
/** Value of a symbol (functions: Thumb bit included). 0 found, -1 not. */
int elf32_symbol(const elf32 *e, const char *name, uint32_t *value);
/** Read bytes at a run-time address from the file image of a loadable
 *  segment (vaddr). 0, or -1 when not backed by the file. */
int elf32_read(const elf32 *e, uint32_t addr, void *buf, uint32_t len);
/** 32-bit little-endian word at addr; 0xFFFFFFFF when absent. */
uint32_t elf32_word(const elf32 *e, uint32_t addr);

#endif
