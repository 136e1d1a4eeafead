/* Helpers of the end-to-end tests: real flasher-devsim processes, packages
 * built with the real library, the real CLI binary. */
#ifndef FLASHER_E2E_H
#define FLASHER_E2E_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "flasher.h"

typedef struct e2e_devsim {
	pid_t pid;
	int out_fd;          /* its stdout (kept open: it must never get SIGPIPE) */
	char pty[256];       /* the port: a pty path, or unix:PATH with --listen */
	char flash[512];
} e2e_devsim;

/* A fresh temporary folder for one test; removed by e2e_cleanup. */
const char *e2e_tmpdir(void);
void e2e_cleanup(void);
/* Path inside the test's folder (static buffer rotation of 8). */
const char *e2e_path(const char *name);

/* Start devsim on flash (extra args NULL-terminated, may be NULL). Asserts. */
void e2e_devsim_start(e2e_devsim *d, const char *flash, const char *const *extra);
/* Kill with sig and reap. */
void e2e_devsim_kill(e2e_devsim *d, int sig);

/* Firmware-like bytes: compressible code-like words (compressible != 0) or random. */
void e2e_write_bin(const char *path, size_t size, uint32_t seed, int compressible);

typedef struct e2e_pkg_spec {
	const char *product;       /* default "demo" */
	const char *version;       /* required */
	const char *hw_revs[4];    /* NULL-terminated, empty = any */
	const char *min_bootloader;
	size_t cm7_size, cm4_size; /* 0 = no image for that core */
	uint32_t seed;
	int compressible;
} e2e_pkg_spec;
/* Build a package with the real library; returns its path (in the tmp dir). */
const char *e2e_make_pkg(const char *name, const e2e_pkg_spec *spec);

/* SHA-256 of a whole file. */
void e2e_file_sha256(const char *path, uint8_t out[32]);

/* Run the CLI with args (NULL-terminated); stdout into *out (malloc'd,
 * NUL-terminated, may be NULL). Returns the exit status (or 128+signal). */
int e2e_run_cli(const char *const *args, char **out, double timeout_s);
/* Same for any program. */
int e2e_run_prog(const char *prog, const char *const *args, char **out, double timeout_s);

/* Update helpers through the library. */
int e2e_update(const char *port, const char *pkg_path, const flasher_update_options *uo,
               const flasher_session_options *so, flasher_update_result *res);
int e2e_info(const char *port, flasher_unit_info *info);

#endif
