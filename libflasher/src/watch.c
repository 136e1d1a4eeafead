/* Units coming and going (flasher/watch.h): libusb hotplug for the USB
 * devices, libudev's monitor for their serial ports, both behind one epoll
 * descriptor so an application can add a single fd to its own loop. */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <libudev.h>
#include <libusb.h>

#include "error_internal.h"
#include "flasher/session.h"
#include "flasher/watch.h"

#define MAX_KNOWN 64 /* ports and USB devices remembered for their REMOVED event */

struct known {
	int used;
	flasher_watch_kind kind;
	flasher_port_info info; /* ports: keyed by path; USB devices: by bus and address */
};

struct flasher_watch {
	flasher_watch_cb cb;
	void *payload;
	flasher_usb_id ids[FLASHER_MAX_USB_IDS];
	size_t nids;
	int all;
	int epfd, wakefd;
	struct udev *udev;
	struct udev_monitor *mon;
	libusb_context *usb;
	libusb_hotplug_callback_handle handles[FLASHER_MAX_USB_IDS];
	int nhandles;
	int existing_pending;
	/* events gathered by the libusb callback during one dispatch */
	flasher_watch_event queue[32];
	size_t nqueue;
	struct known known[MAX_KNOWN];
	/* ttys announced before their USB parent could be read (a device added
	 * child first, as umockdev does): looked at again for a while */
	struct {
		char syspath[256];
		int tries;
	} retry[8];
	size_t nretry;
};

#define RETRY_MS 50
#define RETRY_TRIES 40

static int wanted(const flasher_watch *w, unsigned vid, unsigned pid)
{
	if (w->all)
		return 1;
	if (!w->nids)
		return vid == FLASHER_USB_VID && pid == FLASHER_USB_PID;
	for (size_t i = 0; i < w->nids; i++)
		if (w->ids[i].vid == vid && w->ids[i].pid == pid)
			return 1;
	return 0;
}

static void copy(char *dst, size_t cap, const char *src)
{
	snprintf(dst, cap, "%s", src ? src : "");
}

static struct known *find_known(flasher_watch *w, flasher_watch_kind kind, const flasher_port_info *p)
{
	for (size_t i = 0; i < MAX_KNOWN; i++) {
		struct known *k = &w->known[i];
		if (!k->used || k->kind != kind)
			continue;
		if (kind == FLASHER_WATCH_PORT ? !strcmp(k->info.path, p->path)
		                               : k->info.bus == p->bus && k->info.address == p->address)
			return k;
	}
	return NULL;
}

/* Remember what was added, forget what was removed; the REMOVED event gets
 * the remembered details. Returns 0 when the event is news. */
static int track(flasher_watch *w, flasher_watch_event *ev)
{
	struct known *k = find_known(w, ev->kind, &ev->port);
	if (ev->action == FLASHER_WATCH_REMOVED) {
		if (!k)
			return -1; /* never reported as added (not a unit) */
		ev->port = k->info;
		k->used = 0;
		return 0;
	}
	if (k)
		return -1; /* already known (the existing scan and an event raced) */
	for (size_t i = 0; i < MAX_KNOWN; i++)
		if (!w->known[i].used) {
			w->known[i].used = 1;
			w->known[i].kind = ev->kind;
			w->known[i].info = ev->port;
			break;
		}
	return 0;
}

static void deliver(flasher_watch *w, flasher_watch_event *ev, int *count)
{
	if (track(w, ev) != 0)
		return;
	ev->struct_size = sizeof *ev;
	w->cb(ev, w->payload);
	(*count)++;
}

/* ---- serial ports (udev) ---------------------------------------------------- */

/* A tty's identity from its USB parent; 0 when it is a USB serial port. */
static int port_from_udev(struct udev_device *dev, flasher_port_info *p)
{
	memset(p, 0, sizeof *p);
	p->bus = p->address = -1;
	const char *node = udev_device_get_devnode(dev);
	if (!node)
		return -1;
	copy(p->path, sizeof p->path, node);
	struct udev_device *usb = udev_device_get_parent_with_subsystem_devtype(dev, "usb", "usb_device");
	if (!usb)
		return -1;
	const char *vid = udev_device_get_sysattr_value(usb, "idVendor");
	const char *pid = udev_device_get_sysattr_value(usb, "idProduct");
	if (!vid || !pid)
		return -1;
	p->vid = (uint16_t)strtoul(vid, NULL, 16);
	p->pid = (uint16_t)strtoul(pid, NULL, 16);
	copy(p->serial, sizeof p->serial, udev_device_get_sysattr_value(usb, "serial"));
	copy(p->description, sizeof p->description, udev_device_get_sysattr_value(usb, "product"));
	const char *bus = udev_device_get_sysattr_value(usb, "busnum");
	const char *dn = udev_device_get_sysattr_value(usb, "devnum");
	if (bus && dn) {
		p->bus = atoi(bus);
		p->address = atoi(dn);
	}
	return 0;
}

static void udev_pending(flasher_watch *w, int *count)
{
	struct udev_device *dev;
	while ((dev = udev_monitor_receive_device(w->mon))) {
		const char *action = udev_device_get_action(dev);
		flasher_watch_event ev;
		memset(&ev, 0, sizeof ev);
		ev.kind = FLASHER_WATCH_PORT;
		if (action && !strcmp(action, "add")) {
			ev.action = FLASHER_WATCH_ADDED;
			if (port_from_udev(dev, &ev.port) == 0) {
				if (wanted(w, ev.port.vid, ev.port.pid))
					deliver(w, &ev, count);
			} else if (ev.port.path[0] && udev_device_get_syspath(dev) && strstr(udev_device_get_syspath(dev), "/usb") &&
			           w->nretry < sizeof w->retry / sizeof w->retry[0]) {
				copy(w->retry[w->nretry].syspath, sizeof w->retry[0].syspath, udev_device_get_syspath(dev));
				w->retry[w->nretry++].tries = 0;
			}
		} else if (action && !strcmp(action, "remove")) {
			ev.action = FLASHER_WATCH_REMOVED;
			copy(ev.port.path, sizeof ev.port.path, udev_device_get_devnode(dev));
			if (ev.port.path[0])
				deliver(w, &ev, count);
		}
		udev_device_unref(dev);
	}
}

static void retry_pending(flasher_watch *w, int *count)
{
	for (size_t i = 0; i < w->nretry;) {
		struct udev_device *dev = udev_device_new_from_syspath(w->udev, w->retry[i].syspath);
		flasher_watch_event ev;
		memset(&ev, 0, sizeof ev);
		ev.kind = FLASHER_WATCH_PORT;
		ev.action = FLASHER_WATCH_ADDED;
		int done = !dev || ++w->retry[i].tries >= RETRY_TRIES;
		if (dev && port_from_udev(dev, &ev.port) == 0) {
			if (wanted(w, ev.port.vid, ev.port.pid))
				deliver(w, &ev, count);
			done = 1;
		}
		if (dev)
			udev_device_unref(dev);
		if (done)
			w->retry[i] = w->retry[--w->nretry];
		else
			i++;
	}
}

static void existing_ports(flasher_watch *w, int *count)
{
	struct udev_enumerate *en = udev_enumerate_new(w->udev);
	if (!en)
		return;
	udev_enumerate_add_match_subsystem(en, "tty");
	udev_enumerate_scan_devices(en);
	struct udev_list_entry *e;
	udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en))
	{
		struct udev_device *dev = udev_device_new_from_syspath(w->udev, udev_list_entry_get_name(e));
		if (!dev)
			continue;
		flasher_watch_event ev;
		memset(&ev, 0, sizeof ev);
		ev.kind = FLASHER_WATCH_PORT;
		ev.action = FLASHER_WATCH_ADDED;
		if (port_from_udev(dev, &ev.port) == 0 && wanted(w, ev.port.vid, ev.port.pid))
			deliver(w, &ev, count);
		udev_device_unref(dev);
	}
	udev_enumerate_unref(en);
}

/* ---- USB devices (libusb) ----------------------------------------------------- */

/* The serial number of a USB device from udev (libusb would have to open it). */
static void usb_serial(flasher_watch *w, flasher_port_info *p)
{
	char name[32];
	snprintf(name, sizeof name, "%03d/%03d", p->bus, p->address);
	struct udev_enumerate *en = udev_enumerate_new(w->udev);
	if (!en)
		return;
	udev_enumerate_add_match_subsystem(en, "usb");
	udev_enumerate_add_match_property(en, "DEVTYPE", "usb_device");
	udev_enumerate_scan_devices(en);
	struct udev_list_entry *e;
	udev_list_entry_foreach(e, udev_enumerate_get_list_entry(en))
	{
		struct udev_device *dev = udev_device_new_from_syspath(w->udev, udev_list_entry_get_name(e));
		if (!dev)
			continue;
		const char *b = udev_device_get_sysattr_value(dev, "busnum");
		const char *d = udev_device_get_sysattr_value(dev, "devnum");
		if (b && d && atoi(b) == p->bus && atoi(d) == p->address) {
			copy(p->serial, sizeof p->serial, udev_device_get_sysattr_value(dev, "serial"));
			copy(p->description, sizeof p->description, udev_device_get_sysattr_value(dev, "product"));
		}
		udev_device_unref(dev);
	}
	udev_enumerate_unref(en);
}

static int LIBUSB_CALL on_usb(libusb_context *ctx, libusb_device *dev, libusb_hotplug_event event, void *arg)
{
	(void)ctx;
	flasher_watch *w = arg;
	struct libusb_device_descriptor d;
	if (w->nqueue == sizeof w->queue / sizeof w->queue[0] || libusb_get_device_descriptor(dev, &d) != 0)
		return 0;
	flasher_watch_event *ev = &w->queue[w->nqueue];
	memset(ev, 0, sizeof *ev);
	ev->kind = FLASHER_WATCH_USB;
	ev->action = event == LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED ? FLASHER_WATCH_ADDED : FLASHER_WATCH_REMOVED;
	ev->port.vid = d.idVendor;
	ev->port.pid = d.idProduct;
	ev->port.bus = libusb_get_bus_number(dev);
	ev->port.address = libusb_get_device_address(dev);
	if (wanted(w, d.idVendor, d.idProduct))
		w->nqueue++;
	return 0;
}

static void usb_pending(flasher_watch *w, int *count)
{
	struct timeval zero = {0, 0};
	/* (the queue may already hold what LIBUSB_HOTPLUG_ENUMERATE reported
	 * while the callbacks were registered) */
	libusb_handle_events_timeout_completed(w->usb, &zero, NULL);
	for (size_t i = 0; i < w->nqueue; i++) {
		flasher_watch_event ev = w->queue[i];
		if (ev.action == FLASHER_WATCH_ADDED)
			usb_serial(w, &ev.port);
		deliver(w, &ev, count);
	}
	w->nqueue = 0;
}

/* ---- the watch ---------------------------------------------------------------- */

static int epoll_add(int epfd, int fd, uint32_t events)
{
	struct epoll_event e = {.events = events, .data.fd = fd};
	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e);
}

int flasher_watch_open(flasher_watch **out, const flasher_watch_options *opts)
{
	if (!out || !opts || !opts->callback)
		return flasher__error(FLASHER_EINVAL, "watch: no options or no callback");
	*out = NULL;
	if (opts->version < 1 || opts->version > FLASHER_WATCH_OPTIONS_VERSION)
		return flasher__error(FLASHER_EINVAL, "watch options: version %u unknown (this library knows %d)",
		                      opts->version, FLASHER_WATCH_OPTIONS_VERSION);
	const flasher_discovery_options *d = opts->discovery;
	if (d && (d->version < 1 || d->usb_id_count > FLASHER_MAX_USB_IDS || (d->usb_id_count && !d->usb_ids)))
		return flasher__error(FLASHER_EINVAL, "watch options: bad discovery options (version %u, %zu USB ids)",
		                      d->version, d->usb_id_count);
	flasher_watch *w = calloc(1, sizeof *w);
	if (!w)
		return flasher__error(FLASHER_ENOMEM, "watch: out of memory");
	w->cb = opts->callback;
	w->payload = opts->payload;
	w->existing_pending = opts->existing;
	w->epfd = w->wakefd = -1;
	if (d) {
		w->nids = d->usb_id_count;
		memcpy(w->ids, d->usb_ids, w->nids * sizeof *w->ids);
		w->all = d->all;
	}
	int err = 0;
	if ((w->epfd = epoll_create1(EPOLL_CLOEXEC)) < 0 || (w->wakefd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) < 0 ||
	    epoll_add(w->epfd, w->wakefd, EPOLLIN) != 0) {
		err = flasher__error(FLASHER_EIO, "watch: epoll/eventfd: %s", strerror(errno));
		goto fail;
	}
	/* Serial ports: the udev monitor (what udevd has finished with, so
	 * the node exists and its rules have run). */
	if (!(w->udev = udev_new()) || !(w->mon = udev_monitor_new_from_netlink(w->udev, "udev")) ||
	    udev_monitor_filter_add_match_subsystem_devtype(w->mon, "tty", NULL) < 0 ||
	    udev_monitor_enable_receiving(w->mon) < 0 || epoll_add(w->epfd, udev_monitor_get_fd(w->mon), EPOLLIN) != 0) {
		err = flasher__error(FLASHER_EIO, "watch: cannot monitor udev events: %s", strerror(errno));
		goto fail;
	}
	/* USB devices: libusb hotplug, one callback per id (or any device). */
	if (libusb_init(&w->usb) != 0) {
		w->usb = NULL;
		err = flasher__error(FLASHER_EIO, "watch: libusb_init failed");
		goto fail;
	}
	if (!libusb_has_capability(LIBUSB_CAP_HAS_HOTPLUG)) {
		err = flasher__error(FLASHER_EUNSUPPORTED, "watch: this libusb has no hotplug support");
		goto fail;
	}
	size_t nreg = w->all || !w->nids ? 1 : w->nids;
	for (size_t i = 0; i < nreg; i++) {
		int vid = w->all ? LIBUSB_HOTPLUG_MATCH_ANY : w->nids ? w->ids[i].vid : FLASHER_USB_VID;
		int pid = w->all ? LIBUSB_HOTPLUG_MATCH_ANY : w->nids ? w->ids[i].pid : FLASHER_USB_PID;
		if (libusb_hotplug_register_callback(
		            w->usb, LIBUSB_HOTPLUG_EVENT_DEVICE_ARRIVED | LIBUSB_HOTPLUG_EVENT_DEVICE_LEFT,
		            opts->existing ? LIBUSB_HOTPLUG_ENUMERATE : 0, vid, pid, LIBUSB_HOTPLUG_MATCH_ANY, on_usb, w,
		            &w->handles[w->nhandles]) != LIBUSB_SUCCESS) {
			err = flasher__error(FLASHER_EIO, "watch: cannot register a libusb hotplug callback");
			goto fail;
		}
		w->nhandles++;
	}
	/* libusb's own descriptors (its event pipe, timers) join the epoll set:
	 * its hotplug thread signals them when events are waiting. */
	const struct libusb_pollfd **fds = libusb_get_pollfds(w->usb);
	for (size_t i = 0; fds && fds[i]; i++)
		if (epoll_add(w->epfd, fds[i]->fd, (uint32_t)fds[i]->events) != 0) {
			libusb_free_pollfds(fds);
			err = flasher__error(FLASHER_EIO, "watch: epoll: %s", strerror(errno));
			goto fail;
		}
	libusb_free_pollfds(fds);
	if (opts->existing) /* the fd is readable at once: the first dispatch reports them */
		flasher_watch_interrupt(w);
	*out = w;
	return 0;
fail:
	flasher_watch_close(w);
	return err;
}

int flasher_watch_fd(const flasher_watch *w)
{
	return w ? w->epfd : -1;
}

void flasher_watch_interrupt(flasher_watch *w)
{
	uint64_t one = 1;
	if (w && write(w->wakefd, &one, sizeof one) < 0) {
		/* full counter: a wake-up is pending anyway */
	}
}

int flasher_watch_dispatch(flasher_watch *w, int timeout_ms)
{
	if (!w)
		return flasher__error(FLASHER_EINVAL, "watch: NULL");
	int count = 0;
	if (w->existing_pending) {
		uint64_t v;
		if (read(w->wakefd, &v, sizeof v) < 0) {
			/* nothing to drain */
		}
		w->existing_pending = 0;
		existing_ports(w, &count);
		usb_pending(w, &count); /* LIBUSB_HOTPLUG_ENUMERATE queued the present devices */
		udev_pending(w, &count);
		return count;
	}
	struct epoll_event evs[8];
	int n;
	for (;;) {
		int wait = w->nretry && (timeout_ms < 0 || timeout_ms > RETRY_MS) ? RETRY_MS : timeout_ms;
		do
			n = epoll_wait(w->epfd, evs, 8, wait);
		while (n < 0 && errno == EINTR);
		if (n != 0 || !w->nretry)
			break;
		retry_pending(w, &count);
		if (count || (timeout_ms >= 0 && (timeout_ms -= wait) <= 0))
			return count;
	}
	if (n < 0)
		return flasher__error(FLASHER_EIO, "watch: epoll_wait: %s", strerror(errno));
	int woken = 0;
	for (int i = 0; i < n; i++)
		if (evs[i].data.fd == w->wakefd) {
			uint64_t v;
			if (read(w->wakefd, &v, sizeof v) == (ssize_t)sizeof v)
				woken = 1;
		}
	/* USB first: its device appears before its port and goes after it. */
	usb_pending(w, &count);
	udev_pending(w, &count);
	if (woken)
		return flasher__error(FLASHER_ECANCELLED, "watch interrupted");
	return count;
}

void flasher_watch_close(flasher_watch *w)
{
	if (!w)
		return;
	if (w->usb) {
		for (int i = 0; i < w->nhandles; i++)
			libusb_hotplug_deregister_callback(w->usb, w->handles[i]);
		libusb_exit(w->usb);
	}
	if (w->mon)
		udev_monitor_unref(w->mon);
	if (w->udev)
		udev_unref(w->udev);
	if (w->wakefd >= 0)
		close(w->wakefd);
	if (w->epfd >= 0)
		close(w->epfd);
	free(w);
}
