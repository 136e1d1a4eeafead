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
 * 1.216 MB/s ceiling): the default rate, bytes per second, shared by both
 * directions (full speed is half-duplex). */
#define DEVSIM_RATE_USB_FS 900000u
/* The chip port's receive ring (USB_CDC_RX_RING): what the host can push
 * into the unit while it does not read, the link's credit. */
#define DEVSIM_RX_BUFFER 2048u
/* An answer reaches the host in a later USB frame (1 ms at full speed). */
#define DEVSIM_LATENCY_US 1000u
/* A reset takes the port away while the host enumerates it again. */
#define DEVSIM_REENUM_MS 1000u
/* Largest single write the link queues at once. */
#define DEVSIM_LINK_WRITE_MAX 8192u

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

/** bytes_per_s 0 = unlimited. One budget for both directions. */
void devsim_link_set_rate(devsim_link *l, uint32_t bytes_per_s);

/** Credit for link time the unit did not use, in bytes (its receive
 *  buffering; default DEVSIM_RX_BUFFER). */
void devsim_link_set_rx_buffer(devsim_link *l, uint32_t bytes);

/** Every write reaches the host us microseconds later (0 = at once; the
 *  writer does not wait for it). */
void devsim_link_set_latency(devsim_link *l, uint32_t us);

/** A reset: what the unit had queued for the host is lost, and for ms
 *  milliseconds the port is away (the host's bytes are lost, the unit's
 *  writes dropped). */
void devsim_link_reenumerate(devsim_link *l, uint32_t ms);

/** Non-blocking read of what is there now (and what the rate allows). */
uint32_t devsim_link_read(devsim_link *l, uint8_t *buf, uint32_t cap);

/** Write everything, paced by the rate. Without a reader the bytes are
 *  dropped after a short wait, as a CDC device whose host is gone. */
void devsim_link_write(devsim_link *l, const uint8_t *buf, uint32_t len);

/** Wait up to timeout_ms for input (or a new client). */
void devsim_link_wait(devsim_link *l, int timeout_ms);

#endif
