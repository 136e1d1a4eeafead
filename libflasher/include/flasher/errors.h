/**
 * @file flasher/errors.h
 * @brief One error model for the whole library.
 *
 * Every function that can fail returns 0 (FLASHER_OK) or a negative
 * FLASHER_E* code. The code says what kind of failure it was; the per-thread
 * detail message from flasher_error_last() says exactly what was wrong (which
 * field, which offset, expected against found). Codes are only ever appended,
 * never renumbered: the CLI's exit codes, the daemon's JSON-RPC errors and the
 * Python exceptions use the same numbers (docs/errors.md).
 *
 * Thread rules: the detail message is thread-local; it is overwritten by the
 * next failing call on the same thread.
 */
#ifndef FLASHER_ERRORS_H
#define FLASHER_ERRORS_H

#include "flasher/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** Error codes. @since 0.1 */
typedef enum flasher_err {
	FLASHER_OK = 0,
	FLASHER_EINVAL = -1,        /**< invalid argument or request */
	FLASHER_ENOMEM = -2,        /**< out of memory */
	FLASHER_EIO = -3,           /**< operating-system I/O error */
	FLASHER_ENOTFOUND = -4,     /**< file, port or unit not found */
	FLASHER_EFORMAT = -5,       /**< malformed input (package, ELF, manifest, frame) */
	FLASHER_ECORRUPT = -6,      /**< a checksum or hash does not match */
	FLASHER_ETIMEOUT = -7,      /**< the unit did not answer in time */
	FLASHER_EDISCONNECTED = -8, /**< the link went away */
	FLASHER_EPROTOCOL = -9,     /**< the peer broke the protocol */
	FLASHER_EDEVICE = -10,      /**< the unit refused the request (its code is in the detail) */
	FLASHER_EINCOMPATIBLE = -11,/**< package not for this unit (product, hardware, bootloader) */
	FLASHER_ECANCELLED = -12,   /**< cancelled by the caller */
	FLASHER_EBUSY = -13,        /**< resource in use (unit already in a session) */
	FLASHER_EUNSUPPORTED = -14, /**< not supported by this unit or platform */
	FLASHER_EPERM = -15,        /**< permission denied */
	FLASHER_EVERIFY = -16,      /**< the unit's verification of the image failed */
	FLASHER_EROLLEDBACK = -17,  /**< the new image did not confirm; the unit rolled back */
	/** the unit has another firmware pending or on trial: confirm, roll back
	 *  or reboot it first (the detail names the command). @since 0.3 */
	FLASHER_ETRIAL = -18,
	FLASHER_EDOWNGRADE = -19,   /**< the package is older than the unit's firmware (allow_older). @since 0.4 */
} flasher_err;

#define FLASHER_ERR_COUNT 20

/** Stable symbolic name of a code ("FLASHER_ECORRUPT"), "FLASHER_E?" if unknown. @since 0.1 */
FLASHER_API const char *flasher_error_name(int code);

/** Short human description of a code. @since 0.1 */
FLASHER_API const char *flasher_strerror(int code);

/** The detail message of the last failure on this thread ("" if none).
 *  Valid until the next library call on this thread. @since 0.1 */
FLASHER_API const char *flasher_error_last(void);

/** Clear this thread's detail message. @since 0.1 */
FLASHER_API void flasher_error_clear(void);

#ifdef __cplusplus
}
#endif

#endif
