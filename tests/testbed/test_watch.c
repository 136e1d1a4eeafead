/* Runs inside `flasher-testbed --units 1 --control SOCK`: flasher_watch
 * reports units (their USB device and their serial port) plugged in and
 * out, from the application's own poll loop and from a thread. */
#include <criterion/criterion.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "flasher.h"

static void command(const char *cmd, char *answer, size_t cap)
{
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "%s", TESTBED_CONTROL);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0, "control socket %s", TESTBED_CONTROL);
	cr_assert_eq(write(fd, cmd, strlen(cmd)), (ssize_t)strlen(cmd));
	size_t len = 0;
	while (len < cap - 1) {
		ssize_t n = read(fd, answer + len, cap - 1 - len);
		cr_assert_gt(n, 0, "no answer to %s", cmd);
		len += (size_t)n;
		if (answer[len - 1] == '\n')
			break;
	}
	answer[len] = '\0';
	close(fd);
}

struct seen {
	int n;
	flasher_watch_event ev[16];
};

static void on_event(const flasher_watch_event *ev, void *payload)
{
	struct seen *s = payload;
	cr_assert_eq(ev->struct_size, sizeof *ev);
	if (s->n < 16)
		s->ev[s->n++] = *ev;
}

static const flasher_watch_event *find(const struct seen *s, flasher_watch_kind kind, flasher_watch_action action)
{
	for (int i = 0; i < s->n; i++)
		if (s->ev[i].kind == kind && s->ev[i].action == action)
			return &s->ev[i];
	return NULL;
}

/* The application's loop: poll the watch's fd, dispatch without waiting,
 * until both events of a plug (or unplug) arrived or 5 s passed. */
static void pump(flasher_watch *w, struct seen *s, flasher_watch_action action)
{
	for (int i = 0; i < 50 && !(find(s, FLASHER_WATCH_USB, action) && find(s, FLASHER_WATCH_PORT, action)); i++) {
		struct pollfd p = {flasher_watch_fd(w), POLLIN, 0};
		if (poll(&p, 1, 100) > 0)
			cr_assert_geq(flasher_watch_dispatch(w, 0), 0, "%s", flasher_error_last());
	}
}

TestSuite(watch, .timeout = 60);

Test(watch, units_added_and_removed_from_an_app_loop)
{
	struct seen s = {0};
	flasher_watch_options o = FLASHER_WATCH_OPTIONS_INIT;
	o.callback = on_event;
	o.payload = &s;
	o.existing = 1;
	flasher_watch *w;
	cr_assert_eq(flasher_watch_open(&w, &o), 0, "%s", flasher_error_last());
	/* the unit already there */
	pump(w, &s, FLASHER_WATCH_ADDED);
	const flasher_watch_event *port = find(&s, FLASHER_WATCH_PORT, FLASHER_WATCH_ADDED);
	cr_assert_not_null(port, "no ADDED event for the unit already plugged in");
	cr_expect(!strncmp(port->port.path, "/dev/ttyACM", 11), "%s", port->port.path);
	cr_expect_eq(port->port.vid, 0x0483);
	cr_expect_eq(strlen(port->port.serial), 24, "serial: '%s'", port->port.serial);
	cr_expect_not_null(find(&s, FLASHER_WATCH_USB, FLASHER_WATCH_ADDED));

	/* plugged in */
	char a[256], path[32], serial[32];
	int idx;
	s.n = 0;
	command("add\n", a, sizeof a);
	cr_assert_eq(sscanf(a, "ok %d %31s %31s", &idx, path, serial), 3, "answer: %s", a);
	pump(w, &s, FLASHER_WATCH_ADDED);
	port = find(&s, FLASHER_WATCH_PORT, FLASHER_WATCH_ADDED);
	cr_assert_not_null(port, "no ADDED event for %s (%d events)", path, s.n);
	cr_expect_str_eq(port->port.path, path);
	cr_expect_str_eq(port->port.serial, serial);
	const flasher_watch_event *usb = find(&s, FLASHER_WATCH_USB, FLASHER_WATCH_ADDED);
	cr_assert_not_null(usb, "no USB ADDED event");
	cr_expect_eq(usb->port.pid, 0x5740);
	cr_expect_eq(usb->port.bus, port->port.bus);
	cr_expect_eq(usb->port.address, port->port.address);
	cr_expect_str_eq(usb->port.serial, serial);
	cr_expect_eq(s.n, 2, "one event of each kind, not %d", s.n);

	/* pulled out: the events carry what was known at arrival */
	s.n = 0;
	char cmd[32];
	snprintf(cmd, sizeof cmd, "remove %d\n", idx);
	command(cmd, a, sizeof a);
	pump(w, &s, FLASHER_WATCH_REMOVED);
	port = find(&s, FLASHER_WATCH_PORT, FLASHER_WATCH_REMOVED);
	cr_assert_not_null(port, "no REMOVED event for %s", path);
	cr_expect_str_eq(port->port.path, path);
	cr_expect_str_eq(port->port.serial, serial);
	usb = find(&s, FLASHER_WATCH_USB, FLASHER_WATCH_REMOVED);
	cr_assert_not_null(usb, "no USB REMOVED event");
	cr_expect_str_eq(usb->port.serial, serial);
	cr_expect_eq(s.n, 2);
	/* nothing else pending */
	cr_expect_eq(flasher_watch_dispatch(w, 200), 0);
	flasher_watch_close(w);
}

struct runner {
	flasher_watch *w;
	struct seen s;
	pthread_mutex_t lock;
	int rc;
};

static void on_event_locked(const flasher_watch_event *ev, void *payload)
{
	struct runner *r = payload;
	pthread_mutex_lock(&r->lock);
	on_event(ev, &r->s);
	pthread_mutex_unlock(&r->lock);
}

static void *run_watch(void *arg)
{
	struct runner *r = arg;
	int rc;
	while ((rc = flasher_watch_dispatch(r->w, -1)) >= 0)
		;
	r->rc = rc;
	return NULL;
}

Test(watch, on_a_thread_until_interrupted)
{
	struct runner r = {.lock = PTHREAD_MUTEX_INITIALIZER};
	flasher_watch_options o = FLASHER_WATCH_OPTIONS_INIT;
	o.callback = on_event_locked;
	o.payload = &r;
	cr_assert_eq(flasher_watch_open(&r.w, &o), 0, "%s", flasher_error_last());
	pthread_t th;
	pthread_create(&th, NULL, run_watch, &r);
	char a[256];
	int idx;
	command("add\n", a, sizeof a);
	cr_assert_eq(sscanf(a, "ok %d", &idx), 1, "answer: %s", a);
	int got = 0;
	for (int i = 0; i < 50 && !got; i++) {
		usleep(100000);
		pthread_mutex_lock(&r.lock);
		got = find(&r.s, FLASHER_WATCH_PORT, FLASHER_WATCH_ADDED) != NULL;
		pthread_mutex_unlock(&r.lock);
	}
	cr_expect(got, "the thread saw no ADDED port");
	flasher_watch_interrupt(r.w);
	pthread_join(th, NULL);
	cr_expect_eq(r.rc, FLASHER_ECANCELLED);
	cr_expect_eq(r.s.n, 2, "USB and port, and no unit already present without existing=1 (%d)", r.s.n);
	flasher_watch_close(r.w);
	/* (the unit stays: the testbed cannot plug a unit in again at an index
	 * it removed one from) */
}

Test(watch, other_ids_see_nothing)
{
	struct seen s = {0};
	flasher_usb_id id = {0x1209, 0x0001};
	flasher_discovery_options d = FLASHER_DISCOVERY_OPTIONS_INIT;
	d.usb_ids = &id;
	d.usb_id_count = 1;
	flasher_watch_options o = FLASHER_WATCH_OPTIONS_INIT;
	o.callback = on_event;
	o.payload = &s;
	o.existing = 1;
	o.discovery = &d;
	flasher_watch *w;
	cr_assert_eq(flasher_watch_open(&w, &o), 0, "%s", flasher_error_last());
	char a[256];
	int idx;
	command("add\n", a, sizeof a);
	cr_assert_eq(sscanf(a, "ok %d", &idx), 1, "answer: %s", a);
	for (int i = 0; i < 10; i++)
		cr_assert_geq(flasher_watch_dispatch(w, 100), 0);
	cr_expect_eq(s.n, 0, "%d events for units with other ids", s.n);
	flasher_watch_close(w);
}
