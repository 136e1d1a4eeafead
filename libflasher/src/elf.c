/* ELF32 little-endian ARM executables as pack input: the payload is what
 * the flash holds after programming the file, i.e. every PT_LOAD segment's
 * file bytes at its physical (load) address. .data is linked to run in RAM
 * but stored in flash, so its VMA is in RAM and its LMA (p_paddr) in flash;
 * only the LMA matters here. */
#include <stdlib.h>
#include <string.h>

#include "elf_load.h"
#include "error_internal.h"

#define EHDR_SIZE 52u
#define PHDR_SIZE 32u
#define ELFCLASS32 1u
#define ELFCLASS64 2u
#define ELFDATA2LSB 1u
#define ELFDATA2MSB 2u
#define EM_ARM 40u
#define PT_LOAD 1u

static uint16_t le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int flasher__elf_is_elf(const uint8_t *data, size_t len)
{
	return len >= 4 && data[0] == 0x7F && data[1] == 'E' && data[2] == 'L' && data[3] == 'F';
}

struct seg {
	uint32_t index, offset, paddr, filesz;
};

int flasher__elf_load(const uint8_t *data, size_t len, const char *name, uint32_t base, uint32_t end,
                      uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (!flasher__elf_is_elf(data, len))
		return flasher__error(FLASHER_EFORMAT, "'%s': not an ELF file (no 7F 45 4C 46 magic)", name);
	if (len < 16)
		return flasher__error(FLASHER_EFORMAT, "'%s': truncated ELF file (%zu bytes, identification needs 16)",
		                      name, len);
	if (data[4] == ELFCLASS64)
		return flasher__error(FLASHER_EUNSUPPORTED,
		                      "'%s': 64-bit ELF; an STM32 application is ELF32 (ELFCLASS32)", name);
	if (data[4] != ELFCLASS32)
		return flasher__error(FLASHER_EFORMAT, "'%s': unknown ELF class %u", name, data[4]);
	if (data[5] == ELFDATA2MSB)
		return flasher__error(FLASHER_EUNSUPPORTED, "'%s': big-endian ELF; the STM32H755 is little-endian",
		                      name);
	if (data[5] != ELFDATA2LSB)
		return flasher__error(FLASHER_EFORMAT, "'%s': unknown ELF data encoding %u", name, data[5]);
	if (len < EHDR_SIZE)
		return flasher__error(FLASHER_EFORMAT, "'%s': truncated ELF file (%zu bytes, ELF header needs %u)", name,
		                      len, EHDR_SIZE);
	uint16_t machine = le16(data + 18);
	if (machine != EM_ARM)
		return flasher__error(FLASHER_EUNSUPPORTED, "'%s': ELF machine %u is not ARM (%u)", name, machine,
		                      EM_ARM);
	uint32_t phoff = le32(data + 28);
	uint16_t phentsize = le16(data + 42);
	uint16_t phnum = le16(data + 44);
	if (phnum == 0)
		return flasher__error(FLASHER_EFORMAT,
		                      "'%s': no program headers, so no loadable segment (an object file? link it)", name);
	if (phentsize < PHDR_SIZE)
		return flasher__error(FLASHER_EFORMAT, "'%s': program header entry size %u, expected at least %u", name,
		                      phentsize, PHDR_SIZE);
	if ((uint64_t)phoff + (uint64_t)phnum * phentsize > len)
		return flasher__error(FLASHER_EFORMAT,
		                      "'%s': truncated ELF file (%zu bytes, program headers end at %llu)", name, len,
		                      (unsigned long long)((uint64_t)phoff + (uint64_t)phnum * phentsize));

	struct seg *segs = malloc(sizeof *segs * phnum);
	if (!segs)
		return flasher__error(FLASHER_ENOMEM, "'%s': out of memory", name);
	size_t nseg = 0;
	uint32_t top = base;
	for (uint32_t i = 0; i < phnum; i++) {
		const uint8_t *ph = data + phoff + (size_t)i * phentsize;
		uint32_t type = le32(ph), offset = le32(ph + 4), paddr = le32(ph + 12), filesz = le32(ph + 16);
		if (type != PT_LOAD || filesz == 0)
			continue;
		uint64_t seg_end = (uint64_t)paddr + filesz;
		if (paddr < base || seg_end > end) {
			free(segs);
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s': segment %u (load address 0x%08X-0x%08llX, %u bytes) lies outside the "
			                      "slot's application area 0x%08X-0x%08X; link the application at 0x%08X",
			                      name, i, paddr, (unsigned long long)seg_end, filesz, base, end, base);
		}
		if ((uint64_t)offset + filesz > len) {
			free(segs);
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s': truncated ELF file (%zu bytes, segment %u's data ends at %llu)", name,
			                      len, i, (unsigned long long)((uint64_t)offset + filesz));
		}
		segs[nseg++] = (struct seg){i, offset, paddr, filesz};
		if (seg_end > top)
			top = (uint32_t)seg_end;
	}
	if (nseg == 0) {
		free(segs);
		return flasher__error(FLASHER_EFORMAT, "'%s': no loadable segment with file data (PT_LOAD, p_filesz > 0)",
		                      name);
	}

	size_t size = top - base;
	uint8_t *img = malloc(size);
	uint8_t *used = calloc((size + 7) / 8, 1);
	if (!img || !used) {
		free(img);
		free(used);
		free(segs);
		return flasher__error(FLASHER_ENOMEM, "'%s': out of memory for a %zu-byte image", name, size);
	}
	memset(img, 0xFF, size); /* erased flash */
	for (size_t s = 0; s < nseg; s++) {
		size_t at = segs[s].paddr - base;
		/* Two segments for the same flash bytes mean a broken link: refuse
		 * rather than let the later one win silently. */
		for (size_t b = at; b < at + segs[s].filesz; b++) {
			if (used[b / 8] & (1u << (b % 8))) {
				int err = flasher__error(FLASHER_EFORMAT,
				                         "'%s': segment %u (0x%08X-0x%08X) overlaps another segment at 0x%08zX",
				                         name, segs[s].index, segs[s].paddr, segs[s].paddr + segs[s].filesz,
				                         base + b);
				free(img);
				free(used);
				free(segs);
				return err;
			}
			used[b / 8] |= (uint8_t)(1u << (b % 8));
		}
		memcpy(img + at, data + segs[s].offset, segs[s].filesz);
	}
	free(used);
	free(segs);
	*out = img;
	*out_len = size;
	return 0;
}
