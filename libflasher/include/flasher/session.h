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
#include "flasher/discovery.h"
#include "flasher/package.h"
#include "flasher/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What the unit runs: its bootloader or an application with the update
 *  agent (HELLO). @since 0.1 */
typedef enum flasher_mode { FLASHER_MODE_BOOTLOADER = 1, FLASHER_MODE_APPLICATION = 2 } flasher_mode;
/** The unit's boot state (HELLO). @since 0.1 */
typedef enum flasher_boot_state {
	FLASHER_STATE_EMPTY = 0,       /**< no valid firmware: waiting for an update */
	FLASHER_STATE_CONFIRMED = 1,   /**< running firmware confirmed */
	FLASHER_STATE_PENDING = 2,     /**< activation applied at next boot */
	FLASHER_STATE_TRIAL = 3,       /**< new firmware on trial, not yet confirmed */
	FLASHER_STATE_ROLLED_BACK = 4, /**< a trial failed; previous firmware restored */
} flasher_boot_state;

/** State of one flash slot (HELLO; the same numbers as on the wire). @since 0.4 */
typedef enum flasher_slot_state {
	FLASHER_SLOT_EMPTY = 0,     /**< nothing valid */
	FLASHER_SLOT_ACTIVE = 1,    /**< primary: the image that boots */
	FLASHER_SLOT_RECEIVING = 2, /**< secondary: a transfer is in progress */
	FLASHER_SLOT_STAGED = 3,    /**< secondary: verified, ready to activate */
	FLASHER_SLOT_PREVIOUS = 4,  /**< secondary: the previous image (rollback target) */
	FLASHER_SLOT_INVALID = 5,   /**< header or contents do not verify */
} flasher_slot_state;

/** Stable lower-case names, as in `flasher info` and the JSON output
 *  ("bootloader", "trial", "staged", "cm7"); "unknown" for a value this
 *  library does not know. Static strings: never freed; any thread. @since 0.4 */
FLASHER_API const char *flasher_mode_name(flasher_mode mode);
/** @copydoc flasher_mode_name @since 0.4 */
FLASHER_API const char *flasher_boot_state_name(flasher_boot_state state);
/** @copydoc flasher_mode_name @since 0.4 */
FLASHER_API const char *flasher_slot_state_name(flasher_slot_state state);
/** @copydoc flasher_mode_name @since 0.4 */
FLASHER_API const char *flasher_core_name(flasher_core core);

/** One flash slot as the unit reports it. @since 0.1 */
typedef struct flasher_slot {
	flasher_core core;
	int primary;          /**< 1 primary (runs), 0 secondary (staging / previous) */
	int state;            /**< a flasher_slot_state (int for ABI stability) */
	uint32_t address, size;
	uint32_t version;     /**< packed semver, 0 if none */
	uint32_t payload_crc32;
} flasher_slot;

/** What a unit says about itself (HELLO). Filled by flasher_session_info().
 *
 *  Versioning: struct_size is set by the library to the number of bytes it
 *  filled. Fields are only ever appended, so a field f is present when
 *  FLASHER_HAS_FIELD(flasher_unit_info, info, f). The caller's own size travels with each call
 *  (the function-like macros pass sizeof of the caller's struct), so an
 *  application built against an older, shorter struct is never written past.
 *  @since 0.1 (struct_size @since 0.4) */
typedef struct flasher_unit_info {
	unsigned struct_size;    /**< bytes the library filled. @since 0.4 */
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

/** Is field present in *p, a struct of type type whose struct_size the
 *  library filled? FLASHER_HAS_FIELD(flasher_update_result, &r, timeouts) @since 0.4 */
#define FLASHER_HAS_FIELD(type, p, field) ((p)->struct_size >= (unsigned)(offsetof(type, field) + sizeof((p)->field)))

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
/** "connect", "transfer", ...; "unknown" otherwise. Static string. @since 0.1 */
FLASHER_API const char *flasher_phase_name(flasher_phase phase);

/** One progress report; valid only during the callback. @since 0.1 */
typedef struct flasher_progress {
	flasher_phase phase;
	flasher_core core;       /**< image being sent (TRANSFER/VERIFY) */
	uint64_t bytes_done;     /**< payload bytes acknowledged, all images */
	uint64_t bytes_total;
	uint64_t bytes_resumed;  /**< bytes the unit already had (resume) */
	double rate;             /**< payload bytes per second, recent */
	double eta_s;            /**< seconds left, < 0 if unknown */
} flasher_progress;

/** Called on the thread running flasher_session_update(). Return < 0 to
 *  cancel (the update then returns FLASHER_ECANCELLED). payload is the
 *  caller's. @since 0.1 */
typedef int (*flasher_progress_cb)(const flasher_progress *progress, void *payload);

/** Log levels, most severe first. @since 0.4 */
typedef enum flasher_log_level {
	FLASHER_LOG_ERROR = 0,
	FLASHER_LOG_WARNING = 1, /**< retransmissions, timeouts, lost links */
	FLASHER_LOG_INFO = 2,    /**< phases, reconnects */
	FLASHER_LOG_DEBUG = 3,   /**< every request and its answer */
} flasher_log_level;

/** A log line of a session (no trailing newline; valid only during the
 *  call). Called on the thread running the session's operation; the
 *  library never prints on its own. @since 0.4 */
typedef void (*flasher_log_cb)(flasher_log_level level, const char *message, void *payload);

/** Options of flasher_session_open(). The version field says which fields
 *  the caller filled: fields are only appended. The library copies what it
 *  keeps (strings, the USB ids); nothing needs to outlive the open call
 *  except log_payload. @since 0.1 */
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
	/** Log lines up to log_level go to log (NULL = none). @since 0.4 (version 3) */
	flasher_log_cb log;
	void *log_payload;
	flasher_log_level log_level;
	/** USB ids used to find the unit by serial number, at open and after a
	 *  reboot (NULL = the default, FLASHER_USB_VID:FLASHER_USB_PID). @since 0.4 (version 3) */
	const flasher_discovery_options *discovery;
} flasher_session_options;
#define FLASHER_SESSION_OPTIONS_VERSION 3
#define FLASHER_SESSION_OPTIONS_INIT \
	{FLASHER_SESSION_OPTIONS_VERSION, 1000, 8, 20000, NULL, NULL, NULL, NULL, NULL, FLASHER_LOG_INFO, NULL}

/** A connection to one unit (opaque). @since 0.1 */
typedef struct flasher_session flasher_session;

/** Open a unit by port spec (see transport.h) or by serial number / uid as
 *  shown by discovery, and say HELLO. opts may be NULL. The caller owns
 *  *out and frees it with flasher_session_close(). @since 0.1 */
FLASHER_API int flasher_session_open(flasher_session **out, const char *port, const flasher_session_options *opts);
/** Open over a transport the caller made (ownership passes). @since 0.1 */
FLASHER_API int flasher_session_open_transport(flasher_session **out, flasher_transport *t,
                                               const flasher_session_options *opts);
/** Close the link and free the session. Accepts NULL. Not while another
 *  thread is inside a call on s. @since 0.1 */
FLASHER_API void flasher_session_close(flasher_session *s);

/** Fresh HELLO into *out, writing at most out_size bytes (a caller built
 *  against an older header passes its smaller struct's size). @since 0.4 */
FLASHER_API int flasher_session_info_sized(flasher_session *s, flasher_unit_info *out, size_t out_size);
/** Fresh HELLO. The macro passes the caller's sizeof(flasher_unit_info);
 *  (flasher_session_info)(s, out) calls the 0.1 function, which fills this
 *  library's whole struct. @since 0.1 */
FLASHER_API int flasher_session_info(flasher_session *s, flasher_unit_info *out);
#define flasher_session_info(s, out) flasher_session_info_sized((s), (out), sizeof(flasher_unit_info))

/** Options of flasher_session_update(); version says which fields the
 *  caller filled. @since 0.1 */
typedef struct flasher_update_options {
	unsigned version;            /**< FLASHER_UPDATE_OPTIONS_VERSION */
	flasher_progress_cb progress;
	void *payload;
	int compress;                /**< 1 (default): deflate DATA when the unit supports it */
	int no_reboot;               /**< 1: stop after activation is recorded */
	int wait_confirm_ms;         /**< after reboot, wait this long for the app to confirm (default 10000) */
	/** 1: take a package older than the firmware on the unit (a downgrade);
	 *  0 (default): refuse it with FLASHER_EDOWNGRADE before any write.
	 *  @since 0.4 (version 2) */
	int allow_older;
	/** 1: write the package even when the unit already runs its version,
	 *  confirmed; 0 (default): that update does nothing and succeeds with
	 *  result->outcome FLASHER_UPDATE_ALREADY_RUNNING (so a retry is always
	 *  safe). @since 0.4 (version 2) */
	int allow_reinstall;
	/** 1: connect and run every check against the unit (product, hardware,
	 *  bootloader, slot sizes, the build for the slot it stages into,
	 *  downgrade and reinstall policy), then stop: nothing is written, the
	 *  unit is not rebooted; result->outcome FLASHER_UPDATE_DRY_RUN.
	 *  @since 0.4 (version 2) */
	int dry_run;
} flasher_update_options;
#define FLASHER_UPDATE_OPTIONS_VERSION 2
#define FLASHER_UPDATE_OPTIONS_INIT {FLASHER_UPDATE_OPTIONS_VERSION, NULL, NULL, 1, 0, 10000, 0, 0, 0}

/** What flasher_session_update() did when it returned 0. @since 0.4 */
typedef enum flasher_update_outcome {
	FLASHER_UPDATE_UPDATED = 0,         /**< the unit runs the package (or has it activated, no_reboot) */
	FLASHER_UPDATE_ALREADY_RUNNING = 1, /**< the unit already ran this version, confirmed: nothing written */
	FLASHER_UPDATE_DRY_RUN = 2,         /**< dry_run: every check passed, nothing written */
} flasher_update_outcome;

/** What an update did. Versioned like flasher_unit_info: struct_size is
 *  the bytes the library filled, fields are only appended. @since 0.1
 *  (struct_size @since 0.4) */
typedef struct flasher_update_result {
	unsigned struct_size;          /**< bytes the library filled. @since 0.4 */
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
	/** What the call did (flasher_update_outcome), when struct_size
	 *  covers it (a caller built against the first 0.4 header passes a
	 *  struct that ends before it). @since 0.4 */
	int outcome;
} flasher_update_result;

/** Update the unit with a package: check compatibility (before any flash
 *  write), enter the bootloader if the application runs, transfer every
 *  image (resuming from the unit's durable offset), verify on the unit,
 *  activate both cores as a set, reboot, wait for the unit to come back
 *  (it may re-enumerate on another port; it is found again by its uid) and
 *  check that it runs the new version. result may be NULL. @since 0.1 */
FLASHER_API int flasher_session_update(flasher_session *s, const flasher_package *pkg,
                                       const flasher_update_options *opts, flasher_update_result *result);
/** flasher_session_update() writing at most result_size bytes of *result.
 *  @since 0.4 */
FLASHER_API int flasher_session_update_sized(flasher_session *s, const flasher_package *pkg,
                                             const flasher_update_options *opts, flasher_update_result *result,
                                             size_t result_size);
/** The macro passes the caller's sizeof(flasher_update_result). @since 0.4 */
#define flasher_session_update(s, pkg, opts, result) \
	flasher_session_update_sized((s), (pkg), (opts), (result), sizeof(flasher_update_result))

/** Confirm the firmware on trial (what the application's agent does after
 *  its self-test). @since 0.1 */
FLASHER_API int flasher_session_confirm(flasher_session *s);
/** Go back to the previous firmware (the unit reboots into it). @since 0.1 */
FLASHER_API int flasher_session_rollback(flasher_session *s);
/** Reboot; to_bootloader = 1 stays in the bootloader. Reconnects afterwards.
 *  @since 0.1 */
FLASHER_API int flasher_session_reboot(flasher_session *s, int to_bootloader);

/** Ask a running operation to stop; it returns FLASHER_ECANCELLED soon.
 *  Safe from any thread and from a signal handler. Applies to the operation
 *  running now only (a cancel between operations is dropped by the next).
 *  An update cancelled before activation keeps the staged bytes and sends
 *  the unit back to its application; the detail says where the unit is.
 *  @since 0.1 */
FLASHER_API void flasher_session_cancel(flasher_session *s);

/** The port this session currently talks through; owned by s, valid until
 *  its next call. @since 0.1 */
FLASHER_API const char *flasher_session_port(const flasher_session *s);

#ifdef __cplusplus
}
#endif

#endif
