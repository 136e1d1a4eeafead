/* Update history: append-only JSON lines, each fsync'd before the call
 * returns. A "start" line is written before the first byte goes to a unit
 * and an "end" line after the outcome is known, so a start without an end
 * is a job that a daemon restart (or crash) interrupted. */
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

static int append(cJSON *rec)
{
	char *text = cJSON_PrintUnformatted(rec);
	cJSON_Delete(rec);
	if (!text)
		return flasher__error(FLASHER_ENOMEM, "history record");
	size_t len = strlen(text);
	text[len] = '\n'; /* replaces the NUL: written with its length */
	int rc = 0;
	pthread_mutex_lock(&hist_lock);
	if (hist_fd < 0) {
		rc = flasher__error(FLASHER_EIO, "history file not open");
	} else {
		size_t off = 0;
		while (off < len + 1) {
			ssize_t w = write(hist_fd, text + off, len + 1 - off);
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
	free(text);
	return rc;
}

int history_write_start(const struct job *j)
{
	cJSON *r = cJSON_CreateObject();
	char t[32];
	iso_time(j->started, t, sizeof t);
	cJSON_AddStringToObject(r, "type", "start");
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
	cJSON_AddStringToObject(r, "start", t);
	cJSON_AddNumberToObject(r, "start_unix", j->started);
	cJSON_AddNumberToObject(r, "attempt", j->attempt);
	cJSON_AddNumberToObject(r, "max_attempts", j->max_attempts);
	cJSON_AddNumberToObject(r, "no_reboot", j->no_reboot);
	cJSON_AddNumberToObject(r, "compress", j->compress);
	if (j->resume_of)
		cJSON_AddNumberToObject(r, "resume_of", (double)j->resume_of);
	else
		cJSON_AddNullToObject(r, "resume_of");
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

cJSON *history_read_all(void)
{
	cJSON *all = cJSON_CreateArray();
	FILE *f = fopen(hist_path, "re");
	if (!f)
		return all;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	while ((n = getline(&line, &cap, f)) > 0) {
		cJSON *r = cJSON_ParseWithLength(line, (size_t)n);
		/* A torn line from a crash is skipped, never fatal. */
		if (r && cJSON_IsObject(r) && cJSON_IsNumber(cJSON_GetObjectItem(r, "job")))
			cJSON_AddItemToArray(all, r);
		else
			cJSON_Delete(r);
	}
	free(line);
	fclose(f);
	return all;
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

cJSON *history_list(uint64_t batch, const char *uid, int limit, long long owner)
{
	cJSON *all = history_read_all();
	cJSON *out = cJSON_CreateArray();
	/* Merge start and end lines of each job, in order of the start lines. */
	for (cJSON *r = all->child; r; r = r->next) {
		const cJSON *type = cJSON_GetObjectItem(r, "type");
		double job = cJSON_GetObjectItem(r, "job")->valuedouble;
		cJSON *rec = NULL;
		for (cJSON *o = out->child; o; o = o->next)
			if (cJSON_GetObjectItem(o, "job")->valuedouble == job)
				rec = o;
		if (cJSON_IsString(type) && !strcmp(type->valuestring, "start")) {
			if (!rec) {
				rec = cJSON_CreateObject();
				cJSON_AddItemToArray(out, rec);
			}
			copy_fields(rec, r);
			if (!cJSON_GetObjectItem(rec, "outcome"))
				cJSON_AddStringToObject(rec, "outcome", "incomplete");
		} else if (rec) {
			copy_fields(rec, r);
		}
	}
	cJSON_Delete(all);
	/* Filters. */
	cJSON *filtered = cJSON_CreateArray();
	cJSON *r = out->child;
	while (r) {
		cJSON *next = r->next;
		const cJSON *b = cJSON_GetObjectItem(r, "batch");
		const cJSON *u = cJSON_GetObjectItem(r, "uid");
		const cJSON *ow = cJSON_GetObjectItem(r, "owner");
		/* Records from before owners were kept belong to root. */
		double rec_owner = cJSON_IsNumber(ow) ? ow->valuedouble : 0;
		int keep = (owner == OWNER_ALL || rec_owner == (double)owner) && (!batch || (cJSON_IsNumber(b) && (uint64_t)b->valuedouble == batch)) &&
		           (!uid || !*uid || (cJSON_IsString(u) && !strcasecmp(u->valuestring, uid)));
		if (keep)
			cJSON_AddItemToArray(filtered, cJSON_DetachItemViaPointer(out, r));
		r = next;
	}
	cJSON_Delete(out);
	if (limit > 0) {
		while (cJSON_GetArraySize(filtered) > limit)
			cJSON_DeleteItemFromArray(filtered, 0);
	}
	return filtered;
}
