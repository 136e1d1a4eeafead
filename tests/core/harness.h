/*
 * harness.h - a simulated unit for the bootloader core's tests: the real
 * core on flashsim, an in-memory loopback transport, and a tiny synchronous
 * protocol client. Shared by tests/core and tests/powercut.
 */
#ifndef FLBOOT_TEST_HARNESS_H
#define FLBOOT_TEST_HARNESS_H

#include <stddef.h>
#include <stdint.h>

#include "flashsim.h"
#include "flboot/flboot.h"

/** An image: its header and payload, built by image_make. */
typedef struct image {
	flboot_image_header hdr;
	uint8_t *payload;
	uint32_t size;
	/* header-area bytes after the header that BEGIN sends with it (a
	 * signature block); area_tail_len 0 = the header alone */
	uint8_t area_tail[FLBOOT_BEGIN_MAX_AREA - sizeof(flboot_image_header)];
	uint32_t area_tail_len;
} image;

/** One flash operation as the core made it (recorded for the sweep). */
enum { UNIT_OP_ERASE = 1, UNIT_OP_PROGRAM = 2 };
typedef struct unit_op {
	uint8_t kind;
	uint32_t where; /* sector (erase) or address (program) */
	uint8_t word[32];
} unit_op;

typedef struct unit {
	flashsim *fs;
	flboot_port port;
	flboot *bl;
	flboot_identity id;
	uint8_t *in;   /* host -> device bytes */
	size_t in_len, in_pos, in_cap;
	uint8_t *out;  /* device -> host bytes */
	size_t out_len, out_pos, out_cap;
	flboot_frame_decoder dec;
	uint8_t decbuf[FLBOOT_FRAME_MAX_WIRE];
	int pending[2];       /* background erase per bank: sector + 1 */
	int presult[2];
	int busy_polls[2];
	int blocking_erase;   /* 1: the port has no flash_erase_start */
	int no_prepare;       /* 1: unit_update sends no PREPARE */
	unsigned erases_started;
	unsigned parallel_erases; /* erases started while the other bank erased */
	int recording;        /* 1: append every flash operation to ops */
	unit_op *ops;
	size_t ops_len, ops_cap;
	uint32_t flags;       /* boot flags: survive a reset, not a power cut */
	int reset_requested;
	uint16_t seq;
	/* last response */
	uint8_t resp_type;
	uint16_t resp_seq;
	int16_t status;
	uint32_t detail;
	uint8_t body[FLBOOT_FRAME_MAX_PAYLOAD];
	uint32_t body_len;
} unit;

#define NO_RESPONSE (-1000)

/** A unit with erased flash, product "demo", hw rev "B", bootloader 1.2.0. */
unit *unit_new(void);
void unit_free(unit *u);
/** Provision the key store (public keys) into the bootloader sector, as a
 *  provisioning tool would before the unit's first boot. */
void unit_install_keys(unit *u, const uint8_t (*keys)[32], uint32_t n);
/** Power on or reset: zero the core, init, boot. Returns flboot_boot's result. */
int unit_boot(unit *u, flboot_boot_target *t);
/** Send one request and poll until its answer. Returns the answer's status
 *  (u->detail, u->body hold the rest) or NO_RESPONSE (reset, cut, silence). */
int unit_request(unit *u, uint8_t type, uint8_t flags, const void *p, size_t len);
/** Queue a request without polling (windowed tests); returns its seq. */
uint16_t unit_send(unit *u, uint8_t type, uint8_t flags, const void *p, size_t len);
/** Poll until one answer arrives. Returns its status or NO_RESPONSE. */
int unit_recv(unit *u);
/** BEGIN .. DATA .. END for one image; block = DATA size, compress: send
 *  raw-deflate blocks. Returns 0 or the first failing status. */
int unit_transfer(unit *u, const image *im, uint32_t block, int compress);
/** PREPARE both (when both are given), transfer the images given (NULL =
 *  skip), ACTIVATE them as one set, REBOOT, boot. Returns the boot result
 *  or a negative status. */
int unit_update(unit *u, const image *cm7, const image *cm4, flboot_boot_target *t);
/** 1 when the slot at address slot holds exactly im (header and payload). */
int unit_holds(unit *u, uint32_t slot, const image *im);
/** 1 when the boot target starts im's core in a slot holding exactly im. */
int unit_runs(unit *u, const flboot_boot_target *t, const image *im);
/** Link im for the slot at slot (load address slot + 0x400), 0: any slot. */
void image_link(image *im, uint32_t slot);

/** Do a recorded operation on a flash (the sweep replays them). */
int unit_apply_op(flashsim *fs, const unit_op *o);

/** Build an image for core with a payload of size bytes from seed. sparse:
 *  most flash words 0xFF (fewer flash operations, same code paths): 1 =
 *  one word in 16 programmed, n > 1: one word in n. */
void image_make(image *im, uint8_t core, uint32_t version, uint32_t size, uint32_t seed, int sparse);
/** Recompute the header CRC after editing the header. */
void image_seal(image *im);
void image_free(image *im);

#endif
