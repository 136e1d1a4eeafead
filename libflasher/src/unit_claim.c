/* Exclusive claims on ports and units (unit_claim.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <termios.h>
#include <unistd.h>

#include "error_internal.h"
#include "unit_claim.h"

/* "pid N (argv...)" of a process, as far as /proc tells. */
static void describe_pid(long pid, char *buf, size_t size)
{
	char path[64], cmd[200] = "";
	snprintf(path, sizeof path, "/proc/%ld/cmdline", pid);
	FILE *f = fopen(path, "re");
	if (f) {
		size_t n = fread(cmd, 1, sizeof cmd - 1, f);
		fclose(f);
		cmd[n] = '\0';
		for (size_t i = 0; i + 1 < n; i++)
			if (!cmd[i])
				cmd[i] = ' ';
	}
	if (cmd[0])
		snprintf(buf, size, "pid %ld (%s)", pid, cmd);
	else
		snprintf(buf, size, "pid %ld", pid);
}

/* The pid holding a FLOCK on (dev, ino), from /proc/locks; 0 if none found. */
static long flock_holder(dev_t dev, ino_t ino)
{
	FILE *f = fopen("/proc/locks", "re");
	if (!f)
		return 0;
	char line[256];
	long found = 0;
	while (!found && fgets(line, sizeof line, f)) {
		/* "1: FLOCK  ADVISORY  WRITE 1234 00:05:17 0 EOF" (blocked waiters are "-> ...") */
		char type[16], kind[16], mode[16];
		long pid;
		unsigned maj, min;
		unsigned long long inode;
		if (strstr(line, "->"))
			continue;
		if (sscanf(line, "%*d: %15s %15s %15s %ld %x:%x:%llu", type, kind, mode, &pid, &maj, &min, &inode) != 7)
			continue;
		if (strcmp(type, "FLOCK") || major(dev) != maj || minor(dev) != min || (ino_t)inode != ino)
			continue;
		found = pid;
	}
	fclose(f);
	return found;
}

void flasher__port_holder(const char *path, char *buf, size_t size)
{
	struct stat st;
	buf[0] = '\0';
	if (stat(path, &st) != 0)
		return;
	long pid = flock_holder(st.st_dev, st.st_ino);
	if (pid > 0)
		describe_pid(pid, buf, size);
}

int flasher__claim_port_fd(int fd, const char *path)
{
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK)
			return 0; /* a filesystem without flock: TIOCEXCL alone */
		char who[300] = "";
		struct stat st;
		if (fstat(fd, &st) == 0) {
			long pid = flock_holder(st.st_dev, st.st_ino);
			if (pid > 0)
				describe_pid(pid, who, sizeof who);
		}
		return flasher__error(FLASHER_EBUSY, "port '%s' is in use by another flasher session%s%s", path,
		                      who[0] ? ": " : "", who);
	}
	return 0;
}

void flasher__port_exclusive(int fd)
{
	/* best effort: some ttys (and emulations of them) refuse it */
	(void)ioctl(fd, TIOCEXCL);
}

/* FLASHER_LOCK_DIR, else $XDG_RUNTIME_DIR/flasher, else /tmp/flasher-EUID. */
static int lock_dir(char *buf, size_t size)
{
	const char *env = getenv("FLASHER_LOCK_DIR");
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	if (env && *env)
		snprintf(buf, size, "%s", env);
	else if (xdg && *xdg)
		snprintf(buf, size, "%s/flasher", xdg);
	else
		snprintf(buf, size, "/tmp/flasher-%ld", (long)geteuid());
	if (mkdir(buf, 0700) != 0 && errno != EEXIST)
		return -1;
	return 0;
}

/* A lock file in the lock dir for what (a uid, a socket spec): named by
 * the key's readable characters and a hash of the whole key. */
static int claim_key(const char *kind, const char *key, const char *what, int *fd_out)
{
	char dir[512], path[700], name[80];
	*fd_out = -1;
	if (lock_dir(dir, sizeof dir) != 0)
		return 0;
	uint64_t h = 1469598103934665603ull; /* FNV-1a */
	size_t n = 0;
	for (const char *c = key; *c; c++) {
		h = (h ^ (unsigned char)*c) * 1099511628211ull;
		if (n < 40 && ((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z')))
			name[n++] = *c;
	}
	name[n] = '\0';
	snprintf(path, sizeof path, "%s/%s-%s-%016llx.lock", dir, kind, name, (unsigned long long)h);
	int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (fd < 0)
		return 0;
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		int e = errno;
		char who[300] = "";
		ssize_t rd = e == EWOULDBLOCK ? pread(fd, who, sizeof who - 1, 0) : -1;
		close(fd);
		if (e != EWOULDBLOCK)
			return 0;
		who[rd > 0 ? rd : 0] = '\0';
		who[strcspn(who, "\n")] = '\0';
		return flasher__error(FLASHER_EBUSY, "%s is in use by another flasher session%s%s", what,
		                      who[0] ? ": " : "", who);
	}
	/* never unlinked (that races with the next claimer); the holder is
	 * written for the error message of whoever comes second */
	char who[300];
	describe_pid((long)getpid(), who, sizeof who);
	if (ftruncate(fd, 0) == 0) {
		size_t len = strlen(who);
		who[len] = '\n';
		(void)!pwrite(fd, who, len + 1, 0);
	}
	*fd_out = fd;
	return 0;
}

int flasher__claim_unit(const char *uid, int *fd_out)
{
	char what[64];
	snprintf(what, sizeof what, "unit %s", uid);
	return claim_key("unit", uid, what, fd_out);
}

int flasher__claim_socket(const char *spec, int *fd_out)
{
	char what[300];
	snprintf(what, sizeof what, "port '%s'", spec);
	return claim_key("sock", spec, what, fd_out);
}
