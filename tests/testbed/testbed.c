/* flasher-testbed: presents N simulated units (flasher-devsim processes) as
 * USB CDC devices /dev/ttyACM<n> with VID:PID 0483:5740 and a serial number
 * in a umockdev testbed, then runs a command inside it. See usage(). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>
#include <umockdev.h>

#define MAX_UNITS 32
#define BUF_CAP 65536

struct pipe_buf {
	unsigned char data[BUF_CAP];
	size_t len;
};

struct unit {
	int present;
	int index;
	char serial[25];
	char tty[32];     /* /dev/ttyACM<n> */
	char usb_sys[160]; /* sysfs path of the USB device */
	char tty_sys[224];
	char intf_sys[192];
	char flash[512];
	UMockdevIoctlBase *ioctl;
	int dev_fd;  /* umockdev side of /dev/ttyACM<n> */
	int peer_fd; /* devsim's pty (slave) or -1 while it is down */
	pid_t pid;   /* devsim, 0 for an in-process echo unit */
	int out_fd;  /* devsim's stdout after the "pty:" line */
	int idle;    /* no client has the port open (its pty reports hangup) */
	struct pipe_buf to_peer, to_host;
};

static struct {
	UMockdevTestbed *tb;
	struct unit units[MAX_UNITS];
	const char *devsim;
	const char *flash_dir;
	char **devsim_args;
	int ndevsim_args;
	int echo;
	int verbose;
	unsigned vid, pid; /* USB ids the units present (--usb-id) */
	int control_fd;   /* FIFO or listening socket */
	int control_is_socket;
	int clients[8];
	char cbuf[8][256];
	size_t clen[8];
} g = {.control_fd = -1, .vid = 0x0483, .pid = 0x5740};

static void usage(FILE *out)
{
	fprintf(out,
	        "Usage: flasher-testbed [--units N] [--devsim PATH] [--flash-dir DIR] [--devsim-arg ARG]...\n"
	        "                       [--control FIFO_OR_SOCKET] [--usb-id VID:PID] [--echo] [--verbose]\n"
	        "                       -- COMMAND [ARGS...]\n\n"
	        "Presents N simulated units as USB CDC ports /dev/ttyACM0.. (VID:PID 0483:5740, serial =\n"
	        "a 24-hex-digit uid) in a umockdev testbed and runs COMMAND inside it; exits with its status.\n"
	        "Re-executes itself under umockdev-wrapper when needed.\n\n"
	        "  --units N         number of units at start (default 1)\n"
	        "  --devsim PATH     simulator binary (default $FLASHER_DEVSIM, else flasher-devsim on PATH)\n"
	        "  --flash-dir DIR   where unit<n>.flash files live (default: a fresh temporary directory)\n"
	        "  --devsim-arg ARG  extra argument for every simulator (repeatable)\n"
	        "  --usb-id VID:PID  USB ids the units present (hex; default 0483:5740): a vendor's own ids\n"
	        "  --echo            units echo bytes in-process instead of running a simulator\n"
	        "  --control PATH    FIFO (existing) or Unix socket (created) taking lines:\n"
	        "                      add | remove N | kill N | restart N | list\n"
	        "                    a socket client gets one answer line per command ('ok ...' or 'error ...')\n\n"
	        "Environment of COMMAND: FLASHER_TESTBED_UNITS=N, FLASHER_TESTBED_SERIALS=uid,uid,...\n");
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "flasher-testbed: ");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
	exit(125);
}

/* ---- umockdev ioctls: modem lines and break are accepted, the rest goes to
 * the backing pty. ------------------------------------------------------- */

static gboolean on_ioctl(UMockdevIoctlBase *h, UMockdevIoctlClient *c, gpointer user)
{
	(void)h;
	(void)user;
	gulong req = umockdev_ioctl_client_get_request(c);
	if (req == TIOCMGET) {
		UMockdevIoctlData *d =
			umockdev_ioctl_data_resolve(umockdev_ioctl_client_get_arg(c), 0, sizeof(int), NULL);
		if (!d)
			return FALSE;
		*(int *)d->data = TIOCM_DSR | TIOCM_CTS | TIOCM_CD | TIOCM_DTR | TIOCM_RTS;
		umockdev_ioctl_data_unref(d);
		umockdev_ioctl_client_complete(c, 0, 0);
		return TRUE;
	}
	if (req == TIOCMSET || req == TIOCMBIS || req == TIOCMBIC || req == TIOCSBRK || req == TIOCCBRK) {
		umockdev_ioctl_client_complete(c, 0, 0);
		return TRUE;
	}
	return FALSE;
}

/* ---- simulator processes ------------------------------------------------ */

static void set_raw_nonblock(int fd)
{
	struct termios t;
	if (tcgetattr(fd, &t) == 0) {
		cfmakeraw(&t);
		tcsetattr(fd, TCSANOW, &t);
	}
	fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

/* Start the simulator of u and connect to the pty it announces. */
static int start_devsim(struct unit *u)
{
	int out[2];
	if (pipe2(out, O_CLOEXEC) < 0)
		return -1;
	pid_t pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		/* The simulator is a plain process: it must not see the mock /dev. */
		unsetenv("LD_PRELOAD");
		unsetenv("UMOCKDEV_DIR");
		dup2(out[1], 1);
		char *argv[64];
		int n = 0;
		argv[n++] = (char *)g.devsim;
		argv[n++] = "--flash";
		argv[n++] = u->flash;
		argv[n++] = "--serial";
		argv[n++] = u->serial;
		for (int i = 0; i < g.ndevsim_args && n < 62; i++)
			argv[n++] = g.devsim_args[i];
		argv[n] = NULL;
		execvp(g.devsim, argv);
		fprintf(stderr, "flasher-testbed: cannot run %s: %s\n", g.devsim, strerror(errno));
		_exit(127);
	}
	close(out[1]);
	/* First line: "pty: PATH". */
	char line[512];
	size_t len = 0;
	while (len < sizeof line - 1) {
		struct pollfd p = {.fd = out[0], .events = POLLIN};
		if (poll(&p, 1, 10000) <= 0)
			break;
		ssize_t r = read(out[0], line + len, 1);
		if (r <= 0)
			break;
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = '\0';
	if (strncmp(line, "pty: ", 5) != 0) {
		fprintf(stderr, "flasher-testbed: unit %d: simulator said '%s', expected 'pty: PATH'\n", u->index, line);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(out[0]);
		return -1;
	}
	int fd = open(line + 5, O_RDWR | O_NOCTTY | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "flasher-testbed: unit %d: open %s: %s\n", u->index, line + 5, strerror(errno));
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		close(out[0]);
		return -1;
	}
	set_raw_nonblock(fd);
	fcntl(out[0], F_SETFL, fcntl(out[0], F_GETFL) | O_NONBLOCK);
	u->pid = pid;
	u->peer_fd = fd;
	u->out_fd = out[0];
	u->to_peer.len = 0;
	if (g.verbose)
		fprintf(stderr, "flasher-testbed: unit %d (%s) pid %d on %s\n", u->index, u->tty, (int)pid, line + 5);
	return 0;
}

static void stop_devsim(struct unit *u)
{
	if (u->pid > 0) {
		kill(u->pid, SIGTERM);
		for (int i = 0; i < 200; i++) {
			if (waitpid(u->pid, NULL, WNOHANG) == u->pid) {
				u->pid = 0;
				break;
			}
			usleep(10000);
		}
		if (u->pid > 0) {
			kill(u->pid, SIGKILL);
			waitpid(u->pid, NULL, 0);
		}
	}
	u->pid = 0;
	if (u->peer_fd >= 0)
		close(u->peer_fd);
	if (u->out_fd >= 0)
		close(u->out_fd);
	u->peer_fd = u->out_fd = -1;
	u->to_peer.len = 0;
}

/* ---- units ------------------------------------------------------------ */

static int add_unit(void)
{
	int i = 0;
	while (i < MAX_UNITS && g.units[i].present)
		i++;
	if (i == MAX_UNITS)
		return -1;
	struct unit *u = &g.units[i];
	memset(u, 0, sizeof *u);
	u->index = i;
	u->peer_fd = u->out_fd = -1;
	/* Looks like an STM32 96-bit UID; distinct per index. */
	snprintf(u->serial, sizeof u->serial, "0048003A3532510C%08X", 0x31300000u + (unsigned)i);
	snprintf(u->tty, sizeof u->tty, "/dev/ttyACM%d", i);
	snprintf(u->usb_sys, sizeof u->usb_sys, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%d", i + 1);
	snprintf(u->intf_sys, sizeof u->intf_sys, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%d/1-%d:1.0", i + 1,
	         i + 1);
	snprintf(u->tty_sys, sizeof u->tty_sys, "/sys/devices/pci0000:00/0000:00:14.0/usb1/1-%d/1-%d:1.0/tty/ttyACM%d",
	         i + 1, i + 1, i);
	snprintf(u->flash, sizeof u->flash, "%s/unit%d.flash", g.flash_dir, i);

	u->ioctl = umockdev_ioctl_base_new();
	g_signal_connect(u->ioctl, "handle-ioctl", G_CALLBACK(on_ioctl), NULL);
	umockdev_testbed_attach_ioctl(g.tb, u->tty, u->ioctl, NULL);
	char desc[2048];
	snprintf(desc, sizeof desc,
	         "P: %s\nN: ttyACM%d\nE: DEVNAME=/dev/ttyACM%d\nE: SUBSYSTEM=tty\nA: dev=166:%d\nL: device=../../../1-%d:1.0\n\n"
	         "P: %s\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_interface\nE: DRIVER=cdc_acm\nA: bInterfaceNumber=00\n"
	         "A: bInterfaceClass=02\n\n"
	         "P: %s\nE: SUBSYSTEM=usb\nE: DEVTYPE=usb_device\nE: DRIVER=usb\nA: idVendor=%04x\nA: idProduct=%04x\n"
	         "A: serial=%s\nA: manufacturer=flasher\nA: product=flasher simulated unit\nA: busnum=1\nA: devnum=%d\n"
	         /* A usbfs node and the descriptors: libusb enumerates the unit,
	          * so its hotplug callbacks fire on add and remove. */
	         "N: bus/usb/001/%03d\nE: DEVNAME=/dev/bus/usb/001/%03d\nE: BUSNUM=001\nE: DEVNUM=%03d\nA: speed=12\n"
	         "A: bConfigurationValue=1\nA: bNumConfigurations=1\n"
	         /* device: USB 2.0, CDC, 0483:5740, 1 configuration; configuration
	          * with one CDC interface */
	         "H: descriptors=1201000202000040%02x%02x%02x%02x000201020301"
	         "090212000101008032090400000002020000\n",
	         u->tty_sys + 4, i, i, i, i + 1, u->intf_sys + 4, u->usb_sys + 4, g.vid, g.pid, u->serial, i + 2, i + 2,
	         i + 2, i + 2, g.vid & 0xFF, g.vid >> 8, g.pid & 0xFF, g.pid >> 8);
	GError *err = NULL;
	if (!umockdev_testbed_add_from_string(g.tb, desc, &err)) {
		fprintf(stderr, "flasher-testbed: add unit %d: %s\n", i, err ? err->message : "?");
		g_clear_error(&err);
		return -1;
	}
	u->dev_fd = umockdev_testbed_get_dev_fd(g.tb, u->tty);
	if (u->dev_fd < 0) {
		fprintf(stderr, "flasher-testbed: no device fd for %s\n", u->tty);
		return -1;
	}
	set_raw_nonblock(u->dev_fd);
	u->present = 1;
	if (!g.echo && start_devsim(u) < 0)
		fprintf(stderr, "flasher-testbed: unit %d has no simulator (it will not answer)\n", i);
	return i;
}

static int remove_unit(int i)
{
	if (i < 0 || i >= MAX_UNITS || !g.units[i].present)
		return -1;
	struct unit *u = &g.units[i];
	stop_devsim(u);
	/* Hotplug listeners (libusb, udev) need the "remove" uevent first. */
	umockdev_testbed_uevent(g.tb, u->tty_sys, "remove");
	umockdev_testbed_uevent(g.tb, u->usb_sys, "remove");
	umockdev_testbed_detach_ioctl(g.tb, u->tty, NULL);
	umockdev_testbed_remove_device(g.tb, u->tty_sys);
	umockdev_testbed_remove_device(g.tb, u->intf_sys);
	umockdev_testbed_remove_device(g.tb, u->usb_sys);
	g_object_unref(u->ioctl);
	u->present = 0;
	u->dev_fd = -1;
	return 0;
}

/* ---- relay ------------------------------------------------------------ */

/* Move bytes from fd into b; returns -1 on hangup of fd. */
static int fill_from(int fd, struct pipe_buf *b)
{
	if (b->len == BUF_CAP)
		return 0;
	ssize_t n = read(fd, b->data + b->len, BUF_CAP - b->len);
	if (n > 0)
		b->len += (size_t)n;
	else if (n == 0 || (errno != EAGAIN && errno != EINTR))
		return -1;
	return 0;
}

static void drain_to(int fd, struct pipe_buf *b)
{
	if (!b->len)
		return;
	ssize_t n = write(fd, b->data, b->len);
	if (n > 0) {
		memmove(b->data, b->data + n, b->len - (size_t)n);
		b->len -= (size_t)n;
	}
}

static void echo_unit(struct unit *u)
{
	struct pipe_buf *b = &u->to_host;
	if (b->len < BUF_CAP)
		fill_from(u->dev_fd, b);
	drain_to(u->dev_fd, b);
}

/* ---- control channel -------------------------------------------------- */

static void reply(int client, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int client, const char *fmt, ...)
{
	char line[512];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(line, sizeof line, fmt, ap);
	va_end(ap);
	if (g.verbose)
		fprintf(stderr, "flasher-testbed: control: %s", line);
	/* A client that went away has nobody to tell. */
	if (client >= 0 && write(client, line, strlen(line)) < 0)
		return;
}

static void control_line(int client, char *line)
{
	char *nl = strchr(line, '\n');
	if (nl)
		*nl = '\0';
	int n = -1;
	if (!strcmp(line, "add")) {
		int i = add_unit();
		if (i < 0)
			reply(client, "error cannot add a unit\n");
		else
			reply(client, "ok %d %s %s\n", i, g.units[i].tty, g.units[i].serial);
	} else if (sscanf(line, "remove %d", &n) == 1) {
		if (remove_unit(n) < 0)
			reply(client, "error no unit %d\n", n);
		else
			reply(client, "ok removed %d\n", n);
	} else if (sscanf(line, "kill %d", &n) == 1) {
		if (n < 0 || n >= MAX_UNITS || !g.units[n].present || g.echo) {
			reply(client, "error no simulator for unit %d\n", n);
		} else {
			stop_devsim(&g.units[n]);
			reply(client, "ok killed %d\n", n);
		}
	} else if (sscanf(line, "restart %d", &n) == 1) {
		if (n < 0 || n >= MAX_UNITS || !g.units[n].present || g.echo) {
			reply(client, "error no simulator for unit %d\n", n);
		} else {
			stop_devsim(&g.units[n]);
			if (start_devsim(&g.units[n]) < 0)
				reply(client, "error unit %d did not restart\n", n);
			else
				reply(client, "ok restarted %d\n", n);
		}
	} else if (!strcmp(line, "list")) {
		char all[4096] = "ok";
		for (int i = 0; i < MAX_UNITS; i++)
			if (g.units[i].present)
				snprintf(all + strlen(all), sizeof all - strlen(all), " %d:%s:%s", i, g.units[i].tty,
				         g.units[i].serial);
		reply(client, "%s\n", all);
	} else if (*line) {
		reply(client, "error unknown command '%s'\n", line);
	}
}

static void control_input(int slot, int fd)
{
	char *buf = g.cbuf[slot];
	size_t *len = &g.clen[slot];
	ssize_t n = read(fd, buf + *len, sizeof g.cbuf[slot] - 1 - *len);
	if (n <= 0) {
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			if (g.control_is_socket) {
				close(fd);
				g.clients[slot] = -1;
			}
			*len = 0;
		}
		return;
	}
	*len += (size_t)n;
	buf[*len] = '\0';
	char *nl;
	while ((nl = strchr(buf, '\n'))) {
		*nl = '\0';
		control_line(g.control_is_socket ? fd : -1, buf);
		size_t used = (size_t)(nl - buf) + 1;
		memmove(buf, nl + 1, *len - used + 1);
		*len -= used;
	}
	if (*len == sizeof g.cbuf[slot] - 1)
		*len = 0; /* overlong line: drop it */
}

static void open_control(const char *path)
{
	struct stat st;
	for (int i = 0; i < 8; i++)
		g.clients[i] = -1;
	if (stat(path, &st) == 0 && S_ISFIFO(st.st_mode)) {
		/* O_RDWR: the FIFO never reports EOF when a writer closes. */
		g.control_fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (g.control_fd < 0)
			die("control FIFO %s: %s", path, strerror(errno));
		return;
	}
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	if (strlen(path) >= sizeof sa.sun_path)
		die("control socket path too long: %s", path);
	strcpy(sa.sun_path, path);
	unlink(path);
	g.control_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (g.control_fd < 0 || bind(g.control_fd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
	    listen(g.control_fd, 4) < 0)
		die("control socket %s: %s", path, strerror(errno));
	g.control_is_socket = 1;
}

/* ---- main loop ------------------------------------------------------------ */

static int run(pid_t child)
{
	for (;;) {
		int st;
		if (waitpid(child, &st, WNOHANG) == child)
			return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
		struct pollfd p[3 * MAX_UNITS + 9];
		int owner[3 * MAX_UNITS + 9];
		int np = 0;
		for (int i = 0; i < MAX_UNITS; i++) {
			struct unit *u = &g.units[i];
			if (!u->present)
				continue;
			short dev_ev = 0;
			/* With the simulator down, input is read and lost, as on a unit
			 * that is resetting. */
			if ((g.echo ? u->to_host.len : u->to_peer.len) < BUF_CAP)
				dev_ev |= POLLIN;
			if (u->to_host.len)
				dev_ev |= POLLOUT;
			/* A port nobody opened reports hangup all the time: look at it
			 * once per round instead of spinning on it. */
			if (u->idle) {
				struct pollfd q = {.fd = u->dev_fd, .events = POLLIN};
				if (poll(&q, 1, 0) == 1 && (q.revents & POLLHUP) && !(q.revents & POLLIN)) {
					u->to_host.len = 0;
				} else {
					u->idle = 0;
				}
			}
			if (!u->idle) {
				p[np] = (struct pollfd){.fd = u->dev_fd, .events = dev_ev};
				owner[np++] = i;
			}
			if (u->peer_fd >= 0) {
				short ev = 0;
				if (u->to_host.len < BUF_CAP)
					ev |= POLLIN;
				if (u->to_peer.len)
					ev |= POLLOUT;
				p[np] = (struct pollfd){.fd = u->peer_fd, .events = ev};
				owner[np++] = 1000 + i;
			}
			if (u->out_fd >= 0) {
				p[np] = (struct pollfd){.fd = u->out_fd, .events = POLLIN};
				owner[np++] = 2000 + i;
			}
		}
		if (g.control_fd >= 0) {
			p[np] = (struct pollfd){.fd = g.control_fd, .events = POLLIN};
			owner[np++] = 3000;
			for (int c = 0; c < 8; c++)
				if (g.clients[c] >= 0) {
					p[np] = (struct pollfd){.fd = g.clients[c], .events = POLLIN};
					owner[np++] = 4000 + c;
				}
		}
		/* Short timeout: the GLib context serves the client's ioctls. */
		int pr = poll(p, (nfds_t)np, 5);
		while (g_main_context_iteration(NULL, FALSE))
			;
		if (pr <= 0)
			continue;
		for (int k = 0; k < np; k++) {
			if (!p[k].revents)
				continue;
			int o = owner[k];
			if (o < 1000) {
				struct unit *u = &g.units[o];
				if (!u->present)
					continue;
				if (g.echo) {
					echo_unit(u);
					if ((p[k].revents & POLLHUP) && !(p[k].revents & POLLIN))
						u->idle = 1;
					continue;
				}
				if (p[k].revents & POLLIN) {
					fill_from(u->dev_fd, &u->to_peer);
					if (u->peer_fd < 0)
						u->to_peer.len = 0;
				}
				if (p[k].revents & POLLOUT)
					drain_to(u->dev_fd, &u->to_host);
				/* No client has the port open: what the unit says is lost,
				 * as on a real CDC port nobody reads. */
				if ((p[k].revents & (POLLHUP | POLLERR)) && !(p[k].revents & POLLIN)) {
					u->to_host.len = 0;
					u->idle = 1;
				}
			} else if (o < 2000) {
				struct unit *u = &g.units[o - 1000];
				if (u->peer_fd < 0)
					continue;
				int hup = 0;
				if (p[k].revents & (POLLIN | POLLHUP | POLLERR))
					hup = fill_from(u->peer_fd, &u->to_host) < 0;
				if (p[k].revents & POLLOUT)
					drain_to(u->peer_fd, &u->to_peer);
				if (hup) {
					/* The simulator died (a test killed it): stop relaying until
					 * it is restarted. */
					if (g.verbose)
						fprintf(stderr, "flasher-testbed: unit %d simulator went away\n", u->index);
					close(u->peer_fd);
					u->peer_fd = -1;
					u->to_peer.len = 0;
				}
			} else if (o < 3000) {
				struct unit *u = &g.units[o - 2000];
				char junk[4096];
				ssize_t n = read(u->out_fd, junk, sizeof junk);
				if (n > 0 && g.verbose)
					fwrite(junk, 1, (size_t)n, stderr);
				if (n == 0 || (n < 0 && errno != EAGAIN)) {
					close(u->out_fd);
					u->out_fd = -1;
				}
			} else if (o == 3000) {
				if (!g.control_is_socket) {
					control_input(0, g.control_fd);
					continue;
				}
				int c = accept4(g.control_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
				for (int s = 0; c >= 0 && s < 8; s++)
					if (g.clients[s] < 0) {
						g.clients[s] = c;
						g.clen[s] = 0;
						c = -1;
					}
				if (c >= 0)
					close(c);
			} else {
				int s = o - 4000;
				if (g.clients[s] >= 0)
					control_input(s, g.clients[s]);
			}
		}
		/* Reap simulators that died on their own. */
		for (int i = 0; i < MAX_UNITS; i++) {
			struct unit *u = &g.units[i];
			if (u->present && u->pid > 0 && waitpid(u->pid, NULL, WNOHANG) == u->pid)
				u->pid = 0;
		}
	}
}

static int in_wrapper(void)
{
	const char *p = getenv("LD_PRELOAD");
	return p && strstr(p, "umockdev-preload");
}

int main(int argc, char **argv)
{
	int units = 1;
	const char *control = NULL;
	char tmpdir[] = "/tmp/flasher-testbed-XXXXXX";
	int i = 1;
	g.devsim_args = calloc((size_t)argc, sizeof *g.devsim_args);
	for (; i < argc; i++) {
		const char *a = argv[i];
		if (!strcmp(a, "--")) {
			i++;
			break;
		} else if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
			usage(stdout);
			return 0;
		} else if (!strcmp(a, "--units") && i + 1 < argc) {
			units = atoi(argv[++i]);
		} else if (!strcmp(a, "--devsim") && i + 1 < argc) {
			g.devsim = argv[++i];
		} else if (!strcmp(a, "--flash-dir") && i + 1 < argc) {
			g.flash_dir = argv[++i];
		} else if (!strcmp(a, "--devsim-arg") && i + 1 < argc) {
			g.devsim_args[g.ndevsim_args++] = argv[++i];
		} else if (!strcmp(a, "--control") && i + 1 < argc) {
			control = argv[++i];
		} else if (!strcmp(a, "--usb-id") && i + 1 < argc) {
			char tail;
			if (sscanf(argv[++i], "%4x:%4x%c", &g.vid, &g.pid, &tail) != 2) {
				usage(stderr);
				return 2;
			}
		} else if (!strcmp(a, "--echo")) {
			g.echo = 1;
		} else if (!strcmp(a, "--verbose")) {
			g.verbose = 1;
		} else {
			usage(stderr);
			return 2;
		}
	}
	if (i >= argc || units < 0 || units > MAX_UNITS) {
		usage(stderr);
		return 2;
	}
	if (!in_wrapper()) {
		/* umockdev works through LD_PRELOAD: start over under its wrapper. */
		char **nargv = calloc((size_t)argc + 2, sizeof *nargv);
		nargv[0] = "umockdev-wrapper";
		nargv[1] = "/proc/self/exe";
		for (int k = 1; k < argc; k++)
			nargv[k + 1] = argv[k];
		char self[4096];
		ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
		if (n > 0) {
			self[n] = '\0';
			nargv[1] = self;
		}
		/* Sanitized builds: the preload comes before the ASan runtime, which
		 * ASan refuses unless told this is fine. */
		const char *asan = getenv("ASAN_OPTIONS");
		char opts[1024];
		snprintf(opts, sizeof opts, "%s%sverify_asan_link_order=0", asan ? asan : "", asan && *asan ? ":" : "");
		setenv("ASAN_OPTIONS", opts, 1);
		execvp("umockdev-wrapper", nargv);
		die("cannot run umockdev-wrapper: %s", strerror(errno));
	}
	if (!g.devsim)
		g.devsim = getenv("FLASHER_DEVSIM");
	if (!g.devsim)
		g.devsim = "flasher-devsim";
	if (!g.flash_dir) {
		if (!mkdtemp(tmpdir))
			die("mkdtemp: %s", strerror(errno));
		g.flash_dir = tmpdir;
	}
	signal(SIGPIPE, SIG_IGN);
	g.tb = umockdev_testbed_new();
	for (int k = 0; k < units; k++)
		if (add_unit() < 0)
			die("cannot add unit %d", k);
	if (control)
		open_control(control);

	char serials[MAX_UNITS * 26] = "", count[16];
	for (int k = 0; k < MAX_UNITS; k++)
		if (g.units[k].present)
			snprintf(serials + strlen(serials), sizeof serials - strlen(serials), "%s%s", *serials ? "," : "",
			         g.units[k].serial);
	snprintf(count, sizeof count, "%d", units);
	setenv("FLASHER_TESTBED_UNITS", count, 1);
	setenv("FLASHER_TESTBED_SERIALS", serials, 1);

	pid_t child = fork();
	if (child < 0)
		die("fork: %s", strerror(errno));
	if (child == 0) {
		execvp(argv[i], argv + i);
		fprintf(stderr, "flasher-testbed: cannot run %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	int rc = run(child);
	for (int k = 0; k < MAX_UNITS; k++)
		if (g.units[k].present)
			stop_devsim(&g.units[k]);
	if (control && g.control_is_socket)
		unlink(control);
	if (g.flash_dir == tmpdir) {
		for (int k = 0; k < MAX_UNITS; k++) {
			char f[600];
			snprintf(f, sizeof f, "%s/unit%d.flash", tmpdir, k);
			unlink(f);
		}
		rmdir(tmpdir);
	}
	g_object_unref(g.tb);
	free(g.devsim_args);
	return rc;
}
