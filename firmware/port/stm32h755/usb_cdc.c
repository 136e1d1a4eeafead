/*
 * usb_cdc.c - CDC-ACM device logic (see usb_cdc.h). Portable C: the chip
 * build links usb_otg.c as the controller driver, tests/firmware links a
 * recorder and drives this file with event sequences.
 *
 * Interrupt-side functions (usb_cdc_post, usb_cdc_rx_put) are RAMFUNC:
 * they run while bank 1 is erased or programmed.
 */
#include "usb_cdc.h"

#include "h7.h"

enum { EP0_IDLE, EP0_IN_DATA, EP0_OUT_DATA, EP0_STATUS_IN, EP0_STATUS_OUT };

#define HALT_OUT 0x1u
#define HALT_IN 0x2u
#define HALT_NOTIFY 0x4u

static const uint8_t default_line_coding[7] = {0x00, 0xC2, 0x01, 0x00, 0, 0, 8}; /* 115200 8N1 */

/* A controller call made while handling an event, unless a bus reset came
 * in the meantime (the reset already put the hardware in its state). */
#define DCD(c, call)                             \
	do {                                     \
		usb_dcd_irq_off();               \
		if ((c)->gen == (c)->gen_seen)   \
			call;                    \
		usb_dcd_irq_on();                \
	} while (0)

static void copy(uint8_t *d, const uint8_t *s, uint32_t n)
{
	for (uint32_t i = 0; i < n; i++)
		d[i] = s[i];
}

static void reset_state(usb_cdc *c)
{
	c->address = 0;
	c->configured = 0;
	c->halted = 0;
	c->ep0_stage = EP0_IDLE;
	c->ep0_in_busy = 0;
	c->ep0_zlp = 0;
	c->ep0_out_armed = 0;
	c->pending_addr = 0;
	c->ep0_left = 0;
	c->in_busy = 0;
	c->need_zlp = 0;
	c->rx_armed = 0;
	c->tx_tail = c->tx_head; /* bytes for the previous session are void */
	copy(c->line_coding, default_line_coding, sizeof(c->line_coding));
	c->line_state = 0;
}

void usb_cdc_setup_state(usb_cdc *c, const uint8_t uid[USB_UID_SIZE])
{
	uint8_t *p = (uint8_t *)c;
	for (uint32_t i = 0; i < sizeof(*c); i++)
		p[i] = 0;
	copy(c->uid, uid, USB_UID_SIZE);
	reset_state(c);
}

/* ---- interrupt side ------------------------------------------------------- */
RAMFUNC void usb_cdc_post(usb_cdc *c, uint8_t type, const uint8_t *data, uint32_t len)
{
	if (type == USB_EV_RESET) {
		c->gen = (uint8_t)(c->gen + 1u);
		c->ev_lost = 0;
	}
	uint32_t h = c->ev_head;
	if (h - c->ev_tail >= USB_CDC_EVQ) {
		/* Cannot happen while the thread runs (at most a handful of events
		 * per control transfer, each waiting for the thread's answer); if
		 * it does, the host's retry after a timeout ends in a bus reset. */
		c->ev_lost = 1;
		return;
	}
	usb_cdc_event *e = &c->evq[h % USB_CDC_EVQ];
	e->type = type;
	e->gen = c->gen;
	if (len > sizeof(e->data))
		len = sizeof(e->data);
	e->len = (uint16_t)len;
	for (uint32_t i = 0; i < len; i++)
		e->data[i] = data[i];
	c->ev_head = h + 1u;
}

RAMFUNC void usb_cdc_rx_put(usb_cdc *c, const uint8_t *data, uint32_t len)
{
	uint32_t h = c->rx_head;
	/* Never more than the thread promised when it armed (usb_dcd_out). */
	if (len > USB_CDC_RX_RING - (h - c->rx_tail))
		len = USB_CDC_RX_RING - (h - c->rx_tail);
	for (uint32_t i = 0; i < len; i++)
		c->rx[(h + i) & (USB_CDC_RX_RING - 1u)] = data[i];
	c->rx_head = h + len;
}

/* ---- bulk OUT: arm for as many packets as the ring has room for ---------- */
static void arm_out(usb_cdc *c)
{
	if (!c->configured || c->rx_armed || (c->halted & HALT_OUT))
		return;
	uint32_t room = USB_CDC_RX_RING - (c->rx_head - c->rx_tail);
	room -= room % USB_CDC_DATA_SIZE;
	if (room == 0)
		return; /* host is NAKed until usb_cdc_rx makes room */
	c->rx_armed = room;
	DCD(c, usb_dcd_out(room));
}

/* ---- EP0 ---------------------------------------------------------------------- */
static void ep0_stall(usb_cdc *c)
{
	c->ep0_stage = EP0_IDLE;
	c->ep0_left = 0;
	c->ep0_zlp = 0;
	DCD(c, usb_dcd_ep0_stall());
}

static void ep0_next_in(usb_cdc *c)
{
	uint32_t n = c->ep0_left < USB_EP0_SIZE ? c->ep0_left : USB_EP0_SIZE;
	if (n == 0)
		c->ep0_zlp = 0;
	c->ep0_in_busy = 1;
	DCD(c, usb_dcd_ep0_in(c->ep0_ptr, n));
	c->ep0_ptr += n;
	c->ep0_left -= n;
}

/* Data stage IN of len bytes (clipped to wLength). */
static void ep0_reply(usb_cdc *c, const uint8_t *data, uint32_t len)
{
	uint32_t wlength = (uint32_t)(c->setup[6] | c->setup[7] << 8);
	if (len > wlength)
		len = wlength;
	c->ep0_ptr = data;
	c->ep0_left = len;
	/* A reply shorter than asked for that ends on a full packet needs a ZLP. */
	c->ep0_zlp = len < wlength && len % USB_EP0_SIZE == 0 && len != 0;
	c->ep0_stage = EP0_IN_DATA;
	ep0_next_in(c);
}

/* No data stage: the status stage is a ZLP IN. */
static void ep0_ack(usb_cdc *c)
{
	c->ep0_stage = EP0_STATUS_IN;
	c->ep0_in_busy = 1;
	DCD(c, usb_dcd_ep0_in(0, 0));
}

static void ep0_arm_out(usb_cdc *c)
{
	c->ep0_out_armed = 1;
	DCD(c, usb_dcd_ep0_out());
}

static bool ep_halt_bit(uint16_t windex, uint8_t *bit)
{
	switch (windex & 0xFFu) {
	case USB_EP_DATA:
		*bit = HALT_OUT;
		return true;
	case 0x80u | USB_EP_DATA:
		*bit = HALT_IN;
		return true;
	case 0x80u | USB_EP_NOTIFY:
		*bit = HALT_NOTIFY;
		return true;
	default:
		return false;
	}
}

static void set_configuration(usb_cdc *c, uint16_t value)
{
	if (value > 1u) {
		ep0_stall(c);
		return;
	}
	if (value == 0) {
		if (c->configured) {
			DCD(c, usb_dcd_ep_close());
			c->configured = 0;
			c->in_busy = 0;
			c->need_zlp = 0;
			c->rx_armed = 0;
			c->halted = 0;
			c->tx_tail = c->tx_head;
		}
	} else if (c->configured) {
		/* Again with the same value: toggles back to DATA0 and halts
		 * cleared (USB 2.0 9.4.7); an armed OUT transfer and an IN packet
		 * in flight stay as they are. */
		if (c->halted & HALT_OUT)
			DCD(c, usb_dcd_ep_stall(USB_EP_DATA, false));
		if (c->halted & HALT_IN)
			DCD(c, usb_dcd_ep_stall(0x80u | USB_EP_DATA, false));
		if (c->halted & HALT_NOTIFY)
			DCD(c, usb_dcd_ep_stall(0x80u | USB_EP_NOTIFY, false));
		c->halted = 0;
		DCD(c, usb_dcd_ep_reset_toggles());
		arm_out(c);
	} else {
		DCD(c, usb_dcd_ep_open());
		c->configured = 1;
		c->halted = 0;
		arm_out(c);
	}
	ep0_ack(c);
}

static void handle_setup(usb_cdc *c)
{
	const uint8_t *s = c->setup;
	uint8_t type = s[0], req = s[1];
	uint16_t value = (uint16_t)(s[2] | s[3] << 8);
	uint16_t index = (uint16_t)(s[4] | s[5] << 8);
	uint16_t length = (uint16_t)(s[6] | s[7] << 8);
	uint8_t bit;

	switch (type << 8 | req) {
	case 0x8006: { /* GET_DESCRIPTOR */
		uint8_t dtype = (uint8_t)(value >> 8);
		if (dtype == 1) {
			ep0_reply(c, usb_device_desc, sizeof(usb_device_desc));
		} else if (dtype == 2) {
			ep0_reply(c, usb_config_desc, sizeof(usb_config_desc));
		} else if (dtype == 3) {
			size_t n = usb_string_desc((uint8_t)value, c->uid, c->ep0_buf, sizeof(c->ep0_buf));
			if (n)
				ep0_reply(c, c->ep0_buf, (uint32_t)n);
			else
				ep0_stall(c);
		} else {
			ep0_stall(c); /* no qualifier: full speed only */
		}
		return;
	}
	case 0x0005: /* SET_ADDRESS: the DWC2 takes it before the status stage */
		if (value > 127u) {
			ep0_stall(c);
			return;
		}
		c->address = (uint8_t)value;
		DCD(c, usb_dcd_set_address((uint8_t)value));
		ep0_ack(c);
		return;
	case 0x0009: /* SET_CONFIGURATION */
		if (c->address == 0) {
			ep0_stall(c);
			return;
		}
		set_configuration(c, value & 0xFFu);
		return;
	case 0x8008: /* GET_CONFIGURATION */
		c->ep0_buf[0] = c->configured;
		ep0_reply(c, c->ep0_buf, 1);
		return;
	case 0x8000: /* GET_STATUS device: bus powered, no remote wakeup */
	case 0x8100: /* GET_STATUS interface */
		c->ep0_buf[0] = 0;
		c->ep0_buf[1] = 0;
		ep0_reply(c, c->ep0_buf, 2);
		return;
	case 0x8200: /* GET_STATUS endpoint */
		if ((index & 0x7Fu) == 0) {
			c->ep0_buf[0] = 0;
		} else if (c->configured && ep_halt_bit(index, &bit)) {
			c->ep0_buf[0] = (c->halted & bit) ? 1 : 0;
		} else {
			ep0_stall(c);
			return;
		}
		c->ep0_buf[1] = 0;
		ep0_reply(c, c->ep0_buf, 2);
		return;
	case 0x0201: /* CLEAR_FEATURE(ENDPOINT_HALT) */
	case 0x0203: /* SET_FEATURE(ENDPOINT_HALT) */
		if (value != 0) {
			ep0_stall(c);
		} else if ((index & 0x7Fu) == 0) {
			ep0_ack(c); /* EP0 halt is cleared by the next SETUP anyway */
		} else if (c->configured && ep_halt_bit(index, &bit)) {
			bool set = req == 3;
			if (set)
				c->halted |= bit;
			else
				c->halted &= (uint8_t)~bit;
			DCD(c, usb_dcd_ep_stall((uint8_t)index, set));
			if (!set && bit == HALT_OUT)
				arm_out(c);
			ep0_ack(c);
		} else {
			ep0_stall(c);
		}
		return;
	case 0x0001: /* CLEAR_FEATURE(DEVICE_REMOTE_WAKEUP): not supported, accept */
	case 0x0003: /* SET_FEATURE device (remote wakeup, test mode): refused */
		if (req == 1)
			ep0_ack(c);
		else
			ep0_stall(c);
		return;
	case 0x810A: /* GET_INTERFACE: one alternate setting per interface */
		if (c->configured && index < 2u) {
			c->ep0_buf[0] = 0;
			ep0_reply(c, c->ep0_buf, 1);
		} else {
			ep0_stall(c);
		}
		return;
	case 0x010B: /* SET_INTERFACE: alternate setting 0 only */
		if (c->configured && index < 2u && value == 0)
			ep0_ack(c);
		else
			ep0_stall(c);
		return;
	case 0x2120: /* SET_LINE_CODING: 7 bytes follow in the data stage */
		if (length != sizeof(c->line_coding)) {
			ep0_stall(c);
			return;
		}
		c->ep0_stage = EP0_OUT_DATA;
		if (!c->ep0_out_armed)
			ep0_arm_out(c);
		return;
	case 0xA121: /* GET_LINE_CODING */
		ep0_reply(c, c->line_coding, sizeof(c->line_coding));
		return;
	case 0x2122: /* SET_CONTROL_LINE_STATE */
		c->line_state = value;
		ep0_ack(c);
		return;
	case 0x2123: /* SEND_BREAK */
		ep0_ack(c);
		return;
	default:
		ep0_stall(c);
		return;
	}
}

static void on_setup(usb_cdc *c, const usb_cdc_event *e)
{
	/* A new SETUP ends whatever control transfer was going on: an IN
	 * packet still in the FIFO is dropped, a data stage not sent. */
	if (c->ep0_in_busy) {
		DCD(c, usb_dcd_ep0_abort());
		c->ep0_in_busy = 0;
	}
	c->ep0_left = 0;
	c->ep0_zlp = 0;
	c->ep0_stage = EP0_IDLE;
	copy(c->setup, e->data, 8);
	handle_setup(c);
}

static void on_ep0_in_done(usb_cdc *c)
{
	if (!c->ep0_in_busy)
		return; /* aborted by a SETUP */
	c->ep0_in_busy = 0;
	switch (c->ep0_stage) {
	case EP0_IN_DATA:
		if (c->ep0_left || c->ep0_zlp) {
			ep0_next_in(c);
		} else {
			c->ep0_stage = EP0_STATUS_OUT;
			if (!c->ep0_out_armed)
				ep0_arm_out(c);
		}
		break;
	case EP0_STATUS_IN:
		c->ep0_stage = EP0_IDLE;
		break;
	default:
		break;
	}
}

static void on_ep0_out(usb_cdc *c, const usb_cdc_event *e)
{
	c->ep0_out_armed = 0;
	if (c->ep0_stage == EP0_OUT_DATA) {
		if (e->len != sizeof(c->line_coding)) {
			ep0_stall(c);
			return;
		}
		copy(c->line_coding, e->data, sizeof(c->line_coding));
		ep0_ack(c);
	} else if (c->ep0_stage == EP0_STATUS_OUT) {
		c->ep0_stage = EP0_IDLE;
	}
	/* Otherwise a status packet of a transfer a SETUP already ended. */
}

static void handle(usb_cdc *c, const usb_cdc_event *e)
{
	switch (e->type) {
	case USB_EV_RESET:
		reset_state(c);
		break;
	case USB_EV_SETUP:
		on_setup(c, e);
		break;
	case USB_EV_EP0_IN_DONE:
		on_ep0_in_done(c);
		break;
	case USB_EV_EP0_OUT:
		on_ep0_out(c, e);
		break;
	case USB_EV_IN_DONE:
		c->in_busy = 0;
		break;
	case USB_EV_OUT_DONE:
		c->rx_armed = 0;
		arm_out(c);
		break;
	default:
		break;
	}
}

static void start_in(usb_cdc *c)
{
	if (!c->configured || c->in_busy || (c->halted & HALT_IN) || (c->tx_head == c->tx_tail && !c->need_zlp))
		return;
	uint8_t pkt[USB_CDC_DATA_SIZE];
	uint32_t n = 0;
	while (n < sizeof(pkt) && c->tx_tail != c->tx_head)
		pkt[n++] = c->tx[c->tx_tail++ & (USB_CDC_TX_RING - 1u)];
	/* A transfer that ends on a full packet is closed by a ZLP. */
	c->need_zlp = n == USB_CDC_DATA_SIZE && c->tx_tail == c->tx_head;
	c->in_busy = 1;
	DCD(c, usb_dcd_in(pkt, n));
}

void usb_cdc_task(usb_cdc *c)
{
	while (c->ev_tail != c->ev_head) {
		usb_cdc_event e = c->evq[c->ev_tail % USB_CDC_EVQ];
		c->ev_tail = c->ev_tail + 1u;
		uint8_t now = c->gen;
		if (e.gen != now)
			continue; /* a bus reset came after it */
		c->gen_seen = now;
		handle(c, &e);
	}
	start_in(c);
}

uint32_t usb_cdc_rx(usb_cdc *c, uint8_t *buf, uint32_t cap)
{
	uint32_t n = 0;
	uint32_t head = c->rx_head;
	while (n < cap && c->rx_tail != head) {
		buf[n++] = c->rx[c->rx_tail & (USB_CDC_RX_RING - 1u)];
		c->rx_tail = c->rx_tail + 1u;
	}
	usb_cdc_task(c);
	arm_out(c);
	return n;
}

uint32_t usb_cdc_tx(usb_cdc *c, const uint8_t *buf, uint32_t len, uint32_t stall_ms)
{
	if (!c->configured)
		return 0; /* nobody to send to; queued bytes would be stale */
	uint32_t t0 = usb_dcd_millis();
	uint32_t i = 0;
	while (i < len) {
		if (c->tx_head - c->tx_tail < USB_CDC_TX_RING) {
			c->tx[c->tx_head++ & (USB_CDC_TX_RING - 1u)] = buf[i++];
			continue;
		}
		uint32_t tail = c->tx_tail;
		usb_cdc_task(c);
		if (c->tx_tail != tail)
			t0 = usb_dcd_millis();
		/* Host gone or not reading (port closed, process stopped): drop
		 * rather than hang; the protocol layer above retries. */
		if (!c->configured || usb_dcd_millis() - t0 > stall_ms)
			break;
	}
	usb_cdc_task(c);
	return i;
}
