/* PLACEHOLDER: replaced by the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_pack(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher pack: not built yet\n"); return 1; }
int cmd_inspect(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher inspect: not built yet\n"); return 1; }
int cmd_verify(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher verify: not built yet\n"); return 1; }
