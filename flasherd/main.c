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
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "flasherd.h"

struct client {
	uint64_t id;
	int fd;
	struct peer peer;
	char *in;
	size_t in_len;
	char *out;
	size_t out_len, out_cap;
	int subscribed; /* bit 1 devices, bit 2 jobs */
	int closing;    /* close once out is flushed */
	int dead;       /* close now */
};

static struct daemon daemon_state;
struct daemon *g_daemon = &daemon_state;
static struct client **clients;
static size_t nclients;
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

static void on_signal(int sig)
{
	got_signal = sig;
	int saved = errno;
	server_wake();
	errno = saved;
}

/* Append one JSON line to a client's output; drops clients that do not
 * read (a stuck GUI must not make the daemon grow without bound). */
static void queue_locked(struct client *c, const char *text, size_t len)
{
	if (c->dead)
		return;
	if (c->out_len + len + 1 > FLASHERD_MAX_OUTBUF) {
		daemon_log("client %llu does not read its notifications: dropped", (unsigned long long)c->id);
		c->dead = 1;
		return;
	}
	if (c->out_len + len + 1 > c->out_cap) {
		size_t cap = c->out_cap ? c->out_cap : 4096;
		while (cap < c->out_len + len + 1)
			cap *= 2;
		char *n = realloc(c->out, cap);
		if (!n) {
			c->dead = 1;
			return;
		}
		c->out = n;
		c->out_cap = cap;
	}
	memcpy(c->out + c->out_len, text, len);
	c->out[c->out_len + len] = '\n';
	c->out_len += len + 1;
}

static struct client *client_by_id_locked(uint64_t id)
{
	for (size_t i = 0; i < nclients; i++)
		if (clients[i]->id == id)
			return clients[i];
	return NULL;
}

void server_reply(uint64_t client_id, cJSON *response)
{
	if (!response)
		return;
	char *text = cJSON_PrintUnformatted(response);
	cJSON_Delete(response);
	if (!text)
		return;
	pthread_mutex_lock(&g_daemon->lock);
	struct client *c = client_by_id_locked(client_id);
	if (c) /* a client that went away does not get its answer */
		queue_locked(c, text, strlen(text));
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
		if (!text && !(text = cJSON_PrintUnformatted(msg)))
			break;
		queue_locked(c, text, strlen(text));
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

static void client_free(struct client *c)
{
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
			char *t = cJSON_PrintUnformatted(e);
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
		if (nclients >= FLASHERD_MAX_CLIENTS) {
			pthread_mutex_unlock(&d->lock);
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
		c->id = next_client_id++;
		c->fd = fd;
		c->peer = p;
		c->in = malloc(FLASHERD_MAX_LINE + 1);
		if (!c->in) {
			pthread_mutex_unlock(&d->lock);
			client_free(c);
			continue;
		}
		clients[nclients++] = c;
		pthread_mutex_unlock(&d->lock);
	}
}

static void send_text_locked(struct client *c, cJSON *resp)
{
	char *t = cJSON_PrintUnformatted(resp);
	cJSON_Delete(resp);
	if (t) {
		queue_locked(c, t, strlen(t));
		free(t);
	}
}

static void handle_line(struct client *c, char *line, size_t len)
{
	while (len && (line[len - 1] == '\r' || line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	if (!len)
		return;
	cJSON *msg = cJSON_ParseWithLength(line, len);
	if (!msg) {
		pthread_mutex_lock(&g_daemon->lock);
		send_text_locked(c, rpc_error_response(NULL, RPC_PARSE_ERROR, "parse error: not valid JSON", 0));
		pthread_mutex_unlock(&g_daemon->lock);
		return;
	}
	cJSON *resp = rpc_handle(c->id, &c->peer, msg);
	cJSON_Delete(msg);
	pthread_mutex_lock(&g_daemon->lock);
	if (resp)
		send_text_locked(c, resp);
	pthread_mutex_unlock(&g_daemon->lock);
}

static void read_client(struct client *c)
{
	for (;;) {
		if (c->closing)
			return;
		ssize_t r = recv(c->fd, c->in + c->in_len, FLASHERD_MAX_LINE + 1 - c->in_len, 0);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			pthread_mutex_lock(&g_daemon->lock); /* workers set it too */
			c->dead = 1;
			pthread_mutex_unlock(&g_daemon->lock);
			return;
		}
		c->in_len += (size_t)r;
		size_t start = 0;
		for (size_t i = 0; i < c->in_len; i++) {
			if (c->in[i] != '\n')
				continue;
			handle_line(c, c->in + start, i - start);
			start = i + 1;
		}
		memmove(c->in, c->in + start, c->in_len - start);
		c->in_len -= start;
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
		memmove(c->out, c->out + w, c->out_len - (size_t)w);
		c->out_len -= (size_t)w;
	}
	if (!c->out_len && c->closing)
		c->dead = 1;
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

	struct pollfd *pfd = NULL;
	size_t pcap = 0;
	while (!got_signal) {
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
		pfd[0] = (struct pollfd){.fd = listen_fd, .events = POLLIN};
		pfd[1] = (struct pollfd){.fd = d->wake_fd[0], .events = POLLIN};
		for (size_t i = 0; i < nclients; i++) {
			struct client *c = clients[i];
			pfd[i + 2] = (struct pollfd){.fd = c->fd, .events = (short)((c->closing ? 0 : POLLIN) | (c->out_len ? POLLOUT : 0))};
		}
		size_t polled = nclients;
		pthread_mutex_unlock(&d->lock);

		if (poll(pfd, polled + 2, -1) < 0 && errno != EINTR)
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
			if (pfd[i + 2].revents & (POLLIN | POLLHUP | POLLERR))
				read_client(c);
		}
		if (pfd[0].revents & POLLIN)
			accept_clients();
		pthread_mutex_lock(&d->lock);
		for (size_t i = 0; i < nclients;) {
			struct client *c = clients[i];
			if (!c->dead)
				write_client_locked(c);
			if (c->dead) {
				clients[i] = clients[--nclients];
				client_free(c);
				continue;
			}
			i++;
		}
		pthread_mutex_unlock(&d->lock);
	}
	daemon_log("stopping (signal %d)", (int)got_signal);
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
		client_free(clients[i]);
	nclients = 0;
	pthread_mutex_unlock(&d->lock);
	free(clients);
	free(pfd);
	return 0;
}
