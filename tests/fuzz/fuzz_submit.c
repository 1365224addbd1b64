/* Targets requests_parse_submit (approver/requests.c): the body of a
 * proxy's POST /api/v1/requests. Whatever the input, it must return 0 with
 * every field valid and args hashing to args_sha256, or -EINVAL with a
 * NUL-terminated detail and nothing to free. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../approver/requests.h"
#include "cjson.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct requests_submit s;
	char detail[256], hex[65];
	uint8_t h[32];
	int r;

	memset(&s, 0, sizeof(s));
	detail[0] = '\0';
	r = requests_parse_submit((const char *)data, size, &s, detail, sizeof(detail));
	if (r == 0) {
		if (approval_check(&s.ar) != 0 || !json_is_object(s.args) ||
		    cjson_sha256(s.args, h) != 0) {
			__builtin_trap();
		}
		format_hex(h, sizeof(h), hex);
		if (strcmp(hex, s.ar.args_sha256) != 0 || s.ar.ttl < 1 ||
		    s.ar.ttl > APPROVAL_TTL_MAX || s.expires < 0 ||
		    strlen(s.reason) > APPROVAL_REASON_MAX ||
		    (s.owner[0] != '\0' && parse_ident(s.owner, STORE_NAME_MAX) != 0)) {
			__builtin_trap();
		}
		requests_submit_clear(&s);
	} else if (r != -EINVAL || s.args != NULL || strlen(detail) >= sizeof(detail) ||
	    detail[0] == '\0') {
		__builtin_trap();
	}
	return 0;
}
