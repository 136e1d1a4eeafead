/* termios backend: ptys, socat links and any tty libserialport cannot open. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include "../unit_claim.h"
#include "error_internal.h"
#include "transport_internal.h"

struct termios_impl {
	int fd;
	char what[300];
};

static int tio_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct termios_impl *p = impl;
	return flasher__fd_read(p->fd, buf, cap, timeout_ms, p->what);
}

static int tio_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct termios_impl *p = impl;
	return flasher__fd_write(p->fd, buf, len, timeout_ms, p->what);
}

static int tio_flush(void *impl)
{
	struct termios_impl *p = impl;
	if (tcflush(p->fd, TCIFLUSH) < 0)
		return flasher__error(FLASHER_EIO, "%s: tcflush: %s", p->what, strerror(errno));
	return 0;
}

static void tio_close(void *impl)
{
	struct termios_impl *p = impl;
	if (!p)
		return;
	(void)ioctl(p->fd, TIOCNXCL); /* the next session may be another user's */
	close(p->fd);
	free(p);
}

static const flasher_transport_ops termios_ops = {
	.name = "termios",
	.read = tio_read,
	.write = tio_write,
	.flush_input = tio_flush,
	.close = tio_close,
};

int flasher__transport_termios_open(flasher_transport **out, const char *path)
{
	int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return flasher__open_errno(errno, path, "open");
	struct termios tio;
	if (tcgetattr(fd, &tio) < 0) {
		int e = errno;
		close(fd);
		return flasher__error(FLASHER_EINVAL, "'%s' is not a serial port or pty: %s", path, strerror(e));
	}
	/* before any setting or byte: the port may be another session's */
	int err = flasher__claim_port_fd(fd, path);
	if (err) {
		close(fd);
		return err;
	}
	flasher__port_exclusive(fd);
	/* Raw 8N1, no flow control: the protocol frames carry their own CRC. */
	cfmakeraw(&tio);
	tio.c_cflag |= CLOCAL | CREAD;
	tio.c_cflag &= ~(CRTSCTS | CSTOPB | PARENB);
	tio.c_iflag &= ~(IXON | IXOFF | IXANY);
	tio.c_cc[VMIN] = 1;
	tio.c_cc[VTIME] = 0;
	cfsetispeed(&tio, B115200);
	cfsetospeed(&tio, B115200);
	if (tcsetattr(fd, TCSANOW, &tio) < 0) {
		int e = errno;
		close(fd);
		return flasher__error(FLASHER_EIO, "'%s': cannot set raw mode: %s", path, strerror(e));
	}
	struct termios_impl *p = calloc(1, sizeof *p);
	if (!p) {
		close(fd);
		return flasher__error(FLASHER_ENOMEM, "termios: out of memory");
	}
	p->fd = fd;
	snprintf(p->what, sizeof p->what, "termios:%s", path);
	return flasher_transport_new(out, &termios_ops, p, p->what);
}
