/* Fuzz target: cjson_parse; the canonical dump of anything accepted must
 * parse again to the same canonical bytes. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = NULL, *k = NULL;
	char *a = NULL, *b = NULL;
	size_t alen, blen;

	if (cjson_parse((const char *)data, size, 65536, &j) != 0)
		return 0;
	if (cjson_dump(j, &a, &alen) != 0)
		abort();
	if (cjson_parse(a, alen, 65536 * 2, &k) != 0 || cjson_dump(k, &b, &blen) != 0)
		abort();
	if (alen != blen || memcmp(a, b, alen) != 0)
		abort();
	free(a);
	free(b);
	json_decref(j);
	json_decref(k);
	return 0;
}
