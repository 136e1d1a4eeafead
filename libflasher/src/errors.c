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
	char prefix[256], old[sizeof last_detail];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(prefix, sizeof prefix, fmt, ap);
	va_end(ap);
	memcpy(old, last_detail, sizeof old);
	snprintf(last_detail, sizeof last_detail, "%s: %s", prefix, old);
	return code;
}
