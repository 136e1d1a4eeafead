/* Who may talk to the daemon, and which files a client may hand it.
 *
 * A package path comes from a client; the daemon may run as root, so it
 * must open the file with the client's rights, not its own. As root the
 * file is opened in a short-lived child that has switched to the peer's
 * uid, gid and groups and passes the descriptor back; without root the
 * daemon resolves the path from descriptors and checks the peer's rights
 * on each one (walk_as_peer). Either way the name is looked up once, only
 * a regular file is opened for reading (a FIFO or device never is), and
 * nothing blocks.
 *
 * Ports are a privilege too: a client other than root (or the daemon's own
 * uid) may add only serial devices of flasher units (USB VID:PID from the
 * configuration) and the specs the configuration lists (allow_ports). */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <grp.h>
#include <limits.h>
#include <pthread.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include "error_internal.h"
#include "flasherd.h"

#define MAX_GROUPS 256
#define EFTYPE_NOT_REGULAR (-1000) /* child -> parent: not a regular file */

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

/* The groups the peer's process had when it connected (SO_PEERGROUPS), or
 * its user's groups from the group database where the kernel cannot say. */
static int socket_groups(int fd, const struct peer *peer, gid_t *groups, int max)
{
#ifdef SO_PEERGROUPS
	socklen_t len = (socklen_t)(max * (int)sizeof(gid_t));
	if (fd >= 0 && getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) == 0) {
		int n = (int)(len / sizeof(gid_t));
		if (n < max)
			groups[n++] = peer->gid;
		return n;
	}
#endif
	int n = max;
	peer_groups(peer->uid, peer->gid, groups, &n);
	return n;
}

void access_classify_peer(int fd, struct peer *peer, int *allowed)
{
	struct daemon *d = g_daemon;
	gid_t groups[MAX_GROUPS];
	int n = socket_groups(fd, peer, groups, MAX_GROUPS);
	int self = peer->uid == 0 || peer->uid == geteuid();
	*allowed = self || (d->have_group && in_groups(d->group, groups, n));
	peer->admin = self || (d->have_admin_group && in_groups(d->admin_group, groups, n));
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
		else {
			/* O_PATH first: only a regular file is opened for reading,
			 * through the same inode (/proc/self/fd), never by name again. */
			int pfd = open(path, O_PATH | O_CLOEXEC);
			struct stat st;
			if (pfd < 0)
				err = errno;
			else if (fstat(pfd, &st) != 0 || !S_ISREG(st.st_mode))
				err = EFTYPE_NOT_REGULAR;
			else {
				char proc[32] = "/proc/self/fd/", digits[12];
				int nd = 0, v = pfd;
				do
					digits[nd++] = (char)('0' + v % 10);
				while ((v /= 10) && nd < 11);
				size_t pl = strlen(proc);
				while (nd)
					proc[pl++] = digits[--nd];
				proc[pl] = '\0';
				if ((fd = open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) < 0)
					err = errno;
			}
		}
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
		if (err == EFTYPE_NOT_REGULAR)
			return flasher__error(FLASHER_EINVAL, "package '%s' is not a regular file", path);
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

/* Reopen an O_PATH descriptor for reading: the same inode, no second lookup
 * of the name. */
static int reopen_for_read(int pfd)
{
	char proc[64];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", pfd);
	return open(proc, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
}

/* A non-root daemon serving another uid: resolve path one component at a
 * time from descriptors (openat with O_NOFOLLOW, symlinks expanded by hand),
 * checking the peer's search right on each directory and its read right on
 * the file from fstat of the very descriptors that are used. Nothing is
 * looked up twice, so nothing can be swapped in between. */
static int walk_as_peer(const struct peer *peer, const char *path, int *pfd_out)
{
	gid_t groups[MAX_GROUPS];
	int ng = MAX_GROUPS;
	peer_groups(peer->uid, peer->gid, groups, &ng);
	char rest[PATH_MAX], comp[NAME_MAX + 1];
	snprintf(rest, sizeof rest, "%s", path);
	int dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC), links = 0, rc = 0;
	if (dir < 0)
		return flasher__error(FLASHER_EIO, "open /: %s", strerror(errno));
	size_t pos = 0;
	for (;;) {
		while (rest[pos] == '/')
			pos++;
		if (!rest[pos]) { /* the path ended on a directory */
			rc = flasher__error(FLASHER_EINVAL, "package '%s' is not a regular file", path);
			break;
		}
		size_t len = strcspn(rest + pos, "/");
		if (len > NAME_MAX) {
			rc = flasher__error(FLASHER_EINVAL, "package '%s': name too long", path);
			break;
		}
		memcpy(comp, rest + pos, len);
		comp[len] = '\0';
		pos += len;
		int last = rest[pos + strspn(rest + pos, "/")] == '\0';
		struct stat dst;
		if (fstat(dir, &dst) != 0 || !mode_allows(&dst, peer->uid, groups, ng, 1)) {
			rc = flasher__error(FLASHER_EPERM, "package '%s': a directory on the way is not searchable by uid %u",
			                    path, (unsigned)peer->uid);
			break;
		}
		if (!strcmp(comp, "."))
			continue;
		int nfd = openat(dir, comp, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		struct stat st;
		if (nfd < 0 || fstat(nfd, &st) != 0) {
			int e = errno;
			rc = flasher__error(e == ENOENT ? FLASHER_ENOTFOUND : (e == EACCES ? FLASHER_EPERM : FLASHER_EIO),
			                    "package '%s': %s", path, strerror(e));
			if (nfd >= 0)
				close(nfd);
			break;
		}
		if (S_ISLNK(st.st_mode)) {
			char target[PATH_MAX];
			ssize_t tl = readlinkat(nfd, "", target, sizeof target - 1);
			close(nfd);
			if (tl <= 0 || ++links > 40 || (size_t)tl + strlen(rest + pos) + 2 > sizeof rest) {
				rc = flasher__error(FLASHER_EINVAL, "package '%s': too many or too long symbolic links", path);
				break;
			}
			target[tl] = '\0';
			char next[PATH_MAX];
			size_t rl = strlen(rest + pos);
			memcpy(next, target, (size_t)tl);
			next[tl] = '/';
			memcpy(next + tl + 1, rest + pos, rl + 1);
			memcpy(rest, next, (size_t)tl + rl + 2);
			pos = 0;
			if (target[0] == '/') {
				close(dir);
				if ((dir = open("/", O_PATH | O_DIRECTORY | O_CLOEXEC)) < 0)
					return flasher__error(FLASHER_EIO, "open /: %s", strerror(errno));
			}
			continue;
		}
		close(dir);
		dir = nfd;
		if (!last) {
			if (!S_ISDIR(st.st_mode)) {
				rc = flasher__error(FLASHER_ENOTFOUND, "package '%s': %s", path, strerror(ENOTDIR));
				break;
			}
			continue;
		}
		if (!S_ISREG(st.st_mode)) {
			rc = flasher__error(FLASHER_EINVAL, "package '%s' is not a regular file", path);
			break;
		}
		if (!mode_allows(&st, peer->uid, groups, ng, 4)) {
			rc = flasher__error(FLASHER_EPERM, "package '%s': not readable by uid %u (mode %03o, owner %u:%u)", path,
			                    (unsigned)peer->uid, (unsigned)(st.st_mode & 0777), (unsigned)st.st_uid,
			                    (unsigned)st.st_gid);
			break;
		}
		*pfd_out = dir;
		return 0;
	}
	close(dir);
	return rc;
}

int access_open_file(const struct peer *peer, const char *path, int *fd_out)
{
	int fd = -1, rc;
	if (!path || path[0] != '/')
		return flasher__error(FLASHER_EINVAL, "package path '%s' is not absolute", path ? path : "");
	if (geteuid() == 0 && peer->uid != 0) {
		if ((rc = open_as_peer(peer, path, &fd)) < 0)
			return rc;
	} else {
		int pfd = -1;
		if (peer->uid != geteuid() && peer->uid != 0) {
			if ((rc = walk_as_peer(peer, path, &pfd)) < 0)
				return rc;
		} else if ((pfd = open(path, O_PATH | O_CLOEXEC)) < 0) {
			int e = errno;
			return flasher__error(e == ENOENT ? FLASHER_ENOTFOUND : (e == EACCES ? FLASHER_EPERM : FLASHER_EIO),
			                      "package '%s': %s", path, strerror(e));
		}
		/* Type first: a FIFO or a device is never opened for reading. */
		struct stat st;
		if (fstat(pfd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(pfd);
			return flasher__error(FLASHER_EINVAL, "package '%s' is not a regular file", path);
		}
		fd = reopen_for_read(pfd);
		int e = errno;
		close(pfd);
		if (fd < 0)
			return flasher__error(e == EACCES ? FLASHER_EPERM : FLASHER_EIO, "package '%s': %s", path, strerror(e));
	}
	struct stat st;
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return flasher__error(FLASHER_EINVAL, "package '%s' is not a regular file", path);
	}
	*fd_out = fd;
	return 0;
}

/* Memory that package reads hold right now (the file, the library's copy,
 * the inflated images: 3 x the file), against limits.package_bytes; one
 * uid (not an admin) may hold at most half of it, so a user who reads big
 * files at once cannot starve the others. */
static size_t package_bytes_in_use;
static struct {
	uid_t uid;
	size_t bytes;
} package_users[64];
static pthread_mutex_t package_bytes_lock = PTHREAD_MUTEX_INITIALIZER;

static size_t *uid_bytes_locked(uid_t uid)
{
	size_t free_slot = sizeof package_users / sizeof package_users[0];
	for (size_t i = 0; i < sizeof package_users / sizeof package_users[0]; i++) {
		if (package_users[i].bytes && package_users[i].uid == uid)
			return &package_users[i].bytes;
		if (!package_users[i].bytes && free_slot == sizeof package_users / sizeof package_users[0])
			free_slot = i;
	}
	if (free_slot == sizeof package_users / sizeof package_users[0])
		return NULL;
	package_users[free_slot].uid = uid;
	return &package_users[free_slot].bytes;
}

static int budget_take(const struct peer *peer, size_t n, const char *path)
{
	size_t all = g_daemon->lim.package_bytes;
	pthread_mutex_lock(&package_bytes_lock);
	size_t *mine = uid_bytes_locked(peer->uid);
	size_t used = package_bytes_in_use, own = mine ? *mine : 0;
	int ok = mine && used + n <= all && (peer->admin || own + n <= all / 2);
	if (ok) {
		package_bytes_in_use += n;
		*mine += n;
	}
	pthread_mutex_unlock(&package_bytes_lock);
	if (!ok)
		return flasher__error(FLASHER_EBUSY,
		                      "package '%s' (%zu bytes to hold): package reads hold %zu bytes (uid %u: %zu) of the %zu "
		                      "allowed (half per uid); retry",
		                      path, n, used, (unsigned)peer->uid, own, all);
	return 0;
}

void access_read_done(const struct peer *peer, size_t len)
{
	pthread_mutex_lock(&package_bytes_lock);
	package_bytes_in_use -= 3 * len;
	size_t *mine = uid_bytes_locked(peer->uid);
	if (mine)
		*mine -= 3 * len;
	pthread_mutex_unlock(&package_bytes_lock);
}

int access_read_file(const struct peer *peer, const char *path, uint8_t **out, size_t *len)
{
	int fd = -1, rc;
	if ((rc = access_open_file(peer, path, &fd)) < 0)
		return rc;
	struct stat st;
	/* No valid package is larger than the format allows, so nothing larger
	 * is read: memory per read is bounded by the format, not by the file. */
	if (fstat(fd, &st) != 0 || (uint64_t)st.st_size > flasher_package_size_limit()) {
		close(fd);
		return flasher__error(FLASHER_EFORMAT, "package '%s' is %lld bytes; no package is larger than %zu", path,
		                      (long long)st.st_size, flasher_package_size_limit());
	}
	if ((rc = budget_take(peer, 3 * (size_t)st.st_size, path)) < 0) {
		close(fd);
		return rc;
	}
	size_t cap = (size_t)st.st_size, got = 0;
	uint8_t *buf = malloc(cap ? cap : 1);
	if (!buf) {
		close(fd);
		access_read_done(peer, cap);
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
			access_read_done(peer, cap);
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

/* ---- ports a client may add ------------------------------------------ */

static int has_dotdot(const char *s)
{
	for (const char *p = s; (p = strstr(p, "..")); p += 2)
		if ((p == s || p[-1] == '/' || p[-1] == ':') && (p[2] == '/' || p[2] == '\0'))
			return 1;
	return 0;
}

/* USB vendor and product of the device behind a character device, from
 * sysfs (the tty's ancestors up to the USB device). */
static int usb_ids_of(dev_t rdev, unsigned *vid, unsigned *pid)
{
	char sys[64], real[PATH_MAX];
	snprintf(sys, sizeof sys, "/sys/dev/char/%u:%u", major(rdev), minor(rdev));
	if (!realpath(sys, real))
		return -1;
	for (char *slash; (slash = strrchr(real, '/')) && slash != real; *slash = '\0') {
		char f[PATH_MAX + 16];
		unsigned v = 0, p = 0;
		snprintf(f, sizeof f, "%s/idVendor", real);
		FILE *fv = fopen(f, "re");
		if (!fv)
			continue;
		int okv = fscanf(fv, "%x", &v) == 1;
		fclose(fv);
		snprintf(f, sizeof f, "%s/idProduct", real);
		FILE *fp = fopen(f, "re");
		int okp = fp && fscanf(fp, "%x", &p) == 1;
		if (fp)
			fclose(fp);
		if (okv && okp) {
			*vid = v;
			*pid = p;
			return 0;
		}
		return -1;
	}
	return -1;
}

int access_port_allowed(const struct peer *peer, const char *spec)
{
	struct daemon *d = g_daemon;
	if (peer->uid == 0 || peer->uid == geteuid())
		return 0; /* the daemon's own rights: nothing to protect from it */
	if (has_dotdot(spec))
		return flasher__error(FLASHER_EPERM, "port '%s' is not allowed: '..' in a port spec", spec);
	for (size_t i = 0; i < d->nallow_ports; i++)
		if (fnmatch(d->allow_ports[i], spec, FNM_PATHNAME) == 0)
			return 0;
	if (spec[0] != '/' || strncmp(spec, "/dev/", 5) != 0 || !strncmp(spec, "/dev/shm/", 9) ||
	    !strncmp(spec, "/dev/mqueue/", 12))
		return flasher__error(FLASHER_EPERM,
		                      "port '%s' is not allowed: a client may add serial devices of flasher units "
		                      "(/dev/..., USB %04x:%04x) and the specs in the daemon's allow_ports",
		                      spec, d->usb_ids[0].vid, d->usb_ids[0].pid);
	/* O_PATH: the node is looked at, never opened (no DTR, no blocking). */
	int fd = open(spec, O_PATH | O_CLOEXEC);
	struct stat st;
	if (fd < 0 || fstat(fd, &st) != 0) {
		int e = errno;
		if (fd >= 0)
			close(fd);
		return flasher__error(FLASHER_ENOTFOUND, "port '%s': %s", spec, strerror(e));
	}
	char proc[64], canon[PATH_MAX];
	snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
	ssize_t cl = readlink(proc, canon, sizeof canon - 1);
	close(fd);
	canon[cl > 0 ? cl : 0] = '\0';
	if (!S_ISCHR(st.st_mode) || strncmp(canon, "/dev/", 5) != 0 || !strncmp(canon, "/dev/shm/", 9))
		return flasher__error(FLASHER_EPERM, "port '%s' is not allowed: not a serial device node", spec);
	unsigned vid = 0, pid = 0;
	if (usb_ids_of(st.st_rdev, &vid, &pid) != 0)
		return flasher__error(FLASHER_EPERM, "port '%s' is not allowed: %s is not a USB serial device", spec, canon);
	for (int i = 0; i < d->nusb_ids; i++)
		if (d->usb_ids[i].vid == vid && d->usb_ids[i].pid == pid)
			return 0;
	return flasher__error(FLASHER_EPERM, "port '%s' is not allowed: USB device %04x:%04x is not a flasher unit", spec,
	                      vid, pid);
}
