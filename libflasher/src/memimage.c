/* The bytes an address-record file (Intel HEX, S-record) puts at each
 * address, turned into the payload of one slot. The records may come in
 * any order and leave gaps (sparse files); what they describe is the flash
 * after programming the file, so gaps read 0xFF. */
#include <stdlib.h>
#include <string.h>

#include "error_internal.h"
#include "memimage.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem)
{
	if (need <= *cap)
		return 0;
	size_t n = *cap ? *cap : 64;
	while (n < need)
		n *= 2;
	void *q = realloc(*p, n * elem);
	if (!q)
		return flasher__error(FLASHER_ENOMEM, "out of memory reading address records");
	*p = q;
	*cap = n;
	return 0;
}

int flasher__memimage_add(flasher__memimage *m, uint32_t addr, const uint8_t *data, size_t len, unsigned line)
{
	if (len == 0)
		return 0;
	int err = grow((void **)&m->bytes, &m->bytes_cap, m->nbytes + len, 1);
	if (err)
		return err;
	memcpy(m->bytes + m->nbytes, data, len);
	flasher__memrun *last = m->nruns ? &m->runs[m->nruns - 1] : NULL;
	/* Tools write 16 or 32 bytes a record: merge the usual contiguous run
	 * so a 500 KiB image is a handful of runs, not 30000. */
	if (last && (uint64_t)last->addr + last->len == addr && last->off + last->len == m->nbytes) {
		last->len += (uint32_t)len;
	} else {
		if ((err = grow((void **)&m->runs, &m->runs_cap, m->nruns + 1, sizeof *m->runs)) != 0)
			return err;
		m->runs[m->nruns++] = (flasher__memrun){addr, (uint32_t)len, m->nbytes, line};
	}
	m->nbytes += len;
	return 0;
}

void flasher__memimage_free(flasher__memimage *m)
{
	if (!m)
		return;
	free(m->runs);
	free(m->bytes);
	memset(m, 0, sizeof *m);
}

int flasher__memimage_lowest(const flasher__memimage *m, uint32_t *addr)
{
	if (!m->nruns)
		return -1;
	uint32_t lo = m->runs[0].addr;
	for (size_t i = 1; i < m->nruns; i++)
		if (m->runs[i].addr < lo)
			lo = m->runs[i].addr;
	*addr = lo;
	return 0;
}

int flasher__memimage_flatten(const flasher__memimage *m, const char *name, uint32_t base, uint32_t end,
                              uint8_t **out, size_t *out_len)
{
	*out = NULL;
	*out_len = 0;
	if (!m->nruns)
		return flasher__error(FLASHER_EFORMAT, "'%s': no data records", name);
	uint32_t top = base;
	for (size_t i = 0; i < m->nruns; i++) {
		const flasher__memrun *r = &m->runs[i];
		uint64_t r_end = (uint64_t)r->addr + r->len;
		if (r->addr < base || r_end > end)
			return flasher__error(FLASHER_EFORMAT,
			                      "'%s' line %u: data at 0x%08X-0x%08llX lies outside the slot's application "
			                      "area 0x%08X-0x%08X; link the application at 0x%08X",
			                      name, r->line, r->addr, (unsigned long long)r_end, base, end, base);
		if (r_end > top)
			top = (uint32_t)r_end;
	}
	size_t size = top - base;
	uint8_t *img = malloc(size ? size : 1);
	uint8_t *used = calloc((size + 7) / 8, 1);
	if (!img || !used) {
		free(img);
		free(used);
		return flasher__error(FLASHER_ENOMEM, "'%s': out of memory for a %zu-byte image", name, size);
	}
	memset(img, 0xFF, size);
	for (size_t i = 0; i < m->nruns; i++) {
		const flasher__memrun *r = &m->runs[i];
		size_t at = r->addr - base;
		/* Two records for one address: refuse rather than let the later
		 * one win silently (a merged file from two builds). */
		for (size_t b = at; b < at + r->len; b++) {
			if (used[b / 8] & (1u << (b % 8))) {
				free(img);
				free(used);
				return flasher__error(FLASHER_EFORMAT,
				                      "'%s' line %u: address 0x%08zX is given a second time (data at "
				                      "0x%08X-0x%08X overlaps earlier records)",
				                      name, r->line, base + b, r->addr, r->addr + r->len);
			}
			used[b / 8] |= (uint8_t)(1u << (b % 8));
		}
		memcpy(img + at, m->bytes + r->off, r->len);
	}
	free(used);
	*out = img;
	*out_len = size;
	return 0;
}
