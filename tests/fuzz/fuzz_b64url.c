/* Fuzz target: b64url_decode; whatever decodes must re-encode to the input. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	uint8_t out[8192];
	char back[8192 * 2];
	size_t n = 0;

	if (b64url_decode((const char *)data, size, out, sizeof(out), &n) != 0)
		return 0;
	if (b64url_encode(out, n, back, sizeof(back)) != 0)
		abort();
	if (strlen(back) != size || memcmp(back, data, size) != 0)
		abort();   /* one accepted encoding per byte string */
	return 0;
}
