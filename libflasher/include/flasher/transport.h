/**
 * @file flasher/transport.h
 * @brief Byte pipes to a unit: serial ports, ptys, sockets, and test wrappers.
 *
 * A transport is a backend table (flasher_transport_ops) behind an opaque
 * handle. flasher_transport_open() picks the backend from the spec:
 *   "unix:PATH"        Unix stream socket (QEMU serial socket, devsim --listen)
 *   "tcp:HOST:PORT"    TCP (ser2net bridges on production lines)
 *   "replay:FILE"      a recording played back (docs/recording.md)
 *   "/dev/ttyACM0"...  libserialport when it knows the port, else termios
 *                      (ptys, socat links, which libserialport cannot open)
 *
 * Thread rules: one thread at a time per transport.
 */
#ifndef FLASHER_TRANSPORT_H
#define FLASHER_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/common.h"

#ifdef __cplusplus
extern "C" {
#endif

/** A byte pipe to a unit (opaque). @since 0.1 */
typedef struct flasher_transport flasher_transport;

/** Backend table. All mandatory unless marked optional. @since 0.1 */
typedef struct flasher_transport_ops {
	const char *name; /**< "serial", "termios", "unix", "tcp", "fault", ... */
	/** Read up to cap bytes, waiting at most timeout_ms (0 = poll). Returns
	 *  bytes read, 0 on timeout, or a negative flasher_err
	 *  (FLASHER_EDISCONNECTED when the peer went away). */
	int (*read)(void *impl, uint8_t *buf, size_t cap, int timeout_ms);
	/** Write all len bytes within timeout_ms. Returns 0 or a negative flasher_err. */
	int (*write)(void *impl, const uint8_t *buf, size_t len, int timeout_ms);
	/** Optional: discard unread input. */
	int (*flush_input)(void *impl);
	/** Release everything (called once). */
	void (*close)(void *impl);
} flasher_transport_ops;

/** Open a transport from a spec (see above). The caller owns *out (close it
 *  with flasher_transport_close(), or hand it to a session). @since 0.1 */
FLASHER_API int flasher_transport_open(flasher_transport **out, const char *spec);
/** Wrap a backend implementation in a handle (takes ownership of impl). @since 0.1 */
FLASHER_API int flasher_transport_new(flasher_transport **out, const flasher_transport_ops *ops, void *impl,
                                      const char *description);
/** Accepts NULL. @since 0.1 */
FLASHER_API void flasher_transport_close(flasher_transport *t);
/** Read through the backend (see flasher_transport_ops.read). @since 0.1 */
FLASHER_API int flasher_transport_read(flasher_transport *t, uint8_t *buf, size_t cap, int timeout_ms);
/** Write through the backend (see flasher_transport_ops.write). @since 0.1 */
FLASHER_API int flasher_transport_write(flasher_transport *t, const uint8_t *buf, size_t len, int timeout_ms);
/** Discard unread input (0 when the backend has no flush_input). @since 0.1 */
FLASHER_API int flasher_transport_flush_input(flasher_transport *t);
/** "termios:/dev/pts/3", "unix:/tmp/u.sock", ...; owned by t. @since 0.1 */
FLASHER_API const char *flasher_transport_description(const flasher_transport *t);
/** Bytes written and read through this handle (either may be NULL). @since 0.1 */
FLASHER_API void flasher_transport_counters(const flasher_transport *t, uint64_t *written, uint64_t *read);

/** Fault injection (tests): every rate is per byte, in parts per million. @since 0.1 */
typedef struct flasher_fault_config {
	unsigned version;          /**< FLASHER_FAULT_CONFIG_VERSION */
	uint64_t seed;
	uint32_t corrupt_ppm;      /**< flip a random bit */
	uint32_t drop_ppm;         /**< lose the byte */
	uint32_t duplicate_ppm;    /**< deliver it twice */
	uint32_t stall_ppm;        /**< pause for stall_ms */
	uint32_t stall_ms;
	uint64_t disconnect_after; /**< report EDISCONNECTED after this many bytes (0 = never) */
	int both_directions;       /**< 0: host->unit only, 1: both */
} flasher_fault_config;
#define FLASHER_FAULT_CONFIG_VERSION 1
#define FLASHER_FAULT_CONFIG_INIT {FLASHER_FAULT_CONFIG_VERSION, 1, 0, 0, 0, 0, 0, 0, 1}

/** Wrap inner (ownership passes to the wrapper). @since 0.1 */
FLASHER_API int flasher_transport_fault_wrap(flasher_transport **out, flasher_transport *inner,
                                             const flasher_fault_config *cfg);
/** What a fault wrapper did so far. @since 0.1 */
typedef struct flasher_fault_stats {
	uint64_t bytes;        /**< bytes that went through the faulty direction(s) */
	uint64_t corrupted;    /**< bytes with one bit flipped */
	uint64_t dropped;      /**< bytes lost */
	uint64_t duplicated;   /**< bytes delivered twice */
	uint64_t stalls;       /**< pauses of stall_ms */
	int disconnected;      /**< 1 once disconnect_after was reached */
} flasher_fault_stats;

/** Counters of a handle made by flasher_transport_fault_wrap (FLASHER_EINVAL
 *  for any other handle). @since 0.1 */
FLASHER_API int flasher_transport_fault_stats(const flasher_transport *t, flasher_fault_stats *out);

/** Record every byte both ways with timestamps to path (ownership of inner passes). @since 0.1 */
FLASHER_API int flasher_transport_record_wrap(flasher_transport **out, flasher_transport *inner, const char *path);
/** Play a recording back: answers what the unit answered. @since 0.1 */
FLASHER_API int flasher_transport_replay_open(flasher_transport **out, const char *path);
/** After a replay: 0 when the host wrote every byte the recording holds,
 *  FLASHER_EPROTOCOL naming the first missing offset otherwise. @since 0.1 */
FLASHER_API int flasher_transport_replay_finished(const flasher_transport *t);

#ifdef __cplusplus
}
#endif

#endif
