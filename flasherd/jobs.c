/* The job manager: max_jobs worker threads take queued jobs whose unit is
 * present and free. A job waiting for an absent unit holds no worker, so a
 * slow, failing or unplugged unit never stalls the others. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "error_internal.h"
#include "flasherd.h"
#include "flboot/image.h"
#include "flboot/proto.h"

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

/* States only move forward, so subscribers see them in order; a final
 * state is reached once. */
static void set_state_locked(struct job *j, enum job_state s)
{
	if (finished(j->state) || (s <= j->state && !finished(s)))
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
		if (j->cancel || !j->accepted)
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
	 * once every byte is on the unit. A REBOOT before the transfer is the
	 * application handing over to the bootloader: still "running"; only
	 * the reboot after activation is "rebooting". */
	if ((p->phase == FLASHER_PHASE_VERIFY && j->total && j->bytes >= j->total) || p->phase == FLASHER_PHASE_ACTIVATE)
		set_state_locked(j, JOB_VERIFYING);
	else if (p->phase == FLASHER_PHASE_REBOOT && j->state >= JOB_VERIFYING)
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

/* Does the unit already run (or hold active) every image of pkg? Then a
 * job that began before a daemon restart got past activation. */
static int already_installed(const flasher_unit_info *info, const flasher_package *pkg)
{
	size_t n = flasher_package_image_count(pkg);
	for (size_t i = 0; i < n; i++) {
		flasher_package_image img;
		if (flasher_package_image(pkg, i, &img) != 0)
			return 0;
		flboot_image_header h;
		memcpy(&h, img.header, sizeof h);
		int found = 0;
		for (size_t k = 0; k < info->slot_count && !found; k++) {
			const flasher_slot *sl = &info->slots[k];
			found = sl->core == img.core && sl->primary && sl->state == FLBOOT_SLOT_ACTIVE && sl->version == h.version &&
			        sl->payload_crc32 == img.payload_crc32;
		}
		if (!info->slot_count)
			found = (img.core == FLASHER_CORE_CM4 ? info->cm4_version : info->cm7_version) == h.version;
		if (!found)
			return 0;
	}
	return n > 0;
}

/* A restarted job whose images are already active: finish what the
 * interrupted run left (the reboot, the wait for the application's
 * confirmation) and report the unit's true state. Returns 1 and sets *rc
 * when it decided the outcome; 0 to run the update normally. */
static int finish_late_phase(struct job *j, flasher_session **sp, const char *port, flasher_unit_info *after, int *rc)
{
	flasher_unit_info info;
	if (flasher_session_info(*sp, &info) != 0 || !already_installed(&info, j->batch->pkg))
		return 0;
	uint64_t total = 0;
	for (size_t i = 0; i < flasher_package_image_count(j->batch->pkg); i++) {
		flasher_package_image img;
		if (flasher_package_image(j->batch->pkg, i, &img) == 0)
			total += img.payload_size;
	}
	pthread_mutex_lock(&g_daemon->lock);
	j->bytes = j->total = j->resumed = total; /* every byte was on the unit already */
	j->phase = FLASHER_PHASE_ACTIVATE;
	set_state_locked(j, JOB_VERIFYING);
	pthread_mutex_unlock(&g_daemon->lock);
	if (j->no_reboot || info.state == FLASHER_STATE_CONFIRMED) {
		*after = info;
		*rc = 0;
		return 1;
	}
	pthread_mutex_lock(&g_daemon->lock);
	j->phase = FLASHER_PHASE_REBOOT;
	set_state_locked(j, JOB_REBOOTING);
	pthread_mutex_unlock(&g_daemon->lock);
	if (info.mode == FLASHER_MODE_BOOTLOADER && info.state == FLASHER_STATE_PENDING) {
		int r = flasher_session_reboot(*sp, 0);
		if (r != 0 && r != FLASHER_EDISCONNECTED) {
			*rc = r;
			return 1;
		}
	}
	/* The application confirms itself (or the bootloader rolls back). */
	for (int tries = 0; tries < 120; tries++) {
		int stop;
		pthread_mutex_lock(&g_daemon->lock);
		stop = j->cancel || g_daemon->stopping;
		pthread_mutex_unlock(&g_daemon->lock);
		if (stop) {
			*rc = FLASHER_ECANCELLED;
			return 1;
		}
		flasher_session_close(*sp);
		*sp = NULL;
		usleep(500000);
		flasher_session_options o;
		flasher_discovery_options disc;
		flasher_usb_id ids[FLASHER_MAX_USB_IDS];
		daemon_session_options(&o, &disc, ids);
		o.reconnect_timeout_ms = 0;
		o.uid = j->uid; /* only the job's own unit, whoever sits on the port now */
		if (flasher_session_open(sp, port, &o) != 0 || flasher_session_info(*sp, &info) != 0)
			continue;
		if (info.state == FLASHER_STATE_ROLLED_BACK) {
			*rc = flasher__error(FLASHER_EROLLEDBACK, "the new firmware did not confirm itself; the unit rolled back");
			return 1;
		}
		if (info.state == FLASHER_STATE_CONFIRMED && already_installed(&info, j->batch->pkg)) {
			*after = info;
			*rc = 0;
			return 1;
		}
	}
	*rc = flasher__error(FLASHER_ETIMEOUT, "the new firmware did not confirm itself within 60 s");
	return 1;
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
	flasher_session_options so;
	flasher_discovery_options disc;
	flasher_usb_id ids[FLASHER_MAX_USB_IDS];
	daemon_session_options(&so, &disc, ids);
	so.uid = j->uid; /* the job's unit only: another one on its port is looked past */
	if (rc == 0)
		rc = flasher_session_open(&s, port, &so);
	pthread_mutex_lock(&d->lock);
	j->session = s;
	int cancel = j->cancel;
	pthread_mutex_unlock(&d->lock);
	if (rc == 0 && cancel)
		rc = FLASHER_ECANCELLED;
	int decided = 0;
	if (rc == 0 && j->restarted) {
		decided = finish_late_phase(j, &s, port, &res.after, &rc);
		pthread_mutex_lock(&d->lock);
		j->session = s;
		pthread_mutex_unlock(&d->lock);
		if (decided && rc == 0)
			snprintf(j->reason, sizeof j->reason, "the unit had activated it before the daemon restarted");
	}
	if (rc == 0 && !decided) {
		flasher_update_options o = FLASHER_UPDATE_OPTIONS_INIT;
		o.progress = progress_cb;
		o.payload = j;
		o.compress = j->compress;
		o.no_reboot = j->no_reboot;
		o.allow_older = j->allow_older;
		o.allow_reinstall = j->allow_reinstall;
		o.dry_run = j->dry_run;
		rc = flasher_session_update(s, j->batch->pkg, &o, &res);
		if (rc == 0 && res.outcome != FLASHER_UPDATE_UPDATED) {
			char v[16];
			flasher_semver_format(flasher_package_version(j->batch->pkg), v, sizeof v);
			if (res.outcome == FLASHER_UPDATE_ALREADY_RUNNING)
				snprintf(j->reason, sizeof j->reason, "already running %s (confirmed): nothing written", v);
			else
				snprintf(j->reason, sizeof j->reason, "dry run: the unit can take %s, nothing written", v);
		}
	}
	char reason[512];
	snprintf(reason, sizeof reason, "%s", rc ? flasher_error_last() : j->reason);
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
		if (j->phase != FLASHER_PHASE_DONE) { /* the library's own DONE was reported already */
			j->phase = FLASHER_PHASE_DONE;
			emit_progress_locked(j);
		}
	}
	/* A daemon shutdown is not an outcome: the job has no end and runs
	 * again (same id) at the next start. */
	int interrupted = d->stopping && !j->cancel && rc != 0;
	enum job_state final = rc == 0 ? JOB_DONE : (rc == FLASHER_ECANCELLED && j->cancel) ? JOB_CANCELLED : JOB_FAILED;
	int retry = final == JOB_FAILED && link_error(rc, j->phase) && j->attempt < j->max_attempts && !interrupted;
	struct job *r = NULL;
	if (retry && (r = job_new_locked(j->batch, u)) != NULL) {
		r->resume_of = j->id;
		r->attempt = j->attempt + 1;
		r->max_attempts = j->max_attempts;
		r->no_reboot = j->no_reboot;
		r->compress = j->compress;
		r->allow_older = j->allow_older;
		r->allow_reinstall = j->allow_reinstall;
		r->dry_run = j->dry_run;
		snprintf(r->old_version, sizeof r->old_version, "%s", j->old_version);
	}
	pthread_mutex_unlock(&d->lock);

	if (interrupted) {
		pthread_mutex_lock(&d->lock);
		u->busy_job = 0;
		port_release_locked(port);
		daemon_log("job %llu on %s: interrupted by the daemon's stop; it continues at the next start",
		           (unsigned long long)j->id, u->uid);
		job_release_locked(j);
		pthread_cond_broadcast(&d->cond);
		pthread_mutex_unlock(&d->lock);
		return;
	}
	/* The retry is on disk before the failure that caused it: a crash in
	 * between leaves work to do, never a lost retry. */
	if (r && history_write_queued(&r, 1) != 0)
		daemon_log("job %llu: retry not recorded: %s", (unsigned long long)r->id, flasher_error_last());
	if (j->history_started)
		history_write_end(j, job_state_name(final), NULL, 0);

	pthread_mutex_lock(&d->lock);
	if (r) {
		r->accepted = 1;
		emit_state_locked(r);
		daemon_log("job %llu: %s; retry as job %llu when unit %s is back", (unsigned long long)j->id, reason,
		           (unsigned long long)r->id, u->uid);
	}
	set_state_locked(j, final);
	u->busy_job = 0;
	port_release_locked(port);
	/* A lost link: the unit counts as gone until it answers a HELLO again,
	 * so its retry waits for it instead of failing at once. */
	if (final == JOB_FAILED && link_error(rc, j->phase))
		unit_mark_absent_locked(u);
	else if (u->present)
		server_notify("device.changed", unit_to_json_locked(u), OWNER_ALL); /* idle again */
	job_release_locked(j);
	if (rc == 0 || final != JOB_FAILED || !link_error(rc, j->phase))
		daemon_log("job %llu on %s: %s%s%s", (unsigned long long)j->id, u->uid, job_state_name(final),
		           reason[0] ? ": " : "", reason);
	/* Fresh HELLO of the unit soon, whatever happened. */
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

/* A batch read again at start-up, shared by its unfinished jobs. */
struct resumed_batch {
	uint64_t id;
	struct batch *b; /* NULL: its package could not be read (reason) */
	char reason[512];
	int code;
};

static uint64_t num_u64(const cJSON *o, const char *key)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	return cJSON_IsNumber(v) && v->valuedouble >= 0 && v->valuedouble < 9e15 ? (uint64_t)v->valuedouble : 0;
}

static int num_int(const cJSON *o, const char *key, int def, int lo, int hi)
{
	const cJSON *v = cJSON_GetObjectItem(o, key);
	return cJSON_IsNumber(v) && v->valuedouble >= lo && v->valuedouble <= hi ? (int)v->valuedouble : def;
}

static struct batch *resume_batch(const cJSON *r, struct resumed_batch **rb, size_t *nrb, int *code, char *reason,
                                  size_t rlen)
{
	uint64_t id = num_u64(r, "batch");
	for (size_t i = 0; i < *nrb; i++)
		if ((*rb)[i].id == id) {
			*code = (*rb)[i].code;
			snprintf(reason, rlen, "%s", (*rb)[i].reason);
			return (*rb)[i].b;
		}
	struct resumed_batch *n = realloc(*rb, (*nrb + 1) * sizeof *n);
	if (!n) {
		*code = FLASHER_ENOMEM;
		snprintf(reason, rlen, "out of memory");
		return NULL;
	}
	*rb = n;
	struct resumed_batch *e = &n[(*nrb)++];
	memset(e, 0, sizeof *e);
	e->id = id;
	const cJSON *pkgpath = cJSON_GetObjectItem(r, "package"), *sha = cJSON_GetObjectItem(r, "package_sha256");
	/* Read again with its owner's rights, the same safe open as a
	 * request's: a file replaced by a FIFO or a link to a private file
	 * since is refused, and nothing blocks the start. */
	struct peer owner = {0, (uid_t)num_u64(r, "owner"), 0, 0};
	struct passwd pw, *pwr = NULL;
	char pwbuf[4096];
	if (getpwuid_r(owner.uid, &pw, pwbuf, sizeof pwbuf, &pwr) == 0 && pwr)
		owner.gid = pw.pw_gid;
	else
		owner.gid = owner.uid ? (gid_t)-1 : 0;
	flasher_package *pkg = NULL;
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = cJSON_IsString(pkgpath) && cJSON_IsString(sha) ? 0 : FLASHER_EFORMAT;
	if (rc == 0)
		rc = access_read_file(&owner, pkgpath->valuestring, &data, &len);
	if (rc == 0) {
		rc = flasher_package_open_memory(&pkg, data, len);
		free(data);
		access_read_done(&owner, len);
	}
	if (rc == 0 && (e->b = batch_new(pkgpath->valuestring, pkg, id)) != NULL) {
		e->b->owner = owner.uid;
		if (strcmp(e->b->sha256, sha->valuestring) != 0) {
			batch_put_locked(e->b);
			free(e->b);
			e->b = NULL;
			rc = FLASHER_ECORRUPT;
			snprintf(e->reason, sizeof e->reason, "package %s changed since the job was accepted (SHA-256)",
			         pkgpath->valuestring);
		}
	} else if (rc == 0) {
		rc = FLASHER_ENOMEM;
	}
	if (rc != 0 && !e->reason[0])
		snprintf(e->reason, sizeof e->reason, "package cannot be read any more: %s", flasher_error_last());
	e->code = rc;
	*code = rc;
	snprintf(reason, rlen, "%s", e->reason);
	return e->b;
}

/* Jobs with no "end" record (a crash, SIGKILL, power loss or a stop
 * interrupted them, or they were still queued) run again under the same
 * id: the unit keeps its durable transfer offset, and a job that got past
 * activation is finished from the unit's state (finish_late_phase). */
int jobs_resume_from_history(void)
{
	struct daemon *d = g_daemon;
	struct history_scan hs;
	history_scan(&hs);
	pthread_mutex_lock(&d->lock);
	if (d->next_job_id <= hs.max_job)
		d->next_job_id = hs.max_job + 1;
	if (d->next_batch_id <= hs.max_batch)
		d->next_batch_id = hs.max_batch + 1;
	pthread_mutex_unlock(&d->lock);

	struct resumed_batch *rb = NULL;
	size_t nrb = 0;
	int resumed = 0;
	for (cJSON *r = hs.unfinished->child; r; r = r->next) {
		const cJSON *uid = cJSON_GetObjectItem(r, "uid");
		uint64_t id = num_u64(r, "job");
		if (!cJSON_IsString(uid) || !id)
			continue;
		int code = 0;
		char reason[512];
		pthread_mutex_lock(&d->lock);
		struct batch *b = resume_batch(r, &rb, &nrb, &code, reason, sizeof reason);
		struct batch gone;
		memset(&gone, 0, sizeof gone);
		gone.id = num_u64(r, "batch");
		gone.owner = (uid_t)num_u64(r, "owner");
		/* The unit may not be known yet: a placeholder that the prober
		 * fills in when it says HELLO. */
		struct unit *u = unit_by_uid_locked(uid->valuestring);
		if (!u) {
			u = unit_new_locked(uid->valuestring);
			const cJSON *port = cJSON_GetObjectItem(r, "port");
			if (cJSON_IsString(port))
				snprintf(u->port, sizeof u->port, "%s", port->valuestring);
		}
		if (!b) {
			/* Its true outcome: it cannot run any more. */
			struct job gj;
			memset(&gj, 0, sizeof gj);
			gj.id = id;
			gj.batch = &gone;
			gj.owner = gone.owner;
			snprintf(gj.uid, sizeof gj.uid, "%s", uid->valuestring);
			gj.code = code < 0 ? code : FLASHER_EIO;
			const cJSON *st = cJSON_GetObjectItem(r, "start_unix");
			gj.started = cJSON_IsNumber(st) ? st->valuedouble : 0;
			gj.finished = now_unix();
			snprintf(gj.reason, sizeof gj.reason, "after a daemon restart: %.480s", reason);
			pthread_mutex_unlock(&d->lock);
			history_write_end(&gj, "failed", NULL, 0);
			daemon_log("job %llu cannot continue after the restart: %s", (unsigned long long)id, reason);
			continue;
		}
		uint64_t saved_next = d->next_job_id;
		d->next_job_id = id; /* the same id again */
		struct job *j = job_new_locked(b, u);
		d->next_job_id = saved_next;
		if (!j) {
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		j->resume_of = num_u64(r, "resume_of");
		j->attempt = num_int(r, "attempt", 1, 1, 1000);
		j->max_attempts = num_int(r, "max_attempts", 3, 1, 1000);
		j->no_reboot = num_int(r, "no_reboot", 0, 0, 1);
		j->compress = num_int(r, "compress", 1, 0, 1);
		j->allow_older = num_int(r, "allow_older", 0, 0, 1);
		j->allow_reinstall = num_int(r, "allow_reinstall", 0, 0, 1);
		j->dry_run = num_int(r, "dry_run", 0, 0, 1);
		const cJSON *ov = cJSON_GetObjectItem(r, "old_version");
		if (cJSON_IsString(ov))
			snprintf(j->old_version, sizeof j->old_version, "%s", ov->valuestring);
		const cJSON *cr = cJSON_GetObjectItem(r, "created_unix");
		if (cJSON_IsNumber(cr))
			j->created = cr->valuedouble;
		j->restarted = cJSON_GetObjectItem(r, "start_unix") != NULL;
		j->accepted = 1;
		resumed++;
		daemon_log("job %llu continues after a daemon restart", (unsigned long long)id);
		pthread_mutex_unlock(&d->lock);
	}
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < nrb; i++)
		batch_put_locked(rb[i].b); /* the jobs hold their own references */
	pthread_mutex_unlock(&d->lock);
	free(rb);
	cJSON_Delete(hs.unfinished);
	return resumed;
}
