/*
 * flboot/flboot_state.h - the private fields of struct flboot.
 *
 * flboot.h includes this file inside the definition of struct flboot, so it
 * holds member declarations only (nested struct types are declared at their
 * first use; C gives them file scope). Only firmware/core/src may touch
 * these fields; docs/bootloader.md describes the journal they mirror.
 * No include guard on purpose: it is included exactly once, inside a struct.
 */

/** Flash access + the metadata journal's RAM mirror. Kept apart from the
 *  buffers below so flboot_app_confirm() can use one on its stack. */
struct flboot_store {
	const flboot_port *port;
	/** The state the journal describes (replayed at boot; also the body of
	 *  a snapshot record, hence fixed layout without implicit padding). */
	struct flboot_jstate {
		uint8_t boot_state;      /* flboot_boot_state (EMPTY/CONFIRMED/TRIAL/ROLLED_BACK) */
		uint8_t trial_boots;     /* boots used by the current trial */
		int16_t last_boot_error; /* why the last trial was reverted, 0 if none */
		uint8_t prev_mask;       /* cores whose secondary holds the previous image */
		uint8_t staged_mask;     /* cores whose secondary holds a verified staged image */
		uint8_t pending;         /* cores of a requested activation (swap at next boot) */
		uint8_t revert;          /* cores of a requested revert (swap at next boot) */
		uint8_t swap_done;       /* steps of the running swap already done */
		uint8_t xfer_core;       /* core of the open transfer, 0 if none */
		uint8_t xfer_erased;     /* staging-slot sectors erased for the open transfer */
		uint8_t rsv;
		uint32_t xfer_progress;  /* payload offset of the last progress mark */
		/** An image as the journal knows it. */
		struct flboot_imgref {
			uint32_t version;
			uint32_t payload_size;
			uint32_t payload_crc32;
			uint32_t header_crc32;
			uint8_t present;
			uint8_t rsv[3];
		} active[2];                       /* [core-1]: the committed pair (primaries) */
		struct flboot_imgref previous[2];  /* the pair before the last activation */
		struct flboot_imgref staged[2];    /* verified images waiting in the secondaries */
		flboot_image_header xfer_hdr;      /* header of the open transfer */
	} st;
	uint32_t seq;       /* sequence number of the newest valid record */
	uint32_t pos;       /* next free word index in the active journal sector */
	uint8_t sector;     /* active journal sector */
	uint8_t loaded;     /* st was replayed from flash */
	uint8_t rsv2[2];
	uint32_t flash_ops; /* erase + program calls since power-on */
} store;

uint8_t mode;        /* flboot_mode */
uint8_t halted;      /* a reset was requested: do nothing until re-init */
uint8_t xfer_live;   /* the open transfer was begun/resumed since power-on */
uint8_t rsv3;
int16_t boot_error;  /* why this boot stayed in the bootloader, 0 if none */
uint16_t rsv4;
uint32_t xfer_next;  /* next expected payload offset of the live transfer */
flboot_identity id;
flboot_frame_decoder dec;
uint8_t rx[FLBOOT_FRAME_MAX_WIRE];
uint8_t tx[FLBOOT_FRAME_MAX_WIRE];
uint8_t resp[256];
uint8_t block[FLBOOT_MAX_BLOCK];
