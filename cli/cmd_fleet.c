/* flasher fleet: many units at once through flasherd (docs/daemon-api.md).
 *   flasher fleet list [--json]
 *   flasher fleet update PKG (--all | --unit UID...) [--no-reboot] [--json]
 *   flasher fleet report [--format json|csv] [--batch ID]
 * Every subcommand takes --socket PATH (default: $FLASHERD_SOCKET, then
 * $XDG_RUNTIME_DIR/flasherd.sock, then /run/flasherd.sock). */
#include <cjson/cJSON.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "cli.h"
#include "flasher.h"

struct conn {
	int fd;
	char *buf;
	size_t len, cap;
	int next_id;
};

static const char *default_socket(void)
{
	static char path[PATH_MAX];
	const char *env = getenv("FLASHERD_SOCKET");
	if (env && *env)
		return env;
	const char *rt = getenv("XDG_RUNTIME_DIR");
	struct stat st;
	if (rt && *rt) {
		snprintf(path, sizeof path, "%s/flasherd.sock", rt);
		if (stat(path, &st) == 0)
			return path;
	}
	return "/run/flasherd.sock";
}

static int conn_open(struct conn *c, const char *path)
{
	memset(c, 0, sizeof *c);
	c->next_id = 1;
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof a.sun_path) {
		fprintf(stderr, "flasher fleet: socket path too long: %s\n", path);
		return -1;
	}
	strcpy(a.sun_path, path);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof a) != 0) {
		fprintf(stderr, "flasher fleet: cannot reach flasherd at %s: %s\n", path, strerror(errno));
		if (c->fd >= 0)
			close(c->fd);
		c->fd = -1;
		return -1;
	}
	return 0;
}

static void conn_close(struct conn *c)
{
	if (c->fd >= 0)
		close(c->fd);
	free(c->buf);
}

/* Next message; NULL on EOF, error or timeout (timeout_ms < 0: wait). */
static cJSON *conn_read(struct conn *c, int timeout_ms)
{
	for (;;) {
		char *nl = c->buf ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl) {
			size_t n = (size_t)(nl - c->buf);
			cJSON *m = cJSON_ParseWithLength(c->buf, n);
			memmove(c->buf, nl + 1, c->len - n - 1);
			c->len -= n + 1;
			if (m)
				return m;
			continue;
		}
		struct pollfd p = {c->fd, POLLIN, 0};
		int r = poll(&p, 1, timeout_ms);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return NULL;
		if (c->len + 65536 > c->cap) {
			size_t cap = (c->len + 65536) * 2;
			char *nb = realloc(c->buf, cap);
			if (!nb)
				return NULL;
			c->buf = nb;
			c->cap = cap;
		}
		ssize_t got = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
		if (got <= 0)
			return NULL;
		c->len += (size_t)got;
	}
}

/* Send a request; returns its id or -1. params is consumed. */
static int conn_send(struct conn *c, const char *method, cJSON *params)
{
	cJSON *m = cJSON_CreateObject();
	int id = c->next_id++;
	cJSON_AddStringToObject(m, "jsonrpc", "2.0");
	cJSON_AddNumberToObject(m, "id", id);
	cJSON_AddStringToObject(m, "method", method);
	if (params)
		cJSON_AddItemToObject(m, "params", params);
	char *text = cJSON_PrintUnformatted(m);
	cJSON_Delete(m);
	if (!text)
		return -1;
	size_t len = strlen(text);
	text[len] = '\n';
	size_t off = 0;
	while (off < len + 1) {
		ssize_t w = send(c->fd, text + off, len + 1 - off, MSG_NOSIGNAL);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0) {
			free(text);
			return -1;
		}
		off += (size_t)w;
	}
	free(text);
	return id;
}

/* Turn a JSON-RPC error into our exit code, printing it. */
static int rpc_fail(const cJSON *resp, const char *what)
{
	const cJSON *e = cJSON_GetObjectItem(resp, "error");
	const cJSON *data = cJSON_GetObjectItem(e, "data");
	const cJSON *code = cJSON_GetObjectItem(data, "code");
	const cJSON *msg = cJSON_GetObjectItem(data ? data : e, "message");
	const cJSON *name = cJSON_GetObjectItem(data, "name");
	fprintf(stderr, "flasher fleet: %s: %s%s%s%s\n", what, cJSON_IsString(msg) ? msg->valuestring : "error",
	        cJSON_IsString(name) ? " [" : "", cJSON_IsString(name) ? name->valuestring : "", cJSON_IsString(name) ? "]" : "");
	if (cJSON_IsNumber(code))
		return cli_exit_code(code->valueint);
	return cli_exit_code(FLASHER_EPROTOCOL);
}

/* Call and wait for the answer (notifications in between are dropped). */
static cJSON *conn_call(struct conn *c, const char *method, cJSON *params)
{
	int id = conn_send(c, method, params);
	if (id < 0)
		return NULL;
	for (;;) {
		cJSON *m = conn_read(c, 30000);
		if (!m)
			return NULL;
		const cJSON *mid = cJSON_GetObjectItem(m, "id");
		if (cJSON_IsNumber(mid) && mid->valueint == id)
			return m;
		cJSON_Delete(m);
	}
}

static const char *str(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsString(v) ? v->valuestring : "";
}

static double num(const cJSON *o, const char *k)
{
	const cJSON *v = cJSON_GetObjectItem(o, k);
	return cJSON_IsNumber(v) ? v->valuedouble : 0;
}

/* ---- list ------------------------------------------------------------- */

static int fleet_list(struct conn *c, int json)
{
	cJSON *r = conn_call(c, "devices.list", NULL);
	if (!r) {
		fprintf(stderr, "flasher fleet list: no answer from flasherd\n");
		return cli_exit_code(FLASHER_EDISCONNECTED);
	}
	if (cJSON_GetObjectItem(r, "error")) {
		int rc = rpc_fail(r, "list");
		cJSON_Delete(r);
		return rc;
	}
	const cJSON *devs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "devices");
	if (json) {
		char *t = cJSON_PrintUnformatted(devs);
		printf("%s\n", t ? t : "[]");
		free(t);
	} else {
		printf("%-24s  %-12s  %-8s  %-3s  %-9s  %-11s  %-6s  %s\n", "UID", "NICKNAME", "PRODUCT", "HW", "FIRMWARE",
		       "STATE", "STATUS", "PORT");
		const cJSON *d;
		cJSON_ArrayForEach(d, devs)
			printf("%-24s  %-12s  %-8s  %-3s  %-9s  %-11s  %-6s  %s\n", str(d, "uid"), str(d, "nickname"),
			       str(d, "product"), str(d, "hw_rev"), str(d, "firmware_version"), str(d, "state"), str(d, "status"),
			       str(d, "port"));
		if (!cJSON_GetArraySize(devs))
			printf("(no units)\n");
	}
	cJSON_Delete(r);
	return CLI_EXIT_OK;
}

/* ---- update ----------------------------------------------------------- */

struct row {
	char uid[25];
	char name[40];
	double job;
	char state[16];
	char phase[16];
	double bytes, total, rate, eta;
	int code;
	char reason[160];
	int printed_quarter; /* plain output: last 25% step printed */
};

static struct row *row_for_job(struct row *rows, int n, double job)
{
	for (int i = 0; i < n; i++)
		if (rows[i].job == job)
			return &rows[i];
	return NULL;
}

static int ended(const char *s)
{
	return !strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

static void human_bytes(double b, char *out, size_t n)
{
	if (b >= 1048576)
		snprintf(out, n, "%.1f MiB", b / 1048576);
	else if (b >= 1024)
		snprintf(out, n, "%.1f KiB", b / 1024);
	else
		snprintf(out, n, "%.0f B", b);
}

static void format_row(const struct row *r, char *out, size_t n)
{
	char rate[32], done[32];
	human_bytes(r->rate, rate, sizeof rate);
	human_bytes(r->bytes, done, sizeof done);
	int pct = r->total > 0 ? (int)(100.0 * r->bytes / r->total) : 0;
	if (!strcmp(r->state, "failed") || !strcmp(r->state, "cancelled"))
		snprintf(out, n, "%-24s  %-9s  %s", r->name, r->state, r->reason);
	else if (!strcmp(r->state, "queued") || !strcmp(r->state, "done"))
		snprintf(out, n, "%-24s  %-9s", r->name, r->state);
	else if (r->eta >= 0)
		snprintf(out, n, "%-24s  %-9s  %-8s %3d%%  %s  %s/s  ETA %.0fs", r->name, r->state, r->phase, pct, done, rate,
		         r->eta);
	else
		snprintf(out, n, "%-24s  %-9s  %-8s %3d%%  %s", r->name, r->state, r->phase, pct, done);
}

static void redraw(struct row *rows, int n, int *drawn)
{
	if (*drawn)
		printf("\033[%dA", *drawn);
	for (int i = 0; i < n; i++) {
		char line[256];
		format_row(&rows[i], line, sizeof line);
		printf("\r\033[2K%s\n", line);
	}
	*drawn = n;
	fflush(stdout);
}

static int fleet_update(struct conn *c, const char *pkg, int all, char **units, int nunits, int no_reboot, int json)
{
	char real[PATH_MAX];
	if (!realpath(pkg, real)) {
		fprintf(stderr, "flasher fleet update: %s: %s\n", pkg, strerror(errno));
		return cli_exit_code(errno == ENOENT ? FLASHER_ENOTFOUND : FLASHER_EIO);
	}
	/* Subscribe first so no state change of our jobs is missed. */
	cJSON *sp = cJSON_CreateObject();
	cJSON *ev = cJSON_AddArrayToObject(sp, "events");
	cJSON_AddItemToArray(ev, cJSON_CreateString("jobs"));
	cJSON *r = conn_call(c, "subscribe", sp);
	if (!r || cJSON_GetObjectItem(r, "error")) {
		int rc = r ? rpc_fail(r, "subscribe") : cli_exit_code(FLASHER_EDISCONNECTED);
		cJSON_Delete(r);
		return rc;
	}
	cJSON_Delete(r);

	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "package", real);
	if (all)
		cJSON_AddBoolToObject(p, "all", 1);
	else {
		cJSON *u = cJSON_AddArrayToObject(p, "units");
		for (int i = 0; i < nunits; i++)
			cJSON_AddItemToArray(u, cJSON_CreateString(units[i]));
	}
	if (no_reboot)
		cJSON_AddBoolToObject(p, "no_reboot", 1);
	int id = conn_send(c, "update.start", p);
	/* Notifications can arrive before the answer: keep them. */
	cJSON *early = cJSON_CreateArray();
	cJSON *resp = NULL;
	while (id >= 0 && (resp = conn_read(c, 60000))) {
		const cJSON *mid = cJSON_GetObjectItem(resp, "id");
		if (cJSON_IsNumber(mid) && mid->valueint == id)
			break;
		cJSON_AddItemToArray(early, resp);
		resp = NULL;
	}
	if (!resp || cJSON_GetObjectItem(resp, "error")) {
		int rc = resp ? rpc_fail(resp, "update") : cli_exit_code(FLASHER_EDISCONNECTED);
		cJSON_Delete(resp);
		cJSON_Delete(early);
		return rc;
	}
	const cJSON *res = cJSON_GetObjectItem(resp, "result");
	double batch = num(res, "batch");
	int n = cJSON_GetArraySize(cJSON_GetObjectItem(res, "jobs"));
	struct row *rows = calloc((size_t)n + 1, sizeof *rows);
	int k = 0;
	const cJSON *j;
	cJSON_ArrayForEach(j, cJSON_GetObjectItem(res, "jobs"))
	{
		struct row *rw = &rows[k++];
		rw->job = num(j, "job");
		snprintf(rw->uid, sizeof rw->uid, "%s", str(j, "uid"));
		snprintf(rw->name, sizeof rw->name, "%s", *str(j, "nickname") ? str(j, "nickname") : str(j, "uid"));
		snprintf(rw->state, sizeof rw->state, "queued");
		rw->eta = -1;
	}
	if (json) {
		char *t = cJSON_PrintUnformatted(res);
		printf("{\"event\":\"started\",\"result\":%s}\n", t ? t : "{}");
		free(t);
	} else {
		fprintf(stderr, "batch %.0f: %s to %d unit(s)\n", batch, str(res, "version"), n);
	}
	cJSON_Delete(resp);
	int tty = !json && isatty(STDOUT_FILENO);
	int drawn = 0;
	if (tty)
		redraw(rows, n, &drawn);

	cJSON *m = NULL;
	for (;;) {
		int open = 0;
		for (int i = 0; i < n; i++)
			open += !ended(rows[i].state);
		/* A failed job may be followed at once by its retry: drain first. */
		if (cJSON_GetArraySize(early))
			m = cJSON_DetachItemFromArray(early, 0);
		else
			m = conn_read(c, open ? -1 : 300);
		if (!m) {
			if (open) {
				fprintf(stderr, "flasher fleet update: flasherd went away\n");
				free(rows);
				cJSON_Delete(early);
				return cli_exit_code(FLASHER_EDISCONNECTED);
			}
			break;
		}
		const char *method = str(m, "method");
		const cJSON *pp = cJSON_GetObjectItem(m, "params");
		struct row *rw = row_for_job(rows, n, num(pp, "job"));
		const cJSON *ro = cJSON_GetObjectItem(pp, "resume_of");
		if (!rw && cJSON_IsNumber(ro) && num(pp, "batch") == batch) {
			/* A retry of one of our jobs takes over its row. */
			rw = row_for_job(rows, n, ro->valuedouble);
			if (rw) {
				rw->job = num(pp, "job");
				rw->code = 0;
				rw->reason[0] = '\0';
			}
		}
		if (!rw) {
			cJSON_Delete(m);
			continue;
		}
		if (json) {
			char *t = cJSON_PrintUnformatted(m);
			printf("%s\n", t ? t : "{}");
			fflush(stdout);
			free(t);
		}
		if (!strcmp(method, "job.state")) {
			snprintf(rw->state, sizeof rw->state, "%s", str(pp, "state"));
			rw->code = (int)num(pp, "code");
			snprintf(rw->reason, sizeof rw->reason, "%s", str(pp, "reason"));
			if (!tty && !json) {
				char line[256];
				format_row(rw, line, sizeof line);
				printf("%s\n", line);
				fflush(stdout);
			}
		} else if (!strcmp(method, "job.progress")) {
			snprintf(rw->phase, sizeof rw->phase, "%s", str(pp, "phase"));
			rw->bytes = num(pp, "bytes");
			rw->total = num(pp, "total");
			rw->rate = num(pp, "rate");
			rw->eta = cJSON_IsNumber(cJSON_GetObjectItem(pp, "eta")) ? num(pp, "eta") : -1;
			int q = rw->total > 0 ? (int)(4 * rw->bytes / rw->total) : 0;
			if (!tty && !json && q > rw->printed_quarter) {
				rw->printed_quarter = q;
				char line[256];
				format_row(rw, line, sizeof line);
				printf("%s\n", line);
				fflush(stdout);
			}
		}
		if (tty)
			redraw(rows, n, &drawn);
		cJSON_Delete(m);
	}
	int rc = CLI_EXIT_OK, ok = 0;
	for (int i = 0; i < n; i++) {
		ok += !strcmp(rows[i].state, "done");
		if (rc == CLI_EXIT_OK && strcmp(rows[i].state, "done"))
			rc = cli_exit_code(rows[i].code ? rows[i].code : FLASHER_ECANCELLED);
	}
	if (json)
		printf("{\"event\":\"finished\",\"batch\":%.0f,\"done\":%d,\"units\":%d}\n", batch, ok, n);
	else
		fprintf(stderr, "batch %.0f: %d of %d unit(s) updated\n", batch, ok, n);
	free(rows);
	cJSON_Delete(early);
	return rc;
}

/* ---- report ----------------------------------------------------------- */

static void csv_field(const char *s, int last)
{
	int quote = strpbrk(s, ",\"\n\r") != NULL;
	if (quote) {
		putchar('"');
		for (; *s; s++) {
			if (*s == '"')
				putchar('"');
			putchar(*s);
		}
		putchar('"');
	} else {
		fputs(s, stdout);
	}
	putchar(last ? '\n' : ',');
}

static int fleet_report(struct conn *c, const char *format, long long batch)
{
	cJSON *p = cJSON_CreateObject();
	if (batch)
		cJSON_AddNumberToObject(p, "batch", (double)batch);
	cJSON *r = conn_call(c, "history.list", p);
	if (!r || cJSON_GetObjectItem(r, "error")) {
		int rc = r ? rpc_fail(r, "report") : cli_exit_code(FLASHER_EDISCONNECTED);
		cJSON_Delete(r);
		return rc;
	}
	const cJSON *recs = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "result"), "records");
	if (!strcmp(format, "json")) {
		char *t = cJSON_Print(recs);
		printf("%s\n", t ? t : "[]");
		free(t);
	} else {
		static const char *cols[] = {"job",     "batch",        "uid",         "nickname",       "port",
		                             "product", "old_version",  "new_version", "package_sha256", "start",
		                             "end",     "duration_s",   "outcome",     "code",           "error",
		                             "reason",  "resumed_bytes", "resume_of"};
		size_t nc = sizeof cols / sizeof cols[0];
		for (size_t i = 0; i < nc; i++)
			csv_field(cols[i], i + 1 == nc);
		const cJSON *rec;
		cJSON_ArrayForEach(rec, recs)
		{
			for (size_t i = 0; i < nc; i++) {
				const cJSON *v = cJSON_GetObjectItem(rec, cols[i]);
				char buf[64];
				if (cJSON_IsString(v)) {
					csv_field(v->valuestring, i + 1 == nc);
					continue;
				}
				if (cJSON_IsNumber(v)) {
					if (v->valuedouble == (double)(long long)v->valuedouble)
						snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
					else
						snprintf(buf, sizeof buf, "%.3f", v->valuedouble);
				} else {
					buf[0] = '\0';
				}
				csv_field(buf, i + 1 == nc);
			}
		}
	}
	cJSON_Delete(r);
	return CLI_EXIT_OK;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage:\n"
	             "  flasher fleet list [--socket PATH] [--json]\n"
	             "  flasher fleet update [--socket PATH] PKG (--all | --unit UID...) [--no-reboot] [--json]\n"
	             "  flasher fleet report [--socket PATH] [--format json|csv] [--batch ID]\n"
	             "Drive many units at once through flasherd.\n\n"
	             "--socket PATH defaults to $FLASHERD_SOCKET, $XDG_RUNTIME_DIR/flasherd.sock,\n"
	             "/run/flasherd.sock. Run 'flasher fleet SUBCOMMAND --help' for its options.\n");
}

#define SOCKET_OPT(dest)                                                                                     \
	CLI_OPT_STRING("socket", 0, &(dest), "PATH",                                                         \
	               "flasherd's socket (default: $FLASHERD_SOCKET,\n$XDG_RUNTIME_DIR/flasherd.sock, /run/flasherd.sock)")

static int parse_format(const char *value, void *dest, char *why, size_t why_size)
{
	if (strcmp(value, "json") && strcmp(value, "csv")) {
		snprintf(why, why_size, "json or csv, not '%s'", value);
		return -1;
	}
	*(const char **)dest = value;
	return 0;
}

static int parse_batch(const char *value, void *dest, char *why, size_t why_size)
{
	char *end;
	long long b = strtoll(value, &end, 10);
	if (!*value || *end || b <= 0) {
		snprintf(why, why_size, "wants a batch number, not '%s'", value);
		return -1;
	}
	*(long long *)dest = b;
	return 0;
}

int cmd_fleet(int argc, char **argv)
{
	const char *sock = NULL, *format = "json";
	long long batch = 0;
	int json = 0, all = 0, no_reboot = 0;
	cli_list units = {0};
	const char *sub = argc > 1 ? argv[1] : NULL;
	if (!sub || !strcmp(sub, "--help") || !strcmp(sub, "-h")) {
		usage(sub ? stdout : stderr);
		return sub ? CLI_EXIT_OK : CLI_EXIT_USAGE;
	}
	const cli_opt list_opts[] = {
	        SOCKET_OPT(sock),
	        CLI_OPT_FLAG("json", 0, &json, "print the daemon's unit list as one JSON object"),
	        CLI_END,
	};
	const cli_opt update_opts[] = {
	        SOCKET_OPT(sock),
	        CLI_OPT_FLAG("all", 0, &all, "update every unit flasherd knows"),
	        CLI_OPT_LIST("unit", &units, "UID", 0, "update this unit (uid, serial, port or nickname);\nrepeatable"),
	        CLI_OPT_FLAG("no-reboot", 0, &no_reboot, "stop once the activation is recorded (it applies\nat the next reboot)"),
	        CLI_OPT_FLAG("json", 0, &json, "one JSON event per line on stdout"),
	        CLI_END,
	};
	const cli_opt report_opts[] = {
	        SOCKET_OPT(sock),
	        CLI_OPT_CUSTOM("format", &format, "FORMAT", parse_format, "json (default) or csv"),
	        CLI_OPT_CUSTOM("batch", &batch, "ID", parse_batch, "only the jobs of this batch"),
	        CLI_END,
	};
	const cli_spec specs[] = {
	        {"fleet list", "", 0, 0, "List the units flasherd knows.", NULL, list_opts, NULL},
	        {"fleet update", "PKG", 1, 1, "Update many units through flasherd.",
	         "Starts one batch: every named unit (or --all) is updated with PKG by flasherd.\n"
	         "Draws one line per unit on a terminal, prints plain lines otherwise.\n",
	         update_opts, NULL},
	        {"fleet report", "", 0, 0, "Print flasherd's update history.", NULL, report_opts, NULL},
	};
	const cli_spec *spec = NULL;
	for (size_t i = 0; i < sizeof specs / sizeof specs[0]; i++)
		if (!strcmp(sub, specs[i].name + 6))
			spec = &specs[i];
	if (!spec)
		return cli_usage_error("fleet", "unknown subcommand '%s' (list, update, report)", sub);
	const char *pos[1];
	int npos;
	int rc = cli_parse(spec, argc - 1, argv + 1, pos, &npos);
	if (rc) {
		free(units.v);
		return rc == CLI_PARSED_HELP ? CLI_EXIT_OK : rc;
	}
	if (spec == &specs[1] && all == (units.n > 0)) {
		free(units.v);
		return cli_usage_error("fleet update", "give either --all or --unit UID...");
	}
	struct conn c;
	if (conn_open(&c, sock ? sock : default_socket()) != 0) {
		free(units.v);
		return cli_exit_code(FLASHER_ENOTFOUND);
	}
	if (spec == &specs[0])
		rc = fleet_list(&c, json);
	else if (spec == &specs[1])
		rc = fleet_update(&c, pos[0], all, (char **)units.v, units.n, no_reboot, json);
	else
		rc = fleet_report(&c, format, batch);
	conn_close(&c);
	free(units.v);
	return rc;
}
