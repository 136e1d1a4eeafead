/*
 * usb_otg.c - USB CDC-ACM device on USB2 OTG FS (internal PHY, PA11/PA12),
 * written for this port against the DWC2 register model of RM0399.
 *
 * Split as TinyUSB's dcd layer teaches: the interrupt (usb_otg_irq, in ITCM
 * so it runs while bank 1 is busy) only moves bytes between the FIFOs and RAM
 * and sets flags; usb_cdc_poll(), called from the main loop, answers control
 * requests, configures endpoints and starts IN transfers. OUT data flows into
 * a ring; when the ring has no room for another packet the endpoint is left
 * unarmed, so the hardware NAKs the host (flow control, nothing is lost).
 */
#include <string.h>

#include "h7.h"
#include "regs.h"
#include "usb_desc.h"

#define RX_RING 2048u /* power of two */
#define TX_RING 2048u
#define OTG_GOTGCTL_BVALOEN (1u << 6)
#define OTG_GOTGCTL_BVALOVAL (1u << 7)
#define OTG_DOEPMSK_STUP (1u << 3)

/* ---- shared between interrupt and thread ------------------------------------ */
static uint8_t rx_ring[RX_RING];
static volatile uint32_t rx_head; /* written by the IRQ */
static volatile uint32_t rx_tail; /* written by the thread */
static volatile uint8_t out_paused;
static volatile uint8_t in_busy;
static volatile uint8_t ep0_in_busy;
static volatile uint8_t setup_pending;
static volatile uint8_t configured;
static uint32_t setup_words[2];
static uint8_t ep0_out_buf[USB_EP0_SIZE];
static volatile uint32_t ep0_out_len;
static volatile uint8_t ep0_out_done;

/* ---- thread only ---------------------------------------------------------------- */
static uint8_t tx_ring[TX_RING];
static uint32_t tx_head, tx_tail;
static uint8_t need_zlp;
static const uint8_t *ep0_tx_ptr;
static uint32_t ep0_tx_left;
static uint8_t ep0_tx_zlp;
static uint8_t ep0_buf[64];
static uint8_t line_coding[7] = {0x00, 0xC2, 0x01, 0x00, 0, 0, 8}; /* 115200 8N1 */
static uint8_t expect_line_coding;
static uint8_t uid_copy[FLBOOT_UID_SIZE];

static RAMFUNC void arm_ep0_out(void)
{
	OTG_DOEPTSIZ(0) = OTG_DOEPTSIZ0_STUPCNT3 | (1u << OTG_TSIZ_PKTCNT_SHIFT) | USB_EP0_SIZE;
	OTG_DOEPCTL(0) |= OTG_EPCTL_EPENA | OTG_EPCTL_CNAK;
}

static RAMFUNC void arm_data_out(void)
{
	OTG_DOEPTSIZ(USB_EP_DATA) = (1u << OTG_TSIZ_PKTCNT_SHIFT) | USB_CDC_DATA_SIZE;
	OTG_DOEPCTL(USB_EP_DATA) |= OTG_EPCTL_EPENA | OTG_EPCTL_CNAK;
}

static RAMFUNC uint32_t rx_space(void)
{
	return RX_RING - (rx_head - rx_tail);
}

static RAMFUNC void bus_reset(void)
{
	configured = 0;
	in_busy = 0;
	ep0_in_busy = 0;
	out_paused = 0;
	OTG_DCFG &= ~(0x7Fu << OTG_DCFG_DAD_SHIFT);
	for (uint32_t ep = 0; ep < 4u; ep++) {
		OTG_DIEPINT(ep) = 0xFFu;
		OTG_DOEPINT(ep) = 0xFFu;
	}
	OTG_DAINTMSK = (1u << 0) | (1u << 16);
	OTG_DOEPMSK = OTG_DOEPMSK_STUP | OTG_EPINT_XFRC;
	OTG_DIEPMSK = OTG_EPINT_XFRC;
	/* FIFO RAM in 32-bit words: RX 128, EP0 TX 16, data IN 64, notify 16. */
	OTG_GRXFSIZ = 128u;
	OTG_DIEPTXF0 = (16u << 16) | 128u;
	OTG_DIEPTXF(1) = (64u << 16) | 144u;
	OTG_DIEPTXF(2) = (16u << 16) | 208u;
	OTG_GRSTCTL = OTG_GRSTCTL_TXFFLSH | OTG_GRSTCTL_TXFNUM_ALL;
	(void)h7_poll(&OTG_GRSTCTL, OTG_GRSTCTL_TXFFLSH, 0);
	OTG_GRSTCTL = OTG_GRSTCTL_RXFFLSH;
	(void)h7_poll(&OTG_GRSTCTL, OTG_GRSTCTL_RXFFLSH, 0);
	arm_ep0_out();
}

static RAMFUNC void read_fifo_bytes(uint8_t *dst, uint32_t n)
{
	for (uint32_t i = 0; i < n; i += 4u) {
		uint32_t w = OTG_FIFO(0);
		for (uint32_t k = 0; k < 4u && i + k < n; k++)
			dst[i + k] = (uint8_t)(w >> (8u * k));
	}
}

/* The interrupt: FIFO <-> RAM and flags, nothing else. */
RAMFUNC void usb_otg_irq(void)
{
	uint32_t st = OTG_GINTSTS & OTG_GINTMSK;

	if (st & OTG_GINT_USBRST) {
		OTG_GINTSTS = OTG_GINT_USBRST;
		bus_reset();
	}
	if (st & OTG_GINT_ENUMDNE) {
		OTG_GINTSTS = OTG_GINT_ENUMDNE;
		OTG_DIEPCTL(0) &= ~3u; /* MPSIZ 0 = 64 bytes */
		OTG_DCTL |= OTG_DCTL_CGINAK;
	}
	while (OTG_GINTSTS & OTG_GINT_RXFLVL) {
		uint32_t s = OTG_GRXSTSP;
		uint32_t ep = OTG_RXSTS_EPNUM(s), n = OTG_RXSTS_BCNT(s);
		switch (OTG_RXSTS_PKTSTS(s)) {
		case OTG_PKTSTS_SETUP_DATA:
			setup_words[0] = OTG_FIFO(0);
			setup_words[1] = OTG_FIFO(0);
			break;
		case OTG_PKTSTS_OUT_DATA:
			if (ep == 0) {
				uint32_t take = n < sizeof(ep0_out_buf) ? n : sizeof(ep0_out_buf);
				read_fifo_bytes(ep0_out_buf, take);
				for (uint32_t i = (take + 3u) / 4u; i < (n + 3u) / 4u; i++)
					(void)OTG_FIFO(0);
				ep0_out_len = take;
			} else {
				/* Armed only when the ring has room for a whole packet. */
				for (uint32_t i = 0; i < n; i += 4u) {
					uint32_t w = OTG_FIFO(0);
					for (uint32_t k = 0; k < 4u && i + k < n; k++)
						rx_ring[(rx_head + i + k) & (RX_RING - 1u)] = (uint8_t)(w >> (8u * k));
				}
				rx_head += n;
			}
			break;
		default: /* transfer / setup complete markers carry no data */
			break;
		}
	}
	if (st & OTG_GINT_OEPINT) {
		uint32_t daint = OTG_DAINT >> 16;
		if (daint & 1u) {
			uint32_t i = OTG_DOEPINT(0);
			OTG_DOEPINT(0) = i;
			if (i & OTG_EPINT_STUP)
				setup_pending = 1;
			else if (i & OTG_EPINT_XFRC)
				ep0_out_done = 1;
			arm_ep0_out();
		}
		if (daint & (1u << USB_EP_DATA)) {
			uint32_t i = OTG_DOEPINT(USB_EP_DATA);
			OTG_DOEPINT(USB_EP_DATA) = i;
			if (i & OTG_EPINT_XFRC) {
				if (rx_space() >= USB_CDC_DATA_SIZE)
					arm_data_out();
				else
					out_paused = 1;
			}
		}
	}
	if (st & OTG_GINT_IEPINT) {
		uint32_t daint = OTG_DAINT & 0xFFFFu;
		if (daint & 1u) {
			uint32_t i = OTG_DIEPINT(0);
			OTG_DIEPINT(0) = i;
			if (i & OTG_EPINT_XFRC)
				ep0_in_busy = 0;
		}
		if (daint & (1u << USB_EP_DATA)) {
			uint32_t i = OTG_DIEPINT(USB_EP_DATA);
			OTG_DIEPINT(USB_EP_DATA) = i;
			if (i & OTG_EPINT_XFRC)
				in_busy = 0;
		}
	}
}

/* ---- thread side ------------------------------------------------------------------ */
static void write_fifo(uint32_t ep, const uint8_t *src, uint32_t n)
{
	OTG_DIEPTSIZ(ep) = (1u << OTG_TSIZ_PKTCNT_SHIFT) | n;
	OTG_DIEPCTL(ep) |= OTG_EPCTL_EPENA | OTG_EPCTL_CNAK;
	for (uint32_t i = 0; i < n; i += 4u) {
		uint32_t w = 0;
		for (uint32_t k = 0; k < 4u && i + k < n; k++)
			w |= (uint32_t)src[i + k] << (8u * k);
		OTG_FIFO(ep) = w;
	}
}

static void ep0_send(const uint8_t *data, uint32_t len, uint32_t wlength)
{
	if (len > wlength)
		len = wlength;
	ep0_tx_ptr = data;
	ep0_tx_left = len;
	/* A reply shorter than asked for that ends on a full packet needs a ZLP. */
	ep0_tx_zlp = len < wlength && len % USB_EP0_SIZE == 0;
	uint32_t n = len < USB_EP0_SIZE ? len : USB_EP0_SIZE;
	ep0_in_busy = 1;
	write_fifo(0, data, n);
	ep0_tx_ptr += n;
	ep0_tx_left -= n;
}

static void ep0_stall(void)
{
	OTG_DIEPCTL(0) |= OTG_EPCTL_STALL;
	OTG_DOEPCTL(0) |= OTG_EPCTL_STALL;
}

static void configure_endpoints(void)
{
	OTG_DOEPCTL(USB_EP_DATA) = OTG_EPCTL_USBAEP | (2u << OTG_EPCTL_EPTYP_SHIFT) | OTG_EPCTL_SD0PID |
	                           USB_CDC_DATA_SIZE;
	OTG_DIEPCTL(USB_EP_DATA) = OTG_EPCTL_USBAEP | (2u << OTG_EPCTL_EPTYP_SHIFT) | OTG_EPCTL_SD0PID |
	                           (1u << OTG_EPCTL_TXFNUM_SHIFT) | USB_CDC_DATA_SIZE;
	OTG_DIEPCTL(USB_EP_NOTIFY) = OTG_EPCTL_USBAEP | (3u << OTG_EPCTL_EPTYP_SHIFT) | OTG_EPCTL_SD0PID |
	                             (2u << OTG_EPCTL_TXFNUM_SHIFT) | USB_CDC_NOTIFY_SIZE;
	OTG_DAINTMSK |= (1u << USB_EP_DATA) | (1u << (16u + USB_EP_DATA));
	__asm__ volatile("cpsid i" ::: "memory");
	if (rx_space() >= USB_CDC_DATA_SIZE)
		arm_data_out();
	else
		out_paused = 1;
	configured = 1;
	__asm__ volatile("cpsie i" ::: "memory");
}

static void handle_setup(const uint8_t *s)
{
	uint8_t type = s[0], req = s[1];
	uint16_t value = (uint16_t)(s[2] | s[3] << 8);
	uint16_t length = (uint16_t)(s[6] | s[7] << 8);

	OTG_DIEPCTL(0) &= ~OTG_EPCTL_STALL;
	if (type == 0x80 && req == 6) { /* GET_DESCRIPTOR */
		uint8_t dtype = (uint8_t)(value >> 8);
		if (dtype == 1) {
			ep0_send(usb_device_desc, sizeof(usb_device_desc), length);
		} else if (dtype == 2) {
			ep0_send(usb_config_desc, sizeof(usb_config_desc), length);
		} else if (dtype == 3) {
			size_t n = usb_string_desc((uint8_t)value, uid_copy, ep0_buf, sizeof(ep0_buf));
			if (n)
				ep0_send(ep0_buf, (uint32_t)n, length);
			else
				ep0_stall();
		} else {
			ep0_stall();
		}
	} else if (type == 0x00 && req == 5) { /* SET_ADDRESS: DWC2 takes it before the status stage */
		OTG_DCFG = (OTG_DCFG & ~(0x7Fu << OTG_DCFG_DAD_SHIFT)) | ((value & 0x7Fu) << OTG_DCFG_DAD_SHIFT);
		ep0_send(0, 0, 0);
	} else if (type == 0x00 && req == 9) { /* SET_CONFIGURATION */
		if (value == 1)
			configure_endpoints();
		ep0_send(0, 0, 0);
	} else if (type == 0x80 && req == 8) { /* GET_CONFIGURATION */
		ep0_buf[0] = configured ? 1 : 0;
		ep0_send(ep0_buf, 1, length);
	} else if ((type & 0x7F) <= 0x02 && req == 0 && (type & 0x80)) { /* GET_STATUS */
		ep0_buf[0] = 0;
		ep0_buf[1] = 0;
		ep0_send(ep0_buf, 2, length);
	} else if (type == 0x21 && req == 0x20) { /* SET_LINE_CODING: data stage follows */
		expect_line_coding = 1;
	} else if (type == 0xA1 && req == 0x21) { /* GET_LINE_CODING */
		ep0_send(line_coding, sizeof(line_coding), length);
	} else if (type == 0x21 && req == 0x22) { /* SET_CONTROL_LINE_STATE */
		ep0_send(0, 0, 0);
	} else if (type == 0x01 && req == 11) { /* SET_INTERFACE (alt 0 only) */
		ep0_send(0, 0, 0);
	} else {
		ep0_stall();
	}
}

void usb_cdc_poll(void)
{
	if (setup_pending) {
		uint8_t s[8];
		__asm__ volatile("cpsid i" ::: "memory");
		setup_pending = 0;
		ep0_out_done = 0;
		memcpy(s, setup_words, sizeof(s));
		__asm__ volatile("cpsie i" ::: "memory");
		expect_line_coding = 0;
		handle_setup(s);
	}
	if (ep0_out_done) {
		ep0_out_done = 0;
		if (expect_line_coding && ep0_out_len >= sizeof(line_coding)) {
			memcpy(line_coding, ep0_out_buf, sizeof(line_coding));
			expect_line_coding = 0;
			ep0_send(0, 0, 0);
		}
	}
	if (!ep0_in_busy && (ep0_tx_left || ep0_tx_zlp)) {
		uint32_t n = ep0_tx_left < USB_EP0_SIZE ? ep0_tx_left : USB_EP0_SIZE;
		if (n == 0)
			ep0_tx_zlp = 0;
		ep0_in_busy = 1;
		write_fifo(0, ep0_tx_ptr, n);
		ep0_tx_ptr += n;
		ep0_tx_left -= n;
	}
	if (configured && !in_busy && (tx_head != tx_tail || need_zlp)) {
		uint8_t pkt[USB_CDC_DATA_SIZE];
		uint32_t n = 0;
		while (n < sizeof(pkt) && tx_tail != tx_head)
			pkt[n++] = tx_ring[tx_tail++ & (TX_RING - 1u)];
		need_zlp = n == USB_CDC_DATA_SIZE && tx_tail == tx_head;
		in_busy = 1;
		write_fifo(USB_EP_DATA, pkt, n);
	}
}

uint32_t usb_cdc_read(uint8_t *buf, uint32_t cap)
{
	uint32_t n = 0;
	uint32_t head = rx_head;
	while (n < cap && rx_tail != head) {
		buf[n++] = rx_ring[rx_tail & (RX_RING - 1u)];
		rx_tail = rx_tail + 1u;
	}
	if (out_paused && rx_space() >= USB_CDC_DATA_SIZE) {
		__asm__ volatile("cpsid i" ::: "memory");
		out_paused = 0;
		if (configured)
			arm_data_out();
		__asm__ volatile("cpsie i" ::: "memory");
	}
	usb_cdc_poll();
	return n;
}

void usb_cdc_write(const uint8_t *buf, uint32_t len)
{
	uint32_t t0 = h7_millis();
	for (uint32_t i = 0; i < len; i++) {
		while (tx_head - tx_tail >= TX_RING) {
			uint32_t tail = tx_tail;
			usb_cdc_poll();
			if (tx_tail != tail)
				t0 = h7_millis();
			/* Host gone, or not reading (port closed, process stopped):
			 * drop rather than hang the bootloader; the host's protocol
			 * layer retries what it missed. */
			if (!configured || h7_millis() - t0 > H7_USB_WRITE_STALL_MS)
				return;
		}
		tx_ring[tx_head++ & (TX_RING - 1u)] = buf[i];
	}
	usb_cdc_poll();
}

bool usb_cdc_init(const uint8_t uid[FLBOOT_UID_SIZE])
{
	memcpy(uid_copy, uid, sizeof(uid_copy));
	RCC_C1_AHB4ENR |= RCC_AHB4_GPIOA;
	(void)RCC_C1_AHB4ENR;
	/* PA11 (DM), PA12 (DP): alternate function 10, very high speed. */
	GPIO_MODER(GPIOA) = (GPIO_MODER(GPIOA) & ~(0xFu << 22)) | (0xAu << 22);
	GPIO_OSPEEDR(GPIOA) |= 0xFu << 22;
	GPIO_AFRH(GPIOA) = (GPIO_AFRH(GPIOA) & ~0xFF000u) | (10u << 12) | (10u << 16);

	PWR_CR3 |= PWR_CR3_USB33DEN;
	if (!h7_poll(&PWR_CR3, PWR_CR3_USB33RDY, PWR_CR3_USB33RDY))
		return false;
	if (!h7_usb_clock_init())
		return false;
	RCC_C1_AHB1ENR |= RCC_AHB1_USB2OTGFS;
	(void)RCC_C1_AHB1ENR;

	OTG_GUSBCFG |= OTG_GUSBCFG_PHYSEL;
	if (!h7_poll(&OTG_GRSTCTL, OTG_GRSTCTL_AHBIDL, OTG_GRSTCTL_AHBIDL))
		return false;
	OTG_GRSTCTL = OTG_GRSTCTL_CSRST;
	if (!h7_poll(&OTG_GRSTCTL, OTG_GRSTCTL_CSRST, 0))
		return false;
	/* No VBUS sensing on this board: force the B-session valid. */
	OTG_GCCFG = OTG_GCCFG_PWRDWN;
	OTG_GOTGCTL |= OTG_GOTGCTL_BVALOEN | OTG_GOTGCTL_BVALOVAL;
	OTG_GUSBCFG = OTG_GUSBCFG_FDMOD | OTG_GUSBCFG_TRDT(6) | OTG_GUSBCFG_PHYSEL;
	uint32_t t0 = h7_millis();
	while (h7_millis() - t0 < 30u) /* forced device mode takes up to 25 ms */
		;
	OTG_PCGCCTL = 0;
	OTG_DCTL |= OTG_DCTL_SDIS;
	OTG_DCFG = OTG_DCFG_DSPD_FS;
	OTG_GINTSTS = 0xFFFFFFFFu;
	OTG_GINTMSK = OTG_GINT_USBRST | OTG_GINT_ENUMDNE | OTG_GINT_RXFLVL | OTG_GINT_IEPINT |
	              OTG_GINT_OEPINT;
	OTG_GAHBCFG = OTG_GAHBCFG_GINTMSK;
	NVIC_ISER(OTG_FS_IRQN / 32u) = 1u << (OTG_FS_IRQN % 32u);
	OTG_DCTL &= ~OTG_DCTL_SDIS; /* connect: pull-up on DP */
	return true;
}

void usb_cdc_deinit(void)
{
	/* On a normal boot USB was never started: its clock is gated, and a
	 * read-modify-write of a gated core's register is undefined. */
	if (!(RCC_C1_AHB1ENR & RCC_AHB1_USB2OTGFS))
		return;
	OTG_DCTL |= OTG_DCTL_SDIS;
	NVIC_ICER(OTG_FS_IRQN / 32u) = 1u << (OTG_FS_IRQN % 32u);
	RCC_AHB1RSTR |= RCC_AHB1_USB2OTGFS;
	RCC_AHB1RSTR &= ~RCC_AHB1_USB2OTGFS;
	RCC_C1_AHB1ENR &= ~RCC_AHB1_USB2OTGFS;
	NVIC_ICPR(OTG_FS_IRQN / 32u) = 1u << (OTG_FS_IRQN % 32u);
	configured = 0;
}
