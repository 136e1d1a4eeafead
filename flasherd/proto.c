/* flasherd's wire format (proto.h). */
#include "proto.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if invalid. */
static size_t utf8_seq(const unsigned char *s, size_t n)
{
	unsigned c = s[0];
	if (c < 0x80)
		return 1;
	size_t len;
	unsigned cp, min;
	if (c >= 0xC2 && c <= 0xDF) {
		len = 2;
		cp = c & 0x1F;
		min = 0x80;
	} else if (c >= 0xE0 && c <= 0xEF) {
		len = 3;
		cp = c & 0x0F;
		min = 0x800;
	} else if (c >= 0xF0 && c <= 0xF4) {
		len = 4;
		cp = c & 0x07;
		min = 0x10000;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xC0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3F);
	}
	if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
		return 0;
	return len;
}

int proto_utf8_valid(const char *s, size_t n)
{
	const unsigned char *p = (const unsigned char *)s;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);
		if (!l)
			return 0;
		i += l;
	}
	return 1;
}

/* A fixed copy of s (cJSON's allocator), or NULL if s is valid. */
static char *fixed_copy(const char *s)
{
	size_t n = strlen(s);
	if (proto_utf8_valid(s, n))
		return NULL;
	char *out = cJSON_malloc(n * 3 + 1);
	if (!out)
		return NULL;
	const unsigned char *p = (const unsigned char *)s;
	size_t o = 0;
	for (size_t i = 0; i < n;) {
		size_t l = utf8_seq(p + i, n - i);
		if (l) {
			memcpy(out + o, p + i, l);
			o += l;
			i += l;
		} else {
			memcpy(out + o, "\xEF\xBF\xBD", 3); /* U+FFFD */
			o += 3;
			i++;
		}
	}
	out[o] = '\0';
	return out;
}

static void fix_one(cJSON *it)
{
	if (it->string && !(it->type & cJSON_StringIsConst)) {
		char *f = fixed_copy(it->string);
		if (f) {
			cJSON_free(it->string);
			it->string = f;
		}
	}
	if (cJSON_IsString(it) && it->valuestring && !(it->type & cJSON_IsReference)) {
		char *f = fixed_copy(it->valuestring);
		if (f) {
			cJSON_free(it->valuestring);
			it->valuestring = f;
		}
	}
	for (cJSON *c = it->child; c; c = c->next)
		fix_one(c);
}

void proto_utf8_fix(cJSON *item)
{
	if (item)
		fix_one(item);
}

char *proto_print(cJSON *item)
{
	proto_utf8_fix(item);
	return cJSON_PrintUnformatted(item);
}

static int is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

cJSON *proto_parse_line(const char *line, size_t len, int *code, const char **message)
{
	while (len && is_ws(line[len - 1]))
		len--;
	size_t start = 0;
	while (start < len && is_ws(line[start]))
		start++;
	*code = 0;
	*message = NULL;
	if (start == len)
		return NULL;
	if (!proto_utf8_valid(line + start, len - start) || memchr(line + start, '\0', len - start)) {
		*code = RPC_PARSE_ERROR;
		*message = "parse error: the line is not valid UTF-8 text";
		return NULL;
	}
	const char *end = NULL;
	cJSON *v = cJSON_ParseWithLengthOpts(line + start, len - start, &end, 0);
	if (!v) {
		*code = RPC_PARSE_ERROR;
		*message = "parse error: not valid JSON";
		return NULL;
	}
	const char *stop = line + len;
	while (end && end < stop && is_ws(*end))
		end++;
	if (!end || end != stop) {
		cJSON_Delete(v);
		*code = RPC_PARSE_ERROR;
		*message = "parse error: more than one JSON value on the line";
		return NULL;
	}
	return v;
}

int rpc_bad_params(struct rpc_error *err, const char *fmt, ...)
{
	err->code = RPC_INVALID_PARAMS;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err->message, sizeof err->message, fmt, ap);
	va_end(ap);
	return -1;
}

int rpc_param_string(const cJSON *params, const char *name, int required, const char **out, struct rpc_error *err)
{
	const cJSON *v = params ? cJSON_GetObjectItemCaseSensitive(params, name) : NULL;
	if (!v || cJSON_IsNull(v)) {
		if (required)
			return rpc_bad_params(err, "missing parameter '%s' (string)", name);
		return 0;
	}
	if (!cJSON_IsString(v) || !v->valuestring[0])
		return rpc_bad_params(err, "parameter '%s' must be a non-empty string", name);
	if (strlen(v->valuestring) > 1000)
		return rpc_bad_params(err, "parameter '%s' is too long", name);
	*out = v->valuestring;
	return 0;
}

int proto_int_in(const cJSON *v, long long lo, long long hi, long long *out)
{
	if (!cJSON_IsNumber(v))
		return 0;
	double d = v->valuedouble;
	/* Range first: a double outside long long's range must never be cast. */
	if (!isfinite(d) || d < (double)lo || d > (double)hi || d != floor(d))
		return 0;
	*out = (long long)d;
	return 1;
}

int rpc_param_int(const cJSON *params, const char *name, int required, long long lo, long long hi, long long *out,
                  struct rpc_error *err)
{
	const cJSON *v = params ? cJSON_GetObjectItemCaseSensitive(params, name) : NULL;
	if (!v || cJSON_IsNull(v)) {
		if (required)
			return rpc_bad_params(err, "missing parameter '%s' (integer)", name);
		return 0;
	}
	if (!proto_int_in(v, lo, hi, out))
		return rpc_bad_params(err, "parameter '%s' must be an integer in %lld..%lld", name, lo, hi);
	return 0;
}

int rpc_param_bool(const cJSON *params, const char *name, int *out, struct rpc_error *err)
{
	const cJSON *v = params ? cJSON_GetObjectItemCaseSensitive(params, name) : NULL;
	if (!v || cJSON_IsNull(v))
		return 0;
	if (!cJSON_IsBool(v))
		return rpc_bad_params(err, "parameter '%s' must be true or false", name);
	*out = cJSON_IsTrue(v);
	return 0;
}
