/* Private: a session's log sink (flasher_session_options.log). The library
 * never prints; lines go to the caller's callback or nowhere. */
#ifndef FLASHER_LOG_H
#define FLASHER_LOG_H

#include "flasher/session.h"

typedef struct flasher__logger {
	flasher_log_cb cb;   /* NULL = off */
	void *payload;
	flasher_log_level level;
} flasher__logger;

/* Format and deliver one line if l is set and level is within its level. */
void flasher__log(const flasher__logger *l, flasher_log_level level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#endif
