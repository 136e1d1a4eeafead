/*
 * usb_cdc.h - the bootloader's USB CDC-ACM device: protocol logic only,
 * no registers (TinyUSB's split, STYLE.md).
 *
 * The controller driver (usb_otg.c on the chip, a recorder in
 * tests/firmware) calls usb_cdc_post() from its interrupt with what
 * happened: bus reset, SETUP received, EP0 OUT data, EP0 IN done, bulk IN
 * done, bulk OUT done (the OUT bytes go into the RX ring first). Nothing
 * else happens in the interrupt. usb_cdc_task(), in thread context, takes
 * the events in order and answers them through the usb_dcd_* calls below:
 * standard and class requests, descriptors, data and status stages, the
 * endpoints' state across bus reset and (re)configuration.
 *
 * Events carry the bus-reset generation they happened in; an event older
 * than the last bus reset is dropped, so nothing from before a reset is
 * answered after it.
 */
#ifndef H7_USB_CDC_H
#define H7_USB_CDC_H

#include <stdbool.h>
#include <stdint.h>

#include "usb_desc.h"

#define USB_CDC_EVQ 16u        /* power of two */
#define USB_CDC_RX_RING 2048u  /* power of two, multiple of 64 */
#define USB_CDC_TX_RING 2048u  /* power of two */

enum usb_cdc_ev {
	USB_EV_RESET = 1,   /* bus reset (the driver already reset the hardware) */
	USB_EV_SETUP,       /* data[0..7] = the SETUP packet */
	USB_EV_EP0_OUT,     /* an EP0 OUT packet of len bytes (data stage or status) */
	USB_EV_EP0_IN_DONE, /* the EP0 IN packet handed to usb_dcd_ep0_in went out */
	USB_EV_IN_DONE,     /* the bulk IN packet went out */
	USB_EV_OUT_DONE,    /* the bulk OUT transfer armed by usb_dcd_out ended */
};

typedef struct usb_cdc_event {
	uint8_t type;
	uint8_t gen; /* bus-reset generation, stamped by usb_cdc_post */
	uint16_t len;
	uint8_t data[USB_EP0_SIZE];
} usb_cdc_event;

typedef struct usb_cdc {
	/* ---- written by the interrupt ---- */
	usb_cdc_event evq[USB_CDC_EVQ];
	volatile uint32_t ev_head;
	volatile uint8_t gen;      /* incremented on every bus reset */
	volatile uint8_t ev_lost;  /* queue was full: resynchronised at the next reset */
	uint8_t rx[USB_CDC_RX_RING];
	volatile uint32_t rx_head;
	/* ---- thread ---- */
	volatile uint32_t ev_tail;
	volatile uint32_t rx_tail;
	uint32_t rx_armed;         /* bytes of ring promised to the armed OUT transfer */
	uint8_t gen_seen;
	uint8_t address;
	uint8_t configured;        /* bConfigurationValue, 0 = not configured */
	uint8_t halted;            /* bit 0: 0x01 OUT, bit 1: 0x81 IN, bit 2: 0x82 IN */
	/* control transfer */
	uint8_t setup[8];
	uint8_t ep0_stage;         /* usb_cdc.c: idle, IN data, OUT data, status */
	uint8_t ep0_in_busy;
	uint8_t ep0_zlp;
	uint8_t ep0_out_armed;
	uint8_t pending_addr;
	const uint8_t *ep0_ptr;
	uint32_t ep0_left;
	uint8_t ep0_buf[64];
	uint8_t line_coding[7];
	uint16_t line_state;
	/* bulk IN */
	uint8_t tx[USB_CDC_TX_RING];
	uint32_t tx_head, tx_tail;
	uint8_t in_busy;
	uint8_t need_zlp;
	uint8_t uid[USB_UID_SIZE];
} usb_cdc;

void usb_cdc_setup_state(usb_cdc *c, const uint8_t uid[USB_UID_SIZE]);

/* ---- interrupt side ---- */
/** Record an event (type, optional data of len bytes). Bus reset bumps
 *  the generation first. */
void usb_cdc_post(usb_cdc *c, uint8_t type, const uint8_t *data, uint32_t len);
/** Bulk OUT packet bytes into the RX ring (only what usb_dcd_out armed). */
void usb_cdc_rx_put(usb_cdc *c, const uint8_t *data, uint32_t len);

/* ---- thread side ---- */
/** Handle every queued event, in order; start the next bulk IN packet. */
void usb_cdc_task(usb_cdc *c);
/** Bytes received, at most cap; never blocks. */
uint32_t usb_cdc_rx(usb_cdc *c, uint8_t *buf, uint32_t cap);
/** Queue len bytes; waits (running usb_cdc_task) while the TX ring is full,
 *  and gives up when not configured or when no byte left for stall_ms
 *  (host stopped reading). Returns the bytes queued. */
uint32_t usb_cdc_tx(usb_cdc *c, const uint8_t *buf, uint32_t len, uint32_t stall_ms);
static inline bool usb_cdc_configured(const usb_cdc *c)
{
	return c->configured != 0;
}

/* ---- what the stack asks of the controller driver ---- */
void usb_dcd_set_address(uint8_t addr);
/** Send one EP0 IN packet (len <= 64, 0 = ZLP). */
void usb_dcd_ep0_in(const uint8_t *data, uint32_t len);
/** Arm EP0 OUT for one packet (data or status stage); SETUPs are always
 *  received. A no-op if it is armed already. */
void usb_dcd_ep0_out(void);
/** Abort an EP0 IN packet still in the FIFO (a new SETUP came). */
void usb_dcd_ep0_abort(void);
/** Protocol stall of EP0, both directions, until the next SETUP. */
void usb_dcd_ep0_stall(void);
/** Activate the data (0x01, 0x81) and notification (0x82) endpoints, DATA0. */
void usb_dcd_ep_open(void);
/** Deactivate them: NAK OUT, disable an IN in progress, flush its FIFO. */
void usb_dcd_ep_close(void);
/** Set or clear ENDPOINT_HALT; clearing also resets the toggle to DATA0. */
void usb_dcd_ep_stall(uint8_t ep_addr, bool stall);
/** Reset both data endpoints' toggles to DATA0 (SET_CONFIGURATION again). */
void usb_dcd_ep_reset_toggles(void);
/** Send one bulk IN packet on 0x81 (len <= 64, 0 = ZLP). */
void usb_dcd_in(const uint8_t *data, uint32_t len);
/** Arm bulk OUT 0x01 for up to len bytes (a multiple of 64). */
void usb_dcd_out(uint32_t len);
/** Keep the controller's interrupt from running (the stack's short
 *  critical sections against usb_cdc_post). */
void usb_dcd_irq_off(void);
void usb_dcd_irq_on(void);
uint32_t usb_dcd_millis(void);

#endif
