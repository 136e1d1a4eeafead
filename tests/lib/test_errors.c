#include <criterion/criterion.h>
#include <pthread.h>
#include <string.h>

#include "error_internal.h"
#include "flasher.h"

Test(errors, every_code_has_a_distinct_stable_name)
{
	for (int a = 0; a > -FLASHER_ERR_COUNT; a--) {
		cr_assert_str_neq(flasher_error_name(a), "FLASHER_E?", "code %d has no name", a);
		cr_assert_str_neq(flasher_strerror(a), "unknown error", "code %d has no text", a);
		for (int b = a - 1; b > -FLASHER_ERR_COUNT; b--)
			cr_assert_str_neq(flasher_error_name(a), flasher_error_name(b));
	}
	cr_assert_str_eq(flasher_error_name(FLASHER_ECORRUPT), "FLASHER_ECORRUPT");
	cr_assert_str_eq(flasher_error_name(-FLASHER_ERR_COUNT), "FLASHER_E?");
	cr_assert_str_eq(flasher_error_name(5), "FLASHER_E?");
}

Test(errors, detail_is_set_returned_and_wrapped)
{
	int rc = flasher__error(FLASHER_EFORMAT, "field %s at offset %d", "magic", 4);
	cr_assert_eq(rc, FLASHER_EFORMAT);
	cr_assert_str_eq(flasher_error_last(), "field magic at offset 4");
	rc = flasher__error_wrap(rc, "package '%s'", "x.pkg");
	cr_assert_eq(rc, FLASHER_EFORMAT);
	cr_assert_str_eq(flasher_error_last(), "package 'x.pkg': field magic at offset 4");
	flasher_error_clear();
	cr_assert_str_eq(flasher_error_last(), "");
}

static void *other_thread(void *arg)
{
	(void)arg;
	flasher__error(FLASHER_EIO, "from the other thread");
	return strdup(flasher_error_last());
}

Test(errors, detail_is_per_thread)
{
	pthread_t t;
	void *theirs;
	flasher__error(FLASHER_EINVAL, "mine");
	pthread_create(&t, NULL, other_thread, NULL);
	pthread_join(t, &theirs);
	cr_assert_str_eq(flasher_error_last(), "mine");
	cr_assert_str_eq(theirs, "from the other thread");
	free(theirs);
}
