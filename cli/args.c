/* The one argument parser of the flasher CLI (args.h). */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "args.h"
#include "cli.h"
#include "flasher.h"

int cli_verbosity;
int cli_json_requested;

enum { OPT_HELP = 'h', OPT_QUIET = 'q', OPT_VERBOSE = 'v', OPT_BASE = 0x100 };

static size_t opt_count(const cli_spec *spec)
{
	size_t n = 0;
	while (spec->opts && spec->opts[n].name)
		n++;
	return n;
}

static int takes_value(const cli_opt *o)
{
	return o->kind != CLI_FLAG && o->kind != CLI_OPT_INT;
}

/* "--name=VALUE" as written in the synopsis and help. */
static int opt_label(const cli_opt *o, char *buf, size_t n)
{
	const char *mv = o->metavar ? o->metavar : "VALUE";
	if (o->short_name && takes_value(o))
		return snprintf(buf, n, "-%c, --%s %s", o->short_name, o->name, mv);
	if (o->short_name)
		return snprintf(buf, n, "-%c, --%s", o->short_name, o->name);
	if (o->kind == CLI_OPT_INT)
		return snprintf(buf, n, "    --%s[=%s]", o->name, mv);
	if (takes_value(o))
		return snprintf(buf, n, "    --%s %s", o->name, mv);
	return snprintf(buf, n, "    --%s", o->name);
}

void cli_help(const cli_spec *spec, FILE *out)
{
	fprintf(out, "Usage: flasher %s%s%s%s\n", spec->name, opt_count(spec) ? " [OPTIONS]" : "",
	        spec->args && *spec->args ? " " : "", spec->args ? spec->args : "");
	fprintf(out, "%s\n", spec->summary);
	if (spec->description)
		fprintf(out, "\n%s", spec->description);
	fprintf(out, "\nOptions:\n");
	size_t n = opt_count(spec);
	for (size_t i = 0; i <= n + 2; i++) {
		const cli_opt builtin[] = {
		        CLI_OPT_FLAG("help", 'h', NULL, "print this help and exit"),
		        CLI_OPT_FLAG("quiet", 'q', NULL, "no progress or summary lines: errors and the\nrequested output only"),
		        CLI_OPT_FLAG("verbose", 'v', NULL, "more detail on stderr (repeat for more)"),
		};
		const cli_opt *o = i < n ? &spec->opts[i] : &builtin[i - n];
		char label[80];
		int w = opt_label(o, label, sizeof label);
		const char *h = o->help ? o->help : "";
		fprintf(out, "  %s", label);
		/* First help line beside the label when it fits, the rest under it. */
		if (w > 24)
			fprintf(out, "\n%28s", "");
		else
			fprintf(out, "%*s", 26 - w, "");
		for (const char *p = h; *p; p++) {
			fputc(*p, out);
			if (*p == '\n' && p[1])
				fprintf(out, "%28s", "");
		}
		fputc('\n', out);
	}
	if (spec->epilog)
		fprintf(out, "\n%s", spec->epilog);
}

/* Does argv ask for JSON? Usage errors are then also one JSON object on
 * stdout (docs/flasher-output.schema.json). */
static int wants_json(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--"))
			break;
		if (!strcmp(argv[i], "--json"))
			return 1;
	}
	return 0;
}

static int usage_error(const cli_spec *spec, int json, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int usage_error(const cli_spec *spec, int json, const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (json)
		cli_json_usage_error(spec->name, msg);
	fprintf(stderr, "flasher %s: %s\nTry 'flasher %s --help'.\n", spec->name, msg, spec->name);
	return CLI_EXIT_USAGE;
}

static int store(const cli_spec *spec, int json, const cli_opt *o, const char *value)
{
	char flag[64];
	snprintf(flag, sizeof flag, "--%s", o->name);
	switch (o->kind) {
	case CLI_FLAG:
		*(int *)o->dest = 1;
		return 0;
	case CLI_STRING:
		if (!*value)
			return usage_error(spec, json, "%s: empty value", flag);
		*(const char **)o->dest = value;
		return 0;
	case CLI_OPT_INT:
		if (!value) {
			*(long *)o->dest = o->def;
			return 0;
		}
		/* fall through */
	case CLI_INT: {
		char *end;
		errno = 0;
		long v = strtol(value, &end, 10);
		if (!*value || *end || errno || v < o->min || v > o->max)
			return usage_error(spec, json, "%s wants %s (%ld..%ld), not '%s'", flag,
			                   o->metavar ? o->metavar : "a number", o->min, o->max, value);
		*(long *)o->dest = v;
		return 0;
	}
	case CLI_LIST: {
		cli_list *l = o->dest;
		if (!*value)
			return usage_error(spec, json, "%s: empty value", flag);
		if (o->max && l->n >= o->max)
			return usage_error(spec, json, "%s: at most %ld", flag, o->max);
		const char **nv = realloc(l->v, (size_t)(l->n + 2) * sizeof *nv);
		if (!nv)
			return usage_error(spec, json, "out of memory");
		l->v = nv;
		l->v[l->n++] = value;
		l->v[l->n] = NULL;
		return 0;
	}
	case CLI_CUSTOM: {
		char why[256] = "";
		if (o->parse(value, o->dest, why, sizeof why))
			return usage_error(spec, json, "%s: %s", flag, why);
		return 0;
	}
	}
	return usage_error(spec, json, "%s: bad option table", flag);
}

int cli_parse(const cli_spec *spec, int argc, char **argv, const char **pos, int *npos)
{
	size_t n = opt_count(spec);
	int json = wants_json(argc, argv);
	cli_json_requested = json;
	struct option *lo = calloc(n + 4, sizeof *lo);
	unsigned char *seen = calloc(n + 1, 1);
	char shorts[3 * 64 + 8] = ":hqv";
	size_t sl = strlen(shorts);
	int rc = 0;
	if (!lo || !seen) {
		free(lo);
		free(seen);
		return usage_error(spec, json, "out of memory");
	}
	for (size_t i = 0; i < n; i++) {
		const cli_opt *o = &spec->opts[i];
		lo[i].name = o->name;
		lo[i].has_arg = o->kind == CLI_FLAG ? no_argument : o->kind == CLI_OPT_INT ? optional_argument : required_argument;
		lo[i].val = OPT_BASE + (int)i;
		if (o->short_name && sl + 3 < sizeof shorts) {
			shorts[sl++] = o->short_name;
			if (takes_value(o))
				shorts[sl++] = ':';
		}
	}
	shorts[sl] = '\0';
	lo[n] = (struct option){"help", no_argument, NULL, OPT_HELP};
	lo[n + 1] = (struct option){"quiet", no_argument, NULL, OPT_QUIET};
	lo[n + 2] = (struct option){"verbose", no_argument, NULL, OPT_VERBOSE};
	*npos = 0;
	cli_verbosity = 0;
	int quiet = 0, help = 0;
	optind = 0; /* full re-initialisation (fleet parses twice) */
	opterr = 0;
	for (;;) {
		int c = getopt_long(argc, argv, shorts, lo, NULL);
		if (c == -1)
			break;
		/* the element just processed (getopt_long has moved past it) */
		const char *arg = optind > 0 && optind <= argc ? argv[optind - 1] : "";
		const cli_opt *o = NULL;
		size_t idx = 0;
		if (c >= OPT_BASE) {
			idx = (size_t)(c - OPT_BASE);
			o = &spec->opts[idx];
		} else if (c != ':' && c != '?' && c != OPT_HELP && c != OPT_QUIET && c != OPT_VERBOSE) {
			for (idx = 0; idx < n; idx++)
				if (spec->opts[idx].short_name == c)
					break;
			o = idx < n ? &spec->opts[idx] : NULL;
		}
		if (c == OPT_HELP) {
			help = 1;
		} else if (c == OPT_QUIET) {
			if (quiet++)
				rc = usage_error(spec, json, "-q/--quiet given twice");
		} else if (c == OPT_VERBOSE) {
			cli_verbosity++;
		} else if (c == ':') {
			if (optopt >= OPT_BASE)
				rc = usage_error(spec, json, "--%s needs a value (%s)", spec->opts[optopt - OPT_BASE].name,
				                 spec->opts[optopt - OPT_BASE].metavar ? spec->opts[optopt - OPT_BASE].metavar : "VALUE");
			else
				rc = usage_error(spec, json, "-%c needs a value", optopt);
		} else if (c == '?') {
			if (optopt && optopt < OPT_BASE)
				rc = usage_error(spec, json, "unknown option '-%c'", optopt);
			else if (optopt >= OPT_BASE)
				rc = usage_error(spec, json, "--%s takes no value", spec->opts[optopt - OPT_BASE].name);
			else
				rc = usage_error(spec, json, "unknown option '%s'", arg);
		} else if (!o) {
			rc = usage_error(spec, json, "unknown option '%s'", arg);
		} else if (seen[idx] && o->kind != CLI_LIST) {
			rc = usage_error(spec, json, "--%s given twice", o->name);
		} else {
			seen[idx] = 1;
			rc = store(spec, json, o, optarg);
		}
		if (rc)
			break;
	}
	if (quiet && cli_verbosity && !rc)
		rc = usage_error(spec, json, "-q and -v contradict each other");
	if (quiet)
		cli_verbosity = -1;
	if (!rc && help) {
		cli_help(spec, stdout);
		rc = CLI_PARSED_HELP;
	}
	if (!rc) {
		int left = argc - optind;
		if (left > spec->max_pos)
			rc = usage_error(spec, json, "unexpected argument '%s'", argv[optind + spec->max_pos]);
		else if (left < spec->min_pos)
			rc = usage_error(spec, json, "missing %s (flasher %s %s)", spec->args, spec->name, spec->args);
		else
			for (int i = optind; i < argc; i++)
				pos[(*npos)++] = argv[i];
	}
	free(lo);
	free(seen);
	return rc;
}

int cli_parse_semver(const char *value, void *dest, char *why, size_t why_size)
{
	uint32_t v;
	if (flasher_semver_parse(value, &v)) {
		snprintf(why, why_size, "%s", flasher_error_last());
		return -1;
	}
	*(const char **)dest = value;
	return 0;
}

int cli_parse_usb_id(const char *value, void *dest, char *why, size_t why_size)
{
	unsigned *id = dest;
	char *end;
	unsigned long vid = strtoul(value, &end, 16);
	if (end == value || *end != ':' || end - value > 4 || vid > 0xFFFF) {
		snprintf(why, why_size, "wants VID:PID in hex (e.g. 0483:5740), not '%s'", value);
		return -1;
	}
	const char *p = end + 1;
	unsigned long pid = strtoul(p, &end, 16);
	if (end == p || *end || end - p > 4 || pid > 0xFFFF) {
		snprintf(why, why_size, "wants VID:PID in hex (e.g. 0483:5740), not '%s'", value);
		return -1;
	}
	id[0] = (unsigned)vid;
	id[1] = (unsigned)pid;
	return 0;
}
