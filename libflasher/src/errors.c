/* Error names, descriptions and the per-thread detail message. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "error_internal.h"

static const struct {
	const char *name;
	const char *text;
} error_table[FLASHER_ERR_COUNT] = {
	{"FLASHER_OK", "success"},
	{"FLASHER_EINVAL", "invalid argument"},
	{"FLASHER_ENOMEM", "out of memory"},
	{"FLASHER_EIO", "I/O error"},
	{"FLASHER_ENOTFOUND", "not found"},
	{"FLASHER_EFORMAT", "malformed input"},
	{"FLASHER_ECORRUPT", "checksum mismatch"},
	{"FLASHER_ETIMEOUT", "timed out"},
	{"FLASHER_EDISCONNECTED", "disconnected"},
	{"FLASHER_EPROTOCOL", "protocol error"},
	{"FLASHER_EDEVICE", "refused by the unit"},
	{"FLASHER_EINCOMPATIBLE", "package not compatible with the unit"},
	{"FLASHER_ECANCELLED", "cancelled"},
	{"FLASHER_EBUSY", "busy"},
	{"FLASHER_EUNSUPPORTED", "not supported"},
	{"FLASHER_EPERM", "permission denied"},
	{"FLASHER_EVERIFY", "verification failed"},
	{"FLASHER_EROLLEDBACK", "the unit rolled back to its previous firmware"},
	{"FLASHER_ETRIAL", "another firmware is pending or on trial on the unit"},
	{"FLASHER_EDOWNGRADE", "the package is older than the unit's firmware"},
};

static _Thread_local char last_detail[512];

const char *flasher_error_name(int code)
{
	if (code > 0 || -code >= FLASHER_ERR_COUNT)
		return "FLASHER_E?";
	return error_table[-code].name;
}

const char *flasher_strerror(int code)
{
	if (code > 0 || -code >= FLASHER_ERR_COUNT)
		return "unknown error";
	return error_table[-code].text;
}

const char *flasher_error_last(void)
{
	return last_detail;
}

void flasher_error_clear(void)
{
	last_detail[0] = '\0';
}

int flasher__error(int code, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(last_detail, sizeof last_detail, fmt, ap);
	va_end(ap);
	return code;
}

int flasher__error_wrap(int code, const char *fmt, ...)
{
	char old[sizeof last_detail];
	va_list ap;
	size_t used;
	memcpy(old, last_detail, sizeof old);
	va_start(ap, fmt);
	int n = vsnprintf(last_detail, sizeof last_detail, fmt, ap);
	va_end(ap);
	used = n < 0 ? 0 : (size_t)n;
	if (used >= sizeof last_detail - 3)
		return code; /* no room left for the old detail */
	last_detail[used++] = ':';
	last_detail[used++] = ' ';
	size_t rest = strnlen(old, sizeof old - 1);
	if (rest > sizeof last_detail - 1 - used)
		rest = sizeof last_detail - 1 - used;
	memcpy(last_detail + used, old, rest);
	last_detail[used + rest] = '\0';
	return code;
}
