/* flasher list: connected units. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "flasher.h"

static void help(FILE *out)
{
	fprintf(out, "Usage: flasher list [--json] [--all]\n\n"
	             "List connected units (USB %04x:%04x): port, VID:PID, serial number (the unit's uid,\n"
	             "which PORT arguments accept) and description.\n\n"
	             "  --all   list every USB serial port, not only flasher units\n"
	             "  --json  print one JSON document on stdout:\n"
	             "          {\"ports\":[{\"path\":...,\"vid\":\"0483\",\"pid\":\"5740\",\"serial\":...,\n"
	             "                     \"description\":...,\"bus\":N,\"address\":N},...]}\n",
	        FLASHER_USB_VID, FLASHER_USB_PID);
}

int cmd_list(int argc, char **argv)
{
	int json = 0, all = 0;
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--json"))
			json = 1;
		else if (!strcmp(argv[i], "--all"))
			all = 1;
		else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
			help(stdout);
			return CLI_EXIT_OK;
		} else
			return cli_usage_error("list", "unknown argument '%s'", argv[i]);
	}
	flasher_port_info *ports;
	size_t n;
	int rc = flasher_port_list(&ports, &n, all);
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
