/* Progress display of `flasher update`: a bar with rate and ETA on a
 * terminal (stderr), plain lines otherwise, JSON events with --json (stdout). */
#ifndef FLASHER_CLI_PROGRESS_H
#define FLASHER_CLI_PROGRESS_H

#include <stdint.h>

#include "flasher.h"

typedef struct cli_progress {
	int json;           /* one JSON object per line on stdout */
	int quiet;          /* -q: no human progress at all (JSON events stay) */
	int tty;            /* stderr is a terminal: redraw one bar line */
	int bar_drawn;      /* a bar line is on screen without its newline */
	int last_phase;
	int last_decile;    /* plain mode: print every 10 % */
	unsigned seen_phases; /* plain mode: name each phase once, though images alternate transfer/verify */
	int64_t last_ms;    /* throttle redraws and JSON progress events */
} cli_progress;

void cli_progress_init(cli_progress *p, int json, int quiet);
/* flasher_progress_cb; payload is the cli_progress. Never cancels. */
int cli_progress_cb(const flasher_progress *pr, void *payload);
/* End the bar line, if any. */
void cli_progress_finish(cli_progress *p);

/* "1.5 MiB" style */
void cli_format_bytes(double bytes, char *buf, unsigned long size);

#endif
