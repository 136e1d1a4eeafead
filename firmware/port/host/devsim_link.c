/*
 * devsim_link.c - pty / Unix socket byte pipe with a link-rate model.
 *
 * The model is full-speed USB CDC as a unit on a desk has it: one bus
 * budget for both directions (half-duplex at the set rate), credit for link
 * time the unit did not use bounded by the unit's receive buffering (what
 * the host may have pushed into the unit's ring while it was busy), every
 * answer reaching the host one turnaround latency after the unit wrote it,
 * and a reset taking the port away for the re-enumeration delay.
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
/* Answers written but not yet due at the host: the unit's transmit
 * buffering (the chip port's 2 KiB TX ring, with room for a window of ACKs
 * beyond it); a writer blocks above it. */
#define OUTQ_MAX 8192u
#define OUTQ_CHUNKS 64u
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
	struct pacer bus;  /* one budget for both directions: half-duplex */
	double rx_buffer;  /* bytes of credit: the unit's receive ring */
	double latency_s;  /* an answer reaches the host this much later */
	double gone_until; /* re-enumerating: no traffic before this time */
	/* answers on their way to the host (latency > 0 only) */
	uint8_t outq[OUTQ_MAX + DEVSIM_LINK_WRITE_MAX];
	uint32_t outq_len;
	struct {
		uint32_t end;   /* outq offset just after this chunk */
		double release; /* when its first byte may reach the host */
	} chunk[OUTQ_CHUNKS];
	uint32_t nchunks;
	double stall_since; /* the host stopped reading at (0: it reads) */
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
		l->rx_buffer = DEVSIM_RX_BUFFER;
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

static void drop_client(devsim_link *l);
static void outq_pump(devsim_link *l);
static double outq_due_s(const devsim_link *l);

/* Credit: link time the unit did not use (busy with an erase, scheduled
 * late) that it may make up later, as many bytes as its receive ring held
 * meanwhile, and never less than one full-speed packet. */
static void set_burst(devsim_link *l)
{
	double bytes = l->rx_buffer > PACKET_BYTES ? l->rx_buffer : PACKET_BYTES;

	l->bus.burst = l->bus.rate > 0 ? bytes / l->bus.rate : 0;
}

void devsim_link_set_rate(devsim_link *l, uint32_t bytes_per_s)
{
	l->bus.rate = bytes_per_s;
	l->bus.t = now_s();
	set_burst(l);
}

void devsim_link_set_rx_buffer(devsim_link *l, uint32_t bytes)
{
	l->rx_buffer = bytes;
	set_burst(l);
}

void devsim_link_set_latency(devsim_link *l, uint32_t us)
{
	l->latency_s = us / 1e6;
}

void devsim_link_reenumerate(devsim_link *l, uint32_t ms)
{
	double give_up = now_s() + WRITE_STALL_MS / 1000.0;

	/* the answer to the request that reset the unit goes out first (the
	 * port resets once its transmit ring is empty) */
	while (l->nchunks && l->fd >= 0 && now_s() < give_up) {
		double due = outq_due_s(l);

		sleep_s(due > 0 ? due : FRAME_S / 4);
		outq_pump(l);
	}
	l->outq_len = 0; /* the USB stack restarts: what it still held is gone */
	l->nchunks = 0;
	l->stall_since = 0;
	if (ms)
		l->gone_until = now_s() + ms / 1000.0;
}

/* While the port is away, bytes the host writes are lost; true until the
 * re-enumeration delay has passed. */
static int port_gone(devsim_link *l)
{
	uint8_t sink[4096];

	if (l->gone_until <= 0)
		return 0;
	if (now_s() < l->gone_until) {
		while (l->fd >= 0 && read(l->fd, sink, sizeof sink) > 0)
			;
		return 1;
	}
	l->gone_until = 0;
	l->bus.t = now_s(); /* a fresh bus: no credit from the time away */
	return 0;
}

/* Hand due answers to the host, paced on the bus. */
static void outq_pump(devsim_link *l)
{
	uint32_t sent = 0, done_chunks = 0;
	double now = now_s();

	while (done_chunks < l->nchunks && l->fd >= 0) {
		uint32_t end = l->chunk[done_chunks].end;
		size_t allow;
		ssize_t n;

		if (now < l->chunk[done_chunks].release)
			break;
		allow = pacer_allow(&l->bus, end - sent);
		if (allow == 0)
			break;
		n = write(l->fd, l->outq + sent, allow);
		if (n < 0 && errno == EINTR)
			n = 0;
		if (n < (ssize_t)allow && l->bus.rate > 0)
			l->bus.t -= (double)(allow - (size_t)(n > 0 ? n : 0)) / l->bus.rate;
		if (n < 0 && errno != EAGAIN) {
			drop_client(l);
			break;
		}
		if (n <= 0 || (size_t)n < allow) {
			sent += n > 0 ? (uint32_t)n : 0;
			/* nobody reads: drop after a while, as a CDC device would */
			if (!l->stall_since)
				l->stall_since = now;
			else if (now - l->stall_since > WRITE_STALL_MS / 1000.0)
				sent = l->outq_len, done_chunks = l->nchunks;
			break;
		}
		l->stall_since = 0;
		sent += (uint32_t)n;
		if (sent == end)
			done_chunks++;
	}
	if (l->fd < 0)
		sent = l->outq_len, done_chunks = l->nchunks;
	if (!sent)
		return;
	memmove(l->outq, l->outq + sent, l->outq_len - sent);
	l->outq_len -= sent;
	memmove(l->chunk, l->chunk + done_chunks, (l->nchunks - done_chunks) * sizeof l->chunk[0]);
	l->nchunks -= done_chunks;
	for (uint32_t i = 0; i < l->nchunks; i++)
		l->chunk[i].end -= sent;
}

/* Seconds until the next queued answer is due (-1: none queued). */
static double outq_due_s(const devsim_link *l)
{
	double s;

	if (!l->nchunks)
		return -1;
	s = l->chunk[0].release - now_s();
	return s > 0 ? s : 0;
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
	if (port_gone(l))
		return 0;
	outq_pump(l);
	if (l->fd < 0 || cap == 0)
		return 0;
	allow = pacer_allow(&l->bus, cap);
	if (allow == 0)
		return 0;
	n = read(l->fd, buf, allow);
	if (n > 0) {
		/* give back what the pacer booked but did not arrive */
		if (l->bus.rate > 0)
			l->bus.t -= (double)(allow - (size_t)n) / l->bus.rate;
		return (uint32_t)n;
	}
	if (l->bus.rate > 0)
		l->bus.t -= (double)allow / l->bus.rate;
	if (n == 0 || (errno != EAGAIN && errno != EINTR && errno != EIO))
		drop_client(l); /* socket closed by the host */
	return 0;
}

/* Queue an answer: it reaches the host one latency from now. */
static void outq_write(devsim_link *l, const uint8_t *buf, uint32_t len)
{
	while (len && l->fd >= 0) {
		uint32_t n = len > DEVSIM_LINK_WRITE_MAX ? DEVSIM_LINK_WRITE_MAX : len;

		outq_pump(l);
		if (l->outq_len > OUTQ_MAX || l->nchunks == OUTQ_CHUNKS) {
			/* the unit's transmit buffering is full: wait for the host */
			double due = outq_due_s(l);

			sleep_s(due > FRAME_S ? due : FRAME_S);
			continue;
		}
		memcpy(l->outq + l->outq_len, buf, n);
		l->outq_len += n;
		l->chunk[l->nchunks].end = l->outq_len;
		l->chunk[l->nchunks].release = now_s() + l->latency_s;
		l->nchunks++;
		buf += n;
		len -= n;
	}
	outq_pump(l);
}

void devsim_link_write(devsim_link *l, const uint8_t *buf, uint32_t len)
{
	double deadline = now_s() + WRITE_STALL_MS / 1000.0;

	accept_client(l);
	if (port_gone(l))
		return; /* not enumerated: nobody receives it */
	if (l->latency_s > 0) {
		outq_write(l, buf, len);
		return;
	}
	while (len && l->fd >= 0) {
		size_t allow = pacer_allow(&l->bus, len);
		ssize_t n;

		if (allow == 0) {
			sleep_s((len < PACKET_BYTES ? len : PACKET_BYTES) / l->bus.rate);
			continue;
		}
		n = write(l->fd, buf, allow);
		if (n > 0) {
			if ((size_t)n < allow && l->bus.rate > 0)
				l->bus.t -= (double)(allow - (size_t)n) / l->bus.rate;
			buf += n;
			len -= (uint32_t)n;
			continue;
		}
		if (l->bus.rate > 0)
			l->bus.t -= (double)allow / l->bus.rate;
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
	double due = outq_due_s(l);
	int n = 0;

	if (l->gone_until > 0) {
		/* away for the re-enumeration: nothing to do until it is back */
		double s = l->gone_until - now_s();

		sleep_s(timeout_ms >= 0 && s > timeout_ms / 1000.0 ? timeout_ms / 1000.0 : s);
		port_gone(l);
		return;
	}
	if (l->bus.rate > 0 && (now_s() - l->bus.t) * l->bus.rate < PACKET_BYTES) {
		/* the link is booked: input waits for the rate, do not spin */
		double s = pacer_recheck_s(&l->bus);

		sleep_s(timeout_ms >= 0 && s > timeout_ms / 1000.0 ? timeout_ms / 1000.0 : s);
		outq_pump(l);
		return;
	}
	if (due >= 0) {
		/* an answer falls due: wake for it (and at least a frame later
		 * when the host does not take it) */
		int due_ms = (int)(due * 1000.0) + 1;

		if (timeout_ms < 0 || due_ms < timeout_ms)
			timeout_ms = due_ms;
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
	outq_pump(l);
}
