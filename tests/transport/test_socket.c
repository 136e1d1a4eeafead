/* unix: and tcp: backends against real sockets served by a thread. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "flasher.h"

/* Server: accepts one client; mode 0 echoes until EOF, mode 1 sends a
 * greeting and closes at once. */
struct server {
	int lfd;
	int mode;
	pthread_t thr;
};

static void *serve(void *arg)
{
	struct server *s = arg;
	int c = accept(s->lfd, NULL, NULL);
	if (c < 0)
		return NULL;
	if (s->mode == 1) {
		if (write(c, "bye", 3) != 3)
			perror("server write");
		close(c);
		return NULL;
	}
	char buf[4096];
	ssize_t n;
	while ((n = read(c, buf, sizeof buf)) > 0)
		if (write(c, buf, (size_t)n) != n)
			break;
	close(c);
	return NULL;
}

static void start_unix(struct server *s, char *spec, size_t cap, int mode)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	snprintf(sa.sun_path, sizeof sa.sun_path, "/tmp/flasher-test-%d-%d.sock", (int)getpid(), mode);
	unlink(sa.sun_path);
	s->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
	cr_assert(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s->lfd, 1) == 0);
	snprintf(spec, cap, "unix:%s", sa.sun_path);
	s->mode = mode;
	pthread_create(&s->thr, NULL, serve, s);
}

static void start_tcp(struct server *s, char *spec, size_t cap, int mode)
{
	struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	socklen_t len = sizeof sa;
	s->lfd = socket(AF_INET, SOCK_STREAM, 0);
	cr_assert(bind(s->lfd, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s->lfd, 1) == 0);
	getsockname(s->lfd, (struct sockaddr *)&sa, &len);
	snprintf(spec, cap, "tcp:127.0.0.1:%u", ntohs(sa.sin_port));
	s->mode = mode;
	pthread_create(&s->thr, NULL, serve, s);
}

static void echo_round_trip(const char *spec, const char *kind)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, spec), 0, "%s: %s", spec, flasher_error_last());
	cr_expect(strncmp(flasher_transport_description(t), kind, strlen(kind)) == 0, "description %s",
	          flasher_transport_description(t));
	static uint8_t out[100000], in[100000];
	for (size_t i = 0; i < sizeof out; i++)
		out[i] = (uint8_t)(i ^ (i >> 8));
	cr_assert_eq(flasher_transport_write(t, out, sizeof out, 5000), 0, "%s", flasher_error_last());
	size_t got = 0;
	while (got < sizeof in) {
		int n = flasher_transport_read(t, in + got, sizeof in - got, 5000);
		cr_assert_gt(n, 0, "read %d after %zu bytes: %s", n, got, flasher_error_last());
		got += (size_t)n;
	}
	cr_assert_arr_eq(in, out, sizeof out);
	uint64_t w, r;
	flasher_transport_counters(t, &w, &r);
	cr_expect_eq(w, sizeof out);
	cr_expect_eq(r, sizeof out);
	uint8_t b;
	cr_expect_eq(flasher_transport_read(t, &b, 1, 30), 0, "echo is done: read must time out");
	flasher_transport_close(t);
}

TestSuite(transport_socket, .timeout = 20);

Test(transport_socket, unix_echo_round_trip)
{
	struct server s;
	char spec[160];
	start_unix(&s, spec, sizeof spec, 0);
	echo_round_trip(spec, "unix:");
	pthread_join(s.thr, NULL);
	close(s.lfd);
	unlink(spec + 5);
}

Test(transport_socket, tcp_echo_round_trip)
{
	struct server s;
	char spec[160];
	start_tcp(&s, spec, sizeof spec, 0);
	echo_round_trip(spec, "tcp:");
	pthread_join(s.thr, NULL);
	close(s.lfd);
}

static void peer_close(struct server *s, const char *spec)
{
	flasher_transport *t;
	cr_assert_eq(flasher_transport_open(&t, spec), 0, "%s", flasher_error_last());
	uint8_t b[16];
	size_t got = 0;
	int n;
	/* Data sent before the close is delivered first, then the hangup. */
	while ((n = flasher_transport_read(t, b + got, sizeof b - got, 2000)) > 0)
		got += (size_t)n;
	cr_expect_eq(got, 3);
	cr_expect_arr_eq(b, "bye", 3);
	cr_expect_eq(n, FLASHER_EDISCONNECTED, "read gave %d: %s", n, flasher_error_last());
	pthread_join(s->thr, NULL);
	/* Writing to a closed peer: EDISCONNECTED, not SIGPIPE killing us. */
	static uint8_t big[1 << 20];
	int rc = 0;
	for (int i = 0; i < 8 && rc == 0; i++)
		rc = flasher_transport_write(t, big, sizeof big, 2000);
	cr_expect_eq(rc, FLASHER_EDISCONNECTED, "write gave %d: %s", rc, flasher_error_last());
	flasher_transport_close(t);
}

Test(transport_socket, unix_peer_close_is_disconnected)
{
	struct server s;
	char spec[160];
	start_unix(&s, spec, sizeof spec, 1);
	peer_close(&s, spec);
	close(s.lfd);
	unlink(spec + 5);
}

Test(transport_socket, tcp_peer_close_is_disconnected)
{
	struct server s;
	char spec[160];
	start_tcp(&s, spec, sizeof spec, 1);
	peer_close(&s, spec);
	close(s.lfd);
}

Test(transport_socket, nobody_listening_is_not_found)
{
	flasher_transport *t = NULL;
	cr_expect_eq(flasher_transport_open(&t, "unix:/tmp/flasher-no-such.sock"), FLASHER_ENOTFOUND);
	cr_expect(strstr(flasher_error_last(), "/tmp/flasher-no-such.sock") != NULL, "%s", flasher_error_last());
	/* Port 1 on loopback: refused. */
	cr_expect_eq(flasher_transport_open(&t, "tcp:127.0.0.1:1"), FLASHER_ENOTFOUND, "%s", flasher_error_last());
	cr_expect_null(t);
}
