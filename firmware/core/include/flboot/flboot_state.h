/*
 * flboot/flboot_state.h - the private fields of struct flboot.
 *
 * flboot.h includes this file inside the definition of struct flboot, so it
 * holds member declarations only (nested struct types are declared at their
 * first use; C gives them file scope). Only firmware/core/src may touch
 * these fields; docs/bootloader.md describes the flash records they mirror.
 * No include guard on purpose: it is included exactly once, inside a struct.
 */

/** Flash access and the staging log of the metadata sector (transient
 *  state: which slot sectors are erased for which staging, progress). */
struct flboot_store {
	const flboot_port *port;
	uint32_t flash_ops; /* erase + program calls since power-on */
	uint32_t log_pos;   /* next free word of the staging log */
	uint32_t log_seq;   /* sequence number of the next log record */
	uint8_t log_ok;     /* the log sector was formatted (epoch record read back) */
	uint8_t loaded;     /* the log was read since power-on */
	uint8_t inflight[2];/* per bank: 1 + slot sector of the erase running, 0 none */
	uint8_t erase_sector[2]; /* per bank: the sector its last erase started on */
	uint8_t erase_failed;    /* 1 + sector of an erase that failed in this request, 0 none */
	/** A staging in progress, per core ([core-1]). */
	struct flboot_stage {
		uint8_t on;           /* a staging is recorded */
		uint8_t slot;         /* 0 (A) or 1 (B) */
		uint8_t erased;       /* slot sectors erased for it (bit k) */
		uint8_t queued;       /* RAM only: slot sectors to erase in the background */
		uint8_t unlogged;     /* RAM only: erased, the record not written yet */
		uint32_t header_crc32;/* the image being staged */
		uint32_t payload_size;
		uint32_t progress;    /* payload offset of the last progress mark */
	} stage[2];
} store;

/** What the slots say (image headers and slot trailers), derived anew after
 *  every state change; never stored anywhere else. */
struct flboot_view {
	struct flboot_slotv {
		flboot_image_header hdr;
		uint8_t hdr_ok;      /* header sane, for this core and slot */
		uint8_t verified;    /* a verified record for this header */
		uint8_t act;         /* an activation record for this header */
		uint8_t boots;       /* trial boots recorded */
		uint8_t confirmed;
		uint8_t reverted;
		uint8_t together;    /* partner activated with it (one package) */
		int8_t partner;      /* slot of the other core named by the activation, -1 none */
		int16_t revert_reason;
		uint8_t trailer_end; /* trailer words in use */
		uint8_t bad;         /* marked as no longer verifying */
		uint32_t seq;        /* activation sequence number */
		uint32_t partner_crc;/* header CRC of the partner image */
		uint8_t set_id[8];   /* set id recorded at activation */
	} slot[2][2];                /* [core-1][slot] */
	/** A pair: the slot each core runs from (-1 none) and its lead slot
	 *  (the one holding the activation record). */
	struct flboot_pair {
		int8_t at[2];
		int8_t lead_core; /* 0 cm7, 1 cm4; -1: no pair */
		int8_t lead_slot;
		uint32_t seq;
	} active, prev;
	int8_t gone_core, gone_slot; /* newest reverted pair newer than active, -1 none */
	uint32_t max_seq;
} view;

uint8_t mode;        /* flboot_mode */
uint8_t halted;      /* a reset was requested: do nothing until re-init */
uint8_t xfer_live;   /* 0 none, 1 receiving, 2 already staged (nothing to send) */
uint8_t xfer_core;   /* core of the live transfer (1, 2) */
int16_t boot_error;  /* why this boot stayed in the bootloader, 0 if none */
uint16_t last_rollback_seq; /* frame seq of the ROLLBACK done since power-on */
uint8_t rolled_back; /* last_rollback_seq is valid */
uint8_t redirty;     /* sectors erased again in the live transfer */
uint8_t xfer_slot;   /* slot of the live transfer */
uint8_t rsv4;
uint32_t xfer_next;  /* next expected payload offset of the live transfer */
uint32_t area_len;   /* header area bytes the live BEGIN carried */
uint8_t area[FLBOOT_BEGIN_MAX_AREA];
flboot_identity id;
flboot_frame_decoder dec;
uint8_t rx[FLBOOT_FRAME_MAX_WIRE];
uint8_t tx[FLBOOT_FRAME_MAX_WIRE];
uint8_t resp[256];
uint8_t block[FLBOOT_MAX_BLOCK];
