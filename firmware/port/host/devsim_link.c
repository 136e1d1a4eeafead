/*
 * devsim_link.c - pty / Unix socket byte pipe with a link-rate model.
 */
#include "devsim_link.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

/* A writer that nobody reads is given this long before bytes are dropped. */
#define WRITE_STALL_MS 500
/* Link time a late reader may make up: what a USB stack buffers (64 KiB),
 * at most 100 ms of a slow link. Without it every overrun of a sleep (a
 * loaded machine) is lost link time and the throughput drops; the long-run
 * rate stays the set rate. */
#define BURST_BYTES 65536.0
#define BURST_MAX_S 0.1
/* A booked link is looked at again after one USB frame, or once the rate
 * allows one full-speed packet if that takes longer (slow links). */
#define FRAME_S 0.001
#define PACKET_BYTES 64.0

struct pacer {
	double rate;  /* bytes/s, 0 = unlimited */
	double t;     /* the time (s) up to which the link is booked */
	double burst; /* s of unused link time that may be made up */
};

struct devsim_link {
	int is_pty;
	int fd;        /* pty master or connected client, -1 if none */
	int slave_fd;  /* pty: kept open so host reopens see no hangup */
	int listen_fd; /* socket: the listening socket */
	char *name;    /* pty slave path */
	char *remove_path; /* symlink or socket file removed at close */
	struct pacer rx, tx;
};

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void sleep_s(double s)
{
	struct timespec ts;
	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - (double)ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* How many of want bytes may pass now; books them. */
static size_t pacer_allow(struct pacer *p, size_t want)
{
	double now, avail;
	size_t n;

	if (p->rate <= 0)
		return want;
	now = now_s();
	if (p->t < now - p->burst)
		p->t = now - p->burst;
	avail = (now - p->t) * p->rate;
	if (avail < 1)
		return 0;
	n = avail < (double)want ? (size_t)avail : want;
	p->t += (double)n / p->rate;
	return n;
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);
	return fl < 0 ? -1 : fcntl(fd, F_SETFL, fl | O_NONBLOCK);
}

static devsim_link *link_new(void)
{
	devsim_link *l = calloc(1, sizeof(*l));
	if (l) {
		l->fd = -1;
		l->slave_fd = -1;
		l->listen_fd = -1;
	}
	return l;
}

int devsim_link_open_pty(devsim_link **out, const char *link_path, const char **name)
{
	devsim_link *l = link_new();
	struct termios tio;
	const char *sn;
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	l->is_pty = 1;
	l->fd = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (l->fd < 0 || grantpt(l->fd) != 0 || unlockpt(l->fd) != 0)
		goto fail_errno;
	sn = ptsname(l->fd);
	if (!sn)
		goto fail_errno;
	l->name = strdup(sn);
	l->slave_fd = open(sn, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (!l->name || l->slave_fd < 0)
		goto fail_errno;
	/* raw on the slave side: the host's termios backend sets it again */
	if (tcgetattr(l->slave_fd, &tio) != 0)
		goto fail_errno;
	cfmakeraw(&tio);
	if (tcsetattr(l->slave_fd, TCSANOW, &tio) != 0 || set_nonblock(l->fd) != 0)
		goto fail_errno;
	if (link_path) {
		unlink(link_path); /* a stale link from an earlier run */
		if (symlink(sn, link_path) != 0)
			goto fail_errno;
		l->remove_path = strdup(link_path);
	}
	*name = l->name;
	*out = l;
	return 0;
fail_errno:
	rc = -errno;
	devsim_link_close(l);
	return rc ? rc : -EIO;
}

int devsim_link_open_unix(devsim_link **out, const char *path)
{
	devsim_link *l = link_new();
	struct sockaddr_un sa;
	int rc;

	*out = NULL;
	if (!l)
		return -ENOMEM;
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof(sa.sun_path)) {
		free(l);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, path);
	l->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (l->listen_fd < 0)
		goto fail_errno;
	unlink(path);
	if (bind(l->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		goto fail_errno;
	l->remove_path = strdup(path);
	if (listen(l->listen_fd, 4) != 0)
		goto fail_errno;
	*out = l;
	return 0;
fail_errno:
	rc = -errno;
	devsim_link_close(l);
	return rc ? rc : -EIO;
}

void devsim_link_close(devsim_link *l)
{
	if (!l)
		return;
	if (l->fd >= 0)
		close(l->fd);
	if (l->slave_fd >= 0)
		close(l->slave_fd);
	if (l->listen_fd >= 0)
		close(l->listen_fd);
	if (l->remove_path)
		unlink(l->remove_path);
	free(l->remove_path);
	free(l->name);
	free(l);
}

void devsim_link_set_rate(devsim_link *l, uint32_t bytes_per_s)
{
	double burst = bytes_per_s ? BURST_BYTES / bytes_per_s : 0;

	if (burst > BURST_MAX_S)
		burst = BURST_MAX_S;
	l->rx.rate = bytes_per_s;
	l->tx.rate = bytes_per_s;
	l->rx.burst = l->tx.burst = burst;
	l->rx.t = l->tx.t = now_s();
}

/* Seconds until the pacer lets bytes through again: one frame, or one
 * packet's worth on a slow link. */
static double pacer_recheck_s(const struct pacer *p)
{
	double packet = PACKET_BYTES / p->rate;

	return packet > FRAME_S ? packet : FRAME_S;
}

/* Socket mode: take a waiting connection, replacing the current client. */
static void accept_client(devsim_link *l)
{
	int c;

	if (l->listen_fd < 0)
		return;
	while ((c = accept4(l->listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)) >= 0) {
		if (l->fd >= 0)
			close(l->fd);
		l->fd = c;
	}
}

static void drop_client(devsim_link *l)
{
	if (!l->is_pty && l->fd >= 0) {
		close(l->fd);
		l->fd = -1;
	}
}

uint32_t devsim_link_read(devsim_link *l, uint8_t *buf, uint32_t cap)
{
	size_t allow;
	ssize_t n;

	accept_client(l);
	if (l->fd < 0 || cap == 0)
		return 0;
	allow = pacer_allow(&l->rx, cap);
	if (allow == 0)
		return 0;
	n = read(l->fd, buf, allow);
	if (n > 0) {
		/* give back what the pacer booked but did not arrive */
		if (l->rx.rate > 0)
			l->rx.t -= (double)(allow - (size_t)n) / l->rx.rate;
		return (uint32_t)n;
	}
	if (l->rx.rate > 0)
		l->rx.t -= (double)allow / l->rx.rate;
	if (n == 0 || (errno != EAGAIN && errno != EINTR && errno != EIO))
		drop_client(l); /* socket closed by the host */
	return 0;
}

void devsim_link_write(devsim_link *l, const uint8_t *buf, uint32_t len)
{
	double deadline = now_s() + WRITE_STALL_MS / 1000.0;

	accept_client(l);
	while (len && l->fd >= 0) {
		size_t allow = pacer_allow(&l->tx, len);
		ssize_t n;

		if (allow == 0) {
			sleep_s((len < PACKET_BYTES ? len : PACKET_BYTES) / l->tx.rate);
			continue;
		}
		n = write(l->fd, buf, allow);
		if (n > 0) {
			if ((size_t)n < allow && l->tx.rate > 0)
				l->tx.t -= (double)(allow - (size_t)n) / l->tx.rate;
			buf += n;
			len -= (uint32_t)n;
			continue;
		}
		if (l->tx.rate > 0)
			l->tx.t -= (double)allow / l->tx.rate;
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN) {
			struct pollfd p = { .fd = l->fd, .events = POLLOUT };
			double left = deadline - now_s();
			if (left <= 0)
				return; /* nobody reads: drop, as a CDC device would */
			poll(&p, 1, (int)(left * 1000) + 1);
			continue;
		}
		drop_client(l);
		return;
	}
}

void devsim_link_wait(devsim_link *l, int timeout_ms)
{
	struct pollfd p[2];
	int n = 0;

	if (l->rx.rate > 0 && (now_s() - l->rx.t) * l->rx.rate < PACKET_BYTES) {
		/* the link is booked: input waits for the rate, do not spin */
		double s = pacer_recheck_s(&l->rx);

		sleep_s(timeout_ms >= 0 && s > timeout_ms / 1000.0 ? timeout_ms / 1000.0 : s);
		return;
	}
	if (l->fd >= 0)
		p[n++] = (struct pollfd){ .fd = l->fd, .events = POLLIN };
	if (l->listen_fd >= 0)
		p[n++] = (struct pollfd){ .fd = l->listen_fd, .events = POLLIN };
	if (n == 0) {
		sleep_s(timeout_ms / 1000.0);
		return;
	}
	if (poll(p, (nfds_t)n, timeout_ms) > 0 && l->is_pty && (p[0].revents & POLLHUP))
		sleep_s(timeout_ms / 1000.0); /* no reader on the other side: do not spin */
}
