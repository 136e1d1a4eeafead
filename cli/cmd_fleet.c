/* PLACEHOLDER: replaced by the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_fleet(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher fleet: not built yet\n"); return 1; }
