/*
 * flboot/frame.h - frame codec: COBS framing with a 0x00 delimiter, an
 * 8-byte header and a CRC32 trailer (docs/protocol.md, "Framing").
 *
 * Plain C99, no allocation, no OS calls: the host library and the
 * bootloader core compile this very file. The decoder is streaming: feed it
 * bytes in any chunking (one at a time or many frames at once); it never
 * acts on a frame whose CRC, length or COBS coding is wrong, counts what it
 * drops, and resynchronises on the next 0x00.
 */
#ifndef FLBOOT_FRAME_H
#define FLBOOT_FRAME_H

#include <stddef.h>
#include <stdint.h>

#include "flboot/proto.h"

/** Encode one frame into out (capacity out_cap; FLBOOT_FRAME_MAX_WIRE is
 *  always enough). Writes COBS(header|payload|crc32) and the trailing 0x00,
 *  and also a leading 0x00 so a receiver drops any partial frame before it.
 *  Returns the number of bytes written, or 0 if payload_len exceeds
 *  FLBOOT_FRAME_MAX_PAYLOAD or out_cap is too small. */
size_t flboot_frame_encode(uint8_t type, uint16_t seq, uint8_t flags, const void *payload,
                           size_t payload_len, uint8_t *out, size_t out_cap);

/** Decoder counters: how many frames were delivered and why others were dropped. */
typedef struct flboot_frame_stats {
	uint32_t frames;        /* delivered */
	uint32_t bad_crc;       /* CRC32 mismatch */
	uint32_t bad_length;    /* header length disagrees with the frame size, or too short */
	uint32_t bad_cobs;      /* invalid COBS coding */
	uint32_t oversized;     /* longer than the buffer / max payload; skipped to next 0x00 */
	uint32_t bad_version;   /* unknown protocol version */
} flboot_frame_stats;

typedef struct flboot_frame_decoder {
	uint8_t *buf;           /* caller's buffer, >= FLBOOT_FRAME_MAX_WIRE recommended */
	size_t cap;
	size_t len;             /* bytes collected of the current frame */
	uint8_t overflow;       /* current frame is too long: discard until 0x00 */
	size_t max_payload;     /* frames with a longer payload are dropped as oversized */
	flboot_frame_stats stats;
} flboot_frame_decoder;

/** A decoded frame; payload points into the decoder's buffer and stays valid
 *  until the next call to flboot_frame_decoder_feed. */
typedef struct flboot_frame {
	flboot_frame_header header;
	const uint8_t *payload;
} flboot_frame;

/** Start a decoder on the caller's buffer (cap bytes; FLBOOT_FRAME_MAX_WIRE
 *  holds any legal frame). max_payload 0, or above FLBOOT_FRAME_MAX_PAYLOAD,
 *  means FLBOOT_FRAME_MAX_PAYLOAD. A frame is checked in this order and
 *  dropped into the first counter that applies: COBS coding (bad_cobs),
 *  at least header + CRC (bad_length), CRC (bad_crc), version
 *  (bad_version), header length = real payload length (bad_length),
 *  payload <= max_payload (oversized). A frame whose coding outgrows the
 *  buffer or the payload limit is counted once as oversized and skipped up
 *  to the next 0x00. */
void flboot_frame_decoder_init(flboot_frame_decoder *dec, uint8_t *buf, size_t cap, size_t max_payload);

/** Consume bytes from data[0..len) until one complete valid frame is
 *  decoded or the input is used up. Returns the number of bytes consumed;
 *  *got is set to 1 when *out holds a frame (call again with the rest of
 *  the input), 0 otherwise. */
size_t flboot_frame_decoder_feed(flboot_frame_decoder *dec, const uint8_t *data, size_t len,
                                 flboot_frame *out, int *got);

#endif
