/* Test harness for flasherd (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "flasher.h"

static long long now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void h_env_init(struct h_env *e)
{
	memset(e, 0, sizeof *e);
	snprintf(e->dir, sizeof e->dir, "/tmp/flasherd-test-XXXXXX");
	if (!mkdtemp(e->dir))
		abort();
	chmod(e->dir, 0755);
	snprintf(e->sock, sizeof e->sock, "%s/d.sock", e->dir);
	snprintf(e->history, sizeof e->history, "%s/history.jsonl", e->dir);
	signal(SIGPIPE, SIG_IGN);
}

static void reap(pid_t *p, int sig)
{
	if (*p > 0) {
		kill(*p, sig);
		waitpid(*p, NULL, 0);
		*p = 0;
	}
}

/* SIGTERM, then SIGKILL if it does not end within 10 s. */
static void stop_gently(pid_t *p)
{
	if (*p <= 0)
		return;
	kill(*p, SIGTERM);
	for (int i = 0; i < 500; i++) {
		if (waitpid(*p, NULL, WNOHANG) == *p) {
			*p = 0;
			return;
		}
		usleep(20000);
	}
	reap(p, SIGKILL);
}

int h_env_cleanup(struct h_env *e)
{
	int clean = 1;
	stop_gently(&e->daemon);
	/* The daemon runs under the sanitizers in sanitizer builds: whatever
	 * they found (leaks are reported at exit) fails the test. */
	char log[400], line[512];
	snprintf(log, sizeof log, "%s/daemon.log", e->dir);
	FILE *f = fopen(log, "r");
	while (f && fgets(line, sizeof line, f))
		if (strstr(line, "ERROR: AddressSanitizer") || strstr(line, "ERROR: LeakSanitizer") ||
		    strstr(line, "runtime error:") || strstr(line, "WARNING: ThreadSanitizer")) {
			fprintf(stderr, "daemon.log: %s", line);
			clean = 0;
		}
	if (f)
		fclose(f);
	for (int i = 0; i < H_MAX_UNITS; i++)
		reap(&e->unit_pid[i], SIGKILL);
	if (e->dir[0] && getenv("FLASHERD_TEST_KEEP")) {
		fprintf(stderr, "kept %s\n", e->dir);
	} else if (e->dir[0]) {
		char cmd[400];
		snprintf(cmd, sizeof cmd, "rm -rf '%s'", e->dir);
		if (system(cmd) != 0)
			fprintf(stderr, "cleanup of %s failed\n", e->dir);
	}
	return clean;
}

/* fork + exec with the child dying with the test process. */
static pid_t spawn_as(const char *const *argv, int out_fd, int err_fd, uid_t uid, gid_t gid)
{
	pid_t parent = getpid();
	pid_t pid = fork();
	if (pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		if (out_fd >= 0)
			dup2(out_fd, 1);
		if (err_fd >= 0)
			dup2(err_fd, 2);
		if (uid && (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0))
			_exit(126);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	return pid;
}

static pid_t spawn(const char *const *argv, int out_fd, int err_fd)
{
	return spawn_as(argv, out_fd, err_fd, 0, 0);
}

pid_t h_start_unit(struct h_env *e, int i, const char *const *extra)
{
	char dir[256];
	memcpy(dir, e->dir, sizeof dir);
	snprintf(e->unit_flash[i], sizeof e->unit_flash[i], "%s/u%d.flash", dir, i);
	snprintf(e->unit_link[i], sizeof e->unit_link[i], "%s/u%d.pty", dir, i);
	snprintf(e->unit_serial[i], sizeof e->unit_serial[i], "%024X", 0xA1000 + i);
	const char *argv[32];
	int n = 0;
	argv[n++] = DEVSIM_BIN;
	argv[n++] = "--flash";
	argv[n++] = e->unit_flash[i];
	argv[n++] = "--product";
	argv[n++] = "demo";
	argv[n++] = "--serial";
	argv[n++] = e->unit_serial[i];
	argv[n++] = "--link";
	argv[n++] = e->unit_link[i];
	argv[n++] = "--quiet";
	for (int k = 0; extra && extra[k] && n < 30; k++)
		argv[n++] = extra[k];
	argv[n] = NULL;
	int p[2];
	if (pipe(p) != 0)
		return -1;
	pid_t pid = spawn(argv, p[1], -1);
	close(p[1]);
	/* The first stdout line says the unit is ready. */
	char line[512];
	size_t len = 0;
	long long until = now_ms() + 10000;
	while (len < sizeof line - 1 && now_ms() < until) {
		struct pollfd pf = {p[0], POLLIN, 0};
		if (poll(&pf, 1, 100) <= 0)
			continue;
		ssize_t r = read(p[0], line + len, sizeof line - 1 - len);
		if (r <= 0)
			break;
		len += (size_t)r;
		if (memchr(line, '\n', len))
			break;
	}
	close(p[0]);
	e->unit_pid[i] = pid;
	if (i >= e->nunits)
		e->nunits = i + 1;
	return memchr(line, '\n', len) ? pid : -1;
}

void h_kill_unit(struct h_env *e, int i, int sig)
{
	reap(&e->unit_pid[i], sig);
}

pid_t h_start_daemon(struct h_env *e, const char *const *extra)
{
	const char *argv[80];
	int n = 0;
	/* FLASHERD_TEST_BIN: run another build of the daemon (e.g. ThreadSanitizer). */
	argv[n++] = getenv("FLASHERD_TEST_BIN") ? getenv("FLASHERD_TEST_BIN") : FLASHERD_BIN;
	argv[n++] = "--socket";
	argv[n++] = e->sock;
	argv[n++] = "--history";
	argv[n++] = e->history;
	argv[n++] = "--no-usb";
	argv[n++] = "--rescan-ms";
	argv[n++] = "300";
	for (int i = 0; i < e->nunits && n < 60; i++) {
		argv[n++] = "--port";
		argv[n++] = e->unit_link[i];
	}
	for (int k = 0; extra && extra[k] && n < 78; k++)
		argv[n++] = extra[k];
	argv[n] = NULL;
	char log[400];
	snprintf(log, sizeof log, "%s/daemon.log", e->dir);
	int lfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
	e->daemon = spawn_as(argv, lfd, lfd, e->daemon_uid, e->daemon_gid);
	if (lfd >= 0)
		close(lfd);
	long long until = now_ms() + 10000;
	while (now_ms() < until) {
		int fd = h_connect(e->sock);
		if (fd >= 0) {
			close(fd);
			return e->daemon;
		}
		if (waitpid(e->daemon, NULL, WNOHANG) == e->daemon) {
			e->daemon = 0;
			return -1;
		}
		usleep(20000);
	}
	return -1;
}

int h_stop_daemon(struct h_env *e, int sig)
{
	if (e->daemon <= 0)
		return -1;
	kill(e->daemon, sig);
	int st = 0;
	if (waitpid(e->daemon, &st, 0) != e->daemon)
		st = -1;
	e->daemon = 0;
	return st;
}

int h_daemon_alive(struct h_env *e)
{
	return e->daemon > 0 && waitpid(e->daemon, NULL, WNOHANG) == 0 && kill(e->daemon, 0) == 0;
}

static void write_bin(const char *path, size_t size, unsigned seed)
{
	FILE *f = fopen(path, "wb");
	if (!f)
		abort();
	/* Code-like: words from a small dictionary, a little compressible. */
	uint32_t dict[512], x = seed * 2654435761u + 1;
	for (int i = 0; i < 512; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		dict[i] = x;
	}
	for (size_t i = 0; i < size / 4; i++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		uint32_t w = (x & 7) ? dict[x % 512] : x;
		fwrite(&w, 4, 1, f);
	}
	fclose(f);
}

const char *h_make_package(struct h_env *e, const char *name, const char *ver, size_t cm7_size, size_t cm4_size)
{
	static char out[4][400];
	static int slot;
	char *path = out[slot++ % 4];
	char cm7[400], cm4[400];
	snprintf(cm7, sizeof cm7, "%s/%s-cm7.bin", e->dir, name);
	snprintf(cm4, sizeof cm4, "%s/%s-cm4.bin", e->dir, name);
	write_bin(cm7, cm7_size, (unsigned)cm7_size ^ (unsigned)ver[0]);
	write_bin(cm4, cm4_size, (unsigned)cm4_size ^ (unsigned)ver[2] ^ 77u);
	snprintf(path, 400, "%s/%s.flpkg", e->dir, name);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	o.product = "demo";
	o.fw_version = ver;
	o.cm7_file = cm7;
	o.cm4_file = cm4;
	if (flasher_package_build(&o, path) != 0) {
		fprintf(stderr, "package build: %s\n", flasher_error_last());
		return NULL;
	}
	chmod(path, 0644);
	return path;
}

int h_connect(const char *sock)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	snprintf(a.sun_path, sizeof a.sun_path, "%s", sock);
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -1;
	if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
		close(fd);
		return -1;
	}
	return fd;
}

void h_client_open(struct h_client *c, const char *sock)
{
	memset(c, 0, sizeof *c);
	c->fd = h_connect(sock);
	c->notes = cJSON_CreateArray();
	c->next_id = 1;
}

void h_client_close(struct h_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	free(c->buf);
	c->buf = NULL;
	cJSON_Delete(c->notes);
	c->notes = NULL;
}

int h_send(struct h_client *c, const void *data, size_t len)
{
	const char *p = data;
	while (len) {
		ssize_t w = send(c->fd, p, len, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

cJSON *h_read_any(struct h_client *c, int timeout_ms)
{
	long long until = now_ms() + timeout_ms;
	for (;;) {
		char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			cJSON *m = cJSON_ParseWithLength(c->buf, n);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			return m;
		}
		long long left = until - now_ms();
		if (left <= 0 || c->fd < 0)
			return NULL;
		struct pollfd pf = {c->fd, POLLIN, 0};
		if (poll(&pf, 1, (int)left) <= 0)
			continue;
		if (c->len + 65536 > c->cap) {
			c->cap = (c->len + 65536) * 2;
			c->buf = realloc(c->buf, c->cap);
		}
		ssize_t r = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (r <= 0)
			return NULL;
		c->len += (size_t)r;
	}
}

cJSON *h_read_response(struct h_client *c, int timeout_ms)
{
	long long until = now_ms() + timeout_ms;
	for (;;) {
		long long left = until - now_ms();
		if (left <= 0)
			return NULL;
		cJSON *m = h_read_any(c, (int)left);
		if (!m)
			return NULL;
		if (cJSON_GetObjectItem(m, "id"))
			return m;
		/* Kept for h_next_note: notifications that came before the answer. */
		cJSON_AddItemToArray(c->notes, m);
	}
}

cJSON *h_call(struct h_client *c, const char *method, const char *params_json, int timeout_ms)
{
	char *line = malloc(strlen(method) + (params_json ? strlen(params_json) : 0) + 128);
	int id = c->next_id++;
	sprintf(line, "{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"%s\"%s%s}\n", id, method, params_json ? ",\"params\":" : "",
	        params_json ? params_json : "");
	int rc = h_send(c, line, strlen(line));
	free(line);
	if (rc)
		return NULL;
	long long until = now_ms() + timeout_ms;
	for (;;) {
		long long left = until - now_ms();
		cJSON *m = left > 0 ? h_read_response(c, (int)left) : NULL;
		if (!m)
			return NULL;
		const cJSON *mid = cJSON_GetObjectItem(m, "id");
		if (cJSON_IsNumber(mid) && mid->valueint == id)
			return m;
		cJSON_Delete(m);
	}
}

cJSON *h_next_note(struct h_client *c, int timeout_ms)
{
	if (cJSON_GetArraySize(c->notes) > 0)
		return cJSON_DetachItemFromArray(c->notes, 0);
	return h_read_any(c, timeout_ms);
}

cJSON *h_result(cJSON *resp)
{
	return resp ? cJSON_GetObjectItem(resp, "result") : NULL;
}

int h_error_code(cJSON *resp)
{
	const cJSON *e = resp ? cJSON_GetObjectItem(resp, "error") : NULL;
	const cJSON *c = e ? cJSON_GetObjectItem(e, "code") : NULL;
	return cJSON_IsNumber(c) ? c->valueint : 0;
}

int h_error_lib_code(cJSON *resp)
{
	const cJSON *e = resp ? cJSON_GetObjectItem(resp, "error") : NULL;
	const cJSON *d = e ? cJSON_GetObjectItem(e, "data") : NULL;
	const cJSON *c = d ? cJSON_GetObjectItem(d, "code") : NULL;
	return cJSON_IsNumber(c) ? c->valueint : 0;
}

double h_num(const cJSON *o, const char *key)
{
	const cJSON *v = o ? cJSON_GetObjectItem(o, key) : NULL;
	return cJSON_IsNumber(v) ? v->valuedouble : -1;
}

const char *h_str(const cJSON *o, const char *key)
{
	const cJSON *v = o ? cJSON_GetObjectItem(o, key) : NULL;
	return cJSON_IsString(v) ? v->valuestring : "";
}

int h_wait_devices(struct h_client *c, int n, int timeout_ms)
{
	long long until = now_ms() + timeout_ms;
	int seen = 0;
	while (now_ms() < until) {
		cJSON *r = h_call(c, "devices.list", NULL, 5000);
		cJSON *devs = cJSON_GetObjectItem(h_result(r), "devices");
		seen = cJSON_GetArraySize(devs);
		cJSON_Delete(r);
		if (seen >= n)
			return seen;
		usleep(100000);
	}
	return seen;
}

cJSON *h_wait_batch(struct h_client *c, double batch, int timeout_ms)
{
	long long until = now_ms() + timeout_ms;
	char params[64];
	snprintf(params, sizeof params, "{\"batch\":%.0f}", batch);
	for (;;) {
		cJSON *r = h_call(c, "jobs.list", params, 5000);
		cJSON *jobs = cJSON_GetObjectItem(h_result(r), "jobs");
		int open = !jobs;
		const cJSON *j;
		cJSON_ArrayForEach(j, jobs)
		{
			const char *s = h_str(j, "state");
			if (strcmp(s, "done") && strcmp(s, "failed") && strcmp(s, "cancelled"))
				open = 1;
		}
		if (!open || now_ms() >= until) {
			cJSON *res = cJSON_DetachItemFromObject(r, "result");
			cJSON_Delete(r);
			return res;
		}
		cJSON_Delete(r);
		usleep(200000);
	}
}

cJSON *h_as_user(const char *sock, uid_t uid, gid_t gid, long sgid, const char *calls_json, int listen_ms)
{
	int p[2];
	if (pipe(p) != 0)
		return NULL;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		gid_t g = (gid_t)sgid;
		cJSON *out = cJSON_CreateObject();
		cJSON *resps = cJSON_AddArrayToObject(out, "responses");
		cJSON *notes = cJSON_AddArrayToObject(out, "notes");
		if (setgroups(sgid >= 0 ? 1 : 0, &g) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
			cJSON_AddStringToObject(out, "setup", strerror(errno));
		} else {
			struct h_client c;
			h_client_open(&c, sock);
			cJSON *calls = cJSON_Parse(calls_json);
			const cJSON *call;
			cJSON_ArrayForEach(call, calls)
			{
				const cJSON *m = cJSON_GetArrayItem(call, 0), *pa = cJSON_GetArrayItem(call, 1);
				char *pt = pa ? cJSON_PrintUnformatted(pa) : NULL;
				cJSON *r = c.fd >= 0 ? h_call(&c, m->valuestring, pt, 15000) : NULL;
				free(pt);
				cJSON_AddItemToArray(resps, r ? r : cJSON_CreateNull());
			}
			cJSON_Delete(calls);
			long long until = now_ms() + listen_ms;
			while (c.fd >= 0 && now_ms() < until) {
				cJSON *n = h_next_note(&c, 100);
				if (n)
					cJSON_AddItemToArray(notes, n);
			}
			h_client_close(&c);
		}
		char *t = cJSON_PrintUnformatted(out);
		size_t len = strlen(t), off = 0;
		while (off < len) {
			ssize_t w = write(p[1], t + off, len - off);
			if (w <= 0)
				break;
			off += (size_t)w;
		}
		_exit(0);
	}
	close(p[1]);
	size_t len = 0, cap = 65536;
	char *buf = malloc(cap);
	ssize_t r;
	while (buf && (r = read(p[0], buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap *= 2);
			if (!nb)
				break;
			buf = nb;
		}
	}
	close(p[0]);
	waitpid(pid, NULL, 0);
	cJSON *res = NULL;
	if (buf) {
		buf[len] = '\0';
		res = cJSON_Parse(buf);
	}
	free(buf);
	return res;
}
