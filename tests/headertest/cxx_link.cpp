// A C++ program calling the C library through its public headers: it only
// links when every header declares its functions extern "C".
#include <flasher.h>

#include <cstdio>
#include <cstring>

static int fails;

static void expect(bool ok, const char *what)
{
	if (!ok) {
		std::fprintf(stderr, "FAIL: %s\n", what);
		fails++;
	}
}

int main()
{
	uint32_t v = 0;
	expect(flasher_semver_parse("1.2.3", &v) == FLASHER_OK && v == 0x01020003u, "flasher_semver_parse");
	expect(flasher_semver_parse("1.2", &v) == FLASHER_EINVAL && std::strstr(flasher_error_last(), "1.2"),
	       "error detail");
	expect(std::strcmp(flasher_error_name(FLASHER_ETIMEOUT), "FLASHER_ETIMEOUT") == 0, "flasher_error_name");
	expect(std::strcmp(flasher_mode_name(FLASHER_MODE_BOOTLOADER), "bootloader") == 0, "flasher_mode_name");
	expect(std::strcmp(flasher_boot_state_name(FLASHER_STATE_TRIAL), "trial") == 0, "flasher_boot_state_name");
	expect(std::strcmp(flasher_slot_state_name(FLASHER_SLOT_STAGED), "staged") == 0, "flasher_slot_state_name");
	expect(std::strcmp(flasher_core_name(FLASHER_CORE_CM4), "cm4") == 0, "flasher_core_name");
	flasher_usb_id id = {0, 0};
	expect(flasher_usb_id_parse("1209:abcd", &id) == 0 && id.vid == 0x1209 && id.pid == 0xabcd, "usb id");
	flasher_session_options so = FLASHER_SESSION_OPTIONS_INIT;
	flasher_update_options uo = FLASHER_UPDATE_OPTIONS_INIT;
	flasher_discovery_options dopt = FLASHER_DISCOVERY_OPTIONS_INIT;
	flasher_pack_options po = FLASHER_PACK_OPTIONS_INIT;
	expect(so.version == FLASHER_SESSION_OPTIONS_VERSION && uo.version == FLASHER_UPDATE_OPTIONS_VERSION &&
	               dopt.version == FLASHER_DISCOVERY_OPTIONS_VERSION && po.version == FLASHER_PACK_OPTIONS_VERSION,
	       "option initialisers");
	flasher_session *s = nullptr;
	expect(flasher_session_open(&s, "/nonexistent/port", &so) == FLASHER_ENOTFOUND && !s, "session open");
	std::printf("%s: C++ calls into libflasher %s\n", fails ? "FAIL" : "ok", flasher_version());
	return fails ? 1 : 0;
}
