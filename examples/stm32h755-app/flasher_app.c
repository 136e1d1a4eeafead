/* flasher_app.c - see flasher_app.h. */
#include "flasher_app.h"

#include "h7.h"

static flboot agent;

void flasher_app_start(void)
{
	flboot_identity id;
	h7_port.identity(0, &id);
	usb_cdc_init(id.uid);
	flboot_app_init(&agent, &h7_port);
}

void flasher_app_poll(void)
{
	usb_cdc_poll();
	flboot_app_poll(&agent);
	h7_watchdog_kick(); /* the trial's IWDG, started by the bootloader */
}

int flasher_app_confirm(void)
{
	return flboot_app_confirm(&h7_port);
}
