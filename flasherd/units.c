/* The unit registry and discovery.
 *
 * Units are keyed by their full 96-bit uid (24 hex digits), never by port:
 * a unit that re-enumerates on another port is the same unit. A prober
 * thread says HELLO on every watched port (command line, config file,
 * ports.add) and on every USB port flasher_port_list() reports, every
 * rescan_ms or at once when the library's watch (flasher/watch.h) reports a
 * unit's USB device or serial port coming or going. Ports held by a
 * job or a device call are never probed. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flasherd.h"
#include "unit_json.h"

static pthread_t prober_thread, hotplug_thread;
static int prober_running, hotplug_running;
static flasher_watch *watch; /* the library's hotplug watch (libusb + udev) */
/* A second scan shortly after a hotplug event (under the daemon lock). */
static int followup_pending;
static struct timespec followup_at;

#define HOTPLUG_FOLLOWUP_MS 1000

static void add_ms(struct timespec *t, long ms)
{
	t->tv_sec += ms / 1000;
	t->tv_nsec += (ms % 1000) * 1000000L;
	if (t->tv_nsec >= 1000000000L) {
		t->tv_sec++;
		t->tv_nsec -= 1000000000L;
	}
}

static int ts_before(const struct timespec *a, const struct timespec *b)
{
	return a->tv_sec < b->tv_sec || (a->tv_sec == b->tv_sec && a->tv_nsec < b->tv_nsec);
}

const char *nickname_for_locked(const char *uid)
{
	struct daemon *d = g_daemon;
	if (!d->nicknames)
		return "";
	for (const cJSON *it = d->nicknames->child; it; it = it->next)
		if (it->string && !strcasecmp(it->string, uid) && cJSON_IsString(it))
			return it->valuestring;
	return "";
}

cJSON *unit_to_json_locked(const struct unit *u)
{
	/* The library's one JSON form of a unit (as `flasher info --json`),
	 * plus what only the daemon knows. */
	const flasher_unit_info *i = &u->info;
	cJSON *o = flasher__unit_info_json(i);
	cJSON_ReplaceItemInObjectCaseSensitive(o, "uid", cJSON_CreateString(u->uid)); /* known before HELLO */
	cJSON_AddStringToObject(o, "port", u->port);
	cJSON_AddStringToObject(o, "nickname", u->nickname);
	cJSON_AddStringToObject(o, "status", !u->present ? "absent" : (u->busy_job || u->op_busy) ? "busy" : "idle");
	if (u->busy_job)
		cJSON_AddNumberToObject(o, "job", (double)u->busy_job);
	else
		cJSON_AddNullToObject(o, "job");
	cJSON_AddNumberToObject(o, "last_seen", (double)u->last_seen);
	/* Flat per-core fields, kept for clients written against API 1.0. */
	flasher__json_add_version(o, "firmware_version", i->cm7_version);
	flasher__json_add_version(o, "cm7_version", i->cm7_version);
	flasher__json_add_version(o, "cm4_version", i->cm4_version);
	return o;
}

struct unit *unit_by_uid_locked(const char *uid)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->nunits; i++)
		if (!strcasecmp(d->units[i]->uid, uid))
			return d->units[i];
	return NULL;
}

struct unit *unit_find_locked(const char *ref)
{
	struct daemon *d = g_daemon;
	struct unit *u = unit_by_uid_locked(ref);
	if (u)
		return u;
	/* Present units first: a port or serial may have belonged to a unit
	 * that is gone. */
	for (int pass = 0; pass < 2; pass++)
		for (size_t i = 0; i < d->nunits; i++) {
			u = d->units[i];
			if (pass == 0 && !u->present)
				continue;
			if (!strcmp(u->port, ref) || !strcmp(u->info.serial, ref) || (u->nickname[0] && !strcmp(u->nickname, ref)))
				return u;
		}
	return NULL;
}

int port_busy_locked(const char *port)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->nbusy_ports; i++)
		if (!strcmp(d->busy_ports[i], port))
			return 1;
	return 0;
}

void port_acquire_locked(const char *port)
{
	struct daemon *d = g_daemon;
	char **n = realloc(d->busy_ports, (d->nbusy_ports + 1) * sizeof *n);
	if (!n)
		abort();
	d->busy_ports = n;
	d->busy_ports[d->nbusy_ports++] = strdup(port);
}

void port_release_locked(const char *port)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->nbusy_ports; i++)
		if (!strcmp(d->busy_ports[i], port)) {
			free(d->busy_ports[i]);
			d->busy_ports[i] = d->busy_ports[--d->nbusy_ports];
			break;
		}
	pthread_cond_broadcast(&d->cond);
}

int ports_add_locked(const char *port)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->nports; i++)
		if (!strcmp(d->ports[i], port))
			return 0;
	char **n = realloc(d->ports, (d->nports + 1) * sizeof *n);
	if (!n)
		return FLASHER_ENOMEM;
	d->ports = n;
	d->ports[d->nports++] = strdup(port);
	d->rescan_now = 1;
	pthread_cond_broadcast(&d->cond);
	return 1;
}

int ports_remove_locked(const char *port)
{
	struct daemon *d = g_daemon;
	for (size_t i = 0; i < d->nports; i++)
		if (!strcmp(d->ports[i], port)) {
			free(d->ports[i]);
			memmove(&d->ports[i], &d->ports[i + 1], (d->nports - i - 1) * sizeof *d->ports);
			d->nports--;
			d->rescan_now = 1;
			pthread_cond_broadcast(&d->cond);
			return 1;
		}
	return 0;
}

void unit_mark_absent_locked(struct unit *u)
{
	if (!u->present)
		return;
	u->present = 0;
	cJSON *p = cJSON_CreateObject();
	cJSON_AddStringToObject(p, "uid", u->uid);
	cJSON_AddStringToObject(p, "port", u->port);
	cJSON_AddStringToObject(p, "nickname", u->nickname);
	server_notify("device.removed", p, OWNER_ALL);
	daemon_log("unit %s removed (%s)", u->uid, u->port);
}

/* A unit the daemon did not know, added to its table (no HELLO yet). */
struct unit *unit_new_locked(const char *uid)
{
	struct daemon *d = g_daemon;
	struct unit *u = calloc(1, sizeof *u);
	struct unit **n = realloc(d->units, (d->nunits + 1) * sizeof *n);
	if (!u || !n)
		abort();
	d->units = n;
	d->units[d->nunits++] = u;
	snprintf(u->uid, sizeof u->uid, "%s", uid);
	snprintf(u->info.uid, sizeof u->info.uid, "%s", uid);
	return u;
}

/* New HELLO from a unit on port: create it or refresh it, and say so. */
void unit_set_info_locked(struct unit *u, const flasher_unit_info *info, const char *port)
{
	struct daemon *d = g_daemon;
	if (!u)
		u = unit_new_locked(info->uid);
	/* Another unit known on this port has gone (replaced by this one). */
	for (size_t i = 0; i < d->nunits; i++) {
		struct unit *o = d->units[i];
		if (o != u && o->present && !strcmp(o->port, port) && !o->busy_job)
			unit_mark_absent_locked(o);
	}
	int was_present = u->present;
	int changed = memcmp(&u->info, info, sizeof *info) != 0 || strcmp(u->port, port) != 0;
	u->info = *info;
	snprintf(u->port, sizeof u->port, "%s", port);
	snprintf(u->nickname, sizeof u->nickname, "%s", nickname_for_locked(u->uid));
	u->present = 1;
	u->fail_count = 0;
	u->last_seen = time(NULL);
	if (!was_present) {
		server_notify("device.added", unit_to_json_locked(u), OWNER_ALL);
		daemon_log("unit %s (%s) on %s", u->uid, info->product, port);
	} else if (changed) {
		server_notify("device.changed", unit_to_json_locked(u), OWNER_ALL);
	}
	pthread_cond_broadcast(&d->cond);
}

/* HELLO on one port, without the lock. */
static int probe(const char *port, flasher_unit_info *info)
{
	flasher_session_options o = FLASHER_SESSION_OPTIONS_INIT;
	o.timeout_ms = g_daemon->probe_timeout_ms;
	o.retries = 1;
	o.reconnect_timeout_ms = 0;
	flasher_session *s = NULL;
	int rc = flasher_session_open(&s, port, &o);
	if (rc == 0)
		rc = flasher_session_info(s, info);
	flasher_session_close(s);
	return rc;
}

/* The configured ids as discovery options (ids: their storage). */
static void discovery_options(flasher_discovery_options *o, flasher_usb_id ids[FLASHER_MAX_USB_IDS])
{
	struct daemon *d = g_daemon;
	flasher_discovery_options def = FLASHER_DISCOVERY_OPTIONS_INIT;
	*o = def;
	int n = d->nusb_ids < FLASHER_MAX_USB_IDS ? d->nusb_ids : FLASHER_MAX_USB_IDS;
	for (int i = 0; i < n; i++) {
		ids[i].vid = (uint16_t)d->usb_ids[i].vid;
		ids[i].pid = (uint16_t)d->usb_ids[i].pid;
	}
	o->usb_ids = ids;
	o->usb_id_count = (size_t)n;
}

void daemon_session_options(flasher_session_options *o, flasher_discovery_options *disc,
                            flasher_usb_id ids[FLASHER_MAX_USB_IDS])
{
	flasher_session_options def = FLASHER_SESSION_OPTIONS_INIT;
	*o = def;
	discovery_options(disc, ids);
	o->discovery = disc;
}

struct candidate {
	char port[256];
	char serial[64]; /* USB serial when known */
	int usb;
};

static void scan_once(void)
{
	struct daemon *d = g_daemon;
	struct candidate *c = NULL;
	size_t n = 0;

	pthread_mutex_lock(&d->lock);
	c = calloc(d->nports + 1, sizeof *c);
	for (size_t i = 0; c && i < d->nports; i++)
		snprintf(c[n++].port, sizeof c->port, "%s", d->ports[i]);
	pthread_mutex_unlock(&d->lock);
	if (!c)
		return;

	if (d->usb_scan) {
		flasher_port_info *list = NULL;
		size_t cnt = 0;
		flasher_usb_id ids[FLASHER_MAX_USB_IDS];
		flasher_discovery_options dopt;
		discovery_options(&dopt, ids);
		if (flasher_port_list_with(&dopt, &list, &cnt) == 0) {
			struct candidate *nc = realloc(c, (n + cnt + 1) * sizeof *c);
			if (nc) {
				c = nc;
				for (size_t i = 0; i < cnt; i++) {
					memset(&c[n], 0, sizeof *c);
					snprintf(c[n].port, sizeof c->port, "%s", list[i].path);
					snprintf(c[n].serial, sizeof c->serial, "%s", list[i].serial);
					c[n].usb = 1;
					n++;
				}
			}
			flasher_port_list_free(list);
		}
	}

	for (size_t i = 0; i < n && !d->stopping; i++) {
		pthread_mutex_lock(&d->lock);
		int skip = port_busy_locked(c[i].port);
		/* A busy unit re-enumerating on a new USB port: its job owns it. */
		if (!skip && c[i].serial[0]) {
			struct unit *u = unit_by_uid_locked(c[i].serial);
			if (u && (u->busy_job || u->op_busy))
				skip = 1;
		}
		/* A unit's own job may be holding it under its old port name. */
		for (size_t k = 0; !skip && k < d->nunits; k++)
			if (!strcmp(d->units[k]->port, c[i].port) && (d->units[k]->busy_job || d->units[k]->op_busy))
				skip = 1;
		int fresh = 0;
		for (size_t k = 0; !skip && k < d->nunits; k++) {
			struct unit *u = d->units[k];
			if (u->present && !strcmp(u->port, c[i].port) && time(NULL) - u->last_seen < d->keepalive_s)
				fresh = 1;
		}
		if (!skip)
			port_acquire_locked(c[i].port);
		pthread_mutex_unlock(&d->lock);
		if (skip)
			continue;

		flasher_unit_info info;
		memset(&info, 0, sizeof info);
		struct stat st;
		int gone = c[i].port[0] == '/' && stat(c[i].port, &st) != 0;
		/* A unit that answered recently is left alone: its node still
		 * exists (USB: it is still listed), and a HELLO between two of
		 * its jobs only competes with them. */
		if (!gone && fresh) {
			pthread_mutex_lock(&d->lock);
			port_release_locked(c[i].port);
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		int rc = gone ? FLASHER_ENOTFOUND : probe(c[i].port, &info);

		pthread_mutex_lock(&d->lock);
		port_release_locked(c[i].port);
		if (rc == FLASHER_EBUSY) {
			/* another session (a CLI, another app) owns the unit: the probe
			 * sent nothing, and the unit is neither gone nor ours to keep alive */
			pthread_mutex_unlock(&d->lock);
			continue;
		}
		if (rc == 0 && info.uid[0]) {
			unit_set_info_locked(unit_by_uid_locked(info.uid), &info, c[i].port);
		} else {
			for (size_t k = 0; k < d->nunits; k++) {
				struct unit *u = d->units[k];
				if (!u->present || strcmp(u->port, c[i].port) || u->busy_job || u->op_busy)
					continue;
				/* A slow answer once is not an unplug; a vanished node is. */
				if (gone || ++u->fail_count >= 2)
					unit_mark_absent_locked(u);
			}
		}
		pthread_mutex_unlock(&d->lock);
	}

	/* Present idle units whose port is no longer a candidate have gone. */
	pthread_mutex_lock(&d->lock);
	for (size_t k = 0; k < d->nunits; k++) {
		struct unit *u = d->units[k];
		if (!u->present || u->busy_job || u->op_busy)
			continue;
		int found = 0;
		for (size_t i = 0; i < n && !found; i++)
			found = !strcmp(c[i].port, u->port);
		if (!found)
			unit_mark_absent_locked(u);
	}
	pthread_mutex_unlock(&d->lock);
	free(c);
}

static void *prober_main(void *arg)
{
	(void)arg;
	struct daemon *d = g_daemon;
	for (;;) {
		scan_once();
		pthread_mutex_lock(&d->lock);
		struct timespec until, now;
		clock_gettime(CLOCK_REALTIME, &until);
		add_ms(&until, d->rescan_ms);
		if (followup_pending && ts_before(&followup_at, &until))
			until = followup_at;
		while (!d->stopping && !d->rescan_now)
			if (pthread_cond_timedwait(&d->cond, &d->lock, &until) == ETIMEDOUT)
				break;
		d->rescan_now = 0;
		clock_gettime(CLOCK_REALTIME, &now);
		if (followup_pending && !ts_before(&now, &followup_at))
			followup_pending = 0;
		int stop = d->stopping;
		pthread_mutex_unlock(&d->lock);
		if (stop)
			break;
	}
	return NULL;
}

static void hotplug_cb(const flasher_watch_event *ev, void *arg)
{
	(void)ev;
	(void)arg;
	/* Scan now, and once more a moment later: the tty node can follow
	 * the USB device's event (arrival: cdc_acm binds after the device
	 * appears; a testbed sends "remove" before taking the nodes away),
	 * and the periodic rescan may be far off. */
	pthread_mutex_lock(&g_daemon->lock);
	g_daemon->rescan_now = 1;
	clock_gettime(CLOCK_REALTIME, &followup_at);
	add_ms(&followup_at, HOTPLUG_FOLLOWUP_MS);
	followup_pending = 1;
	pthread_cond_broadcast(&g_daemon->cond);
	pthread_mutex_unlock(&g_daemon->lock);
}

static void *hotplug_main(void *arg)
{
	(void)arg;
	while (!__atomic_load_n(&g_daemon->stopping, __ATOMIC_RELAXED))
		if (flasher_watch_dispatch(watch, 250) == FLASHER_ECANCELLED)
			break;
	return NULL;
}

int units_start(void)
{
	struct daemon *d = g_daemon;
	if (d->usb_scan) {
		/* Units' USB devices and serial ports coming and going, through the
		 * library's watch (flasher/watch.h): every event rescans. */
		flasher_usb_id ids[FLASHER_MAX_USB_IDS];
		flasher_discovery_options dopt;
		discovery_options(&dopt, ids);
		flasher_watch_options wo = FLASHER_WATCH_OPTIONS_INIT;
		wo.discovery = &dopt;
		wo.callback = hotplug_cb;
		if (flasher_watch_open(&watch, &wo) == 0) {
			if (pthread_create(&hotplug_thread, NULL, hotplug_main, NULL) == 0)
				hotplug_running = 1;
			else {
				flasher_watch_close(watch);
				watch = NULL;
			}
		} else {
			daemon_log("no hotplug events (rescanning every %d ms): %s", d->rescan_ms, flasher_error_last());
		}
	}
	if (pthread_create(&prober_thread, NULL, prober_main, NULL) != 0)
		return FLASHER_ENOMEM;
	prober_running = 1;
	return 0;
}

void units_stop(void)
{
	if (prober_running)
		pthread_join(prober_thread, NULL);
	prober_running = 0;
	if (hotplug_running) {
		flasher_watch_interrupt(watch);
		pthread_join(hotplug_thread, NULL);
		hotplug_running = 0;
	}
	flasher_watch_close(watch);
	watch = NULL;
}
