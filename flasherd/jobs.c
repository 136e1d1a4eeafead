/* The job manager: max_jobs worker threads take queued jobs whose unit is
 * present and free. A job waiting for an absent unit holds no worker, so a
 * slow, failing or unplugged unit never stalls the others. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flasherd.h"

static pthread_t *workers;
static int nworkers;

const char *job_state_name(enum job_state s)
{
	static const char *names[] = {"queued", "running", "verifying", "rebooting", "done", "failed", "cancelled"};
	return (unsigned)s < sizeof names / sizeof names[0] ? names[s] : "unknown";
}

static int finished(enum job_state s)
{
	return s == JOB_DONE || s == JOB_FAILED || s == JOB_CANCELLED;
}

cJSON *job_to_json_locked(const struct job *j)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddNumberToObject(o, "job", (double)j->id);
	cJSON_AddNumberToObject(o, "batch", (double)j->batch->id);
	cJSON_AddStringToObject(o, "uid", j->uid);
	cJSON_AddNumberToObject(o, "owner", (double)j->owner);
	cJSON_AddStringToObject(o, "nickname", j->nickname);
	cJSON_AddStringToObject(o, "port", j->port);
	cJSON_AddStringToObject(o, "package", j->batch->path);
	cJSON_AddStringToObject(o, "package_sha256", j->batch->sha256);
	cJSON_AddStringToObject(o, "old_version", j->old_version);
	cJSON_AddStringToObject(o, "new_version", j->batch->version);
	cJSON_AddStringToObject(o, "state", job_state_name(j->state));
	cJSON_AddStringToObject(o, "phase", flasher_phase_name(j->phase));
	cJSON_AddNumberToObject(o, "bytes", (double)j->bytes);
	cJSON_AddNumberToObject(o, "total", (double)j->total);
	cJSON_AddNumberToObject(o, "resumed_bytes", (double)j->resumed);
	cJSON_AddNumberToObject(o, "rate", j->rate);
	cJSON_AddNumberToObject(o, "eta", j->eta);
	cJSON_AddNumberToObject(o, "code", j->code);
	cJSON_AddStringToObject(o, "error", j->code ? flasher_error_name(j->code) : "");
	cJSON_AddStringToObject(o, "reason", j->reason);
	cJSON_AddNumberToObject(o, "attempt", j->attempt);
	if (j->resume_of)
		cJSON_AddNumberToObject(o, "resume_of", (double)j->resume_of);
	else
		cJSON_AddNullToObject(o, "resume_of");
	cJSON_AddNumberToObject(o, "created", j->created);
	cJSON_AddNumberToObject(o, "started", j->started);
	cJSON_AddNumberToObject(o, "finished", j->finished);
	return o;
}

struct job *job_find_locked(uint64_t id)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->id == id)
			return d->jobs[i];
	return NULL;
}

struct batch *batch_new(const char *path, flasher_package *pkg, uint64_t id)
{
	struct batch *b = calloc(1, sizeof *b);
	if (!b) {
		flasher_package_free(pkg);
		return NULL;
	}
	b->id = id;
	b->pkg = pkg;
	b->refs = 1; /* the creator's */
	snprintf(b->path, sizeof b->path, "%s", path);
	const uint8_t *h = flasher_package_sha256(pkg);
	for (int i = 0; i < 32; i++)
		sprintf(b->sha256 + 2 * i, "%02x", h[i]);
	flasher_semver_format(flasher_package_version(pkg), b->version, sizeof b->version);
	snprintf(b->product, sizeof b->product, "%s", flasher_package_product(pkg));
	return b;
}

/* The package is freed when no unfinished job needs it; the small batch
 * record stays for jobs.list. */
void batch_put_locked(struct batch *b)
{
	if (b && --b->refs <= 0) {
		flasher_package_free(b->pkg);
		b->pkg = NULL;
	}
}

void job_release_locked(struct job *j)
{
	if (!j->released) {
		j->released = 1;
		batch_put_locked(j->batch);
	}
}

static void emit_state_locked(struct job *j)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddNumberToObject(p, "job", (double)j->id);
	cJSON_AddNumberToObject(p, "batch", (double)j->batch->id);
	cJSON_AddStringToObject(p, "uid", j->uid);
	cJSON_AddStringToObject(p, "state", job_state_name(j->state));
	if (j->state == JOB_FAILED || j->state == JOB_CANCELLED) {
		cJSON_AddNumberToObject(p, "code", j->code);
		cJSON_AddStringToObject(p, "error", flasher_error_name(j->code));
		cJSON_AddStringToObject(p, "reason", j->reason);
	}
	if (j->resume_of)
		cJSON_AddNumberToObject(p, "resume_of", (double)j->resume_of);
	server_notify("job.state", p, j->owner);
}

static void emit_progress_locked(struct job *j)
{
	cJSON *p = cJSON_CreateObject();
	cJSON_AddNumberToObject(p, "job", (double)j->id);
	cJSON_AddStringToObject(p, "uid", j->uid);
	cJSON_AddStringToObject(p, "phase", flasher_phase_name(j->phase));
	cJSON_AddNumberToObject(p, "bytes", (double)j->bytes);
	cJSON_AddNumberToObject(p, "total", (double)j->total);
	cJSON_AddNumberToObject(p, "resumed_bytes", (double)j->resumed);
	cJSON_AddNumberToObject(p, "rate", j->rate);
	cJSON_AddNumberToObject(p, "eta", j->eta);
	server_notify("job.progress", p, j->owner);
	j->last_progress_emit = now_unix();
}

/* States only move forward, so subscribers see them in order. */
static void set_state_locked(struct job *j, enum job_state s)
{
	if (s <= j->state && !finished(s))
		return;
	j->state = s;
	emit_state_locked(j);
	pthread_cond_broadcast(&g_daemon->cond);
}

struct job *job_new_locked(struct batch *b, struct unit *u)
{
	struct daemon *d = g_daemon;
	struct job *j = calloc(1, sizeof *j);
	struct job **n = realloc(d->jobs, (d->njobs + 1) * sizeof *n);
	if (!j || !n) {
		free(j);
		return NULL;
	}
	d->jobs = n;
	d->jobs[d->njobs++] = j;
	j->id = d->next_job_id++;
	j->batch = b;
	j->owner = b->owner;
	b->refs++;
	snprintf(j->uid, sizeof j->uid, "%s", u->uid);
	snprintf(j->port, sizeof j->port, "%s", u->port);
	snprintf(j->nickname, sizeof j->nickname, "%s", u->nickname);
	flasher_semver_format(u->info.cm7_version, j->old_version, sizeof j->old_version);
	j->state = JOB_QUEUED;
	j->eta = -1;
	j->attempt = 1;
	j->max_attempts = 3;
	j->compress = 1;
	j->created = now_unix();
	return j;
}

/* A job waiting for its unit holds nothing; the first runnable one wins. */
static struct job *pick_locked(void)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->njobs; i++) {
		struct job *j = d->jobs[i];
		if (j->state != JOB_QUEUED || j->session || j->started > 0)
			continue;
		if (j->cancel)
			continue;
		struct unit *u = unit_by_uid_locked(j->uid);
		if (!u || !u->present || u->busy_job || u->op_busy || port_busy_locked(u->port))
			continue;
		return j;
	}
	return NULL;
}

static int progress_cb(const flasher_progress *p, void *payload)
{
	struct job *j = payload;
	struct daemon *d = g_daemon;
	pthread_mutex_lock(&d->lock);
	int phase_changed = p->phase != j->phase;
	j->phase = p->phase;
	if (p->bytes_done > j->bytes)
		j->bytes = p->bytes_done;
	if (p->bytes_total)
		j->total = p->bytes_total;
	if (p->bytes_resumed > j->resumed)
		j->resumed = p->bytes_resumed;
	j->rate = p->rate;
	j->eta = p->eta_s;
	/* Each image is verified after its transfer; the job is "verifying"
	 * once every byte is on the unit. */
	if ((p->phase == FLASHER_PHASE_VERIFY && j->total && j->bytes >= j->total) || p->phase == FLASHER_PHASE_ACTIVATE)
		set_state_locked(j, JOB_VERIFYING);
	else if (p->phase == FLASHER_PHASE_REBOOT)
		set_state_locked(j, JOB_REBOOTING);
	/* At most ten progress notifications a second per job, plus every
	 * phase change and the last byte. */
	if (phase_changed || j->bytes == j->total || now_unix() - j->last_progress_emit >= 0.1)
		emit_progress_locked(j);
	int cancel = j->cancel || d->stopping;
	pthread_mutex_unlock(&d->lock);
	return cancel ? -1 : 0;
}

/* Failures worth another attempt once the unit is back: the link went
 * away before the new firmware was activated. A trial that did not confirm
 * is an outcome, not a link problem. */
static int link_error(int rc, flasher_phase phase)
{
	if (phase >= FLASHER_PHASE_ACTIVATE)
		return rc == FLASHER_EDISCONNECTED && phase < FLASHER_PHASE_REBOOT;
	return rc == FLASHER_EDISCONNECTED || rc == FLASHER_ETIMEOUT || rc == FLASHER_EIO ||
	       rc == FLASHER_ENOTFOUND || rc == FLASHER_EPROTOCOL;
}

static void run_job(struct job *j, struct unit *u)
{
	struct daemon *d = g_daemon;
	char port[256];
	snprintf(port, sizeof port, "%s", j->port);

	/* The record goes to disk before the first byte goes to the unit. */
	int hrc = history_write_start(j);
	pthread_mutex_lock(&d->lock);
	j->history_started = hrc == 0;
	if (hrc < 0)
		daemon_log("job %llu: %s", (unsigned long long)j->id, flasher_error_last());
	set_state_locked(j, JOB_RUNNING);
	pthread_mutex_unlock(&d->lock);

	flasher_session *s = NULL;
	flasher_update_result res;
	memset(&res, 0, sizeof res);
	int rc = hrc;
	if (rc == 0)
		rc = flasher_session_open(&s, port, NULL);
	pthread_mutex_lock(&d->lock);
	j->session = s;
	int cancel = j->cancel;
	pthread_mutex_unlock(&d->lock);
	if (rc == 0 && cancel)
		rc = FLASHER_ECANCELLED;
	if (rc == 0) {
		flasher_update_options o = FLASHER_UPDATE_OPTIONS_INIT;
		o.progress = progress_cb;
		o.payload = j;
		o.compress = j->compress;
		o.no_reboot = j->no_reboot;
		rc = flasher_session_update(s, j->batch->pkg, &o, &res);
	}
	char reason[512];
	snprintf(reason, sizeof reason, "%s", rc ? flasher_error_last() : "");
	if (rc && !reason[0])
		snprintf(reason, sizeof reason, "%s", flasher_strerror(rc));
	char newport[256];
	snprintf(newport, sizeof newport, "%s", s ? flasher_session_port(s) : port);

	pthread_mutex_lock(&d->lock);
	j->session = NULL;
	pthread_mutex_unlock(&d->lock);
	flasher_session_close(s);

	pthread_mutex_lock(&d->lock);
	j->finished = now_unix();
	j->code = rc;
	snprintf(j->reason, sizeof j->reason, "%s", reason);
	if (rc == 0) {
		if (res.resumed_bytes > j->resumed)
			j->resumed = res.resumed_bytes;
		if (res.payload_bytes)
			j->bytes = j->total = res.payload_bytes;
		if (res.after.uid[0] && !strcasecmp(res.after.uid, u->uid))
			unit_set_info_locked(u, &res.after, newport[0] ? newport : port);
		j->phase = FLASHER_PHASE_DONE;
		emit_progress_locked(j);
	}
	int interrupted = d->stopping && rc == FLASHER_ECANCELLED && !j->cancel;
	enum job_state final = rc == 0 ? JOB_DONE : (rc == FLASHER_ECANCELLED && j->cancel) ? JOB_CANCELLED : JOB_FAILED;
	pthread_mutex_unlock(&d->lock);

	/* A daemon shutdown is not an outcome: the job is resumed next start. */
	if (j->history_started)
		history_write_end(j, interrupted ? "interrupted" : job_state_name(final), NULL, 0);

	pthread_mutex_lock(&d->lock);
	set_state_locked(j, final);
	u->busy_job = 0;
	port_release_locked(port);
	/* A lost link: the unit counts as gone until it answers a HELLO again,
	 * so its retry waits for it instead of failing at once. */
	if (final == JOB_FAILED && link_error(rc, j->phase))
		unit_mark_absent_locked(u);
	else if (u->present)
		server_notify("device.changed", unit_to_json_locked(u), OWNER_ALL); /* idle again */
	/* A lost link is retried when the unit is back (resuming on the unit). */
	if (final == JOB_FAILED && link_error(rc, j->phase) && j->attempt < j->max_attempts && !d->stopping) {
		struct job *r = job_new_locked(j->batch, u);
		if (r) {
			r->resume_of = j->id;
			r->attempt = j->attempt + 1;
			r->max_attempts = j->max_attempts;
			r->no_reboot = j->no_reboot;
			r->compress = j->compress;
			snprintf(r->old_version, sizeof r->old_version, "%s", j->old_version);
			emit_state_locked(r);
			daemon_log("job %llu: %s; retry as job %llu when unit %s is back", (unsigned long long)j->id,
			           reason, (unsigned long long)r->id, u->uid);
		}
	}
	job_release_locked(j);
	if (rc == 0 || final != JOB_FAILED || !link_error(rc, j->phase))
		daemon_log("job %llu on %s: %s%s%s", (unsigned long long)j->id, u->uid, job_state_name(final),
		           rc ? ": " : "", reason);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	/* Fresh HELLO of the unit soon, whatever happened. */
	pthread_mutex_lock(&d->lock);
	d->rescan_now = 1;
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void *worker_main(void *arg)
{
	(void)arg;
	struct daemon *d = g_daemon;
	pthread_mutex_lock(&d->lock);
	for (;;) {
		struct job *j = NULL;
		while (!d->stopping && !(j = pick_locked()))
			pthread_cond_wait(&d->cond, &d->lock);
		if (d->stopping)
			break;
		struct unit *u = unit_by_uid_locked(j->uid);
		u->busy_job = j->id;
		snprintf(j->port, sizeof j->port, "%s", u->port);
		snprintf(j->nickname, sizeof j->nickname, "%s", u->nickname);
		port_acquire_locked(j->port);
		j->started = now_unix();
		pthread_mutex_unlock(&d->lock);
		run_job(j, u);
		pthread_mutex_lock(&d->lock);
	}
	pthread_mutex_unlock(&d->lock);
	return NULL;
}

int jobs_start(void)
{
	struct daemon *d = g_daemon;
	workers = calloc((size_t)d->max_jobs, sizeof *workers);
	if (!workers)
		return FLASHER_ENOMEM;
	for (int i = 0; i < d->max_jobs; i++) {
		if (pthread_create(&workers[i], NULL, worker_main, NULL) != 0)
			break;
		nworkers++;
	}
	return nworkers ? 0 : FLASHER_ENOMEM;
}

/* Called with d->stopping set: running sessions are cancelled, which ends
 * their jobs as "interrupted" in the history. */
void jobs_stop(void)
{
	struct daemon *d = g_daemon;
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->session)
			flasher_session_cancel(d->jobs[i]->session);
	pthread_cond_broadcast(&d->cond);
	pthread_mutex_unlock(&d->lock);
	for (int i = 0; i < nworkers; i++)
		pthread_join(workers[i], NULL);
	free(workers);
	workers = NULL;
	nworkers = 0;
}

/* Jobs whose start record has no end (crash, SIGKILL, power loss) or that
 * ended "interrupted" (shutdown), and that no later job resumed, are queued
 * again: the unit keeps its durable transfer offset, so the update resumes. */
int jobs_resume_from_history(void)
{
	struct daemon *d = g_daemon;
	cJSON *all = history_read_all();
	uint64_t max_job = 0, max_batch = 0;
	int resumed = 0;
	for (cJSON *r = all->child; r; r = r->next) {
		uint64_t id = (uint64_t)cJSON_GetObjectItem(r, "job")->valuedouble;
		const cJSON *b = cJSON_GetObjectItem(r, "batch");
		if (id > max_job)
			max_job = id;
		if (cJSON_IsNumber(b) && (uint64_t)b->valuedouble > max_batch)
			max_batch = (uint64_t)b->valuedouble;
	}
	pthread_mutex_lock(&d->lock);
	if (d->next_job_id <= max_job)
		d->next_job_id = max_job + 1;
	if (d->next_batch_id <= max_batch)
		d->next_batch_id = max_batch + 1;
	pthread_mutex_unlock(&d->lock);

	for (cJSON *r = all->child; r; r = r->next) {
		const cJSON *type = cJSON_GetObjectItem(r, "type");
		if (!cJSON_IsString(type) || strcmp(type->valuestring, "start"))
			continue;
		double id = cJSON_GetObjectItem(r, "job")->valuedouble;
		int open = 1, interrupted_end = 0;
		for (cJSON *o = all->child; o; o = o->next) {
			const cJSON *ot = cJSON_GetObjectItem(o, "type");
			const cJSON *ro = cJSON_GetObjectItem(o, "resume_of");
			if (cJSON_IsNumber(ro) && ro->valuedouble == id)
				open = 0; /* already resumed by a later job */
			if (cJSON_GetObjectItem(o, "job")->valuedouble != id || !cJSON_IsString(ot) || strcmp(ot->valuestring, "end"))
				continue;
			const cJSON *oc = cJSON_GetObjectItem(o, "outcome");
			if (cJSON_IsString(oc) && !strcmp(oc->valuestring, "interrupted"))
				interrupted_end = 1;
			else
				open = 0;
		}
		if (!open)
			continue;
		const cJSON *pkgpath = cJSON_GetObjectItem(r, "package");
		const cJSON *sha = cJSON_GetObjectItem(r, "package_sha256");
		const cJSON *uid = cJSON_GetObjectItem(r, "uid");
		const cJSON *batch = cJSON_GetObjectItem(r, "batch");
		if (!cJSON_IsString(pkgpath) || !cJSON_IsString(uid) || !cJSON_IsString(sha) || !cJSON_IsNumber(batch))
			continue;
		/* Read again with its owner's rights, the same safe open as a
		 * request's: a file replaced by a FIFO or a link to a private file
		 * since is refused, never blocks the start. */
		const cJSON *ow = cJSON_GetObjectItem(r, "owner");
		struct peer owner = {0, cJSON_IsNumber(ow) ? (uid_t)ow->valuedouble : 0, 0, 0};
		struct passwd pw, *pwr = NULL;
		char pwbuf[4096];
		if (getpwuid_r(owner.uid, &pw, pwbuf, sizeof pwbuf, &pwr) == 0 && pwr)
			owner.gid = pw.pw_gid;
		else
			owner.gid = owner.uid ? (gid_t)-1 : 0;
		flasher_package *pkg = NULL;
		uint8_t *data = NULL;
		size_t len = 0;
		int rc = access_read_file(&owner, pkgpath->valuestring, &data, &len);
		if (rc == 0) {
			rc = flasher_package_open_memory(&pkg, data, len);
			free(data);
		}
		struct batch *b = rc == 0 ? batch_new(pkgpath->valuestring, pkg, (uint64_t)batch->valuedouble) : NULL;
		if (b)
			b->owner = owner.uid;
		pthread_mutex_lock(&d->lock);
		struct job *old = calloc(1, sizeof *old);
		struct batch oldb;
		memset(&oldb, 0, sizeof oldb);
		oldb.id = (uint64_t)batch->valuedouble;
		if (old) {
			old->id = (uint64_t)id;
			old->batch = b ? b : &oldb;
			snprintf(old->uid, sizeof old->uid, "%s", uid->valuestring);
			const cJSON *st = cJSON_GetObjectItem(r, "start_unix");
			old->started = cJSON_IsNumber(st) ? st->valuedouble : 0;
		}
		if (b && strcmp(b->sha256, sha->valuestring) != 0) {
			rc = -1;
		}
		if (rc != 0 || !b) {
			if (old) {
				old->code = rc < 0 ? rc : FLASHER_ENOTFOUND;
				snprintf(old->reason, sizeof old->reason, "interrupted by a daemon restart; package %s %s",
				         pkgpath->valuestring, rc == -1 ? "changed since" : "cannot be read any more");
				pthread_mutex_unlock(&d->lock);
				history_write_end(old, "interrupted", NULL, 0);
				pthread_mutex_lock(&d->lock);
			}
			if (b) {
				batch_put_locked(b);
				free(b);
			}
			pthread_mutex_unlock(&d->lock);
			free(old);
			continue;
		}
		/* The unit may not be known yet: a placeholder that the prober
		 * fills in when it says HELLO. */
		struct unit *u = unit_by_uid_locked(uid->valuestring);
		if (!u) {
			u = unit_new_locked(uid->valuestring);
			const cJSON *port = cJSON_GetObjectItem(r, "port");
			if (cJSON_IsString(port))
				snprintf(u->port, sizeof u->port, "%s", port->valuestring);
		}
		struct job *j = job_new_locked(b, u);
		if (j) {
			j->resume_of = (uint64_t)id;
			const cJSON *a = cJSON_GetObjectItem(r, "attempt");
			const cJSON *ma = cJSON_GetObjectItem(r, "max_attempts");
			const cJSON *nr = cJSON_GetObjectItem(r, "no_reboot");
			const cJSON *cp = cJSON_GetObjectItem(r, "compress");
			const cJSON *ov = cJSON_GetObjectItem(r, "old_version");
			j->attempt = cJSON_IsNumber(a) ? a->valueint + 1 : 2;
			j->max_attempts = cJSON_IsNumber(ma) ? ma->valueint : 3;
			if (j->max_attempts < j->attempt)
				j->max_attempts = j->attempt;
			j->no_reboot = cJSON_IsNumber(nr) ? nr->valueint : 0;
			j->compress = cJSON_IsNumber(cp) ? cp->valueint : 1;
			if (cJSON_IsString(ov))
				snprintf(j->old_version, sizeof j->old_version, "%s", ov->valuestring);
			resumed++;
			daemon_log("job %llu was interrupted by a daemon restart: resumed as job %llu", (unsigned long long)id,
			           (unsigned long long)j->id);
		}
		batch_put_locked(b); /* job_new_locked took its own reference */
		if (old && !interrupted_end) {
			old->code = 0;
			snprintf(old->reason, sizeof old->reason, "interrupted by a daemon restart");
			old->finished = now_unix();
			pthread_mutex_unlock(&d->lock);
			history_write_end(old, "interrupted", "resumed_by", j ? j->id : 0);
			pthread_mutex_lock(&d->lock);
		}
		pthread_mutex_unlock(&d->lock);
		free(old);
	}
	cJSON_Delete(all);
	return resumed;
}
