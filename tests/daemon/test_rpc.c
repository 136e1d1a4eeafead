/* flasherd's JSON-RPC server against malformed and hostile input: a real
 * daemon process, real socket clients. */
#include <criterion/criterion.h>
#include <errno.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "flasher.h"
#include "harness.h"

static struct h_env env;
static struct h_client cli;

static void setup(void)
{
	h_env_init(&env);
	cr_assert_gt(h_start_daemon(&env, NULL), 0, "flasherd did not start");
	h_client_open(&cli, env.sock);
	cr_assert_geq(cli.fd, 0);
}

static void teardown(void)
{
	h_client_close(&cli);
	cr_expect(h_env_cleanup(&env), "the daemon's sanitizers reported errors (see above)");
}

TestSuite(daemon_rpc, .init = setup, .fini = teardown, .timeout = 60);

static void expect_alive(void)
{
	cJSON *r = h_call(&cli, "version", NULL, 5000);
	cr_assert_not_null(h_result(r), "daemon did not answer 'version' after the bad request");
	cr_expect_str_eq(h_str(h_result(r), "daemon"), "0.1.0");
	cJSON_Delete(r);
	cr_assert(h_daemon_alive(&env), "daemon died");
}

Test(daemon_rpc, version_answers)
{
	cJSON *r = h_call(&cli, "version", NULL, 5000);
	cJSON *res = h_result(r);
	cr_assert_not_null(res);
	cr_expect_eq(h_num(res, "api"), 1);
	cr_expect_str_eq(h_str(res, "library"), flasher_version());
	cr_expect_str_eq(h_str(r, "jsonrpc"), "2.0");
	cr_expect_eq(h_num(r, "id"), 1);
	cJSON_Delete(r);
}

Test(daemon_rpc, socket_is_owner_only)
{
	struct stat st;
	cr_assert_eq(stat(env.sock, &st), 0);
	cr_expect(S_ISSOCK(st.st_mode));
	cr_expect_eq(st.st_mode & 0777, 0600, "socket mode %o", (unsigned)(st.st_mode & 0777));
}

Test(daemon_rpc, malformed_json_gets_parse_error)
{
	const char *bad[] = {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\n", "not json at all\n", "{\"a\":}\n",
	                     "\x01\x02\xff\xfe\n", "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"version\"\n"};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(h_send(&cli, bad[i], strlen(bad[i])), 0);
		cJSON *r = h_read_response(&cli, 5000);
		cr_assert_not_null(r, "no answer to malformed line %zu", i);
		cr_expect_eq(h_error_code(r), -32700, "line %zu: code %d", i, h_error_code(r));
		cr_expect(cJSON_IsNull(cJSON_GetObjectItem(r, "id")));
		cJSON_Delete(r);
	}
	expect_alive();
}

Test(daemon_rpc, invalid_requests)
{
	const char *bad[] = {
		"[]\n", "42\n", "\"x\"\n", "{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"version\"}\n",
		"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":7}\n", "{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"version\"}\n",
		"{\"id\":1,\"method\":\"version\"}\n",
	};
	for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		cr_assert_eq(h_send(&cli, bad[i], strlen(bad[i])), 0);
		cJSON *r = h_read_response(&cli, 5000);
		cr_assert_not_null(r, "no answer to invalid request %zu", i);
		cr_expect_eq(h_error_code(r), -32600, "request %zu: code %d", i, h_error_code(r));
		cJSON_Delete(r);
	}
	expect_alive();
}

Test(daemon_rpc, unknown_method)
{
	cJSON *r = h_call(&cli, "device.format_everything", "{}", 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_code(r), -32601);
	cJSON_Delete(r);
	expect_alive();
}

Test(daemon_rpc, wrong_parameter_types)
{
	const char *calls[][2] = {
		{"job.get", "{\"job\":\"one\"}"},
		{"job.get", "{}"},
		{"job.get", "{\"job\":1.5}"},
		{"job.cancel", "{\"job\":-3}"},
		{"update.start", "{\"package\":5,\"all\":true}"},
		{"update.start", "{\"package\":\"/x.flpkg\",\"units\":\"abc\"}"},
		{"update.start", "{\"package\":\"/x.flpkg\",\"units\":[1,2]}"},
		{"update.start", "{\"package\":\"/x.flpkg\"}"},
		{"update.start", "{\"package\":\"/x.flpkg\",\"all\":\"yes\"}"},
		{"devices.list", "[1,2]"},
		{"subscribe", "{\"events\":[\"weather\"]}"},
		{"history.list", "{\"limit\":\"ten\"}"},
		{"device.info", "{\"unit\":[]}"},
		{"ports.add", "{\"port\":\"\"}"},
	};
	for (size_t i = 0; i < sizeof calls / sizeof calls[0]; i++) {
		cJSON *r = h_call(&cli, calls[i][0], calls[i][1], 5000);
		cr_assert_not_null(r, "no answer to %s %s", calls[i][0], calls[i][1]);
		cr_expect_eq(h_error_code(r), -32602, "%s %s: code %d", calls[i][0], calls[i][1], h_error_code(r));
		cJSON_Delete(r);
	}
	expect_alive();
}

Test(daemon_rpc, library_errors_carry_code_and_name)
{
	cJSON *r = h_call(&cli, "job.get", "{\"job\":999}", 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_code(r), -32000);
	cr_expect_eq(h_error_lib_code(r), -4);
	cJSON *data = cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "data");
	cr_expect_str_eq(h_str(data, "name"), "FLASHER_ENOTFOUND");
	cr_expect_neq(strstr(h_str(data, "message"), "999"), NULL, "detail should name the job: %s", h_str(data, "message"));
	cJSON_Delete(r);

	r = h_call(&cli, "package.inspect", "{\"package\":\"/nonexistent/p.flpkg\"}", 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_lib_code(r), -4, "missing package: %d", h_error_lib_code(r));
	cJSON_Delete(r);

	char path[400];
	snprintf(path, sizeof path, "%s/garbage.flpkg", env.dir);
	FILE *f = fopen(path, "w");
	fputs("this is not a package", f);
	fclose(f);
	char params[500];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true}", path);
	r = h_call(&cli, "update.start", params, 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_code(r), -32000);
	cr_expect_eq(h_error_lib_code(r), -5, "garbage package: %d", h_error_lib_code(r));
	cJSON_Delete(r);
	expect_alive();
}

Test(daemon_rpc, huge_line_is_refused_and_closed)
{
	size_t n = 200 * 1024;
	char *big = malloc(n);
	memset(big, 'x', n);
	memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"", 34);
	/* The daemon may close before reading everything: a failed send is fine. */
	h_send(&cli, big, n);
	free(big);
	cJSON *r = h_read_response(&cli, 5000);
	cr_assert_not_null(r, "no error for a line over 64 KiB");
	cr_expect_eq(h_error_code(r), -32600);
	cJSON_Delete(r);
	/* Then the connection is closed. */
	cr_expect_null(h_read_any(&cli, 3000));
	h_client_close(&cli);
	h_client_open(&cli, env.sock);
	expect_alive();
}

Test(daemon_rpc, notifications_get_no_answer)
{
	const char *note = "{\"jsonrpc\":\"2.0\",\"method\":\"version\"}\n"
	                   "{\"jsonrpc\":\"2.0\",\"method\":\"no.such.method\"}\n";
	cr_assert_eq(h_send(&cli, note, strlen(note)), 0);
	cJSON *r = h_call(&cli, "jobs.list", NULL, 5000);
	cr_assert_not_null(h_result(r));
	cr_expect_eq(h_num(r, "id"), 1, "first answer must be the one to the call with an id");
	cJSON_Delete(r);
}

Test(daemon_rpc, many_clients_and_abrupt_disconnects)
{
	struct h_client many[100];
	for (int i = 0; i < 100; i++) {
		h_client_open(&many[i], env.sock);
		cr_assert_geq(many[i].fd, 0, "client %d could not connect", i);
		const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}\n";
		cr_assert_eq(h_send(&many[i], req, strlen(req)), 0);
	}
	for (int i = 0; i < 100; i++) {
		cJSON *r = h_read_response(&many[i], 10000);
		cr_expect_not_null(h_result(r), "client %d got no subscribe result", i);
		cJSON_Delete(r);
	}
	/* Half of them leave without a word, some in the middle of a line. */
	for (int i = 0; i < 100; i += 2) {
		if (i % 4 == 0)
			h_send(&many[i], "{\"jsonrpc\":\"2.0\",\"id\":", 22);
		h_client_close(&many[i]);
	}
	for (int i = 1; i < 100; i += 2) {
		cJSON *r = h_call(&many[i], "devices.list", NULL, 5000);
		cr_expect_not_null(h_result(r), "client %d got no answer", i);
		cJSON_Delete(r);
		h_client_close(&many[i]);
	}
	expect_alive();
}

/* A client running as another user: the socket (0600 root) keeps it out;
 * with --group its group may connect, but may only name packages it can
 * read itself. */
static int run_as_nobody(const char *sock, const char *method, const char *params, int *lib_code)
{
	int p[2];
	if (pipe(p) != 0)
		return -100;
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		int res[2] = {0, 0};
		if (setgroups(0, NULL) != 0 || setgid(65534) != 0 || setuid(65534) != 0) {
			res[0] = -101;
		} else {
			struct h_client c;
			h_client_open(&c, sock);
			if (c.fd < 0) {
				res[0] = errno == EACCES ? -102 : -103;
			} else {
				cJSON *r = h_call(&c, method, params, 10000);
				res[0] = r ? h_error_code(r) : -104;
				res[1] = h_error_lib_code(r);
				cJSON_Delete(r);
			}
		}
		if (write(p[1], res, sizeof res) != sizeof res)
			_exit(1);
		_exit(0);
	}
	close(p[1]);
	int res[2] = {-105, 0};
	if (read(p[0], res, sizeof res) != sizeof res)
		res[0] = -105;
	close(p[0]);
	waitpid(pid, NULL, 0);
	*lib_code = res[1];
	return res[0];
}

Test(daemon_rpc, other_users_are_kept_out)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch to another uid");
	int lib = 0;
	int rc = run_as_nobody(env.sock, "version", NULL, &lib);
	cr_expect_eq(rc, -102, "a uid-65534 client reached an owner-only socket (rc %d)", rc);
}

Test(daemon_rpc, package_the_peer_cannot_read_is_refused)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch to another uid");
	/* A second daemon that lets group 65534 in. */
	h_client_close(&cli);
	h_stop_daemon(&env, SIGTERM);
	const char *extra[] = {"--group", "65534", NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	struct stat st;
	cr_assert_eq(stat(env.sock, &st), 0);
	cr_expect_eq(st.st_mode & 0777, 0660);
	cr_expect_eq(st.st_gid, 65534);

	const char *pkg = h_make_package(&env, "secret", "2.0.0", 4096, 4096);
	cr_assert_not_null(pkg);
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\"}", pkg);

	int lib = 0;
	chmod(pkg, 0644);
	int rc = run_as_nobody(env.sock, "package.inspect", params, &lib);
	cr_expect_eq(rc, 0, "a readable package was refused to uid 65534 (rc %d, lib %d)", rc, lib);

	chmod(pkg, 0600); /* root only: the daemon (root) could read it, the peer not */
	rc = run_as_nobody(env.sock, "package.inspect", params, &lib);
	cr_expect_eq(rc, -32000, "rc %d", rc);
	cr_expect_eq(lib, -15, "expected FLASHER_EPERM, got %d", lib);

	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true}", pkg);
	rc = run_as_nobody(env.sock, "update.start", params, &lib);
	cr_expect_eq(lib, -15, "update.start: expected FLASHER_EPERM, got %d (rc %d)", lib, rc);
	cr_assert(h_daemon_alive(&env));
}

Test(daemon_rpc, second_daemon_on_same_socket_refuses)
{
	pid_t first = env.daemon;
	struct h_env e2 = env;
	e2.daemon = 0;
	/* Same socket: must not steal it from the live daemon. */
	pid_t second = h_start_daemon(&e2, NULL);
	int st = 0;
	if (second > 0)
		waitpid(second, &st, 0);
	env.daemon = first;
	cr_expect(second > 0 && WIFEXITED(st) && WEXITSTATUS(st) != 0, "second daemon did not refuse the socket");
	expect_alive();
}

Test(daemon_rpc, socket_activation_uses_fd_3)
{
	char path[400], hist[400];
	snprintf(path, sizeof path, "%s/activated.sock", env.dir);
	snprintf(hist, sizeof hist, "%s/h2.jsonl", env.dir);
	int lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	cr_assert_lt(strlen(path), sizeof a.sun_path);
	memcpy(a.sun_path, path, strlen(path) + 1);
	cr_assert_eq(bind(lfd, (struct sockaddr *)&a, sizeof a), 0);
	cr_assert_eq(listen(lfd, 8), 0);
	pid_t pid = fork();
	if (pid == 0) {
		char buf[32];
		dup2(lfd, 3);
		snprintf(buf, sizeof buf, "%d", (int)getpid());
		setenv("LISTEN_PID", buf, 1);
		setenv("LISTEN_FDS", "1", 1);
		char unused[420];
		snprintf(unused, sizeof unused, "%s/not-bound.sock", env.dir);
		execl(FLASHERD_BIN, FLASHERD_BIN, "--socket", unused, "--history", hist, "--no-usb", "--quiet", (char *)NULL);
		_exit(127);
	}
	close(lfd);
	struct h_client c;
	h_client_open(&c, path);
	cr_assert_geq(c.fd, 0);
	cJSON *r = h_call(&c, "version", NULL, 10000);
	cr_expect_not_null(h_result(r), "no answer on the inherited socket");
	cJSON_Delete(r);
	h_client_close(&c);
	char unused[420];
	snprintf(unused, sizeof unused, "%s/not-bound.sock", env.dir);
	cr_expect_neq(access(unused, F_OK), 0, "the daemon bound --socket despite socket activation");
	kill(pid, SIGTERM);
	int st = 0;
	waitpid(pid, &st, 0);
	cr_expect(WIFEXITED(st) && WEXITSTATUS(st) == 0, "activated daemon did not stop cleanly");
}

/* --trusted-key: update.start takes only packages signed by a trusted key,
 * by the rule of 'flasher verify --key'; package.inspect reports the
 * signatures checked against the trusted keys. */
Test(daemon_trust, trusted_keys_gate_update_start, .timeout = 60)
{
	struct h_env e;
	struct h_client c;
	char key[400], pub[420], bin[400], signed_pkg[400], params[1000];
	h_env_init(&e);
	snprintf(key, sizeof key, "%s/vendor", e.dir);
	snprintf(pub, sizeof pub, "%s.pub", key);
	cr_assert_eq(flasher_keygen(key), 0, "%s", flasher_error_last());
	const char *unsigned_pkg = h_make_package(&e, "plain", "1.0.0", 3000, 2000);
	cr_assert_not_null(unsigned_pkg);
	snprintf(bin, sizeof bin, "%s/plain-cm7.bin", e.dir);
	snprintf(signed_pkg, sizeof signed_pkg, "%s/signed.flpkg", e.dir);
	flasher_pack_options o = FLASHER_PACK_OPTIONS_INIT;
	const char *keys[1] = {key};
	o.product = "demo";
	o.fw_version = "1.0.1";
	o.cm7_file = bin;
	o.sign_keys = keys;
	o.sign_key_count = 1;
	cr_assert_eq(flasher_package_build(&o, signed_pkg), 0, "%s", flasher_error_last());
	chmod(signed_pkg, 0644);

	const char *extra[] = {"--trusted-key", pub, NULL};
	cr_assert_gt(h_start_daemon(&e, extra), 0, "flasherd did not start");
	h_client_open(&c, e.sock);

	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true}", unsigned_pkg);
	cJSON *r = h_call(&c, "update.start", params, 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_lib_code(r), FLASHER_EPERM, "an unsigned package: %d", h_error_lib_code(r));
	const char *msg = h_str(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "data"), "message");
	cr_expect(msg && strstr(msg, "unsigned") && strstr(msg, "trusted-key"), "message: %s", msg ? msg : "(none)");
	cJSON_Delete(r);

	/* the signed one passes the gate (and then finds no unit) */
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true}", signed_pkg);
	r = h_call(&c, "update.start", params, 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_lib_code(r), FLASHER_ENOTFOUND, "a signed package: %d", h_error_lib_code(r));
	cJSON_Delete(r);

	snprintf(params, sizeof params, "{\"package\":\"%s\"}", signed_pkg);
	r = h_call(&c, "package.inspect", params, 5000);
	const cJSON *sg = cJSON_GetObjectItem(h_result(r), "signatures");
	cr_assert_not_null(sg, "package.inspect has no signatures");
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(sg, "key_ids")), 1);
	const cJSON *first = cJSON_GetArrayItem(cJSON_GetObjectItem(sg, "package"), 0);
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(first, "valid")), "the package signature is not reported valid");
	const cJSON *img = cJSON_GetArrayItem(cJSON_GetObjectItem(sg, "images"), 0);
	cr_expect(cJSON_IsTrue(cJSON_GetObjectItem(cJSON_GetArrayItem(cJSON_GetObjectItem(img, "signers"), 0), "valid")));
	cJSON_Delete(r);
	h_client_close(&c);
	cr_expect(h_env_cleanup(&e), "the daemon's sanitizers reported errors (see above)");
}

/* A file larger than any valid package is refused before it is read, so
 * its size costs the daemon no memory. */
Test(daemon_rpc, oversized_package_refused_unread)
{
	char path[400], params[500];
	snprintf(path, sizeof path, "%s/huge.flpkg", env.dir);
	FILE *f = fopen(path, "w");
	cr_assert_not_null(f);
	cr_assert_eq(fseek(f, (long)flasher_package_size_limit(), SEEK_SET), 0);
	fputc('x', f); /* sparse: one byte over the limit */
	fclose(f);
	snprintf(params, sizeof params, "{\"package\":\"%s\"}", path);
	cJSON *r = h_call(&cli, "package.inspect", params, 5000);
	cr_assert_not_null(r);
	cr_expect_eq(h_error_lib_code(r), FLASHER_EFORMAT, "oversized file: %d", h_error_lib_code(r));
	const char *msg = h_str(cJSON_GetObjectItem(cJSON_GetObjectItem(r, "error"), "data"), "message");
	cr_expect(msg && strstr(msg, "no package is larger"), "message: %s", msg ? msg : "(none)");
	cJSON_Delete(r);
	expect_alive();
}
