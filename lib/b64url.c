#include "b64url.h"

#include <errno.h>

static const char alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

size_t
b64url_encoded_len(size_t n)
{
	return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

int
b64url_encode(const uint8_t *in, size_t n, char *out, size_t outsz)
{
	size_t need = b64url_encoded_len(n), i, o = 0;

	if (need >= outsz) {
		return -ENOBUFS;
	}
	for (i = 0; i + 3 <= n; i += 3) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];

		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
		out[o++] = alphabet[v & 63];
	}
	if (n - i == 1) {
		uint32_t v = (uint32_t)in[i] << 16;

		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;

		out[o++] = alphabet[v >> 18 & 63];
		out[o++] = alphabet[v >> 12 & 63];
		out[o++] = alphabet[v >> 6 & 63];
	}
	out[o] = '\0';
	return 0;
}

static int
sextet(char c)
{
	if (c >= 'A' && c <= 'Z') {
		return c - 'A';
	}
	if (c >= 'a' && c <= 'z') {
		return c - 'a' + 26;
	}
	if (c >= '0' && c <= '9') {
		return c - '0' + 52;
	}
	if (c == '-') {
		return 62;
	}
	if (c == '_') {
		return 63;
	}
	return -1;
}

int
b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz, size_t *ret_len)
{
	size_t rem = len % 4, need, i, o = 0;
	uint32_t v = 0;

	if (rem == 1) {
		return -EINVAL;
	}
	need = len / 4 * 3 + (rem == 0 ? 0 : rem - 1);
	if (need > outsz) {
		return -ENOBUFS;
	}
	for (i = 0; i < len; i++) {
		int s = sextet(in[i]);

		if (s < 0) {
			return -EINVAL;
		}
		v = v << 6 | (uint32_t)s;
		if (i % 4 == 3) {
			out[o++] = (uint8_t)(v >> 16);
			out[o++] = (uint8_t)(v >> 8);
			out[o++] = (uint8_t)v;
			v = 0;
		}
	}
	if (rem == 2) {
		if (v & 0xf) {
			return -EINVAL;
		}
		out[o++] = (uint8_t)(v >> 4);
	} else if (rem == 3) {
		if (v & 0x3) {
			return -EINVAL;
		}
		out[o++] = (uint8_t)(v >> 10);
		out[o++] = (uint8_t)(v >> 2);
	}
	*ret_len = o;
	return 0;
}
