/*
 * devsim_link.h - the byte pipe between flasher-devsim and a host: a
 * pseudo-terminal (the unit's "USB CDC port") or a Unix socket, with an
 * optional link-rate model.
 */
#ifndef DEVSIM_LINK_H
#define DEVSIM_LINK_H

#include <stddef.h>
#include <stdint.h>

/* USB full speed CDC as good stacks reach it (DESIGN.md: 0.5-0.9 MB/s of a
 * 1.216 MB/s ceiling): the default rate each way, bytes per second. */
#define DEVSIM_RATE_USB_FS 900000u

typedef struct devsim_link devsim_link;

/** Open a pty; *name receives the slave path (owned by the link). The
 *  master is non-blocking; a slave fd stays open inside so that a host
 *  closing and reopening the port sees no hangup. link_path: optional
 *  symlink to the slave. Returns 0 or -errno. */
int devsim_link_open_pty(devsim_link **out, const char *link_path, const char **name);

/** Listen on a Unix socket at path (replaces a stale socket file). One
 *  client at a time; a new connection replaces the old one. */
int devsim_link_open_unix(devsim_link **out, const char *path);

/** Close and remove the symlink / socket file; accepts NULL. */
void devsim_link_close(devsim_link *l);

/** bytes_per_s 0 = unlimited. Applied to each direction separately. */
void devsim_link_set_rate(devsim_link *l, uint32_t bytes_per_s);

/** Non-blocking read of what is there now (and what the rate allows). */
uint32_t devsim_link_read(devsim_link *l, uint8_t *buf, uint32_t cap);

/** Write everything, paced by the rate. Without a reader the bytes are
 *  dropped after a short wait, as a CDC device whose host is gone. */
void devsim_link_write(devsim_link *l, const uint8_t *buf, uint32_t len);

/** Wait up to timeout_ms for input (or a new client). */
void devsim_link_wait(devsim_link *l, int timeout_ms);

#endif
