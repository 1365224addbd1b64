/* libFuzzer target for tpm_pcr_sel_parse (lib/tpm.c), with
 * tpm_pcr_sel_format checked on every accepted input. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tpm.h"

/* An independent, deliberately naive reading of the grammar
 * "sha256:" N ("," N)*, N in 0..23 without leading zeros, no repeats.
 * Returns the mask, or 0 if the input is invalid. */
static uint32_t
reference_parse(const char *s, size_t len)
{
	uint32_t mask = 0;
	size_t i = 7, start;

	if (len < 8 || memcmp(s, "sha256:", 7) != 0)
		return 0;
	while (i <= len) {
		unsigned v = 0;
		size_t n;

		start = i;
		while (i < len && s[i] != ',')
			i++;
		n = i - start;
		if (n == 0 || n > 2)
			return 0;
		if (n == 2 && s[start] == '0')
			return 0;
		for (size_t k = start; k < i; k++) {
			if (s[k] < '0' || s[k] > '9')
				return 0;
			v = v * 10 + (unsigned)(s[k] - '0');
		}
		if (v > 23 || (mask & (1u << v)) != 0)
			return 0;
		mask |= 1u << v;
		if (i == len)
			break;
		i++;            /* the comma; a trailing one leaves n == 0 above */
		if (i == len)
			return 0;
	}
	return mask;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tpm_pcr_sel sel = { 0, 0 }, again = { 0, 0 };
	char out[TPM_PCR_SEL_STR_MAX];
	uint32_t want;
	char *s;
	int r;

	/* The parser takes a C string: an embedded NUL ends it there. */
	s = malloc(size + 1);
	if (s == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	want = reference_parse(s, strlen(s));
	r = tpm_pcr_sel_parse(s, &sel);
	if ((r == 0) != (want != 0))
		abort();
	if (r == 0) {
		if (sel.mask != want || sel.bank != 0x000b)
			abort();
		if (tpm_pcr_sel_format(&sel, out, sizeof(out)) != 0)
			abort();
		if (tpm_pcr_sel_parse(out, &again) != 0 || again.mask != sel.mask)
			abort();
	} else if (sel.mask != 0 || sel.bank != 0) {
		abort();   /* out-parameter written on failure */
	}
	free(s);
	return 0;
}
