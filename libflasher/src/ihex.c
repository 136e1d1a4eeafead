/* Intel HEX input of flasher pack (the .hex STM32CubeIDE, Keil and IAR
 * write). Each line is ":LLAAAATT<data>CC": LL data bytes, AAAA a 16-bit
 * offset, TT the record type, CC the two's complement of the sum of all
 * the bytes before it. Addresses above 64 KiB come from type 04 (upper 16
 * bits, "linear") or type 02 (a paragraph number, "segment") records. */
#include <stdio.h>
#include <string.h>

#include "error_internal.h"
#include "memimage.h"

enum {
	REC_DATA = 0x00,
	REC_EOF = 0x01,
	REC_EXT_SEGMENT = 0x02,
	REC_START_SEGMENT = 0x03,
	REC_EXT_LINEAR = 0x04,
	REC_START_LINEAR = 0x05,
};

static int nibble(uint8_t c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

static int is_blank(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

int flasher__ihex_parse(const uint8_t *data, size_t len, const char *name, flasher__memimage *out)
{
	uint8_t rec[255 + 5];
	uint32_t upper = 0;    /* type 04: bits 31..16 */
	uint32_t segment = 0;  /* type 02: base = segment * 16 */
	int segmented = 0;     /* the last extended address record was type 02 */
	int ended = 0;
	unsigned line = 0;
	size_t pos = 0;
	while (pos < len) {
		size_t start = pos;
		while (pos < len && data[pos] != '\n')
			pos++;
		size_t stop = pos;
		pos++; /* past '\n' */
		line++;
		while (stop > start && is_blank(data[stop - 1]))
			stop--;
		while (start < stop && is_blank(data[start]))
			start++;
		if (start == stop)
			continue;
		if (ended)
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: more records after the end-of-file record",
			                      name, line);
		if (data[start] != ':')
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s' line %u: not an Intel HEX record (it must start with ':')", name, line);
		size_t digits = stop - start - 1;
		if (digits % 2 || digits < 10)
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s' line %u: an Intel HEX record is ':' and an even number of at least 10 "
			                      "hex digits, this one has %zu",
			                      name, line, digits);
		size_t n = digits / 2;
		if (n > sizeof rec)
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: record longer than 255 data bytes", name,
			                      line);
		uint8_t sum = 0;
		for (size_t i = 0; i < n; i++) {
			int hi = nibble(data[start + 1 + 2 * i]), lo = nibble(data[start + 2 + 2 * i]);
			if (hi < 0 || lo < 0)
				return flasher__error(FLASHER_EFORMAT, "'%s' line %u: '%c' is not a hex digit", name, line,
				                      hi < 0 ? data[start + 1 + 2 * i] : data[start + 2 + 2 * i]);
			rec[i] = (uint8_t)(hi << 4 | lo);
			sum = (uint8_t)(sum + rec[i]);
		}
		size_t count = rec[0];
		if (n != count + 5)
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s' line %u: the record announces %zu data bytes but holds %zu", name, line,
			                      count, n - 5);
		if (sum != 0)
			return flasher__error(FLASHER_ECORRUPT,
			                      "'%s' line %u: checksum 0x%02X does not match the record (expected 0x%02X)",
			                      name, line, rec[n - 1], (uint8_t)(rec[n - 1] - sum));
		uint32_t offset = (uint32_t)rec[1] << 8 | rec[2];
		uint8_t type = rec[3];
		const uint8_t *payload = rec + 4;
		switch (type) {
		case REC_DATA:
			if (segmented) {
				/* Segment addressing wraps inside the 64 KiB segment. */
				size_t first = count;
				if (offset + count > 0x10000u)
					first = 0x10000u - offset;
				int err = flasher__memimage_add(out, segment * 16u + offset, payload, first, line);
				if (!err && first < count)
					err = flasher__memimage_add(out, segment * 16u, payload + first, count - first, line);
				if (err)
					return err;
			} else {
				uint64_t addr = (uint64_t)upper + offset;
				if (addr + count > 0x100000000ull)
					return flasher__error(FLASHER_EFORMAT, "'%s' line %u: data runs past the 4 GiB address space",
					                      name, line);
				int err = flasher__memimage_add(out, (uint32_t)addr, payload, count, line);
				if (err)
					return err;
			}
			break;
		case REC_EOF:
			if (count != 0)
				return flasher__error(FLASHER_EFORMAT, "'%s' line %u: end-of-file record with %zu data bytes",
				                      name, line, count);
			ended = 1;
			break;
		case REC_EXT_SEGMENT:
		case REC_EXT_LINEAR:
			if (count != 2)
				return flasher__error(FLASHER_EFORMAT,
				                      "'%s' line %u: extended address record (type %02X) with %zu data bytes, "
				                      "expected 2",
				                      name, line, type, count);
			if (type == REC_EXT_LINEAR) {
				upper = (uint32_t)payload[0] << 24 | (uint32_t)payload[1] << 16;
				segmented = 0;
			} else {
				segment = (uint32_t)payload[0] << 8 | payload[1];
				segmented = 1;
			}
			break;
		case REC_START_SEGMENT:
		case REC_START_LINEAR:
			/* The entry point: the vector table's reset handler decides
			 * where the core starts, so it is not needed. */
			if (count != 4)
				return flasher__error(FLASHER_EFORMAT,
				                      "'%s' line %u: start address record (type %02X) with %zu data bytes, "
				                      "expected 4",
				                      name, line, type, count);
			break;
		default:
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: unknown Intel HEX record type %02X", name,
			                      line, type);
		}
	}
	if (!ended)
		return flasher__error(FLASHER_EFORMAT,
		                      "'%s': ends without the end-of-file record ':00000001FF' (truncated?)", name);
	if (!out->nruns)
		return flasher__error(FLASHER_EFORMAT, "'%s': no data records", name);
	return 0;
}
