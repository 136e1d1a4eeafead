/* Unit discovery through libserialport's port enumeration. */
#include <libserialport.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef __linux__
#include <dirent.h>
#include <unistd.h>
#endif

#include "error_internal.h"
#include "flasher/discovery.h"

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

#ifdef __linux__
/* The ports under /sys/class/tty that have a device behind them, as a
 * NULL-terminated list for sp_free_port_list(). libserialport 0.1.1's own
 * enumeration breaks when a port vanishes while it lists (an unplug during
 * a rescan): it returns SP_OK with a NULL list, or crashes on the next
 * port. Here a port that is gone by the time it is looked up is skipped. */
static int list_tty_ports(struct sp_port ***out)
{
	DIR *dir = opendir("/sys/class/tty");
	if (!dir)
		return -1;
	size_t n = 0, cap = 16;
	struct sp_port **list = calloc(cap, sizeof *list);
	struct dirent *e;
	while (list && (e = readdir(dir))) {
		if (e->d_name[0] == '.')
			continue;
		char path[300];
		snprintf(path, sizeof path, "/sys/class/tty/%s/device", e->d_name);
		if (access(path, F_OK) != 0)
			continue; /* virtual terminal, pty: no device */
		snprintf(path, sizeof path, "/dev/%s", e->d_name);
		struct sp_port *p = NULL;
		if (sp_get_port_by_name(path, &p) != SP_OK)
			continue;
		if (n + 1 == cap) {
			struct sp_port **nl = realloc(list, 2 * cap * sizeof *list);
			if (!nl) {
				sp_free_port(p);
				break;
			}
			list = nl;
			cap *= 2;
		}
		list[n++] = p;
		list[n] = NULL;
	}
	closedir(dir);
	if (!list)
		return -1;
	*out = list;
	return 0;
}
#endif

static int hex_digit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
}

int flasher_usb_id_parse(const char *text, flasher_usb_id *out)
{
	const char *p = text ? text : "";
	unsigned v[2] = {0, 0};
	for (int i = 0; i < 2; i++) {
		int digits = 0;
		for (; hex_digit(*p) >= 0 && digits < 5; p++, digits++)
			v[i] = v[i] * 16 + (unsigned)hex_digit(*p);
		if (digits < 1 || digits > 4 || *p != (i ? '\0' : ':'))
			return flasher__error(FLASHER_EINVAL, "USB id '%s': expected VID:PID in hex (e.g. 0483:5740)",
			                      text ? text : "");
		p++;
	}
	if (out) {
		out->vid = (uint16_t)v[0];
		out->pid = (uint16_t)v[1];
	}
	return 0;
}

/* Does a port with these ids count as a unit under opts? */
static int ids_match(const flasher_discovery_options *opts, int vid, int pid)
{
	if (opts->all)
		return 1;
	if (!opts->usb_ids || !opts->usb_id_count)
		return vid == FLASHER_USB_VID && pid == FLASHER_USB_PID;
	for (size_t i = 0; i < opts->usb_id_count; i++)
		if (opts->usb_ids[i].vid == vid && opts->usb_ids[i].pid == pid)
			return 1;
	return 0;
}

static int check_options(const flasher_discovery_options *opts)
{
	if (opts->version < 1 || opts->version > FLASHER_DISCOVERY_OPTIONS_VERSION)
		return flasher__error(FLASHER_EINVAL, "discovery options: version %u unknown (this library knows %d)",
		                      opts->version, FLASHER_DISCOVERY_OPTIONS_VERSION);
	if (opts->usb_id_count > FLASHER_MAX_USB_IDS || (opts->usb_id_count && !opts->usb_ids))
		return flasher__error(FLASHER_EINVAL, "discovery options: %zu USB ids (at most %d, and a list for them)",
		                      opts->usb_id_count, FLASHER_MAX_USB_IDS);
	return 0;
}

int flasher_port_list(flasher_port_info **out, size_t *count, int all)
{
	flasher_discovery_options o = FLASHER_DISCOVERY_OPTIONS_INIT;
	o.all = all;
	return flasher_port_list_with(&o, out, count);
}

int flasher_port_list_with(const flasher_discovery_options *opts, flasher_port_info **out, size_t *count)
{
	flasher_discovery_options def = FLASHER_DISCOVERY_OPTIONS_INIT;
	if (!opts)
		opts = &def;
	int rc = check_options(opts);
	if (rc)
		return rc;
	if (!out || !count)
		return flasher__error(FLASHER_EINVAL, "port list: NULL out or count");
	*out = NULL;
	*count = 0;
	struct sp_port **ports = NULL;
#ifdef __linux__
	if (list_tty_ports(&ports) != 0)
		return flasher__error(FLASHER_EIO, "cannot enumerate serial ports: /sys/class/tty unreadable or out of memory");
#else
	if (sp_list_ports(&ports) != SP_OK || !ports) {
		char *msg = sp_last_error_message();
		rc = flasher__error(FLASHER_EIO, "cannot enumerate serial ports: %s", msg ? msg : "error");
		sp_free_error_message(msg);
		return rc;
	}
#endif
	size_t n = 0;
	while (ports[n])
		n++;
	flasher_port_info *list = calloc(n ? n : 1, sizeof *list);
	if (!list) {
		sp_free_port_list(ports);
		return flasher__error(FLASHER_ENOMEM, "port list: out of memory");
	}
	size_t k = 0;
	for (size_t i = 0; i < n; i++) {
		struct sp_port *p = ports[i];
		if (sp_get_port_transport(p) != SP_TRANSPORT_USB)
			continue;
		int vid = 0, pid = 0;
		if (sp_get_port_usb_vid_pid(p, &vid, &pid) != SP_OK)
			continue;
		if (!ids_match(opts, vid, pid))
			continue;
		flasher_port_info *e = &list[k++];
		copy(e->path, sizeof e->path, sp_get_port_name(p));
		e->vid = (uint16_t)vid;
		e->pid = (uint16_t)pid;
		copy(e->serial, sizeof e->serial, sp_get_port_usb_serial(p));
		const char *d = sp_get_port_description(p);
		if (!d || !*d)
			d = sp_get_port_usb_product(p);
		copy(e->description, sizeof e->description, d);
		if (sp_get_port_usb_bus_address(p, &e->bus, &e->address) != SP_OK)
			e->bus = e->address = -1;
	}
	sp_free_port_list(ports);
	/* Stable order for scripts: by path, with ttyACM10 after ttyACM9. */
	for (size_t i = 1; i < k; i++)
		for (size_t j = i; j > 0; j--) {
			flasher_port_info *a = &list[j - 1], *b = &list[j];
			size_t la = strlen(a->path), lb = strlen(b->path);
			if (la < lb || (la == lb && strcmp(a->path, b->path) <= 0))
				break;
			flasher_port_info t = *a;
			*a = *b;
			*b = t;
		}
	*out = list;
	*count = k;
	return 0;
}

void flasher_port_list_free(flasher_port_info *list)
{
	free(list);
}

int flasher_port_find(const char *serial, char *path_out, size_t path_size)
{
	return flasher_port_find_with(NULL, serial, path_out, path_size);
}

int flasher_port_find_with(const flasher_discovery_options *opts, const char *serial, char *path_out,
                           size_t path_size)
{
	if (!serial || !*serial || !path_out || !path_size)
		return flasher__error(FLASHER_EINVAL, "port find: empty serial number or output buffer");
	flasher_port_info *list;
	size_t n;
	flasher_discovery_options units_only = FLASHER_DISCOVERY_OPTIONS_INIT;
	if (opts) {
		units_only = *opts;
		units_only.all = 0;
	}
	int rc = flasher_port_list_with(&units_only, &list, &n);
	if (rc < 0)
		return rc;
	int found = -1;
	for (size_t i = 0; i < n; i++) {
		/* Full match only: truncated ids have put firmware on the wrong unit. */
		if (strcmp(list[i].serial, serial) != 0)
			continue;
		if (found >= 0) {
			rc = flasher__error(FLASHER_EBUSY, "two ports report serial number '%s': %s and %s", serial,
			                    list[found].path, list[i].path);
			flasher_port_list_free(list);
			return rc;
		}
		found = (int)i;
	}
	if (found < 0) {
		rc = flasher__error(FLASHER_ENOTFOUND, "no unit with serial number '%s' among %zu connected unit(s)",
		                    serial, n);
	} else if (strlen(list[found].path) >= path_size) {
		rc = flasher__error(FLASHER_EINVAL, "port path '%s' does not fit in %zu bytes", list[found].path,
		                    path_size);
	} else {
		memcpy(path_out, list[found].path, strlen(list[found].path) + 1);
		rc = 0;
	}
	flasher_port_list_free(list);
	return rc;
}
