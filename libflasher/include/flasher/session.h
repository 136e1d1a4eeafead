/**
 * @file flasher/session.h
 * @brief Talking to one unit: identify, update, confirm, roll back, reboot.
 *
 * One session per unit. Sessions on different units may be used from
 * different threads at once; the library has no global mutable state.
 * Within one session, one thread at a time, except flasher_session_cancel(),
 * which is safe from any thread. The library never prints: progress arrives
 * through the callback, errors through return codes and flasher_error_last().
 */
#ifndef FLASHER_SESSION_H
#define FLASHER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"
#include "flasher/package.h"
#include "flasher/transport.h"

/** What the unit says about itself (HELLO). @since 0.1 */
typedef enum flasher_mode { FLASHER_MODE_BOOTLOADER = 1, FLASHER_MODE_APPLICATION = 2 } flasher_mode;
typedef enum flasher_boot_state {
	FLASHER_STATE_EMPTY = 0,       /**< no valid firmware: waiting for an update */
	FLASHER_STATE_CONFIRMED = 1,
	FLASHER_STATE_PENDING = 2,     /**< activation applied at next boot */
	FLASHER_STATE_TRIAL = 3,       /**< new firmware on trial, not yet confirmed */
	FLASHER_STATE_ROLLED_BACK = 4, /**< a trial failed; previous firmware restored */
} flasher_boot_state;

typedef struct flasher_slot {
	flasher_core core;
	int primary;          /**< 1 primary (runs), 0 secondary (staging / previous) */
	int state;            /**< flboot_slot_state (proto.h) */
	uint32_t address, size;
	uint32_t version;     /**< packed semver, 0 if none */
	uint32_t payload_crc32;
} flasher_slot;

typedef struct flasher_unit_info {
	char uid[25];            /**< 96-bit unique id as 24 hex digits */
	char serial[33];         /**< USB serial string */
	char product[17];
	char hw_rev[9];
	uint32_t bootloader_version;
	uint32_t protocol_version;
	flasher_mode mode;
	flasher_boot_state state;
	uint32_t cm7_version;    /**< running (application mode) or active (bootloader) */
	uint32_t cm4_version;
	unsigned max_payload;
	unsigned window;
	uint32_t op_timeout_ms;
	int trial_boots;
	int last_boot_error;
	size_t slot_count;
	flasher_slot slots[4];
} flasher_unit_info;

/** Update phases reported to the progress callback. @since 0.1 */
typedef enum flasher_phase {
	FLASHER_PHASE_CONNECT = 0,
	FLASHER_PHASE_CHECK,     /**< package against unit */
	FLASHER_PHASE_TRANSFER,  /**< bytes of all images */
	FLASHER_PHASE_VERIFY,    /**< on-device verification */
	FLASHER_PHASE_ACTIVATE,
	FLASHER_PHASE_REBOOT,    /**< waiting for the unit to come back */
	FLASHER_PHASE_DONE,
} flasher_phase;
FLASHER_API const char *flasher_phase_name(flasher_phase phase);

typedef struct flasher_progress {
	flasher_phase phase;
	flasher_core core;       /**< image being sent (TRANSFER/VERIFY) */
	uint64_t bytes_done;     /**< payload bytes acknowledged, all images */
	uint64_t bytes_total;
	uint64_t bytes_resumed;  /**< bytes the unit already had (resume) */
	double rate;             /**< payload bytes per second, recent */
	double eta_s;            /**< seconds left, < 0 if unknown */
} flasher_progress;

/** Return < 0 to cancel. payload is the caller's. */
typedef int (*flasher_progress_cb)(const flasher_progress *progress, void *payload);

typedef struct flasher_session_options {
	unsigned version;                /**< FLASHER_SESSION_OPTIONS_VERSION */
	int timeout_ms;                  /**< per-request timeout floor (default 1000) */
	int retries;                     /**< per-request retransmissions (default 8) */
	int reconnect_timeout_ms;        /**< waiting for the unit after reboot (default 20000) */
	const char *record_path;         /**< record every byte to this file, NULL = off */
	const flasher_fault_config *fault; /**< inject link faults (tests), NULL = off */
	/** The unit this session is for: its uid (24 hex digits). NULL binds the
	 *  session to whichever unit answers the first HELLO. Either way the
	 *  session only ever talks to that one unit: after every reconnect the
	 *  answering uid must match, else the session keeps looking for its unit
	 *  (the port, then discovery by uid) until reconnect_timeout_ms and fails
	 *  with FLASHER_ENOTFOUND naming both uids. @since 0.3 (version 2) */
	const char *uid;
} flasher_session_options;
#define FLASHER_SESSION_OPTIONS_VERSION 2
#define FLASHER_SESSION_OPTIONS_INIT {FLASHER_SESSION_OPTIONS_VERSION, 1000, 8, 20000, NULL, NULL, NULL}

typedef struct flasher_session flasher_session;

/** Open a unit by port spec (see transport.h) or by serial number / uid as
 *  shown by discovery, and say HELLO. opts may be NULL. @since 0.1 */
FLASHER_API int flasher_session_open(flasher_session **out, const char *port, const flasher_session_options *opts);
/** Open over a transport the caller made (ownership passes). @since 0.1 */
FLASHER_API int flasher_session_open_transport(flasher_session **out, flasher_transport *t,
                                               const flasher_session_options *opts);
/** Accepts NULL. */
FLASHER_API void flasher_session_close(flasher_session *s);

/** Fresh HELLO. @since 0.1 */
FLASHER_API int flasher_session_info(flasher_session *s, flasher_unit_info *out);

typedef struct flasher_update_options {
	unsigned version;            /**< FLASHER_UPDATE_OPTIONS_VERSION */
	flasher_progress_cb progress;
	void *payload;
	int compress;                /**< 1 (default): deflate DATA when the unit supports it */
	int no_reboot;               /**< 1: stop after activation is recorded */
	int wait_confirm_ms;         /**< after reboot, wait this long for the app to confirm (default 10000) */
} flasher_update_options;
#define FLASHER_UPDATE_OPTIONS_VERSION 1
#define FLASHER_UPDATE_OPTIONS_INIT {FLASHER_UPDATE_OPTIONS_VERSION, NULL, NULL, 1, 0, 10000}

/** What an update did. */
typedef struct flasher_update_result {
	uint32_t old_cm7_version, old_cm4_version;
	uint32_t new_version;          /**< package version */
	uint64_t payload_bytes;        /**< bytes of all images */
	uint64_t resumed_bytes;        /**< already on the unit before this call */
	uint64_t sent_bytes;           /**< payload bytes sent (retransmissions included) */
	uint64_t wire_bytes;           /**< bytes written to the transport */
	flasher_unit_info after;       /**< HELLO after the reboot */
	/** Frames sent again: a request repeated after a timeout, or DATA
	 *  re-sent below the highest offset already sent (go-back after a
	 *  timeout or a NAK). 0 on a clean link. @since 0.2 */
	uint32_t retransmits;
	/** Waits for an answer that ran out (requests, DATA windows, HELLOs
	 *  while waiting for the unit after its reset). 0 on a clean link whose
	 *  port stays (pty, socket). @since 0.2 */
	uint32_t timeouts;
} flasher_update_result;

/** Update the unit with a package: check compatibility (before any flash
 *  write), enter the bootloader if the application runs, transfer every
 *  image (resuming from the unit's durable offset), verify on the unit,
 *  activate both cores as a set, reboot, wait for the unit to come back
 *  (it may re-enumerate on another port; it is found again by its uid) and
 *  check that it runs the new version. result may be NULL. @since 0.1 */
FLASHER_API int flasher_session_update(flasher_session *s, const flasher_package *pkg,
                                       const flasher_update_options *opts, flasher_update_result *result);

FLASHER_API int flasher_session_confirm(flasher_session *s);
FLASHER_API int flasher_session_rollback(flasher_session *s);
/** Reboot; to_bootloader = 1 stays in the bootloader. Reconnects afterwards. */
FLASHER_API int flasher_session_reboot(flasher_session *s, int to_bootloader);

/** Ask a running operation to stop; it returns FLASHER_ECANCELLED soon.
 *  Safe from any thread. @since 0.1 */
FLASHER_API void flasher_session_cancel(flasher_session *s);

/** The port this session currently talks through. */
FLASHER_API const char *flasher_session_port(const flasher_session *s);

#endif
