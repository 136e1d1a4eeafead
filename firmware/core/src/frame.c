/* frame.c - COBS frame codec (flboot/frame.h, docs/protocol.md "Framing").
 *
 * Wire form: 0x00 | COBS(header(8) | payload | crc32 LE over header+payload) | 0x00.
 *
 * The decoder collects the COBS bytes of one frame in the caller's buffer
 * and decodes them in place when the 0x00 delimiter arrives (decoded data
 * is never longer than its coding, so the write position never passes the
 * read position). It checks, in this order: COBS coding, minimum size, CRC,
 * version, header length against the real size, payload limit. The CRC
 * comes before any header field so a corrupted header is counted as a CRC
 * error, not as whatever the flipped bit happened to look like. */
#include <string.h>

#include "flboot/crc32.h"
#include "flboot/frame.h"

/* Largest COBS coding of n raw bytes, without the delimiter. */
#define COBS_BODY_MAX(n) ((n) + (n) / 254u + 1u)

static void put_le16(uint8_t *p, uint16_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
}

static void put_le32(uint8_t *p, uint32_t v)
{
	p[0] = (uint8_t)v;
	p[1] = (uint8_t)(v >> 8);
	p[2] = (uint8_t)(v >> 16);
	p[3] = (uint8_t)(v >> 24);
}

static uint16_t get_le16(const uint8_t *p)
{
	return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* COBS encoder over a logical input made of up to three pieces (header,
 * payload, crc), so the raw frame never has to be assembled in a buffer. */
struct cobs_enc {
	uint8_t *out;
	size_t pos;  /* next byte to write */
	size_t code; /* index of the current block's code byte */
	uint8_t run; /* code value so far (1 + data bytes in block) */
};

static void cobs_start(struct cobs_enc *e, uint8_t *out, size_t pos)
{
	e->out = out;
	e->code = pos;
	e->pos = pos + 1;
	e->run = 1;
}

static void cobs_put(struct cobs_enc *e, const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] == 0) {
			e->out[e->code] = e->run;
			e->code = e->pos++;
			e->run = 1;
			continue;
		}
		e->out[e->pos++] = p[i];
		if (++e->run == 0xFFu) {
			e->out[e->code] = e->run;
			e->code = e->pos++;
			e->run = 1;
		}
	}
}

static size_t cobs_finish(struct cobs_enc *e)
{
	e->out[e->code] = e->run;
	return e->pos;
}

size_t flboot_frame_encode(uint8_t type, uint16_t seq, uint8_t flags, const void *payload,
                           size_t payload_len, uint8_t *out, size_t out_cap)
{
	uint8_t hdr[FLBOOT_FRAME_HEADER_SIZE];
	uint8_t crc_le[FLBOOT_FRAME_CRC_SIZE];
	struct cobs_enc e;
	size_t raw, need, n;
	uint32_t crc;

	if (payload_len > FLBOOT_FRAME_MAX_PAYLOAD || out == NULL || (payload_len && payload == NULL))
		return 0;
	raw = FLBOOT_FRAME_HEADER_SIZE + payload_len + FLBOOT_FRAME_CRC_SIZE;
	/* leading 0x00 + worst-case body + trailing 0x00 */
	need = 1u + COBS_BODY_MAX(raw) + 1u;
	if (out_cap < need)
		return 0;

	hdr[0] = FLBOOT_PROTO_VERSION;
	hdr[1] = type;
	put_le16(hdr + 2, seq);
	hdr[4] = flags;
	hdr[5] = 0;
	put_le16(hdr + 6, (uint16_t)payload_len);
	crc = flboot_crc32(0, hdr, sizeof(hdr));
	if (payload_len)
		crc = flboot_crc32(crc, payload, payload_len);
	put_le32(crc_le, crc);

	out[0] = 0x00;
	cobs_start(&e, out, 1);
	cobs_put(&e, hdr, sizeof(hdr));
	if (payload_len)
		cobs_put(&e, (const uint8_t *)payload, payload_len);
	cobs_put(&e, crc_le, sizeof(crc_le));
	n = cobs_finish(&e);
	out[n++] = 0x00;
	return n;
}

static size_t effective_max_payload(size_t max_payload)
{
	if (max_payload == 0 || max_payload > FLBOOT_FRAME_MAX_PAYLOAD)
		return FLBOOT_FRAME_MAX_PAYLOAD;
	return max_payload;
}

void flboot_frame_decoder_init(flboot_frame_decoder *dec, uint8_t *buf, size_t cap, size_t max_payload)
{
	memset(dec, 0, sizeof(*dec));
	dec->buf = buf;
	dec->cap = buf ? cap : 0;
	dec->max_payload = effective_max_payload(max_payload);
}

/* Decode buf[0..n) in place. Returns the decoded length, or (size_t)-1 on
 * an invalid coding (a block that runs past the end). */
static size_t cobs_decode_inplace(uint8_t *buf, size_t n)
{
	size_t in = 0, out = 0;

	while (in < n) {
		uint8_t code = buf[in++];
		size_t k;

		if (code == 0 || (size_t)(code - 1u) > n - in)
			return (size_t)-1;
		for (k = 1; k < code; k++)
			buf[out++] = buf[in++];
		/* Every block except the last and except full 0xFF blocks ends
		 * in an implied zero. */
		if (code != 0xFFu && in < n)
			buf[out++] = 0;
	}
	return out;
}

/* A complete COBS body of n bytes sits in dec->buf: check it. Returns 1 and
 * fills *out when the frame is good, else counts why it is dropped. */
static int finish_frame(flboot_frame_decoder *dec, size_t n, flboot_frame *out)
{
	size_t raw, payload_len;
	uint8_t *b = dec->buf;

	raw = cobs_decode_inplace(b, n);
	if (raw == (size_t)-1) {
		dec->stats.bad_cobs++;
		return 0;
	}
	if (raw < FLBOOT_FRAME_HEADER_SIZE + FLBOOT_FRAME_CRC_SIZE) {
		dec->stats.bad_length++;
		return 0;
	}
	payload_len = raw - FLBOOT_FRAME_HEADER_SIZE - FLBOOT_FRAME_CRC_SIZE;
	if (flboot_crc32(0, b, raw - FLBOOT_FRAME_CRC_SIZE) != get_le32(b + raw - FLBOOT_FRAME_CRC_SIZE)) {
		dec->stats.bad_crc++;
		return 0;
	}
	if (b[0] != FLBOOT_PROTO_VERSION) {
		dec->stats.bad_version++;
		return 0;
	}
	if (get_le16(b + 6) != payload_len) {
		dec->stats.bad_length++;
		return 0;
	}
	if (payload_len > dec->max_payload) {
		dec->stats.oversized++;
		return 0;
	}
	out->header.version = b[0];
	out->header.type = b[1];
	out->header.seq = get_le16(b + 2);
	out->header.flags = b[4];
	out->header.reserved = b[5];
	out->header.length = (uint16_t)payload_len;
	out->payload = b + FLBOOT_FRAME_HEADER_SIZE;
	dec->stats.frames++;
	return 1;
}

size_t flboot_frame_decoder_feed(flboot_frame_decoder *dec, const uint8_t *data, size_t len,
                                 flboot_frame *out, int *got)
{
	size_t i = 0;
	size_t limit;

	*got = 0;
	if (data == NULL)
		return 0;
	/* A body longer than the largest legal frame's coding is oversized
	 * whatever the buffer: stop collecting early instead of filling it. */
	limit = COBS_BODY_MAX(FLBOOT_FRAME_HEADER_SIZE + dec->max_payload + FLBOOT_FRAME_CRC_SIZE);
	if (limit > dec->cap)
		limit = dec->cap;

	while (i < len) {
		uint8_t c = data[i++];

		if (c != 0x00) {
			if (dec->overflow)
				continue;
			if (dec->len >= limit) {
				dec->overflow = 1;
				dec->stats.oversized++;
				dec->len = 0;
				continue;
			}
			dec->buf[dec->len++] = c;
			continue;
		}
		/* Delimiter. */
		if (dec->overflow) {
			dec->overflow = 0;
			continue;
		}
		if (dec->len == 0)
			continue; /* empty frame between delimiters: idle line, not an error */
		{
			size_t n = dec->len;

			dec->len = 0;
			if (finish_frame(dec, n, out)) {
				*got = 1;
				return i;
			}
		}
	}
	return i;
}
