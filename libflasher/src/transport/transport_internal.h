/* Shared-private pieces of the transport module: backend constructors and
 * the poll-based fd I/O that the termios, socket and serial backends share. */
#ifndef FLASHER_TRANSPORT_INTERNAL_H
#define FLASHER_TRANSPORT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/transport.h"

/* Backends: each returns 0 and a new handle, or a negative flasher_err with
 * the detail set. */
int flasher__transport_serial_open(flasher_transport **out, const char *path);
int flasher__transport_termios_open(flasher_transport **out, const char *path);
int flasher__transport_unix_open(flasher_transport **out, const char *path);
int flasher__transport_tcp_open(flasher_transport **out, const char *hostport);

/* The backend implementation behind a handle if it uses these ops, else NULL
 * (lets fault/replay extensions check the handle they were given). */
void *flasher__transport_impl(const flasher_transport *t, const flasher_transport_ops *ops);

/* Monotonic clock in milliseconds / microseconds. */
int64_t flasher__tp_now_ms(void);
int64_t flasher__tp_now_us(void);

/* Poll-based I/O on a non-blocking fd. timeout_ms < 0 waits forever.
 * read: bytes read (> 0), 0 on timeout, FLASHER_EDISCONNECTED on hangup or
 * EOF, FLASHER_EIO otherwise. write: 0 when all bytes went out, else
 * FLASHER_ETIMEOUT / FLASHER_EDISCONNECTED / FLASHER_EIO. `what` names the
 * endpoint in error details. */
int flasher__fd_read(int fd, uint8_t *buf, size_t cap, int timeout_ms, const char *what);
int flasher__fd_write(int fd, const uint8_t *buf, size_t len, int timeout_ms, const char *what);
/* Same for sockets: send(MSG_NOSIGNAL) so a closed peer gives EPIPE, not SIGPIPE. */
int flasher__sock_write(int fd, const uint8_t *buf, size_t len, int timeout_ms, const char *what);

/* Map an errno from open()/connect() on `path` to a flasher_err with a
 * detail that names the path and, for EACCES, how to get access. */
int flasher__open_errno(int err, const char *path, const char *op);

#endif
