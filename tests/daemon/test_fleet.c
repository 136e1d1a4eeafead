/* flasherd updating fleets of simulated units: real flasher-devsim
 * processes on ptys, a real daemon, JSON over its socket. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static struct h_env env;
static struct h_client sub; /* the test's subscribed client */

static void setup(void)
{
	h_env_init(&env);
	memset(&sub, 0, sizeof sub);
	sub.fd = -1;
}

static void teardown(void)
{
	h_client_close(&sub);
	cr_expect(h_env_cleanup(&env), "the daemon's sanitizers reported errors (see above)");
}

TestSuite(daemon_fleet, .init = setup, .fini = teardown, .timeout = 300);

static long long ms_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int state_rank(const char *s)
{
	static const char *order[] = {"queued", "running", "verifying", "rebooting", "done"};
	for (int i = 0; i < 5; i++)
		if (!strcmp(s, order[i]))
			return i;
	return -1;
}

static int final_state(const char *s)
{
	return !strcmp(s, "done") || !strcmp(s, "failed") || !strcmp(s, "cancelled");
}

/* Start n units (extra args for unit i from extra_for), the daemon, and a
 * subscribed client that sees all n units. */
static void start_fleet(int n, const char *const *(*extra_for)(int i), struct h_client *c)
{
	for (int i = 0; i < n; i++)
		cr_assert_gt(h_start_unit(&env, i, extra_for ? extra_for(i) : NULL), 0, "unit %d did not start", i);
	cr_assert_gt(h_start_daemon(&env, NULL), 0, "flasherd did not start");
	h_client_open(c, env.sock);
	cr_assert_geq(c->fd, 0);
	cr_assert_eq(h_wait_devices(c, n, 20000), n, "the daemon does not list all %d units", n);
	cJSON *r = h_call(c, "subscribe", NULL, 5000);
	cr_assert_not_null(h_result(r));
	cJSON_Delete(r);
}

/* update.start {"package": pkg, "all": true}: returns the result. */
static cJSON *start_all(struct h_client *c, const char *pkg)
{
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true}", pkg);
	cJSON *r = h_call(c, "update.start", params, 15000);
	cr_assert_not_null(h_result(r), "update.start failed: %s", r ? cJSON_PrintUnformatted(r) : "no answer");
	cJSON *res = cJSON_DetachItemFromObject(r, "result");
	cJSON_Delete(r);
	return res;
}

static const char *uid_of_unit(struct h_client *c, int i)
{
	static char uid[32];
	uid[0] = '\0';
	cJSON *r = h_call(c, "devices.list", "{\"all\":true}", 5000);
	const cJSON *d;
	cJSON_ArrayForEach(d, cJSON_GetObjectItem(h_result(r), "devices"))
		if (!strcasecmp(h_str(d, "serial"), env.unit_serial[i]))
			snprintf(uid, sizeof uid, "%s", h_str(d, "uid"));
	cJSON_Delete(r);
	return uid;
}

/* Per-job record of what a subscriber saw. */
struct seen {
	double job;
	int states[16];
	int nstates;
	char final[16];
	double last_bytes, total;
	int progress_backwards, progress_full;
	double resume_of;
};

static struct seen *seen_for(struct seen *s, int *n, double job)
{
	for (int i = 0; i < *n; i++)
		if (s[i].job == job)
			return &s[i];
	memset(&s[*n], 0, sizeof s[*n]);
	s[*n].job = job;
	s[*n].resume_of = -1;
	return &s[(*n)++];
}

static void note(struct seen *s, int *n, const cJSON *m)
{
	const char *method = h_str(m, "method");
	const cJSON *p = cJSON_GetObjectItem(m, "params");
	if (!strcmp(method, "job.state")) {
		struct seen *j = seen_for(s, n, h_num(p, "job"));
		const char *st = h_str(p, "state");
		if (j->nstates < 16)
			j->states[j->nstates++] = final_state(st) && strcmp(st, "done") ? 100 : state_rank(st);
		if (final_state(st))
			snprintf(j->final, sizeof j->final, "%s", st);
		if (cJSON_IsNumber(cJSON_GetObjectItem(p, "resume_of")))
			j->resume_of = h_num(p, "resume_of");
	} else if (!strcmp(method, "job.progress")) {
		struct seen *j = seen_for(s, n, h_num(p, "job"));
		double b = h_num(p, "bytes");
		if (b < j->last_bytes)
			j->progress_backwards = 1;
		j->last_bytes = b;
		j->total = h_num(p, "total");
		if (b > 0 && b == j->total)
			j->progress_full = 1;
	}
}

static int count_final(struct seen *s, int n, const char *which)
{
	int k = 0;
	for (int i = 0; i < n; i++)
		if (which ? !strcmp(s[i].final, which) : s[i].final[0] != 0)
			k++;
	return k;
}

/* Read notifications until `want` jobs have reached a final state. */
static void pump(struct h_client *c, struct seen *s, int *n, int want, int timeout_ms)
{
	long long until = ms_now() + timeout_ms;
	while (count_final(s, *n, NULL) < want && ms_now() < until) {
		cJSON *m = h_next_note(c, 500);
		if (m && cJSON_GetObjectItem(m, "method"))
			note(s, n, m);
		cJSON_Delete(m);
	}
}

static void expect_all_on_version(struct h_client *c, int n, const char *ver)
{
	/* The prober's next HELLO refreshes the versions. */
	int ok = 0;
	for (int tries = 0; tries < 50 && ok < n; tries++) {
		ok = 0;
		cJSON *r = h_call(c, "devices.list", NULL, 5000);
		const cJSON *d;
		cJSON_ArrayForEach(d, cJSON_GetObjectItem(h_result(r), "devices"))
			ok += !strcmp(h_str(d, "firmware_version"), ver) && !strcmp(h_str(d, "cm4_version"), ver);
		cJSON_Delete(r);
		if (ok < n)
			usleep(200000);
	}
	cr_expect_eq(ok, n, "%d of %d units run %s", ok, n, ver);
}

static int history_lines(const char *type)
{
	FILE *f = fopen(env.history, "r");
	if (!f)
		return -1;
	char line[8192], pat[64];
	snprintf(pat, sizeof pat, "\"type\":\"%s\"", type);
	int k = 0;
	while (fgets(line, sizeof line, f))
		k += strstr(line, pat) != NULL;
	fclose(f);
	return k;
}

Test(daemon_fleet, updates_eight_units_at_once)
{
	start_fleet(8, NULL, &sub);
	const char *pkg = h_make_package(&env, "v110", "1.1.0", 64 * 1024, 96 * 1024);
	cr_assert_not_null(pkg);
	cJSON *res = start_all(&sub, pkg);
	cr_assert_eq(cJSON_GetArraySize(cJSON_GetObjectItem(res, "jobs")), 8);
	double batch = h_num(res, "batch");
	cJSON_Delete(res);

	struct seen s[32];
	int n = 0;
	pump(&sub, s, &n, 8, 240000);
	cr_assert_eq(count_final(s, n, NULL), 8, "only %d of 8 jobs ended", count_final(s, n, NULL));
	for (int i = 0; i < n; i++) {
		cr_expect_str_eq(s[i].final, "done", "job %.0f ended %s", s[i].job, s[i].final);
		cr_expect_geq(s[i].nstates, 3, "job %.0f: %d state notifications", s[i].job, s[i].nstates);
		cr_expect_eq(s[i].states[0], 0, "job %.0f: first state is not 'queued'", s[i].job);
		for (int k = 1; k < s[i].nstates; k++)
			cr_expect_gt(s[i].states[k], s[i].states[k - 1], "job %.0f: states out of order", s[i].job);
		cr_expect_not(s[i].progress_backwards, "job %.0f: progress went backwards", s[i].job);
		cr_expect(s[i].progress_full, "job %.0f: progress never reached its total", s[i].job);
	}
	expect_all_on_version(&sub, 8, "1.1.0");

	char params[64];
	snprintf(params, sizeof params, "{\"batch\":%.0f}", batch);
	cJSON *h = h_call(&sub, "history.list", params, 5000);
	cJSON *recs = cJSON_GetObjectItem(h_result(h), "records");
	cr_expect_eq(cJSON_GetArraySize(recs), 8);
	const cJSON *r;
	cJSON_ArrayForEach(r, recs)
	{
		cr_expect_str_eq(h_str(r, "outcome"), "done");
		cr_expect_str_eq(h_str(r, "new_version"), "1.1.0");
		cr_expect_eq(strlen(h_str(r, "package_sha256")), 64);
		cr_expect_eq(strlen(h_str(r, "uid")), 24);
	}
	cJSON_Delete(h);
	h_client_close(&sub);
}

static const char *const *slow_unit3(int i)
{
	static const char *slow[] = {"--link-rate", "120000", NULL};
	return i == 3 ? slow : NULL;
}

Test(daemon_fleet, killed_unit_fails_alone_then_resumes)
{
	start_fleet(8, slow_unit3, &sub);
	char uid3[32];
	snprintf(uid3, sizeof uid3, "%s", uid_of_unit(&sub, 3));
	cr_assert_eq(strlen(uid3), 24);
	const char *pkg = h_make_package(&env, "v120", "1.2.0", 128 * 1024, 128 * 1024);
	cr_assert_not_null(pkg);
	cJSON *res = start_all(&sub, pkg);
	double job3 = -1;
	const cJSON *j;
	cJSON_ArrayForEach(j, cJSON_GetObjectItem(res, "jobs"))
		if (!strcasecmp(h_str(j, "uid"), uid3))
			job3 = h_num(j, "job");
	cJSON_Delete(res);
	cr_assert_gt(job3, 0);

	/* Pull unit 3's plug in the middle of its transfer. */
	struct seen s[32];
	int n = 0;
	long long until = ms_now() + 60000;
	int killed = 0;
	while (!killed && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		if (!m)
			continue;
		note(s, &n, m);
		const cJSON *p = cJSON_GetObjectItem(m, "params");
		if (!strcmp(h_str(m, "method"), "job.progress") && h_num(p, "job") == job3 && h_num(p, "bytes") > 0 &&
		    h_num(p, "bytes") < h_num(p, "total") / 2) {
			h_kill_unit(&env, 3, SIGKILL);
			killed = 1;
		}
		cJSON_Delete(m);
	}
	cr_assert(killed, "never saw unit 3 mid-transfer");
	/* Until the 8 first jobs have ended (retries of job 3 wait for the unit). */
	until = ms_now() + 240000;
	for (;;) {
		int firsts = 0;
		for (int i = 0; i < n; i++)
			firsts += s[i].resume_of < 0 && s[i].final[0];
		if (firsts >= 8 || ms_now() > until)
			break;
		cJSON *m = h_next_note(&sub, 500);
		if (m)
			note(s, &n, m);
		cJSON_Delete(m);
	}
	struct seen *s3 = seen_for(s, &n, job3);
	cr_expect_str_eq(s3->final, "failed", "the unplugged unit's job ended '%s'", s3->final);
	int done = 0;
	for (int i = 0; i < n; i++)
		if (s[i].job != job3 && s[i].resume_of < 0)
			done += !strcmp(s[i].final, "done");
	cr_expect_eq(done, 7, "%d of the other 7 units finished", done);

	/* Plug it back: same flash file, same port. */
	cr_assert_gt(h_start_unit(&env, 3, NULL), 0);
	int resumed_done = 0;
	double resumed_job = -1;
	until = ms_now() + 120000;
	while (!resumed_done && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		if (m) {
			note(s, &n, m);
			for (int i = 0; i < n; i++)
				if (s[i].resume_of == job3 && !strcmp(s[i].final, "done")) {
					resumed_done = 1;
					resumed_job = s[i].job;
				}
		}
		cJSON_Delete(m);
	}
	cr_assert(resumed_done, "the unit's job was not resumed to the end after it came back");
	char params[64];
	snprintf(params, sizeof params, "{\"job\":%.0f}", resumed_job);
	cJSON *r = h_call(&sub, "job.get", params, 5000);
	cr_expect_gt(h_num(h_result(r), "resumed_bytes"), 0, "the retry started from zero instead of resuming");
	cJSON_Delete(r);
	expect_all_on_version(&sub, 8, "1.2.0");
	cr_expect_eq(history_lines("start"), 9);
	cr_expect_eq(history_lines("end"), 9);
	h_client_close(&sub);
}

static const char *const *all_slow(int i)
{
	(void)i;
	static const char *slow[] = {"--link-rate", "100000", NULL};
	return slow;
}

/* Count the history file's "end" lines per job: every accepted job must
 * have exactly one. Returns the number of jobs with another count. */
static int jobs_not_ended_once(const double *jobs, int n)
{
	int bad = 0;
	for (int i = 0; i < n; i++) {
		FILE *f = fopen(env.history, "r");
		cr_assert_not_null(f);
		char line[8192], pat[64];
		snprintf(pat, sizeof pat, "\"job\":%.0f,", jobs[i]);
		int k = 0;
		while (fgets(line, sizeof line, f))
			k += strstr(line, "\"type\":\"end\"") && strstr(line, pat);
		fclose(f);
		if (k != 1) {
			cr_log_error("job %.0f has %d end records", jobs[i], k);
			bad++;
		}
	}
	return bad;
}

/* history.list until every job in jobs has an outcome other than
 * "incomplete"; outcomes[i] gets it. */
static void wait_outcomes(struct h_client *c, const double *jobs, int n, char (*outcomes)[16], int timeout_ms)
{
	long long until = ms_now() + timeout_ms;
	for (;;) {
		int ended = 0;
		cJSON *h = h_call(c, "history.list", NULL, 5000);
		for (int i = 0; i < n; i++) {
			snprintf(outcomes[i], 16, "missing");
			const cJSON *r;
			cJSON_ArrayForEach(r, cJSON_GetObjectItem(h_result(h), "records"))
				if (h_num(r, "job") == jobs[i])
					snprintf(outcomes[i], 16, "%s", h_str(r, "outcome"));
			ended += strcmp(outcomes[i], "incomplete") && strcmp(outcomes[i], "missing");
		}
		cJSON_Delete(h);
		if (ended == n || ms_now() > until)
			return;
		usleep(300000);
	}
}

static void restart_during_job(int sig)
{
	/* Three units, two workers: two jobs run, one waits in the queue. */
	for (int i = 0; i < 3; i++)
		cr_assert_gt(h_start_unit(&env, i, all_slow(i)), 0);
	const char *two[] = {"--max-jobs", "2", NULL};
	cr_assert_gt(h_start_daemon(&env, two), 0);
	h_client_open(&sub, env.sock);
	cr_assert_eq(h_wait_devices(&sub, 3, 20000), 3);
	cJSON *r = h_call(&sub, "subscribe", NULL, 5000);
	cJSON_Delete(r);
	const char *pkg = h_make_package(&env, "v130", "1.3.0", 96 * 1024, 96 * 1024);
	cr_assert_not_null(pkg);
	cJSON *res = start_all(&sub, pkg);
	double jobs[3];
	int nj = 0;
	const cJSON *j;
	cJSON_ArrayForEach(j, cJSON_GetObjectItem(res, "jobs"))
		if (nj < 3)
			jobs[nj++] = h_num(j, "job");
	cJSON_Delete(res);
	cr_assert_eq(nj, 3);
	cr_expect_eq(history_lines("queued"), 3, "accepted jobs must be on disk before update.start answers");
	/* Both transfers under way. */
	struct seen s[8];
	int n = 0, under_way = 0;
	long long until = ms_now() + 60000;
	while (under_way < 2 && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		if (m)
			note(s, &n, m);
		cJSON_Delete(m);
		under_way = 0;
		for (int i = 0; i < n; i++)
			under_way += s[i].last_bytes > 0;
	}
	cr_assert_eq(under_way, 2);
	h_client_close(&sub);
	cr_assert_neq(h_stop_daemon(&env, sig), -1);
	cr_expect_eq(history_lines("start"), 2, "start records must be on disk before flashing");
	cr_expect_eq(history_lines("end"), 0, "a stop or crash is not an outcome");

	cr_assert_gt(h_start_daemon(&env, two), 0, "flasherd did not come back");
	h_client_open(&sub, env.sock);
	char outcomes[3][16];
	wait_outcomes(&sub, jobs, 3, outcomes, 180000);
	for (int i = 0; i < 3; i++)
		cr_expect_str_eq(outcomes[i], "done", "job %.0f ended '%s'", jobs[i], outcomes[i]);
	/* The same jobs continued (same ids), resuming on the unit. */
	r = h_call(&sub, "jobs.list", NULL, 5000);
	int resumed = 0, listed = 0;
	cJSON_ArrayForEach(j, cJSON_GetObjectItem(h_result(r), "jobs"))
	{
		listed++;
		resumed += h_num(j, "resumed_bytes") > 0;
	}
	cJSON_Delete(r);
	cr_expect_eq(listed, 3, "jobs after the restart: %d (expected the 3 accepted ones)", listed);
	cr_expect_geq(resumed, 2, "%d of the 2 interrupted transfers resumed", resumed);
	cr_expect_eq(jobs_not_ended_once(jobs, 3), 0);
	expect_all_on_version(&sub, 3, "1.3.0");
	h_client_close(&sub);
}

/* kill -9 while a job waits for a retry: the retry survives. */
Test(daemon_fleet, daemon_killed_with_a_retry_queued)
{
	for (int i = 0; i < 2; i++)
		cr_assert_gt(h_start_unit(&env, i, all_slow(i)), 0);
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	h_client_open(&sub, env.sock);
	cr_assert_eq(h_wait_devices(&sub, 2, 20000), 2);
	cJSON *r = h_call(&sub, "subscribe", NULL, 5000);
	cJSON_Delete(r);
	char uid0[32];
	snprintf(uid0, sizeof uid0, "%s", uid_of_unit(&sub, 0));
	const char *pkg = h_make_package(&env, "v135", "1.3.5", 96 * 1024, 32 * 1024);
	cJSON *res = start_all(&sub, pkg);
	double jobs[3] = {-1, -1, -1};
	const cJSON *j;
	cJSON_ArrayForEach(j, cJSON_GetObjectItem(res, "jobs"))
		jobs[strcasecmp(h_str(j, "uid"), uid0) ? 1 : 0] = h_num(j, "job");
	cJSON_Delete(res);
	struct seen s[8];
	int n = 0, killed = 0;
	long long until = ms_now() + 60000;
	while (jobs[2] < 0 && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		if (!m)
			continue;
		note(s, &n, m);
		const cJSON *p = cJSON_GetObjectItem(m, "params");
		if (!killed && !strcmp(h_str(m, "method"), "job.progress") && h_num(p, "job") == jobs[0] &&
		    h_num(p, "bytes") > 0) {
			h_kill_unit(&env, 0, SIGKILL); /* the plug pulled mid-transfer */
			killed = 1;
		}
		if (!strcmp(h_str(m, "method"), "job.state") && h_num(p, "resume_of") == jobs[0] &&
		    !strcmp(h_str(p, "state"), "queued"))
			jobs[2] = h_num(p, "job");
		cJSON_Delete(m);
	}
	cr_assert_gt(jobs[2], 0, "no retry was queued for the unplugged unit");
	h_client_close(&sub);
	cr_assert_neq(h_stop_daemon(&env, SIGKILL), -1);

	cr_assert_gt(h_start_unit(&env, 0, NULL), 0);
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	h_client_open(&sub, env.sock);
	char outcomes[3][16];
	wait_outcomes(&sub, jobs, 3, outcomes, 180000);
	cr_expect_str_eq(outcomes[0], "failed", "the unplugged unit's first job: '%s'", outcomes[0]);
	cr_expect_str_eq(outcomes[1], "done", "the other unit's job: '%s'", outcomes[1]);
	cr_expect_str_eq(outcomes[2], "done", "the retry: '%s'", outcomes[2]);
	cr_expect_eq(jobs_not_ended_once(jobs, 3), 0);
	expect_all_on_version(&sub, 2, "1.3.5");
	h_client_close(&sub);
}

/* kill -9 once the job reached `state`: after the restart the same job
 * ends once, with the unit's true outcome. */
static void killed_in_state(const char *state)
{
	cr_assert_gt(h_start_unit(&env, 0, all_slow(0)), 0);
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	h_client_open(&sub, env.sock);
	cr_assert_eq(h_wait_devices(&sub, 1, 20000), 1);
	cJSON *r = h_call(&sub, "subscribe", NULL, 5000);
	cJSON_Delete(r);
	const char *pkg = h_make_package(&env, "v190", "1.9.0", 32 * 1024, 32 * 1024);
	cJSON *res = start_all(&sub, pkg);
	double job = h_num(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "jobs"), 0), "job");
	cJSON_Delete(res);
	int hit = 0;
	long long until = ms_now() + 60000;
	while (!hit && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		const cJSON *p = cJSON_GetObjectItem(m, "params");
		if (m && !strcmp(h_str(m, "method"), "job.state") && h_num(p, "job") == job) {
			cr_assert(!final_state(h_str(p, "state")), "the job ended (%s) before it was %s", h_str(p, "state"), state);
			hit = !strcmp(h_str(p, "state"), state);
		}
		cJSON_Delete(m);
	}
	cr_assert(hit, "never saw the job %s", state);
	h_client_close(&sub);
	cr_assert_neq(h_stop_daemon(&env, SIGKILL), -1);
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	h_client_open(&sub, env.sock);
	char outcome[1][16];
	wait_outcomes(&sub, &job, 1, outcome, 120000);
	cr_expect_str_eq(outcome[0], "done", "killed while %s, the job ended '%s'", state, outcome[0]);
	cr_expect_eq(jobs_not_ended_once(&job, 1), 0);
	expect_all_on_version(&sub, 1, "1.9.0");
	h_client_close(&sub);
}

Test(daemon_fleet, daemon_killed_while_verifying)
{
	killed_in_state("verifying");
}

Test(daemon_fleet, daemon_killed_while_rebooting)
{
	killed_in_state("rebooting");
}

Test(daemon_fleet, daemon_killed_during_job_resumes_it)
{
	restart_during_job(SIGKILL);
}

Test(daemon_fleet, daemon_stopped_during_job_resumes_it)
{
	restart_during_job(SIGTERM);
}

Test(daemon_fleet, hostile_clients_during_jobs)
{
	start_fleet(3, all_slow, &sub);
	const char *pkg = h_make_package(&env, "v140", "1.4.0", 48 * 1024, 48 * 1024);
	cr_assert_not_null(pkg);

	static struct h_client many[100];
	for (int i = 0; i < 100; i++) {
		h_client_open(&many[i], env.sock);
		cr_assert_geq(many[i].fd, 0);
		const char *req = "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"subscribe\"}\n";
		h_send(&many[i], req, strlen(req));
	}
	/* A client that starts the batch and leaves before the answer. */
	struct h_client quitter;
	h_client_open(&quitter, env.sock);
	char line[700];
	snprintf(line, sizeof line, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"update.start\",\"params\":{\"package\":\"%s\",\"all\":true}}\n",
	         pkg);
	cr_assert_eq(h_send(&quitter, line, strlen(line)), 0);
	h_client_close(&quitter);

	/* Noise while the jobs run; half the subscribers leave mid-job. */
	struct h_client noise;
	h_client_open(&noise, env.sock);
	const char *junk = "{{{{\n[1,2,3]\n{\"jsonrpc\":\"2.0\",\"id\":\"x\",\"method\":\"job.cancel\",\"params\":{\"job\":\"all\"}}\n";
	h_send(&noise, junk, strlen(junk));
	for (int i = 0; i < 100; i += 2)
		h_client_close(&many[i]);
	h_client_close(&noise);

	struct seen s[8];
	int n = 0;
	pump(&sub, s, &n, 3, 180000);
	cr_expect_eq(count_final(s, n, "done"), 3, "%d of 3 jobs done", count_final(s, n, "done"));
	/* Every remaining subscriber saw the three jobs end. */
	for (int i = 1; i < 100; i += 2) {
		struct seen si[8];
		int ni = 0;
		pump(&many[i], si, &ni, 3, 10000);
		cr_expect_eq(count_final(si, ni, "done"), 3, "subscriber %d saw %d of 3 jobs end", i, count_final(si, ni, "done"));
		h_client_close(&many[i]);
	}
	cr_expect(h_daemon_alive(&env));
	cr_expect_eq(history_lines("start"), 3);
	cr_expect_eq(history_lines("end"), 3);
	h_client_close(&sub);
}

Test(daemon_fleet, cancel_stops_only_that_job)
{
	start_fleet(2, all_slow, &sub);
	const char *pkg = h_make_package(&env, "v150", "1.5.0", 96 * 1024, 96 * 1024);
	cr_assert_not_null(pkg);
	cJSON *res = start_all(&sub, pkg);
	double victim = h_num(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "jobs"), 0), "job");
	cJSON_Delete(res);
	struct seen s[8];
	int n = 0, asked = 0;
	long long until = ms_now() + 60000;
	while (!asked && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		if (!m)
			continue;
		note(s, &n, m);
		const cJSON *p = cJSON_GetObjectItem(m, "params");
		if (!strcmp(h_str(m, "method"), "job.progress") && h_num(p, "job") == victim && h_num(p, "bytes") > 0) {
			char params[64];
			snprintf(params, sizeof params, "{\"job\":%.0f}", victim);
			cJSON *r = h_call(&sub, "job.cancel", params, 5000);
			cr_expect_not_null(h_result(r), "job.cancel refused");
			cJSON_Delete(r);
			asked = 1;
		}
		cJSON_Delete(m);
	}
	cr_assert(asked);
	pump(&sub, s, &n, 2, 120000);
	struct seen *v = seen_for(s, &n, victim);
	cr_expect_str_eq(v->final, "cancelled");
	cr_expect_eq(count_final(s, n, "done"), 1, "the other job must finish");
	cJSON *h = h_call(&sub, "history.list", NULL, 5000);
	int cancelled = 0;
	const cJSON *r;
	cJSON_ArrayForEach(r, cJSON_GetObjectItem(h_result(h), "records"))
		cancelled += !strcmp(h_str(r, "outcome"), "cancelled") && h_num(r, "code") == -12;
	cJSON_Delete(h);
	cr_expect_eq(cancelled, 1);
	/* A second cancel of an ended job is refused with FLASHER_EINVAL. */
	char params[64];
	snprintf(params, sizeof params, "{\"job\":%.0f}", victim);
	cJSON *again = h_call(&sub, "job.cancel", params, 5000);
	cr_expect_eq(h_error_lib_code(again), -1);
	cJSON_Delete(again);
}

Test(daemon_fleet, config_file_ports_and_nicknames)
{
	for (int i = 0; i < 2; i++)
		cr_assert_gt(h_start_unit(&env, i, NULL), 0);
	char cfg[400];
	snprintf(cfg, sizeof cfg, "%s/flasherd.json", env.dir);
	FILE *f = fopen(cfg, "w");
	cr_assert_not_null(f);
	/* uid = serial for devsim units; nicknames match case-insensitively. */
	fprintf(f, "{\"ports\":[\"%s\",\"%s\"],\"nicknames\":{\"%s\":\"bench-left\"},\"max_jobs\":1}\n", env.unit_link[0],
	        env.unit_link[1], env.unit_serial[0]);
	fclose(f);
	int saved = env.nunits;
	env.nunits = 0; /* no --port: the config names them */
	const char *extra[] = {"--config", cfg, NULL};
	cr_assert_gt(h_start_daemon(&env, extra), 0);
	env.nunits = saved;
	h_client_open(&sub, env.sock);
	cr_assert_eq(h_wait_devices(&sub, 2, 20000), 2, "the config's ports were not watched");
	cJSON *r = h_call(&sub, "device.info", "{\"unit\":\"bench-left\"}", 10000);
	cr_assert_not_null(h_result(r), "device.info by nickname failed");
	cr_expect_str_eq(h_str(h_result(r), "nickname"), "bench-left");
	cr_expect_eq(strcasecmp(h_str(h_result(r), "uid"), env.unit_serial[0]), 0);
	cr_expect_str_eq(h_str(h_result(r), "product"), "demo");
	cJSON_Delete(r);

	const char *pkg = h_make_package(&env, "v160", "1.6.0", 32 * 1024, 32 * 1024);
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"units\":[\"bench-left\"]}", pkg);
	r = h_call(&sub, "update.start", params, 10000);
	cr_assert_not_null(h_result(r));
	double batch = h_num(h_result(r), "batch");
	cr_expect_eq(cJSON_GetArraySize(cJSON_GetObjectItem(h_result(r), "jobs")), 1);
	cJSON_Delete(r);
	/* The same unit twice in flight is refused. */
	r = h_call(&sub, "update.start", params, 10000);
	int busy = h_error_lib_code(r);
	cJSON_Delete(r);
	cJSON *jobs = h_wait_batch(&sub, batch, 120000);
	const cJSON *j = cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0);
	cr_expect_str_eq(h_str(j, "state"), "done");
	cr_expect_str_eq(h_str(j, "nickname"), "bench-left");
	cJSON_Delete(jobs);
	/* EBUSY unless the first job had already ended by then. */
	cr_expect(busy == -13 || busy == 0, "second update.start: %d", busy);
	snprintf(params, sizeof params, "{\"batch\":%.0f}", batch);
	r = h_call(&sub, "history.list", params, 5000);
	const cJSON *rec = cJSON_GetArrayItem(cJSON_GetObjectItem(h_result(r), "records"), 0);
	cr_expect_str_eq(h_str(rec, "nickname"), "bench-left");
	cr_expect_str_eq(h_str(rec, "outcome"), "done");
	cJSON_Delete(r);
}

Test(daemon_fleet, peer_credentials_are_checked)
{
	if (geteuid() != 0)
		cr_skip_test("needs root to switch to another uid");
	cr_assert_gt(h_start_daemon(&env, NULL), 0);
	/* Open the file mode wide: only SO_PEERCRED stands in the way now. */
	chmod(env.sock, 0666);
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(p[0]);
		int res[2] = {-100, 0};
		if (setgid(65533) == 0 && setuid(65533) == 0) {
			struct h_client c;
			h_client_open(&c, env.sock);
			cJSON *m = c.fd >= 0 ? h_read_response(&c, 5000) : NULL;
			res[0] = h_error_lib_code(m);
			res[1] = h_read_any(&c, 2000) == NULL; /* closed after the error */
			cJSON_Delete(m);
		}
		_exit(write(p[1], res, sizeof res) == sizeof res ? 0 : 1);
	}
	close(p[1]);
	int res[2] = {0, 0};
	cr_assert_eq(read(p[0], res, sizeof res), (ssize_t)sizeof res);
	close(p[0]);
	waitpid(pid, NULL, 0);
	cr_expect_eq(res[0], -15, "a stranger's connection got %d instead of FLASHER_EPERM", res[0]);
	cr_expect_eq(res[1], 1, "the stranger's connection stayed open");
	cr_expect(h_daemon_alive(&env));
}

/* Run the CLI with argv, stdout into a string (caller frees); returns exit status. */
static int run_cli(const char *const *argv, char **out)
{
	int p[2];
	cr_assert_eq(pipe(p), 0);
	pid_t pid = fork();
	if (pid == 0) {
		dup2(p[1], 1);
		close(p[0]);
		execv(FLASHER_CLI_BIN, (char *const *)argv);
		_exit(127);
	}
	close(p[1]);
	size_t len = 0, cap = 4096;
	char *buf = malloc(cap);
	ssize_t r;
	while ((r = read(p[0], buf + len, cap - len - 1)) > 0) {
		len += (size_t)r;
		if (cap - len < 1024)
			buf = realloc(buf, cap *= 2);
	}
	buf[len] = '\0';
	close(p[0]);
	int st = 0;
	waitpid(pid, &st, 0);
	*out = buf;
	return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(daemon_fleet, cli_fleet_update_and_report)
{
	start_fleet(3, NULL, &sub);
	const char *pkg = h_make_package(&env, "v170", "1.7.0", 32 * 1024, 32 * 1024);
	cr_assert_not_null(pkg);
	char *out = NULL;
	const char *up[] = {FLASHER_CLI_BIN, "fleet", "update", pkg, "--all", "--json", "--socket", env.sock, NULL};
	int rc = run_cli(up, &out);
	cr_expect_eq(rc, 0, "flasher fleet update exited %d:\n%s", rc, out);
	/* Every stdout line is JSON; the last one sums up. */
	char *last = NULL, *save = NULL;
	int lines = 0, bad = 0;
	for (char *l = strtok_r(out, "\n", &save); l; l = strtok_r(NULL, "\n", &save)) {
		cJSON *j = cJSON_Parse(l);
		bad += !j;
		cJSON_Delete(j);
		last = l;
		lines++;
	}
	cr_expect_eq(bad, 0, "non-JSON lines on stdout with --json");
	cr_expect_gt(lines, 3);
	cJSON *fin = last ? cJSON_Parse(last) : NULL;
	cr_expect_str_eq(h_str(fin, "event"), "finished");
	cr_expect_eq(h_num(fin, "done"), 3);
	cJSON_Delete(fin);
	free(out);

	const char *rep[] = {FLASHER_CLI_BIN, "fleet", "report", "--format", "csv", "--socket", env.sock, NULL};
	rc = run_cli(rep, &out);
	cr_expect_eq(rc, 0);
	cr_expect_eq(strncmp(out, "job,batch,uid,", 14), 0, "CSV header: %.40s", out);
	int rows = 0;
	for (char *l = strchr(out, '\n'); l && l[1]; l = strchr(l + 1, '\n'))
		rows += strstr(l, ",done,") != NULL;
	cr_expect_eq(rows, 3, "CSV rows with outcome done: %d\n%s", rows, out);
	free(out);

	const char *ls[] = {FLASHER_CLI_BIN, "fleet", "list", "--json", "--socket", env.sock, NULL};
	rc = run_cli(ls, &out);
	cJSON *devs = cJSON_Parse(out);
	cr_expect_eq(cJSON_GetArraySize(devs), 3);
	const cJSON *d;
	cJSON_ArrayForEach(d, devs)
		cr_expect_str_eq(h_str(d, "firmware_version"), "1.7.0");
	cJSON_Delete(devs);
	free(out);
}

Test(daemon_fleet, device_calls_reach_the_unit)
{
	start_fleet(1, NULL, &sub);
	const char *pkg = h_make_package(&env, "v180", "1.8.0", 32 * 1024, 32 * 1024);
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"units\":[\"%s\"]}", pkg, env.unit_serial[0]);
	cJSON *r = h_call(&sub, "update.start", params, 10000);
	cr_assert_not_null(h_result(r));
	double batch = h_num(h_result(r), "batch");
	cJSON_Delete(r);
	cJSON *jobs = h_wait_batch(&sub, batch, 120000);
	cr_assert_str_eq(h_str(cJSON_GetArrayItem(cJSON_GetObjectItem(jobs, "jobs"), 0), "state"), "done");
	cJSON_Delete(jobs);

	snprintf(params, sizeof params, "{\"unit\":\"%s\",\"bootloader\":true}", env.unit_serial[0]);
	r = h_call(&sub, "device.reboot", params, 60000);
	cr_assert_not_null(h_result(r), "device.reboot failed: %s", r ? cJSON_PrintUnformatted(r) : "no answer");
	cr_expect_str_eq(h_str(h_result(r), "mode"), "bootloader");
	cJSON_Delete(r);

	snprintf(params, sizeof params, "{\"unit\":\"%s\"}", env.unit_link[0]);
	r = h_call(&sub, "device.info", params, 30000);
	cr_assert_not_null(h_result(r));
	cr_expect_str_eq(h_str(h_result(r), "mode"), "bootloader");
	cr_expect_str_eq(h_str(h_result(r), "cm7_version"), "1.8.0");
	cJSON_Delete(r);

	r = h_call(&sub, "device.info", "{\"unit\":\"000000000000000000000000\"}", 5000);
	cr_expect_eq(h_error_lib_code(r), -4);
	cJSON_Delete(r);
}

/* One owner per unit: a CLI update of a unit that a daemon job is updating
 * gets FLASHER_EBUSY (exit 23) without disturbing the job, which finishes. */
Test(daemon_fleet, cli_update_during_a_job_gets_ebusy)
{
	start_fleet(1, all_slow, &sub);
	const char *pkg = h_make_package(&env, "v190", "1.9.0", 128 * 1024, 64 * 1024);
	cr_assert_not_null(pkg);
	cJSON *res = start_all(&sub, pkg);
	double job = h_num(cJSON_GetArrayItem(cJSON_GetObjectItem(res, "jobs"), 0), "job");
	cJSON_Delete(res);
	struct seen s[8];
	int n = 0, tried = 0;
	long long until = ms_now() + 60000;
	while (!tried && ms_now() < until) {
		cJSON *m = h_next_note(&sub, 500);
		if (!m)
			continue;
		note(s, &n, m);
		const cJSON *p = cJSON_GetObjectItem(m, "params");
		if (!strcmp(h_str(m, "method"), "job.progress") && h_num(p, "job") == job && h_num(p, "bytes") > 0) {
			char *out = NULL;
			const char *up[] = {FLASHER_CLI_BIN, "update", env.unit_link[0], pkg, "--json", NULL};
			int rc = run_cli(up, &out);
			cr_expect_eq(rc, 23, "the second update exited %d: %s", rc, out);
			cr_expect(strstr(out, "FLASHER_EBUSY") && strstr(out, "flasherd"), "names the holder: %s", out);
			free(out);
			tried = 1;
		}
		cJSON_Delete(m);
	}
	cr_assert(tried, "the job never reported progress");
	pump(&sub, s, &n, 1, 120000);
	cr_expect_str_eq(seen_for(s, &n, job)->final, "done");
	/* the unit ends on the new version (a daemon probe may hold the port
	 * for a moment: that is a busy port too, asked again) */
	char *out = NULL;
	const char *info[] = {FLASHER_CLI_BIN, "info", env.unit_link[0], "--json", NULL};
	int rc = 23;
	for (int i = 0; i < 20 && rc == 23; i++) {
		free(out);
		out = NULL;
		if ((rc = run_cli(info, &out)) == 23)
			usleep(200000);
	}
	cr_expect_eq(rc, 0, "%s", out);
	cr_expect(strstr(out, "\"version\":\"1.9.0\"") && strstr(out, "\"state\":\"confirmed\""), "%s", out);
	free(out);
}

/* update.start's policies: the same version again is done at once with
 * nothing written, a dry run checks and writes nothing, a downgrade fails
 * with FLASHER_EDOWNGRADE unless allow_older. */
static cJSON *run_batch(struct h_client *c, const char *pkg, const char *extra)
{
	char params[800];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true%s}", pkg, extra);
	cJSON *r = h_call(c, "update.start", params, 15000);
	cr_assert_not_null(h_result(r), "update.start failed: %s", r ? cJSON_PrintUnformatted(r) : "no answer");
	double batch = h_num(h_result(r), "batch");
	cJSON_Delete(r);
	cJSON *jobs = h_wait_batch(c, batch, 120000);
	cr_assert_not_null(jobs);
	cJSON *first = cJSON_DetachItemFromArray(cJSON_GetObjectItem(jobs, "jobs"), 0);
	cJSON_Delete(jobs);
	cr_assert_not_null(first);
	return first;
}

static double unit_version_major_minor(struct h_client *c)
{
	cJSON *r = h_call(c, "devices.list", "{\"all\":true}", 5000);
	const cJSON *d = cJSON_GetArrayItem(cJSON_GetObjectItem(h_result(r), "devices"), 0);
	const char *v = d ? h_str(d, "version") : "";
	int a = 0, b = 0;
	sscanf(v, "%d.%d", &a, &b);
	cJSON_Delete(r);
	return a + b / 10.0;
}

Test(daemon_fleet, update_start_takes_the_update_policies)
{
	start_fleet(1, NULL, &sub);
	const char *p11 = h_make_package(&env, "p11.pkg", "1.1.0", 20 * 1024, 8 * 1024);
	const char *p12 = h_make_package(&env, "p12.pkg", "1.2.0", 21 * 1024, 9 * 1024);
	const char *p10 = h_make_package(&env, "p10.pkg", "1.0.0", 22 * 1024, 10 * 1024);
	cJSON *j = run_batch(&sub, p11, "");
	cr_assert_str_eq(h_str(j, "state"), "done", "%s", h_str(j, "reason"));
	cJSON_Delete(j);

	j = run_batch(&sub, p11, "");
	cr_assert_str_eq(h_str(j, "state"), "done", "%s", h_str(j, "reason"));
	cr_assert_not_null(strstr(h_str(j, "reason"), "already running 1.1.0"), "%s", h_str(j, "reason"));
	cJSON_Delete(j);

	j = run_batch(&sub, p12, ",\"dry_run\":true");
	cr_assert_str_eq(h_str(j, "state"), "done", "%s", h_str(j, "reason"));
	cr_assert_not_null(strstr(h_str(j, "reason"), "dry run"), "%s", h_str(j, "reason"));
	cJSON_Delete(j);
	cr_assert_eq(unit_version_major_minor(&sub), 1.1, "a dry run changed the unit's version");

	j = run_batch(&sub, p10, "");
	cr_assert_str_eq(h_str(j, "state"), "failed");
	cr_assert_str_eq(h_str(j, "error"), "FLASHER_EDOWNGRADE", "%s", h_str(j, "reason"));
	cr_assert_eq(h_num(j, "code"), -19);
	cJSON_Delete(j);
	cr_assert_eq(unit_version_major_minor(&sub), 1.1);

	j = run_batch(&sub, p10, ",\"allow_older\":true");
	cr_assert_str_eq(h_str(j, "state"), "done", "%s", h_str(j, "reason"));
	cJSON_Delete(j);
	cr_assert_eq(unit_version_major_minor(&sub), 1.0);

	j = run_batch(&sub, p10, ",\"allow_reinstall\":true");
	cr_assert_str_eq(h_str(j, "state"), "done", "%s", h_str(j, "reason"));
	cr_assert_null(strstr(h_str(j, "reason"), "already running"), "%s", h_str(j, "reason"));
	cr_assert_gt(h_num(j, "bytes"), 0);
	cJSON_Delete(j);
	/* A bad value is a params error. */
	char params[600];
	snprintf(params, sizeof params, "{\"package\":\"%s\",\"all\":true,\"dry_run\":\"yes\"}", p12);
	cJSON *r = h_call(&sub, "update.start", params, 15000);
	cr_assert_eq(h_error_code(r), -32602);
	cJSON_Delete(r);
}
