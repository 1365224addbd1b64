/* Fuzz target: token_kid_decode, token_claims_decode and
 * token_caveat_decode (the canonical scanner), held to the general jansson
 * path token_*_decode_json: for kid and claims both must accept exactly the
 * same inputs with the same values; for caveats, which fall back to the
 * general path, the results must be identical. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "b64url.h"
#include "token.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char seg[TOKEN_MAX_LEN * 2];
	struct token_kid ka, kb;
	struct token_claims ca, cb;
	struct token_caveat va, vb;
	int ra, rb;
	size_t n;

	if (size > TOKEN_MAX_LEN / 2 ||
	    b64url_encode(data, size, seg, sizeof(seg)) != 0)
		return 0;
	n = strlen(seg);

	memset(&ka, 0, sizeof(ka));
	memset(&kb, 0, sizeof(kb));
	ra = token_kid_decode(seg, n, &ka);
	rb = token_kid_decode_json(seg, n, &kb);
	if ((ra == 0) != (rb == 0))
		abort();
	if (ra == 0 && memcmp(&ka, &kb, sizeof(ka)) != 0)
		abort();

	memset(&ca, 0, sizeof(ca));
	memset(&cb, 0, sizeof(cb));
	ra = token_claims_decode(seg, n, &ca);
	rb = token_claims_decode_json(seg, n, &cb);
	if ((ra == 0) != (rb == 0))
		abort();
	if (ra == 0 && memcmp(&ca, &cb, sizeof(ca)) != 0)
		abort();

	memset(&va, 0, sizeof(va));
	memset(&vb, 0, sizeof(vb));
	ra = token_caveat_decode(seg, n, &va);
	rb = token_caveat_decode_json(seg, n, &vb);
	if ((ra == 0) != (rb == 0))
		abort();
	if (ra == 0 && memcmp(&va, &vb, sizeof(va)) != 0)
		abort();
	return 0;
}
