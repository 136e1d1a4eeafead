/* flasherd: shared state of the daemon's modules (server, units, jobs,
 * history, access). One mutex (d->lock) guards everything in struct daemon;
 * device I/O and file I/O are always done without it. */
#ifndef FLASHERD_H
#define FLASHERD_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include <cjson/cJSON.h>

#include "flasher.h"
#include "proto.h"

#define FLASHERD_API_VERSION 1
#define FLASHERD_MAX_LINE (64 * 1024)
#define FLASHERD_MAX_ASYNC 64      /* slow requests in progress, all clients */
#define FLASHERD_LINES_PER_TURN 16 /* requests of one client per loop turn */

/* Bounds on what clients may hold (--limit KEY=N, config "limits"). */
struct limits {
	size_t client_out;  /* bytes queued for one connection */
	size_t uid_out;     /* bytes queued for all connections of one uid */
	size_t total_out;   /* bytes queued for all connections */
	int uid_requests;   /* slow requests in progress per uid */
	int connections;    /* connections, all uids */
	int uid_connections;/* connections per uid */
	int idle_timeout_s; /* a connection with nothing to do is closed after */
	size_t package_bytes; /* memory package reads may hold at once */
};


/* Credentials of the peer of a client connection (SO_PEERCRED). */
struct peer {
	pid_t pid;
	uid_t uid;
	gid_t gid;
	int admin; /* sees and cancels every user's jobs (access_is_admin) */
};

/* Owner of a notification that only its owner (and admins) may see. */
#define OWNER_ALL ((long long)-1)

enum unit_status { UNIT_ABSENT = 0, UNIT_IDLE, UNIT_BUSY };

struct unit {
	char uid[25];
	char port[256];
	char nickname[64];
	flasher_unit_info info;
	int present;
	int fail_count;      /* consecutive failed probes of its port */
	uint64_t busy_job;   /* job holding the unit, 0 = none */
	int op_busy;         /* a device.* call holds the unit */
	time_t last_seen;
};

enum job_state {
	JOB_QUEUED = 0,
	JOB_RUNNING,
	JOB_VERIFYING,
	JOB_REBOOTING,
	JOB_DONE,
	JOB_FAILED,
	JOB_CANCELLED,
};

/* One package shared by the jobs of a batch. */
struct batch {
	uint64_t id;
	uid_t owner; /* uid of the client that started it */
	char path[1024];
	char sha256[65];
	char version[16];
	char product[17];
	flasher_package *pkg;
	int refs;
};

struct job {
	uint64_t id;
	uid_t owner; /* = its batch's owner */
	struct batch *batch;
	char uid[25];
	char port[256];
	char nickname[64];
	enum job_state state;
	flasher_phase phase;
	uint64_t bytes, total, resumed;
	double rate, eta;
	int code;
	char reason[512];
	char old_version[16];
	uint64_t resume_of;  /* job this one continues, 0 = none */
	int attempt;         /* 1 for the first attempt */
	int max_attempts;
	int no_reboot;
	int compress;
	int allow_older;     /* update.start policy (docs/daemon-api.md) */
	int allow_reinstall;
	int dry_run;
	int cancel;          /* job.cancel asked */
	int accepted;        /* its "queued" record is on disk: it may run */
	int restarted;       /* began before a daemon restart: check the unit first */
	int history_started; /* start record written */
	int released;        /* its batch reference is dropped */
	double created, started, finished; /* unix seconds */
	double last_progress_emit;
	flasher_session *session; /* while running */
};

struct daemon {
	pthread_mutex_t lock;
	pthread_cond_t cond; /* jobs, units and ports changed */
	int stopping;

	/* configuration */
	char socket_path[1024];
	char history_path[1024];
	char config_path[1024];
	int max_jobs;
	int rescan_ms;
	int probe_timeout_ms;
	int keepalive_s;     /* re-HELLO a present idle unit after this long */
	int usb_scan;        /* also list USB ports with flasher_port_list */
	struct limits lim;   /* root, the daemon's uid and admins are exempt from the per-uid ones */
	gid_t group;         /* allowed group (-1 = none) */
	int have_group;
	gid_t admin_group;   /* members see every user's jobs */
	int have_admin_group;
	/* what a non-root client may ports.add besides flasher USB serial
	 * devices: fnmatch patterns (allow_ports, --allow-port, --port) */
	char **allow_ports;
	size_t nallow_ports;
	struct {
		unsigned vid, pid;
	} usb_ids[8];
	int nusb_ids;
	/* vendor keys (--trusted-key, config trusted_keys): when set,
	 * update.start takes only packages whose every part one of them
	 * signed (docs/signing.md); package.inspect checks against them */
	uint8_t trusted_keys[4][32];
	size_t ntrusted_keys;

	/* watched ports (command line, config, ports.add) */
	char **ports;
	size_t nports;
	/* ports held by a job, a probe or a device call */
	char **busy_ports;
	size_t nbusy_ports;
	/* nicknames from the config: uid -> name */
	cJSON *nicknames;

	struct unit **units;
	size_t nunits;
	struct job **jobs;
	size_t njobs;
	uint64_t next_job_id;
	uint64_t next_batch_id;
	int rescan_now;

	int wake_fd[2]; /* workers -> main loop */
};

extern struct daemon *g_daemon;

/* main.c / server.c: notifications and async replies */
/* Takes params; owner OWNER_ALL (device events) or the uid whose clients
 * (and admins) get it. */
void server_notify(const char *method, cJSON *params, long long owner);
void server_wake(void);
double now_unix(void);
void daemon_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* rpc.c */
struct request {
	uint64_t client_id;
	struct peer peer;
	cJSON *id;     /* owned */
	cJSON *params; /* owned, may be NULL */
	char method[64];
};
/* Handle one parsed line; returns the response object or NULL (notification
 * or the reply is sent later by an async call). */
cJSON *rpc_handle(uint64_t client_id, const struct peer *peer, cJSON *msg);
void rpc_wait_async(void);
cJSON *rpc_error_response(const cJSON *id, int code, const char *message, int lib_code);
/* A slow request of the client starts (0), or its uid has too many in
 * progress (-1, why set). Every 0 is ended by one server_reply. */
int server_request_begin(uint64_t client_id, char *why, size_t n);
/* From any thread; takes response (NULL: a notification, nothing to send). */
void server_reply(uint64_t client_id, cJSON *response);
void server_set_subscribed(uint64_t client_id, int events); /* with d->lock held */
int rpc_set_lib_error(struct rpc_error *err, int lib_code, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* units.c */
int units_start(void);
/* Session options that find units by the configured USB ids (--usb-id,
 * usb_ids) after a reboot; ids is the storage they point into. */
void daemon_session_options(flasher_session_options *o, flasher_discovery_options *disc,
                            flasher_usb_id ids[FLASHER_MAX_USB_IDS]);
void units_stop(void);
struct unit *unit_find_locked(const char *ref); /* uid, serial, port or nickname */
struct unit *unit_by_uid_locked(const char *uid);
struct unit *unit_new_locked(const char *uid);
cJSON *unit_to_json_locked(const struct unit *u);
int port_busy_locked(const char *port);
void port_acquire_locked(const char *port);
void port_release_locked(const char *port);
int ports_add_locked(const char *port);
int ports_remove_locked(const char *port);
void unit_mark_absent_locked(struct unit *u);
void unit_set_info_locked(struct unit *u, const flasher_unit_info *info, const char *port);
const char *nickname_for_locked(const char *uid);

/* jobs.c */
int jobs_start(void);
void jobs_stop(void);
const char *job_state_name(enum job_state s);
cJSON *job_to_json_locked(const struct job *j);
struct job *job_find_locked(uint64_t id);
struct job *job_new_locked(struct batch *b, struct unit *u);
struct batch *batch_new(const char *path, flasher_package *pkg, uint64_t id); /* takes pkg */
void batch_put_locked(struct batch *b);
void job_release_locked(struct job *j);
int jobs_resume_from_history(void);

/* history.c */
int history_open(const char *path);
void history_close(void);
/* "queued" records of newly accepted jobs, one fsync for all. */
int history_write_queued(struct job *const *jobs, size_t n);
int history_write_start(const struct job *j); /* fsync'd */
int history_write_end(const struct job *j, const char *outcome, const char *extra_key, uint64_t extra);
/* Records merged per job, oldest first; filters may be 0/NULL; owner:
 * OWNER_ALL or the uid whose records are listed. */
cJSON *history_list(uint64_t batch, const char *uid, int limit, long long owner);
/* One pass at start-up: highest ids, and the merged records of jobs that
 * never ended (caller frees unfinished). */
struct history_scan {
	uint64_t max_job, max_batch;
	size_t total;
	cJSON *unfinished;
};
void history_scan(struct history_scan *out);

/* access.c */
/* Read path as the peer would be allowed to; *out malloc'd. Returns 0 or a
 * flasher_err with the detail set (FLASHER_EBUSY: the package memory
 * budget is used up). Every 0 is followed by access_read_done(*len) once
 * the bytes are parsed and freed. */
int access_read_file(const struct peer *peer, const char *path, uint8_t **out, size_t *len);
void access_read_done(const struct peer *peer, size_t len);
/* Open path once for reading with the peer's rights: a regular file only,
 * never blocking. */
int access_open_file(const struct peer *peer, const char *path, int *fd);
/* For a new connection fd: may the peer use the daemon (root, the daemon's
 * uid, a member of --group), and is it an admin (sets peer->admin)? */
void access_classify_peer(int fd, struct peer *peer, int *allowed);
/* 0 if the peer may ports.add spec, else FLASHER_EPERM/ENOTFOUND with the
 * reason in the error detail. */
int access_port_allowed(const struct peer *peer, const char *spec);

#endif
