/* elf32.c - see elf32.h. Written for the tests; bounds-checked throughout. */
#include "elf32.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static uint32_t rd32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint16_t rd16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static int fail(char *err, size_t errlen, const char *what)
{
	snprintf(err, errlen, "%s", what);
	return -1;
}

int elf32_open(elf32 *e, const char *path, char *err, size_t errlen)
{
	memset(e, 0, sizeof *e);
	FILE *f = fopen(path, "rb");
	if (!f)
		return fail(err, errlen, "cannot open the file");
	fseek(f, 0, SEEK_END);
	long n = ftell(f);
	fseek(f, 0, SEEK_SET);
	if (n < 52) {
		fclose(f);
		return fail(err, errlen, "shorter than an ELF header");
	}
	e->data = malloc((size_t)n);
	e->size = (size_t)n;
	if (!e->data || fread(e->data, 1, e->size, f) != e->size) {
		fclose(f);
		elf32_close(e);
		return fail(err, errlen, "read failed");
	}
	fclose(f);
	const uint8_t *h = e->data;
	if (memcmp(h, "\x7f" "ELF", 4) || h[4] != 1 || h[5] != 1) {
		elf32_close(e);
		return fail(err, errlen, "not a little-endian ELF32 file");
	}
	e->machine = rd16(h + 18);
	e->entry = rd32(h + 24);
	uint32_t phoff = rd32(h + 28), shoff = rd32(h + 32);
	uint16_t phentsize = rd16(h + 42), phnum = rd16(h + 44);
	uint16_t shentsize = rd16(h + 46), shnum = rd16(h + 48);
	if ((uint64_t)phoff + (uint64_t)phnum * phentsize > e->size ||
	    (uint64_t)shoff + (uint64_t)shnum * shentsize > e->size || phentsize < 32 || shentsize < 40) {
		elf32_close(e);
		return fail(err, errlen, "header tables outside the file");
	}
	for (uint16_t i = 0; i < phnum; i++) {
		const uint8_t *p = h + phoff + (size_t)i * phentsize;
		if (rd32(p) != 1 /* PT_LOAD */ || e->nseg >= 16)
			continue;
		elf32_segment *s = &e->seg[e->nseg++];
		s->offset = rd32(p + 4);
		s->vaddr = rd32(p + 8);
		s->paddr = rd32(p + 12);
		s->filesz = rd32(p + 16);
		s->memsz = rd32(p + 20);
		s->flags = rd32(p + 24);
		if ((uint64_t)s->offset + s->filesz > e->size) {
			elf32_close(e);
			return fail(err, errlen, "segment outside the file");
		}
	}
	for (uint16_t i = 0; i < shnum; i++) {
		const uint8_t *sh = h + shoff + (size_t)i * shentsize;
		if (rd32(sh + 4) != 2 /* SHT_SYMTAB */)
			continue;
		uint32_t off = rd32(sh + 16), size = rd32(sh + 20), link = rd32(sh + 24);
		if (link >= shnum || (uint64_t)off + size > e->size)
			break;
		const uint8_t *st = h + shoff + (size_t)link * shentsize;
		uint32_t soff = rd32(st + 16), ssize = rd32(st + 20);
		if ((uint64_t)soff + ssize > e->size)
			break;
		e->symtab = h + off;
		e->nsyms = size / 16u;
		e->strtab = h + soff;
		e->strtab_size = ssize;
	}
	return 0;
}

void elf32_close(elf32 *e)
{
	free(e->data);
	e->data = NULL;
}

int elf32_symbol(const elf32 *e, const char *name, uint32_t *value)
{
	size_t nlen = strlen(name);
	for (uint32_t i = 0; i < e->nsyms; i++) {
		const uint8_t *s = e->symtab + 16u * i;
		uint32_t so = rd32(s);
		if (so + nlen + 1 > e->strtab_size)
			continue;
		if (!memcmp(e->strtab + so, name, nlen + 1)) {
			*value = rd32(s + 4);
			return 0;
		}
	}
	return -1;
}

int elf32_read(const elf32 *e, uint32_t addr, void *buf, uint32_t len)
{
	for (int i = 0; i < e->nseg; i++) {
		const elf32_segment *s = &e->seg[i];
		if (addr >= s->vaddr && (uint64_t)addr + len <= (uint64_t)s->vaddr + s->filesz) {
			memcpy(buf, e->data + s->offset + (addr - s->vaddr), len);
			return 0;
		}
	}
	return -1;
}

uint32_t elf32_word(const elf32 *e, uint32_t addr)
{
	uint8_t b[4];
	if (elf32_read(e, addr, b, 4))
		return 0xFFFFFFFFu;
	return rd32(b);
}
