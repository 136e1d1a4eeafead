/* Test harness for flasherd: real processes (the daemon, simulated units)
 * and a JSON-RPC client over the daemon's Unix socket. */
#ifndef FLASHERD_TEST_HARNESS_H
#define FLASHERD_TEST_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <cjson/cJSON.h>

#define H_MAX_UNITS 16

struct h_env {
	char dir[256];
	char sock[320];
	char history[320];
	pid_t daemon;
	uid_t daemon_uid; /* run the daemon as this uid:gid (0 = as the test) */
	gid_t daemon_gid;
	int nunits;
	pid_t unit_pid[H_MAX_UNITS];
	char unit_link[H_MAX_UNITS][320];  /* stable symlink to the unit's pty */
	char unit_flash[H_MAX_UNITS][320];
	char unit_serial[H_MAX_UNITS][32];
};

struct h_client {
	int fd;
	char *buf;
	size_t len, cap;
	cJSON *notes; /* notifications read while waiting for an answer */
	int next_id;
};

/* A fresh temporary directory (mode 0755, so other uids can reach the socket). */
void h_env_init(struct h_env *e);
/* Stop every process started for e and remove the directory; returns 0
 * if the daemon's log shows a sanitizer report, 1 if clean. */
int h_env_cleanup(struct h_env *e);

/* Start unit i (flash file and --link in e->dir); extra args NULL-terminated. */
pid_t h_start_unit(struct h_env *e, int i, const char *const *extra);
void h_kill_unit(struct h_env *e, int i, int sig);
/* Start flasherd on e->sock with every started unit's link as --port plus
 * extra args (NULL-terminated); waits until the socket accepts. */
pid_t h_start_daemon(struct h_env *e, const char *const *extra);
/* Signal the daemon and wait for it; returns its exit status (or -1). */
int h_stop_daemon(struct h_env *e, int sig);
int h_daemon_alive(struct h_env *e);

/* Build a package "demo" version ver into e->dir; returns its path (static per call slot). */
const char *h_make_package(struct h_env *e, const char *name, const char *ver, size_t cm7_size, size_t cm4_size);

int h_connect(const char *sock);
void h_client_open(struct h_client *c, const char *sock);
void h_client_close(struct h_client *c);
/* Send raw bytes. */
int h_send(struct h_client *c, const void *data, size_t len);
/* Next message that is a response (notifications are stored in c->notes);
 * NULL on timeout or EOF. */
cJSON *h_read_response(struct h_client *c, int timeout_ms);
/* Next message of any kind, straight from the socket. */
cJSON *h_read_any(struct h_client *c, int timeout_ms);
/* Next message: first those h_read_response/h_call set aside in notes. */
cJSON *h_next_note(struct h_client *c, int timeout_ms);
/* Call method with params (JSON text or NULL); returns the whole response. */
cJSON *h_call(struct h_client *c, const char *method, const char *params_json, int timeout_ms);
/* result member of a response, or NULL */
cJSON *h_result(cJSON *resp);
int h_error_code(cJSON *resp);      /* error.code or 0 */
int h_error_lib_code(cJSON *resp);  /* error.data.code or 0 */

/* Wait until devices.list shows n present units; returns the count seen. */
int h_wait_devices(struct h_client *c, int n, int timeout_ms);
/* Wait until every job in batch has ended (done/failed/cancelled) and no
 * retry is pending; returns the jobs.list result (caller frees). */
cJSON *h_wait_batch(struct h_client *c, double batch, int timeout_ms);

/* As uid:gid (plus supplementary group sgid when >= 0; needs root), in a
 * forked child on one connection: run calls (JSON text [[method, params],
 * ...]) in order, then collect notifications for listen_ms. Returns
 * {"responses":[...],"notes":[...]} (caller frees) or NULL. */
cJSON *h_as_user(const char *sock, uid_t uid, gid_t gid, long sgid, const char *calls_json, int listen_ms);

double h_num(const cJSON *o, const char *key);
const char *h_str(const cJSON *o, const char *key);

#endif
