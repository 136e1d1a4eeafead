/* One argument parser for every flasher command (getopt_long underneath).
 *
 * A command describes itself in a cli_spec: its synopsis, a description and a
 * table of options. cli_parse() then parses argv, rejects unknown options,
 * repeated options and bad values as usage errors (exit 2, naming the flag),
 * and prints the complete --help generated from the same table, so help and
 * parsing cannot drift apart. Adding a flag = one cli_opt row (see
 * /work/wt/NOTES.md, docs/cli.md "Adding an option").
 *
 * Every command accepts -h/--help, -q/--quiet and -v/--verbose (repeatable)
 * without listing them. */
#ifndef FLASHER_CLI_ARGS_H
#define FLASHER_CLI_ARGS_H

#include <stdio.h>

typedef enum cli_opt_kind {
	CLI_FLAG,     /* no value; *(int *)dest = 1 */
	CLI_STRING,   /* one value; *(const char **)dest = value */
	CLI_INT,      /* one decimal value in [min, max]; *(long *)dest */
	CLI_OPT_INT,  /* --name or --name=N: *(long *)dest = N, or def without a value */
	CLI_LIST,     /* repeatable value: appended to *(cli_list *)dest (up to max, 0 = no limit) */
	CLI_CUSTOM,   /* one value checked and stored by parse(): returns 0 or writes why */
} cli_opt_kind;

typedef struct cli_list {
	const char **v;
	int n;
} cli_list;

typedef struct cli_opt {
	const char *name;  /* long name without "--" */
	char short_name;   /* 'o' for -o, or 0 */
	cli_opt_kind kind;
	void *dest;
	const char *metavar; /* value placeholder in help ("MS", "FILE") */
	const char *help;    /* help text; may contain '\n' for more lines */
	long min, max, def;  /* CLI_INT / CLI_OPT_INT range and default; CLI_LIST max count */
	int (*parse)(const char *value, void *dest, char *why, size_t why_size); /* CLI_CUSTOM */
} cli_opt;

/* One row of an option table; the table ends with CLI_END. */
#define CLI_OPT_FLAG(NAME, SHORT, DEST, HELP) \
	{.name = (NAME), .short_name = (SHORT), .kind = CLI_FLAG, .dest = (DEST), .help = (HELP)}
#define CLI_OPT_STRING(NAME, SHORT, DEST, METAVAR, HELP) \
	{.name = (NAME), .short_name = (SHORT), .kind = CLI_STRING, .dest = (DEST), .metavar = (METAVAR), .help = (HELP)}
#define CLI_OPT_INT(NAME, DEST, METAVAR, MIN, MAX, HELP)                                                    \
	{.name = (NAME), .kind = CLI_INT, .dest = (DEST), .metavar = (METAVAR), .help = (HELP), .min = (MIN), \
	 .max = (MAX)}
#define CLI_OPT_OPTIONAL_INT(NAME, DEST, METAVAR, MIN, MAX, DEF, HELP)                                          \
	{.name = (NAME), .kind = CLI_OPT_INT, .dest = (DEST), .metavar = (METAVAR), .help = (HELP), .min = (MIN), \
	 .max = (MAX), .def = (DEF)}
#define CLI_OPT_LIST(NAME, DEST, METAVAR, MAXN, HELP) \
	{.name = (NAME), .kind = CLI_LIST, .dest = (DEST), .metavar = (METAVAR), .help = (HELP), .max = (MAXN)}
#define CLI_OPT_CUSTOM(NAME, DEST, METAVAR, PARSE, HELP) \
	{.name = (NAME), .kind = CLI_CUSTOM, .dest = (DEST), .metavar = (METAVAR), .help = (HELP), .parse = (PARSE)}
#define CLI_END {.name = NULL}

typedef struct cli_spec {
	const char *name;        /* "update", "fleet update" */
	const char *args;        /* positional synopsis: "PORT PKG" */
	int min_pos, max_pos;    /* number of positional arguments accepted */
	const char *summary;     /* one line: what the command does */
	const char *description; /* paragraphs after the usage line (may be NULL) */
	const cli_opt *opts;     /* terminated by a row with name == NULL */
	const char *epilog;      /* text after the options (may be NULL) */
} cli_spec;

/* Parse argv[1..argc-1] (argv[0] is the command name). Positional arguments
 * go to pos[] (room for spec->max_pos entries), their count to *npos.
 * Returns 0 to run the command, CLI_PARSED_HELP when --help was printed
 * (exit 0), or CLI_EXIT_USAGE after printing the usage error. */
#define CLI_PARSED_HELP (-1)
int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos, int *npos);

/* The generated help of a command. */
void cli_help(const cli_spec *spec, FILE *out);

/* -q / -v of the command being run: -1 quiet, 0 normal, 1.. verbose. */
extern int cli_verbosity;
/* --json appears among the command's arguments: usage errors found after
 * parsing (cli_usage_error) are then printed as JSON too. */
extern int cli_json_requested;

/* Parsers for CLI_CUSTOM options shared by several commands. */
int cli_parse_semver(const char *value, void *dest, char *why, size_t why_size);   /* dest: const char ** */
int cli_parse_usb_id(const char *value, void *dest, char *why, size_t why_size);   /* dest: unsigned[2] */

#endif
