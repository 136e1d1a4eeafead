/* Who may talk to the daemon, and which files a client may hand it.
 *
 * A package path comes from a client; the daemon may run as root, so it
 * must open the file with the client's rights, not its own. As root the
 * file is opened in a short-lived child that has switched to the peer's
 * uid, gid and groups and passes the descriptor back; without root the
 * daemon can only read what it can read anyway, and additionally refuses
 * files whose mode bits would not let the peer read them. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error_internal.h"
#include "flasherd.h"

#define MAX_PACKAGE_BYTES (64u * 1024 * 1024)
#define MAX_GROUPS 256

/* Supplementary groups of uid (primary gid included). */
static int peer_groups(uid_t uid, gid_t gid, gid_t *groups, int *ngroups)
{
	struct passwd pw, *res = NULL;
	char buf[4096];
	if (getpwuid_r(uid, &pw, buf, sizeof buf, &res) != 0 || !res) {
		groups[0] = gid;
		*ngroups = 1;
		return 0;
	}
	int n = *ngroups;
	if (getgrouplist(pw.pw_name, gid, groups, &n) < 0) {
		n = *ngroups; /* truncated list: keep what fit */
	}
	*ngroups = n;
	return 0;
}

static int in_groups(gid_t g, const gid_t *groups, int n)
{
	for (int i = 0; i < n; i++)
		if (groups[i] == g)
			return 1;
	return 0;
}

int access_peer_allowed(const struct peer *peer, gid_t group, int have_group)
{
	if (peer->uid == 0 || peer->uid == geteuid())
		return 1;
	if (!have_group)
		return 0;
	if (peer->gid == group)
		return 1;
	gid_t groups[MAX_GROUPS];
	int n = MAX_GROUPS;
	peer_groups(peer->uid, peer->gid, groups, &n);
	return in_groups(group, groups, n);
}

/* May (uid, groups) do `want` (4 read, 1 search) on st? */
static int mode_allows(const struct stat *st, uid_t uid, const gid_t *groups, int n, unsigned want)
{
	if (uid == 0)
		return 1;
	if (st->st_uid == uid)
		return ((st->st_mode >> 6) & want) == want;
	if (in_groups(st->st_gid, groups, n))
		return ((st->st_mode >> 3) & want) == want;
	return (st->st_mode & want) == want;
}

/* Without root: walk the path's directories and the file with the peer's
 * credentials against the mode bits. */
static int check_by_mode(const struct peer *peer, const char *path)
{
	gid_t groups[MAX_GROUPS];
	int n = MAX_GROUPS;
	peer_groups(peer->uid, peer->gid, groups, &n);
	char real[PATH_MAX];
	if (!realpath(path, real))
		return flasher__error(errno == ENOENT ? FLASHER_ENOTFOUND : FLASHER_EIO, "package '%s': %s", path,
		                      strerror(errno));
	char dir[PATH_MAX];
	for (char *p = real + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		size_t len = (size_t)(p - real);
		memcpy(dir, real, len);
		dir[len] = '\0';
		struct stat st;
		if (*p == '\0')
			break;
		if (stat(len ? dir : "/", &st) == 0 && !mode_allows(&st, peer->uid, groups, n, 1))
			return flasher__error(FLASHER_EPERM, "package '%s': directory '%s' is not searchable by uid %u",
			                      path, dir, (unsigned)peer->uid);
	}
	struct stat st;
	if (stat(real, &st) != 0)
		return flasher__error(FLASHER_EIO, "package '%s': %s", path, strerror(errno));
	if (!mode_allows(&st, peer->uid, groups, n, 4))
		return flasher__error(FLASHER_EPERM, "package '%s': not readable by uid %u (mode %03o, owner %u:%u)",
		                      path, (unsigned)peer->uid, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid,
		                      (unsigned)st.st_gid);
	return 0;
}

/* As root: open in a child running with the peer's credentials; the
 * descriptor comes back over a socketpair. */
static int open_as_peer(const struct peer *peer, const char *path, int *fd_out)
{
	gid_t groups[MAX_GROUPS];
	int n = MAX_GROUPS;
	peer_groups(peer->uid, peer->gid, groups, &n);
	int sv[2];
	if (socketpair(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0, sv) != 0)
		return flasher__error(FLASHER_EIO, "socketpair: %s", strerror(errno));
	pid_t pid = fork();
	if (pid < 0) {
		close(sv[0]);
		close(sv[1]);
		return flasher__error(FLASHER_EIO, "fork: %s", strerror(errno));
	}
	if (pid == 0) {
		/* Only async-signal-safe calls from here on. */
		int err = 0, fd = -1;
		if (setgroups((size_t)n, groups) != 0 || setresgid(peer->gid, peer->gid, peer->gid) != 0 ||
		    setresuid(peer->uid, peer->uid, peer->uid) != 0)
			err = errno ? errno : EPERM;
		else if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
			err = errno;
		struct msghdr m = {0};
		struct iovec iov = {&err, sizeof err};
		union {
			char buf[CMSG_SPACE(sizeof(int))];
			struct cmsghdr align;
		} u;
		m.msg_iov = &iov;
		m.msg_iovlen = 1;
		if (fd >= 0) {
			memset(&u, 0, sizeof u);
			m.msg_control = u.buf;
			m.msg_controllen = sizeof u.buf;
			struct cmsghdr *c = CMSG_FIRSTHDR(&m);
			c->cmsg_level = SOL_SOCKET;
			c->cmsg_type = SCM_RIGHTS;
			c->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(c), &fd, sizeof fd);
		}
		_exit(sendmsg(sv[1], &m, 0) < 0 ? 1 : 0);
	}
	close(sv[1]);
	int err = EIO, fd = -1;
	struct msghdr m = {0};
	struct iovec iov = {&err, sizeof err};
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} u;
	m.msg_iov = &iov;
	m.msg_iovlen = 1;
	m.msg_control = u.buf;
	m.msg_controllen = sizeof u.buf;
	ssize_t r;
	do
		r = recvmsg(sv[0], &m, MSG_CMSG_CLOEXEC);
	while (r < 0 && errno == EINTR);
	if (r > 0) {
		for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c; c = CMSG_NXTHDR(&m, c))
			if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS)
				memcpy(&fd, CMSG_DATA(c), sizeof fd);
	}
	close(sv[0]);
	while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
		;
	if (fd < 0) {
		if (err == EACCES || err == EPERM)
			return flasher__error(FLASHER_EPERM, "package '%s': uid %u may not read it: %s", path,
			                      (unsigned)peer->uid, strerror(err));
		if (err == ENOENT)
			return flasher__error(FLASHER_ENOTFOUND, "package '%s': %s", path, strerror(err));
		return flasher__error(FLASHER_EIO, "package '%s': %s", path, strerror(err));
	}
	*fd_out = fd;
	return 0;
}

int access_read_file(const struct peer *peer, const char *path, uint8_t **out, size_t *len)
{
	int fd = -1, rc;
	if (!path || path[0] != '/')
		return flasher__error(FLASHER_EINVAL, "package path '%s' is not absolute", path ? path : "");
	if (geteuid() == 0 && peer->uid != 0) {
		if ((rc = open_as_peer(peer, path, &fd)) < 0)
			return rc;
	} else {
		if (peer->uid != geteuid() && peer->uid != 0 && (rc = check_by_mode(peer, path)) < 0)
			return rc;
		fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
		if (fd < 0) {
			int e = errno;
			return flasher__error(e == ENOENT ? FLASHER_ENOTFOUND : (e == EACCES ? FLASHER_EPERM : FLASHER_EIO),
			                      "package '%s': %s", path, strerror(e));
		}
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return flasher__error(FLASHER_EINVAL, "package '%s' is not a regular file", path);
	}
	if ((uint64_t)st.st_size > MAX_PACKAGE_BYTES) {
		close(fd);
		return flasher__error(FLASHER_EINVAL, "package '%s' is %lld bytes, more than the %u allowed", path,
		                      (long long)st.st_size, MAX_PACKAGE_BYTES);
	}
	size_t cap = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf) {
		close(fd);
		return flasher__error(FLASHER_ENOMEM, "package '%s': %zu bytes", path, cap);
	}
	while (got < cap) {
		ssize_t r = read(fd, buf + got, cap - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			int e = r < 0 ? errno : EIO;
			free(buf);
			close(fd);
			return flasher__error(FLASHER_EIO, "package '%s': read at %zu: %s", path, got,
			                      r < 0 ? strerror(e) : "file shrank");
		}
		got += (size_t)r;
	}
	close(fd);
	*out = buf;
	*len = got;
	return 0;
}
