/* Progress display of `flasher update` (see progress.h). */
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "progress.h"

static int64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cli_format_bytes(double bytes, char *buf, unsigned long size)
{
	if (bytes >= 1024.0 * 1024.0)
		snprintf(buf, size, "%.1f MiB", bytes / (1024.0 * 1024.0));
	else if (bytes >= 1024.0)
		snprintf(buf, size, "%.1f KiB", bytes / 1024.0);
	else
		snprintf(buf, size, "%.0f B", bytes);
}

void cli_progress_init(cli_progress *p, int json, int quiet)
{
	p->json = json;
	p->quiet = quiet;
	p->tty = !json && isatty(STDERR_FILENO);
	p->bar_drawn = 0;
	p->last_phase = -1;
	p->last_decile = -1;
	p->last_ms = 0;
	p->seen_phases = 0;
}

static const char *core_text(flasher_core c)
{
	return c == FLASHER_CORE_CM4 ? "cm4" : c == FLASHER_CORE_CM7 ? "cm7" : "";
}

static void json_progress(const flasher_progress *pr)
{
	printf("{\"event\":\"progress\",\"phase\":\"%s\",\"core\":\"%s\",\"bytes_done\":%llu,\"bytes_total\":%llu,"
	       "\"bytes_resumed\":%llu,\"rate\":%.0f,\"eta_s\":%.1f}\n",
	       flasher_phase_name(pr->phase), core_text(pr->core), (unsigned long long)pr->bytes_done,
	       (unsigned long long)pr->bytes_total, (unsigned long long)pr->bytes_resumed, pr->rate, pr->eta_s);
	fflush(stdout);
}

static void draw_bar(cli_progress *p, const flasher_progress *pr)
{
	enum { WIDTH = 30 };
	double frac = pr->bytes_total ? (double)pr->bytes_done / (double)pr->bytes_total : 0;
	int fill = (int)(frac * WIDTH);
	char bar[WIDTH + 1], done[32], total[32], rate[32], eta[32] = "--:--";
	for (int i = 0; i < WIDTH; i++)
		bar[i] = i < fill ? '#' : '.';
	bar[WIDTH] = '\0';
	cli_format_bytes((double)pr->bytes_done, done, sizeof done);
	cli_format_bytes((double)pr->bytes_total, total, sizeof total);
	cli_format_bytes(pr->rate, rate, sizeof rate);
	if (pr->eta_s >= 0)
		snprintf(eta, sizeof eta, "%d:%02d", (int)pr->eta_s / 60, (int)pr->eta_s % 60);
	fprintf(stderr, "\r%-8s %s [%s] %3d%%  %s / %s  %s/s  ETA %s \033[K", flasher_phase_name(pr->phase),
	        core_text(pr->core), bar, (int)(frac * 100), done, total, rate, eta);
	fflush(stderr);
	p->bar_drawn = 1;
}

int cli_progress_cb(const flasher_progress *pr, void *payload)
{
	cli_progress *p = payload;
	if (p->quiet && !p->json)
		return 0;
	int64_t now = now_ms();
	int phase_changed = (int)pr->phase != p->last_phase;
	if (phase_changed) {
		p->last_phase = (int)pr->phase;
		if (p->json) {
			printf("{\"event\":\"phase\",\"phase\":\"%s\"}\n", flasher_phase_name(pr->phase));
			fflush(stdout);
		} else if ((!p->tty || pr->phase != FLASHER_PHASE_TRANSFER) && !(p->seen_phases & (1u << pr->phase))) {
			p->seen_phases |= 1u << pr->phase;
			cli_progress_finish(p);
			if (pr->phase != FLASHER_PHASE_DONE && pr->phase != FLASHER_PHASE_TRANSFER)
				fprintf(stderr, "%s...\n", flasher_phase_name(pr->phase));
		}
	}
	if (pr->phase != FLASHER_PHASE_TRANSFER && pr->phase != FLASHER_PHASE_VERIFY)
		return 0;
	int complete = pr->bytes_done == pr->bytes_total;
	if (!phase_changed && !complete && now - p->last_ms < (p->json ? 250 : 100))
		return 0;
	p->last_ms = now;
	if (p->json) {
		json_progress(pr);
	} else if (p->tty) {
		draw_bar(p, pr);
	} else {
		int decile = pr->bytes_total ? (int)(pr->bytes_done * 10 / pr->bytes_total) : 10;
		if (decile != p->last_decile) {
			char done[32], rate[32];
			p->last_decile = decile;
			cli_format_bytes((double)pr->bytes_done, done, sizeof done);
			cli_format_bytes(pr->rate, rate, sizeof rate);
			fprintf(stderr, "transfer %3d%%  %s  %s/s\n", decile * 10, done, rate);
		}
	}
	return 0;
}

void cli_progress_finish(cli_progress *p)
{
	if (p->bar_drawn) {
		fputc('\n', stderr);
		p->bar_drawn = 0;
	}
}
