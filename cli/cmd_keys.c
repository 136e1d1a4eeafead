/* flasher keygen: the vendor's signing key (and the product's encryption
 * key) for signed and encrypted packages (docs/signing.md). */
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "args.h"
#include "cli.h"
#include "flasher.h"

int cmd_keygen(int argc, char **argv)
{
	const char *out = NULL;
	int json = 0, enc = 0, err;
	const cli_opt opts[] = {
	        CLI_OPT_STRING("output", 'o', &out, "KEY", "where to write the key (required)"),
	        CLI_OPT_FLAG("encryption", 0, &enc, "an encryption key, not a signing key pair"),
	        CLI_OPT_FLAG("json", 0, &json, "print {\"private\":...,\"public\":...,\"key_id\":...}"),
	        CLI_END,
	};
	const cli_spec spec = {"keygen", "", 0, 0, "Create a signing key pair (or an encryption key).",
	                       "Creates a new ed25519 signing key pair: KEY (the private key, mode 0600,\n"
	                       "never overwritten) and KEY.pub (the public key, for units and for\n"
	                       "'flasher inspect --key'). Sign packages with 'flasher pack ... --sign KEY'.\n"
	                       "With --encryption, creates the product's XChaCha20-Poly1305 key instead\n"
	                       "(KEY only, mode 0600), for 'flasher pack --encrypt KEY' and provisioning.\n\n"
	                       "Keep private keys off build machines: 'pack --sign' also reads\n"
	                       "fd:N (an inherited descriptor) and env:NAME (a CI secret variable).\n",
	                       opts, NULL};
	const char *pos[1];
	int npos;
	int rc = cli_parse(&spec, argc, argv, pos, &npos);
	if (rc)
		return rc == CLI_PARSED_HELP ? CLI_EXIT_OK : rc;
	if (!out)
		return cli_usage_error("keygen", "-o KEY is required");
	err = enc ? flasher_enckey_generate(out) : flasher_keygen(out);
	if (err)
		return cli_fail(err, "keygen");
	if (enc) {
		if (json) {
			cJSON *d = cJSON_CreateObject();
			char *s;

			cJSON_AddStringToObject(d, "encryption_key", out);
			s = cJSON_PrintUnformatted(d);
			puts(s);
			cJSON_free(s);
			cJSON_Delete(d);
		} else {
			printf("wrote encryption key %s (keep it secret; units get it at provisioning)\n", out);
		}
		return CLI_EXIT_OK;
	}
	{
		uint8_t pub[FLASHER_PUBKEY_SIZE], id[FLASHER_KEY_ID_SIZE];
		char pubpath[4096], idhex[2 * FLASHER_KEY_ID_SIZE + 1];

		snprintf(pubpath, sizeof pubpath, "%s.pub", out);
		if ((err = flasher_pubkey_load(pubpath, pub)) != 0)
			return cli_fail(err, "keygen: reading back the public key");
		flasher_key_id(pub, id);
		for (int i = 0; i < FLASHER_KEY_ID_SIZE; i++)
			snprintf(idhex + 2 * i, 3, "%02x", id[i]);
		if (json) {
			cJSON *d = cJSON_CreateObject();
			char *s;

			cJSON_AddStringToObject(d, "private", out);
			cJSON_AddStringToObject(d, "public", pubpath);
			cJSON_AddStringToObject(d, "key_id", idhex);
			s = cJSON_PrintUnformatted(d);
			puts(s);
			cJSON_free(s);
			cJSON_Delete(d);
		} else {
			printf("wrote private key %s (mode 0600) and public key %s, key id %s\n", out, pubpath, idhex);
		}
	}
	return CLI_EXIT_OK;
}
