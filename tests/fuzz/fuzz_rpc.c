/* flasherd's wire format (flasherd/proto.c): request lines in, replies
 * out. Every reply must be valid UTF-8 and parse back as one JSON value;
 * integer parameters must be range-checked before any conversion
 * ({"job":1e300}: UBSan's float-cast-overflow catches a cast first). */
// fuzz-sources: flasherd/proto.c
// fuzz-libs: -lcjson -lm
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../flasherd/proto.h"

static void check_out(cJSON *reply)
{
	char *t = proto_print(reply);
	if (!t)
		return;
	size_t n = strlen(t);
	if (!proto_utf8_valid(t, n))
		abort(); /* a reply with invalid UTF-8 */
	int code;
	const char *msg;
	cJSON *back = proto_parse_line(t, n, &code, &msg);
	if (!back)
		abort(); /* a reply that is not one JSON value */
	cJSON_Delete(back);
	free(t);
}

static void one_line(const char *line, size_t len)
{
	int code = 0;
	const char *msg = NULL;
	cJSON *v = proto_parse_line(line, len, &code, &msg);
	cJSON *reply = cJSON_CreateObject();
	if (!v) {
		cJSON_AddNumberToObject(reply, "code", code);
		cJSON_AddStringToObject(reply, "message", msg ? msg : "");
		check_out(reply);
		cJSON_Delete(reply);
		return;
	}
	/* What the daemon echoes: the id, the method name cut at 100 bytes. */
	const cJSON *id = cJSON_GetObjectItemCaseSensitive(v, "id");
	if (id)
		cJSON_AddItemToObject(reply, "id", cJSON_Duplicate(id, 1));
	const cJSON *method = cJSON_GetObjectItemCaseSensitive(v, "method");
	if (cJSON_IsString(method)) {
		char text[160];
		snprintf(text, sizeof text, "method not found: '%.100s'", method->valuestring);
		cJSON_AddStringToObject(reply, "message", text);
	}
	const cJSON *params = cJSON_GetObjectItemCaseSensitive(v, "params");
	static const char *ints[] = {"job", "batch", "limit", "attempts"};
	for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
		struct rpc_error err;
		memset(&err, 0, sizeof err);
		long long out = 0;
		if (rpc_param_int(params, ints[i], 0, 0, 1LL << 50, &out, &err) == 0 && (out < 0 || out > (1LL << 50)))
			abort();
		if (err.code)
			cJSON_AddStringToObject(reply, ints[i], err.message);
	}
	struct rpc_error err;
	memset(&err, 0, sizeof err);
	const char *s = NULL;
	int b = 0;
	if (rpc_param_string(params, "package", 0, &s, &err) == 0 && s) {
		char cut[40];
		snprintf(cut, sizeof cut, "%s", s); /* a string cut mid-character */
		cJSON_AddStringToObject(reply, "package", cut);
	}
	rpc_param_bool(params, "all", &b, &err);
	check_out(reply);
	cJSON_Delete(reply);
	cJSON_Delete(v);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data;
	size_t start = 0;
	for (size_t i = 0; i <= size; i++)
		if (i == size || p[i] == '\n') {
			one_line(p + start, i - start);
			start = i + 1;
		}
	/* Raw bytes stored as a string (a port name, a reason) go out fixed. */
	char *raw = malloc(size + 1);
	if (raw) {
		memcpy(raw, data, size);
		raw[size] = '\0';
		cJSON *o = cJSON_CreateObject();
		cJSON_AddStringToObject(o, "port", raw);
		check_out(o);
		cJSON_Delete(o);
		free(raw);
	}
	return 0;
}
