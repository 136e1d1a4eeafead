/* Update history: append-only JSON lines, each fsync'd before the call
 * returns. A "queued" line is written when a job is accepted (before
 * update.start answers, or before a retry replaces its failed job), a
 * "start" line each time a worker begins it (before the first byte goes to
 * the unit) and one "end" line with its outcome. A job with no "end" is
 * unfinished work a crash or stop interrupted: the next start runs it again
 * under the same id. Reading is one pass with a hash index by job id, so
 * start-up and history.list are linear in the file. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "error_internal.h"
#include "flasherd.h"

static int hist_fd = -1;
static char hist_path[1024];
static pthread_mutex_t hist_lock = PTHREAD_MUTEX_INITIALIZER;

static int mkdir_parents(const char *path)
{
	char tmp[1024];
	snprintf(tmp, sizeof tmp, "%s", path);
	for (char *p = tmp + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(tmp, 0700) != 0 && errno != EEXIST)
			return -1;
		*p = '/';
	}
	return 0;
}

int history_open(const char *path)
{
	snprintf(hist_path, sizeof hist_path, "%s", path);
	mkdir_parents(path);
	hist_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
	if (hist_fd < 0)
		return flasher__error(FLASHER_EIO, "history '%s': %s", path, strerror(errno));
	/* A crash can leave a torn last line: end it so the next record parses. */
	struct stat st;
	if (fstat(hist_fd, &st) == 0 && st.st_size > 0) {
		int rfd = open(path, O_RDONLY | O_CLOEXEC);
		char c = '\n';
		if (rfd >= 0) {
			if (pread(rfd, &c, 1, st.st_size - 1) != 1)
				c = '\n';
			close(rfd);
		}
		if (c != '\n' && write(hist_fd, "\n", 1) == 1)
			fsync(hist_fd);
	}
	return 0;
}

void history_close(void)
{
	if (hist_fd >= 0)
		close(hist_fd);
	hist_fd = -1;
}

static void iso_time(double t, char *buf, size_t n)
{
	time_t s = (time_t)t;
	struct tm tm;
	gmtime_r(&s, &tm);
	strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* Write text (several lines) and fsync once. */
static int append_text(const char *text, size_t len)
{
	int rc = 0;
	pthread_mutex_lock(&hist_lock);
	if (hist_fd < 0) {
		rc = flasher__error(FLASHER_EIO, "history file not open");
	} else {
		size_t off = 0;
		while (off < len) {
			ssize_t w = write(hist_fd, text + off, len - off);
			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0) {
				rc = flasher__error(FLASHER_EIO, "history '%s': write: %s", hist_path, strerror(errno));
				break;
			}
			off += (size_t)w;
		}
		if (!rc && fsync(hist_fd) != 0)
			rc = flasher__error(FLASHER_EIO, "history '%s': fsync: %s", hist_path, strerror(errno));
	}
	pthread_mutex_unlock(&hist_lock);
	return rc;
}

static int append(cJSON *rec)
{
	char *text = proto_print(rec);
	cJSON_Delete(rec);
	if (!text)
		return flasher__error(FLASHER_ENOMEM, "history record");
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: written with its length */
	int rc = append_text(text, len + 1);
	free(text);
	return rc;
}

/* What a job needs to run again after a restart. */
static void add_job_fields(cJSON *r, const struct job *j)
{
	cJSON_AddNumberToObject(r, "job", (double)j->id);
	cJSON_AddNumberToObject(r, "batch", (double)j->batch->id);
	cJSON_AddNumberToObject(r, "owner", (double)j->owner);
	cJSON_AddStringToObject(r, "uid", j->uid);
	cJSON_AddStringToObject(r, "nickname", j->nickname);
	cJSON_AddStringToObject(r, "port", j->port);
	cJSON_AddStringToObject(r, "old_version", j->old_version);
	cJSON_AddStringToObject(r, "new_version", j->batch->version);
	cJSON_AddStringToObject(r, "product", j->batch->product);
	cJSON_AddStringToObject(r, "package", j->batch->path);
	cJSON_AddStringToObject(r, "package_sha256", j->batch->sha256);
	cJSON_AddNumberToObject(r, "attempt", j->attempt);
	cJSON_AddNumberToObject(r, "max_attempts", j->max_attempts);
	cJSON_AddNumberToObject(r, "no_reboot", j->no_reboot);
	cJSON_AddNumberToObject(r, "compress", j->compress);
	cJSON_AddNumberToObject(r, "allow_older", j->allow_older);
	cJSON_AddNumberToObject(r, "allow_reinstall", j->allow_reinstall);
	cJSON_AddNumberToObject(r, "dry_run", j->dry_run);
	if (j->resume_of)
		cJSON_AddNumberToObject(r, "resume_of", (double)j->resume_of);
	else
		cJSON_AddNullToObject(r, "resume_of");
}

int history_write_queued(struct job *const *jobs, size_t n)
{
	size_t len = 0, cap = 0;
	char *buf = NULL;
	int rc = 0;
	for (size_t i = 0; i < n && !rc; i++) {
		cJSON *r = cJSON_CreateObject();
		char t[32];
		iso_time(jobs[i]->created, t, sizeof t);
		cJSON_AddStringToObject(r, "type", "queued");
		add_job_fields(r, jobs[i]);
		cJSON_AddStringToObject(r, "created", t);
		cJSON_AddNumberToObject(r, "created_unix", jobs[i]->created);
		char *text = proto_print(r);
		cJSON_Delete(r);
		size_t tl = text ? strlen(text) : 0;
		if (text && len + tl + 1 > cap) {
			cap = (len + tl + 1) * 2;
			char *nb = realloc(buf, cap);
			if (!nb) {
				free(text);
				text = NULL;
			} else {
				buf = nb;
			}
		}
		if (!text) {
			rc = flasher__error(FLASHER_ENOMEM, "history record");
			break;
		}
		memcpy(buf + len, text, tl);
		buf[len + tl] = '\n';
		len += tl + 1;
		free(text);
	}
	if (!rc && len)
		rc = append_text(buf, len);
	free(buf);
	return rc;
}

int history_write_start(const struct job *j)
{
	cJSON *r = cJSON_CreateObject();
	char t[32];
	iso_time(j->started, t, sizeof t);
	cJSON_AddStringToObject(r, "type", "start");
	add_job_fields(r, j);
	cJSON_AddStringToObject(r, "start", t);
	cJSON_AddNumberToObject(r, "start_unix", j->started);
	return append(r);
}

int history_write_end(const struct job *j, const char *outcome, const char *extra_key, uint64_t extra)
{
	cJSON *r = cJSON_CreateObject();
	char t[32];
	double end = j->finished > 0 ? j->finished : now_unix();
	iso_time(end, t, sizeof t);
	cJSON_AddStringToObject(r, "type", "end");
	cJSON_AddNumberToObject(r, "job", (double)j->id);
	cJSON_AddNumberToObject(r, "batch", (double)j->batch->id);
	cJSON_AddNumberToObject(r, "owner", (double)j->owner);
	cJSON_AddStringToObject(r, "uid", j->uid);
	cJSON_AddStringToObject(r, "outcome", outcome);
	cJSON_AddStringToObject(r, "end", t);
	cJSON_AddNumberToObject(r, "duration_s", j->started > 0 ? end - j->started : 0);
	cJSON_AddNumberToObject(r, "code", j->code);
	cJSON_AddStringToObject(r, "error", j->code ? flasher_error_name(j->code) : "");
	cJSON_AddStringToObject(r, "reason", j->reason);
	cJSON_AddNumberToObject(r, "bytes", (double)j->bytes);
	cJSON_AddNumberToObject(r, "total", (double)j->total);
	cJSON_AddNumberToObject(r, "resumed_bytes", (double)j->resumed);
	if (extra_key)
		cJSON_AddNumberToObject(r, extra_key, (double)extra);
	return append(r);
}

/* ---- reading: one pass, job id -> slot in a hash table ---------------- */

struct hslot {
	uint64_t job; /* 0 = empty */
	size_t idx;   /* into the caller's array */
};

struct hindex {
	struct hslot *slots;
	size_t cap, used;
};

static size_t hash_u64(uint64_t x)
{
	x ^= x >> 33;
	x *= 0xff51afd7ed558ccdULL;
	x ^= x >> 33;
	return (size_t)x;
}

static struct hslot *hindex_get(struct hindex *h, uint64_t job, int create)
{
	if (create && (h->used + 1) * 2 > h->cap) {
		size_t ncap = h->cap ? h->cap * 2 : 1024;
		struct hslot *n = calloc(ncap, sizeof *n);
		if (!n)
			return NULL;
		for (size_t i = 0; i < h->cap; i++)
			if (h->slots[i].job) {
				size_t k = hash_u64(h->slots[i].job) & (ncap - 1);
				while (n[k].job)
					k = (k + 1) & (ncap - 1);
				n[k] = h->slots[i];
			}
		free(h->slots);
		h->slots = n;
		h->cap = ncap;
	}
	if (!h->cap)
		return NULL;
	size_t k = hash_u64(job) & (h->cap - 1);
	while (h->slots[k].job && h->slots[k].job != job)
		k = (k + 1) & (h->cap - 1);
	if (h->slots[k].job == job)
		return &h->slots[k];
	if (!create)
		return NULL;
	h->slots[k].job = job;
	h->used++;
	return &h->slots[k];
}

/* Call fn for every well-formed record line, in file order. A torn line
 * from a crash is skipped, never fatal. */
static void for_each_record(void (*fn)(cJSON *rec, uint64_t job, void *arg), void *arg)
{
	FILE *f = fopen(hist_path, "re");
	if (!f)
		return;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		cJSON *r = cJSON_ParseWithLength(line, (size_t)n);
		const cJSON *job = cJSON_GetObjectItem(r, "job");
		if (cJSON_IsObject(r) && cJSON_IsNumber(job) && job->valuedouble >= 1 && job->valuedouble < 9e15)
			fn(r, (uint64_t)job->valuedouble, arg);
		else
			cJSON_Delete(r);
	}
	free(line);
	fclose(f);
}

static void copy_fields(cJSON *dst, const cJSON *src)
{
	for (const cJSON *it = src->child; it; it = it->next) {
		if (!strcmp(it->string, "type"))
			continue;
		if (cJSON_GetObjectItem(dst, it->string))
			cJSON_ReplaceItemInObject(dst, it->string, cJSON_Duplicate(it, 1));
		else
			cJSON_AddItemToObject(dst, it->string, cJSON_Duplicate(it, 1));
	}
}

/* Merged records, one per job in order of first appearance. */
struct merged {
	struct hindex idx;
	cJSON **recs;
	size_t n, cap;
	uint64_t max_job, max_batch;
};

static void merge_one(cJSON *r, uint64_t job, void *arg)
{
	struct merged *m = arg;
	const cJSON *b = cJSON_GetObjectItem(r, "batch");
	if (job > m->max_job)
		m->max_job = job;
	if (cJSON_IsNumber(b) && b->valuedouble > 0 && b->valuedouble < 9e15 && (uint64_t)b->valuedouble > m->max_batch)
		m->max_batch = (uint64_t)b->valuedouble;
	struct hslot *sl = hindex_get(&m->idx, job, 1);
	if (!sl) {
		cJSON_Delete(r);
		return;
	}
	if (sl->idx == 0) { /* new job: slot indexes are 1-based */
		if (m->n == m->cap) {
			size_t ncap = m->cap ? m->cap * 2 : 256;
			cJSON **nr = realloc(m->recs, ncap * sizeof *nr);
			if (!nr) {
				cJSON_Delete(r);
				return;
			}
			m->recs = nr;
			m->cap = ncap;
		}
		cJSON *rec = cJSON_CreateObject();
		cJSON_AddStringToObject(rec, "outcome", "incomplete");
		m->recs[m->n++] = rec;
		sl->idx = m->n;
	}
	copy_fields(m->recs[sl->idx - 1], r);
	cJSON_Delete(r);
}

static void merged_free(struct merged *m)
{
	for (size_t i = 0; i < m->n; i++)
		cJSON_Delete(m->recs[i]);
	free(m->recs);
	free(m->idx.slots);
}

cJSON *history_list(uint64_t batch, const char *uid, int limit, long long owner)
{
	struct merged m;
	memset(&m, 0, sizeof m);
	for_each_record(merge_one, &m);
	/* Filters, then the newest `limit` of what is left. */
	size_t keep = 0;
	for (size_t i = 0; i < m.n; i++) {
		cJSON *r = m.recs[i];
		const cJSON *b = cJSON_GetObjectItem(r, "batch");
		const cJSON *u = cJSON_GetObjectItem(r, "uid");
		const cJSON *ow = cJSON_GetObjectItem(r, "owner");
		/* Records from before owners were kept belong to root. */
		double rec_owner = cJSON_IsNumber(ow) ? ow->valuedouble : 0;
		int ok = (owner == OWNER_ALL || rec_owner == (double)owner) &&
		         (!batch || (cJSON_IsNumber(b) && b->valuedouble == (double)batch)) &&
		         (!uid || !*uid || (cJSON_IsString(u) && !strcasecmp(u->valuestring, uid)));
		if (ok)
			m.recs[keep++] = r;
		else
			cJSON_Delete(r);
	}
	size_t first = limit > 0 && keep > (size_t)limit ? keep - (size_t)limit : 0;
	cJSON *out = cJSON_CreateArray();
	for (size_t i = 0; i < keep; i++) {
		if (i < first)
			cJSON_Delete(m.recs[i]);
		else
			cJSON_AddItemToArray(out, m.recs[i]);
	}
	m.n = 0;
	merged_free(&m);
	return out;
}

/* Start-up: only what an unfinished job needs is kept (its latest queued
 * or start record); an ended job costs one hash slot. */
struct scan {
	struct hindex idx;   /* job -> 1 + index into recs; 0 in recs = ended */
	struct hindex named; /* jobs some record names in resume_of (legacy) */
	cJSON **recs;
	size_t n, cap, total;
	uint64_t max_job, max_batch;
};

static void scan_one(cJSON *r, uint64_t job, void *arg)
{
	struct scan *sc = arg;
	const cJSON *b = cJSON_GetObjectItem(r, "batch"), *type = cJSON_GetObjectItem(r, "type");
	const cJSON *ro = cJSON_GetObjectItem(r, "resume_of");
	if (job > sc->max_job)
		sc->max_job = job;
	if (cJSON_IsNumber(b) && b->valuedouble > 0 && b->valuedouble < 9e15 && (uint64_t)b->valuedouble > sc->max_batch)
		sc->max_batch = (uint64_t)b->valuedouble;
	if (cJSON_IsNumber(ro) && ro->valuedouble >= 1 && ro->valuedouble < 9e15) {
		struct hslot *n = hindex_get(&sc->named, (uint64_t)ro->valuedouble, 1);
		if (n)
			n->idx = 1;
	}
	struct hslot *sl = hindex_get(&sc->idx, job, 1);
	if (!sl || !cJSON_IsString(type)) {
		cJSON_Delete(r);
		return;
	}
	if (sl->idx == 0) {
		if (sc->n == sc->cap) {
			size_t ncap = sc->cap ? sc->cap * 2 : 256;
			cJSON **nr = realloc(sc->recs, ncap * sizeof *nr);
			if (!nr) {
				cJSON_Delete(r);
				return;
			}
			sc->recs = nr;
			sc->cap = ncap;
		}
		sc->recs[sc->n++] = NULL;
		sl->idx = sc->n;
		sc->total++;
	}
	if (sl->idx == (size_t)-1) { /* ended: later lines of it are ignored */
		cJSON_Delete(r);
		return;
	}
	cJSON **slot = &sc->recs[sl->idx - 1];
	if (!strcmp(type->valuestring, "end")) {
		const cJSON *oc = cJSON_GetObjectItem(r, "outcome");
		/* A legacy "interrupted" end without resumed_by is still open. */
		int legacy_open = cJSON_IsString(oc) && !strcmp(oc->valuestring, "interrupted") &&
		                  !cJSON_GetObjectItem(r, "resumed_by");
		if (!legacy_open) {
			cJSON_Delete(*slot);
			*slot = NULL;
			sl->idx = (size_t)-1;
		}
		cJSON_Delete(r);
		return;
	}
	/* The newest queued/start record has every field of the job. */
	if (*slot) {
		const cJSON *cr = cJSON_GetObjectItem(*slot, "created_unix");
		if (cr && !cJSON_GetObjectItem(r, "created_unix"))
			cJSON_AddNumberToObject(r, "created_unix", cr->valuedouble);
		cJSON_Delete(*slot);
	}
	*slot = r;
}

void history_scan(struct history_scan *out)
{
	struct scan sc;
	memset(&sc, 0, sizeof sc);
	for_each_record(scan_one, &sc);
	memset(out, 0, sizeof *out);
	out->max_job = sc.max_job;
	out->max_batch = sc.max_batch;
	out->total = sc.total;
	out->unfinished = cJSON_CreateArray();
	for (size_t i = 0; i < sc.n; i++) {
		cJSON *r = sc.recs[i];
		if (!r)
			continue;
		const cJSON *job = cJSON_GetObjectItem(r, "job");
		/* Legacy files: a job some later job names in resume_of was
		 * already continued by it. */
		if (cJSON_IsNumber(job) && hindex_get(&sc.named, (uint64_t)job->valuedouble, 0))
			cJSON_Delete(r);
		else
			cJSON_AddItemToArray(out->unfinished, r);
	}
	free(sc.recs);
	free(sc.idx.slots);
	free(sc.named.slots);
}
