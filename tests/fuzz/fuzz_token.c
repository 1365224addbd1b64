/* Fuzz target: token_parse, then token_verify_mac, token_check,
 * token_to_json and token_attenuate on whatever parses. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const uint8_t key[TOKEN_KEY_LEN] = { 1, 2, 3 };
	struct token_caveat cav = { .type = TOKEN_CAVEAT_USES, .uses = 1 };
	struct token_expect e = { .aud = "proxy", .now = 1764363600, .skew = 30 };
	struct token_grant g;
	struct token *t = NULL;
	const char *why;
	char *out = NULL;
	json_t *j;

	if (token_parse((const char *)data, size, &t) != 0)
		return 0;
	(void)token_verify_mac(t, key);
	(void)token_check(t, &e, &g, &why);
	j = token_to_json(t);
	if (j == NULL)
		abort();   /* anything that parses must be displayable */
	json_decref(j);
	if (token_attenuate((const char *)data, size, &cav, &out) == 0)
		free(out);
	token_free(t);
	return 0;
}
