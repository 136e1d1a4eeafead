/* In-memory transport for wrapper tests: writes are captured, reads come
 * from a script the test fills in, or echo what was written. */
#ifndef TEST_MEM_TRANSPORT_H
#define TEST_MEM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "flasher/errors.h"
#include "flasher/transport.h"

struct mem_link {
	uint8_t *out; /* everything the host wrote */
	size_t nout, capout;
	uint8_t *in; /* what reads return, consumed from `pos` */
	size_t nin, capin, pos;
	int echo;          /* writes are also appended to `in` */
	int closed;        /* reads return EDISCONNECTED once `in` is consumed */
	int *close_count;  /* incremented when the transport is closed */
};

/* The link stays owned by the test; the transport only points at it. */
int mem_transport_new(flasher_transport **out, struct mem_link *link);
void mem_link_feed(struct mem_link *link, const void *data, size_t len);
void mem_link_free(struct mem_link *link);

#endif
