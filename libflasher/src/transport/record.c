/* Recording wrapper and replay transport. The file format is documented in
 * docs/recording.md: a text header line, then one line per chunk:
 *   <microseconds> W <hex>   host -> unit
 *   <microseconds> R <hex>   unit -> host
 *   <microseconds> D <text>  the link went away
 * Lines starting with '#' are comments. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "error_internal.h"
#include "transport_internal.h"

#define RECORDING_MAGIC "flasher-recording 1"

/* ---- record ------------------------------------------------------------- */

struct record_impl {
	flasher_transport *inner;
	FILE *f;
	int64_t t0;
};

static void log_chunk(struct record_impl *r, char dir, const uint8_t *buf, size_t len)
{
	fprintf(r->f, "%lld %c ", (long long)(flasher__tp_now_us() - r->t0), dir);
	for (size_t i = 0; i < len; i++)
		fprintf(r->f, "%02x", buf[i]);
	fputc('\n', r->f);
	/* A crashing host must still leave a usable recording behind. */
	fflush(r->f);
}

static void log_disconnect(struct record_impl *r)
{
	fprintf(r->f, "%lld D %s\n", (long long)(flasher__tp_now_us() - r->t0), flasher_error_last());
	fflush(r->f);
}

static int rec_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct record_impl *r = impl;
	int n = flasher_transport_read(r->inner, buf, cap, timeout_ms);
	if (n > 0)
		log_chunk(r, 'R', buf, (size_t)n);
	else if (n == FLASHER_EDISCONNECTED)
		log_disconnect(r);
	return n;
}

static int rec_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct record_impl *r = impl;
	int rc = flasher_transport_write(r->inner, buf, len, timeout_ms);
	if (rc == 0)
		log_chunk(r, 'W', buf, len);
	else if (rc == FLASHER_EDISCONNECTED)
		log_disconnect(r);
	return rc;
}

static int rec_flush(void *impl)
{
	struct record_impl *r = impl;
	return flasher_transport_flush_input(r->inner);
}

static void rec_close(void *impl)
{
	struct record_impl *r = impl;
	if (!r)
		return;
	flasher_transport_close(r->inner);
	fclose(r->f);
	free(r);
}

static const flasher_transport_ops record_ops = {
	.name = "record", .read = rec_read, .write = rec_write, .flush_input = rec_flush, .close = rec_close};

int flasher_transport_record_wrap(flasher_transport **out, flasher_transport *inner, const char *path)
{
	if (!out || !inner || !path)
		return flasher__error(FLASHER_EINVAL, "record wrap: NULL argument");
	FILE *f = fopen(path, "we");
	if (!f) {
		int rc = flasher__open_errno(errno, path, "create recording");
		flasher_transport_close(inner);
		return rc;
	}
	struct record_impl *r = calloc(1, sizeof *r);
	if (!r) {
		fclose(f);
		flasher_transport_close(inner);
		return flasher__error(FLASHER_ENOMEM, "record wrap: out of memory");
	}
	r->inner = inner;
	r->f = f;
	r->t0 = flasher__tp_now_us();
	time_t now = time(NULL);
	struct tm tm;
	char when[64] = "";
	if (gmtime_r(&now, &tm))
		strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
	fprintf(f, RECORDING_MAGIC "\n# transport %s, started %s\n", flasher_transport_description(inner), when);
	fflush(f);
	char desc[300];
	snprintf(desc, sizeof desc, "record(%s)", flasher_transport_description(inner));
	return flasher_transport_new(out, &record_ops, r, desc);
}

/* ---- replay ------------------------------------------------------------- */

struct rec {
	char dir; /* 'W', 'R' or 'D' */
	uint8_t *data;
	size_t len;
	unsigned line;
};

struct replay_impl {
	struct rec *recs;
	size_t nrecs;
	size_t w_idx, w_pos; /* next host->unit byte to match */
	size_t r_idx, r_pos; /* next unit->host byte to deliver */
	uint64_t w_off, r_off;
	char path[256];
};

static void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* Skip to the next record of direction dir at or after *idx (or a D). */
static void seek_dir(const struct replay_impl *p, size_t *idx, char dir)
{
	while (*idx < p->nrecs && p->recs[*idx].dir != dir && p->recs[*idx].dir != 'D')
		(*idx)++;
}

/* Index of the first recorded host write not yet fully matched. */
static size_t first_unmatched_write(const struct replay_impl *p)
{
	size_t i = p->w_idx, pos = p->w_pos;
	for (; i < p->nrecs; i++, pos = 0)
		if (p->recs[i].dir == 'W' && pos < p->recs[i].len)
			break;
	return i;
}

static int replay_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct replay_impl *p = impl;
	for (;;) {
		if (p->r_idx < p->nrecs && p->recs[p->r_idx].dir == 'R' && p->r_pos == p->recs[p->r_idx].len) {
			p->r_idx++;
			p->r_pos = 0;
		}
		seek_dir(p, &p->r_idx, 'R');
		if (p->r_idx >= p->nrecs)
			return flasher__error(FLASHER_EDISCONNECTED, "replay '%s': end of recording after %llu unit bytes",
			                      p->path, (unsigned long long)p->r_off);
		/* The unit only answers once the host sent what came before. */
		int blocked = first_unmatched_write(p) < p->r_idx;
		if (blocked) {
			if (timeout_ms == 0)
				return 0;
			sleep_ms(timeout_ms < 0 || timeout_ms > 10 ? 10 : timeout_ms);
			return 0;
		}
		struct rec *r = &p->recs[p->r_idx];
		if (r->dir == 'D')
			return flasher__error(FLASHER_EDISCONNECTED, "replay '%s' line %u: the link went away here",
			                      p->path, r->line);
		size_t k = r->len - p->r_pos < cap ? r->len - p->r_pos : cap;
		if (k == 0)
			continue;
		memcpy(buf, r->data + p->r_pos, k);
		p->r_pos += k;
		p->r_off += k;
		return (int)k;
	}
}

static int replay_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct replay_impl *p = impl;
	(void)timeout_ms;
	for (size_t i = 0; i < len;) {
		if (p->w_idx < p->nrecs && p->recs[p->w_idx].dir == 'W' && p->w_pos == p->recs[p->w_idx].len) {
			p->w_idx++;
			p->w_pos = 0;
		}
		seek_dir(p, &p->w_idx, 'W');
		if (p->w_idx >= p->nrecs)
			return flasher__error(FLASHER_EPROTOCOL,
			                      "replay '%s': host wrote %zu bytes more than recorded (host->unit offset %llu)",
			                      p->path, len - i, (unsigned long long)p->w_off);
		struct rec *r = &p->recs[p->w_idx];
		if (r->dir == 'D')
			return flasher__error(FLASHER_EDISCONNECTED, "replay '%s' line %u: the link went away here",
			                      p->path, r->line);
		while (i < len && p->w_pos < r->len) {
			if (buf[i] != r->data[p->w_pos])
				return flasher__error(FLASHER_EPROTOCOL,
				                      "replay '%s': host->unit offset %llu: host wrote 0x%02x, recording has "
				                      "0x%02x (line %u)",
				                      p->path, (unsigned long long)p->w_off, buf[i], r->data[p->w_pos], r->line);
			i++;
			p->w_pos++;
			p->w_off++;
		}
	}
	return 0;
}

static void replay_close(void *impl)
{
	struct replay_impl *p = impl;
	if (!p)
		return;
	for (size_t i = 0; i < p->nrecs; i++)
		free(p->recs[i].data);
	free(p->recs);
	free(p);
}

static const flasher_transport_ops replay_ops = {.name = "replay", .read = replay_read, .write = replay_write,
                                                 .close = replay_close};

static int hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

static int parse_line(struct replay_impl *p, char *line, unsigned lineno)
{
	size_t n = strlen(line);
	while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		line[--n] = '\0';
	if (!n || line[0] == '#')
		return 0;
	char *end;
	strtoll(line, &end, 10);
	if (end == line || *end != ' ' || !end[1] || (end[2] != ' ' && end[2] != '\0'))
		return flasher__error(FLASHER_EFORMAT, "recording '%s' line %u: expected '<usec> W|R|D <data>'", p->path,
		                      lineno);
	char dir = end[1];
	const char *data = end[2] ? end + 3 : "";
	if (dir != 'W' && dir != 'R' && dir != 'D')
		return flasher__error(FLASHER_EFORMAT, "recording '%s' line %u: direction '%c' is not W, R or D",
		                      p->path, lineno, dir);
	struct rec r = {.dir = dir, .line = lineno};
	if (dir != 'D') {
		size_t hl = strlen(data);
		if (hl % 2)
			return flasher__error(FLASHER_EFORMAT, "recording '%s' line %u: odd number of hex digits",
			                      p->path, lineno);
		r.len = hl / 2;
		r.data = malloc(r.len ? r.len : 1);
		if (!r.data)
			return flasher__error(FLASHER_ENOMEM, "recording: out of memory");
		for (size_t i = 0; i < r.len; i++) {
			int hi = hexval(data[2 * i]), lo = hexval(data[2 * i + 1]);
			if (hi < 0 || lo < 0) {
				free(r.data);
				return flasher__error(FLASHER_EFORMAT, "recording '%s' line %u column %zu: not a hex digit",
				                      p->path, lineno, (size_t)(data - line) + 2 * i + 1);
			}
			r.data[i] = (uint8_t)(hi << 4 | lo);
		}
	}
	struct rec *nr = realloc(p->recs, (p->nrecs + 1) * sizeof *nr);
	if (!nr) {
		free(r.data);
		return flasher__error(FLASHER_ENOMEM, "recording: out of memory");
	}
	p->recs = nr;
	p->recs[p->nrecs++] = r;
	return 0;
}

int flasher_transport_replay_open(flasher_transport **out, const char *path)
{
	if (!out || !path)
		return flasher__error(FLASHER_EINVAL, "replay: NULL argument");
	FILE *f = fopen(path, "re");
	if (!f)
		return flasher__open_errno(errno, path, "open recording");
	struct replay_impl *p = calloc(1, sizeof *p);
	if (!p) {
		fclose(f);
		return flasher__error(FLASHER_ENOMEM, "replay: out of memory");
	}
	snprintf(p->path, sizeof p->path, "%s", path);
	char *line = NULL;
	size_t cap = 0;
	unsigned lineno = 0;
	int rc = 0;
	while (getline(&line, &cap, f) >= 0) {
		lineno++;
		if (lineno == 1) {
			if (strncmp(line, RECORDING_MAGIC, strlen(RECORDING_MAGIC))) {
				rc = flasher__error(FLASHER_EFORMAT, "'%s' is not a flasher recording (first line must be '%s')",
				                    path, RECORDING_MAGIC);
				break;
			}
			continue;
		}
		if ((rc = parse_line(p, line, lineno)) < 0)
			break;
	}
	free(line);
	fclose(f);
	if (rc == 0 && lineno == 0)
		rc = flasher__error(FLASHER_EFORMAT, "recording '%s' is empty", path);
	if (rc < 0) {
		replay_close(p);
		return rc;
	}
	char desc[300];
	snprintf(desc, sizeof desc, "replay:%s", path);
	return flasher_transport_new(out, &replay_ops, p, desc);
}

int flasher_transport_replay_finished(const flasher_transport *t)
{
	const struct replay_impl *p = flasher__transport_impl(t, &replay_ops);
	if (!p)
		return flasher__error(FLASHER_EINVAL, "replay finished: not a replay transport");
	size_t i = first_unmatched_write(p);
	if (i < p->nrecs)
		return flasher__error(FLASHER_EPROTOCOL,
			                      "replay '%s': host stopped at host->unit offset %llu, recording line %u has "
			                      "more",
			                      p->path, (unsigned long long)p->w_off, p->recs[i].line);
	return 0;
}
