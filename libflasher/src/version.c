/* Library version and semantic versions packed in 32 bits. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "error_internal.h"
#include "flasher/version.h"

#ifndef FLASHER_VERSION_STRING
#define FLASHER_VERSION_STRING "0.1.0"
#endif

const char *flasher_version(void)
{
	return FLASHER_VERSION_STRING;
}

static int parse_part(const char **p, unsigned long max, unsigned long *out, const char *text, const char *what)
{
	char *end;
	if (**p < '0' || **p > '9')
		return flasher__error(FLASHER_EINVAL, "version '%s': %s part is not a number", text, what);
	if (**p == '0' && (*p)[1] >= '0' && (*p)[1] <= '9')
		return flasher__error(FLASHER_EINVAL, "version '%s': %s part has a leading zero", text, what);
	errno = 0;
	*out = strtoul(*p, &end, 10);
	if (errno || *out > max)
		return flasher__error(FLASHER_EINVAL, "version '%s': %s part above %lu", text, what, max);
	*p = end;
	return 0;
}

int flasher_semver_parse(const char *text, uint32_t *out)
{
	unsigned long part[3];
	static const unsigned long max[3] = {255, 255, 65535};
	static const char *const name[3] = {"major", "minor", "patch"};
	const char *p = text;
	if (!text || !out)
		return flasher__error(FLASHER_EINVAL, "version: NULL argument");
	for (int i = 0; i < 3; i++) {
		int err = parse_part(&p, max[i], &part[i], text, name[i]);
		if (err)
			return err;
		if (i < 2 && *p++ != '.')
			return flasher__error(FLASHER_EINVAL, "version '%s' is not MAJOR.MINOR.PATCH (e.g. 1.2.3)", text);
	}
	if (*p != '\0')
		return flasher__error(FLASHER_EINVAL, "version '%s': unexpected '%s' after the patch number", text, p);
	*out = (uint32_t)(part[0] << 24 | part[1] << 16 | part[2]);
	return 0;
}

void flasher_semver_format(uint32_t version, char *buf, unsigned long buf_size)
{
	snprintf(buf, buf_size, "%u.%u.%u", (unsigned)(version >> 24), (unsigned)((version >> 16) & 0xFF),
	         (unsigned)(version & 0xFFFF));
}
