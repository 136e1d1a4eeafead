/**
 * @file flasher/version.h
 * @brief Library version and semantic-version helpers.
 */
#ifndef FLASHER_VERSION_H
#define FLASHER_VERSION_H

#include <stdint.h>

#include "flasher/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** The library's version string ("0.1.0"). @since 0.1 */
FLASHER_API const char *flasher_version(void);

/** Parse "X.Y.Z" (each part decimal; X, Y < 256, Z < 65536) into the packed
 *  32-bit form used on the wire (major<<24 | minor<<16 | patch).
 *  Returns 0 or FLASHER_EINVAL with the detail naming what was wrong. @since 0.1 */
FLASHER_API int flasher_semver_parse(const char *text, uint32_t *out);

/** Format a packed version as "X.Y.Z" into buf (at least 16 bytes). @since 0.1 */
FLASHER_API void flasher_semver_format(uint32_t version, char *buf, unsigned long buf_size);

#ifdef __cplusplus
}
#endif

#endif
