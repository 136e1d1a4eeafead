/* flasher list: connected units. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "flasher.h"

int cmd_list(int argc, char **argv)
{
	int json = 0, all = 0;
	cli_list usb = {0};
	const cli_opt opts[] = {
	        CLI_OPT_FLAG("all", 0, &all, "list every USB serial port, not only flasher units"),
	        CLI_OPT_LIST("usb", &usb, "VID:PID", FLASHER_MAX_USB_IDS,
	                     "USB ids of the units (hex, as lsusb prints them;\n"
	                     "default 0483:5740); repeatable, up to 8"),
	        CLI_OPT_FLAG("json", 0, &json,
	                     "print one JSON object on stdout:\n"
	                     "{\"ports\":[{\"path\",\"vid\",\"pid\",\"serial\",\"description\",\n"
	                     "  \"bus\",\"address\"},...]}"),
	        CLI_END,
	};
	const cli_spec spec = {"list", "", 0, 0, "List connected units.",
	                       "Lists the connected units (USB 0483:5740, or the ids given with --usb): port,\n"
	                       "VID:PID, serial number (the unit's uid, which PORT arguments accept) and\n"
	                       "description.\n",
	                       opts, NULL};
	const char *pos[1];
	int npos;
	int rc = cli_parse(&spec, argc, argv, pos, &npos);
	if (rc)
		return rc == CLI_PARSED_HELP ? CLI_EXIT_OK : rc;
	flasher_usb_id ids[FLASHER_MAX_USB_IDS];
	flasher_discovery_options dopt = FLASHER_DISCOVERY_OPTIONS_INIT;
	for (int i = 0; i < usb.n; i++)
		if (flasher_usb_id_parse(usb.v[i], &ids[i])) {
			free(usb.v);
			return cli_usage_error("list", "--usb: %s", flasher_error_last());
		}
	dopt.usb_ids = ids;
	dopt.usb_id_count = (size_t)usb.n;
	dopt.all = all;
	free(usb.v);
	flasher_port_info *ports;
	size_t n;
	rc = flasher_port_list_with(&dopt, &ports, &n);
	if (rc < 0)
		return cli_fail(rc, "list");
	if (json) {
		cJSON *root = cJSON_CreateObject(), *arr = cJSON_AddArrayToObject(root, "ports");
		for (size_t i = 0; i < n; i++) {
			char id[8];
			cJSON *o = cJSON_CreateObject();
			cJSON_AddStringToObject(o, "path", ports[i].path);
			snprintf(id, sizeof id, "%04x", ports[i].vid);
			cJSON_AddStringToObject(o, "vid", id);
			snprintf(id, sizeof id, "%04x", ports[i].pid);
			cJSON_AddStringToObject(o, "pid", id);
			cJSON_AddStringToObject(o, "serial", ports[i].serial);
			cJSON_AddStringToObject(o, "description", ports[i].description);
			cJSON_AddNumberToObject(o, "bus", ports[i].bus);
			cJSON_AddNumberToObject(o, "address", ports[i].address);
			cJSON_AddItemToArray(arr, o);
		}
		char *s = cJSON_PrintUnformatted(root);
		if (s)
			printf("%s\n", s);
		cJSON_free(s);
		cJSON_Delete(root);
	} else if (n == 0) {
		fprintf(stderr, "no units found%s\n", all ? "" : " (try --all for every USB serial port)");
	} else {
		printf("%-16s %-9s %-26s %s\n", "PORT", "VID:PID", "SERIAL", "DESCRIPTION");
		for (size_t i = 0; i < n; i++)
			printf("%-16s %04x:%04x %-26s %s\n", ports[i].path, ports[i].vid, ports[i].pid,
			       ports[i].serial[0] ? ports[i].serial : "-", ports[i].description);
	}
	flasher_port_list_free(ports);
	return CLI_EXIT_OK;
}
