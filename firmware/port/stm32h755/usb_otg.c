/*
 * usb_otg.c - the controller driver under usb_cdc.c: USB2 OTG FS (Synopsys
 * DWC2, internal PHY, PA11/PA12), slave mode, written for this port against
 * the DWC2 register model of RM0399.
 *
 * Split as TinyUSB's dcd layer: the interrupt (usb_otg_irq, in ITCM so it
 * runs while bank 1 is busy) drains the RX FIFO, puts bulk OUT bytes into
 * the stack's ring, does the hardware part of a bus reset, and records
 * events (usb_cdc_post). It arms nothing and answers nothing: the stack,
 * in thread context (usb_cdc_poll from the main loop), handles the events
 * in order and calls the usb_dcd_* functions below. So a data stage is
 * armed only after its SETUP was handled, and never discarded.
 */
#include "h7.h"
#include "regs.h"
#include "usb_cdc.h"

#define OTG_GOTGCTL_BVALOEN (1u << 6)
#define OTG_GOTGCTL_BVALOVAL (1u << 7)
#define OTG_DOEPMSK_STUP (1u << 3)
#define OTG_EPINT_EPDISD (1u << 1)
#define OTG_PKTSTS_SETUP_DONE 4u
#define OTG_IRQ_BIT (1u << (OTG_FS_IRQN % 32u))
#define RXFLVL_MAX 16u /* FIFO entries handled per interrupt (bounded) */

/* In DTCM (.bss): the interrupt touches only it and registers. */
static usb_cdc cdc;
static uint8_t setup_pkt[8];
static uint8_t ep0_rx[USB_EP0_SIZE];
static uint32_t ep0_rx_len;

/* ---- interrupt ---------------------------------------------------------------- */
static RAMFUNC void read_fifo(uint8_t *dst, uint32_t n)
{
	for (uint32_t i = 0; i < n; i += 4u) {
		uint32_t w = OTG_FIFO(0);
		for (uint32_t k = 0; k < 4u && i + k < n; k++)
			dst[i + k] = (uint8_t)(w >> (8u * k));
	}
}

static RAMFUNC void flush_tx(uint32_t fifo)
{
	OTG_GRSTCTL = OTG_GRSTCTL_TXFFLSH | (fifo << 6);
	(void)h7_poll(&OTG_GRSTCTL, OTG_GRSTCTL_TXFFLSH, 0);
}

static RAMFUNC void ep0_setup_ready(void)
{
	/* Room for 3 back-to-back SETUPs; the thread arms data/status stages. */
	OTG_DOEPTSIZ(0) = OTG_DOEPTSIZ0_STUPCNT3 | (1u << OTG_TSIZ_PKTCNT_SHIFT) | USB_EP0_SIZE;
}

/* The hardware part of a bus reset (the stack resets its state when it
 * sees the event): every OUT endpoint NAKs, active IN endpoints are
 * disabled, FIFOs flushed, address 0, only EP0 interrupts. */
static RAMFUNC void hw_bus_reset(void)
{
	for (uint32_t ep = 0; ep < 4u; ep++) {
		OTG_DOEPCTL(ep) |= OTG_EPCTL_SNAK;
		if (OTG_DIEPCTL(ep) & OTG_EPCTL_EPENA)
			OTG_DIEPCTL(ep) |= OTG_EPCTL_EPDIS | OTG_EPCTL_SNAK;
		if (ep)
			OTG_DIEPCTL(ep) &= ~OTG_EPCTL_USBAEP;
		if (ep)
			OTG_DOEPCTL(ep) &= ~OTG_EPCTL_USBAEP;
		OTG_DIEPINT(ep) = 0xFFu;
		OTG_DOEPINT(ep) = 0xFFu;
	}
	OTG_DCFG &= ~(0x7Fu << OTG_DCFG_DAD_SHIFT);
	OTG_DAINTMSK = (1u << 0) | (1u << 16);
	OTG_DOEPMSK = OTG_DOEPMSK_STUP | OTG_EPINT_XFRC;
	OTG_DIEPMSK = OTG_EPINT_XFRC;
	/* FIFO RAM in 32-bit words: RX 128, EP0 TX 16, data IN 64, notify 16. */
	OTG_GRXFSIZ = 128u;
	OTG_DIEPTXF0 = (16u << 16) | 128u;
	OTG_DIEPTXF(1) = (64u << 16) | 144u;
	OTG_DIEPTXF(2) = (16u << 16) | 208u;
	flush_tx(0x10u);
	OTG_GRSTCTL = OTG_GRSTCTL_RXFFLSH;
	(void)h7_poll(&OTG_GRSTCTL, OTG_GRSTCTL_RXFFLSH, 0);
	ep0_setup_ready();
}

RAMFUNC void usb_otg_irq(void)
{
	uint32_t st = OTG_GINTSTS & OTG_GINTMSK;

	if (st & OTG_GINT_USBRST) {
		OTG_GINTSTS = OTG_GINT_USBRST;
		hw_bus_reset();
		usb_cdc_post(&cdc, USB_EV_RESET, 0, 0);
	}
	if (st & OTG_GINT_ENUMDNE) {
		OTG_GINTSTS = OTG_GINT_ENUMDNE;
		OTG_DIEPCTL(0) &= ~3u; /* MPSIZ 0 = 64 bytes */
		OTG_DCTL |= OTG_DCTL_CGINAK;
	}
	for (uint32_t k = 0; k < RXFLVL_MAX && (OTG_GINTSTS & OTG_GINT_RXFLVL); k++) {
		uint32_t s = OTG_GRXSTSP;
		uint32_t ep = OTG_RXSTS_EPNUM(s), n = OTG_RXSTS_BCNT(s);
		uint8_t pkt[USB_CDC_DATA_SIZE];
		switch (OTG_RXSTS_PKTSTS(s)) {
		case OTG_PKTSTS_SETUP_DATA: /* the last of back-to-back SETUPs wins */
			read_fifo(setup_pkt, 8u);
			break;
		case OTG_PKTSTS_OUT_DATA: {
			uint32_t take = n < sizeof(pkt) ? n : sizeof(pkt);
			read_fifo(ep == 0 ? ep0_rx : pkt, take);
			for (uint32_t i = (take + 3u) / 4u; i < (n + 3u) / 4u; i++)
				(void)OTG_FIFO(0);
			if (ep == 0)
				ep0_rx_len = take;
			else if (ep == USB_EP_DATA)
				usb_cdc_rx_put(&cdc, pkt, take);
			break;
		}
		default: /* transfer / setup complete markers carry no data */
			break;
		}
	}
	if (st & OTG_GINT_OEPINT) {
		uint32_t daint = OTG_DAINT >> 16;
		if (daint & 1u) {
			uint32_t i = OTG_DOEPINT(0);
			OTG_DOEPINT(0) = i;
			/* A data packet that completed before a new SETUP came first. */
			if (i & OTG_EPINT_XFRC)
				usb_cdc_post(&cdc, USB_EV_EP0_OUT, ep0_rx, ep0_rx_len);
			if (i & OTG_EPINT_STUP) {
				usb_cdc_post(&cdc, USB_EV_SETUP, setup_pkt, 8u);
				OTG_DOEPTSIZ(0) |= OTG_DOEPTSIZ0_STUPCNT3;
			}
		}
		if (daint & (1u << USB_EP_DATA)) {
			uint32_t i = OTG_DOEPINT(USB_EP_DATA);
			OTG_DOEPINT(USB_EP_DATA) = i;
			if (i & OTG_EPINT_XFRC)
				usb_cdc_post(&cdc, USB_EV_OUT_DONE, 0, 0);
		}
	}
	if (st & OTG_GINT_IEPINT) {
		uint32_t daint = OTG_DAINT & 0xFFFFu;
		if (daint & 1u) {
			uint32_t i = OTG_DIEPINT(0);
			OTG_DIEPINT(0) = i;
			if (i & OTG_EPINT_XFRC)
				usb_cdc_post(&cdc, USB_EV_EP0_IN_DONE, 0, 0);
		}
		if (daint & (1u << USB_EP_DATA)) {
			uint32_t i = OTG_DIEPINT(USB_EP_DATA);
			OTG_DIEPINT(USB_EP_DATA) = i;
			if (i & OTG_EPINT_XFRC)
				usb_cdc_post(&cdc, USB_EV_IN_DONE, 0, 0);
		}
	}
}

/* ---- what usb_cdc.c asks for (thread context) ------------------------------------ */
void usb_dcd_irq_off(void)
{
	NVIC_ICER(OTG_FS_IRQN / 32u) = OTG_IRQ_BIT;
	dsb();
	isb();
}

void usb_dcd_irq_on(void)
{
	NVIC_ISER(OTG_FS_IRQN / 32u) = OTG_IRQ_BIT;
}

uint32_t usb_dcd_millis(void)
{
	return h7_millis();
}

static void write_fifo(uint32_t ep, const uint8_t *src, uint32_t n)
{
	OTG_DIEPTSIZ(ep) = (1u << OTG_TSIZ_PKTCNT_SHIFT) | n;
	OTG_DIEPCTL(ep) = (OTG_DIEPCTL(ep) & ~OTG_EPCTL_STALL) | OTG_EPCTL_EPENA | OTG_EPCTL_CNAK;
	for (uint32_t i = 0; i < n; i += 4u) {
		uint32_t w = 0;
		for (uint32_t k = 0; k < 4u && i + k < n; k++)
			w |= (uint32_t)src[i + k] << (8u * k);
		OTG_FIFO(ep) = w;
	}
}

void usb_dcd_set_address(uint8_t addr)
{
	OTG_DCFG = (OTG_DCFG & ~(0x7Fu << OTG_DCFG_DAD_SHIFT)) | ((uint32_t)(addr & 0x7Fu) << OTG_DCFG_DAD_SHIFT);
}

void usb_dcd_ep0_in(const uint8_t *data, uint32_t len)
{
	write_fifo(0, data, len);
}

void usb_dcd_ep0_out(void)
{
	if (OTG_DOEPCTL(0) & OTG_EPCTL_EPENA)
		return;
	ep0_setup_ready();
	OTG_DOEPCTL(0) = (OTG_DOEPCTL(0) & ~OTG_EPCTL_STALL) | OTG_EPCTL_EPENA | OTG_EPCTL_CNAK;
}

/* Disable an enabled IN endpoint (bounded wait for EPDISD) and flush its FIFO. */
static void in_disable(uint32_t ep)
{
	if (OTG_DIEPCTL(ep) & OTG_EPCTL_EPENA) {
		OTG_DIEPCTL(ep) |= OTG_EPCTL_EPDIS | OTG_EPCTL_SNAK;
		(void)h7_poll(&OTG_DIEPINT(ep), OTG_EPINT_EPDISD, OTG_EPINT_EPDISD);
		OTG_DIEPINT(ep) = OTG_EPINT_EPDISD;
	}
	flush_tx(ep);
}

void usb_dcd_ep0_abort(void)
{
	in_disable(0);
}

void usb_dcd_ep0_stall(void)
{
	OTG_DIEPCTL(0) |= OTG_EPCTL_STALL;
	OTG_DOEPCTL(0) |= OTG_EPCTL_STALL;
}

void usb_dcd_ep_open(void)
{
	OTG_DOEPCTL(USB_EP_DATA) = OTG_EPCTL_USBAEP | (2u << OTG_EPCTL_EPTYP_SHIFT) | OTG_EPCTL_SD0PID |
	                           OTG_EPCTL_SNAK | USB_CDC_DATA_SIZE;
	OTG_DIEPCTL(USB_EP_DATA) = OTG_EPCTL_USBAEP | (2u << OTG_EPCTL_EPTYP_SHIFT) | OTG_EPCTL_SD0PID |
	                           (1u << OTG_EPCTL_TXFNUM_SHIFT) | USB_CDC_DATA_SIZE;
	OTG_DIEPCTL(USB_EP_NOTIFY) = OTG_EPCTL_USBAEP | (3u << OTG_EPCTL_EPTYP_SHIFT) | OTG_EPCTL_SD0PID |
	                             (2u << OTG_EPCTL_TXFNUM_SHIFT) | USB_CDC_NOTIFY_SIZE;
	OTG_DAINTMSK |= (1u << USB_EP_DATA) | (1u << (16u + USB_EP_DATA));
}

void usb_dcd_ep_close(void)
{
	OTG_DAINTMSK &= ~((1u << USB_EP_DATA) | (1u << (16u + USB_EP_DATA)));
	OTG_DOEPCTL(USB_EP_DATA) |= OTG_EPCTL_SNAK;
	if (OTG_DOEPCTL(USB_EP_DATA) & OTG_EPCTL_EPENA)
		OTG_DOEPCTL(USB_EP_DATA) |= OTG_EPCTL_EPDIS;
	OTG_DOEPCTL(USB_EP_DATA) &= ~OTG_EPCTL_USBAEP;
	in_disable(USB_EP_DATA);
	in_disable(USB_EP_NOTIFY);
	OTG_DIEPCTL(USB_EP_DATA) &= ~OTG_EPCTL_USBAEP;
	OTG_DIEPCTL(USB_EP_NOTIFY) &= ~OTG_EPCTL_USBAEP;
}

void usb_dcd_ep_stall(uint8_t ep_addr, bool stall)
{
	uint32_t ep = ep_addr & 0x7Fu;
	if (ep_addr & 0x80u) {
		if (stall) {
			in_disable(ep);
			OTG_DIEPCTL(ep) |= OTG_EPCTL_STALL;
		} else {
			OTG_DIEPCTL(ep) = (OTG_DIEPCTL(ep) & ~OTG_EPCTL_STALL) | OTG_EPCTL_SD0PID;
		}
	} else {
		if (stall)
			OTG_DOEPCTL(ep) |= OTG_EPCTL_STALL;
		else
			OTG_DOEPCTL(ep) = (OTG_DOEPCTL(ep) & ~OTG_EPCTL_STALL) | OTG_EPCTL_SD0PID;
	}
}

void usb_dcd_ep_reset_toggles(void)
{
	OTG_DIEPCTL(USB_EP_DATA) |= OTG_EPCTL_SD0PID;
	OTG_DOEPCTL(USB_EP_DATA) |= OTG_EPCTL_SD0PID;
}

void usb_dcd_in(const uint8_t *data, uint32_t len)
{
	write_fifo(USB_EP_DATA, data, len);
}

void usb_dcd_out(uint32_t len)
{
	OTG_DOEPTSIZ(USB_EP_DATA) = ((len / USB_CDC_DATA_SIZE) << OTG_TSIZ_PKTCNT_SHIFT) | len;
	OTG_DOEPCTL(USB_EP_DATA) |= OTG_EPCTL_EPENA | OTG_EPCTL_CNAK;
}

/* ---- the h7.h interface ------------------------------------------------------------ */
void usb_cdc_poll(void)
{
	usb_cdc_task(&cdc);
}

uint32_t usb_cdc_read(uint8_t *buf, uint32_t cap)
{
	return usb_cdc_rx(&cdc, buf, cap);
}

void usb_cdc_write(const uint8_t *buf, uint32_t len)
{
	(void)usb_cdc_tx(&cdc, buf, len, H7_USB_WRITE_STALL_MS);
}

bool usb_cdc_init(const uint8_t uid[FLBOOT_UID_SIZE])
{
	usb_cdc_setup_state(&cdc, uid);
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
	NVIC_ISER(OTG_FS_IRQN / 32u) = OTG_IRQ_BIT;
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
	NVIC_ICER(OTG_FS_IRQN / 32u) = OTG_IRQ_BIT;
	RCC_AHB1RSTR |= RCC_AHB1_USB2OTGFS;
	RCC_AHB1RSTR &= ~RCC_AHB1_USB2OTGFS;
	RCC_C1_AHB1ENR &= ~RCC_AHB1_USB2OTGFS;
	NVIC_ICPR(OTG_FS_IRQN / 32u) = OTG_IRQ_BIT;
}
