/* ELF32 little-endian ARM executables as pack input: the payload is what
 * the flash holds after programming the file, i.e. every PT_LOAD segment's
 * file bytes at its physical (load) address. .data is linked to run in RAM
 * but stored in flash, so its VMA is in RAM and its LMA (p_paddr) in flash;
 * only the LMA matters here.
 *
 * An executable linked with -Wl,--emit-relocs keeps the relocations of its
 * input objects; flasher__elf_relocate applies them again with the slot
 * moved, which gives the image a real link for the other slot gives
 * (docs/package-format.md, "Relocation"). */
#include <stdio.h>
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
#define SHDR_SIZE 40u
#define SHT_RELA 4u
#define SHT_NOBITS 8u
#define SHT_REL 9u
#define SHF_ALLOC 0x2u

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

int flasher__elf_first_lma(const uint8_t *data, size_t len, uint32_t *lma)
{
	if (!flasher__elf_is_elf(data, len) || len < EHDR_SIZE || data[4] != ELFCLASS32 || data[5] != ELFDATA2LSB)
		return -1;
	uint32_t phoff = le32(data + 28);
	uint16_t phentsize = le16(data + 42), phnum = le16(data + 44);
	if (phentsize < PHDR_SIZE || (uint64_t)phoff + (uint64_t)phnum * phentsize > len)
		return -1;
	int found = 0;
	for (uint32_t i = 0; i < phnum; i++) {
		const uint8_t *ph = data + phoff + (size_t)i * phentsize;
		if (le32(ph) != PT_LOAD || le32(ph + 16) == 0)
			continue;
		if (!found || le32(ph + 12) < *lma)
			*lma = le32(ph + 12);
		found = 1;
	}
	return found ? 0 : -1;
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

/* ---- relocation --------------------------------------------------------- */

/* ARM ELF relocation types (ARM IHI 0044) that Thumb-2 code and data of a
 * Cortex-M application carry. */
enum {
	R_ARM_NONE = 0,
	R_ARM_ABS32 = 2,
	R_ARM_REL32 = 3,
	R_ARM_ABS16 = 5,
	R_ARM_ABS12 = 6,
	R_ARM_THM_ABS5 = 7,
	R_ARM_ABS8 = 8,
	R_ARM_THM_CALL = 10,
	R_ARM_THM_PC8 = 11,
	R_ARM_THM_JUMP24 = 30,
	R_ARM_TARGET1 = 38,
	R_ARM_V4BX = 40,
	R_ARM_TARGET2 = 41,
	R_ARM_PREL31 = 42,
	R_ARM_MOVW_ABS_NC = 43,
	R_ARM_MOVT_ABS = 44,
	R_ARM_THM_MOVW_ABS_NC = 47,
	R_ARM_THM_MOVT_ABS = 48,
	R_ARM_THM_MOVW_PREL_NC = 49,
	R_ARM_THM_MOVT_PREL = 50,
	R_ARM_THM_JUMP19 = 51,
	R_ARM_THM_JUMP6 = 52,
	R_ARM_THM_ALU_PREL_11_0 = 53,
	R_ARM_THM_PC12 = 54,
	R_ARM_ABS32_NOI = 55,
	R_ARM_REL32_NOI = 56,
	R_ARM_THM_JUMP11 = 102,
	R_ARM_THM_JUMP8 = 103,
};

static const char *reloc_name(uint32_t t)
{
	switch (t) {
	case R_ARM_ABS32: return "R_ARM_ABS32";
	case R_ARM_REL32: return "R_ARM_REL32";
	case R_ARM_ABS16: return "R_ARM_ABS16";
	case R_ARM_ABS12: return "R_ARM_ABS12";
	case R_ARM_THM_ABS5: return "R_ARM_THM_ABS5";
	case R_ARM_ABS8: return "R_ARM_ABS8";
	case R_ARM_THM_CALL: return "R_ARM_THM_CALL";
	case R_ARM_THM_PC8: return "R_ARM_THM_PC8";
	case R_ARM_THM_JUMP24: return "R_ARM_THM_JUMP24";
	case R_ARM_TARGET1: return "R_ARM_TARGET1";
	case R_ARM_TARGET2: return "R_ARM_TARGET2";
	case R_ARM_PREL31: return "R_ARM_PREL31";
	case R_ARM_MOVW_ABS_NC: return "R_ARM_MOVW_ABS_NC";
	case R_ARM_MOVT_ABS: return "R_ARM_MOVT_ABS";
	case R_ARM_THM_MOVW_ABS_NC: return "R_ARM_THM_MOVW_ABS_NC";
	case R_ARM_THM_MOVT_ABS: return "R_ARM_THM_MOVT_ABS";
	case R_ARM_THM_MOVW_PREL_NC: return "R_ARM_THM_MOVW_PREL_NC";
	case R_ARM_THM_MOVT_PREL: return "R_ARM_THM_MOVT_PREL";
	case R_ARM_THM_JUMP19: return "R_ARM_THM_JUMP19";
	case R_ARM_THM_JUMP6: return "R_ARM_THM_JUMP6";
	case R_ARM_THM_ALU_PREL_11_0: return "R_ARM_THM_ALU_PREL_11_0";
	case R_ARM_THM_PC12: return "R_ARM_THM_PC12";
	case R_ARM_ABS32_NOI: return "R_ARM_ABS32_NOI";
	case R_ARM_REL32_NOI: return "R_ARM_REL32_NOI";
	case R_ARM_THM_JUMP11: return "R_ARM_THM_JUMP11";
	case R_ARM_THM_JUMP8: return "R_ARM_THM_JUMP8";
	default: return NULL;
	}
}

static void put32le(uint8_t *p, uint32_t v)
{
	for (int i = 0; i < 4; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void put16le(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

struct reloc_ctx {
	const uint8_t *data;
	size_t len;
	const char *name;
	uint32_t from, to, slot_size, base;
	uint8_t *payload;
	size_t payload_len;
	size_t applied;
};

/* Addresses of the slot the ELF is linked for, its end included (a symbol
 * may mark the end of the flash region). */
static int moves(const struct reloc_ctx *c, uint32_t addr)
{
	return addr >= c->from && (uint64_t)addr <= (uint64_t)c->from + c->slot_size;
}

/* Target of a Thumb-2 BL / B.W (T4) instruction at place p, or -1 when the
 * halfwords are not one. */
static int64_t thumb_branch_target(uint32_t p, uint16_t hw1, uint16_t hw2)
{
	if ((hw1 & 0xF800u) != 0xF000u || ((hw2 & 0xD000u) != 0xD000u && (hw2 & 0xD000u) != 0x9000u))
		return -1;
	uint32_t s = (hw1 >> 10) & 1u, j1 = (hw2 >> 13) & 1u, j2 = (hw2 >> 11) & 1u;
	uint32_t i1 = !(j1 ^ s), i2 = !(j2 ^ s);
	uint32_t imm = s << 24 | i1 << 23 | i2 << 22 | (hw1 & 0x3FFu) << 12 | (hw2 & 0x7FFu) << 1;
	int32_t off = (int32_t)(imm << 7) >> 7; /* sign-extend 25 bits */
	return (int64_t)p + 4 + off;
}

static int refuse(const struct reloc_ctx *c, uint32_t type, uint32_t place, uint32_t sym, const char *why)
{
	const char *n = reloc_name(type);
	char num[24];
	if (!n) {
		snprintf(num, sizeof num, "relocation type %u", type);
		n = num;
	}
	return flasher__error(FLASHER_EUNSUPPORTED,
	                      "'%s': cannot relocate from slot 0x%08X to 0x%08X: %s at 0x%08X (symbol value 0x%08X) %s; "
	                      "give the build linked for 0x%08X too",
	                      c->name, c->from, c->to, n, place, sym, why, c->to + (c->base - c->from));
}

static int apply_one(struct reloc_ctx *c, uint32_t type, uint32_t place, uint32_t sym, uint8_t *at, size_t room)
{
	uint32_t delta = c->to - c->from;
	int s_moves = moves(c, sym), p_moves = moves(c, place);
	/* What a PC-relative field changes by: the target and the place move
	 * independently. */
	uint32_t rel_change = (s_moves ? delta : 0) - (p_moves ? delta : 0);
	switch (type) {
	case R_ARM_NONE:
	case R_ARM_V4BX:
		return 0;
	case R_ARM_ABS32:
	case R_ARM_ABS32_NOI:
	case R_ARM_TARGET1: /* ABS32 on bare-metal EABI (init/fini arrays) */
		if (room < 4)
			break;
		if (s_moves) {
			put32le(at, le32(at) + delta);
			c->applied++;
		}
		return 0;
	case R_ARM_REL32:
	case R_ARM_REL32_NOI:
		if (room < 4)
			break;
		if (rel_change) {
			put32le(at, le32(at) + rel_change);
			c->applied++;
		}
		return 0;
	case R_ARM_PREL31:
		if (room < 4)
			break;
		if (rel_change) {
			uint32_t v = le32(at);
			put32le(at, (v & 0x80000000u) | ((v + rel_change) & 0x7FFFFFFFu));
			c->applied++;
		}
		return 0;
	case R_ARM_THM_CALL:
	case R_ARM_THM_JUMP24: {
		if (room < 4)
			break;
		/* Decide by the branch's real target: a call out of the slot goes
		 * through a veneer inside it, which moves with the caller. */
		int64_t t = thumb_branch_target(place, le16(at), le16(at + 2));
		if (t < 0)
			return refuse(c, type, place, sym, "is not on a BL/B.W instruction");
		if (moves(c, (uint32_t)t) != p_moves)
			return refuse(c, type, place, sym, "branches between the slot and a fixed address");
		return 0;
	}
	case R_ARM_THM_JUMP19:
	case R_ARM_THM_JUMP11:
	case R_ARM_THM_JUMP8:
	case R_ARM_THM_JUMP6:
	case R_ARM_THM_PC8:
	case R_ARM_THM_PC12:
	case R_ARM_THM_ALU_PREL_11_0:
	case R_ARM_THM_MOVW_PREL_NC:
	case R_ARM_THM_MOVT_PREL:
		if (rel_change)
			return refuse(c, type, place, sym, "is PC-relative between the slot and a fixed address");
		return 0;
	case R_ARM_THM_MOVW_ABS_NC:
	case R_ARM_THM_MOVT_ABS: {
		if (room < 4)
			break;
		if (!s_moves)
			return 0;
		uint16_t hw1 = le16(at), hw2 = le16(at + 2);
		int movt = type == R_ARM_THM_MOVT_ABS;
		if ((hw1 & 0xFBF0u) != (movt ? 0xF2C0u : 0xF240u) || (hw2 & 0x8000u))
			return refuse(c, type, place, sym, movt ? "is not on a MOVT instruction" : "is not on a MOVW instruction");
		/* Slots are 64 KiB aligned, so the low half (MOVW) stays and the
		 * high half (MOVT) moves by delta >> 16 with no carry. */
		if (!movt)
			return 0;
		uint32_t imm = (hw1 & 0xFu) << 12 | ((hw1 >> 10) & 1u) << 11 | ((hw2 >> 12) & 7u) << 8 | (hw2 & 0xFFu);
		imm = (imm + (delta >> 16)) & 0xFFFFu;
		hw1 = (uint16_t)((hw1 & 0xFBF0u) | (imm >> 12) | ((imm >> 11) & 1u) << 10);
		hw2 = (uint16_t)((hw2 & 0x8F00u) | ((imm >> 8) & 7u) << 12 | (imm & 0xFFu));
		put16le(at, hw1);
		put16le(at + 2, hw2);
		c->applied++;
		return 0;
	}
	case R_ARM_ABS16:
	case R_ARM_ABS12:
	case R_ARM_THM_ABS5:
	case R_ARM_ABS8:
	case R_ARM_TARGET2:
	case R_ARM_MOVW_ABS_NC:
	case R_ARM_MOVT_ABS:
		if (s_moves)
			return refuse(c, type, place, sym, "holds an address inside the slot in a field that cannot move");
		return 0;
	default:
		return refuse(c, type, place, sym, "is not a relocation this packer knows");
	}
	return refuse(c, type, place, sym, "lies at the end of the image");
}

int flasher__elf_relocate(const uint8_t *data, size_t len, const char *name, uint32_t from_slot, uint32_t to_slot,
                          uint32_t slot_size, uint32_t base, uint8_t *payload, size_t payload_len)
{
	if ((from_slot | to_slot) & 0xFFFFu)
		return flasher__error(FLASHER_EINVAL, "'%s': slots 0x%08X and 0x%08X are not 64 KiB aligned", name,
		                      from_slot, to_slot);
	/* flasher__elf_load accepted the file, so the ELF and program headers
	 * are sound; the section headers are checked here. */
	uint32_t phoff = le32(data + 28), shoff = le32(data + 32);
	uint16_t phentsize = le16(data + 42), phnum = le16(data + 44);
	uint16_t shentsize = le16(data + 46), shnum = le16(data + 48);
	if (shnum == 0 || shoff == 0)
		return flasher__error(FLASHER_ENOTFOUND, "'%s' has no section headers, so no relocations", name);
	if (shentsize < SHDR_SIZE || (uint64_t)shoff + (uint64_t)shnum * shentsize > len)
		return flasher__error(FLASHER_EFORMAT, "'%s': truncated ELF file (section headers end beyond %zu bytes)",
		                      name, len);
	struct reloc_ctx c = {data, len, name, from_slot, to_slot, slot_size, base, payload, payload_len, 0};
	size_t rel_sections = 0;
	for (uint32_t i = 0; i < shnum; i++) {
		const uint8_t *sh = data + shoff + (size_t)i * shentsize;
		uint32_t type = le32(sh + 4);
		if (type != SHT_REL && type != SHT_RELA)
			continue;
		uint32_t off = le32(sh + 16), size = le32(sh + 20), link = le32(sh + 24), info = le32(sh + 28);
		uint32_t entsize = type == SHT_REL ? 8u : 12u;
		if (info >= shnum || link >= shnum || (uint64_t)off + size > len)
			return flasher__error(FLASHER_EFORMAT, "'%s': relocation section %u is malformed", name, i);
		const uint8_t *tsh = data + shoff + (size_t)info * shentsize;
		const uint8_t *ssh = data + shoff + (size_t)link * shentsize;
		/* Only what is in the flash image: allocated sections with bytes
		 * (debug info is not programmed). */
		if (!(le32(tsh + 8) & SHF_ALLOC) || le32(tsh + 4) == SHT_NOBITS || le32(tsh + 20) == 0)
			continue;
		rel_sections++;
		uint32_t t_addr = le32(tsh + 12), t_size = le32(tsh + 20);
		uint32_t sym_off = le32(ssh + 16), sym_size = le32(ssh + 20);
		if ((uint64_t)sym_off + sym_size > len)
			return flasher__error(FLASHER_EFORMAT, "'%s': symbol table of relocation section %u is truncated",
			                      name, i);
		/* Where the target section's bytes are in flash: its segment's LMA. */
		int64_t lma = -1;
		for (uint32_t k = 0; k < phnum && lma < 0; k++) {
			const uint8_t *ph = data + phoff + (size_t)k * phentsize;
			uint32_t vaddr = le32(ph + 8), paddr = le32(ph + 12), filesz = le32(ph + 16);
			if (le32(ph) == PT_LOAD && t_addr >= vaddr && (uint64_t)t_addr + t_size <= (uint64_t)vaddr + filesz)
				lma = (int64_t)paddr + (t_addr - vaddr);
		}
		if (lma < 0 || lma < base || (uint64_t)lma + t_size > (uint64_t)base + payload_len)
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s': section %u (0x%08X, %u bytes) has relocations but is not in the image",
			                      name, info, t_addr, t_size);
		for (uint32_t r = 0; r + entsize <= size; r += entsize) {
			uint32_t place = le32(data + off + r), rinfo = le32(data + off + r + 4);
			uint32_t rtype = rinfo & 0xFFu, symi = rinfo >> 8;
			if (rtype == R_ARM_NONE)
				continue;
			if (place < t_addr || place - t_addr >= t_size)
				return flasher__error(FLASHER_EFORMAT,
				                      "'%s': relocation at 0x%08X lies outside its section (0x%08X, %u bytes)",
				                      name, place, t_addr, t_size);
			if ((uint64_t)(symi + 1) * 16u > sym_size)
				return flasher__error(FLASHER_EFORMAT, "'%s': relocation at 0x%08X names symbol %u of %u",
				                      name, place, symi, sym_size / 16u);
			const uint8_t *sym = data + sym_off + (size_t)symi * 16u;
			/* Undefined (weak) symbols are 0 and stay 0. */
			uint32_t sval = le16(sym + 14) == 0 ? 0 : le32(sym + 4);
			size_t at = (size_t)(lma - base) + (place - t_addr);
			int err = apply_one(&c, rtype, place, sval, payload + at, t_size - (place - t_addr));
			if (err)
				return err;
		}
	}
	if (rel_sections == 0)
		return flasher__error(FLASHER_ENOTFOUND, "'%s' carries no relocations for its loaded sections", name);
	return 0;
}
