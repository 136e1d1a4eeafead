/* Request/response engine of a session: framing, seq matching, retransmit. */
#include <string.h>
#include <time.h>

#include "client.h"
#include "error_internal.h"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "the session code reads packed little-endian wire structs directly"
#endif

int64_t flasher__now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void flasher__client_init(flasher__client *c, atomic_int *cancel)
{
	memset(c, 0, sizeof *c);
	c->cancel = cancel;
	flboot_frame_decoder_init(&c->dec, c->decbuf, sizeof c->decbuf, FLBOOT_FRAME_MAX_PAYLOAD);
}

void flasher__client_attach(flasher__client *c, flasher_transport *t)
{
	c->t = t;
	c->rx_len = c->rx_pos = 0;
	/* a fresh decoder: a frame cut by the disconnect must not join the next one */
	flboot_frame_stats keep = c->dec.stats;
	flboot_frame_decoder_init(&c->dec, c->decbuf, sizeof c->decbuf, FLBOOT_FRAME_MAX_PAYLOAD);
	c->dec.stats = keep;
}

uint16_t flasher__client_next_seq(flasher__client *c)
{
	return ++c->seq;
}

int flasher__client_send(flasher__client *c, uint8_t type, uint16_t seq, uint8_t flags, const void *payload,
                         size_t len)
{
	if (!c->t)
		return flasher__error(FLASHER_EDISCONNECTED, "no link to the unit");
	size_t n = flboot_frame_encode(type, seq, flags, payload, len, c->tx, sizeof c->tx);
	if (!n)
		return flasher__error(FLASHER_EINVAL, "%s request of %zu bytes does not fit in a frame (max %u)",
		                      flasher__msg_name(type), len, FLBOOT_FRAME_MAX_PAYLOAD);
	return flasher_transport_write(c->t, c->tx, n, 2000);
}

int flasher__client_recv(flasher__client *c, int64_t deadline, flasher__response *r)
{
	if (!c->t)
		return flasher__error(FLASHER_EDISCONNECTED, "no link to the unit");
	for (;;) {
		while (c->rx_pos < c->rx_len) {
			flboot_frame f;
			int got = 0;
			c->rx_pos += flboot_frame_decoder_feed(&c->dec, c->rx + c->rx_pos, c->rx_len - c->rx_pos, &f, &got);
			if (!got)
				continue;
			/* only responses long enough for their head are ours to act on */
			if (!(f.header.type & FLBOOT_MSG_RESPONSE) || f.header.length < sizeof(flboot_resp_head))
				continue;
			flboot_resp_head h;
			memcpy(&h, f.payload, sizeof h);
			r->type = f.header.type & (uint8_t)~FLBOOT_MSG_RESPONSE;
			r->seq = f.header.seq;
			r->status = h.status;
			r->detail = h.detail;
			r->body_len = f.header.length - sizeof h;
			memcpy(r->body, f.payload + sizeof h, r->body_len);
			return 1;
		}
		if (c->cancel && atomic_load(c->cancel))
			return flasher__error(FLASHER_ECANCELLED, "cancelled by the caller");
		int64_t left = deadline - flasher__now_ms();
		if (left <= 0)
			return 0;
		/* wake up now and then to notice a cancel request */
		int n = flasher_transport_read(c->t, c->rx, sizeof c->rx, left > 200 ? 200 : (int)left);
		if (n < 0)
			return n;
		c->rx_len = (size_t)n;
		c->rx_pos = 0;
	}
}

int flasher__client_request(flasher__client *c, uint8_t type, const void *payload, size_t len, int timeout_ms,
                            int retries, flasher__response *r)
{
	uint16_t seq = flasher__client_next_seq(c);
	for (int attempt = 0; attempt <= retries; attempt++) {
		if (attempt) {
			c->retransmits++;
			flasher__log(c->log, FLASHER_LOG_WARNING, "no answer to %s (seq %u) in %d ms: sending it again (%d of %d)",
			             flasher__msg_name(type), seq, timeout_ms, attempt, retries);
		}
		flasher__log(c->log, FLASHER_LOG_DEBUG, "sending %s (seq %u, %zu bytes)", flasher__msg_name(type), seq, len);
		int err = flasher__client_send(c, type, seq, 0, payload, len);
		if (err)
			return err;
		int64_t deadline = flasher__now_ms() + timeout_ms;
		for (;;) {
			int got = flasher__client_recv(c, deadline, r);
			if (got < 0)
				return got;
			if (!got) {
				c->timeouts++;
				break;
			}
			if (r->seq == seq && r->type == type) {
				flasher__log(c->log, FLASHER_LOG_DEBUG, "answer to %s (seq %u): status %d, %zu bytes",
				             flasher__msg_name(type), seq, r->status, r->body_len);
				return 0;
			}
			/* stale: an answer to an earlier request; ignore it */
		}
	}
	if (c->dec.stats.bad_version)
		return flasher__error(FLASHER_EUNSUPPORTED,
		                      "no answer to %s: the unit sends frames of another protocol version "
		                      "(%u dropped; this host speaks version %u)",
		                      flasher__msg_name(type), (unsigned)c->dec.stats.bad_version, FLBOOT_PROTO_VERSION);
	return flasher__error(FLASHER_ETIMEOUT, "no answer to %s (seq %u) after %d attempts of %d ms",
	                      flasher__msg_name(type), seq, retries + 1, timeout_ms);
}

const char *flasher__msg_name(unsigned type)
{
	switch (type & ~FLBOOT_MSG_RESPONSE) {
	case FLBOOT_MSG_HELLO: return "HELLO";
	case FLBOOT_MSG_STATUS: return "STATUS";
	case FLBOOT_MSG_LOG: return "LOG";
	case FLBOOT_MSG_BEGIN: return "BEGIN";
	case FLBOOT_MSG_DATA: return "DATA";
	case FLBOOT_MSG_END: return "END";
	case FLBOOT_MSG_ABORT: return "ABORT";
	case FLBOOT_MSG_ACTIVATE: return "ACTIVATE";
	case FLBOOT_MSG_CONFIRM: return "CONFIRM";
	case FLBOOT_MSG_ROLLBACK: return "ROLLBACK";
	case FLBOOT_MSG_REBOOT: return "REBOOT";
	default: return "unknown message";
	}
}

const char *flasher__device_err_name(int status)
{
	static const char *const names[] = {
		"OK", "E_FRAME", "E_UNKNOWN", "E_STATE", "E_OFFSET", "E_RANGE", "E_PRODUCT", "E_HW_REV",
		"E_BL_VERSION", "E_HEADER", "E_CRC", "E_SHA", "E_FLASH", "E_ECC", "E_DECOMPRESS",
		"E_NOT_STAGED", "E_NO_ROLLBACK", "E_ALIGN", "E_CORE", "E_PROTECTED", "E_TOO_LARGE", "E_MODE", "E_TRIAL",
		"E_SIGNATURE", "E_COUNTER", "E_DECRYPT",
	};
	if (status <= 0 && -status < (int)(sizeof names / sizeof names[0]))
		return names[-status];
	return "E_?";
}

int flasher__device_error(const flasher__response *r)
{
	int code;
	switch (r->status) {
	case FLBOOT_E_PRODUCT:
	case FLBOOT_E_HW_REV:
	case FLBOOT_E_BL_VERSION:
	case FLBOOT_E_RANGE:
	case FLBOOT_E_CORE:
	case FLBOOT_E_COUNTER:
		code = FLASHER_EINCOMPATIBLE;
		break;
	case FLBOOT_E_CRC:
	case FLBOOT_E_SHA:
	case FLBOOT_E_SIGNATURE:
	case FLBOOT_E_DECRYPT:
		code = FLASHER_EVERIFY;
		break;
	case FLBOOT_E_UNKNOWN:
	case FLBOOT_E_MODE:
		code = FLASHER_EUNSUPPORTED;
		break;
	case FLBOOT_E_FRAME:
	case FLBOOT_E_TOO_LARGE:
	case FLBOOT_E_ALIGN:
		code = FLASHER_EPROTOCOL;
		break;
	default:
		code = FLASHER_EDEVICE;
		break;
	}
	size_t n = r->body_len > FLBOOT_REASON_MAX ? FLBOOT_REASON_MAX : r->body_len;
	char reason[FLBOOT_REASON_MAX + 1];
	memcpy(reason, r->body, n);
	reason[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)reason[i] < 0x20)
			reason[i] = ' ';
	return flasher__error(code, "unit refused %s: %s (%d, detail %u)%s%s", flasher__msg_name(r->type),
	                      flasher__device_err_name(r->status), r->status, (unsigned)r->detail, n ? ": " : "",
	                      reason);
}
