/**
 * @file flasher/watch.h
 * @brief Being told when units come and go: USB devices through libusb's
 *        hotplug, their serial ports through libudev's monitor.
 *
 * A unit shows up twice: first its USB device (FLASHER_WATCH_USB, from
 * libusb), then, once cdc_acm has bound, its serial port
 * (FLASHER_WATCH_PORT, from udev), which is what a session opens. On
 * unplug both go away. Only devices with the discovery options' USB ids
 * are reported (default 0483:5740).
 *
 * Two ways to run a watch:
 *  - in the application's own loop: poll flasher_watch_fd() for reading
 *    (it is one descriptor for everything), then call
 *    flasher_watch_dispatch(w, 0);
 *  - on a thread: loop on flasher_watch_dispatch(w, -1) until it returns
 *    FLASHER_ECANCELLED after flasher_watch_interrupt() from another thread.
 *
 * Thread rules: one thread at a time calls dispatch; flasher_watch_interrupt()
 * is safe from any thread. The callback runs inside dispatch, on its thread.
 * Linux only (FLASHER_EUNSUPPORTED elsewhere).
 */
#ifndef FLASHER_WATCH_H
#define FLASHER_WATCH_H

#include "flasher/common.h"
#include "flasher/discovery.h"

#ifdef __cplusplus
extern "C" {
#endif

/** What an event is about. @since 0.4 */
typedef enum flasher_watch_kind {
	FLASHER_WATCH_USB = 1,  /**< the unit's USB device (libusb hotplug); port.path is "" */
	FLASHER_WATCH_PORT = 2, /**< the unit's serial port (udev); port.path is the device node */
} flasher_watch_kind;

/** What happened. @since 0.4 */
typedef enum flasher_watch_action {
	FLASHER_WATCH_ADDED = 1,
	FLASHER_WATCH_REMOVED = 2,
} flasher_watch_action;

/** One event. For REMOVED, port holds what was known when it was added (a
 *  device that is gone can no longer be asked). Valid during the callback
 *  only. @since 0.4 */
typedef struct flasher_watch_event {
	unsigned struct_size;        /**< bytes the library filled (see FLASHER_HAS_FIELD) */
	flasher_watch_kind kind;
	flasher_watch_action action;
	flasher_port_info port;      /**< vid, pid, bus, address; path, serial, description for ports
	                                  (serial also for USB devices when udev knows it) */
} flasher_watch_event;

/** Called from flasher_watch_dispatch() for each event. @since 0.4 */
typedef void (*flasher_watch_cb)(const flasher_watch_event *event, void *payload);

/** Options of flasher_watch_open(). @since 0.4 */
typedef struct flasher_watch_options {
	unsigned version;                           /**< FLASHER_WATCH_OPTIONS_VERSION */
	const flasher_discovery_options *discovery; /**< USB ids (copied); NULL = default ids */
	flasher_watch_cb callback;                  /**< required */
	void *payload;                              /**< passed to callback */
	int existing;                               /**< 1: the first dispatch reports what is already
	                                                 plugged in as ADDED events */
} flasher_watch_options;
#define FLASHER_WATCH_OPTIONS_VERSION 1
#define FLASHER_WATCH_OPTIONS_INIT {FLASHER_WATCH_OPTIONS_VERSION, NULL, NULL, NULL, 0}

/** A running watch (opaque). @since 0.4 */
typedef struct flasher_watch flasher_watch;

/** Start watching. The caller owns *out and frees it with
 *  flasher_watch_close(). @since 0.4 */
FLASHER_API int flasher_watch_open(flasher_watch **out, const flasher_watch_options *opts);

/** One descriptor that becomes readable when events may be pending (poll,
 *  select, a GLib/Qt socket notifier). Owned by the watch. @since 0.4 */
FLASHER_API int flasher_watch_fd(const flasher_watch *w);

/** Wait up to timeout_ms (0 = do not wait, -1 = until something happens)
 *  and deliver every pending event to the callback. Returns the number of
 *  events delivered (0 on timeout), FLASHER_ECANCELLED after
 *  flasher_watch_interrupt(), or another negative code. @since 0.4 */
FLASHER_API int flasher_watch_dispatch(flasher_watch *w, int timeout_ms);

/** Make the current or next flasher_watch_dispatch() return
 *  FLASHER_ECANCELLED. Safe from any thread and from a signal handler.
 *  @since 0.4 */
FLASHER_API void flasher_watch_interrupt(flasher_watch *w);

/** Stop watching and free w. Accepts NULL. Not while another thread is in
 *  dispatch (interrupt it and join it first). @since 0.4 */
FLASHER_API void flasher_watch_close(flasher_watch *w);

#ifdef __cplusplus
}
#endif

#endif
