/* flasherd against hostile local users: what a client may make the daemon
 * open, whose jobs it sees. Real daemon processes, clients switched to
 * other uids in forked children (the tests need root for that). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define NOBODY 65534
#define OTHER 65533 /* a second user in the same allowed group */
#define ADMIN 65532 /* a third, in the admin group */
#define ADMIN_GROUP 65531

static struct h_env env;

static void setup(void)
{
	h_env_init(&env);
}

static void teardown(void)
{
	cr_expect(h_env_cleanup(&env), "the daemon's sanitizers reported errors (see above)");
}

TestSuite(daemon_hostile, .init = setup, .fini = teardown, .timeout = 240);

static void need_root(void)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch to other uids");
}

static const cJSON *resp_at(const cJSON *out, int i)
{
	return cJSON_GetArrayItem(cJSON_GetObjectItem(out, "responses"), i);
}

static int lib_code_at(const cJSON *out, int i)
{
	return h_error_lib_code((cJSON *)resp_at(out, i));
}

static const char *detail_at(const cJSON *out, int i)
{
	const cJSON *e = cJSON_GetObjectItem(resp_at(out, i), "error");
	return h_str(cJSON_GetObjectItem(e, "data"), "message");
}

/* A JSON string literal for s (escaped). */
static char *jstr(const char *s)
{
	cJSON *j = cJSON_CreateString(s);
	char *t = cJSON_PrintUnformatted(j);
	cJSON_Delete(j);
	return t;
}

Test(daemon_hostile, ports_add_is_limited_to_the_configuration)
{
	need_root();
	char allow[400];
	snprintf(allow, sizeof allow, "unix:%s/ok-*.sock", env.dir);
	const char *extra[] = {"--group", "65534", "--allow-port", allow, NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);

	/* Another user's terminal, a FIFO, /dev/zero, a TCP address. */
	int master = posix_openpt(O_RDWR | O_NOCTTY | O_NONBLOCK);
	cr_assert_geq(master, 0);
	cr_assert_eq(grantpt(master), 0);
	cr_assert_eq(unlockpt(master), 0);
	char pts[64];
	snprintf(pts, sizeof pts, "%s", ptsname(master));
	char fifo[400];
	snprintf(fifo, sizeof fifo, "%s/fifo", env.dir);
	cr_assert_eq(mkfifo(fifo, 0666), 0);
	char rfifo[420], escape[420], ok[400];
	snprintf(rfifo, sizeof rfifo, "replay:%s", fifo);
	snprintf(escape, sizeof escape, "unix:%s/ok-../../x.sock", env.dir);
	snprintf(ok, sizeof ok, "unix:%s/ok-1.sock", env.dir);
	const char *bad[] = {pts, fifo, "/dev/zero", "replay:/dev/zero", rfifo, "tcp:127.0.0.1:9", escape, "/dev/shm/x"};
	const int nbad = (int)(sizeof bad / sizeof bad[0]);
	char calls[8192];
	size_t len = (size_t)snprintf(calls, sizeof calls, "[");
	for (int i = 0; i < nbad; i++) {
		char *s = jstr(bad[i]);
		len += (size_t)snprintf(calls + len, sizeof calls - len, "[\"ports.add\",{\"port\":%s}],", s);
		free(s);
	}
	char *s = jstr(ok);
	snprintf(calls + len, sizeof calls - len, "[\"ports.add\",{\"port\":%s}],[\"ports.list\",null]]", s);
	free(s);
	cJSON *out = h_as_user(env.sock, NOBODY, NOBODY, -1, calls, 0);
	cr_assert_not_null(out);
	for (int i = 0; i < nbad; i++) {
		cr_expect_eq(lib_code_at(out, i), -15, "ports.add %s by uid %d: lib code %d, expected FLASHER_EPERM", bad[i],
		             NOBODY, lib_code_at(out, i));
		cr_expect(strstr(detail_at(out, i), "not allowed") != NULL, "ports.add %s: unclear error '%s'", bad[i],
		          detail_at(out, i));
	}
	cr_expect_not_null(h_result((cJSON *)resp_at(out, nbad)), "an allowed spec was refused");
	const cJSON *ports = cJSON_GetObjectItem(h_result((cJSON *)resp_at(out, nbad + 1)), "ports");
	cr_expect_eq(cJSON_GetArraySize(ports), 1, "watched ports: %d", cJSON_GetArraySize(ports));
	cr_expect_str_eq(cJSON_GetStringValue(cJSON_GetArrayItem(ports, 0)), ok);
	cJSON_Delete(out);

	/* Let the prober run a few rounds: the terminal got nothing, the daemon
	 * still answers (no prober stuck on a FIFO). */
	usleep(1000000);
	char junk[64];
	errno = 0;
	ssize_t r = read(master, junk, sizeof junk);
	cr_expect(r < 0 && errno == EAGAIN, "the daemon wrote %zd bytes into another user's terminal", r);
	close(master);
	struct h_client c;
	h_client_open(&c, env.sock);
	cJSON *v = h_call(&c, "version", NULL, 5000);
	cr_expect_not_null(h_result(v));
	cJSON_Delete(v);
	/* A non-admin may not take the administrator's ports away. */
	s = jstr(ok);
	snprintf(calls, sizeof calls, "[[\"ports.remove\",{\"port\":%s}]]", s);
	free(s);
	out = h_as_user(env.sock, NOBODY, NOBODY, -1, calls, 0);
	cr_expect_eq(lib_code_at(out, 0), -15);
	cJSON_Delete(out);
	h_client_close(&c);
}

/* Files the peer names: a FIFO, a device, a link to a private file. */
static void package_paths_checks(const char *dir, const char *secret_owner_note)
{
	(void)secret_owner_note;
	char fifo[400], link[400], priv[400], hidden_dir[400], hidden[420], pub[400];
	snprintf(fifo, sizeof fifo, "%s/pkg.fifo", dir);
	snprintf(priv, sizeof priv, "%s/private.flpkg", dir);
	snprintf(link, sizeof link, "%s/link.flpkg", dir);
	snprintf(hidden_dir, sizeof hidden_dir, "%s/closed", dir);
	snprintf(hidden, sizeof hidden, "%s/closed/open.flpkg", dir);
	snprintf(pub, sizeof pub, "%s/public.flpkg", dir);
	const char *pkg = h_make_package(&env, "pkg", "2.0.0", 4096, 4096);
	cr_assert_not_null(pkg);
	char cmd[4096];
	snprintf(cmd, sizeof cmd, "cp '%s' '%s' && cp '%s' '%s' && mkdir -p '%s' && cp '%s' '%s'", pkg, priv, pkg, pub,
	         hidden_dir, pkg, hidden);
	cr_assert_eq(system(cmd), 0);
	cr_assert_eq(mkfifo(fifo, 0666), 0);
	cr_assert_eq(symlink(priv, link), 0);
	/* The daemon can read all of these; the peer may read only pub. */
	struct stat st;
	cr_assert_eq(stat(dir, &st), 0);
	chown(priv, st.st_uid, st.st_gid);
	chown(pub, st.st_uid, st.st_gid);
	chown(hidden_dir, st.st_uid, st.st_gid);
	chown(hidden, st.st_uid, st.st_gid);
	chmod(priv, 0600);
	chmod(pub, 0644);
	chmod(hidden_dir, 0700);
	chmod(hidden, 0644);
	char calls[4096];
	snprintf(calls, sizeof calls,
	         "[[\"package.inspect\",{\"package\":\"%s\"}],[\"package.inspect\",{\"package\":\"/dev/zero\"}],"
	         "[\"package.inspect\",{\"package\":\"%s\"}],[\"package.inspect\",{\"package\":\"%s\"}],"
	         "[\"package.inspect\",{\"package\":\"%s\"}],[\"package.inspect\",{\"package\":\"%s\"}],"
	         "[\"version\",null]]",
	         fifo, priv, link, hidden, pub);
	cJSON *out = h_as_user(env.sock, NOBODY, NOBODY, -1, calls, 0);
	cr_assert_not_null(out);
	cr_expect_eq(lib_code_at(out, 0), -1, "FIFO as a package: lib %d (%s)", lib_code_at(out, 0), detail_at(out, 0));
	cr_expect_eq(lib_code_at(out, 1), -1, "/dev/zero as a package: lib %d", lib_code_at(out, 1));
	cr_expect_eq(lib_code_at(out, 2), -15, "private file: lib %d", lib_code_at(out, 2));
	cr_expect_eq(lib_code_at(out, 3), -15, "link to a private file: lib %d", lib_code_at(out, 3));
	cr_expect_eq(lib_code_at(out, 4), -15, "file in a closed directory: lib %d", lib_code_at(out, 4));
	cr_expect_not_null(h_result((cJSON *)resp_at(out, 5)), "a readable package was refused: %s", detail_at(out, 5));
	cr_expect_not_null(h_result((cJSON *)resp_at(out, 6)), "the daemon stopped answering");
	cJSON_Delete(out);
}

Test(daemon_hostile, package_paths_root_daemon)
{
	need_root();
	const char *extra[] = {"--group", "65534", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	package_paths_checks(env.dir, "root");
}

Test(daemon_hostile, package_paths_unprivileged_daemon)
{
	need_root();
	/* The daemon as its own system user (uid 65530), as the systemd unit
	 * runs it: its rights cover the private files, the peer's do not. */
	char dir[300];
	snprintf(dir, sizeof dir, "%s/d", env.dir);
	cr_assert_eq(mkdir(dir, 0755), 0);
	cr_assert_eq(chown(dir, 65530, 65534), 0);
	snprintf(env.sock, sizeof env.sock, "%s/d.sock", dir);
	snprintf(env.history, sizeof env.history, "%s/history.jsonl", dir);
	env.daemon_uid = 65530;
	env.daemon_gid = 65534;
	const char *extra[] = {"--group", "65534", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0, "the daemon did not start as uid 65530");
	package_paths_checks(dir, "daemon");
}

static const char *const *slow_unit(void)
{
	static const char *slow[] = {"--link-rate", "20000", NULL};
	return slow;
}

static int count_jobs(const cJSON *resp, double *first_owner)
{
	const cJSON *jobs = cJSON_GetObjectItem(h_result((cJSON *)resp), "jobs");
	if (first_owner)
		*first_owner = h_num(cJSON_GetArrayItem(jobs, 0), "owner");
	return cJSON_IsArray(jobs) ? cJSON_GetArraySize(jobs) : -1;
}

Test(daemon_hostile, users_see_and_cancel_only_their_jobs)
{
	need_root();
	for (int i = 0; i < 2; i++)
		cr_assert_gt(h_start_unit(&env, i, slow_unit()), 0);
	const char *extra[] = {"--group", "65534", "--admin-group", "65531", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	struct h_client root;
	h_client_open(&root, env.sock);
	cr_assert_eq(h_wait_devices(&root, 2, 20000), 2);
	const char *pkg = h_make_package(&env, "shared", "3.0.0", 64 * 1024, 16 * 1024);
	cr_assert_not_null(pkg);
	chmod(pkg, 0644);

	char calls[2048];
	snprintf(calls, sizeof calls, "[[\"update.start\",{\"package\":\"%s\",\"units\":[\"%s\"]}],[\"jobs.list\",null]]", pkg,
	         env.unit_serial[0]);
	cJSON *a = h_as_user(env.sock, NOBODY, NOBODY, -1, calls, 0);
	cr_assert_not_null(h_result((cJSON *)resp_at(a, 0)), "update.start as uid %d failed: %s", NOBODY, detail_at(a, 0));
	double job_a = h_num(cJSON_GetArrayItem(cJSON_GetObjectItem(h_result((cJSON *)resp_at(a, 0)), "jobs"), 0), "job");
	double owner = -1;
	cr_expect_eq(count_jobs(resp_at(a, 1), &owner), 1);
	cr_expect_eq(owner, NOBODY);
	cJSON_Delete(a);

	snprintf(calls, sizeof calls,
	         "[[\"update.start\",{\"package\":\"%s\",\"units\":[\"%s\"]}],[\"jobs.list\",null],"
	         "[\"job.get\",{\"job\":%.0f}],[\"job.cancel\",{\"job\":%.0f}],[\"history.list\",null],"
	         "[\"subscribe\",{\"events\":[\"jobs\"]}]]",
	         pkg, env.unit_serial[1], job_a, job_a);
	cJSON *b = h_as_user(env.sock, OTHER, NOBODY, -1, calls, 1500);
	cr_assert_not_null(h_result((cJSON *)resp_at(b, 0)), "update.start as uid %d failed: %s", OTHER, detail_at(b, 0));
	double job_b = h_num(cJSON_GetArrayItem(cJSON_GetObjectItem(h_result((cJSON *)resp_at(b, 0)), "jobs"), 0), "job");
	cr_expect_eq(count_jobs(resp_at(b, 1), &owner), 1, "uid %d sees another user's job", OTHER);
	cr_expect_eq(owner, OTHER);
	cr_expect_eq(lib_code_at(b, 2), -4, "job.get of another user's job: %d", lib_code_at(b, 2));
	cr_expect_eq(lib_code_at(b, 3), -4, "job.cancel of another user's job: %d", lib_code_at(b, 3));
	const cJSON *rec;
	cJSON_ArrayForEach(rec, cJSON_GetObjectItem(h_result((cJSON *)resp_at(b, 4)), "records"))
		cr_expect_eq(h_num(rec, "owner"), OTHER, "history.list shows job %.0f of uid %.0f", h_num(rec, "job"),
		             h_num(rec, "owner"));
	cr_expect_leq(count_jobs(resp_at(b, 5), NULL), 1);
	int own_notes = 0;
	const cJSON *n;
	cJSON_ArrayForEach(n, cJSON_GetObjectItem(b, "notes"))
	{
		const cJSON *p = cJSON_GetObjectItem(n, "params");
		if (strncmp(h_str(n, "method"), "job.", 4))
			continue;
		cr_expect_eq(h_num(p, "job"), job_b, "uid %d got %s of job %.0f", OTHER, h_str(n, "method"), h_num(p, "job"));
		own_notes++;
	}
	cr_expect_gt(own_notes, 0, "no notifications of its own job");
	cJSON_Delete(b);

	/* A member of the admin group sees both, and may cancel. */
	snprintf(calls, sizeof calls, "[[\"jobs.list\",null],[\"job.cancel\",{\"job\":%.0f}]]", job_b);
	cJSON *adm = h_as_user(env.sock, ADMIN, NOBODY, ADMIN_GROUP, calls, 0);
	cr_expect_eq(count_jobs(resp_at(adm, 0), NULL), 2, "the admin does not see both jobs");
	cr_expect_not_null(h_result((cJSON *)resp_at(adm, 1)), "admin cancel refused: %s", detail_at(adm, 1));
	cJSON_Delete(adm);

	/* The first user's job was not touched by the other user. */
	char params[64];
	snprintf(params, sizeof params, "{\"job\":%.0f}", job_a);
	cJSON *r = h_call(&root, "job.get", params, 5000);
	cr_expect_str_neq(h_str(h_result(r), "state"), "cancelled");
	cJSON_Delete(r);
	r = h_call(&root, "job.cancel", params, 5000);
	cJSON_Delete(r);
	h_client_close(&root);
}

/* ---- protocol ---------------------------------------------------------- */

static int utf8_ok(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned c = s[i];
		size_t l = c < 0x80 ? 1 : (c >= 0xC2 && c <= 0xDF) ? 2 : (c >= 0xE0 && c <= 0xEF) ? 3 : (c >= 0xF0 && c <= 0xF4) ? 4 : 0;
		if (!l || i + l > n)
			return 0;
		for (size_t k = 1; k < l; k++)
			if ((s[i + k] & 0xC0) != 0x80)
				return 0;
		if ((c == 0xE0 && s[i + 1] < 0xA0) || (c == 0xED && s[i + 1] > 0x9F) || (c == 0xF0 && s[i + 1] < 0x90) ||
		    (c == 0xF4 && s[i + 1] > 0x8F))
			return 0;
		i += l;
	}
	return 1;
}

/* Send req on a fresh connection (then half-close it if asked) and read
 * until EOF or timeout; returns the bytes read (NUL-terminated in out). */
static size_t exchange(const char *req, size_t len, int half_close, char *out, size_t cap, int timeout_ms)
{
	int fd = h_connect(env.sock);
	cr_assert_geq(fd, 0);
	size_t off = 0;
	while (off < len) {
		ssize_t w = write(fd, req + off, len - off);
		cr_assert_gt(w, 0);
		off += (size_t)w;
	}
	if (half_close)
		shutdown(fd, SHUT_WR);
	size_t got = 0;
	struct timespec t0, t;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd pf = {fd, POLLIN, 0};
		clock_gettime(CLOCK_MONOTONIC, &t);
		long left = timeout_ms - ((t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || poll(&pf, 1, (int)left) <= 0)
			break;
		ssize_t r = read(fd, out + got, cap - 1 - got);
		if (r <= 0)
			break;
		got += (size_t)r;
	}
	close(fd);
	out[got] = '\0';
	return got;
}

/* The i-th line of text as JSON (NULL if none or not JSON). */
static cJSON *line_at(const char *text, int i)
{
	const char *p = text;
	for (int k = 0; k < i && p; k++) {
		p = strchr(p, '\n');
		if (p)
			p++;
	}
	if (!p || !*p)
		return NULL;
	const char *nl = strchr(p, '\n');
	return cJSON_ParseWithLength(p, nl ? (size_t)(nl - p) : strlen(p));
}

Test(daemon_hostile, replies_reach_a_half_closed_client)
{
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	/* As `nc -U` and socat do: the requests, then a half-close. The last
	 * one has no newline and is slow (a thread answers it). */
	const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"version\"}\n"
	                  "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"history.list\"}";
	static char out[65536];
	exchange(req, strlen(req), 1, out, sizeof out, 10000);
	int ids = 0;
	for (int i = 0; i < 4; i++) {
		cJSON *m = line_at(out, i);
		if (m && h_result(m))
			ids |= 1 << (int)h_num(m, "id");
		cJSON_Delete(m);
	}
	cr_expect_eq(ids, 6, "answers to a half-closed client: %s", out);
}

Test(daemon_hostile, every_reply_is_valid_utf8_and_each_line_one_value)
{
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	char longm[200];
	memset(longm, 'a', 98);
	memcpy(longm + 98, "\xF0\x9F\x98\x80\xF0\x9F\x98\x80", 9); /* the 100-byte cut falls inside */
	char req[4096];
	int n = snprintf(req, sizeof req,
	                 "{\"jsonrpc\":\"2.0\",\"id\":\"\xff\xfe\",\"method\":\"version\"}\n"
	                 "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"%s\"}\n"
	                 "{}}\n"
	                 "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"version\"} {\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"version\"}\n"
	                 "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"job.get\",\"params\":{\"job\":1e300}}\n"
	                 "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ports.add\",\"params\":{\"port\":\"unix:/tmp/\xc3\"}}\n"
	                 "{\"jsonrpc\":\"2.0\",\"id\":8,\"method\":\"ports.list\"}\n",
	                 longm);
	static char out[65536];
	size_t got = exchange(req, (size_t)n, 1, out, sizeof out, 10000);
	cr_expect(utf8_ok((const unsigned char *)out, got), "a reply is not valid UTF-8:\n%s", out);
	const int want[] = {-32700, -32601, -32700, -32700, -32602, -32700, 0};
	for (int i = 0; i < 7; i++) {
		cJSON *m = line_at(out, i);
		cr_assert_not_null(m, "reply %d missing or not JSON:\n%s", i, out);
		cr_expect_eq(h_error_code(m), want[i], "reply %d: code %d, expected %d", i, h_error_code(m), want[i]);
		if (want[i] == 0) {
			const cJSON *ports = cJSON_GetObjectItem(h_result(m), "ports");
			cr_expect_eq(cJSON_GetArraySize(ports), 0, "an invalid port was stored");
		}
		cJSON_Delete(m);
	}
	cJSON *extra = line_at(out, 7);
	cr_expect_null(extra, "more replies than lines: the second value on a line was run");
	cJSON_Delete(extra);
}

/* ---- fairness and bounds ---------------------------------------------- */

static long rss_kib(pid_t pid)
{
	char path[64], line[256];
	snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
	FILE *f = fopen(path, "r");
	long kib = -1;
	while (f && fgets(line, sizeof line, f))
		if (!strncmp(line, "VmRSS:", 6))
			kib = atol(line + 6);
	if (f)
		fclose(f);
	return kib;
}

/* A child that streams requests without reading for `seconds`. */
static pid_t start_flooder(int seconds)
{
	pid_t pid = fork();
	if (pid == 0) {
		int fd = h_connect(env.sock);
		static char burst[64 * 1024];
		const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"devices.list\"}\n";
		size_t l = strlen(req), n = 0;
		while (n + l <= sizeof burst) {
			memcpy(burst + n, req, l);
			n += l;
		}
		fcntl(fd, F_SETFL, O_NONBLOCK);
		time_t end = time(NULL) + seconds;
		while (time(NULL) < end) {
			if (write(fd, burst, n) < 0)
				usleep(1000);
		}
		_exit(0);
	}
	return pid;
}

Test(daemon_hostile, a_flooding_client_does_not_starve_others)
{
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	pid_t flood[2] = {start_flooder(6), start_flooder(6)};
	usleep(500000);
	struct h_client c;
	h_client_open(&c, env.sock);
	int answered = 0;
	for (int i = 0; i < 40; i++) {
		cJSON *r = h_call(&c, "version", NULL, 5000);
		answered += h_result(r) != NULL;
		cJSON_Delete(r);
	}
	long rss = rss_kib(env.daemon);
	cr_expect_eq(answered, 40, "a normal client got %d of 40 answers beside two flooders", answered);
	cr_expect_lt(rss, 100 * 1024, "the daemon grew to %ld KiB under a flood", rss);
	for (int i = 0; i < 2; i++) {
		kill(flood[i], SIGKILL);
		waitpid(flood[i], NULL, 0);
	}
	h_client_close(&c);
	cr_expect(h_daemon_alive(&env));
}

Test(daemon_hostile, six_hundred_idle_connections)
{
	need_root();
	const char *extra[] = {"--group", "65534", "--limit", "idle_timeout_s=3", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	int p[2], go[2];
	cr_assert_eq(pipe(p), 0);
	cr_assert_eq(pipe(go), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		close(go[1]);
		int res[3] = {-1, -1, -1};
		static int fds[600];
		if (setgroups(0, NULL) == 0 && setgid(NOBODY) == 0 && setuid(NOBODY) == 0) {
			int opened = 0;
			for (int i = 0; i < 600; i++)
				opened += (fds[i] = h_connect(env.sock)) >= 0;
			usleep(1000000);
			/* Refused ones got one line saying why, then EOF. */
			int refused = 0;
			for (int i = 0; i < 600; i++) {
				char buf[1024];
				fcntl(fds[i], F_SETFL, O_NONBLOCK);
				ssize_t r = read(fds[i], buf, sizeof buf - 1);
				if (r > 0) {
					buf[r] = '\0';
					if (strstr(buf, "FLASHER_EBUSY") && strstr(buf, "connections")) {
						refused++;
						close(fds[i]);
						fds[i] = -1;
					}
				}
			}
			res[0] = opened;
			res[1] = refused;
			if (write(p[1], res, sizeof res) != sizeof res)
				_exit(1);
			char x;
			if (read(go[0], &x, 1) != 1)
				_exit(1);
			/* After the idle timeout: a line saying so, then EOF. */
			int idle = 0;
			for (int i = 0; i < 600; i++) {
				if (fds[i] < 0)
					continue;
				char buf[2048];
				size_t got = 0;
				struct pollfd pf = {fds[i], POLLIN, 0};
				while (poll(&pf, 1, 2000) > 0) {
					ssize_t r = read(fds[i], buf + got, sizeof buf - 1 - got);
					if (r <= 0)
						break;
					got += (size_t)r;
				}
				buf[got] = '\0';
				idle += strstr(buf, "server.dropped") && strstr(buf, "idle") ? 1 : 0;
			}
			res[2] = idle;
		}
		_exit(write(p[1], res, sizeof res) == sizeof res ? 0 : 1);
	}
	close(p[1]);
	close(go[0]);
	int res[3] = {0, 0, 0};
	cr_assert_eq(read(p[0], res, sizeof res), (ssize_t)sizeof res);
	/* Meanwhile another user is served. */
	cJSON *out = h_as_user(env.sock, OTHER, NOBODY, -1, "[[\"version\",null]]", 0);
	cr_expect_not_null(h_result((cJSON *)resp_at(out, 0)), "another user was locked out by 600 connections");
	cJSON_Delete(out);
	cr_expect_eq(res[0], 600);
	cr_expect_eq(res[1], 600 - 64, "%d connections refused with a reason (expected all past the 64 of the uid limit)",
	             res[1]);
	usleep(4500000);
	cr_assert_eq(write(go[1], "x", 1), 1);
	cr_assert_eq(read(p[0], res, sizeof res), (ssize_t)sizeof res);
	cr_expect_eq(res[2], 64, "%d of 64 idle connections were closed with a reason", res[2]);
	close(p[0]);
	close(go[1]);
	waitpid(pid, NULL, 0);
}

Test(daemon_hostile, slow_subscribers_are_dropped_with_a_reason)
{
	for (int i = 0; i < 4; i++)
		cr_assert_gt(h_start_unit(&env, i, slow_unit()), 0);
	const char *extra[] = {"--limit", "client_output=4096", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	struct h_client sub;
	h_client_open(&sub, env.sock);
	cr_assert_eq(h_wait_devices(&sub, 4, 20000), 4);
	static int lag[20];
	for (int i = 0; i < 20; i++) {
		lag[i] = h_connect(env.sock);
		const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}\n";
		cr_assert_eq(write(lag[i], req, strlen(req)), (ssize_t)strlen(req));
	}
	cJSON *r = h_call(&sub, "subscribe", NULL, 5000);
	cJSON_Delete(r);
	const char *pkg = h_make_package(&env, "lag", "4.0.0", 64 * 1024, 16 * 1024);
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true}", pkg);
	r = h_call(&sub, "update.start", params, 15000);
	double batch = h_num(h_result(r), "batch");
	cJSON_Delete(r);
	cJSON *jobs = h_wait_batch(&sub, batch, 120000);
	int done = 0;
	const cJSON *j;
	cJSON_ArrayForEach(j, cJSON_GetObjectItem(jobs, "jobs"))
		done += !strcmp(h_str(j, "state"), "done");
	cJSON_Delete(jobs);
	cr_expect_eq(done, 4, "the reading subscriber's jobs: %d of 4 done", done);
	int dropped = 0;
	for (int i = 0; i < 20; i++) {
		static char buf[1 << 20];
		size_t got = 0;
		struct pollfd pf = {lag[i], POLLIN, 0};
		while (got < sizeof buf - 1 && poll(&pf, 1, 3000) > 0) {
			ssize_t n = read(lag[i], buf + got, sizeof buf - 1 - got);
			if (n <= 0)
				break;
			got += (size_t)n;
		}
		buf[got] = '\0';
		/* The last line says why, and then the connection is closed. */
		char *last = got > 1 ? buf + got - 2 : buf;
		while (last > buf && last[-1] != '\n')
			last--;
		cJSON *m = cJSON_Parse(last);
		const cJSON *p = cJSON_GetObjectItem(m, "params");
		dropped += m && !strcmp(h_str(m, "method"), "server.dropped") && strstr(h_str(p, "reason"), "queued");
		cJSON_Delete(m);
		close(lag[i]);
	}
	cr_expect_eq(dropped, 20, "%d of 20 lagging subscribers got a final server.dropped", dropped);
	h_client_close(&sub);
}

/* ---- systemd ----------------------------------------------------------- */

Test(daemon_hostile, tells_systemd_ready_and_feeds_the_watchdog)
{
	char path[400];
	snprintf(path, sizeof path, "%s/notify.sock", env.dir);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	cr_assert_lt(strlen(path), sizeof a.sun_path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
	setenv("NOTIFY_SOCKET", path, 1);
	setenv("WATCHDOG_USEC", "200000", 1);
	pid_t d = h_start_daemon(&env, NULL);
	unsetenv("NOTIFY_SOCKET");
	unsetenv("WATCHDOG_USEC");
	cr_assert_gt(d, 0);
	int ready = 0, watchdog = 0;
	for (int i = 0; i < 100 && (!ready || watchdog < 3); i++) {
		struct pollfd pf = {fd, POLLIN, 0};
		if (poll(&pf, 1, 5000) <= 0)
			break;
		char msg[256];
		ssize_t n = recv(fd, msg, sizeof msg - 1, 0);
		if (n <= 0)
			break;
		msg[n] = '\0';
		ready |= strstr(msg, "READY=1") != NULL;
		watchdog += ready && strstr(msg, "WATCHDOG=1") != NULL;
	}
	cr_expect(ready, "no READY=1 on $NOTIFY_SOCKET");
	cr_expect_geq(watchdog, 3, "%d WATCHDOG=1 after READY (WATCHDOG_USEC=200000)", watchdog);
	h_stop_daemon(&env, SIGTERM);
	int stopping = 0;
	for (int i = 0; i < 100 && !stopping; i++) {
		char msg[256];
		ssize_t n = recv(fd, msg, sizeof msg - 1, MSG_DONTWAIT);
		if (n <= 0)
			break;
		msg[n] = '\0';
		stopping = strstr(msg, "STOPPING=1") != NULL;
	}
	cr_expect(stopping, "no STOPPING=1 when stopped");
	close(fd);
}

Test(daemon_hostile, package_reads_are_bounded_in_memory)
{
	/* A budget below one package's 3 x size: the read is refused, not done. */
	const char *extra[] = {"--limit", "package_bytes=100000", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	const char *pkg = h_make_package(&env, "big", "5.0.0", 48 * 1024, 16 * 1024);
	cr_assert_not_null(pkg);
	struct h_client c;
	h_client_open(&c, env.sock);
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\"}", pkg);
	cJSON *r = h_call(&c, "package.inspect", params, 10000);
	cr_expect_eq(h_error_lib_code(r), -13, "a package over the memory budget was read: %d", h_error_lib_code(r));
	cJSON_Delete(r);
	h_client_close(&c);
	h_stop_daemon(&env, SIGTERM);
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	h_client_open(&c, env.sock);
	r = h_call(&c, "package.inspect", params, 10000);
	cr_expect_not_null(h_result(r), "within the default budget it is read");
	cJSON_Delete(r);
	h_client_close(&c);
}
