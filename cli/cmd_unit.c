/* PLACEHOLDER: replaced by the real commands. */
#include "cli.h"
#include <stdio.h>
int cmd_list(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher list: not built yet\n"); return 1; }
int cmd_info(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher info: not built yet\n"); return 1; }
int cmd_update(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher update: not built yet\n"); return 1; }
int cmd_confirm(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher confirm: not built yet\n"); return 1; }
int cmd_rollback(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher rollback: not built yet\n"); return 1; }
int cmd_reboot(int argc, char **argv) { (void)argc; (void)argv; fprintf(stderr, "flasher reboot: not built yet\n"); return 1; }
