/* Private: the request/response engine of a session (docs/protocol.md).
 * Frames requests with sequence numbers, matches responses by seq (stale
 * ones are ignored), retransmits on timeout. The windowed DATA transfer in
 * session.c sends and receives through the same calls. */
#ifndef FLASHER_CLIENT_H
#define FLASHER_CLIENT_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "flasher/transport.h"
#include "log.h"
#include "flboot/frame.h"
#include "flboot/proto.h"

typedef struct flasher__client {
	flasher_transport *t;     /* not owned; NULL while disconnected */
	atomic_int *cancel;       /* session's cancel flag */
	flboot_frame_decoder dec;
	uint8_t decbuf[FLBOOT_FRAME_MAX_WIRE];
	uint8_t rx[4096];         /* raw bytes read but not yet fed */
	size_t rx_len, rx_pos;
	uint8_t tx[FLBOOT_FRAME_MAX_WIRE];
	uint16_t seq;             /* last sequence number used */
	uint64_t wire_written;    /* of transports closed so far (counters) */
	uint32_t retransmits;     /* frames sent again (see flasher_update_result) */
	uint32_t timeouts;        /* waits for an answer that ran out */
	const flasher__logger *log; /* the session's, NULL = none */
} flasher__client;

/** A response frame, copied out of the decoder. */
typedef struct flasher__response {
	uint8_t type;             /* without FLBOOT_MSG_RESPONSE */
	uint16_t seq;
	int status;               /* flboot_err */
	uint32_t detail;
	size_t body_len;          /* bytes after flboot_resp_head */
	uint8_t body[FLBOOT_FRAME_MAX_PAYLOAD];
} flasher__response;

void flasher__client_init(flasher__client *c, atomic_int *cancel);
/** Attach a (new) transport; drops any partial input. */
void flasher__client_attach(flasher__client *c, flasher_transport *t);

/** Monotonic milliseconds. */
int64_t flasher__now_ms(void);

/** Next sequence number. */
uint16_t flasher__client_next_seq(flasher__client *c);

/** Send one frame. 0 or a negative flasher_err. */
int flasher__client_send(flasher__client *c, uint8_t type, uint16_t seq, uint8_t flags, const void *payload,
                         size_t len);

/** Wait until deadline (flasher__now_ms() clock) for one response frame.
 *  Returns 1 with *r filled, 0 on timeout, or a negative flasher_err
 *  (transport failure, FLASHER_ECANCELLED). */
int flasher__client_recv(flasher__client *c, int64_t deadline, flasher__response *r);

/** Send a request and wait for the response with the same seq and type,
 *  retransmitting (same seq) after each timeout_ms, up to retries times.
 *  Returns 0 with *r filled (r->status may be an error of the unit), or
 *  FLASHER_ETIMEOUT / a transport error / FLASHER_ECANCELLED. */
int flasher__client_request(flasher__client *c, uint8_t type, const void *payload, size_t len, int timeout_ms,
                            int retries, flasher__response *r);

/** Name of a message type ("HELLO") and of a unit error ("E_OFFSET"). */
const char *flasher__msg_name(unsigned type);
const char *flasher__device_err_name(int status);

/** Turn an error response into a flasher_err with a detail naming the
 *  request, the unit's code and its reason. Maps refusals to the most
 *  specific host code (EINCOMPATIBLE, EVERIFY, ...). */
int flasher__device_error(const flasher__response *r);

#endif
