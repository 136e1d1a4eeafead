/*
 * flboot/proto.h - wire protocol constants and message layouts shared by the
 * host library and the bootloader core. docs/protocol.md is the normative
 * text; this header is its machine form and must agree with it.
 *
 * Everything on the wire is little-endian. Message bodies are packed structs
 * guarded by _Static_assert on their sizes so both sides agree bit for bit.
 */
#ifndef FLBOOT_PROTO_H
#define FLBOOT_PROTO_H

#include <stdint.h>

#define FLBOOT_PROTO_VERSION 1u
/* Additions within version 1 (fields appended to bodies). A unit announces
 * its minor in HELLO.proto_minor; a shorter HELLO (minor 0) has none. */
#define FLBOOT_PROTO_MINOR 2u

/* ---- frame ------------------------------------------------------------ */
/* A frame on the wire is COBS(header | payload | crc32) followed by 0x00.  */
#define FLBOOT_FRAME_HEADER_SIZE 8u
#define FLBOOT_FRAME_CRC_SIZE 4u
/* Largest payload any peer may send; a device announces its own (smaller or
 * equal) limit in HELLO and the host must respect it. */
#define FLBOOT_FRAME_MAX_PAYLOAD 4352u
/* Largest frame before COBS (header + payload + crc). */
#define FLBOOT_FRAME_MAX_RAW (FLBOOT_FRAME_HEADER_SIZE + FLBOOT_FRAME_MAX_PAYLOAD + FLBOOT_FRAME_CRC_SIZE)
/* COBS adds at most one byte per 254 plus one; plus the 0x00 delimiter. */
#define FLBOOT_COBS_MAX_ENCODED(n) ((n) + (n) / 254u + 2u)
/* Largest encoded frame: the COBS body, the trailing 0x00 and the leading
 * 0x00 that flboot_frame_encode also writes (hence + 1). */
#define FLBOOT_FRAME_MAX_WIRE (FLBOOT_COBS_MAX_ENCODED(FLBOOT_FRAME_MAX_RAW) + 1u)

typedef struct __attribute__((packed)) flboot_frame_header {
	uint8_t version;  /* FLBOOT_PROTO_VERSION */
	uint8_t type;     /* FLBOOT_MSG_* (response = request | FLBOOT_MSG_RESPONSE) */
	uint16_t seq;     /* chosen by the requester, echoed in the response */
	uint8_t flags;    /* FLBOOT_FLAG_* */
	uint8_t reserved; /* 0 */
	uint16_t length;  /* payload length in bytes */
} flboot_frame_header;
_Static_assert(sizeof(flboot_frame_header) == FLBOOT_FRAME_HEADER_SIZE, "frame header size");

/* frame flags */
#define FLBOOT_FLAG_COMPRESSED 0x01u /* DATA payload is a raw-deflate block */

/* ---- message types ---------------------------------------------------- */
#define FLBOOT_MSG_RESPONSE 0x80u
enum flboot_msg {
	FLBOOT_MSG_HELLO = 0x01,    /* identity, limits, slot table          */
	FLBOOT_MSG_STATUS = 0x02,   /* boot state and transfer progress      */
	FLBOOT_MSG_LOG = 0x03,      /* recent bootloader log lines           */
	FLBOOT_MSG_BEGIN = 0x10,    /* start or resume a transfer            */
	FLBOOT_MSG_DATA = 0x11,     /* image bytes at an offset              */
	FLBOOT_MSG_END = 0x12,      /* transfer complete: verify on device   */
	FLBOOT_MSG_ABORT = 0x13,    /* forget the transfer in progress       */
	FLBOOT_MSG_PREPARE = 0x14,  /* erase the staging slots ahead (minor 1) */
	FLBOOT_MSG_ACTIVATE = 0x20, /* mark verified staged images for trial */
	FLBOOT_MSG_CONFIRM = 0x21,  /* make the running trial pair permanent */
	FLBOOT_MSG_ROLLBACK = 0x22, /* go back to the previous pair          */
	FLBOOT_MSG_REBOOT = 0x23,   /* reset (normal boot or stay in loader) */
};

/* ---- device error codes (negative, stable, only ever appended) --------- */
enum flboot_err {
	FLBOOT_OK = 0,
	FLBOOT_E_FRAME = -1,       /* payload malformed for its message type     */
	FLBOOT_E_UNKNOWN = -2,     /* unknown message type                       */
	FLBOOT_E_STATE = -3,       /* not valid now (DATA without BEGIN, ...)    */
	FLBOOT_E_OFFSET = -4,      /* DATA offset is not the expected one        */
	FLBOOT_E_RANGE = -5,       /* outside the slot, or larger than the slot  */
	FLBOOT_E_PRODUCT = -6,     /* image for another product                  */
	FLBOOT_E_HW_REV = -7,      /* image not for this hardware revision       */
	FLBOOT_E_BL_VERSION = -8,  /* bootloader older than the image requires   */
	FLBOOT_E_HEADER = -9,      /* image header magic/version/CRC wrong       */
	FLBOOT_E_CRC = -10,        /* image CRC32 mismatch                       */
	FLBOOT_E_SHA = -11,        /* image SHA-256 mismatch                     */
	FLBOOT_E_FLASH = -12,      /* flash erase/program failed                 */
	FLBOOT_E_ECC = -13,        /* uncorrectable ECC error on read            */
	FLBOOT_E_DECOMPRESS = -14, /* compressed DATA block does not inflate     */
	FLBOOT_E_NOT_STAGED = -15, /* ACTIVATE without verified staged images    */
	FLBOOT_E_NO_ROLLBACK = -16,/* no previous pair to return to              */
	FLBOOT_E_ALIGN = -17,      /* offset/length not on a 32-byte flash word  */
	FLBOOT_E_CORE = -18,       /* unknown core or core not present           */
	FLBOOT_E_PROTECTED = -19,  /* would touch the bootloader sector          */
	FLBOOT_E_TOO_LARGE = -20,  /* payload above the announced maximum        */
	FLBOOT_E_MODE = -21,       /* not available in this mode (app/loader)    */
	FLBOOT_E_TRIAL = -22,      /* trial pair not confirmed in time: reverted */
	FLBOOT_E_SIGNATURE = -23,  /* not signed by a key this unit holds        */
	FLBOOT_E_COUNTER = -24,    /* security counter below the confirmed floor */
	FLBOOT_E_DECRYPT = -25,    /* encrypted image: no key, or does not open  */
	FLBOOT_E_SET_ID = -26,     /* images of two packages activated as one pair */
};

/* ---- semantic version packed in 32 bits: major.minor.patch ------------- */
#define FLBOOT_VERSION(maj, min, pat) \
	((uint32_t)(((uint32_t)(maj) & 0xFFu) << 24 | ((uint32_t)(min) & 0xFFu) << 16 | ((uint32_t)(pat) & 0xFFFFu)))
#define FLBOOT_VERSION_MAJOR(v) (((v) >> 24) & 0xFFu)
#define FLBOOT_VERSION_MINOR(v) (((v) >> 16) & 0xFFu)
#define FLBOOT_VERSION_PATCH(v) ((v)&0xFFFFu)

/* ---- cores ------------------------------------------------------------ */
enum flboot_core { FLBOOT_CORE_CM7 = 1, FLBOOT_CORE_CM4 = 2 };
#define FLBOOT_CORE_BIT(c) (1u << ((c)-1u)) /* cores mask: bit0 cm7, bit1 cm4 */

/* ---- every response payload starts with this --------------------------- */
typedef struct __attribute__((packed)) flboot_resp_head {
	int16_t status;  /* FLBOOT_OK or a negative flboot_err */
	uint16_t rsv;    /* 0 */
	uint32_t detail; /* error detail (expected offset for E_OFFSET ...) */
} flboot_resp_head;
_Static_assert(sizeof(flboot_resp_head) == 8, "resp head size");
/* An error response is flboot_resp_head followed by a UTF-8 reason (not
 * NUL-terminated, at most 96 bytes). A success response is flboot_resp_head
 * followed by the message's body below. */
#define FLBOOT_REASON_MAX 96u

/* ---- HELLO ------------------------------------------------------------ */
enum flboot_mode { FLBOOT_MODE_BOOTLOADER = 1, FLBOOT_MODE_APPLICATION = 2 };
enum flboot_boot_state {
	FLBOOT_STATE_EMPTY = 0,       /* no valid pair: recovery, waiting for update */
	FLBOOT_STATE_CONFIRMED = 1,   /* active pair confirmed                     */
	FLBOOT_STATE_PENDING = 2,     /* activation requested, applied at next boot */
	FLBOOT_STATE_TRIAL = 3,       /* running a new pair on trial               */
	FLBOOT_STATE_ROLLED_BACK = 4, /* a trial failed; previous pair restored    */
};
/* Layout v2: PRIMARY = the slot of the core's active image (or, without
 * one, the slot not staged into), SECONDARY = the slot BEGIN stages into. */
enum flboot_slot_role { FLBOOT_ROLE_PRIMARY = 1, FLBOOT_ROLE_SECONDARY = 2 };
enum flboot_slot_state {
	FLBOOT_SLOT_EMPTY = 0,    /* nothing valid                              */
	FLBOOT_SLOT_ACTIVE = 1,   /* primary: the image that boots              */
	FLBOOT_SLOT_RECEIVING = 2,/* secondary: transfer in progress            */
	FLBOOT_SLOT_STAGED = 3,   /* secondary: verified, ready to activate     */
	FLBOOT_SLOT_PREVIOUS = 4, /* secondary: the previous image (rollback)    */
	FLBOOT_SLOT_INVALID = 5,  /* header or contents do not verify            */
};

typedef struct __attribute__((packed)) flboot_slot_info {
	uint8_t core;        /* flboot_core */
	uint8_t role;        /* flboot_slot_role */
	uint8_t state;       /* flboot_slot_state */
	uint8_t rsv;
	uint32_t address;    /* slot start (image header lives here) */
	uint32_t size;       /* slot size in bytes, header area included */
	uint32_t version;    /* FLBOOT_VERSION of the image, 0 if none */
	uint32_t payload_crc32; /* of the image in the slot, 0 if none */
} flboot_slot_info;
_Static_assert(sizeof(flboot_slot_info) == 20, "slot info size");

#define FLBOOT_MAX_SLOTS 4u
#define FLBOOT_UID_SIZE 12u

typedef struct __attribute__((packed)) flboot_hello {
	uint16_t proto_version;     /* FLBOOT_PROTO_VERSION of the device      */
	uint8_t mode;               /* flboot_mode                             */
	uint8_t boot_state;         /* flboot_boot_state                       */
	uint32_t bootloader_version;/* FLBOOT_VERSION                          */
	uint8_t uid[FLBOOT_UID_SIZE];/* 96-bit unique id                       */
	char serial[32];            /* USB serial string, NUL padded           */
	char product[16];           /* product id, NUL padded                  */
	char hw_rev[8];             /* hardware revision, NUL padded           */
	uint16_t max_payload;       /* largest frame payload accepted          */
	uint8_t window;             /* DATA frames the host may keep in flight */
	uint8_t n_slots;            /* valid entries in slots[]                */
	uint32_t op_timeout_ms;     /* longest a single request may take       */
	uint32_t features;          /* FLBOOT_FEAT_*                           */
	uint32_t running_cm7;       /* version running (app) / active (loader) */
	uint32_t running_cm4;
	uint8_t trial_boots;        /* boots used by the current trial         */
	uint8_t last_error_core;    /* rsv */
	int16_t last_boot_error;    /* why the last boot fell back, 0 if none  */
	uint32_t rsv2;
	flboot_slot_info slots[FLBOOT_MAX_SLOTS];
	/* ---- minor 1 (layout v2, images run in place) ---- */
	uint8_t proto_minor;        /* FLBOOT_PROTO_MINOR of the device        */
	uint8_t rsv5[3];            /* 0                                       */
	/* [core-1]: start of the slot the next BEGIN for that core stages
	 * into (image header there, payload linked for stage_addr + 0x400);
	 * 0 = unknown (older unit: use the image as packed). */
	uint32_t stage_addr[2];
	/* ---- minor 2 ---- */
	/* Longest one sector erase may take (datasheet maximum). A DATA may
	 * wait for the erase running on its bank and then for its own
	 * sector's: the host gives a DATA that may meet an erase (one that
	 * enters a sector, or any while the erases queued by BEGIN/PREPARE
	 * may still run) 2 x erase_max_ms beyond its usual wait. 0 = not
	 * announced (older unit: the host's own timeout). */
	uint32_t erase_max_ms;
} flboot_hello;
_Static_assert(sizeof(flboot_hello) == 104 + 4 * 20 + 16, "hello size");
#define FLBOOT_HELLO_V1_0_SIZE (104u + 4u * 20u) /* HELLO of minor 0 */
#define FLBOOT_HELLO_V1_1_SIZE (FLBOOT_HELLO_V1_0_SIZE + 12u) /* HELLO of minor 1 */

#define FLBOOT_FEAT_DEFLATE 0x01u /* accepts FLBOOT_FLAG_COMPRESSED DATA */
#define FLBOOT_FEAT_RESUME 0x02u  /* BEGIN answers a durable resume offset */
#define FLBOOT_FEAT_PREPARE 0x04u /* takes PREPARE (minor 1) */

/* ---- STATUS ------------------------------------------------------------ */
typedef struct __attribute__((packed)) flboot_status {
	uint8_t mode;            /* flboot_mode */
	uint8_t boot_state;      /* flboot_boot_state */
	uint8_t receiving_core;  /* core of the open transfer, 0 if none */
	uint8_t staged_cores;    /* FLBOOT_CORE_BIT mask of verified staged images */
	uint32_t received;       /* durable bytes of the open transfer */
	uint32_t total;          /* payload size of the open transfer */
	uint32_t flash_ops;      /* erase+program operations since power-on */
	uint32_t frames_dropped; /* frames dropped by the decoder since power-on */
} flboot_status;
_Static_assert(sizeof(flboot_status) == 20, "status size");

/* ---- BEGIN -------------------------------------------------------------- */
/* request: the 128-byte flboot_image_header (flboot/image.h) of the image,
 * optionally followed by the rest of its header area up to
 * FLBOOT_BEGIN_MAX_AREA bytes (signature blocks). The device checks it
 * (magic, CRC, product, hw revision, bootloader version, core, size and
 * load address against the slot it stages into, HELLO.stage_addr) before
 * touching flash. */
#define FLBOOT_BEGIN_MAX_AREA 0x200u

/* ---- PREPARE (minor 1, FLBOOT_FEAT_PREPARE) -------------------------------- */
/* request: 1 or 2 image headers (128 bytes each, distinct cores), the
 * images an update is about to BEGIN. Checked as BEGIN checks them; the
 * device then erases their staging sectors in the background, both banks
 * at once. Answer: empty, at once. A later BEGIN with the same header
 * resumes the prepared staging. */
typedef struct __attribute__((packed)) flboot_begin_resp {
	uint32_t resume_offset;  /* durable payload bytes already on the device */
	uint32_t max_block;      /* largest uncompressed DATA block (multiple of 32) */
} flboot_begin_resp;

/* ---- DATA --------------------------------------------------------------- */
/* request: flboot_data_head then the bytes. Uncompressed: the bytes are the
 * payload at `offset`. Compressed (FLBOOT_FLAG_COMPRESSED): the bytes are one
 * raw deflate stream (no zlib header, independent of other blocks) that
 * inflates to exactly raw_length bytes. offset and raw_length are multiples
 * of 32 except for the block that ends the payload. */
typedef struct __attribute__((packed)) flboot_data_head {
	uint32_t offset;     /* payload offset of the first byte */
	uint32_t raw_length; /* uncompressed length of this block */
} flboot_data_head;
/* response (ACK): flboot_resp_head with status 0 and detail = next expected
 * offset; NAK: status FLBOOT_E_OFFSET (or another error) and detail = the
 * offset the device expects. */

/* ---- END ------------------------------------------------------------------ */
/* response body: */
typedef struct __attribute__((packed)) flboot_end_resp {
	uint32_t crc32;  /* CRC32 of the payload as read back from flash */
	uint8_t sha256[32];
} flboot_end_resp;

/* ---- ACTIVATE / ROLLBACK / REBOOT ------------------------------------------ */
typedef struct __attribute__((packed)) flboot_activate_req {
	uint8_t cores; /* FLBOOT_CORE_BIT mask: the staged images to activate as a set */
} flboot_activate_req;
enum flboot_reboot_mode { FLBOOT_REBOOT_NORMAL = 0, FLBOOT_REBOOT_BOOTLOADER = 1 };
typedef struct __attribute__((packed)) flboot_reboot_req {
	uint8_t mode; /* flboot_reboot_mode */
} flboot_reboot_req;
/* The device answers REBOOT before it resets. */

#endif
