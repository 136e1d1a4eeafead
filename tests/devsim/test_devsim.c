/* End-to-end tests of flasher-devsim: the real binary, its pty or socket,
 * the real frame codec and the real bootloader core behind it. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "flashsim.h"
#include "flboot/crc32.h"
#include "flboot/frame.h"
#include "flboot/image.h"
#include "flboot/proto.h"
#include "flboot/sha256.h"

#ifndef DEVSIM_PATH
#error "DEVSIM_PATH must name the flasher-devsim binary"
#endif

struct unit {
	pid_t pid;
	char port[PATH_MAX + 16]; /* what the first stdout line named */
	int fd;              /* the host's end, -1 if not open */
	uint16_t seq;
	flboot_frame_decoder dec;
	uint8_t dbuf[FLBOOT_FRAME_MAX_WIRE];
};

static char workdir[64];

static void make_workdir(void)
{
	snprintf(workdir, sizeof(workdir), "/tmp/devsim-test-XXXXXX");
	cr_assert_not_null(mkdtemp(workdir));
}

static void remove_workdir(void)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", workdir);
	cr_assert_eq(system(cmd), 0);
}

static const char *wpath(const char *name)
{
	static char p[4][PATH_MAX];
	static int i;
	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", workdir, name);
	return p[i];
}

/* Start flasher-devsim with args (NULL-terminated) and read its port line. */
static void start_unit(struct unit *u, const char *const *args)
{
	const char *argv[32];
	int pipefd[2], n = 0;
	char line[PATH_MAX + 16];
	size_t len = 0;

	memset(u, 0, sizeof(*u));
	u->fd = -1;
	argv[n++] = DEVSIM_PATH;
	argv[n++] = "--quiet";
	while (*args && n < 30)
		argv[n++] = *args++;
	argv[n] = NULL;
	cr_assert_eq(pipe(pipefd), 0);
	u->pid = fork();
	cr_assert(u->pid >= 0);
	if (u->pid == 0) {
		/* a test that times out must not leave its unit running */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(pipefd[1], 1);
		close(pipefd[0]);
		close(pipefd[1]);
		execv(DEVSIM_PATH, (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	/* the first line, byte by byte so nothing after it is lost */
	while (len < sizeof(line) - 1) {
		struct pollfd p = { .fd = pipefd[0], .events = POLLIN };
		cr_assert_gt(poll(&p, 1, 10000), 0, "flasher-devsim printed no port line");
		ssize_t r = read(pipefd[0], line + len, 1);
		cr_assert_eq(r, 1, "flasher-devsim closed stdout before its port line");
		if (line[len] == '\n')
			break;
		len++;
	}
	line[len] = 0;
	close(pipefd[0]);
	if (strncmp(line, "pty: ", 5) == 0)
		snprintf(u->port, sizeof(u->port), "%s", line + 5);
	else if (strncmp(line, "listen: ", 8) == 0)
		snprintf(u->port, sizeof(u->port), "%s", line + 8);
	else
		cr_assert_fail("unexpected first line '%s'", line);
	flboot_frame_decoder_init(&u->dec, u->dbuf, sizeof(u->dbuf), FLBOOT_FRAME_MAX_PAYLOAD);
}

static void open_pty(struct unit *u)
{
	struct termios tio;

	u->fd = open(u->port, O_RDWR | O_NOCTTY | O_CLOEXEC);
	cr_assert(u->fd >= 0, "open %s: %s", u->port, strerror(errno));
	cr_assert_eq(tcgetattr(u->fd, &tio), 0);
	cfmakeraw(&tio);
	cr_assert_eq(tcsetattr(u->fd, TCSANOW, &tio), 0);
	tcflush(u->fd, TCIOFLUSH);
	flboot_frame_decoder_init(&u->dec, u->dbuf, sizeof(u->dbuf), FLBOOT_FRAME_MAX_PAYLOAD);
}

static int connect_unix(const char *port)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd;

	cr_assert_eq(strncmp(port, "unix:", 5), 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", port + 5);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	cr_assert(fd >= 0);
	cr_assert_eq(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0, "connect %s: %s", port,
	             strerror(errno));
	return fd;
}

static void close_host(struct unit *u)
{
	if (u->fd >= 0)
		close(u->fd);
	u->fd = -1;
}

/* SIGTERM and wait; returns the exit status as waitpid gives it. */
static int stop_unit(struct unit *u)
{
	int st = 0;

	close_host(u);
	if (u->pid > 0) {
		kill(u->pid, SIGTERM);
		cr_assert_eq(waitpid(u->pid, &st, 0), u->pid);
		u->pid = 0;
	}
	return st;
}

/* Returns 0, or -errno when the unit's end is gone. */
static int try_send_frame(struct unit *u, uint8_t type, uint16_t seq, const void *payload, size_t len)
{
	uint8_t wire[FLBOOT_FRAME_MAX_WIRE];
	size_t n = flboot_frame_encode(type, seq, 0, payload, len, wire, sizeof(wire));
	size_t off = 0;

	cr_assert_gt(n, 0);
	while (off < n) {
		ssize_t w = write(u->fd, wire + off, n - off);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -errno;
		off += (size_t)w;
	}
	return 0;
}

static void send_frame(struct unit *u, uint8_t type, uint16_t seq, const void *payload, size_t len)
{
	int rc = try_send_frame(u, type, seq, payload, len);
	cr_assert_eq(rc, 0, "write: %s", strerror(-rc));
}

/* Wait for the response to (type, seq); copies its payload. Returns its
 * length, or (size_t)-1 on timeout when soft, else the test fails. */
static size_t recv_response_x(struct unit *u, uint8_t type, uint16_t seq, void *out, size_t cap, int timeout_ms,
                              int soft)
{
	struct timespec t0, t;
	uint8_t buf[512];

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		struct pollfd p = { .fd = u->fd, .events = POLLIN };
		long el;

		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (soft && el >= timeout_ms)
			return (size_t)-1;
		cr_assert_lt(el, timeout_ms, "no response to message 0x%02x seq %u", type, seq);
		if (poll(&p, 1, 100) <= 0)
			continue;
		ssize_t n = read(u->fd, buf, sizeof(buf));
		cr_assert(n > 0, "read from the unit: %s", n < 0 ? strerror(errno) : "EOF");
		size_t off = 0;
		while (off < (size_t)n) {
			flboot_frame fr;
			int got = 0;
			off += flboot_frame_decoder_feed(&u->dec, buf + off, (size_t)n - off, &fr, &got);
			if (got && fr.header.type == (type | FLBOOT_MSG_RESPONSE) && fr.header.seq == seq) {
				size_t len = fr.header.length < cap ? fr.header.length : cap;
				memcpy(out, fr.payload, len);
				/* the rest of this read is dropped: one request in flight here */
				return fr.header.length;
			}
		}
	}
}

static size_t recv_response(struct unit *u, uint8_t type, uint16_t seq, void *out, size_t cap, int timeout_ms)
{
	return recv_response_x(u, type, seq, out, cap, timeout_ms, 0);
}

/* A request and its response; asserts the status it expects. */
static size_t request(struct unit *u, uint8_t type, const void *req, size_t req_len, void *body,
                      size_t body_cap, int16_t want_status, flboot_resp_head *head_out)
{
	uint8_t resp[FLBOOT_FRAME_MAX_PAYLOAD];
	flboot_resp_head head;
	uint16_t seq = ++u->seq;
	size_t n;

	send_frame(u, type, seq, req, req_len);
	n = recv_response(u, type, seq, resp, sizeof(resp), 10000);
	cr_assert_geq(n, sizeof(head), "response to 0x%02x too short: %zu", type, n);
	memcpy(&head, resp, sizeof(head));
	if (head_out)
		*head_out = head;
	cr_assert_eq(head.status, want_status, "message 0x%02x: status %d (want %d): %.*s", type, head.status,
	             want_status, (int)(n - sizeof(head)), (const char *)resp + sizeof(head));
	n -= sizeof(head);
	if (body)
		memcpy(body, resp + sizeof(head), n < body_cap ? n : body_cap);
	return n;
}

static void hello(struct unit *u, flboot_hello *h)
{
	memset(h, 0, sizeof(*h));
	size_t n = request(u, FLBOOT_MSG_HELLO, NULL, 0, h, sizeof(*h), FLBOOT_OK, NULL);
	cr_assert_geq(n, offsetof(flboot_hello, slots), "HELLO body too short: %zu", n);
}

static void assert_field(const char *field, size_t cap, const char *want)
{
	char got[64] = { 0 };
	memcpy(got, field, cap);
	cr_assert_str_eq(got, want);
	for (size_t i = strlen(want); i < cap; i++)
		cr_assert_eq(field[i], 0, "field not NUL padded at %zu", i);
}

static const flboot_slot_info *find_slot(const flboot_hello *h, uint8_t core, uint8_t role)
{
	for (unsigned i = 0; i < h->n_slots && i < FLBOOT_MAX_SLOTS; i++)
		if (h->slots[i].core == core && h->slots[i].role == role)
			return &h->slots[i];
	return NULL;
}

/* ---- identity -------------------------------------------------------------- */

Test(devsim, hello_reports_given_identity_on_fresh_flash, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	flboot_hello h;
	static const uint8_t uid[12] = { 0x01, 0x23, 0x45, 0x67, 0x89, 0xAB, 0xCD, 0xEF, 0x01, 0x23, 0x45, 0x67 };
	const char *args[] = { "--flash", wpath("u.flash"), "--product", "widget", "--hw", "B2",
		               "--serial", "0123456789abcdef01234567", "--bootloader-version", "2.3.40",
		               NULL };

	start_unit(&u, args);
	open_pty(&u);
	hello(&u, &h);
	cr_assert_eq(h.proto_version, FLBOOT_PROTO_VERSION);
	cr_assert_eq(h.mode, FLBOOT_MODE_BOOTLOADER);
	cr_assert_eq(h.boot_state, FLBOOT_STATE_EMPTY);
	cr_assert_eq(h.bootloader_version, FLBOOT_VERSION(2, 3, 40));
	assert_field(h.product, sizeof(h.product), "widget");
	assert_field(h.hw_rev, sizeof(h.hw_rev), "B2");
	assert_field(h.serial, sizeof(h.serial), "0123456789abcdef01234567");
	cr_assert_arr_eq(h.uid, uid, sizeof(uid));
	cr_assert_gt(h.max_payload, 0);
	cr_assert_gt(h.window, 0);
	/* a fresh unit stages into slot A (layout v2: SECONDARY = the slot staged into) */
	const flboot_slot_info *s = find_slot(&h, FLBOOT_CORE_CM7, FLBOOT_ROLE_SECONDARY);
	cr_assert_not_null(s, "no CM7 staging slot in HELLO");
	cr_assert_eq(s->address, FLBOOT_CM7_SLOT_A_ADDR);
	cr_assert_eq(s->state, FLBOOT_SLOT_EMPTY);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
}

Test(devsim, serial_not_hex_gives_uid_from_sha256, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	flboot_hello h;
	uint8_t want[32];
	const char *args[] = { "--flash", wpath("u.flash"), "--serial", "bench-unit-7", NULL };

	start_unit(&u, args);
	open_pty(&u);
	hello(&u, &h);
	flboot_sha256("bench-unit-7", strlen("bench-unit-7"), want);
	cr_assert_arr_eq(h.uid, want, FLBOOT_UID_SIZE);
	assert_field(h.serial, sizeof(h.serial), "bench-unit-7");
	stop_unit(&u);
}

Test(devsim, defaults_derive_serial_from_flash_realpath, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	flboot_hello h;
	uint8_t want[32];
	char rp[PATH_MAX], hex[25];
	const char *args[] = { "--flash", wpath("u.flash"), NULL };

	start_unit(&u, args);
	open_pty(&u);
	hello(&u, &h);
	cr_assert_not_null(realpath(wpath("u.flash"), rp));
	flboot_sha256(rp, strlen(rp), want);
	cr_assert_arr_eq(h.uid, want, FLBOOT_UID_SIZE);
	for (int i = 0; i < 12; i++)
		snprintf(hex + 2 * i, 3, "%02X", want[i]);
	assert_field(h.serial, sizeof(h.serial), hex);
	assert_field(h.product, sizeof(h.product), "demo");
	assert_field(h.hw_rev, sizeof(h.hw_rev), "A");
	cr_assert_eq(h.bootloader_version, FLBOOT_VERSION(1, 0, 0));
	stop_unit(&u);
}

Test(devsim, rejects_bad_options)
{
	const char *cases[][4] = {
		{ "--flash", "/tmp/x.flash", "--bootloader-version", "1.2" },
		{ "--flash", "/tmp/x.flash", "--link-rate", "fast" },
		{ "--flash", "/tmp/x.flash", "--product", "a-product-id-that-is-too-long" },
		{ "--flash", "/tmp/x.flash", "--listen", "tcp:1234" },
		{ "--flash", "/tmp/x.flash", "--rx-buffer", "0" },
		{ "--flash", "/tmp/x.flash", "--link-latency-us", "soon" },
		{ "--flash", "/tmp/x.flash", "--reenum-ms", "-1" },
	};
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		int st;
		pid_t pid = fork();
		cr_assert(pid >= 0);
		if (pid == 0) {
			int null = open("/dev/null", O_WRONLY);
			dup2(null, 1);
			dup2(null, 2);
			execl(DEVSIM_PATH, DEVSIM_PATH, cases[i][0], cases[i][1], cases[i][2], cases[i][3],
			      (char *)NULL);
			_exit(127);
		}
		cr_assert_eq(waitpid(pid, &st, 0), pid);
		cr_assert(WIFEXITED(st) && WEXITSTATUS(st) != 0 && WEXITSTATUS(st) != 127,
		          "case %zu: status %d", i, st);
	}
	unlink("/tmp/x.flash");
}

/* ---- link behaviour --------------------------------------------------------- */

/* A reset takes the port away while the host enumerates it again: the
 * answer to REBOOT still arrives, a HELLO right after it does not (with a
 * delay far longer than the wait, so a slow machine cannot pass it); with
 * --reenum-ms 0 the unit answers at once. The bootloader announces its
 * erase time for the host's DATA waits (HELLO minor 2). */
static void reboot_then_hello(int reenum_away)
{
	struct unit u;
	flboot_hello h;
	flboot_reboot_req rb = { FLBOOT_REBOOT_BOOTLOADER };
	uint8_t resp[sizeof(flboot_resp_head) + sizeof(flboot_hello)];
	const char *away[] = { "--flash", wpath("u.flash"), "--link-rate", "usb-fs", "--reenum-ms", "60000", NULL };
	const char *back[] = { "--flash", wpath("u.flash"), "--link-rate", "usb-fs", "--reenum-ms", "0", NULL };

	start_unit(&u, reenum_away ? away : back);
	open_pty(&u);
	hello(&u, &h);
	cr_assert_geq(h.proto_minor, 2);
	cr_assert_eq(h.erase_max_ms, FLBOOT_ERASE_MAX_MS);
	request(&u, FLBOOT_MSG_REBOOT, &rb, sizeof rb, NULL, 0, FLBOOT_OK, NULL);
	send_frame(&u, FLBOOT_MSG_HELLO, ++u.seq, NULL, 0);
	size_t n = recv_response_x(&u, FLBOOT_MSG_HELLO, u.seq, resp, sizeof resp, 1500, 1);
	if (reenum_away)
		cr_assert_eq(n, (size_t)-1, "the unit answered while its port is away for re-enumeration");
	else
		cr_assert_neq(n, (size_t)-1, "no HELLO answer after a reset with --reenum-ms 0");
	stop_unit(&u);
}

Test(devsim, reset_takes_the_port_away_for_reenumeration, .init = make_workdir, .fini = remove_workdir)
{
	reboot_then_hello(1);
}

Test(devsim, reenum_ms_0_answers_at_once_after_reset, .init = make_workdir, .fini = remove_workdir)
{
	reboot_then_hello(0);
}

Test(devsim, host_may_close_and_reopen_pty, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	flboot_hello h;
	const char *args[] = { "--flash", wpath("u.flash"), "--link", wpath("ttyUNIT"), NULL };
	struct stat st;

	start_unit(&u, args);
	/* the symlink names the pty */
	char target[PATH_MAX];
	ssize_t n = readlink(wpath("ttyUNIT"), target, sizeof(target) - 1);
	cr_assert_gt(n, 0);
	target[n] = 0;
	cr_assert_str_eq(target, u.port);
	for (int i = 0; i < 3; i++) {
		open_pty(&u);
		hello(&u, &h);
		cr_assert_eq(h.mode, FLBOOT_MODE_BOOTLOADER);
		close_host(&u);
	}
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
	/* the symlink goes with the process */
	cr_assert_neq(lstat(wpath("ttyUNIT"), &st), 0);
}

Test(devsim, sigterm_and_sigint_exit_zero, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	int st;
	const char *args[] = { "--flash", wpath("u.flash"), NULL };

	start_unit(&u, args);
	st = stop_unit(&u);
	cr_assert(WIFEXITED(st), "not a clean exit: status %d", st);
	cr_assert_eq(WEXITSTATUS(st), 0);

	start_unit(&u, args);
	open_pty(&u);
	kill(u.pid, SIGINT);
	cr_assert_eq(waitpid(u.pid, &st, 0), u.pid);
	u.pid = 0;
	cr_assert(WIFEXITED(st) && WEXITSTATUS(st) == 0, "SIGINT: status %d", st);
	close_host(&u);
}

/* Voluntary plus involuntary context switches of a process so far. */
static long ctx_switches(pid_t pid)
{
	char path[64], line[256];
	long total = 0, v;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	cr_assert_not_null(f);
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "voluntary_ctxt_switches: %ld", &v) == 1 ||
		    sscanf(line, "nonvoluntary_ctxt_switches: %ld", &v) == 1)
			total += v;
	fclose(f);
	return total;
}

/* An idle unit waits for input instead of waking every millisecond: a fleet
 * of simulated units on a small machine needs the CPU for the updates. */
Test(devsim, idle_unit_does_not_poll_every_millisecond, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	const char *args[] = { "--flash", wpath("u.flash"), NULL };
	struct timespec one_s = { 1, 0 };
	long before, woke;

	start_unit(&u, args);
	open_pty(&u);
	before = ctx_switches(u.pid);
	nanosleep(&one_s, NULL);
	woke = ctx_switches(u.pid) - before;
	/* a 1 ms poll loop wakes about 1000 times in this second */
	cr_expect_lt(woke, 100, "the idle unit woke %ld times in a second", woke);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
}

Test(devsim, listen_unix_serves_and_replaces_client, .init = make_workdir, .fini = remove_workdir)
{
	struct unit u;
	flboot_hello h;
	char listen[PATH_MAX + 8];
	const char *args[] = { "--flash", wpath("u.flash"), "--listen", listen, "--serial", "sock-unit", NULL };

	snprintf(listen, sizeof(listen), "unix:%s", wpath("unit.sock"));
	start_unit(&u, args);
	cr_assert_str_eq(u.port, listen);
	u.fd = connect_unix(u.port);
	hello(&u, &h);
	assert_field(h.serial, sizeof(h.serial), "sock-unit");
	int first = u.fd;
	/* a second client takes over */
	u.fd = connect_unix(u.port);
	flboot_frame_decoder_init(&u.dec, u.dbuf, sizeof(u.dbuf), FLBOOT_FRAME_MAX_PAYLOAD);
	hello(&u, &h);
	cr_assert_eq(h.mode, FLBOOT_MODE_BOOTLOADER);
	/* the first one was dropped: EOF (or reset) once the unit saw the new one */
	struct pollfd p = { .fd = first, .events = POLLIN };
	cr_assert_gt(poll(&p, 1, 5000), 0);
	char c;
	cr_assert_leq(read(first, &c, 1), 0);
	close(first);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
	struct stat st;
	cr_assert_neq(stat(wpath("unit.sock"), &st), 0, "socket file left behind");
}

/* ---- persistence and power cuts --------------------------------------------- */

#define PAYLOAD_SIZE (40u * 1024u)

static void make_image(flboot_image_header *hdr, uint8_t *payload, uint32_t size)
{
	uint32_t x = 12345;

	for (uint32_t i = 0; i < size; i++) {
		x = x * 1103515245u + 12345u;
		payload[i] = (uint8_t)(x >> 16);
	}
	memset(hdr, 0, sizeof(*hdr));
	hdr->magic = FLBOOT_IMAGE_MAGIC;
	hdr->header_version = FLBOOT_IMAGE_HEADER_VERSION;
	hdr->header_size = FLBOOT_IMAGE_HEADER_SIZE;
	hdr->core = FLBOOT_CORE_CM7;
	hdr->payload_size = size;
	hdr->payload_crc32 = flboot_crc32(0, payload, size);
	flboot_sha256(payload, size, hdr->payload_sha256);
	hdr->version = FLBOOT_VERSION(1, 2, 3);
	hdr->min_bootloader = FLBOOT_VERSION(1, 0, 0);
	memcpy(hdr->product, "demo", 4);
	memcpy(hdr->set_id, "testset1", 8);
	hdr->load_address = FLBOOT_CM7_APP_ADDR;
	hdr->header_crc32 = flboot_crc32(0, hdr, offsetof(flboot_image_header, header_crc32));
}

/* BEGIN, then DATA blocks until `upto` bytes went out (each acknowledged). */
static uint32_t send_image(struct unit *u, const flboot_image_header *hdr, const uint8_t *payload, uint32_t upto)
{
	flboot_begin_resp br;
	uint8_t req[sizeof(flboot_data_head) + 2048];

	memset(&br, 0, sizeof(br));
	request(u, FLBOOT_MSG_BEGIN, hdr, sizeof(*hdr), &br, sizeof(br), FLBOOT_OK, NULL);
	uint32_t off = br.resume_offset;
	while (off < upto) {
		flboot_data_head dh = { .offset = off, .raw_length = 2048 };
		flboot_resp_head ack;
		if (dh.raw_length > hdr->payload_size - off)
			dh.raw_length = hdr->payload_size - off;
		memcpy(req, &dh, sizeof(dh));
		memcpy(req + sizeof(dh), payload + off, dh.raw_length);
		request(u, FLBOOT_MSG_DATA, req, sizeof(dh) + dh.raw_length, NULL, 0, FLBOOT_OK, &ack);
		off += dh.raw_length;
		cr_assert_eq(ack.detail, off, "ACK names next offset %u, want %u", ack.detail, off);
	}
	return br.resume_offset;
}

Test(devsim, flash_state_persists_across_restart, .init = make_workdir, .fini = remove_workdir, .timeout = 60)
{
	struct unit u;
	flboot_image_header hdr;
	static uint8_t payload[PAYLOAD_SIZE], back[PAYLOAD_SIZE / 2];
	flboot_begin_resp br;
	flboot_hello h;
	const char *args[] = { "--flash", wpath("u.flash"), "--link-rate", "none", NULL };

	make_image(&hdr, payload, PAYLOAD_SIZE);
	start_unit(&u, args);
	open_pty(&u);
	cr_assert_eq(send_image(&u, &hdr, payload, PAYLOAD_SIZE / 2), 0);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);

	/* what the unit acknowledged is in the flash file, in the CM7 slot staged into (A) */
	flashsim *fs;
	cr_assert_eq(flashsim_open(&fs, wpath("u.flash")), 0);
	cr_assert_eq(flashsim_read(fs, FLBOOT_CM7_SLOT_A_ADDR + FLBOOT_IMAGE_HEADER_AREA,
	                           back, sizeof(back)),
	             0);
	cr_assert_arr_eq(back, payload, sizeof(back));
	flashsim_close(fs);

	/* a new process on the same file resumes where the flash says */
	start_unit(&u, args);
	open_pty(&u);
	hello(&u, &h);
	const flboot_slot_info *s = find_slot(&h, FLBOOT_CORE_CM7, FLBOOT_ROLE_SECONDARY);
	cr_assert_not_null(s);
	cr_assert_eq(s->state, FLBOOT_SLOT_RECEIVING);
	request(&u, FLBOOT_MSG_BEGIN, &hdr, sizeof(hdr), &br, sizeof(br), FLBOOT_OK, NULL);
	cr_assert_gt(br.resume_offset, 0);
	cr_assert_leq(br.resume_offset, PAYLOAD_SIZE / 2);
	cr_assert_eq(br.resume_offset % 32, 0);
	stop_unit(&u);
}

Test(devsim, exit_after_ops_cuts_power_and_unit_recovers, .init = make_workdir, .fini = remove_workdir,
     .timeout = 60)
{
	struct unit u;
	flboot_image_header hdr;
	static uint8_t payload[PAYLOAD_SIZE];
	int st;
	flboot_hello h;
	const char *cut_args[] = { "--flash", wpath("u.flash"), "--exit-after-ops", "5", "--link-rate", "none", NULL };
	const char *args[] = { "--flash", wpath("u.flash"), "--link-rate", "none", NULL };

	make_image(&hdr, payload, PAYLOAD_SIZE);
	start_unit(&u, cut_args);
	open_pty(&u);
	/* the unit dies at its 5th flash operation: BEGIN/DATA stop being answered */
	uint16_t seq = ++u.seq;
	send_frame(&u, FLBOOT_MSG_BEGIN, seq, &hdr, sizeof(hdr));
	for (uint32_t off = 0; off < PAYLOAD_SIZE; off += 2048) {
		uint8_t req[sizeof(flboot_data_head) + 2048];
		flboot_data_head dh = { .offset = off, .raw_length = 2048 };
		memcpy(req, &dh, sizeof(dh));
		memcpy(req + sizeof(dh), payload + off, 2048);
		(void)try_send_frame(&u, FLBOOT_MSG_DATA, ++u.seq, req, sizeof(req)); /* EIO once it died */
		if (waitpid(u.pid, &st, WNOHANG) == u.pid) {
			u.pid = 0;
			break;
		}
		usleep(20000);
	}
	for (int i = 0; u.pid && i < 200; i++) {
		if (waitpid(u.pid, &st, WNOHANG) == u.pid)
			u.pid = 0;
		else
			usleep(50000);
	}
	cr_assert_eq(u.pid, 0, "flasher-devsim did not exit at its 5th flash operation");
	cr_assert(WIFEXITED(st), "status %d", st);
	cr_assert_eq(WEXITSTATUS(st), 3);
	close_host(&u);

	/* the flash holds a torn word; the restarted unit still answers */
	flashsim *fs;
	int corrupt = 0;
	cr_assert_eq(flashsim_open(&fs, wpath("u.flash")), 0);
	for (uint32_t a = FLBOOT_FLASH_BASE; a < FLBOOT_FLASH_BASE + FLBOOT_FLASH_SIZE; a += 32)
		corrupt += flashsim_word_state(fs, a) == FLASHSIM_WORD_CORRUPT;
	flashsim_close(fs);
	cr_assert_geq(corrupt, 1, "the cut left no torn word");

	start_unit(&u, args);
	open_pty(&u);
	hello(&u, &h);
	cr_assert_eq(h.mode, FLBOOT_MODE_BOOTLOADER);
	cr_assert_eq(h.boot_state, FLBOOT_STATE_EMPTY);
	/* and takes the whole image */
	send_image(&u, &hdr, payload, PAYLOAD_SIZE);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
}

/* ---- --stats ---------------------------------------------------------------- */

struct run_stats {
	unsigned long long sector_erases[FLBOOT_SECTOR_COUNT], word_programs;
	double bank_busy_s[2];
};

/* Parse the one JSON document --stats writes (its exact shape). */
static void read_stats(const char *path, struct run_stats *rs)
{
	char buf[1024], *p;
	FILE *f = fopen(path, "r");
	size_t n;

	cr_assert_not_null(f, "--stats wrote no %s", path);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strstr(buf, "\"sector_erases\":[");
	cr_assert_not_null(p, "no sector_erases in %s", buf);
	p += strlen("\"sector_erases\":[");
	for (unsigned i = 0; i < FLBOOT_SECTOR_COUNT; i++) {
		char *end;
		rs->sector_erases[i] = strtoull(p, &end, 10);
		cr_assert(end != p && *end == (i + 1 < FLBOOT_SECTOR_COUNT ? ',' : ']'), "sector_erases[%u] in %s", i,
		          buf);
		p = end + 1;
	}
	p = strstr(buf, "\"word_programs\":");
	cr_assert_not_null(p);
	rs->word_programs = strtoull(p + strlen("\"word_programs\":"), NULL, 10);
	p = strstr(buf, "\"bank_busy_s\":[");
	cr_assert_not_null(p);
	cr_assert_eq(sscanf(p + strlen("\"bank_busy_s\":["), "%lf,%lf]", &rs->bank_busy_s[0], &rs->bank_busy_s[1]),
	             2);
}

/* Programmed words per sector in a flash file. */
static void count_programmed(const char *flash, unsigned long long per_sector[FLBOOT_SECTOR_COUNT])
{
	flashsim *fs;

	cr_assert_eq(flashsim_open(&fs, flash), 0);
	memset(per_sector, 0, FLBOOT_SECTOR_COUNT * sizeof(per_sector[0]));
	for (uint32_t a = 0; a < FLBOOT_FLASH_SIZE; a += 32) {
		int st = flashsim_word_state(fs, FLBOOT_FLASH_BASE + a);
		cr_assert_neq(st, FLASHSIM_WORD_CORRUPT);
		per_sector[a / FLBOOT_SECTOR_SIZE] += st == FLASHSIM_WORD_PROGRAMMED;
	}
	flashsim_close(fs);
}

/* What one run's JSON must say, given the flash before and after it: the
 * words it programmed are the programmed words now, less those that were
 * there before in a sector it did not erase; busy time is the model's. */
static void check_run_stats(const struct run_stats *rs, const unsigned long long before[FLBOOT_SECTOR_COUNT],
                            const unsigned long long after[FLBOOT_SECTOR_COUNT])
{
	unsigned long long programs = 0, bank_programs[2] = { 0, 0 }, bank_erases[2] = { 0, 0 };

	for (unsigned s = 0; s < FLBOOT_SECTOR_COUNT; s++) {
		unsigned long long p = after[s] - (rs->sector_erases[s] ? 0 : before[s]);
		programs += p;
		bank_programs[s / 8] += p;
		bank_erases[s / 8] += rs->sector_erases[s];
	}
	cr_assert_eq(rs->word_programs, programs, "word_programs %llu, flash shows %llu", rs->word_programs,
	             programs);
	for (int b = 0; b < 2; b++) {
		double want = (bank_erases[b] * (double)FLASHSIM_ERASE_US + bank_programs[b] * (double)FLASHSIM_PROGRAM_US) / 1e6;
		cr_assert_float_eq(rs->bank_busy_s[b], want, 1e-5, "bank %d busy %.6f s, want %.6f", b, rs->bank_busy_s[b],
		                   want);
	}
}

Test(devsim, stats_counts_this_runs_flash_work, .init = make_workdir, .fini = remove_workdir, .timeout = 60)
{
	struct unit u;
	flboot_image_header hdr, hdr2;
	static uint8_t payload[PAYLOAD_SIZE];
	unsigned long long p0[FLBOOT_SECTOR_COUNT] = { 0 }, p1[FLBOOT_SECTOR_COUNT], p2[FLBOOT_SECTOR_COUNT];
	struct run_stats r1, r2;
	unsigned long long erases2 = 0;
	const char *args1[] = { "--flash", wpath("u.flash"), "--link-rate", "none", "--stats", wpath("s1.json"), NULL };
	const char *args2[] = { "--flash", wpath("u.flash"), "--link-rate", "none", "--stats", wpath("s2.json"), NULL };

	make_image(&hdr, payload, PAYLOAD_SIZE);
	start_unit(&u, args1);
	open_pty(&u);
	send_image(&u, &hdr, payload, PAYLOAD_SIZE);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
	read_stats(wpath("s1.json"), &r1);
	count_programmed(wpath("u.flash"), p1);
	cr_assert_geq(r1.word_programs, PAYLOAD_SIZE / 32);
	check_run_stats(&r1, p0, p1);

	/* a second process: another image replaces the staged one (erases);
	 * its counts are its own */
	payload[100] ^= 0x5A;
	hdr2 = hdr;
	hdr2.payload_crc32 = flboot_crc32(0, payload, PAYLOAD_SIZE);
	flboot_sha256(payload, PAYLOAD_SIZE, hdr2.payload_sha256);
	hdr2.header_crc32 = flboot_crc32(0, &hdr2, offsetof(flboot_image_header, header_crc32));
	start_unit(&u, args2);
	open_pty(&u);
	send_image(&u, &hdr2, payload, PAYLOAD_SIZE);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
	read_stats(wpath("s2.json"), &r2);
	count_programmed(wpath("u.flash"), p2);
	for (unsigned s = 0; s < FLBOOT_SECTOR_COUNT; s++)
		erases2 += r2.sector_erases[s];
	cr_assert_geq(erases2, 1, "restaging a different image erased nothing");
	check_run_stats(&r2, p1, p2);
}

/* ---- the simulated application --------------------------------------------- */

/* HELLO that tolerates a unit busy resetting: retries until deadline_ms. */
static int hello_until(struct unit *u, flboot_hello *h, int deadline_ms, uint8_t want_mode, int want_state)
{
	uint8_t resp[sizeof(flboot_resp_head) + sizeof(flboot_hello)];

	for (int waited = 0; waited < deadline_ms; waited += 300) {
		uint16_t seq = ++u->seq;
		send_frame(u, FLBOOT_MSG_HELLO, seq, NULL, 0);
		size_t n = recv_response_x(u, FLBOOT_MSG_HELLO, seq, resp, sizeof(resp), 300, 1);
		if (n == (size_t)-1 || n < sizeof(flboot_resp_head) + offsetof(flboot_hello, slots))
			continue;
		memset(h, 0, sizeof(*h));
		memcpy(h, resp + sizeof(flboot_resp_head), n - sizeof(flboot_resp_head) < sizeof(*h)
		                                                   ? n - sizeof(flboot_resp_head)
		                                                   : sizeof(*h));
		if (h->mode == want_mode && (want_state < 0 || h->boot_state == want_state))
			return 0;
		usleep(100000);
		waited += 100;
	}
	return -1;
}

/* Stage, verify, activate and reboot into a CM7 image. */
static void update_and_reboot(struct unit *u, const flboot_image_header *hdr, const uint8_t *payload)
{
	flboot_end_resp er;
	flboot_activate_req act = { .cores = FLBOOT_CORE_BIT(FLBOOT_CORE_CM7) };
	flboot_reboot_req rb = { .mode = FLBOOT_REBOOT_NORMAL };

	send_image(u, hdr, payload, hdr->payload_size);
	request(u, FLBOOT_MSG_END, NULL, 0, &er, sizeof(er), FLBOOT_OK, NULL);
	cr_assert_eq(er.crc32, hdr->payload_crc32);
	request(u, FLBOOT_MSG_ACTIVATE, &act, sizeof(act), NULL, 0, FLBOOT_OK, NULL);
	request(u, FLBOOT_MSG_REBOOT, &rb, sizeof(rb), NULL, 0, FLBOOT_OK, NULL);
}

Test(devsim_app, trial_app_runs_and_confirms_itself, .init = make_workdir, .fini = remove_workdir, .timeout = 60)
{
	struct unit u;
	flboot_image_header hdr;
	static uint8_t payload[PAYLOAD_SIZE];
	flboot_hello h;
	const char *args[] = { "--flash", wpath("u.flash"), "--link-rate", "none", NULL };

	make_image(&hdr, payload, PAYLOAD_SIZE);
	start_unit(&u, args);
	open_pty(&u);
	update_and_reboot(&u, &hdr, payload);
	cr_assert_eq(hello_until(&u, &h, 10000, FLBOOT_MODE_APPLICATION, -1), 0, "the application did not start");
	cr_assert_eq(h.running_cm7, hdr.version);
	cr_assert_eq(hello_until(&u, &h, 10000, FLBOOT_MODE_APPLICATION, FLBOOT_STATE_CONFIRMED), 0,
	             "the application did not confirm itself (state %u)", h.boot_state);

	/* REBOOT to the bootloader from the application, then back */
	flboot_reboot_req rb = { .mode = FLBOOT_REBOOT_BOOTLOADER };
	request(&u, FLBOOT_MSG_REBOOT, &rb, sizeof(rb), NULL, 0, FLBOOT_OK, NULL);
	cr_assert_eq(hello_until(&u, &h, 10000, FLBOOT_MODE_BOOTLOADER, FLBOOT_STATE_CONFIRMED), 0);
	rb.mode = FLBOOT_REBOOT_NORMAL;
	request(&u, FLBOOT_MSG_REBOOT, &rb, sizeof(rb), NULL, 0, FLBOOT_OK, NULL);
	cr_assert_eq(hello_until(&u, &h, 10000, FLBOOT_MODE_APPLICATION, FLBOOT_STATE_CONFIRMED), 0);
	stop_unit(&u);

	/* a power cycle boots the confirmed application directly */
	start_unit(&u, args);
	open_pty(&u);
	cr_assert_eq(hello_until(&u, &h, 10000, FLBOOT_MODE_APPLICATION, FLBOOT_STATE_CONFIRMED), 0);
	cr_assert_eq(WEXITSTATUS(stop_unit(&u)), 0);
}

static void unconfirmed_trial_falls_back(const char *app_flag)
{
	struct unit u;
	flboot_image_header hdr;
	static uint8_t payload[PAYLOAD_SIZE];
	flboot_hello h;
	const char *args[] = { "--flash", wpath("u.flash"), "--link-rate", "none", "--trial-watchdog-ms", "300",
		               app_flag, NULL };

	make_image(&hdr, payload, PAYLOAD_SIZE);
	start_unit(&u, args);
	open_pty(&u);
	update_and_reboot(&u, &hdr, payload);
	/* trial boots end in watchdog/crash resets until the bootloader gives up */
	cr_assert_eq(hello_until(&u, &h, 20000, FLBOOT_MODE_BOOTLOADER, -1), 0,
	             "the unit did not fall back to the bootloader");
	cr_assert_neq(h.boot_state, FLBOOT_STATE_TRIAL);
	cr_assert_neq(h.boot_state, FLBOOT_STATE_CONFIRMED);
	cr_assert_neq(h.last_boot_error, 0, "no reason for the fallback");
	/* and it stays there across a power cycle */
	stop_unit(&u);
	start_unit(&u, args);
	open_pty(&u);
	cr_assert_eq(hello_until(&u, &h, 5000, FLBOOT_MODE_BOOTLOADER, -1), 0);
	stop_unit(&u);
}

Test(devsim_app, trial_without_confirm_is_reverted_by_watchdog, .init = make_workdir, .fini = remove_workdir,
     .timeout = 60)
{
	unconfirmed_trial_falls_back("--app-no-confirm");
}

Test(devsim_app, crashing_trial_is_reverted, .init = make_workdir, .fini = remove_workdir, .timeout = 60)
{
	unconfirmed_trial_falls_back("--app-crash");
}
