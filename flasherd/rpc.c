/* JSON-RPC 2.0 dispatch and the methods (docs/daemon-api.md). Methods that
 * talk to a unit or read a file run in a short-lived thread and answer
 * later; the others answer at once from the registry. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "flasherd.h"
#include "signature_report.h"

static int async_count;
static pthread_cond_t async_done = PTHREAD_COND_INITIALIZER;

cJSON *rpc_error_response(const cJSON *id, int code, const char *message, int lib_code)
{
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "jsonrpc", "2.0");
	cJSON *e = cJSON_AddObjectToObject(r, "error");
	cJSON_AddNumberToObject(e, "code", code);
	if (code == RPC_LIBRARY_ERROR) {
		cJSON_AddStringToObject(e, "message", flasher_strerror(lib_code));
		cJSON *data = cJSON_AddObjectToObject(e, "data");
		cJSON_AddNumberToObject(data, "code", lib_code);
		cJSON_AddStringToObject(data, "name", flasher_error_name(lib_code));
		cJSON_AddStringToObject(data, "message", message && *message ? message : flasher_strerror(lib_code));
	} else {
		cJSON_AddStringToObject(e, "message", message);
	}
	if (id)
		cJSON_AddItemToObject(r, "id", cJSON_Duplicate(id, 1));
	else
		cJSON_AddNullToObject(r, "id");
	return r;
}

int rpc_set_lib_error(struct rpc_error *err, int lib_code, const char *fmt, ...)
{
	err->code = RPC_LIBRARY_ERROR;
	err->lib_code = lib_code;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

/* The detail of the last library failure on this thread. */
static int lib_fail(struct rpc_error *err, int rc)
{
	const char *detail = flasher_error_last();
	return rpc_set_lib_error(err, rc, "%s", *detail ? detail : flasher_strerror(rc));
}

/* A client sees and cancels its own jobs; admins see all. */
static int may_see(const struct request *rq, uid_t owner)
{
	return rq->peer.admin || rq->peer.uid == owner;
}

/* ---- methods ---------------------------------------------------------- */

static cJSON *m_version(struct request *rq, struct rpc_error *err)
{
	(void)rq;
	(void)err;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "daemon", FLASHERD_VERSION);
	cJSON_AddStringToObject(o, "library", flasher_version());
	cJSON_AddNumberToObject(o, "api", FLASHERD_API_VERSION);
	return o;
}

static cJSON *m_devices_list(struct request *rq, struct rpc_error *err)
{
	int all = 0;
	if (rpc_param_bool(rq->params, "all", &all, err))
		return NULL;
	struct daemon *d = g_daemon;
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(o, "devices");
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->nunits; i++)
		if (d->units[i]->present || all)
			cJSON_AddItemToArray(arr, unit_to_json_locked(d->units[i]));
	pthread_mutex_unlock(&d->lock);
	return o;
}

static cJSON *m_jobs_list(struct request *rq, struct rpc_error *err)
{
	long long batch = 0;
	int active = 0;
	if (rpc_param_int(rq->params, "batch", 0, 0, 1LL << 50, &batch, err) || rpc_param_bool(rq->params, "active", &active, err))
		return NULL;
	struct daemon *d = g_daemon;
	cJSON *o = cJSON_CreateObject();
	cJSON *arr = cJSON_AddArrayToObject(o, "jobs");
	pthread_mutex_lock(&d->lock);
	for (size_t i = 0; i < d->njobs; i++) {
		struct job *j = d->jobs[i];
		if (batch && j->batch->id != (uint64_t)batch)
			continue;
		if (active && j->state >= JOB_DONE)
			continue;
		if (!may_see(rq, j->owner))
			continue;
		cJSON_AddItemToArray(arr, job_to_json_locked(j));
	}
	pthread_mutex_unlock(&d->lock);
	return o;
}

static cJSON *m_job_get(struct request *rq, struct rpc_error *err)
{
	long long id = 0;
	if (rpc_param_int(rq->params, "job", 1, 1, 1LL << 50, &id, err))
		return NULL;
	pthread_mutex_lock(&g_daemon->lock);
	struct job *j = job_find_locked((uint64_t)id);
	cJSON *o = j && may_see(rq, j->owner) ? job_to_json_locked(j) : NULL;
	pthread_mutex_unlock(&g_daemon->lock);
	if (!o)
		rpc_set_lib_error(err, FLASHER_ENOTFOUND, "no job %lld", id);
	return o;
}

static cJSON *m_job_cancel(struct request *rq, struct rpc_error *err)
{
	long long id = 0;
	if (rpc_param_int(rq->params, "job", 1, 1, 1LL << 50, &id, err))
		return NULL;
	struct daemon *d = g_daemon;
	cJSON *o = NULL;
	pthread_mutex_lock(&d->lock);
	struct job *j = job_find_locked((uint64_t)id);
	if (!j || !may_see(rq, j->owner)) { /* another user's job is not there for this client */
		rpc_set_lib_error(err, FLASHER_ENOTFOUND, "no job %lld", id);
	} else if (j->state >= JOB_DONE) {
		rpc_set_lib_error(err, FLASHER_EINVAL, "job %lld already ended (%s)", id, job_state_name(j->state));
	} else {
		j->cancel = 1;
		if (j->session) {
			flasher_session_cancel(j->session);
		} else if (j->state == JOB_QUEUED && j->started == 0) {
			/* Never started: nothing on the unit; its queued record gets
			 * its end. */
			j->state = JOB_CANCELLED;
			j->code = FLASHER_ECANCELLED;
			j->finished = now_unix();
			snprintf(j->reason, sizeof j->reason, "cancelled before it started");
			if (history_write_end(j, "cancelled", NULL, 0) < 0)
				daemon_log("job %lld: %s", id, flasher_error_last());
			cJSON *p = job_to_json_locked(j);
			cJSON_DeleteItemFromObject(p, "package");
			server_notify("job.state", p, j->owner);
			job_release_locked(j);
		}
		o = job_to_json_locked(j);
	}
	pthread_mutex_unlock(&d->lock);
	return o;
}

static int parse_events(const cJSON *params, int *mask, struct rpc_error *err)
{
	const cJSON *ev = params ? cJSON_GetObjectItemCaseSensitive(params, "events") : NULL;
	*mask = 3;
	if (!ev || cJSON_IsNull(ev))
		return 0;
	if (!cJSON_IsArray(ev))
		return rpc_bad_params(err, "parameter 'events' must be an array of \"devices\" and \"jobs\"");
	*mask = 0;
	const cJSON *it;
	cJSON_ArrayForEach(it, ev)
	{
		if (cJSON_IsString(it) && !strcmp(it->valuestring, "devices"))
			*mask |= 1;
		else if (cJSON_IsString(it) && !strcmp(it->valuestring, "jobs"))
			*mask |= 2;
		else
			return rpc_bad_params(err, "unknown event kind in 'events' (use \"devices\", \"jobs\")");
	}
	return 0;
}

static cJSON *m_subscribe(struct request *rq, struct rpc_error *err)
{
	int mask;
	if (parse_events(rq->params, &mask, err))
		return NULL;
	struct daemon *d = g_daemon;
	cJSON *o = cJSON_CreateObject();
	cJSON *evs = cJSON_AddArrayToObject(o, "events");
	if (mask & 1)
		cJSON_AddItemToArray(evs, cJSON_CreateString("devices"));
	if (mask & 2)
		cJSON_AddItemToArray(evs, cJSON_CreateString("jobs"));
	/* The snapshot and the subscription under one lock: every later change
	 * arrives as a notification, none is missed. */
	pthread_mutex_lock(&d->lock);
	server_set_subscribed(rq->client_id, mask);
	cJSON *devs = cJSON_AddArrayToObject(o, "devices");
	for (size_t i = 0; i < d->nunits; i++)
		if (d->units[i]->present)
			cJSON_AddItemToArray(devs, unit_to_json_locked(d->units[i]));
	cJSON *jobs = cJSON_AddArrayToObject(o, "jobs");
	for (size_t i = 0; i < d->njobs; i++)
		if (d->jobs[i]->state < JOB_DONE && may_see(rq, d->jobs[i]->owner))
			cJSON_AddItemToArray(jobs, job_to_json_locked(d->jobs[i]));
	pthread_mutex_unlock(&d->lock);
	return o;
}

static cJSON *m_unsubscribe(struct request *rq, struct rpc_error *err)
{
	(void)err;
	pthread_mutex_lock(&g_daemon->lock);
	server_set_subscribed(rq->client_id, 0);
	pthread_mutex_unlock(&g_daemon->lock);
	return cJSON_CreateObject();
}

static cJSON *ports_json_locked(void)
{
	struct daemon *d = g_daemon;
	cJSON *o = cJSON_CreateObject();
	cJSON *a = cJSON_AddArrayToObject(o, "ports");
	for (size_t i = 0; i < d->nports; i++)
		cJSON_AddItemToArray(a, cJSON_CreateString(d->ports[i]));
	return o;
}

static cJSON *m_ports_list(struct request *rq, struct rpc_error *err)
{
	(void)rq;
	(void)err;
	pthread_mutex_lock(&g_daemon->lock);
	cJSON *o = ports_json_locked();
	pthread_mutex_unlock(&g_daemon->lock);
	return o;
}

static cJSON *m_ports_add(struct request *rq, struct rpc_error *err)
{
	const char *port = NULL;
	if (rpc_param_string(rq->params, "port", 1, &port, err))
		return NULL;
	int rc = access_port_allowed(&rq->peer, port);
	if (rc < 0) {
		lib_fail(err, rc);
		return NULL;
	}
	pthread_mutex_lock(&g_daemon->lock);
	ports_add_locked(port);
	cJSON *o = ports_json_locked();
	pthread_mutex_unlock(&g_daemon->lock);
	return o;
}

static cJSON *m_ports_remove(struct request *rq, struct rpc_error *err)
{
	const char *port = NULL;
	if (rpc_param_string(rq->params, "port", 1, &port, err))
		return NULL;
	if (!rq->peer.admin) {
		rpc_set_lib_error(err, FLASHER_EPERM, "ports.remove: uid %u is not an admin (root or --admin-group)",
		                  (unsigned)rq->peer.uid);
		return NULL;
	}
	pthread_mutex_lock(&g_daemon->lock);
	int found = ports_remove_locked(port);
	cJSON *o = found ? ports_json_locked() : NULL;
	pthread_mutex_unlock(&g_daemon->lock);
	if (!found)
		rpc_set_lib_error(err, FLASHER_ENOTFOUND, "port '%s' is not watched", port);
	return o;
}

static int open_package(struct request *rq, const char *path, flasher_package **pkg, struct rpc_error *err)
{
	uint8_t *data = NULL;
	size_t len = 0;
	int rc = access_read_file(&rq->peer, path, &data, &len);
	if (rc == 0) {
		rc = flasher_package_open_memory(pkg, data, len);
		free(data);
		access_read_done(&rq->peer, len);
	}
	return rc < 0 ? lib_fail(err, rc) : 0;
}

static void hex(const uint8_t *b, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", b[i]);
}

static cJSON *m_package_inspect(struct request *rq, struct rpc_error *err)
{
	const char *path = NULL;
	flasher_package *pkg = NULL;
	if (rpc_param_string(rq->params, "package", 1, &path, err) || open_package(rq, path, &pkg, err))
		return NULL;
	char b[65];
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "package", path);
	cJSON_AddStringToObject(o, "product", flasher_package_product(pkg));
	flasher_semver_format(flasher_package_version(pkg), b, sizeof b);
	cJSON_AddStringToObject(o, "version", b);
	flasher_semver_format(flasher_package_min_bootloader(pkg), b, sizeof b);
	cJSON_AddStringToObject(o, "min_bootloader", b);
	cJSON *hw = cJSON_AddArrayToObject(o, "hw_revs");
	for (size_t i = 0; i < flasher_package_hw_rev_count(pkg); i++)
		cJSON_AddItemToArray(hw, cJSON_CreateString(flasher_package_hw_rev(pkg, i)));
	hex(flasher_package_sha256(pkg), 32, b);
	cJSON_AddStringToObject(o, "sha256", b);
	cJSON *imgs = cJSON_AddArrayToObject(o, "images");
	for (size_t i = 0; i < flasher_package_image_count(pkg); i++) {
		flasher_package_image im;
		if (flasher_package_image(pkg, i, &im) != 0)
			continue;
		cJSON *io = cJSON_CreateObject();
		cJSON_AddStringToObject(io, "core", im.core == FLASHER_CORE_CM4 ? "cm4" : "cm7");
		cJSON_AddNumberToObject(io, "size", (double)im.payload_size);
		cJSON_AddNumberToObject(io, "crc32", im.payload_crc32);
		hex(im.payload_sha256, 32, b);
		cJSON_AddStringToObject(io, "sha256", b);
		cJSON_AddNumberToObject(io, "load_address", im.load_address);
		cJSON_AddBoolToObject(io, "compressed", im.compressed);
		cJSON_AddNumberToObject(io, "stored_size", (double)im.stored_size);
		cJSON_AddItemToArray(imgs, io);
	}
	cJSON *man = cJSON_Parse(flasher_package_manifest_json(pkg));
	if (man)
		cJSON_AddItemToObject(o, "manifest", man);
	const struct daemon *d = g_daemon;
	flasher_signatures sg;
	if (flasher__signatures_check(pkg, (const uint8_t(*)[32])d->trusted_keys, d->ntrusted_keys, &sg) == 0)
		cJSON_AddItemToObject(o, "signatures",
		                      flasher__signatures_json(&sg, (const uint8_t(*)[32])d->trusted_keys, d->ntrusted_keys));
	flasher_package_free(pkg);
	return o;
}

/* With trusted keys configured, a package is taken only when the package
 * block and every image carry a signature by one of them that verifies
 * (the rule of 'flasher verify --key'). */
static int check_trusted(const flasher_package *pkg, struct rpc_error *err)
{
	const struct daemon *d = g_daemon;
	flasher_signatures sg;
	char why[256] = "";
	if (!d->ntrusted_keys)
		return 0;
	int rc = flasher__signatures_check(pkg, (const uint8_t(*)[32])d->trusted_keys, d->ntrusted_keys, &sg);
	if (rc)
		return lib_fail(err, rc);
	rc = flasher__signatures_require(&sg, "a key this daemon trusts (--trusted-key)", why, sizeof why);
	return rc ? rpc_set_lib_error(err, rc, "%s", why) : 0;
}

/* The library's checks before a unit writes anything (product, hardware
 * revision, bootloader version), against what the daemon knows of the
 * unit. 0 when compatible or not known yet (its job checks again). */
static int unit_incompatible(const struct unit *u, const flasher_package *pkg, char *why, size_t n)
{
	const flasher_unit_info *i = &u->info;
	if (!i->product[0])
		return 0;
	if (strcmp(flasher_package_product(pkg), i->product)) {
		snprintf(why, n, "package is for product '%s', unit %s is '%s'", flasher_package_product(pkg), u->uid,
		         i->product);
		return 1;
	}
	size_t nhw = flasher_package_hw_rev_count(pkg);
	int hw_ok = nhw == 0;
	for (size_t k = 0; k < nhw && !hw_ok; k++)
		hw_ok = !strcmp(flasher_package_hw_rev(pkg, k), i->hw_rev);
	if (!hw_ok) {
		snprintf(why, n, "package is not for hardware revision '%s' of unit %s", i->hw_rev, u->uid);
		return 1;
	}
	if (flasher_package_min_bootloader(pkg) > i->bootloader_version) {
		char a[16], b[16];
		flasher_semver_format(flasher_package_min_bootloader(pkg), a, sizeof a);
		flasher_semver_format(i->bootloader_version, b, sizeof b);
		snprintf(why, n, "package needs bootloader %s or newer, unit %s has %s", a, u->uid, b);
		return 1;
	}
	return 0;
}

static cJSON *m_update_start(struct request *rq, struct rpc_error *err)
{
	const char *path = NULL;
	int all = 0, no_reboot = 0, compress = 1, allow_older = 0, allow_reinstall = 0, dry_run = 0;
	long long attempts = 3;
	const cJSON *units = rq->params ? cJSON_GetObjectItemCaseSensitive(rq->params, "units") : NULL;
	if (rpc_param_string(rq->params, "package", 1, &path, err) || rpc_param_bool(rq->params, "all", &all, err) ||
	    rpc_param_bool(rq->params, "no_reboot", &no_reboot, err) || rpc_param_bool(rq->params, "compress", &compress, err) ||
	    rpc_param_bool(rq->params, "allow_older", &allow_older, err) ||
	    rpc_param_bool(rq->params, "allow_reinstall", &allow_reinstall, err) ||
	    rpc_param_bool(rq->params, "dry_run", &dry_run, err) ||
	    rpc_param_int(rq->params, "attempts", 0, 1, 20, &attempts, err))
		return NULL;
	if (units && !cJSON_IsNull(units)) {
		if (!cJSON_IsArray(units) || cJSON_GetArraySize(units) == 0) {
			rpc_bad_params(err, "parameter 'units' must be a non-empty array of uids, serials or ports");
			return NULL;
		}
		const cJSON *it;
		cJSON_ArrayForEach(it, units) if (!cJSON_IsString(it) || !it->valuestring[0])
		{
			rpc_bad_params(err, "parameter 'units' must hold only strings (uid, serial, port or nickname)");
			return NULL;
		}
	} else {
		units = NULL;
	}
	if (!units == !all) {
		rpc_bad_params(err, "give either 'units' or \"all\": true");
		return NULL;
	}
	flasher_package *pkg = NULL;
	if (open_package(rq, path, &pkg, err))
		return NULL;
	if (check_trusted(pkg, err)) {
		flasher_package_free(pkg);
		return NULL;
	}

	struct daemon *d = g_daemon;
	pthread_mutex_lock(&d->lock);
	struct unit **sel = calloc(d->nunits + 1, sizeof *sel);
	size_t nsel = 0;
	int fail = 0;
	const char *product = flasher_package_product(pkg);
	if (!sel) {
		fail = rpc_set_lib_error(err, FLASHER_ENOMEM, "out of memory");
	} else if (all) {
		char why[256] = "";
		size_t same_product = 0;
		for (size_t i = 0; i < d->nunits; i++)
			if (d->units[i]->present && !strcmp(d->units[i]->info.product, product)) {
				same_product++;
				if (!unit_incompatible(d->units[i], pkg, why, sizeof why))
					sel[nsel++] = d->units[i];
			}
		if (!nsel && same_product)
			fail = rpc_set_lib_error(err, FLASHER_EINCOMPATIBLE, "no connected unit can take it: %s", why);
		else if (!nsel)
			fail = rpc_set_lib_error(err, FLASHER_ENOTFOUND, "no unit of product '%s' is connected", product);
	} else {
		const cJSON *it;
		cJSON_ArrayForEach(it, units)
		{
			struct unit *u = unit_find_locked(it->valuestring);
			if (!u) {
				fail = rpc_set_lib_error(err, FLASHER_ENOTFOUND, "unit '%s' is not known (give a uid, serial or port)",
				                         it->valuestring);
				break;
			}
			int dup = 0;
			for (size_t k = 0; k < nsel; k++)
				dup |= sel[k] == u;
			if (!dup && nsel < d->nunits)
				sel[nsel++] = u;
			char why[256];
			if (unit_incompatible(u, pkg, why, sizeof why)) {
				fail = rpc_set_lib_error(err, FLASHER_EINCOMPATIBLE, "%s", why);
				break;
			}
		}
	}
	/* One update at a time per unit. */
	for (size_t k = 0; !fail && k < nsel; k++)
		for (size_t i = 0; i < d->njobs; i++)
			if (d->jobs[i]->state < JOB_DONE && !d->jobs[i]->cancel && !strcasecmp(d->jobs[i]->uid, sel[k]->uid)) {
				fail = rpc_set_lib_error(err, FLASHER_EBUSY, "unit %s already has job %llu (%s)", sel[k]->uid,
				                         (unsigned long long)d->jobs[i]->id, job_state_name(d->jobs[i]->state));
				break;
			}
	cJSON *o = NULL;
	struct job **made = NULL;
	size_t nmade = 0;
	if (!fail) {
		struct batch *b = batch_new(path, pkg, d->next_batch_id++);
		pkg = NULL;
		made = b ? calloc(nsel + 1, sizeof *made) : NULL;
		if (b)
			b->owner = rq->peer.uid;
		if (!b || !made) {
			rpc_set_lib_error(err, FLASHER_ENOMEM, "out of memory");
			if (b) {
				batch_put_locked(b);
				free(b);
			}
		} else {
			/* Not runnable (accepted = 0) until their records are on disk. */
			for (size_t k = 0; k < nsel; k++) {
				struct job *j = job_new_locked(b, sel[k]);
				if (!j)
					continue;
				j->max_attempts = (int)attempts;
				j->no_reboot = no_reboot;
				j->compress = compress;
				j->allow_older = allow_older;
				j->allow_reinstall = allow_reinstall;
				j->dry_run = dry_run;
				made[nmade++] = j;
			}
			batch_put_locked(b); /* the jobs hold it now */
		}
	}
	pthread_mutex_unlock(&d->lock);
	/* Accepted work is durable before the answer: a crash after this line
	 * re-runs these jobs at the next start. */
	int hrc = nmade ? history_write_queued(made, nmade) : 0;
	pthread_mutex_lock(&d->lock);
	if (nmade && hrc < 0) {
		lib_fail(err, hrc);
		for (size_t k = 0; k < nmade; k++) {
			struct job *j = made[k];
			j->state = JOB_FAILED;
			j->code = hrc;
			j->finished = now_unix();
			snprintf(j->reason, sizeof j->reason, "not accepted: the history cannot be written");
			job_release_locked(j);
		}
	} else if (nmade) {
		struct batch *b = made[0]->batch;
		o = cJSON_CreateObject();
		cJSON_AddNumberToObject(o, "batch", (double)b->id);
		cJSON_AddStringToObject(o, "package_sha256", b->sha256);
		cJSON_AddStringToObject(o, "version", b->version);
		cJSON *arr = cJSON_AddArrayToObject(o, "jobs");
		for (size_t k = 0; k < nmade; k++) {
			struct job *j = made[k];
			j->accepted = 1;
			cJSON *jo = cJSON_CreateObject();
			cJSON_AddNumberToObject(jo, "job", (double)j->id);
			cJSON_AddStringToObject(jo, "uid", j->uid);
			cJSON_AddStringToObject(jo, "port", j->port);
			cJSON_AddStringToObject(jo, "nickname", j->nickname);
			cJSON_AddItemToArray(arr, jo);
			cJSON *p = cJSON_CreateObject();
			cJSON_AddNumberToObject(p, "job", (double)j->id);
			cJSON_AddNumberToObject(p, "batch", (double)b->id);
			cJSON_AddStringToObject(p, "uid", j->uid);
			cJSON_AddStringToObject(p, "state", "queued");
			server_notify("job.state", p, j->owner);
		}
		daemon_log("batch %llu: %s %s to %zu unit(s)", (unsigned long long)b->id, b->product, b->version, nmade);
		pthread_cond_broadcast(&d->cond);
	}
	pthread_mutex_unlock(&d->lock);
	free(made);
	free(sel);
	flasher_package_free(pkg);
	return o;
}

static cJSON *m_history_list(struct request *rq, struct rpc_error *err)
{
	long long batch = 0, limit = 0;
	const char *uid = NULL;
	if (rpc_param_int(rq->params, "batch", 0, 0, 1LL << 50, &batch, err) || rpc_param_string(rq->params, "uid", 0, &uid, err) ||
	    rpc_param_int(rq->params, "limit", 0, 0, 1000000, &limit, err))
		return NULL;
	cJSON *o = cJSON_CreateObject();
	cJSON_AddItemToObject(o, "records", history_list((uint64_t)batch, uid, (int)limit,
	                                                 rq->peer.admin ? OWNER_ALL : (long long)rq->peer.uid));
	return o;
}

enum dev_op { OP_INFO, OP_CONFIRM, OP_ROLLBACK, OP_REBOOT };

/* A device call holds the unit and its port like a job does, for the time
 * of one short session. */
static cJSON *device_op(struct request *rq, enum dev_op op, struct rpc_error *err)
{
	const char *ref = NULL;
	int to_bootloader = 0;
	if (rpc_param_string(rq->params, "unit", 1, &ref, err) || rpc_param_bool(rq->params, "bootloader", &to_bootloader, err))
		return NULL;
	struct daemon *d = g_daemon;
	char port[256];
	pthread_mutex_lock(&d->lock);
	struct unit *u = unit_find_locked(ref);
	cJSON *o = NULL;
	if (!u) {
		rpc_set_lib_error(err, FLASHER_ENOTFOUND, "unit '%s' is not known", ref);
	} else if (!u->present) {
		if (op == OP_INFO) {
			o = unit_to_json_locked(u);
		} else {
			rpc_set_lib_error(err, FLASHER_ENOTFOUND, "unit %s is not connected", u->uid);
		}
	} else if (u->busy_job || u->op_busy || port_busy_locked(u->port)) {
		if (op == OP_INFO && (u->busy_job || u->op_busy)) {
			o = unit_to_json_locked(u); /* what we know; the unit is busy */
			cJSON_AddBoolToObject(o, "cached", 1);
		} else if (u->busy_job || u->op_busy) {
			rpc_set_lib_error(err, FLASHER_EBUSY, "unit %s is busy (job %llu)", u->uid, (unsigned long long)u->busy_job);
		} else {
			/* Only a probe holds it: wait for that short HELLO. */
			while (port_busy_locked(u->port) && !d->stopping)
				pthread_cond_wait(&d->cond, &d->lock);
		}
	}
	if (o || err->code || !u) {
		pthread_mutex_unlock(&d->lock);
		return o;
	}
	if (u->busy_job || u->op_busy) {
		pthread_mutex_unlock(&d->lock);
		rpc_set_lib_error(err, FLASHER_EBUSY, "unit %s is busy", u->uid);
		return NULL;
	}
	u->op_busy = 1;
	snprintf(port, sizeof port, "%s", u->port);
	port_acquire_locked(port);
	pthread_mutex_unlock(&d->lock);

	flasher_session *s = NULL;
	flasher_unit_info info;
	memset(&info, 0, sizeof info);
	flasher_session_options so;
	flasher_discovery_options disc;
	flasher_usb_id ids[FLASHER_MAX_USB_IDS];
	daemon_session_options(&so, &disc, ids);
	int rc = flasher_session_open(&s, port, &so);
	if (rc == 0) {
		switch (op) {
		case OP_INFO: break;
		case OP_CONFIRM: rc = flasher_session_confirm(s); break;
		case OP_ROLLBACK: rc = flasher_session_rollback(s); break;
		case OP_REBOOT: rc = flasher_session_reboot(s, to_bootloader); break;
		}
	}
	if (rc < 0)
		lib_fail(err, rc);
	int irc = s ? flasher_session_info(s, &info) : -1;
	char newport[256];
	snprintf(newport, sizeof newport, "%s", s ? flasher_session_port(s) : port);
	flasher_session_close(s);

	pthread_mutex_lock(&d->lock);
	if (irc == 0 && !strcasecmp(info.uid, u->uid))
		unit_set_info_locked(u, &info, newport);
	if (rc == 0)
		o = unit_to_json_locked(u);
	u->op_busy = 0;
	port_release_locked(port);
	pthread_mutex_unlock(&d->lock);
	return o;
}

static cJSON *m_device_info(struct request *rq, struct rpc_error *err) { return device_op(rq, OP_INFO, err); }
static cJSON *m_device_confirm(struct request *rq, struct rpc_error *err) { return device_op(rq, OP_CONFIRM, err); }
static cJSON *m_device_rollback(struct request *rq, struct rpc_error *err) { return device_op(rq, OP_ROLLBACK, err); }
static cJSON *m_device_reboot(struct request *rq, struct rpc_error *err) { return device_op(rq, OP_REBOOT, err); }

static const struct method {
	const char *name;
	cJSON *(*run)(struct request *rq, struct rpc_error *err);
	int async; /* talks to a unit or reads a file */
} methods[] = {
	{"version", m_version, 0},
	{"devices.list", m_devices_list, 0},
	{"device.info", m_device_info, 1},
	{"device.confirm", m_device_confirm, 1},
	{"device.rollback", m_device_rollback, 1},
	{"device.reboot", m_device_reboot, 1},
	{"package.inspect", m_package_inspect, 1},
	{"update.start", m_update_start, 1},
	{"job.get", m_job_get, 0},
	{"jobs.list", m_jobs_list, 0},
	{"job.cancel", m_job_cancel, 0},
	{"history.list", m_history_list, 1},
	{"subscribe", m_subscribe, 0},
	{"unsubscribe", m_unsubscribe, 0},
	{"ports.list", m_ports_list, 0},
	{"ports.add", m_ports_add, 0},
	{"ports.remove", m_ports_remove, 0},
};

static cJSON *finish(struct request *rq, const struct method *m)
{
	struct rpc_error err;
	memset(&err, 0, sizeof err);
	flasher_error_clear();
	cJSON *result = m->run(rq, &err);
	if (!rq->id) { /* a notification: no answer, whatever happened */
		cJSON_Delete(result);
		return NULL;
	}
	if (!result && !err.code)
		rpc_set_lib_error(&err, FLASHER_ENOMEM, "out of memory");
	if (err.code) {
		cJSON_Delete(result);
		return rpc_error_response(rq->id, err.code, err.message, err.lib_code);
	}
	cJSON *r = cJSON_CreateObject();
	cJSON_AddStringToObject(r, "jsonrpc", "2.0");
	cJSON_AddItemToObject(r, "result", result);
	cJSON_AddItemToObject(r, "id", cJSON_Duplicate(rq->id, 1));
	return r;
}

static void request_free(struct request *rq)
{
	cJSON_Delete(rq->id);
	cJSON_Delete(rq->params);
	free(rq);
}

struct async_call {
	struct request *rq;
	const struct method *m;
};

static void *async_main(void *arg)
{
	struct async_call *a = arg;
	cJSON *resp = finish(a->rq, a->m);
	server_reply(a->rq->client_id, resp);
	request_free(a->rq);
	free(a);
	pthread_mutex_lock(&g_daemon->lock);
	async_count--;
	pthread_cond_broadcast(&async_done);
	pthread_mutex_unlock(&g_daemon->lock);
	return NULL;
}

void rpc_wait_async(void)
{
	pthread_mutex_lock(&g_daemon->lock);
	while (async_count > 0)
		pthread_cond_wait(&async_done, &g_daemon->lock);
	pthread_mutex_unlock(&g_daemon->lock);
}

cJSON *rpc_handle(uint64_t client_id, const struct peer *peer, cJSON *msg)
{
	if (cJSON_IsArray(msg))
		return rpc_error_response(NULL, RPC_INVALID_REQUEST, "invalid request: batch requests are not supported", 0);
	if (!cJSON_IsObject(msg))
		return rpc_error_response(NULL, RPC_INVALID_REQUEST, "invalid request: not a JSON object", 0);
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(msg, "id");
	if (id && !cJSON_IsNumber(id) && !cJSON_IsString(id) && !cJSON_IsNull(id))
		return rpc_error_response(NULL, RPC_INVALID_REQUEST, "invalid request: 'id' must be a number, string or null", 0);
	const cJSON *ver = cJSON_GetObjectItemCaseSensitive(msg, "jsonrpc");
	if (!cJSON_IsString(ver) || strcmp(ver->valuestring, "2.0"))
		return rpc_error_response(id, RPC_INVALID_REQUEST, "invalid request: \"jsonrpc\" must be \"2.0\"", 0);
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(msg, "method");
	if (!cJSON_IsString(method))
		return rpc_error_response(id, RPC_INVALID_REQUEST, "invalid request: 'method' must be a string", 0);
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(msg, "params");
	const struct method *m = NULL;
	for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (!strcmp(methods[i].name, method->valuestring))
			m = &methods[i];
	if (!m) {
		if (!id)
			return NULL;
		char text[160];
		snprintf(text, sizeof text, "method not found: '%.100s'", method->valuestring);
		return rpc_error_response(id, RPC_METHOD_NOT_FOUND, text, 0);
	}
	if (params && !cJSON_IsObject(params) && !cJSON_IsNull(params))
		return id ? rpc_error_response(id, RPC_INVALID_PARAMS, "invalid params: 'params' must be an object", 0) : NULL;

	struct request *rq = calloc(1, sizeof *rq);
	if (!rq)
		return id ? rpc_error_response(id, RPC_INTERNAL_ERROR, "out of memory", 0) : NULL;
	rq->client_id = client_id;
	rq->peer = *peer;
	rq->id = id ? cJSON_Duplicate(id, 1) : NULL;
	rq->params = params && cJSON_IsObject(params) ? cJSON_Duplicate(params, 1) : NULL;
	snprintf(rq->method, sizeof rq->method, "%s", m->name);
	if (!m->async) {
		cJSON *r = finish(rq, m);
		request_free(rq);
		return r;
	}
	char why[200];
	if (server_request_begin(client_id, why, sizeof why) != 0) {
		cJSON *r = id ? rpc_error_response(id, RPC_LIBRARY_ERROR, why, FLASHER_EBUSY) : NULL;
		request_free(rq);
		return r;
	}
	pthread_mutex_lock(&g_daemon->lock);
	int over = async_count >= FLASHERD_MAX_ASYNC;
	if (!over)
		async_count++;
	pthread_mutex_unlock(&g_daemon->lock);
	if (over) {
		server_reply(client_id, NULL);
		cJSON *r = id ? rpc_error_response(id, RPC_LIBRARY_ERROR, "too many requests in progress; retry", FLASHER_EBUSY)
		              : NULL;
		request_free(rq);
		return r;
	}
	struct async_call *a = malloc(sizeof *a);
	if (a) {
		a->rq = rq;
		a->m = m;
	}
	pthread_t t;
	pthread_attr_t attr;
	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	if (!a || pthread_create(&t, &attr, async_main, a) != 0) {
		pthread_attr_destroy(&attr);
		free(a);
		request_free(rq);
		pthread_mutex_lock(&g_daemon->lock);
		async_count--;
		pthread_mutex_unlock(&g_daemon->lock);
		server_reply(client_id, NULL);
		return id ? rpc_error_response(id, RPC_INTERNAL_ERROR, "cannot start a thread", 0) : NULL;
	}
	pthread_attr_destroy(&attr);
	return NULL;
}
