#include "form.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "text.h"

struct form_field {
	char name[FORM_NAME_MAX + 1];
	char *value;
	size_t len;
};

struct form {
	size_t n;
	struct form_field f[FORM_FIELDS_MAX];
};

bool
form_utf8_valid(const char *s, size_t len)
{
	return text_utf8_valid(s, len);
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
	if (c >= 'A' && c <= 'F') {
		return c - 'A' + 10;
	}
	return -1;
}

/* Decode s[0..len) into a fresh buffer. */
static int
decode_value(const char *s, size_t len, char **ret, size_t *ret_len)
{
	char *out;
	size_t i, o = 0;
	int r;

	/* Decoding never grows the text; the cap applies to the result. */
	out = malloc(len + 1);
	if (out == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < len; i++) {
		char c = s[i];

		if (c == '%') {
			int hi, lo;

			if (len - i < 3) {
				r = -EINVAL;
				goto out;
			}
			hi = hexval(s[i + 1]);
			lo = hexval(s[i + 2]);
			if (hi < 0 || lo < 0) {
				r = -EINVAL;
				goto out;
			}
			out[o++] = (char)(hi << 4 | lo);
			i += 2;
		} else if (c == '+') {
			out[o++] = ' ';
		} else if ((unsigned char)c <= 0x20 || (unsigned char)c >= 0x7f || c == '=') {
			/* Browsers percent-encode all of these. */
			r = -EINVAL;
			goto out;
		} else {
			out[o++] = c;
		}
		if (o > FORM_VALUE_MAX) {
			r = -EFBIG;
			goto out;
		}
	}
	out[o] = '\0';
	if (!form_utf8_valid(out, o)) {
		r = -EINVAL;
		goto out;
	}
	*ret = out;
	*ret_len = o;
	out = NULL;
	r = 0;
out:
	if (out != NULL) {
		explicit_bzero(out, len + 1);
		free(out);
	}
	return r;
}

int
form_parse(const char *body, size_t len, struct form **ret)
{
	struct form *f = NULL;
	size_t pos = 0;
	int r;

	if (body == NULL && len > 0) {
		return -EINVAL;
	}
	if (len > FORM_BODY_MAX) {
		return -EFBIG;
	}
	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		return -ENOMEM;
	}
	while (pos < len) {
		const char *pair = body + pos, *amp, *eq;
		size_t plen, nlen, k;

		amp = memchr(pair, '&', len - pos);
		plen = amp != NULL ? (size_t)(amp - pair) : len - pos;
		if (plen == 0) {
			r = -EINVAL;    /* "&&", a leading or a trailing '&' */
			goto out;
		}
		eq = memchr(pair, '=', plen);
		if (eq == NULL) {
			r = -EINVAL;
			goto out;
		}
		nlen = (size_t)(eq - pair);
		if (nlen == 0 || nlen > FORM_NAME_MAX) {
			r = -EINVAL;
			goto out;
		}
		for (k = 0; k < nlen; k++) {
			if (!((pair[k] >= 'a' && pair[k] <= 'z') || pair[k] == '_')) {
				r = -EINVAL;
				goto out;
			}
		}
		if (f->n >= FORM_FIELDS_MAX) {
			r = -E2BIG;
			goto out;
		}
		memcpy(f->f[f->n].name, pair, nlen);
		f->f[f->n].name[nlen] = '\0';
		for (k = 0; k < f->n; k++) {
			if (strcmp(f->f[k].name, f->f[f->n].name) == 0) {
				r = -EINVAL;
				goto out;
			}
		}
		r = decode_value(eq + 1, plen - nlen - 1, &f->f[f->n].value, &f->f[f->n].len);
		if (r < 0) {
			goto out;
		}
		f->n++;
		pos += plen;
		if (amp != NULL) {
			pos++;
			if (pos == len) {
				r = -EINVAL;   /* trailing '&' */
				goto out;
			}
		}
	}
	*ret = f;
	f = NULL;
	r = 0;
out:
	form_free(f);
	return r;
}

void
form_free(struct form *f)
{
	size_t i;

	if (f == NULL) {
		return;
	}
	for (i = 0; i < f->n; i++) {
		explicit_bzero(f->f[i].value, f->f[i].len);
		free(f->f[i].value);
	}
	explicit_bzero(f, sizeof(*f));
	free(f);
}

const char *
form_get(const struct form *f, const char *name, size_t *ret_len)
{
	size_t i;

	if (f == NULL || name == NULL) {
		return NULL;
	}
	for (i = 0; i < f->n; i++) {
		if (strcmp(f->f[i].name, name) == 0) {
			if (ret_len != NULL) {
				*ret_len = f->f[i].len;
			}
			return f->f[i].value;
		}
	}
	return NULL;
}

size_t
form_count(const struct form *f)
{
	return f == NULL ? 0 : f->n;
}

/* RFC 6265 cookie-octet: no controls, space, '"', ',', ';' or '\'. */
static bool
cookie_octet(unsigned char c)
{
	return c == 0x21 || (c >= 0x23 && c <= 0x2b) || (c >= 0x2d && c <= 0x3a) ||
	    (c >= 0x3c && c <= 0x5b) || (c >= 0x5d && c <= 0x7e);
}

int
form_cookie(const char *header, const char *name, char *out, size_t outsz)
{
	const char *p, *found = NULL;
	size_t found_len = 0, nlen, hlen;

	if (header == NULL || name == NULL || out == NULL || outsz == 0) {
		return -EINVAL;
	}
	nlen = strlen(name);
	hlen = strnlen(header, FORM_COOKIE_MAX + 1);
	if (nlen == 0 || hlen > FORM_COOKIE_MAX) {
		return -EINVAL;
	}
	p = header;
	while (*p != '\0') {
		const char *start, *eq, *end;

		while (*p == ' ' || *p == '\t') {
			p++;
		}
		start = p;
		end = strchr(p, ';');
		if (end == NULL) {
			end = p + strlen(p);
		}
		eq = memchr(start, '=', (size_t)(end - start));
		/* Other cookies are not ours to judge; only our name must be
		 * exact and unique. */
		if (eq != NULL && (size_t)(eq - start) == nlen && memcmp(start, name, nlen) == 0) {
			const char *v = eq + 1, *vend = end;
			size_t k;

			while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t')) {
				vend--;
			}
			if (found != NULL) {
				return -EEXIST;
			}
			for (k = 0; v + k < vend; k++) {
				if (!cookie_octet((unsigned char)v[k])) {
					return -EINVAL;
				}
			}
			found = v;
			found_len = (size_t)(vend - v);
		}
		p = *end == ';' ? end + 1 : end;
	}
	if (found == NULL) {
		return -ENOENT;
	}
	if (found_len + 1 > outsz) {
		return -ENOBUFS;
	}
	memcpy(out, found, found_len);
	out[found_len] = '\0';
	return 0;
}
