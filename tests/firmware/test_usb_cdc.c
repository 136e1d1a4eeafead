/*
 * The CDC-ACM device logic (firmware/port/stm32h755/usb_cdc.c) driven with
 * event sequences as the OTG interrupt records them, against a recording
 * controller: what the stack asks of the hardware is the oracle. The fake
 * controller is as strict as the DWC2: EP0 OUT accepts a packet only while
 * armed (else the host is NAKed and retries), one EP0 IN packet and one
 * bulk IN packet at a time, bulk OUT only up to what was armed.
 */
#include <criterion/criterion.h>
#include <string.h>

#include "usb_cdc.h"

/* ---- recording controller --------------------------------------------------- */
static struct {
	bool ep0_out_armed;
	bool ep0_in_pending;
	uint8_t ep0_in[64];
	uint32_t ep0_in_len;
	bool ep0_stalled;
	bool eps_open;
	uint8_t stalled; /* bit0 0x01, bit1 0x81, bit2 0x82 */
	bool in_pending;
	uint8_t in[64];
	uint32_t in_len;
	uint32_t out_armed;
	uint32_t n_open, n_close, n_out_arm, n_abort, n_toggles, n_in, n_set_address;
	uint8_t address;
	uint32_t now_ms;
} hw;

void usb_dcd_set_address(uint8_t addr)
{
	hw.address = addr;
	hw.n_set_address++;
}
void usb_dcd_ep0_in(const uint8_t *data, uint32_t len)
{
	cr_assert(!hw.ep0_in_pending, "EP0 IN written while a packet is still in the FIFO");
	cr_assert_leq(len, 64u);
	if (len)
		memcpy(hw.ep0_in, data, len);
	hw.ep0_in_len = len;
	hw.ep0_in_pending = true;
	hw.ep0_stalled = false;
}
void usb_dcd_ep0_out(void)
{
	hw.ep0_out_armed = true;
	hw.ep0_stalled = false;
}
void usb_dcd_ep0_abort(void)
{
	hw.ep0_in_pending = false;
	hw.n_abort++;
}
void usb_dcd_ep0_stall(void)
{
	hw.ep0_stalled = true;
}
void usb_dcd_ep_open(void)
{
	hw.eps_open = true;
	hw.n_open++;
}
void usb_dcd_ep_close(void)
{
	cr_assert(hw.eps_open);
	hw.eps_open = false;
	hw.in_pending = false;
	hw.out_armed = 0;
	hw.n_close++;
}
static uint8_t halt_bit(uint8_t ep)
{
	return ep == 0x01 ? 1 : ep == 0x81 ? 2 : ep == 0x82 ? 4 : 0;
}
void usb_dcd_ep_stall(uint8_t ep_addr, bool stall)
{
	cr_assert(halt_bit(ep_addr), "stall of unknown endpoint 0x%02x", ep_addr);
	if (stall)
		hw.stalled |= halt_bit(ep_addr);
	else
		hw.stalled &= (uint8_t)~halt_bit(ep_addr);
}
void usb_dcd_ep_reset_toggles(void)
{
	hw.n_toggles++;
}
void usb_dcd_in(const uint8_t *data, uint32_t len)
{
	cr_assert(hw.eps_open, "bulk IN on a closed endpoint");
	cr_assert(!hw.in_pending, "bulk IN written while a packet is in flight");
	cr_assert_leq(len, 64u);
	memcpy(hw.in, data, len);
	hw.in_len = len;
	hw.in_pending = true;
	hw.n_in++;
}
void usb_dcd_out(uint32_t len)
{
	cr_assert(hw.eps_open, "bulk OUT armed on a closed endpoint");
	cr_assert_eq(hw.out_armed, 0u, "DOEPTSIZ rewritten while the OUT endpoint is enabled");
	cr_assert(len > 0 && len % 64 == 0);
	hw.out_armed = len;
	hw.n_out_arm++;
}
void usb_dcd_irq_off(void)
{
}
void usb_dcd_irq_on(void)
{
}
uint32_t usb_dcd_millis(void)
{
	return hw.now_ms++;
}

/* ---- the host side ---------------------------------------------------------- */
static usb_cdc dev;
static const uint8_t uid[12] = {0x00, 0x48, 0x00, 0x3A, 0x35, 0x32, 0x51, 0x0C, 1, 2, 3, 4};

static void setup_dev(void)
{
	memset(&hw, 0, sizeof(hw));
	usb_cdc_setup_state(&dev, uid);
}

static void bus_reset(void)
{
	/* What usb_otg.c's interrupt does to the hardware, then the event. */
	hw.ep0_out_armed = false;
	hw.ep0_in_pending = false;
	hw.eps_open = false;
	hw.in_pending = false;
	hw.out_armed = 0;
	hw.stalled = 0;
	hw.address = 0;
	usb_cdc_post(&dev, USB_EV_RESET, 0, 0);
}

static void send_setup(uint8_t type, uint8_t req, uint16_t value, uint16_t index, uint16_t length)
{
	uint8_t s[8] = {type, req, (uint8_t)value, (uint8_t)(value >> 8), (uint8_t)index, (uint8_t)(index >> 8),
	                (uint8_t)length, (uint8_t)(length >> 8)};
	hw.ep0_stalled = false; /* a SETUP clears the EP0 protocol stall */
	usb_cdc_post(&dev, USB_EV_SETUP, s, 8);
}

/* Host IN token on EP0: the packet the device has queued, if any. */
static bool host_ep0_in(uint8_t *out, uint32_t *len)
{
	if (!hw.ep0_in_pending)
		return false;
	if (hw.ep0_in_len)
		memcpy(out, hw.ep0_in, hw.ep0_in_len);
	*len = hw.ep0_in_len;
	hw.ep0_in_pending = false;
	usb_cdc_post(&dev, USB_EV_EP0_IN_DONE, 0, 0);
	return true;
}

/* Host OUT on EP0: accepted only while armed, else NAKed. */
static bool host_ep0_out(const uint8_t *data, uint32_t len)
{
	if (!hw.ep0_out_armed)
		return false;
	hw.ep0_out_armed = false;
	usb_cdc_post(&dev, USB_EV_EP0_OUT, data, len);
	return true;
}

/* A complete control read: returns the bytes, or -1 on a stall. The host
 * keeps sending IN tokens (the loop runs between them) until a short packet. */
static int control_in(uint8_t type, uint8_t req, uint16_t value, uint16_t index, uint16_t length,
                      uint8_t *buf)
{
	send_setup(type, req, value, index, length);
	uint32_t got = 0;
	for (int guard = 0; guard < 100; guard++) {
		usb_cdc_task(&dev);
		if (hw.ep0_stalled)
			return -1;
		uint8_t pkt[64];
		uint32_t n;
		if (!host_ep0_in(pkt, &n))
			continue;
		memcpy(buf + got, pkt, n);
		got += n;
		if (n < 64 || got == length) {
			usb_cdc_task(&dev);
			cr_assert(host_ep0_out(0, 0), "status stage OUT not armed");
			usb_cdc_task(&dev);
			return (int)got;
		}
	}
	cr_assert_fail("control read never finished");
	return -1;
}

/* A control write without data stage: 0, or -1 on a stall. */
static int control_nodata(uint8_t type, uint8_t req, uint16_t value, uint16_t index)
{
	send_setup(type, req, value, index, 0);
	usb_cdc_task(&dev);
	if (hw.ep0_stalled)
		return -1;
	uint8_t pkt[64];
	uint32_t n;
	cr_assert(host_ep0_in(pkt, &n), "no status stage");
	cr_assert_eq(n, 0u, "status stage is a ZLP");
	usb_cdc_task(&dev);
	return 0;
}

static void enumerate(void)
{
	uint8_t buf[256];
	bus_reset();
	cr_assert_eq(control_in(0x80, 6, 0x0100, 0, 64, buf), 18);
	cr_assert_eq(control_nodata(0x00, 5, 7, 0), 0);
	cr_assert_eq(hw.address, 7);
	cr_assert_eq(control_in(0x80, 6, 0x0200, 0, 255, buf), (int)USB_CONFIG_DESC_SIZE);
	cr_assert_eq(control_nodata(0x00, 9, 1, 0), 0);
	cr_assert(hw.eps_open);
	cr_assert(usb_cdc_configured(&dev));
}

TestSuite(usb_cdc, .init = setup_dev);

Test(usb_cdc, enumerates_and_arms_bulk_out_for_the_ring)
{
	enumerate();
	cr_assert_eq(hw.n_open, 1u);
	cr_assert_eq(hw.out_armed, USB_CDC_RX_RING, "OUT armed for as much as the ring holds");
	uint8_t buf[256];
	cr_assert_eq(control_in(0x80, 6, 0x0303, 0, 255, buf), 2 + 2 * 24);
	cr_assert_eq(buf[2], '0');
	cr_assert_eq(buf[4], '0');
	cr_assert_eq(buf[6], '4');
	cr_assert_eq(control_in(0x80, 8, 0, 0, 1, buf), 1);
	cr_assert_eq(buf[0], 1, "GET_CONFIGURATION after SET_CONFIGURATION(1)");
}

Test(usb_cdc, long_descriptor_is_split_and_a_full_last_packet_gets_a_zlp)
{
	enumerate();
	uint8_t buf[256];
	/* 67 bytes: 64 + 3. */
	cr_assert_eq(control_in(0x80, 6, 0x0200, 0, 255, buf), 67);
	cr_assert_eq(buf[1], 2);
	/* wLength 64 exactly: one packet, no ZLP (the host asked for 64). */
	cr_assert_eq(control_in(0x80, 6, 0x0200, 0, 64, buf), 64);
}

/* Issue 11 item 3: the 7 bytes of SET_LINE_CODING arrive before the loop
 * handled the SETUP. Nothing may be discarded and the status stage must go. */
Test(usb_cdc, set_line_coding_data_stage_queued_before_the_loop_runs)
{
	enumerate();
	static const uint8_t lc[7] = {0x00, 0x10, 0x0E, 0x00, 0, 0, 8}; /* 921600 8N1 */
	/* The previous control read left EP0 OUT armed for its status stage
	 * the host skipped; the new SETUP and its data both land first. */
	hw.ep0_out_armed = true;
	send_setup(0x21, 0x20, 0, 0, 7);
	cr_assert(host_ep0_out(lc, 7), "data stage accepted by the armed endpoint");
	usb_cdc_task(&dev); /* both events, in order */
	uint8_t pkt[64];
	uint32_t n;
	cr_assert(host_ep0_in(pkt, &n), "status stage sent");
	cr_assert_eq(n, 0u);
	usb_cdc_task(&dev);
	uint8_t buf[16];
	cr_assert_eq(control_in(0xA1, 0x21, 0, 0, 7, buf), 7);
	cr_assert_arr_eq(buf, lc, 7);
}

Test(usb_cdc, set_line_coding_data_stage_waits_for_the_arm)
{
	enumerate();
	static const uint8_t lc[7] = {0x80, 0x25, 0x00, 0x00, 0, 0, 8}; /* 9600 */
	send_setup(0x21, 0x20, 0, 0, 7);
	cr_assert_not(host_ep0_out(lc, 7), "NAKed: the SETUP is not handled yet");
	usb_cdc_task(&dev);
	cr_assert(host_ep0_out(lc, 7), "armed once the SETUP was handled");
	usb_cdc_task(&dev);
	uint8_t pkt[64];
	uint32_t n;
	cr_assert(host_ep0_in(pkt, &n));
	cr_assert_eq(n, 0u);
	usb_cdc_task(&dev);
	uint8_t buf[16];
	cr_assert_eq(control_in(0xA1, 0x21, 0, 0, 7, buf), 7);
	cr_assert_arr_eq(buf, lc, 7);
}

Test(usb_cdc, new_setup_aborts_an_ep0_in_in_flight)
{
	enumerate();
	send_setup(0x80, 6, 0x0200, 0, 255);
	usb_cdc_task(&dev);
	cr_assert(hw.ep0_in_pending, "first 64 bytes of the configuration queued");
	/* The host gives up and sends another SETUP before taking them. */
	uint8_t buf[16];
	cr_assert_eq(control_in(0x80, 0, 0, 0, 2, buf), 2);
	cr_assert_eq(hw.n_abort, 1u);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(buf[1], 0);
}

Test(usb_cdc, bus_reset_in_the_middle_of_an_in_transfer)
{
	enumerate();
	uint8_t data[200];
	for (int i = 0; i < 200; i++)
		data[i] = (uint8_t)i;
	cr_assert_eq(usb_cdc_tx(&dev, data, 200, 500), 200u);
	cr_assert(hw.in_pending, "first packet in flight");
	cr_assert_eq(hw.n_in, 1u);
	/* Events of the old session still queued when the reset comes. */
	usb_cdc_post(&dev, USB_EV_IN_DONE, 0, 0);
	send_setup(0x80, 6, 0x0100, 0, 64);
	bus_reset();
	usb_cdc_task(&dev);
	cr_assert_not(usb_cdc_configured(&dev));
	cr_assert_not(hw.ep0_in_pending, "a SETUP from before the reset is not answered");
	cr_assert_eq(hw.n_in, 1u, "nothing more of the old transfer");
	enumerate();
	usb_cdc_task(&dev);
	cr_assert_not(hw.in_pending, "the old session's bytes are dropped");
	cr_assert_eq(hw.n_open, 2u);
	uint8_t one = 0x5A;
	cr_assert_eq(usb_cdc_tx(&dev, &one, 1, 500), 1u);
	cr_assert(hw.in_pending);
	cr_assert_eq(hw.in_len, 1u);
	cr_assert_eq(hw.in[0], 0x5A);
}

Test(usb_cdc, set_configuration_twice_keeps_the_armed_out_transfer)
{
	enumerate();
	cr_assert_eq(hw.n_out_arm, 1u);
	cr_assert_eq(control_nodata(0x00, 9, 1, 0), 0); /* usb_dcd_out asserts no re-arm */
	cr_assert_eq(hw.n_open, 1u, "endpoints not reconfigured under an armed transfer");
	cr_assert_eq(hw.n_toggles, 1u, "data toggles back to DATA0");
	cr_assert_eq(hw.n_out_arm, 1u);
	cr_assert_eq(control_nodata(0x00, 9, 2, 0), -1, "no configuration 2");
}

Test(usb_cdc, set_configuration_zero_deconfigures)
{
	enumerate();
	uint8_t b = 1;
	cr_assert_eq(control_nodata(0x00, 9, 0, 0), 0);
	cr_assert_eq(hw.n_close, 1u);
	cr_assert_not(usb_cdc_configured(&dev));
	uint8_t buf[4];
	cr_assert_eq(control_in(0x80, 8, 0, 0, 1, buf), 1);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(usb_cdc_tx(&dev, &b, 1, 500), 0u, "nothing queued while not configured");
	cr_assert_eq(control_in(0x81, 10, 0, 0, 1, buf), -1, "GET_INTERFACE needs a configuration");
	/* And back. */
	cr_assert_eq(control_nodata(0x00, 9, 1, 0), 0);
	cr_assert_eq(hw.n_open, 2u);
	cr_assert_eq(hw.out_armed, USB_CDC_RX_RING);
}

Test(usb_cdc, clear_feature_halt_and_get_status)
{
	enumerate();
	uint8_t st[2];
	cr_assert_eq(control_nodata(0x02, 3, 0, 0x81), 0, "SET_FEATURE(ENDPOINT_HALT) 0x81");
	cr_assert_eq(hw.stalled, 2);
	cr_assert_eq(control_in(0x82, 0, 0, 0x81, 2, st), 2);
	cr_assert_eq(st[0], 1, "halted");
	uint8_t b = 7;
	usb_cdc_tx(&dev, &b, 1, 10);
	cr_assert_not(hw.in_pending, "nothing sent on a halted endpoint");
	cr_assert_eq(control_nodata(0x02, 1, 0, 0x81), 0, "CLEAR_FEATURE(ENDPOINT_HALT) 0x81");
	cr_assert_eq(hw.stalled, 0);
	cr_assert_eq(control_in(0x82, 0, 0, 0x81, 2, st), 2);
	cr_assert_eq(st[0], 0);
	usb_cdc_task(&dev);
	cr_assert(hw.in_pending, "queued byte goes out after the halt is cleared");
	/* OUT: a halt drops nothing and the clear re-arms when it was idle. */
	usb_cdc_rx_put(&dev, (const uint8_t *)"abc", 3);
	hw.out_armed = 0;
	usb_cdc_post(&dev, USB_EV_OUT_DONE, 0, 0);
	cr_assert_eq(control_nodata(0x02, 3, 0, 0x01), 0);
	cr_assert_eq(control_nodata(0x02, 1, 0, 0x01), 0);
	cr_assert_gt(hw.out_armed, 0u, "OUT armed again after CLEAR_FEATURE");
	cr_assert_eq(control_nodata(0x02, 1, 0, 0x05), -1, "unknown endpoint stalls");
}

Test(usb_cdc, get_interface_answers_alternate_setting_zero)
{
	enumerate();
	uint8_t buf[4] = {0xFF};
	cr_assert_eq(control_in(0x81, 10, 0, 1, 1, buf), 1);
	cr_assert_eq(buf[0], 0);
	cr_assert_eq(control_in(0x81, 10, 0, 2, 1, buf), -1, "no interface 2");
	cr_assert_eq(control_nodata(0x01, 11, 0, 1), 0, "SET_INTERFACE alt 0");
	cr_assert_eq(control_nodata(0x01, 11, 1, 1), -1, "no alt 1");
}

Test(usb_cdc, host_that_stops_reading_does_not_hang_the_writer)
{
	enumerate();
	static uint8_t big[5000];
	memset(big, 0x33, sizeof big);
	uint32_t t0 = hw.now_ms;
	uint32_t n = usb_cdc_tx(&dev, big, sizeof big, 500);
	cr_assert_lt(n, (uint32_t)sizeof big, "the host never reads: the rest is dropped");
	cr_assert_geq(n, USB_CDC_TX_RING, "the ring was filled first");
	cr_assert_geq(hw.now_ms - t0, 500u, "gave up only after the stall time");
	cr_assert_lt(hw.now_ms - t0, 5000u);
}

Test(usb_cdc, bulk_out_flow_control_by_the_ring)
{
	enumerate();
	uint8_t pkt[128];
	memset(pkt, 0xAB, sizeof pkt);
	for (uint32_t i = 0; i < USB_CDC_RX_RING / 64u; i++)
		usb_cdc_rx_put(&dev, pkt, 64);
	hw.out_armed = 0;
	usb_cdc_post(&dev, USB_EV_OUT_DONE, 0, 0);
	usb_cdc_task(&dev);
	cr_assert_eq(hw.out_armed, 0u, "ring full: the host is NAKed");
	uint8_t buf[100];
	cr_assert_eq(usb_cdc_rx(&dev, buf, sizeof buf), 100u);
	cr_assert_eq(hw.out_armed, 64u, "room for one packet again");
	usb_cdc_rx_put(&dev, pkt, sizeof pkt); /* more than armed: clipped at the ring */
	cr_assert_eq(dev.rx_head - dev.rx_tail, USB_CDC_RX_RING);
}
