#include "mem_transport.h"

#include <stdlib.h>
#include <string.h>

static void append(uint8_t **buf, size_t *n, size_t *cap, const void *data, size_t len)
{
	if (*n + len > *cap) {
		*cap = (*n + len) * 2 + 64;
		*buf = realloc(*buf, *cap);
	}
	memcpy(*buf + *n, data, len);
	*n += len;
}

void mem_link_feed(struct mem_link *l, const void *data, size_t len)
{
	append(&l->in, &l->nin, &l->capin, data, len);
}

void mem_link_free(struct mem_link *l)
{
	free(l->out);
	free(l->in);
	memset(l, 0, sizeof *l);
}

static int mem_read(void *impl, uint8_t *buf, size_t cap, int timeout_ms)
{
	struct mem_link *l = impl;
	(void)timeout_ms;
	size_t avail = l->nin - l->pos;
	if (!avail)
		return l->closed ? FLASHER_EDISCONNECTED : 0;
	size_t k = avail < cap ? avail : cap;
	memcpy(buf, l->in + l->pos, k);
	l->pos += k;
	return (int)k;
}

static int mem_write(void *impl, const uint8_t *buf, size_t len, int timeout_ms)
{
	struct mem_link *l = impl;
	(void)timeout_ms;
	append(&l->out, &l->nout, &l->capout, buf, len);
	if (l->echo)
		mem_link_feed(l, buf, len);
	return 0;
}

static void mem_close(void *impl)
{
	struct mem_link *l = impl;
	if (l->close_count)
		(*l->close_count)++;
}

static const flasher_transport_ops mem_ops = {.name = "mem", .read = mem_read, .write = mem_write, .close = mem_close};

int mem_transport_new(flasher_transport **out, struct mem_link *link)
{
	return flasher_transport_new(out, &mem_ops, link, "mem:test");
}
