/* flasher: command-line front end of libflasher. Human output goes to
 * stdout/stderr; with --json a command prints JSON only on stdout, one
 * object per line (docs/flasher-output.schema.json). */
#include <cjson/cJSON.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "flasher.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
} commands[] = {
	{"pack", cmd_pack, "build a firmware package from .elf/.bin/.hex/.srec images"},
	{"inspect", cmd_inspect, "print everything in a package"},
	{"verify", cmd_verify, "check every CRC and hash of a package"},
	{"list", cmd_list, "list connected units"},
	{"info", cmd_info, "identity, versions and slots of a unit"},
	{"update", cmd_update, "update a unit (resumes an interrupted update)"},
	{"confirm", cmd_confirm, "make the running trial firmware permanent"},
	{"rollback", cmd_rollback, "go back to the previous firmware"},
	{"reboot", cmd_reboot, "reboot a unit (into the bootloader)"},
	{"keygen", cmd_keygen, "create a signing key pair (or an encryption key)"},
	{"fleet", cmd_fleet, "drive many units through flasherd"},
	{"help", cmd_help, "print the help of a command (flasher help COMMAND)"},
};
#define NCOMMANDS (sizeof commands / sizeof commands[0])

int cli_exit_code(int err)
{
	if (err >= 0)
		return CLI_EXIT_OK;
	return 10 + (-err);
}

int cli_fail(int err, const char *what)
{
	const char *detail = flasher_error_last();
	fprintf(stderr, "flasher: %s: %s%s%s [%s]\n", what, flasher_strerror(err), *detail ? ": " : "", detail,
	        flasher_error_name(err));
	return cli_exit_code(err);
}

void cli_json_usage_error(const char *cmd, const char *message)
{
	cJSON *o = cJSON_CreateObject();
	cJSON_AddStringToObject(o, "event", "error");
	cJSON_AddStringToObject(o, "command", cmd);
	cJSON_AddNumberToObject(o, "code", 0);
	cJSON_AddStringToObject(o, "name", "usage");
	cJSON_AddStringToObject(o, "message", message);
	cJSON_AddNumberToObject(o, "exit", CLI_EXIT_USAGE);
	char *s = cJSON_PrintUnformatted(o);
	if (s)
		printf("%s\n", s);
	fflush(stdout);
	cJSON_free(s);
	cJSON_Delete(o);
}

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (cli_json_requested)
		cli_json_usage_error(cmd, msg);
	fprintf(stderr, "flasher %s: %s\nTry 'flasher %s --help'.\n", cmd, msg, cmd);
	return CLI_EXIT_USAGE;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: flasher [-V|--version] [-h|--help] COMMAND [OPTIONS] [ARGS]\n"
	             "Firmware updates for STM32H755 units that never brick them.\n\nCommands:\n");
	for (size_t i = 0; i < NCOMMANDS; i++)
		fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
	fprintf(out, "\nRun 'flasher help COMMAND' or 'flasher COMMAND --help' for the options of one command.\n"
	             "Every command takes -q/--quiet, -v/--verbose and -h/--help.\n"
	             "PORT is a serial device (/dev/ttyACM0), a pty path, unix:PATH or tcp:HOST:PORT,\n"
	             "or a unit's serial number as shown by 'flasher list'.\n\n"
	             "Options:\n"
	             "  -h, --help      print this help and exit\n"
	             "  -V, --version   print the version and exit\n\n"
	             "Exit status:\n"
	             "   0  success\n"
	             "   2  usage error (bad command-line arguments)\n");
	for (int code = -1; code > -FLASHER_ERR_COUNT; code--)
		fprintf(out, "  %2d  %-22s %s\n", cli_exit_code(code), flasher_error_name(code), flasher_strerror(code));
}

static const struct command *find(const char *name)
{
	for (size_t i = 0; i < NCOMMANDS; i++)
		if (!strcmp(name, commands[i].name))
			return &commands[i];
	return NULL;
}

static const cli_opt help_opts[] = {CLI_END};
static const cli_spec help_spec = {"help", "[COMMAND]", 0, 1, "Print the help of a command, or the general help.",
                                   NULL, help_opts, NULL};

int cmd_help(int argc, char **argv)
{
	const char *pos[1];
	int npos;
	int rc = cli_parse(&help_spec, argc, argv, pos, &npos);
	if (rc)
		return rc == CLI_PARSED_HELP ? CLI_EXIT_OK : rc;
	if (!npos) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	const struct command *c = find(pos[0]);
	if (!c)
		return cli_usage_error("help", "unknown command '%s'", pos[0]);
	char *args[] = {(char *)c->name, "--help", NULL};
	return c->run(2, args);
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version") || !strcmp(argv[1], "-V")) {
		printf("flasher %s\n", flasher_version());
		return CLI_EXIT_OK;
	}
	const struct command *c = find(argv[1]);
	if (c)
		return c->run(argc - 1, argv + 1);
	fprintf(stderr, "flasher: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
