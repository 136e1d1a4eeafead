/* flasherd's wire format, apart from the engine: one JSON-RPC value per
 * line, strict UTF-8 in and out, range-checked parameters. No globals, no
 * sockets: the fuzz target (tests/fuzz/fuzz_rpc.c) builds it alone. */
#ifndef FLASHERD_PROTO_H
#define FLASHERD_PROTO_H

#include <stddef.h>

#include <cjson/cJSON.h>

/* JSON-RPC error codes (docs/daemon-api.md). */
#define RPC_PARSE_ERROR -32700
#define RPC_INVALID_REQUEST -32600
#define RPC_METHOD_NOT_FOUND -32601
#define RPC_INVALID_PARAMS -32602
#define RPC_INTERNAL_ERROR -32603
#define RPC_LIBRARY_ERROR -32000

struct rpc_error {
	int code;        /* JSON-RPC code */
	int lib_code;    /* flasher_err when code == RPC_LIBRARY_ERROR */
	char message[512];
};

/* Strict UTF-8: no overlong forms, no surrogates, nothing above U+10FFFF. */
int proto_utf8_valid(const char *s, size_t n);
/* Make every string and member name in item valid UTF-8 (invalid bytes and
 * a character cut at the end become U+FFFD). */
void proto_utf8_fix(cJSON *item);
/* Print item as one line (no newline) with valid UTF-8; caller frees. */
char *proto_print(cJSON *item);

/* One request line (without its '\n'): exactly one JSON value, valid
 * UTF-8. Returns the value, or NULL with code and message set (code 0: an
 * empty line, ignore it). */
cJSON *proto_parse_line(const char *line, size_t len, int *code, const char **message);

/* Parameters: absent (or null) is fine unless required; a wrong type or
 * range is -32602 naming the parameter. Numbers are checked before any
 * conversion (1e300, NaN and fractions are refused, never cast). */
int rpc_param_string(const cJSON *params, const char *name, int required, const char **out, struct rpc_error *err);
int rpc_param_int(const cJSON *params, const char *name, int required, long long lo, long long hi, long long *out,
                  struct rpc_error *err);
int rpc_param_bool(const cJSON *params, const char *name, int *out, struct rpc_error *err);
int rpc_bad_params(struct rpc_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Is v a number that is an integer in lo..hi? (*out set when it is) */
int proto_int_in(const cJSON *v, long long lo, long long hi, long long *out);

#endif
