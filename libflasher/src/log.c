/* A session's log sink (log.h). */
#include <stdarg.h>
#include <stdio.h>

#include "log.h"

void flasher__log(const flasher__logger *l, flasher_log_level level, const char *fmt, ...)
{
	if (!l || !l->cb || level > l->level)
		return;
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	l->cb(level, line, l->payload);
}
