/*
 * image.c - image header checks and whole-image verification over flash,
 * plus the tiny string builder used for reason texts.
 */
#include <string.h>

#include "core.h"
#include "flboot/crc32.h"
#include "flboot/sha256.h"

void flboot__s(flboot__str *s, const char *t)
{
	while (*t && s->len < s->cap)
		s->p[s->len++] = *t++;
}

void flboot__sn(flboot__str *s, const char *t, uint32_t max)
{
	uint32_t i;
	for (i = 0; i < max && t[i] && s->len < s->cap; i++)
		s->p[s->len++] = t[i];
}

void flboot__su(flboot__str *s, uint32_t v)
{
	char d[10];
	int n = 0;
	do {
		d[n++] = (char)('0' + v % 10u);
		v /= 10u;
	} while (v);
	while (n && s->len < s->cap)
		s->p[s->len++] = d[--n];
}

void flboot__sx(flboot__str *s, uint32_t v)
{
	static const char hex[] = "0123456789abcdef";
	int i;
	flboot__s(s, "0x");
	for (i = 28; i >= 0; i -= 4)
		if (s->len < s->cap)
			s->p[s->len++] = hex[(v >> i) & 0xFu];
}

void flboot__sv(flboot__str *s, uint32_t v)
{
	flboot__su(s, FLBOOT_VERSION_MAJOR(v));
	flboot__s(s, ".");
	flboot__su(s, FLBOOT_VERSION_MINOR(v));
	flboot__s(s, ".");
	flboot__su(s, FLBOOT_VERSION_PATCH(v));
}

int flboot__header_ok(const flboot_image_header *h, flboot__str *why)
{
	uint32_t crc;

	if (h->magic != FLBOOT_IMAGE_MAGIC) {
		flboot__s(why, "image header magic ");
		flboot__sx(why, h->magic);
		flboot__s(why, ", expected ");
		flboot__sx(why, FLBOOT_IMAGE_MAGIC);
		return FLBOOT_E_HEADER;
	}
	if (h->header_version != FLBOOT_IMAGE_HEADER_VERSION || h->header_size != FLBOOT_IMAGE_HEADER_SIZE) {
		flboot__s(why, "image header version ");
		flboot__su(why, h->header_version);
		flboot__s(why, " size ");
		flboot__su(why, h->header_size);
		flboot__s(why, ", this bootloader reads version 1 size 128");
		return FLBOOT_E_HEADER;
	}
	crc = flboot_crc32(0, h, offsetof(flboot_image_header, header_crc32));
	if (crc != h->header_crc32) {
		flboot__s(why, "image header CRC ");
		flboot__sx(why, h->header_crc32);
		flboot__s(why, ", computed ");
		flboot__sx(why, crc);
		return FLBOOT_E_HEADER;
	}
	return 0;
}

int flboot__hash_flash(flboot_store *s, uint32_t addr, uint32_t len, uint8_t *buf, uint32_t cap,
                       uint32_t *crc, uint8_t sha[32])
{
	flboot_sha256_ctx ctx;
	uint32_t off, n, c = 0;

	flboot_sha256_init(&ctx);
	for (off = 0; off < len; off += n) {
		n = len - off < cap ? len - off : cap;
		if (flboot__read(s, addr + off, buf, n))
			return FLBOOT_E_ECC;
		c = flboot_crc32(c, buf, n);
		flboot_sha256_update(&ctx, buf, n);
	}
	flboot_sha256_final(&ctx, sha);
	*crc = c;
	return 0;
}

int flboot__header_fits(const flboot_image_header *h, uint8_t core, uint32_t slot)
{
	if (h->core != core || h->payload_size < 1u || h->payload_size > FLBOOT_CORE_MAX_PAYLOAD(core))
		return FLBOOT_E_RANGE;
	if (h->load_address != 0u && h->load_address != flboot__slot_addr(core, slot) + FLBOOT_HEADER_AREA)
		return FLBOOT_E_RANGE;
	return 0;
}

static const char *core_name(uint32_t core)
{
	return core == FLBOOT_CORE_CM7 ? "cm7" : "cm4";
}

int flboot__verify_slot(flboot *bl, uint8_t core, uint32_t slot, flboot__str *why, uint32_t *crc_out,
                        uint8_t sha_out[32])
{
	flboot_store *s = &bl->store;
	flboot_image_header h;
	uint32_t base = flboot__slot_addr(core, slot), crc;
	uint8_t sha[32];
	int rc;

	if (flboot__read(s, base, &h, sizeof h)) {
		flboot__s(why, "image header unreadable (ECC)");
		return FLBOOT_E_ECC;
	}
	rc = flboot__header_ok(&h, why);
	if (rc)
		return rc;
	if (flboot__header_fits(&h, core, slot)) {
		flboot__s(why, "image header does not fit the ");
		flboot__s(why, core_name(core));
		flboot__s(why, " slot at ");
		flboot__sx(why, base);
		return FLBOOT_E_HEADER;
	}
	rc = flboot__hash_flash(s, base + FLBOOT_HEADER_AREA, h.payload_size, bl->block, sizeof bl->block, &crc, sha);
	if (rc) {
		flboot__s(why, "image payload unreadable (ECC)");
		return rc;
	}
	if (crc_out)
		*crc_out = crc;
	if (sha_out)
		memcpy(sha_out, sha, 32);
	if (crc != h.payload_crc32) {
		flboot__s(why, "image CRC32 ");
		flboot__sx(why, crc);
		flboot__s(why, ", header says ");
		flboot__sx(why, h.payload_crc32);
		return FLBOOT_E_CRC;
	}
	if (memcmp(sha, h.payload_sha256, 32) != 0) {
		flboot__s(why, "image SHA-256 differs from the header's");
		return FLBOOT_E_SHA;
	}
	/* the rest of the header area up to the slot trailer (whose words
	 * may be torn: they are not part of the image) */
	if (flboot__read(s, base + FLBOOT_IMAGE_HEADER_SIZE, bl->block, FLBOOT_TRAILER_OFFSET - FLBOOT_IMAGE_HEADER_SIZE)) {
		flboot__s(why, "image header area unreadable (ECC)");
		return FLBOOT_E_ECC;
	}
	return flboot__trust_image(bl, &h, bl->block, why);
}

int flboot__verify_pair(flboot *bl, const flboot_pair *p, flboot__str *why)
{
	const flboot_view *v = &bl->view;
	const flboot_slotv *lead, *o;
	uint32_t c;
	int rc;

	if (p->lead_core < 0) {
		flboot__s(why, "no pair");
		return FLBOOT_E_NOT_STAGED;
	}
	if (p->at[0] < 0) {
		flboot__s(why, "the pair has no cm7 image to start the unit");
		return FLBOOT_E_CORE;
	}
	for (c = 0; c < 2; c++) {
		uint32_t len0 = why->len;
		if (p->at[c] < 0)
			continue;
		flboot__s(why, core_name(c + 1u));
		flboot__s(why, ": ");
		rc = flboot__verify_slot(bl, (uint8_t)(c + 1u), (uint32_t)p->at[c], why, NULL, NULL);
		if (rc)
			return rc;
		why->len = len0;
	}
	lead = &v->slot[p->lead_core][p->lead_slot];
	o = p->at[1 - p->lead_core] >= 0 ? &v->slot[1 - p->lead_core][p->at[1 - p->lead_core]] : NULL;
	if (memcmp(lead->hdr.set_id, lead->set_id, 8) != 0 ||
	    (lead->together && (!o || memcmp(o->hdr.set_id, lead->set_id, 8) != 0))) {
		flboot__s(why, "the images of the pair come from two packages (set ids differ)");
		return FLBOOT_E_SET_ID;
	}
	return 0;
}
