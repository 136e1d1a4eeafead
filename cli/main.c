/* flasher: command-line front end of libflasher. Human output goes to
 * stdout/stderr; with --json a command prints JSON only on stdout. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "flasher.h"

static const struct command {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *synopsis;
} commands[] = {
	{"pack", cmd_pack, "pack --product ID --version X.Y.Z [--hw REV]... [--cm7 FILE] [--cm4 FILE] -o OUT"},
	{"inspect", cmd_inspect, "inspect PKG [--json]          print everything in a package"},
	{"verify", cmd_verify, "verify PKG [--json]           check every CRC and hash of a package"},
	{"list", cmd_list, "list [--json] [--all]         list connected units"},
	{"info", cmd_info, "info PORT [--json]            identity, versions and slots of a unit"},
	{"update", cmd_update, "update PORT PKG [--json]      update a unit (resumes an interrupted update)"},
	{"confirm", cmd_confirm, "confirm PORT [--json]         make the running trial firmware permanent"},
	{"rollback", cmd_rollback, "rollback PORT [--json]        go back to the previous firmware"},
	{"reboot", cmd_reboot, "reboot PORT [--bootloader]    reboot (into the bootloader)"},
	{"keygen", cmd_keygen, "keygen -o KEY [--encryption] create a signing key pair (or an encryption key)"},
	{"fleet", cmd_fleet, "fleet ...                     drive many units through flasherd"},
};

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

int cli_usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;
	fprintf(stderr, "flasher %s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'flasher %s --help'.\n", cmd);
	return CLI_EXIT_USAGE;
}

static void usage(FILE *out)
{
	fprintf(out, "Usage: flasher COMMAND [ARGS]\n\n"
	             "Firmware updates for STM32H755 units that never brick them.\n\nCommands:\n");
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		fprintf(out, "  %s\n", commands[i].synopsis);
	fprintf(out, "\nRun 'flasher COMMAND --help' for the options of one command.\n"
	             "PORT is a serial device (/dev/ttyACM0), a pty path, unix:PATH or tcp:HOST:PORT,\n"
	             "or a unit's serial number as shown by 'flasher list'.\n\n"
	             "Exit codes:\n"
	             "   0  success\n"
	             "   2  usage error (bad command-line arguments)\n");
	for (int code = -1; code > -FLASHER_ERR_COUNT; code--)
		fprintf(out, "  %2d  %-22s %s\n", cli_exit_code(code), flasher_error_name(code), flasher_strerror(code));
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		usage(stderr);
		return CLI_EXIT_USAGE;
	}
	if (!strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
		usage(stdout);
		return CLI_EXIT_OK;
	}
	if (!strcmp(argv[1], "--version")) {
		printf("flasher %s\n", flasher_version());
		return CLI_EXIT_OK;
	}
	for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
		if (!strcmp(argv[1], commands[i].name))
			return commands[i].run(argc - 1, argv + 1);
	fprintf(stderr, "flasher: unknown command '%s'\n\n", argv[1]);
	usage(stderr);
	return CLI_EXIT_USAGE;
}
