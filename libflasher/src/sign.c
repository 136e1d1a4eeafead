/* sign.c - vendor keys through libsodium (flasher/sign.h). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sodium.h>

#include "error_internal.h"
#include "flasher/sign.h"
#include "flboot/trust.h"

#define SECRET_TAG "flasher-ed25519-secret-key v1"
#define PUBLIC_TAG "flasher-ed25519-public-key v1"
#define ENC_TAG "flasher-xchacha20poly1305-key v1"
#define KEY_TEXT_MAX 512

struct flasher_key {
	uint8_t sk[crypto_sign_SECRETKEYBYTES]; /* seed || public key */
	uint8_t pk[crypto_sign_PUBLICKEYBYTES];
};

static int sodium_ready(void)
{
	if (sodium_init() < 0)
		return flasher__error(FLASHER_EIO, "libsodium does not initialise (no entropy source?)");
	return 0;
}

static void to_hex(const uint8_t *b, size_t n, char *out)
{
	static const char x[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = x[b[i] >> 4];
		out[2 * i + 1] = x[b[i] & 15];
	}
	out[2 * n] = 0;
}

/* Parse "TAG\nHEX64\n" (surrounding white space allowed). */
static int parse_key_text(const char *text, size_t len, const char *tag, uint8_t out[32], const char *what)
{
	char buf[KEY_TEXT_MAX + 1], *p, *line2;
	size_t hexlen = 0;
	int rc = 0;

	if (len > KEY_TEXT_MAX)
		return flasher__error(FLASHER_EFORMAT, "%s: longer than a key file (%zu bytes)", what, len);
	memcpy(buf, text, len);
	buf[len] = 0;
	p = buf + strspn(buf, " \t\r\n");
	if (strncmp(p, tag, strlen(tag)) != 0) {
		rc = flasher__error(FLASHER_EFORMAT, "%s: not a%s (first line should be \"%s\")", what,
		                    strcmp(tag, SECRET_TAG) == 0   ? " private key"
		                    : strcmp(tag, ENC_TAG) == 0    ? "n encryption key"
		                                                   : " public key",
		                    tag);
		goto out;
	}
	line2 = p + strlen(tag);
	line2 += strspn(line2, " \t\r\n");
	while (line2[hexlen] && !strchr(" \t\r\n", line2[hexlen]))
		hexlen++;
	if (hexlen != 64 || sodium_hex2bin(out, 32, line2, hexlen, NULL, NULL, NULL) != 0 ||
	    line2[hexlen + strspn(line2 + hexlen, " \t\r\n")] != 0)
		rc = flasher__error(FLASHER_EFORMAT, "%s: the key must be 64 hex digits on the second line", what);
out:
	sodium_memzero(buf, sizeof buf);
	return rc;
}

static int read_fd_all(int fd, char *buf, size_t cap, size_t *len, const char *what)
{
	size_t n = 0;

	for (;;) {
		ssize_t r = read(fd, buf + n, cap - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return flasher__error(FLASHER_EIO, "%s: %s", what, strerror(errno));
		if (r == 0)
			break;
		n += (size_t)r;
		if (n == cap)
			return flasher__error(FLASHER_EFORMAT, "%s: longer than a key file", what);
	}
	*len = n;
	return 0;
}

/* Create path (0600, O_EXCL: a key is never overwritten) holding tag + hex. */
static int write_secret(const char *path, const char *tag, const uint8_t secret[32])
{
	char hex[65];
	FILE *f;
	int fd, ok;

	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return flasher__error(errno == EEXIST ? FLASHER_EINVAL : FLASHER_EIO, "%s: %s%s", path, strerror(errno),
		                      errno == EEXIST ? " (a key is never overwritten; remove it first)" : "");
	to_hex(secret, 32, hex);
	f = fdopen(fd, "w");
	if (!f) {
		close(fd);
		unlink(path);
		return flasher__error(FLASHER_EIO, "%s: %s", path, strerror(errno));
	}
	ok = fprintf(f, "%s\n%s\n", tag, hex) > 0 && fflush(f) == 0 && fsync(fd) == 0;
	sodium_memzero(hex, sizeof hex);
	if (fclose(f) != 0 || !ok) {
		unlink(path);
		return flasher__error(FLASHER_EIO, "%s: cannot write: %s", path, strerror(errno));
	}
	return 0;
}

/* Read a secret (tag + 64 hex) from a path (0600 or stricter), fd:N or env:NAME. */
static int load_secret(const char *spec, const char *tag, uint8_t out[32])
{
	char text[KEY_TEXT_MAX + 1];
	size_t len = 0;
	int rc;

	if (!spec || !*spec)
		return flasher__error(FLASHER_EINVAL, "no key named");
	if (strncmp(spec, "env:", 4) == 0) {
		const char *v = getenv(spec + 4);

		if (!v)
			return flasher__error(FLASHER_ENOTFOUND, "%s: the environment variable is not set", spec);
		len = strlen(v);
		if (len > KEY_TEXT_MAX)
			return flasher__error(FLASHER_EFORMAT, "%s: longer than a key file", spec);
		memcpy(text, v, len);
	} else if (strncmp(spec, "fd:", 3) == 0) {
		char *end;
		long fd = strtol(spec + 3, &end, 10);

		if (end == spec + 3 || *end || fd < 0 || fd > 1 << 20)
			return flasher__error(FLASHER_EINVAL, "%s: fd: needs a file descriptor number", spec);
		if ((rc = read_fd_all((int)fd, text, sizeof text - 1, &len, spec)) != 0)
			return rc;
	} else {
		struct stat st;
		int fd = open(spec, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);

		if (fd < 0)
			return flasher__error(errno == ENOENT ? FLASHER_ENOTFOUND : FLASHER_EIO, "%s: %s", spec,
			                      strerror(errno));
		if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
			close(fd);
			return flasher__error(FLASHER_EINVAL, "%s: not a regular file", spec);
		}
		if (st.st_mode & 0077) {
			close(fd);
			return flasher__error(FLASHER_EPERM,
			                      "%s: a private key must not be readable by others (mode %03o; chmod 600 it)",
			                      spec, (unsigned)(st.st_mode & 0777));
		}
		rc = read_fd_all(fd, text, sizeof text - 1, &len, spec);
		close(fd);
		if (rc)
			return rc;
	}
	rc = parse_key_text(text, len, tag, out, spec);
	sodium_memzero(text, sizeof text);
	return rc;
}

int flasher_keygen(const char *path)
{
	uint8_t pk[32], sk[64];
	char hex[65], *pubpath;
	FILE *f;
	int rc;

	if (!path || !*path)
		return flasher__error(FLASHER_EINVAL, "keygen needs an output path");
	if ((rc = sodium_ready()) != 0)
		return rc;
	if (asprintf(&pubpath, "%s.pub", path) < 0)
		return flasher__error(FLASHER_ENOMEM, "out of memory");
	crypto_sign_keypair(pk, sk);
	rc = write_secret(path, SECRET_TAG, sk); /* the first 32 bytes are the seed */
	sodium_memzero(sk, sizeof sk);
	if (rc) {
		free(pubpath);
		return rc;
	}
	to_hex(pk, 32, hex);
	f = fopen(pubpath, "wx");
	if (!f || fprintf(f, "%s\n%s\n", PUBLIC_TAG, hex) < 0 || fclose(f) != 0) {
		rc = flasher__error(FLASHER_EIO, "%s: cannot write: %s", pubpath, strerror(errno));
		unlink(path);
		free(pubpath);
		return rc;
	}
	free(pubpath);
	return 0;
}

int flasher_key_load(const char *spec, flasher_key **out)
{
	uint8_t seed[32];
	flasher_key *k;
	int rc;

	*out = NULL;
	if ((rc = sodium_ready()) != 0)
		return rc;
	if ((rc = load_secret(spec, SECRET_TAG, seed)) != 0)
		return rc;
	k = sodium_malloc(sizeof *k);
	if (!k) {
		sodium_memzero(seed, sizeof seed);
		return flasher__error(FLASHER_ENOMEM, "out of memory");
	}
	crypto_sign_seed_keypair(k->pk, k->sk, seed);
	sodium_memzero(seed, sizeof seed);
	*out = k;
	return 0;
}

int flasher_enckey_generate(const char *path)
{
	uint8_t key[32];
	int rc;

	if (!path || !*path)
		return flasher__error(FLASHER_EINVAL, "keygen needs an output path");
	if ((rc = sodium_ready()) != 0)
		return rc;
	crypto_aead_xchacha20poly1305_ietf_keygen(key);
	rc = write_secret(path, ENC_TAG, key);
	sodium_memzero(key, sizeof key);
	return rc;
}

int flasher_enckey_load(const char *spec, uint8_t key[32])
{
	int rc = sodium_ready();

	return rc ? rc : load_secret(spec, ENC_TAG, key);
}

void flasher_key_free(flasher_key *key)
{
	if (key)
		sodium_free(key); /* wipes */
}

void flasher_key_public(const flasher_key *key, uint8_t pub[32])
{
	memcpy(pub, key->pk, 32);
}

int flasher_pubkey_load(const char *path, uint8_t pub[32])
{
	char text[KEY_TEXT_MAX + 1];
	size_t len;
	struct stat st;
	int fd, rc;

	fd = open(path, O_RDONLY | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return flasher__error(errno == ENOENT ? FLASHER_ENOTFOUND : FLASHER_EIO, "%s: %s", path, strerror(errno));
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		close(fd);
		return flasher__error(FLASHER_EINVAL, "%s: not a regular file", path);
	}
	rc = read_fd_all(fd, text, sizeof text - 1, &len, path);
	close(fd);
	if (rc)
		return rc;
	if (len == 32) {
		memcpy(pub, text, 32);
		return 0;
	}
	if (len >= strlen(SECRET_TAG) && strstr(text, SECRET_TAG))
		return flasher__error(FLASHER_EINVAL, "%s: this is a private key; give the .pub file", path);
	return parse_key_text(text, len, PUBLIC_TAG, pub, path);
}

/* The unit names keys the same way (flboot/trust.h): one definition. */
_Static_assert(FLASHER_KEY_ID_SIZE == FLBOOT_KEY_ID_SIZE, "key id sizes");
void flasher_key_id(const uint8_t pub[32], uint8_t id[FLASHER_KEY_ID_SIZE])
{
	flboot_key_id(pub, id);
}

int flasher_key_sign(const flasher_key *key, const void *msg, size_t len, uint8_t sig[64])
{
	if (crypto_sign_detached(sig, NULL, msg, len, key->sk) != 0)
		return flasher__error(FLASHER_EIO, "signing failed");
	return 0;
}

int flasher_signature_check(const uint8_t pub[32], const void *msg, size_t len, const uint8_t sig[64])
{
	if (sodium_ready() != 0)
		return FLASHER_EIO;
	if (crypto_sign_verify_detached(sig, msg, len, pub) != 0)
		return flasher__error(FLASHER_EVERIFY, "the signature does not match");
	return 0;
}
