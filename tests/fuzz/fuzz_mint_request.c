/* Targets api_parse_mint (attestd/api.c): the body of POST /v1/mint.
 * Whatever the input, it must return 0 with every field valid, or a
 * negative code with a NUL-terminated detail. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../attestd/api.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct api_mint m;
	char detail[256];
	int r;

	detail[0] = '\0';
	r = api_parse_mint((const char *)data, size, 300, 3600, &m, detail, sizeof(detail));
	if (r == 0) {
		if (parse_ident(m.claims.aud, TOKEN_ID_MAX) < 0 ||
		    parse_ident(m.claims.vm, TOKEN_ID_MAX) < 0 ||
		    parse_op(m.claims.op, TOKEN_OP_MAX) < 0 ||
		    strlen(m.claims.launch) != TOKEN_HEX256_LEN ||
		    strlen(m.claims.args) != TOKEN_HEX256_LEN ||
		    (m.claims.request[0] != '\0' && parse_ident(m.claims.request, TOKEN_ID_MAX) < 0) ||
		    m.ttl < 1 || m.ttl > 3600 || m.claims.uses < 1 ||
		    m.claims.uses > API_MAX_MINT_USES)
			__builtin_trap();
	} else if (r > 0 || strlen(detail) >= sizeof(detail)) {
		__builtin_trap();
	}
	return 0;
}
