/* flasherd: the local daemon. A JSON-RPC 2.0 server on a Unix socket
 * (newline-delimited), a unit registry fed by discovery, and a job manager
 * that updates many units at once. docs/daemon-api.md is the reference.
 *
 * Threads: the main thread owns the sockets (poll loop) and never waits for
 * a unit or a file; workers, the prober and short-lived request threads
 * queue their replies and notifications into client buffers under d->lock
 * and wake the loop through a pipe. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <sys/un.h>
#include <unistd.h>

#include "flasherd.h"

struct client {
	uint64_t id;
	int fd;
	struct peer peer;
	char *in;
	size_t in_len, in_cap;
	char *out;
	size_t out_len, out_cap;
	int out_partial; /* the first line in out was sent in part */
	int subscribed;  /* bit 1 devices, bit 2 jobs */
	int inflight;    /* slow requests not answered yet */
	int pending;     /* complete lines wait in `in` (budget used up) */
	int closing;     /* read no more; close once answered and flushed */
	int dead;        /* close now */
	int dropped;     /* got its final server.dropped notification */
	double last_active, close_by; /* monotonic seconds */
};

/* What one uid holds: the per-uid limits are checked against this. */
struct uid_use {
	uid_t uid;
	int conns, inflight;
	size_t out_bytes;
};

static struct daemon daemon_state;
struct daemon *g_daemon = &daemon_state;
static struct client **clients;
static size_t nclients;
static struct uid_use *uses;
static size_t nuses;
static size_t total_out; /* bytes queued to all clients */
static uint64_t next_client_id = 1;
static int listen_fd = -1;
static int socket_activated;
static volatile sig_atomic_t got_signal;
static int verbose = 1;

double now_unix(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

void daemon_log(const char *fmt, ...)
{
	if (!verbose)
		return;
	va_list ap;
	va_start(ap, fmt);
	flockfile(stderr);
	fprintf(stderr, "flasherd: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	funlockfile(stderr);
	va_end(ap);
}

void server_wake(void)
{
	char c = 1;
	ssize_t r = write(g_daemon->wake_fd[1], &c, 1);
	(void)r; /* a full pipe already means "wake up" */
}

/* systemd's notification protocol (sd_notify(3)): one datagram to
 * $NOTIFY_SOCKET ("@..." is the abstract namespace). No-op without it. */
static void notify_systemd(const char *msg)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	size_t len = path ? strlen(path) : 0;
	if (!len || len >= sizeof a.sun_path || (path[0] != '/' && path[0] != '@'))
		return;
	memcpy(a.sun_path, path, len);
	if (a.sun_path[0] == '@')
		a.sun_path[0] = '\0';
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return;
	ssize_t w = sendto(fd, msg, strlen(msg), MSG_NOSIGNAL, (struct sockaddr *)&a,
	                   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	(void)w;
	close(fd);
}

/* WatchdogSec: half the period systemd asks for, 0 = none. */
static double watchdog_interval(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	if (!usec || (pid && atoi(pid) != (int)getpid()))
		return 0;
	double us = strtod(usec, NULL);
	return us > 0 ? us / 2e6 : 0;
}

static void on_signal(int sig)
{
	got_signal = sig;
	int saved = errno;
	server_wake();
	errno = saved;
}

static double mono_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct uid_use *use_of_locked(uid_t uid)
{
	for (size_t i = 0; i < nuses; i++)
		if (uses[i].uid == uid)
			return &uses[i];
	struct uid_use *n = realloc(uses, (nuses + 1) * sizeof *n);
	if (!n)
		abort();
	uses = n;
	memset(&uses[nuses], 0, sizeof *uses);
	uses[nuses].uid = uid;
	return &uses[nuses++];
}

static void out_account_locked(struct client *c, long long delta)
{
	struct uid_use *u = use_of_locked(c->peer.uid);
	u->out_bytes = (size_t)((long long)u->out_bytes + delta);
	total_out = (size_t)((long long)total_out + delta);
}

static int append_out_locked(struct client *c, const char *text, size_t len)
{
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len + 1)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (!n)
			return -1;
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
	out_account_locked(c, (long long)len + 1);
	return 0;
}

/* A client that does not keep up: its queued lines are thrown away (but
 * the one it is in the middle of receiving), it gets one last line saying
 * why, and it is closed once that is sent (or after 5 s). */
static void drop_locked(struct client *c, const char *why)
{
	if (c->dead || c->dropped)
		return;
	size_t keep = 0;
	if (c->out_partial) {
		char *nl = memchr(c->out, '\n', c->out_len);
		keep = nl ? (size_t)(nl - c->out) + 1 : c->out_len;
	}
	out_account_locked(c, -(long long)(c->out_len - keep));
	c->out_len = keep;
	daemon_log("client %llu (uid %u) dropped: %s", (unsigned long long)c->id, (unsigned)c->peer.uid, why);
	cJSON *m = cJSON_CreateObject();
	cJSON_AddStringToObject(m, "jsonrpc", "2.0");
	cJSON_AddStringToObject(m, "method", "server.dropped");
	cJSON *p = cJSON_AddObjectToObject(m, "params");
	cJSON_AddStringToObject(p, "reason", why);
	char *t = proto_print(m);
	cJSON_Delete(m);
	if (!t || append_out_locked(c, t, strlen(t)) != 0)
		c->dead = 1;
	free(t);
	c->dropped = 1;
	c->closing = 1;
	c->close_by = mono_now() + 5;
}

/* Append one JSON line to a client's output within the limits: per
 * client, per uid, and all clients together. Over the global budget the
 * client with the most queued is the one dropped. */
static void queue_locked(struct client *c, const char *text, size_t len, int reply)
{
	struct daemon *d = g_daemon;
	if (c->dead || c->dropped)
		return;
	size_t need = len + 1;
	char why[160];
	/* Answers are bounded by the client's own requests (it is not read
	 * while its output piles up, and slow requests are limited per uid);
	 * notifications are what a lagging subscriber accumulates. */
	if (!reply && c->out_len + need > d->lim.client_out) {
		snprintf(why, sizeof why, "more than %zu bytes queued for this connection: it does not read", d->lim.client_out);
		drop_locked(c, why);
		return;
	}
	if (!reply && !c->peer.admin && use_of_locked(c->peer.uid)->out_bytes + need > d->lim.uid_out) {
		snprintf(why, sizeof why, "more than %zu bytes queued for the connections of uid %u", d->lim.uid_out,
		         (unsigned)c->peer.uid);
		drop_locked(c, why);
		return;
	}
	while (total_out + need > d->lim.total_out) {
		struct client *big = c;
		for (size_t i = 0; i < nclients; i++)
			if (!clients[i]->dropped && !clients[i]->dead && clients[i]->out_len > big->out_len)
				big = clients[i];
		snprintf(why, sizeof why, "the daemon's output budget (%zu bytes) is used up and this connection lags most",
		         d->lim.total_out);
		drop_locked(big, why);
		if (big == c)
			return;
	}
	if (append_out_locked(c, text, len) != 0)
		c->dead = 1;
}

static struct client *client_by_id_locked(uint64_t id)
{
	for (size_t i = 0; i < nclients; i++)
		if (clients[i]->id == id)
			return clients[i];
	return NULL;
}

int server_request_begin(uint64_t client_id, char *why, size_t n)
{
	struct daemon *d = g_daemon;
	int rc = 0;
	pthread_mutex_lock(&d->lock);
	struct client *c = client_by_id_locked(client_id);
	struct uid_use *u = c ? use_of_locked(c->peer.uid) : NULL;
	if (!c) {
		rc = -1;
		snprintf(why, n, "connection gone");
	} else if (!c->peer.admin && u->inflight >= d->lim.uid_requests) {
		rc = -1;
		snprintf(why, n, "uid %u has %d slow requests in progress (the limit); retry when they are answered",
		         (unsigned)c->peer.uid, u->inflight);
	} else {
		c->inflight++;
		u->inflight++;
	}
	pthread_mutex_unlock(&d->lock);
	return rc;
}

void server_reply(uint64_t client_id, cJSON *response)
{
	char *text = response ? proto_print(response) : NULL;
	cJSON_Delete(response);
	pthread_mutex_lock(&g_daemon->lock);
	struct client *c = client_by_id_locked(client_id);
	if (c) { /* a client that went away does not get its answer */
		c->inflight--;
		use_of_locked(c->peer.uid)->inflight--;
		if (text)
			queue_locked(c, text, strlen(text), 1);
	}
	pthread_mutex_unlock(&g_daemon->lock);
	free(text);
	server_wake();
}

/* Called with d->lock held (every notification source holds it, which
 * keeps the notifications of one job in order). */
void server_notify(const char *method, cJSON *params, long long owner)
{
	int kind = !strncmp(method, "job.", 4) ? 2 : 1;
	cJSON *msg = cJSON_CreateObject();
	cJSON_AddStringToObject(msg, "jsonrpc", "2.0");
	cJSON_AddStringToObject(msg, "method", method);
	cJSON_AddItemToObject(msg, "params", params);
	char *text = NULL;
	for (size_t i = 0; i < nclients; i++) {
		struct client *c = clients[i];
		if (!(c->subscribed & kind))
			continue;
		if (owner != OWNER_ALL && !c->peer.admin && (long long)c->peer.uid != owner)
			continue; /* another user's job */
		if (!text && !(text = proto_print(msg)))
			break;
		queue_locked(c, text, strlen(text), 0);
	}
	cJSON_Delete(msg);
	if (text) {
		free(text);
		server_wake();
	}
}

void server_set_subscribed(uint64_t client_id, int events)
{
	struct client *c = client_by_id_locked(client_id);
	if (c)
		c->subscribed = events;
}

static void client_free_locked(struct client *c)
{
	struct uid_use *u = use_of_locked(c->peer.uid);
	u->conns--;
	u->inflight -= c->inflight; /* their answers will find no client */
	out_account_locked(c, -(long long)c->out_len);
	close(c->fd);
	free(c->in);
	free(c->out);
	free(c);
}

static void accept_clients(void)
{
	struct daemon *d = g_daemon;
	for (;;) {
		int fd = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
		if (fd < 0)
			return;
		struct ucred cred;
		socklen_t len = sizeof cred;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
			close(fd);
			continue;
		}
		struct peer p = {cred.pid, cred.uid, cred.gid, 0};
		int allowed = 0;
		access_classify_peer(fd, &p, &allowed);
		if (!allowed) {
			daemon_log("refused a client with uid %u (pid %d)", (unsigned)cred.uid, (int)cred.pid);
			cJSON *e = rpc_error_response(NULL, RPC_LIBRARY_ERROR, "permission denied", FLASHER_EPERM);
			char *t = proto_print(e);
			if (t) {
				size_t n = strlen(t);
				t[n] = '\n';
				ssize_t w = send(fd, t, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
				(void)w;
				free(t);
			}
			cJSON_Delete(e);
			close(fd);
			continue;
		}
		pthread_mutex_lock(&d->lock);
		struct uid_use *use = use_of_locked(p.uid);
		char why[160] = "";
		if (nclients >= (size_t)d->lim.connections)
			snprintf(why, sizeof why, "the daemon serves %zu connections (the limit)", nclients);
		else if (!p.admin && use->conns >= d->lim.uid_connections)
			snprintf(why, sizeof why, "uid %u has %d connections (the limit)", (unsigned)p.uid, use->conns);
		if (why[0]) {
			pthread_mutex_unlock(&d->lock);
			/* Refused, and told so: never a silent close. */
			cJSON *e = rpc_error_response(NULL, RPC_LIBRARY_ERROR, why, FLASHER_EBUSY);
			char *t = proto_print(e);
			if (t) {
				size_t n = strlen(t);
				t[n] = '\n';
				ssize_t w = send(fd, t, n + 1, MSG_NOSIGNAL | MSG_DONTWAIT);
				(void)w;
				free(t);
			}
			cJSON_Delete(e);
			close(fd);
			continue;
		}
		struct client *c = calloc(1, sizeof *c);
		struct client **n = realloc(clients, (nclients + 1) * sizeof *n);
		if (!c || !n) {
			free(c);
			if (n)
				clients = n;
			pthread_mutex_unlock(&d->lock);
			close(fd);
			continue;
		}
		clients = n;
		/* Little kernel memory per connection: what a client does not
		 * read piles up in its out buffer, where the limits see it. */
		int sndbuf = 16384;
		setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
		c->id = next_client_id++;
		c->fd = fd;
		c->peer = p;
		c->last_active = mono_now();
		use->conns++;
		clients[nclients++] = c;
		pthread_mutex_unlock(&d->lock);
	}
}

static void send_text_locked(struct client *c, cJSON *resp)
{
	char *t = proto_print(resp);
	cJSON_Delete(resp);
	if (t) {
		queue_locked(c, t, strlen(t), 1);
		free(t);
	}
}

static void handle_line(struct client *c, char *line, size_t len)
{
	int code;
	const char *why;
	cJSON *msg = proto_parse_line(line, len, &code, &why);
	if (!msg) {
		if (code) {
			pthread_mutex_lock(&g_daemon->lock);
			send_text_locked(c, rpc_error_response(NULL, code, why, 0));
			pthread_mutex_unlock(&g_daemon->lock);
		}
		return;
	}
	cJSON *resp = rpc_handle(c->id, &c->peer, msg);
	cJSON_Delete(msg);
	pthread_mutex_lock(&g_daemon->lock);
	if (resp)
		send_text_locked(c, resp);
	pthread_mutex_unlock(&g_daemon->lock);
}

static int client_closing(struct client *c)
{
	pthread_mutex_lock(&g_daemon->lock); /* workers may drop it */
	int r = c->closing || c->dead;
	pthread_mutex_unlock(&g_daemon->lock);
	return r;
}

/* Handle at most *budget complete lines waiting in c->in. */
static void handle_buffered(struct client *c, int *budget)
{
	size_t start = 0;
	char *nl;
	while (*budget > 0 && (nl = memchr(c->in + start, '\n', c->in_len - start)) != NULL) {
		size_t len = (size_t)(nl - (c->in + start));
		handle_line(c, c->in + start, len);
		start += len + 1;
		(*budget)--;
		if (client_closing(c))
			break;
	}
	memmove(c->in, c->in + start, c->in_len - start);
	c->in_len -= start;
	c->pending = c->in_len && memchr(c->in, '\n', c->in_len) != NULL;
}

/* One turn of a client: a bounded number of lines, so a client that
 * streams requests cannot hold the loop from the others. */
static void read_client(struct client *c)
{
	int budget = FLASHERD_LINES_PER_TURN;
	for (;;) {
		if (c->in_len)
			handle_buffered(c, &budget);
		if (budget <= 0 || client_closing(c))
			return;
		if (c->in_len > FLASHERD_MAX_LINE) {
			char msg[128];
			snprintf(msg, sizeof msg, "invalid request: line longer than %d bytes", FLASHERD_MAX_LINE);
			pthread_mutex_lock(&g_daemon->lock);
			send_text_locked(c, rpc_error_response(NULL, RPC_INVALID_REQUEST, msg, 0));
			c->closing = 1;
			pthread_mutex_unlock(&g_daemon->lock);
			c->in_len = 0;
			return;
		}
		if (c->in_cap - c->in_len < 4096 && c->in_cap < FLASHERD_MAX_LINE + 4096) {
			size_t cap = c->in_cap ? c->in_cap * 2 : 4096;
			if (cap > FLASHERD_MAX_LINE + 4096)
				cap = FLASHERD_MAX_LINE + 4096;
			char *n = realloc(c->in, cap);
			if (!n) {
				pthread_mutex_lock(&g_daemon->lock);
				c->dead = 1;
				pthread_mutex_unlock(&g_daemon->lock);
				return;
			}
			c->in = n;
			c->in_cap = cap;
		}
		ssize_t r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r == 0) {
			/* Half-closed (nc -U, socat): a last line without '\n' still
			 * counts; its answers are sent before the close. */
			if (c->in_len && !memchr(c->in, '\n', c->in_len) && c->in_len <= FLASHERD_MAX_LINE) {
				handle_line(c, c->in, c->in_len);
				c->in_len = 0;
			}
			pthread_mutex_lock(&g_daemon->lock);
			c->closing = 1;
			pthread_mutex_unlock(&g_daemon->lock);
			return;
		}
		if (r < 0) {
			pthread_mutex_lock(&g_daemon->lock);
			c->dead = 1;
			pthread_mutex_unlock(&g_daemon->lock);
			return;
		}
		c->in_len += (size_t)r;
		c->last_active = mono_now();
	}
}

static void write_client_locked(struct client *c)
{
	while (c->out_len && !c->dead) {
		ssize_t w = send(c->fd, c->out, c->out_len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (w <= 0) {
			c->dead = 1;
			return;
		}
		c->out_partial = c->out[w - 1] != '\n';
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (size_t)w;
		out_account_locked(c, -(long long)w);
	}
	if (!c->out_len && c->out_cap > 65536) { /* a burst is over: give it back */
		free(c->out);
		c->out = NULL;
		c->out_cap = 0;
	}
	if (!c->out_len && c->closing && !c->inflight)
		c->dead = 1;
}

/* Idle connections (no request, no subscription, nothing in flight) are
 * closed after the idle timeout, with a line saying so; dropped ones that
 * do not take their last line within 5 s are closed anyway. */
static void expire_clients_locked(double now)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < nclients; i++) {
		struct client *c = clients[i];
		if (c->dead)
			continue;
		if (c->close_by > 0 && now > c->close_by) {
			c->dead = 1;
			continue;
		}
		if (!c->closing && !c->subscribed && !c->inflight && !c->out_len && !c->in_len &&
		    now - c->last_active > d->lim.idle_timeout_s) {
			char why[96];
			snprintf(why, sizeof why, "idle for %d s (the idle timeout)", d->lim.idle_timeout_s);
			drop_locked(c, why);
		}
	}
}

static int make_socket(const char *path)
{
	struct daemon *d = g_daemon;
	const char *lfds = getenv("LISTEN_FDS"), *lpid = getenv("LISTEN_PID");
	if (lfds && atoi(lfds) >= 1 && (!lpid || atoi(lpid) == (int)getpid())) {
		/* systemd socket activation: our socket is fd 3. */
		listen_fd = 3;
		socket_activated = 1;
		fcntl(listen_fd, F_SETFD, FD_CLOEXEC);
		fcntl(listen_fd, F_SETFL, fcntl(listen_fd, F_GETFL) | O_NONBLOCK);
		unsetenv("LISTEN_FDS");
		unsetenv("LISTEN_PID");
		unsetenv("LISTEN_FDNAMES");
		return 0;
	}
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path) {
		fprintf(stderr, "flasherd: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -1;
	/* A stale socket from a crashed daemon is replaced; a live one is not. */
	struct stat st;
	if (lstat(path, &st) == 0) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, "flasherd: %s exists and is not a socket\n", path);
			close(fd);
			return -1;
		}
		int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
		if (probe >= 0 && connect(probe, (struct sockaddr *)&a, sizeof a) == 0) {
			fprintf(stderr, "flasherd: another daemon serves %s\n", path);
			close(probe);
			close(fd);
			return -1;
		}
		if (probe >= 0)
			close(probe);
		unlink(path);
	}
	/* Owner-only from the first moment: no window with a wider mode. */
	mode_t old = umask(d->have_group ? 0117 : 0177);
	int rc = bind(fd, (struct sockaddr *)&a, sizeof a);
	umask(old);
	if (rc != 0) {
		fprintf(stderr, "flasherd: bind %s: %s\n", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (d->have_group && (chown(path, (uid_t)-1, d->group) != 0 || chmod(path, 0660) != 0)) {
		fprintf(stderr, "flasherd: giving %s to group %u: %s\n", path, (unsigned)d->group, strerror(errno));
		close(fd);
		unlink(path);
		return -1;
	}
	if (listen(fd, 128) != 0) {
		close(fd);
		return -1;
	}
	listen_fd = fd;
	return 0;
}

static int parse_group(const char *name, gid_t *gid, int *have)
{
	struct group *g = getgrnam(name);
	char *end;
	unsigned long n = strtoul(name, &end, 10);
	if (g)
		*gid = g->gr_gid;
	else if (*name && !*end && n < (gid_t)-1)
		*gid = (gid_t)n;
	else
		return -1;
	*have = 1;
	return 0;
}

static int set_group(const char *name)
{
	return parse_group(name, &g_daemon->group, &g_daemon->have_group);
}

static int set_admin_group(const char *name)
{
	return parse_group(name, &g_daemon->admin_group, &g_daemon->have_admin_group);
}

static void allow_port(const char *pattern)
{
	struct daemon *d = g_daemon;
	char **n = realloc(d->allow_ports, (d->nallow_ports + 1) * sizeof *n);
	char *copy = strdup(pattern);
	if (!n || !copy) {
		free(copy);
		if (n)
			d->allow_ports = n;
		return;
	}
	d->allow_ports = n;
	d->allow_ports[d->nallow_ports++] = copy;
}

/* KEY=N for struct limits; 0 on success. */
static int set_limit(const char *key, long long v)
{
	struct limits *l = &g_daemon->lim;
	if (v < 1 || v > (1LL << 40))
		return -1;
	if (!strcmp(key, "client_output"))
		l->client_out = (size_t)v;
	else if (!strcmp(key, "uid_output"))
		l->uid_out = (size_t)v;
	else if (!strcmp(key, "total_output"))
		l->total_out = (size_t)v;
	else if (!strcmp(key, "uid_requests") && v <= FLASHERD_MAX_ASYNC)
		l->uid_requests = (int)v;
	else if (!strcmp(key, "connections") && v <= 65536)
		l->connections = (int)v;
	else if (!strcmp(key, "uid_connections") && v <= 65536)
		l->uid_connections = (int)v;
	else if (!strcmp(key, "idle_timeout_s") && v <= 86400 * 365)
		l->idle_timeout_s = (int)v;
	else if (!strcmp(key, "package_bytes"))
		l->package_bytes = (size_t)v;
	else
		return -1;
	return 0;
}

static int parse_limit_arg(const char *arg)
{
	char key[64];
	const char *eq = strchr(arg, '=');
	if (!eq || (size_t)(eq - arg) >= sizeof key)
		return -1;
	memcpy(key, arg, (size_t)(eq - arg));
	key[eq - arg] = '\0';
	char *end;
	errno = 0;
	long long v = strtoll(eq + 1, &end, 10);
	if (errno || end == eq + 1 || *end)
		return -1;
	return set_limit(key, v);
}

/* "VVVV:PPPP" (hex) */
static int add_usb_id(const char *text)
{
	struct daemon *d = g_daemon;
	unsigned v, p;
	char tail;
	if (sscanf(text, "%4x:%4x%c", &v, &p, &tail) != 2 || d->nusb_ids >= 8)
		return -1;
	d->usb_ids[d->nusb_ids].vid = v;
	d->usb_ids[d->nusb_ids].pid = p;
	d->nusb_ids++;
	return 0;
}

static int add_trusted_key(const char *path)
{
	struct daemon *d = g_daemon;
	if (d->ntrusted_keys >= sizeof d->trusted_keys / sizeof d->trusted_keys[0]) {
		fprintf(stderr, "flasherd: --trusted-key %s: at most 4 keys\n", path);
		return -1;
	}
	if (flasher_pubkey_load(path, d->trusted_keys[d->ntrusted_keys]) != 0) {
		fprintf(stderr, "flasherd: --trusted-key %s: %s\n", path, flasher_error_last());
		return -1;
	}
	d->ntrusted_keys++;
	return 0;
}

/* Config file (JSON, docs/daemon-api.md): ports, nicknames, max_jobs,
 * rescan_ms, group, history, socket. Command-line options win. */
static int load_config(const char *path, int explicit)
{
	struct daemon *d = g_daemon;
	FILE *f = fopen(path, "re");
	if (!f) {
		if (explicit)
			fprintf(stderr, "flasherd: config %s: %s\n", path, strerror(errno));
		return explicit ? -1 : 0;
	}
	char *text = NULL;
	size_t cap = 0, len = 0;
	char buf[4096];
	size_t r;
	while ((r = fread(buf, 1, sizeof buf, f)) > 0) {
		if (len + r + 1 > cap) {
			cap = (len + r + 1) * 2;
			char *n = realloc(text, cap);
			if (!n)
				break;
			text = n;
		}
		memcpy(text + len, buf, r);
		len += r;
	}
	fclose(f);
	cJSON *cfg = text ? cJSON_ParseWithLength(text, len) : NULL;
	free(text);
	if (!cJSON_IsObject(cfg)) {
		fprintf(stderr, "flasherd: config %s: not a JSON object\n", path);
		cJSON_Delete(cfg);
		return -1;
	}
	const cJSON *it;
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(cfg, "ports"))
		if (cJSON_IsString(it)) {
			ports_add_locked(it->valuestring);
			allow_port(it->valuestring);
		}
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(cfg, "allow_ports"))
		if (cJSON_IsString(it))
			allow_port(it->valuestring);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(cfg, "trusted_keys"))
		if (!cJSON_IsString(it) || add_trusted_key(it->valuestring) != 0) {
			cJSON_Delete(cfg);
			return -1; /* a key that does not load must not leave the daemon trusting less than meant */
		}
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(cfg, "usb_ids"))
		if (cJSON_IsString(it) && add_usb_id(it->valuestring) != 0)
			fprintf(stderr, "flasherd: config %s: bad usb_ids entry '%s' (VVVV:PPPP)\n", path, it->valuestring);
	it = cJSON_GetObjectItem(cfg, "nicknames");
	if (cJSON_IsObject(it))
		d->nicknames = cJSON_Duplicate(it, 1);
	if (cJSON_IsNumber(it = cJSON_GetObjectItem(cfg, "max_jobs")) && it->valueint > 0)
		d->max_jobs = it->valueint;
	if (cJSON_IsNumber(it = cJSON_GetObjectItem(cfg, "rescan_ms")) && it->valueint > 0)
		d->rescan_ms = it->valueint;
	if (cJSON_IsNumber(it = cJSON_GetObjectItem(cfg, "keepalive_s")) && it->valueint > 0)
		d->keepalive_s = it->valueint;
	if (cJSON_IsString(it = cJSON_GetObjectItem(cfg, "group")) && set_group(it->valuestring) != 0)
		fprintf(stderr, "flasherd: config %s: unknown group '%s'\n", path, it->valuestring);
	if (cJSON_IsString(it = cJSON_GetObjectItem(cfg, "admin_group")) && set_admin_group(it->valuestring) != 0)
		fprintf(stderr, "flasherd: config %s: unknown group '%s'\n", path, it->valuestring);
	if (cJSON_IsString(it = cJSON_GetObjectItem(cfg, "history")) && !d->history_path[0])
		snprintf(d->history_path, sizeof d->history_path, "%s", it->valuestring);
	if (cJSON_IsString(it = cJSON_GetObjectItem(cfg, "socket")) && !d->socket_path[0])
		snprintf(d->socket_path, sizeof d->socket_path, "%s", it->valuestring);
	cJSON_ArrayForEach(it, cJSON_GetObjectItem(cfg, "limits"))
	{
		long long v;
		if (!proto_int_in(it, 1, 1LL << 40, &v) || set_limit(it->string, v) != 0)
			fprintf(stderr, "flasherd: config %s: bad limit '%s'\n", path, it->string ? it->string : "");
	}
	if (cJSON_IsBool(it = cJSON_GetObjectItem(cfg, "usb_scan")))
		d->usb_scan = cJSON_IsTrue(it);
	cJSON_Delete(cfg);
	return 0;
}

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: flasherd [OPTIONS]\n\n"
	        "The flasher daemon: JSON-RPC 2.0 on a Unix socket (docs/daemon-api.md).\n\n"
	        "  --socket PATH     socket to serve (default $XDG_RUNTIME_DIR/flasherd.sock,\n"
	        "                    /run/flasherd.sock as root; LISTEN_FDS = socket activation)\n"
	        "  --port SPEC       also watch this port (pty, unix:PATH, tcp:HOST:PORT); repeatable\n"
	        "  --config FILE     JSON config (ports, nicknames, max_jobs, group, ...)\n"
	        "  --history FILE    update history (JSON lines)\n"
	        "  --max-jobs N      concurrent updates (default 8)\n"
	        "  --rescan-ms N     port rescan period (default 2000)\n"
	        "  --group NAME      let this group use the socket (mode 0660)\n"
	        "  --admin-group NAME  members see and cancel every user's jobs\n"
	        "  --allow-port PATTERN  clients may ports.add specs matching this (fnmatch);\n"
	        "                    repeatable (USB serial devices of --usb-id are always allowed)\n"
	        "  --usb-id VID:PID  USB ids of flasher units (hex; default 0483:5740); repeatable\n"
	        "  --trusted-key FILE  a vendor public key (KEY.pub): update.start then takes only\n"
	        "                    packages signed by one of these keys; repeatable (up to 4)\n"
	        "  --limit KEY=N     client_output, uid_output, total_output (bytes), uid_requests,\n"
	        "                    connections, uid_connections, idle_timeout_s, package_bytes;\n"
	        "                    repeatable\n"
	        "  --no-usb          do not list USB ports (only --port / config ports)\n"
	        "  --quiet           no log on stderr\n"
	        "  --version, --help\n");
}

int main(int argc, char **argv)
{
	struct daemon *d = g_daemon;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->max_jobs = 8;
	d->rescan_ms = 2000;
	d->probe_timeout_ms = 500;
	d->keepalive_s = 10;
	d->usb_scan = 1;
	d->lim = (struct limits){.client_out = 1u << 20,
	                         .uid_out = 8u << 20,
	                         .total_out = 64u << 20,
	                         .uid_requests = 4,
	                         .connections = 4096,
	                         .uid_connections = 64,
	                         .idle_timeout_s = 300,
	                         .package_bytes = 400u << 20};
	d->next_job_id = 1;
	d->next_batch_id = 1;
	const char *config = NULL;

	static const struct option opts[] = {
		{"socket", required_argument, NULL, 's'},   {"port", required_argument, NULL, 'p'},
		{"config", required_argument, NULL, 'c'},   {"history", required_argument, NULL, 'H'},
		{"max-jobs", required_argument, NULL, 'j'}, {"rescan-ms", required_argument, NULL, 'r'},
		{"group", required_argument, NULL, 'g'},    {"no-usb", no_argument, NULL, 'U'},
		{"quiet", no_argument, NULL, 'q'},          {"version", no_argument, NULL, 'V'},
		{"help", no_argument, NULL, 'h'},           {"admin-group", required_argument, NULL, 'A'},
		{"allow-port", required_argument, NULL, 'P'}, {"usb-id", required_argument, NULL, 'I'},
		{"limit", required_argument, NULL, 'L'},      {"trusted-key", required_argument, NULL, 'K'},
		{NULL, 0, NULL, 0},
	};
	/* Two passes: the config file first, then the command line wins. */
	int opt;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'c')
			config = optarg;
		else if (opt == 'h') {
			usage(stdout);
			return 0;
		} else if (opt == 'V') {
			printf("flasherd %s (libflasher %s)\n", FLASHERD_VERSION, flasher_version());
			return 0;
		} else if (opt == '?') {
			usage(stderr);
			return 2;
		}
	}
	if (config && load_config(config, 1) != 0)
		return 2;
	optind = 1;
	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's': snprintf(d->socket_path, sizeof d->socket_path, "%s", optarg); break;
		case 'p':
			ports_add_locked(optarg);
			allow_port(optarg);
			break;
		case 'P': allow_port(optarg); break;
		case 'L':
			if (parse_limit_arg(optarg) != 0) {
				fprintf(stderr, "flasherd: --limit: bad KEY=N '%s'\n", optarg);
				return 2;
			}
			break;
		case 'K':
			if (add_trusted_key(optarg) != 0)
				return 2;
			break;
		case 'I':
			if (add_usb_id(optarg) != 0) {
				fprintf(stderr, "flasherd: --usb-id: expected VVVV:PPPP (hex), got '%s'\n", optarg);
				return 2;
			}
			break;
		case 'A':
			if (set_admin_group(optarg) != 0) {
				fprintf(stderr, "flasherd: unknown group '%s'\n", optarg);
				return 2;
			}
			break;
		case 'H': snprintf(d->history_path, sizeof d->history_path, "%s", optarg); break;
		case 'j': d->max_jobs = atoi(optarg); break;
		case 'r': d->rescan_ms = atoi(optarg); break;
		case 'g':
			if (set_group(optarg) != 0) {
				fprintf(stderr, "flasherd: unknown group '%s'\n", optarg);
				return 2;
			}
			break;
		case 'U': d->usb_scan = 0; break;
		case 'q': verbose = 0; break;
		default: break;
		}
	}
	if (!d->nusb_ids) {
		d->usb_ids[0].vid = FLASHER_USB_VID;
		d->usb_ids[0].pid = FLASHER_USB_PID;
		d->nusb_ids = 1;
	}
	if (optind < argc || d->max_jobs < 1 || d->max_jobs > 256 || d->rescan_ms < 50) {
		usage(stderr);
		return 2;
	}
	const char *rt = getenv("XDG_RUNTIME_DIR");
	if (!d->socket_path[0]) {
		if (geteuid() == 0)
			snprintf(d->socket_path, sizeof d->socket_path, "/run/flasherd.sock");
		else if (rt)
			snprintf(d->socket_path, sizeof d->socket_path, "%s/flasherd.sock", rt);
		else
			snprintf(d->socket_path, sizeof d->socket_path, "/tmp/flasherd-%u.sock", (unsigned)geteuid());
	}
	if (!d->history_path[0]) {
		const char *state = getenv("XDG_STATE_HOME"), *home = getenv("HOME");
		if (geteuid() == 0)
			snprintf(d->history_path, sizeof d->history_path, "/var/lib/flasherd/history.jsonl");
		else if (state)
			snprintf(d->history_path, sizeof d->history_path, "%s/flasherd/history.jsonl", state);
		else
			snprintf(d->history_path, sizeof d->history_path, "%s/.local/state/flasherd/history.jsonl",
			         home ? home : "/tmp");
	}

	/* Descriptors for every connection the limits allow, and some to spare. */
	struct rlimit rl;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
		if (rl.rlim_cur != RLIM_INFINITY && (rlim_t)d->lim.connections + 128 > rl.rlim_cur)
			d->lim.connections = rl.rlim_cur > 256 ? (int)(rl.rlim_cur - 128) : 128;
	}
	signal(SIGPIPE, SIG_IGN);
	if (pipe2(d->wake_fd, O_CLOEXEC | O_NONBLOCK) != 0)
		return 1;
	struct sigaction sa = {0};
	sa.sa_handler = on_signal;
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);

	if (history_open(d->history_path) != 0) {
		fprintf(stderr, "flasherd: %s\n", flasher_error_last());
		return 1;
	}
	if (make_socket(d->socket_path) != 0)
		return 1;
	int resumed = jobs_resume_from_history();
	if (units_start() != 0 || jobs_start() != 0)
		return 1;
	daemon_log("serving %s (history %s, %d concurrent jobs, %zu ports%s)%s", socket_activated ? "fd 3" : d->socket_path,
	           d->history_path, d->max_jobs, d->nports, d->usb_scan ? " + USB" : "",
	           resumed ? ", resuming interrupted jobs" : "");

	double wd_every = watchdog_interval(), wd_last = mono_now();
	notify_systemd("READY=1\nSTATUS=serving");
	struct pollfd *pfd = NULL;
	size_t pcap = 0;
	while (!got_signal) {
		/* The loop's own heartbeat: a loop stuck on a lock or a call
		 * misses it and systemd restarts the daemon. */
		if (wd_every > 0 && mono_now() - wd_last >= wd_every) {
			notify_systemd("WATCHDOG=1");
			wd_last = mono_now();
		}
		pthread_mutex_lock(&d->lock);
		size_t n = nclients + 2;
		if (n > pcap) {
			struct pollfd *np = realloc(pfd, n * sizeof *pfd);
			if (!np) {
				pthread_mutex_unlock(&d->lock);
				break;
			}
			pfd = np;
			pcap = n;
		}
		int any_pending = 0;
		pfd[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = d->wake_fd[0], .events = POLLIN};
		for (size_t i = 0; i < nclients; i++) {
			struct client *c = clients[i];
			/* A client whose answers pile up is not read until it reads. */
			int readable = !c->closing && c->out_len <= d->lim.client_out / 2;
			pfd[i + 2] = (struct pollfd){.fd = c->fd, .events = (short)((readable ? POLLIN : 0) | (c->out_len ? POLLOUT : 0))};
			any_pending |= c->pending && readable;
		}
		size_t polled = nclients;
		pthread_mutex_unlock(&d->lock);

		int wait_ms = wd_every > 0 && wd_every < 1 ? (int)(wd_every * 1000) : 1000;
		if (poll(pfd, polled + 2, any_pending ? 0 : wait_ms) < 0 && errno != EINTR)
			break;
		if (pfd[1].revents) {
			char buf[256];
			while (read(d->wake_fd[0], buf, sizeof buf) > 0)
				;
		}
		/* Only this thread adds or removes clients, so index i of the
		 * snapshot is still client i. */
		for (size_t i = 0; i < polled; i++) {
			struct client *c = clients[i];
			if ((pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR)) || (c->pending && (pfd[i + 2].events & POLLIN)))
				read_client(c);
		}
		if (pfd[0].revents & POLLIN)
			accept_clients();
		pthread_mutex_lock(&d->lock);
		expire_clients_locked(mono_now());
		for (size_t i = 0; i < nclients;) {
			struct client *c = clients[i];
			if (!c->dead)
				write_client_locked(c);
			if (c->dead) {
				clients[i] = clients[--nclients];
				client_free_locked(c);
				continue;
			}
			i++;
		}
		pthread_mutex_unlock(&d->lock);
	}
	daemon_log("stopping (signal %d)", (int)got_signal);
	notify_systemd("STOPPING=1");
	pthread_mutex_lock(&d->lock);
	d->stopping = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	jobs_stop();
	units_stop();
	rpc_wait_async();
	history_close();
	if (!socket_activated)
		unlink(d->socket_path);
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < nclients; i++)
		client_free_locked(clients[i]);
	nclients = 0;
	pthread_mutex_unlock(&d->lock);
	free(clients);
	free(pfd);
	return 0;
}
