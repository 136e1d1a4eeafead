/*
 * flboot/flboot.h - the bootloader core: boot decision and protocol engine.
 *
 * Plain C99 (+ _Static_assert), no allocation, no OS, no hardware: the state
 * lives in a flboot struct the port allocates (statically on the chip), and
 * every hardware access goes through the flboot_port. A reset on the host is
 * modelled by zeroing the struct and calling flboot_init again, so nothing
 * survives in RAM that would not survive on the chip.
 *
 * Life of a unit:
 *   flboot_init(&bl, &port);
 *   if (flboot_boot(&bl, &target) == FLBOOT_BOOT_APP) jump(target) (port);
 *   else for (;;) flboot_poll(&bl);   // serve the protocol, may reset
 */
#ifndef FLBOOT_FLBOOT_H
#define FLBOOT_FLBOOT_H

#include <stdbool.h>
#include <stdint.h>

#include "flboot/frame.h"
#include "flboot/image.h"
#include "flboot/port.h"
#include "flboot/proto.h"

#define FLBOOT_WINDOW 8u           /* DATA frames in flight announced in HELLO */
#define FLBOOT_MAX_BLOCK 4096u     /* largest uncompressed DATA block */
#define FLBOOT_TRIAL_MAX_BOOTS 2u  /* unconfirmed boots before rollback */
#define FLBOOT_TRIAL_WATCHDOG_MS 4000u

enum flboot_boot_result {
	FLBOOT_BOOT_APP = 1,  /* target filled: start the application */
	FLBOOT_BOOT_STAY = 2, /* stay in the bootloader and serve the protocol */
};

/* The core's whole state. Fields are private to firmware/core/src. */
typedef struct flboot flboot;
struct flboot {
	const flboot_port *port;
	/* private state: defined by firmware/core (see src/) */
#include "flboot/flboot_state.h"
};

/** Reset the core's RAM state and bind it to a port. Touches no flash. */
void flboot_init(flboot *bl, const flboot_port *port);

/** Power-on boot decision: derives the state from the slots, returns an
 *  expired or broken trial to its way back (when that verifies), counts
 *  trial boots, verifies the pair to run. Returns FLBOOT_BOOT_APP with
 *  *target filled (each core's entry in the slot it runs from), or
 *  FLBOOT_BOOT_STAY (recovery, stay flag, pin). */
int flboot_boot(flboot *bl, flboot_boot_target *target);

/** One non-blocking step of the protocol engine: reads what the transport
 *  has, acts on complete frames, answers. May call port->reset. */
void flboot_poll(flboot *bl);

/* ---- the application side (linked into vendor firmware) ---------------- */

/** Make the running trial pair permanent: programs one flash word (the
 *  confirm record in the trailer of the pair's lead slot), never erases.
 *  Returns 0 or a negative flboot_err. */
int flboot_app_confirm(const flboot_port *port);

/** Start the application-side agent: answers HELLO (application mode, the
 *  running versions), STATUS, CONFIRM and REBOOT (to the bootloader via the
 *  STAY boot flag) on the application's own CDC port. */
void flboot_app_init(flboot *bl, const flboot_port *port);

/** One non-blocking step of the application-side agent. May call
 *  port->reset (REBOOT). */
void flboot_app_poll(flboot *bl);

#endif
