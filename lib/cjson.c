#include "cjson.h"

#include <errno.h>
#include <openssl/sha.h>
#include <stdlib.h>
#include <string.h>

static int
check_value(const json_t *j, int depth)
{
	const char *key;
	json_t *v;
	size_t i;

	if (depth > CJSON_MAX_DEPTH) {
		return -EINVAL;
	}
	switch (json_typeof(j)) {
	case JSON_OBJECT:
		json_object_foreach((json_t *)j, key, v) {
			if (check_value(v, depth + 1) != 0) {
				return -EINVAL;
			}
		}
		return 0;
	case JSON_ARRAY:
		json_array_foreach(j, i, v) {
			if (check_value(v, depth + 1) != 0) {
				return -EINVAL;
			}
		}
		return 0;
	case JSON_REAL:
		return -EINVAL;
	case JSON_STRING:
	case JSON_INTEGER:
	case JSON_TRUE:
	case JSON_FALSE:
	case JSON_NULL:
		return 0;
	default:
		return -EINVAL;
	}
}

int
cjson_parse(const char *buf, size_t len, size_t cap, json_t **ret)
{
	json_error_t err;
	json_t *j;

	if (len > cap) {
		return -EFBIG;
	}
	if (memchr(buf, '\0', len) != NULL) {
		return -EINVAL;
	}
	j = json_loadb(buf, len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (j == NULL) {
		return -EINVAL;
	}
	if (check_value(j, 0) != 0) {
		json_decref(j);
		return -EINVAL;
	}
	*ret = j;
	return 0;
}

int
cjson_dump(const json_t *j, char **ret, size_t *ret_len)
{
	char *s;

	if (j == NULL || check_value(j, 0) != 0) {
		return -EINVAL;
	}
	s = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
	if (s == NULL) {
		return -ENOMEM;
	}
	*ret_len = strlen(s);
	*ret = s;
	return 0;
}

int
cjson_sha256(const json_t *j, uint8_t ret[32])
{
	char *s = NULL;
	size_t len;
	int r;

	r = cjson_dump(j, &s, &len);
	if (r != 0) {
		return r;
	}
	SHA256((const unsigned char *)s, len, ret);
	free(s);
	return 0;
}

const char *
cjson_get_str(const json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key));
}

int
cjson_only_keys(const json_t *obj, const char *const *allowed, const char **ret_bad)
{
	const char *key;
	json_t *v;

	if (!json_is_object(obj)) {
		return -EINVAL;
	}
	json_object_foreach((json_t *)obj, key, v) {
		size_t i;
		int found = 0;

		(void)v;
		for (i = 0; allowed[i] != NULL; i++) {
			if (strcmp(key, allowed[i]) == 0) {
				found = 1;
				break;
			}
		}
		if (!found) {
			if (ret_bad != NULL) {
				*ret_bad = key;
			}
			return -EINVAL;
		}
	}
	return 0;
}
