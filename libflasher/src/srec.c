/* Motorola S-record input of flasher pack (.srec/.s19/.mot, as objcopy -O
 * srec and srec_cat write). Each line is "St<count><address><data><cs>":
 * t the type, count the number of bytes after it, the address 2 (S1/S5/S9),
 * 3 (S2/S6/S8) or 4 (S3/S7) bytes big-endian, cs the ones' complement of
 * the low byte of the sum of count, address and data. */
#include <stdio.h>
#include <string.h>

#include "error_internal.h"
#include "memimage.h"

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

/* Address bytes of each record type; 0 = not a valid type. */
static const unsigned addr_bytes[10] = {2, 2, 3, 4, 0, 2, 3, 4, 3, 2};

int flasher__srec_parse(const uint8_t *data, size_t len, const char *name, flasher__memimage *out)
{
	uint8_t rec[256];
	unsigned long data_records = 0;
	int ended = 0;
	unsigned line = 0;
	size_t pos = 0;
	while (pos < len) {
		size_t start = pos;
		while (pos < len && data[pos] != '\n')
			pos++;
		size_t stop = pos;
		pos++;
		line++;
		while (stop > start && is_blank(data[stop - 1]))
			stop--;
		while (start < stop && is_blank(data[start]))
			start++;
		if (start == stop)
			continue;
		if (ended)
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: more records after the termination record",
			                      name, line);
		if (stop - start < 2 || data[start] != 'S' || data[start + 1] < '0' || data[start + 1] > '9')
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s' line %u: not an S-record (it must start with S and the type digit)", name,
			                      line);
		unsigned type = (unsigned)(data[start + 1] - '0');
		if (!addr_bytes[type])
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: S%u is a reserved record type", name, line,
			                      type);
		size_t digits = stop - start - 2;
		if (digits % 2 || digits < 2)
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s' line %u: an S-record holds an even number of hex digits after its type, "
			                      "this one %zu",
			                      name, line, digits);
		size_t n = digits / 2;
		if (n > sizeof rec)
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: record longer than 255 bytes", name, line);
		unsigned sum = 0;
		for (size_t i = 0; i < n; i++) {
			int hi = nibble(data[start + 2 + 2 * i]), lo = nibble(data[start + 3 + 2 * i]);
			if (hi < 0 || lo < 0)
				return flasher__error(FLASHER_EFORMAT, "'%s' line %u: '%c' is not a hex digit", name, line,
				                      hi < 0 ? data[start + 2 + 2 * i] : data[start + 3 + 2 * i]);
			rec[i] = (uint8_t)(hi << 4 | lo);
			if (i + 1 < n)
				sum += rec[i];
		}
		if ((size_t)rec[0] != n - 1)
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: the record announces %u bytes but holds %zu",
			                      name, line, rec[0], n - 1);
		unsigned ab = addr_bytes[type];
		if (n < 2 + ab)
			return flasher__error(FLASHER_EFORMAT, "'%s' line %u: S%u record too short for its %u-byte address",
			                      name, line, type, ab);
		uint8_t want = (uint8_t)~sum;
		if (rec[n - 1] != want)
			return flasher__error(FLASHER_ECORRUPT,
			                      "'%s' line %u: checksum 0x%02X does not match the record (expected 0x%02X)",
			                      name, line, rec[n - 1], want);
		uint32_t addr = 0;
		for (unsigned i = 0; i < ab; i++)
			addr = addr << 8 | rec[1 + i];
		const uint8_t *payload = rec + 1 + ab;
		size_t count = n - 2 - ab;
		switch (type) {
		case 0: /* header: free text */
			break;
		case 1:
		case 2:
		case 3:
			if ((uint64_t)addr + count > 0x100000000ull)
				return flasher__error(FLASHER_EFORMAT, "'%s' line %u: data runs past the 4 GiB address space",
				                      name, line);
			{
				int err = flasher__memimage_add(out, addr, payload, count, line);
				if (err)
					return err;
			}
			data_records++;
			break;
		case 5:
		case 6:
			/* The number of data records so far: a lost line shows here. */
			if (count != 0)
				return flasher__error(FLASHER_EFORMAT, "'%s' line %u: S%u count record with data", name, line,
				                      type);
			if (addr != (data_records & (type == 5 ? 0xFFFFu : 0xFFFFFFu)))
				return flasher__error(FLASHER_EFORMAT,
				                      "'%s' line %u: the S%u record counts %u data records, the file holds %lu "
				                      "(lines lost?)",
				                      name, line, type, addr, data_records);
			break;
		default: /* 7, 8, 9: termination with the entry point */
			if (count != 0)
				return flasher__error(FLASHER_EFORMAT, "'%s' line %u: S%u termination record with data", name,
				                      line, type);
			ended = 1;
			break;
		}
	}
	if (!ended)
		return flasher__error(FLASHER_EFORMAT,
		                      "'%s': ends without a termination record (S7, S8 or S9; truncated?)", name);
	if (!out->nruns)
		return flasher__error(FLASHER_EFORMAT, "'%s': no data records", name);
	return 0;
}
