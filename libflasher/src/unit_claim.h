/* Exclusive claims on units, so that one session at a time talks to a unit
 * (docs/session.md "One owner per unit"). Two layers:
 * - the port: TIOCEXCL (other opens of the tty fail with EBUSY, for users
 *   without CAP_SYS_ADMIN) plus an advisory flock on the open tty that
 *   every flasher process checks before it sends a byte;
 * - the unit: a flock on a file named after the unit's uid in a runtime
 *   dir, held for the session's whole life (across reconnects, and for
 *   sockets, where there is no tty to lock). */
#ifndef FLASHER_UNIT_CLAIM_H
#define FLASHER_UNIT_CLAIM_H

#include <stddef.h>

/* Claim the open tty fd of path (flock). 0, or FLASHER_EBUSY naming the
 * holder when the OS tells who it is (/proc/locks). */
int flasher__claim_port_fd(int fd, const char *path);
/* TIOCEXCL on the fd the session talks through (after every open of its
 * own); undone with TIOCNXCL before the close. */
void flasher__port_exclusive(int fd);

/* Describe who holds a lock on path's inode ("pid 123 (flasher update ...)")
 * into buf; "" if unknown. For an open that failed with EBUSY. */
void flasher__port_holder(const char *path, char *buf, size_t size);

/* Claim the unit with this uid: *fd_out is the lock's fd (close it to
 * release). FLASHER_EBUSY names the holder; a lock dir that cannot be made
 * is not an error (*fd_out = -1: only the port claim then). */
int flasher__claim_unit(const char *uid, int *fd_out);
/* The same for a socket spec ("unix:PATH", "tcp:HOST:PORT"), taken before
 * connecting: a unit behind a socket may serve one connection at a time. */
int flasher__claim_socket(const char *spec, int *fd_out);

#endif
