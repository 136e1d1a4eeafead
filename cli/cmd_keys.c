/* flasher keygen: the vendor's signing key (and the product's encryption
 * key) for signed and encrypted packages (docs/signing.md). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "cli.h"
#include "flasher.h"

static void keygen_help(FILE *out)
{
	fprintf(out,
	        "Usage: flasher keygen -o KEY [--encryption] [--json]\n\n"
	        "Create a new ed25519 signing key pair: KEY (the private key, mode 0600,\n"
	        "never overwritten) and KEY.pub (the public key, for units and for\n"
	        "'flasher inspect --key'). Sign packages with 'flasher pack ... --sign KEY'.\n"
	        "With --encryption, create the product's XChaCha20-Poly1305 key instead\n"
	        "(KEY only, mode 0600), for 'flasher pack --encrypt KEY' and provisioning.\n\n"
	        "Keep private keys off build machines: 'pack --sign' also reads\n"
	        "fd:N (an inherited descriptor) and env:NAME (a CI secret variable).\n\n"
	        "Options:\n"
	        "  -o, --output KEY   where to write the key (required)\n"
	        "      --encryption   an encryption key, not a signing key pair\n"
	        "      --json         print {\"private\":...,\"public\":...,\"key_id\":...}\n"
	        "  -h, --help         this help\n");
}

int cmd_keygen(int argc, char **argv)
{
	static const struct option opts[] = {
		{"output", required_argument, NULL, 'o'},
		{"encryption", no_argument, NULL, 'e'},
		{"json", no_argument, NULL, 'j'},
		{"help", no_argument, NULL, 'h'},
		{NULL, 0, NULL, 0},
	};
	const char *out = NULL;
	int json = 0, enc = 0, c, err;

	optind = 1;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":o:h", opts, NULL)) != -1) {
		switch (c) {
		case 'o':
			if (out)
				return cli_usage_error("keygen", "-o/--output given twice");
			out = optarg;
			break;
		case 'e':
			enc = 1;
			break;
		case 'j':
			json = 1;
			break;
		case 'h':
			keygen_help(stdout);
			return CLI_EXIT_OK;
		case ':':
			return cli_usage_error("keygen", "%s needs a value", argv[optind - 1]);
		default:
			return cli_usage_error("keygen", "unknown option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		return cli_usage_error("keygen", "unexpected argument '%s'", argv[optind]);
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
