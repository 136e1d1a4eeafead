/* Telling firmware inputs apart by their contents. A raw .bin has no
 * marker, so it is what remains once every recognisable format is
 * excluded: ELF and the address-record text formats are read, a package,
 * an archive, a DfuSe or UF2 container or any other text is refused, so a
 * .hex (or a README) is never flashed as if its ASCII were code. */
#include <string.h>

#include "fwinput.h"

/* How much of the file decides whether it is text. */
#define TEXT_SAMPLE 4096u

static int is_hex_digit(uint8_t c)
{
	return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'F') || (c >= 'a' && c <= 'f');
}

static int is_blank(uint8_t c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v';
}

/* Printable ASCII, whitespace and well-formed UTF-8 only: random or code
 * bytes fail this within a few bytes. A sequence cut by the end of the
 * sample counts as text. */
static int looks_like_text(const uint8_t *p, size_t n)
{
	if (n >= 3 && p[0] == 0xEF && p[1] == 0xBB && p[2] == 0xBF)
		p += 3, n -= 3; /* UTF-8 byte order mark */
	for (size_t i = 0; i < n;) {
		uint8_t c = p[i];
		if ((c >= 0x20 && c < 0x7F) || is_blank(c)) {
			i++;
			continue;
		}
		size_t more = (c & 0xE0) == 0xC0 ? 1 : (c & 0xF0) == 0xE0 ? 2 : (c & 0xF8) == 0xF0 ? 3 : 0;
		if (!more || c == 0xC0 || c == 0xC1 || c > 0xF4)
			return 0;
		for (size_t k = 1; k <= more; k++)
			if (i + k < n && (p[i + k] & 0xC0) != 0x80)
				return 0;
		i += more + 1;
	}
	return 1;
}

/* The first non-blank line starts with `lead` (1 or 2 characters) followed
 * by at least min_digits hex digits and nothing else. */
static int first_line_is(const uint8_t *p, size_t n, const char *lead, size_t min_digits)
{
	size_t i = 0;
	while (i < n && is_blank(p[i]))
		i++;
	size_t ll = strlen(lead);
	if (n - i < ll || memcmp(p + i, lead, ll) != 0)
		return 0;
	i += ll;
	size_t digits = 0;
	while (i < n && is_hex_digit(p[i]))
		i++, digits++;
	return digits >= min_digits && (i == n || is_blank(p[i]));
}

flasher__fwinput_kind flasher__fwinput_kind_of(const uint8_t *data, size_t len, const char **why)
{
	*why = NULL;
	if (len >= 4 && memcmp(data, "\x7f" "ELF", 4) == 0)
		return FLASHER__INPUT_ELF;
	if (len >= 8 && memcmp(data, "FLPKG\r\n\x1a", 8) == 0) {
		*why = "a flasher package, not firmware; give the .elf, .bin or .hex it was built from";
		return FLASHER__INPUT_REFUSED;
	}
	if (len >= 5 && memcmp(data, "DfuSe", 5) == 0) {
		*why = "a DfuSe container (.dfu); give the .elf, .bin or .hex it was made from";
		return FLASHER__INPUT_REFUSED;
	}
	if (len >= 8 && memcmp(data, "UF2\n\x57\x51\x5d\x9e", 8) == 0) {
		*why = "a UF2 container; give the .elf, .bin or .hex it was made from";
		return FLASHER__INPUT_REFUSED;
	}
	if ((len >= 2 && data[0] == 0x1F && data[1] == 0x8B) || (len >= 4 && memcmp(data, "PK\3\4", 4) == 0) ||
	    (len >= 6 && memcmp(data, "\xfd" "7zXZ\0", 6) == 0)) {
		*why = "a compressed archive (gzip, zip or xz); unpack it and give the firmware inside";
		return FLASHER__INPUT_REFUSED;
	}
	size_t sample = len < TEXT_SAMPLE ? len : TEXT_SAMPLE;
	if (!looks_like_text(data, sample))
		return FLASHER__INPUT_RAW;
	/* ":" + count, address, type and checksum: 10 hex digits at least. */
	if (first_line_is(data, sample, ":", 10))
		return FLASHER__INPUT_IHEX;
	static const char *const srec_leads[] = {"S0", "S1", "S2", "S3", "S5", "S6", "S7", "S8", "S9"};
	for (size_t i = 0; i < sizeof srec_leads / sizeof srec_leads[0]; i++)
		if (first_line_is(data, sample, srec_leads[i], 6))
			return FLASHER__INPUT_SREC;
	*why = "a text file, not firmware (give an .elf, a .bin, an Intel HEX or an S-record file)";
	return FLASHER__INPUT_REFUSED;
}
