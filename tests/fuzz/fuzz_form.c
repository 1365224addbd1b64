/* Fuzz target: form_parse and form_cookie. Whatever form_parse accepts
 * has at most FORM_FIELDS_MAX fields, each value valid UTF-8 without NUL
 * and within FORM_VALUE_MAX. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *names[] = { "csrf", "reason", "username", "password", "a", "b" };
	struct form *f = NULL;
	char *hdr;
	char v[256];
	size_t i;

	if (form_parse((const char *)data, size, &f) == 0) {
		if (form_count(f) > FORM_FIELDS_MAX) {
			abort();
		}
		for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
			size_t n = 0;
			const char *s = form_get(f, names[i], &n);

			if (s != NULL && (n > FORM_VALUE_MAX || strlen(s) != n ||
			    !form_utf8_valid(s, n))) {
				abort();
			}
		}
		form_free(f);
	}
	hdr = malloc(size + 1);
	if (hdr == NULL) {
		return 0;
	}
	memcpy(hdr, data, size);
	hdr[size] = '\0';
	if (form_cookie(hdr, "__Host-session", v, sizeof(v)) == 0 && strlen(v) >= sizeof(v)) {
		abort();
	}
	free(hdr);
	return 0;
}
