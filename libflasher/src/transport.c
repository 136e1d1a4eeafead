/* Transport handle, dispatch to backends, opening by spec, and the fd I/O
 * helpers shared by the backends. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "error_internal.h"
#include "unit_claim.h"
#include "transport/transport_internal.h"

struct flasher_transport {
	const flasher_transport_ops *ops;
	void *impl;
	char *description;
	uint64_t written, read;
};

int flasher_transport_new(flasher_transport **out, const flasher_transport_ops *ops, void *impl,
                          const char *description)
{
	if (!out || !ops || !ops->read || !ops->write || !ops->close)
		return flasher__error(FLASHER_EINVAL, "transport: ops table lacks a mandatory read/write/close");
	flasher_transport *t = calloc(1, sizeof *t);
	char *d = strdup(description ? description : (ops->name ? ops->name : "transport"));
	if (!t || !d) {
		free(t);
		free(d);
		ops->close(impl);
		return flasher__error(FLASHER_ENOMEM, "transport: out of memory for the handle");
	}
	t->ops = ops;
	t->impl = impl;
	t->description = d;
	*out = t;
	return 0;
}

void flasher_transport_close(flasher_transport *t)
{
	if (!t)
		return;
	t->ops->close(t->impl);
	free(t->description);
	free(t);
}

int flasher_transport_read(flasher_transport *t, uint8_t *buf, size_t cap, int timeout_ms)
{
	if (!t || (!buf && cap))
		return flasher__error(FLASHER_EINVAL, "transport read: NULL handle or buffer");
	if (cap == 0)
		return 0;
	if (cap > INT32_MAX)
		cap = INT32_MAX;
	int n = t->ops->read(t->impl, buf, cap, timeout_ms);
	if (n > 0)
		t->read += (uint64_t)n;
	return n;
}

int flasher_transport_write(flasher_transport *t, const uint8_t *buf, size_t len, int timeout_ms)
{
	if (!t || (!buf && len))
		return flasher__error(FLASHER_EINVAL, "transport write: NULL handle or buffer");
	if (len == 0)
		return 0;
	int rc = t->ops->write(t->impl, buf, len, timeout_ms);
	if (rc == 0)
		t->written += len;
	return rc;
}

int flasher_transport_flush_input(flasher_transport *t)
{
	if (!t)
		return flasher__error(FLASHER_EINVAL, "transport flush: NULL handle");
	return t->ops->flush_input ? t->ops->flush_input(t->impl) : 0;
}

const char *flasher_transport_description(const flasher_transport *t)
{
	return t ? t->description : "";
}

void flasher_transport_counters(const flasher_transport *t, uint64_t *written, uint64_t *read)
{
	if (written)
		*written = t ? t->written : 0;
	if (read)
		*read = t ? t->read : 0;
}

void *flasher__transport_impl(const flasher_transport *t, const flasher_transport_ops *ops)
{
	return t && t->ops == ops ? t->impl : NULL;
}

int flasher_transport_open(flasher_transport **out, const char *spec)
{
	if (!out || !spec || !*spec)
		return flasher__error(FLASHER_EINVAL, "transport: empty port spec");
	*out = NULL;
	if (!strncmp(spec, "unix:", 5))
		return flasher__transport_unix_open(out, spec + 5);
	if (!strncmp(spec, "tcp:", 4))
		return flasher__transport_tcp_open(out, spec + 4);
	if (!strncmp(spec, "replay:", 7))
		return flasher_transport_replay_open(out, spec + 7);
	return flasher__transport_serial_open(out, spec);
}

/* ---- shared helpers ------------------------------------------------------ */

int64_t flasher__tp_now_us(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int64_t flasher__tp_now_ms(void)
{
	return flasher__tp_now_us() / 1000;
}

/* Milliseconds left until deadline (-1 = forever). */
static int remaining(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - flasher__tp_now_ms();
	return left > 0 ? (int)left : 0;
}

int flasher__fd_read(int fd, uint8_t *buf, size_t cap, int timeout_ms, const char *what)
{
	int64_t deadline = timeout_ms < 0 ? -1 : flasher__tp_now_ms() + timeout_ms;
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		int pr = poll(&p, 1, remaining(deadline));
		if (pr < 0) {
			if (errno == EINTR)
				continue;
			return flasher__error(FLASHER_EIO, "%s: poll: %s", what, strerror(errno));
		}
		if (pr == 0)
			return 0;
		if (p.revents & POLLNVAL)
			return flasher__error(FLASHER_EIO, "%s: descriptor is not open", what);
		/* Read even on POLLHUP: data sent before the hangup comes first. */
		ssize_t n = read(fd, buf, cap);
		if (n > 0)
			return (int)n;
		if (n == 0)
			return flasher__error(FLASHER_EDISCONNECTED, "%s: end of file (the peer closed the link)", what);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK) {
			if (p.revents & (POLLHUP | POLLERR))
				return flasher__error(FLASHER_EDISCONNECTED, "%s: hangup", what);
			if (remaining(deadline) == 0)
				return 0;
			continue;
		}
		if (errno == EIO || errno == ENXIO || errno == ENODEV || errno == ECONNRESET || errno == EPIPE)
			return flasher__error(FLASHER_EDISCONNECTED, "%s: %s (the unit went away)", what, strerror(errno));
		return flasher__error(FLASHER_EIO, "%s: read: %s", what, strerror(errno));
	}
}

static int fd_write(int fd, const uint8_t *buf, size_t len, int timeout_ms, const char *what, int sock)
{
	int64_t deadline = timeout_ms < 0 ? -1 : flasher__tp_now_ms() + timeout_ms;
	size_t done = 0;
	while (done < len) {
		ssize_t n = sock ? send(fd, buf + done, len - done, MSG_NOSIGNAL) : write(fd, buf + done, len - done);
		if (n > 0) {
			done += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			if (errno == EIO || errno == ENXIO || errno == ENODEV || errno == ECONNRESET || errno == EPIPE)
				return flasher__error(FLASHER_EDISCONNECTED, "%s: %s after %zu of %zu bytes (the unit went away)",
				                      what, strerror(errno), done, len);
			return flasher__error(FLASHER_EIO, "%s: write: %s", what, strerror(errno));
		}
		struct pollfd p = {.fd = fd, .events = POLLOUT};
		int pr = poll(&p, 1, remaining(deadline));
		if (pr < 0 && errno != EINTR)
			return flasher__error(FLASHER_EIO, "%s: poll: %s", what, strerror(errno));
		if (pr == 0)
			return flasher__error(FLASHER_ETIMEOUT, "%s: wrote %zu of %zu bytes in %d ms", what, done, len,
			                      timeout_ms);
		if (pr > 0 && (p.revents & (POLLHUP | POLLERR)) && !(p.revents & POLLOUT))
			return flasher__error(FLASHER_EDISCONNECTED, "%s: hangup after %zu of %zu bytes", what, done, len);
	}
	return 0;
}

int flasher__fd_write(int fd, const uint8_t *buf, size_t len, int timeout_ms, const char *what)
{
	return fd_write(fd, buf, len, timeout_ms, what, 0);
}

int flasher__sock_write(int fd, const uint8_t *buf, size_t len, int timeout_ms, const char *what)
{
	return fd_write(fd, buf, len, timeout_ms, what, 1);
}

int flasher__open_errno(int err, const char *path, const char *op)
{
	switch (err) {
	case ENOENT:
	case ENOTDIR:
		return flasher__error(FLASHER_ENOTFOUND, "%s '%s': no such file or port", op, path);
	case EACCES:
	case EPERM:
		return flasher__error(FLASHER_EPERM,
		                      "%s '%s': permission denied (add your user to the 'dialout' group, "
		                      "or install the udev rule from docs/, then log in again)",
		                      op, path);
	case EBUSY: { /* TIOCEXCL: another session holds the tty */
		char who[300];
		flasher__port_holder(path, who, sizeof who);
		return flasher__error(FLASHER_EBUSY, "%s '%s': in use by another program%s%s", op, path, who[0] ? ": " : "",
		                      who);
	}
	case ENXIO:
	case ENODEV:
	case ECONNREFUSED:
		return flasher__error(FLASHER_ENOTFOUND, "%s '%s': %s (nothing there)", op, path, strerror(err));
	default:
		return flasher__error(FLASHER_EIO, "%s '%s': %s", op, path, strerror(err));
	}
}
