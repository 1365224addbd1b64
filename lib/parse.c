#include "parse.h"

#include <errno.h>
#include <string.h>

int
parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
	uint64_t v = 0;
	size_t i;

	if (s == NULL || s[0] == '\0') {
		return -EINVAL;
	}
	if (s[0] == '0' && s[1] != '\0') {
		return -EINVAL;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -EINVAL;
		}
		if (__builtin_mul_overflow(v, 10, &v) ||
		    __builtin_add_overflow(v, (uint64_t)(s[i] - '0'), &v)) {
			return -ERANGE;
		}
	}
	if (v < min || v > max) {
		return -ERANGE;
	}
	*ret = v;
	return 0;
}

static int
hexval(char c)
{
	if (c >= '0' && c <= '9') {
		return c - '0';
	}
	if (c >= 'a' && c <= 'f') {
		return c - 'a' + 10;
	}
	return -1;
}

int
parse_hex(const char *s, uint8_t *out, size_t n)
{
	size_t i;

	if (s == NULL || strlen(s) != 2 * n) {
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		int hi = hexval(s[2 * i]), lo = hexval(s[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			return -EINVAL;
		}
		out[i] = (uint8_t)(hi << 4 | lo);
	}
	return 0;
}

void
format_hex(const uint8_t *in, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	size_t i;

	for (i = 0; i < n; i++) {
		out[2 * i] = digits[in[i] >> 4];
		out[2 * i + 1] = digits[in[i] & 15];
	}
	out[2 * n] = '\0';
}

static int
is_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

static int
check_name(const char *s, size_t max, const char *extra)
{
	size_t i;

	if (s == NULL || !is_alnum(s[0])) {
		return -EINVAL;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (i >= max) {
			return -EINVAL;
		}
		if (!is_alnum(s[i]) && strchr(extra, s[i]) == NULL) {
			return -EINVAL;
		}
	}
	return 0;
}

int
parse_ident(const char *s, size_t max)
{
	return check_name(s, max, "._:-");
}

int
parse_op(const char *s, size_t max)
{
	return check_name(s, max, "._:/-");
}
