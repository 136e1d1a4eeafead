/* libserialport backend for real serial ports (USB CDC /dev/ttyACMn), with a
 * fallback to termios for paths libserialport does not know (ptys, links). */
#include <errno.h>
#include <libserialport.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "../unit_claim.h"
#include "error_internal.h"
#include "transport_internal.h"

struct serial_impl {
	struct sp_port *port;
	int fd;
	int claim_fd; /* holds the flock claim (unit_claim.h) */
	char what[300];
};

static int sp_fail(struct serial_impl *p, const char *op)
{
	int e = sp_last_error_code();
	char *msg = sp_last_error_message();
	int code = (e == EIO || e == ENXIO || e == ENODEV || e == EPIPE) ? FLASHER_EDISCONNECTED : FLASHER_EIO;
	flasher__error(code, "%s: %s: %s", p->what, op, msg ? msg : "error");
	sp_free_error_message(msg);
	return code;
}

static int ser_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct serial_impl *p = impl;
	int64_t deadline = timeout_ms < 0 ? -1 : flasher__tp_now_ms() + timeout_ms;
	for (;;) {
		/* Wait ourselves so a hangup (cable pulled) is seen: libserialport's
		 * blocking read would just time out. */
		int left = -1;
		if (deadline >= 0) {
			int64_t l = deadline - flasher__tp_now_ms();
			left = l > 0 ? (int)l : 0;
		}
		struct pollfd pf = {.fd = p->fd, .events = POLLIN};
		int pr = poll(&pf, 1, left);
		if (pr < 0 && errno == EINTR)
			continue;
		if (pr < 0)
			return flasher__error(FLASHER_EIO, "%s: poll: %s", p->what, strerror(errno));
		if (pr == 0)
			return 0;
		enum sp_return n = sp_nonblocking_read(p->port, buf, cap);
		if (n > 0)
			return (int)n;
		if (n < 0)
			return sp_fail(p, "read");
		if (pf.revents & (POLLHUP | POLLERR | POLLNVAL))
			return flasher__error(FLASHER_EDISCONNECTED, "%s: hangup (the unit went away)", p->what);
		if (deadline >= 0 && flasher__tp_now_ms() >= deadline)
			return 0;
	}
}

static int ser_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct serial_impl *p = impl;
	enum sp_return n;
	if (timeout_ms > 0)
		n = sp_blocking_write(p->port, buf, len, (unsigned)timeout_ms);
	else if (timeout_ms < 0)
		n = sp_blocking_write(p->port, buf, len, 0); /* 0 = no limit */
	else
		n = sp_nonblocking_write(p->port, buf, len);
	if (n < 0)
		return sp_fail(p, "write");
	if ((size_t)n < len)
		return flasher__error(FLASHER_ETIMEOUT, "%s: wrote %d of %zu bytes in %d ms", p->what, (int)n, len,
		                      timeout_ms);
	return 0;
}

static int ser_flush(void *impl)
{
	struct serial_impl *p = impl;
	if (sp_flush(p->port, SP_BUF_INPUT) != SP_OK)
		return sp_fail(p, "flush");
	return 0;
}

static void ser_close(void *impl)
{
	struct serial_impl *p = impl;
	if (!p)
		return;
	if (p->fd >= 0)
		(void)ioctl(p->fd, TIOCNXCL); /* the next session may be another user's */
	sp_close(p->port);
	sp_free_port(p->port);
	if (p->claim_fd >= 0)
		close(p->claim_fd);
	free(p);
}

static const flasher_transport_ops serial_ops = {
	.name = "serial", .read = ser_read, .write = ser_write, .flush_input = ser_flush, .close = ser_close};

static int configure(struct sp_port *port)
{
	/* 8N1, no flow control; the baud rate means nothing on USB CDC. */
	if (sp_set_baudrate(port, 115200) != SP_OK || sp_set_bits(port, 8) != SP_OK ||
	    sp_set_parity(port, SP_PARITY_NONE) != SP_OK || sp_set_stopbits(port, 1) != SP_OK ||
	    sp_set_flowcontrol(port, SP_FLOWCONTROL_NONE) != SP_OK)
		return -1;
	/* Many CDC stacks only send once the host raised DTR. */
	if (sp_set_dtr(port, SP_DTR_ON) != SP_OK)
		return -1;
	return 0;
}

int flasher__transport_serial_open(flasher_transport **out, const char *path)
{
	struct stat st;
	if (stat(path, &st) < 0)
		return flasher__open_errno(errno, path, "open port");
	struct sp_port *port = NULL;
	if (sp_get_port_by_name(path, &port) != SP_OK)
		return flasher__transport_termios_open(out, path);
	/* the claim comes before libserialport's open, which already changes
	 * the tty's settings: a port in another session's hands is not touched */
	int claim_fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (claim_fd < 0) {
		int e = errno;
		sp_free_port(port);
		return flasher__open_errno(e, path, "open port");
	}
	int cerr = flasher__claim_port_fd(claim_fd, path);
	if (cerr) {
		close(claim_fd);
		sp_free_port(port);
		return cerr;
	}
	if (sp_open(port, SP_MODE_READ_WRITE) != SP_OK) {
		int e = sp_last_error_code();
		close(claim_fd);
		sp_free_port(port);
		if (e == EACCES || e == EPERM || e == EBUSY || e == ENOENT)
			return flasher__open_errno(e, path, "open port");
		/* e.g. ENOTTY from TIOCMGET on a pty that has a sysfs name. */
		return flasher__transport_termios_open(out, path);
	}
	if (configure(port) < 0) {
		char *msg = sp_last_error_message();
		flasher__error(FLASHER_EIO, "'%s': cannot configure 8N1/DTR: %s", path, msg ? msg : "error");
		sp_free_error_message(msg);
		close(claim_fd);
		sp_close(port);
		sp_free_port(port);
		return FLASHER_EIO;
	}
	struct serial_impl *p = calloc(1, sizeof *p);
	if (!p) {
		close(claim_fd);
		sp_close(port);
		sp_free_port(port);
		return flasher__error(FLASHER_ENOMEM, "serial: out of memory");
	}
	p->port = port;
	p->claim_fd = claim_fd;
	if (sp_get_port_handle(port, &p->fd) != SP_OK)
		p->fd = -1;
	if (p->fd >= 0)
		flasher__port_exclusive(p->fd);
	snprintf(p->what, sizeof p->what, "serial:%s", path);
	return flasher_transport_new(out, &serial_ops, p, p->what);
}
