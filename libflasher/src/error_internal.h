/* Private helpers for setting the per-thread error detail. */
#ifndef FLASHER_ERROR_INTERNAL_H
#define FLASHER_ERROR_INTERNAL_H

#include "flasher/errors.h"

/** Record the detail for `code` on this thread and return `code`, so a
 *  failure site reads: return flasher__error(FLASHER_EFORMAT, "...", ...); */
int flasher__error(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Prefix the current detail with more context ("package 'x.pkg': ...")
 *  and return code unchanged. */
int flasher__error_wrap(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#endif
