#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <string.h>

#include "flasher.h"

Test(semver, parses_and_formats_round_trip)
{
	uint32_t v = 0;
	char buf[16];
	cr_assert_eq(flasher_semver_parse("1.2.3", &v), 0);
	cr_assert_eq(v, 0x01020003u);
	cr_assert_eq(flasher_semver_parse("255.255.65535", &v), 0);
	flasher_semver_format(v, buf, sizeof buf);
	cr_assert_str_eq(buf, "255.255.65535");
	cr_assert_eq(flasher_semver_parse("0.0.0", &v), 0);
	cr_assert_eq(v, 0u);
}

struct bad_case {
	char text[24];
	char must_mention[24];
};

ParameterizedTestParameters(semver, rejects_with_reason)
{
	static struct bad_case cases[] = {
		{"", "major"},         {"1", "MAJOR.MINOR.PATCH"}, {"1.2", "MAJOR.MINOR.PATCH"},
		{"1.2.x", "patch"},    {"256.0.0", "major"},       {"1.256.0", "minor"},
		{"1.2.65536", "patch"}, {"1.2.3-rc1", "-rc1"},     {"-1.2.3", "major"},
		{"1..3", "minor"},
	};
	return cr_make_param_array(struct bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(struct bad_case *c, semver, rejects_with_reason)
{
	uint32_t v = 0xDEADBEEF;
	cr_assert_eq(flasher_semver_parse(c->text, &v), FLASHER_EINVAL, "'%s' accepted", c->text);
	cr_assert(strstr(flasher_error_last(), c->must_mention), "'%s': detail '%s' lacks '%s'", c->text,
	          flasher_error_last(), c->must_mention);
	cr_assert_eq(v, 0xDEADBEEF, "output written on failure");
}
