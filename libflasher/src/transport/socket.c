/* Socket backends: unix:PATH (QEMU serial socket, devsim --listen) and
 * tcp:HOST:PORT (ser2net bridges). */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "../unit_claim.h"
#include "error_internal.h"
#include "transport_internal.h"

struct sock_impl {
	int fd;
	int claim_fd; /* unit_claim.h: one session per socket */
	char what[300];
};

static int sock_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct sock_impl *p = impl;
	return flasher__fd_read(p->fd, buf, cap, timeout_ms, p->what);
}

static int sock_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct sock_impl *p = impl;
	return flasher__sock_write(p->fd, buf, len, timeout_ms, p->what);
}

static int sock_flush(void *impl)
{
	struct sock_impl *p = impl;
	uint8_t junk[512];
	while (recv(p->fd, junk, sizeof junk, MSG_DONTWAIT) > 0)
		;
	return 0;
}

static void sock_close(void *impl)
{
	struct sock_impl *p = impl;
	if (!p)
		return;
	close(p->fd);
	if (p->claim_fd >= 0)
		close(p->claim_fd);
	free(p);
}

static const flasher_transport_ops unix_ops = {
	.name = "unix", .read = sock_read, .write = sock_write, .flush_input = sock_flush, .close = sock_close};
static const flasher_transport_ops tcp_ops = {
	.name = "tcp", .read = sock_read, .write = sock_write, .flush_input = sock_flush, .close = sock_close};

static int wrap(flasher_transport **out, int fd, int claim_fd, const flasher_transport_ops *ops, const char *kind,
                const char *addr)
{
	/* write() on a closed socket must return EPIPE, not kill the process. */
	int fl = fcntl(fd, F_GETFL);
	fcntl(fd, F_SETFL, fl | O_NONBLOCK);
#ifdef SO_NOSIGPIPE
	int one = 1;
	setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
	struct sock_impl *p = calloc(1, sizeof *p);
	if (!p) {
		close(fd);
		if (claim_fd >= 0)
			close(claim_fd);
		return flasher__error(FLASHER_ENOMEM, "socket: out of memory");
	}
	p->fd = fd;
	p->claim_fd = claim_fd;
	snprintf(p->what, sizeof p->what, "%s:%s", kind, addr);
	return flasher_transport_new(out, ops, p, p->what);
}

int flasher__transport_unix_open(flasher_transport **out, const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (!*path || strlen(path) >= sizeof sa.sun_path)
		return flasher__error(FLASHER_EINVAL, "unix socket path '%s' is empty or longer than %zu bytes", path,
		                      sizeof sa.sun_path - 1);
	memcpy(sa.sun_path, path, strlen(path) + 1);
	char spec[sizeof sa.sun_path + 8];
	snprintf(spec, sizeof spec, "unix:%s", path);
	int claim_fd, err = flasher__claim_socket(spec, &claim_fd);
	if (err)
		return err;
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		if (claim_fd >= 0)
			close(claim_fd);
		return flasher__error(FLASHER_EIO, "socket(AF_UNIX): %s", strerror(errno));
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
		int e = errno;
		close(fd);
		if (claim_fd >= 0)
			close(claim_fd);
		return flasher__open_errno(e, path, "connect to unix socket");
	}
	return wrap(out, fd, claim_fd, &unix_ops, "unix", path);
}

int flasher__transport_tcp_open(flasher_transport **out, const char *hostport)
{
	char host[256];
	const char *colon = strrchr(hostport, ':');
	if (!colon || colon == hostport || !colon[1] || (size_t)(colon - hostport) >= sizeof host)
		return flasher__error(FLASHER_EINVAL, "tcp spec '%s': expected HOST:PORT", hostport);
	memcpy(host, hostport, (size_t)(colon - hostport));
	host[colon - hostport] = '\0';
	/* Accept "[::1]:port" too. */
	char *h = host;
	size_t hl = strlen(h);
	if (h[0] == '[' && h[hl - 1] == ']') {
		h[hl - 1] = '\0';
		h++;
	}
	struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM}, *res = NULL;
	int gr = getaddrinfo(h, colon + 1, &hints, &res);
	if (gr != 0)
		return flasher__error(FLASHER_ENOTFOUND, "tcp '%s': cannot resolve: %s", hostport, gai_strerror(gr));
	char spec[300];
	snprintf(spec, sizeof spec, "tcp:%s", hostport);
	int claim_fd, cerr = flasher__claim_socket(spec, &claim_fd);
	if (cerr) {
		freeaddrinfo(res);
		return cerr;
	}
	int fd = -1, err = 0;
	for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_CLOEXEC, ai->ai_protocol);
		if (fd < 0) {
			err = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			break;
		err = errno;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0) {
		if (claim_fd >= 0)
			close(claim_fd);
		return flasher__open_errno(err, hostport, "connect to tcp");
	}
	/* Small frames and windowed ACKs: Nagle would add round-trip delays. */
	int one = 1;
	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
	return wrap(out, fd, claim_fd, &tcp_ops, "tcp", hostport);
}
