/* Vendor keys: files, modes, the fd:/env: sources, signatures. */
#include <criterion/criterion.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flasher.h"

static char dir[64];

static void mkdir_tmp(void)
{
	strcpy(dir, "/tmp/flasher-sign-XXXXXX");
	cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void)
{
	char cmd[128];

	snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
	cr_assert_eq(system(cmd), 0);
}

TestSuite(sign, .init = mkdir_tmp, .fini = rm_tmp);

static char *path(const char *name)
{
	static char p[4][128];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof p[i], "%s/%s", dir, name);
	return p[i];
}

static char *slurp(const char *p)
{
	static char buf[1024];
	FILE *f = fopen(p, "r");
	size_t n;

	cr_assert_not_null(f, "%s missing", p);
	n = fread(buf, 1, sizeof buf - 1, f);
	buf[n] = 0;
	fclose(f);
	return buf;
}

Test(sign, keygen_writes_a_private_0600_and_a_public_file_and_never_overwrites)
{
	struct stat st;

	cr_assert_eq(flasher_keygen(path("k")), 0, "%s", flasher_error_last());
	cr_assert_eq(stat(path("k"), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600, "private key mode %o", st.st_mode & 0777);
	cr_assert(strncmp(slurp(path("k")), "flasher-ed25519-secret-key v1\n", 30) == 0);
	cr_assert(strncmp(slurp(path("k.pub")), "flasher-ed25519-public-key v1\n", 30) == 0);
	cr_assert_eq(flasher_keygen(path("k")), FLASHER_EINVAL);
	cr_assert(strstr(flasher_error_last(), "never overwritten"), "%s", flasher_error_last());
}

Test(sign, a_loaded_key_signs_what_its_public_file_checks)
{
	flasher_key *k;
	uint8_t pub[32], pub2[32], sig[64];
	static const char msg[] = "image header";

	cr_assert_eq(flasher_keygen(path("k")), 0);
	cr_assert_eq(flasher_key_load(path("k"), &k), 0, "%s", flasher_error_last());
	cr_assert_eq(flasher_pubkey_load(path("k.pub"), pub), 0, "%s", flasher_error_last());
	flasher_key_public(k, pub2);
	cr_assert(memcmp(pub, pub2, 32) == 0, "the .pub file is not the key's public half");
	cr_assert_eq(flasher_key_sign(k, msg, sizeof msg, sig), 0);
	cr_assert_eq(flasher_signature_check(pub, msg, sizeof msg, sig), 0);
	sig[5] ^= 1;
	cr_assert_eq(flasher_signature_check(pub, msg, sizeof msg, sig), FLASHER_EVERIFY);
	flasher_key_free(k);
}

Test(sign, keys_come_from_env_and_fd_without_a_file_on_disk)
{
	flasher_key *a, *b, *c;
	uint8_t pa[32], pb[32], pc[32];
	char spec[32];
	int fds[2];
	const char *text;

	cr_assert_eq(flasher_keygen(path("k")), 0);
	text = slurp(path("k"));
	cr_assert_eq(setenv("FLASHER_TEST_KEY", text, 1), 0);
	cr_assert_eq(flasher_key_load(path("k"), &a), 0);
	cr_assert_eq(flasher_key_load("env:FLASHER_TEST_KEY", &b), 0, "%s", flasher_error_last());
	cr_assert_eq(pipe(fds), 0);
	cr_assert_eq(write(fds[1], text, strlen(text)), (ssize_t)strlen(text));
	close(fds[1]);
	snprintf(spec, sizeof spec, "fd:%d", fds[0]);
	cr_assert_eq(flasher_key_load(spec, &c), 0, "%s", flasher_error_last());
	close(fds[0]);
	flasher_key_public(a, pa);
	flasher_key_public(b, pb);
	flasher_key_public(c, pc);
	cr_assert(memcmp(pa, pb, 32) == 0 && memcmp(pa, pc, 32) == 0);
	flasher_key_free(a);
	flasher_key_free(b);
	flasher_key_free(c);
	cr_assert_eq(flasher_key_load("env:FLASHER_TEST_UNSET_VARIABLE", &a), FLASHER_ENOTFOUND);
	cr_assert_eq(flasher_key_load("fd:x", &a), FLASHER_EINVAL);
}

Test(sign, refuses_a_readable_private_key_a_public_key_as_private_and_garbage)
{
	flasher_key *k;
	uint8_t pub[32];
	FILE *f;

	cr_assert_eq(flasher_keygen(path("k")), 0);
	cr_assert_eq(chmod(path("k"), 0644), 0);
	cr_assert_eq(flasher_key_load(path("k"), &k), FLASHER_EPERM);
	cr_assert(strstr(flasher_error_last(), "chmod 600"), "%s", flasher_error_last());
	cr_assert_eq(flasher_key_load(path("k.pub"), &k), FLASHER_EPERM); /* 0644 too */
	cr_assert_eq(chmod(path("k.pub"), 0600), 0);
	cr_assert_eq(flasher_key_load(path("k.pub"), &k), FLASHER_EFORMAT);
	cr_assert(strstr(flasher_error_last(), "not a private key"), "%s", flasher_error_last());
	cr_assert_eq(flasher_pubkey_load(path("k"), pub), FLASHER_EINVAL);
	f = fopen(path("junk"), "w");
	fputs("flasher-ed25519-public-key v1\n1234\n", f);
	fclose(f);
	cr_assert_eq(flasher_pubkey_load(path("junk"), pub), FLASHER_EFORMAT);
	cr_assert(strstr(flasher_error_last(), "64 hex digits"), "%s", flasher_error_last());
	cr_assert_eq(flasher_pubkey_load("/dev/null", pub), FLASHER_EINVAL);
}

Test(sign, raw_32_byte_public_keys_and_stable_ids)
{
	uint8_t pub[32], raw[32], id1[8], id2[8];
	FILE *f;

	cr_assert_eq(flasher_keygen(path("k")), 0);
	cr_assert_eq(flasher_pubkey_load(path("k.pub"), pub), 0);
	f = fopen(path("raw"), "wb");
	fwrite(pub, 1, 32, f);
	fclose(f);
	cr_assert_eq(flasher_pubkey_load(path("raw"), raw), 0);
	cr_assert(memcmp(pub, raw, 32) == 0);
	flasher_key_id(pub, id1);
	flasher_key_id(raw, id2);
	cr_assert(memcmp(id1, id2, 8) == 0);
	raw[0] ^= 1;
	flasher_key_id(raw, id2);
	cr_assert(memcmp(id1, id2, 8) != 0);
}

Test(sign, encryption_keys_are_secret_files_of_their_own_kind)
{
	uint8_t a[32], b[32];
	struct stat st;
	flasher_key *k;

	cr_assert_eq(flasher_enckey_generate(path("e")), 0, "%s", flasher_error_last());
	cr_assert_eq(stat(path("e"), &st), 0);
	cr_assert_eq(st.st_mode & 0777, 0600);
	cr_assert_eq(flasher_enckey_load(path("e"), a), 0, "%s", flasher_error_last());
	cr_assert_eq(setenv("FLASHER_TEST_ENC", slurp(path("e")), 1), 0);
	cr_assert_eq(flasher_enckey_load("env:FLASHER_TEST_ENC", b), 0);
	cr_assert(memcmp(a, b, 32) == 0);
	cr_assert_eq(flasher_enckey_generate(path("e")), FLASHER_EINVAL, "an encryption key was overwritten");
	/* a signing key is not an encryption key, and the other way round */
	cr_assert_eq(flasher_keygen(path("k")), 0);
	cr_assert_eq(flasher_enckey_load(path("k"), a), FLASHER_EFORMAT);
	cr_assert(strstr(flasher_error_last(), "not an encryption key"), "%s", flasher_error_last());
	cr_assert_eq(flasher_key_load(path("e"), &k), FLASHER_EFORMAT);
}
