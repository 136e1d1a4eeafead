/* Stand-in for flasher-devsim in testbed tests: same start-up contract
 * (prints "pty: PATH" first on stdout), then echoes every byte back. Its
 * arguments (--flash, --serial, ...) are accepted and ignored, except
 * --greeting TEXT which it writes to the pty once the relay connected. */
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	const char *greeting = NULL;
	for (int i = 1; i + 1 < argc; i++)
		if (!strcmp(argv[i], "--greeting"))
			greeting = argv[i + 1];
	int m = posix_openpt(O_RDWR | O_NOCTTY);
	if (m < 0 || grantpt(m) < 0 || unlockpt(m) < 0)
		return 1;
	const char *name = ptsname(m);
	/* Hold the slave open so the master never sees a hangup between users. */
	int s = open(name, O_RDWR | O_NOCTTY);
	struct termios t;
	tcgetattr(s, &t);
	cfmakeraw(&t);
	tcsetattr(s, TCSANOW, &t);
	printf("pty: %s\n", name);
	fflush(stdout);
	if (greeting && write(m, greeting, strlen(greeting)) < 0)
		return 1;
	char buf[4096];
	for (;;) {
		struct pollfd p = {.fd = m, .events = POLLIN};
		if (poll(&p, 1, -1) < 0)
			continue;
		ssize_t n = read(m, buf, sizeof buf);
		if (n <= 0) {
			usleep(1000);
			continue;
		}
		for (ssize_t off = 0; off < n;) {
			ssize_t w = write(m, buf + off, (size_t)(n - off));
			if (w > 0)
				off += w;
		}
	}
}
