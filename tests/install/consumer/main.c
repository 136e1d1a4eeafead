#include <flasher.h>
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv)
{
	uint32_t v;
	/* Public API only: version, and an error with its detail. */
	if (flasher_semver_parse("1.2", &v) != FLASHER_EINVAL || !strstr(flasher_error_last(), "1.2"))
		return 1;
	printf("%s\n", flasher_version());
	return argc > 1 && strcmp(argv[1], flasher_version()) ? 1 : 0;
}
