/* frame_util.h - an independent, test-side frame builder so the tests can
 * make frames the encoder never would (wrong CRC, length, version...). */
#ifndef FRAME_UTIL_H
#define FRAME_UTIL_H
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "flboot/crc32.h"
#include "flboot/frame.h"

/* Plain textbook COBS, written separately from frame.c on purpose. */
static inline size_t t_cobs(const uint8_t *in, size_t n, uint8_t *out)
{
	size_t o = 1, code_at = 0;
	uint8_t code = 1;

	for (size_t i = 0; i < n; i++) {
		if (in[i]) {
			out[o++] = in[i];
			code++;
		}
		if (!in[i] || code == 0xFF) {
			out[code_at] = code;
			code_at = o++;
			code = 1;
		}
	}
	out[code_at] = code;
	return o;
}

struct t_frame {
	uint8_t version, type, flags, reserved;
	uint16_t seq;
	long length_field;    /* < 0: the real payload length */
	int crc_xor;          /* xor into the CRC (0 = correct CRC) */
	const uint8_t *payload;
	size_t payload_len;
};

/* Raw (unCOBSed) frame bytes; returns their count. */
static inline size_t t_raw(const struct t_frame *f, uint8_t *raw)
{
	uint16_t len = (uint16_t)(f->length_field < 0 ? (long)f->payload_len : f->length_field);
	raw[0] = f->version;
	raw[1] = f->type;
	raw[2] = (uint8_t)f->seq;
	raw[3] = (uint8_t)(f->seq >> 8);
	raw[4] = f->flags;
	raw[5] = f->reserved;
	raw[6] = (uint8_t)len;
	raw[7] = (uint8_t)(len >> 8);
	if (f->payload_len)
		memcpy(raw + 8, f->payload, f->payload_len);
	uint32_t crc = flboot_crc32(0, raw, 8 + f->payload_len) ^ (uint32_t)f->crc_xor;
	for (int i = 0; i < 4; i++)
		raw[8 + f->payload_len + i] = (uint8_t)(crc >> (8 * i));
	return 8 + f->payload_len + 4;
}

/* Wire form of raw bytes: 0x00 | COBS(raw) | 0x00. */
static inline size_t t_wire(const uint8_t *raw, size_t n, uint8_t *out)
{
	out[0] = 0;
	size_t k = t_cobs(raw, n, out + 1);
	out[1 + k] = 0;
	return k + 2;
}

/* Collects what a decoder delivers; payloads are copied out at once since
 * they live only until the next feed. */
struct t_sink {
	size_t n;
	struct {
		flboot_frame_header h;
		uint8_t payload[FLBOOT_FRAME_MAX_PAYLOAD];
	} f[16];
};

static inline void t_feed_all(flboot_frame_decoder *dec, const uint8_t *p, size_t n, struct t_sink *s)
{
	while (n) {
		flboot_frame fr;
		int got = -1;
		size_t used = flboot_frame_decoder_feed(dec, p, n, &fr, &got);
		if (got && s->n < 16) {
			s->f[s->n].h = fr.header;
			memcpy(s->f[s->n].payload, fr.payload, fr.header.length);
			s->n++;
		}
		if (used == 0 && !got)
			break; /* guards the test against a decoder that stalls */
		p += used;
		n -= used;
	}
}

static inline uint32_t t_drops(const flboot_frame_stats *st)
{
	return st->bad_crc + st->bad_length + st->bad_cobs + st->oversized + st->bad_version;
}
#endif
