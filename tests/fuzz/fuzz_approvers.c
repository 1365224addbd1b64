/* Targets approvers_parse_enrolment and approvers_parse_approvals
 * (attestd/approvers.c): an enrolment record as POST /v1/approvers takes
 * it, and a mint request's "approvals" array. The first byte picks the
 * parser; the rest is the input. Whatever it is, each parser returns 0
 * with every field within its bounds, or a negative code with a
 * NUL-terminated detail; an accepted record also survives the store. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../attestd/approvers.h"
#include "cjson.h"
#include "parse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
enrolment(const char *buf, size_t len)
{
	struct approvers_enrolment e;
	struct approvers *s = NULL, *back = NULL;
	char detail[APPROVERS_DETAIL_MAX], *text = NULL;
	size_t tlen = 0;
	int r;

	detail[0] = '\0';
	r = approvers_parse_enrolment(buf, len, "localhost", &e, detail, sizeof(detail));
	if (r != 0) {
		if (r > 0 || strlen(detail) >= sizeof(detail) || detail[0] == '\0') {
			__builtin_trap();
		}
		return;
	}
	if (parse_ident(e.approver, TOKEN_ID_MAX) < 0 || e.cred.id_len == 0 ||
	    e.cred.id_len > WEBAUTHN_CRED_ID_MAX ||
	    !((e.cred.alg == WEBAUTHN_ALG_ES256 && e.cred.pk_len == 65) ||
	    (e.cred.alg == WEBAUTHN_ALG_EDDSA && e.cred.pk_len == 32))) {
		__builtin_trap();
	}
	/* What is accepted can be stored and read back. */
	if (approvers_new(&s) != 0) {
		return;
	}
	if (approvers_add(s, &e, 1) != 0 || approvers_add(s, &e, 1) != -EEXIST ||
	    approvers_dump(s, &text, &tlen) != 0 ||
	    approvers_parse(text, tlen, &back, detail, sizeof(detail)) != 0 ||
	    approvers_lookup(back, e.cred.id, e.cred.id_len, NULL, NULL) != 0) {
		__builtin_trap();
	}
	free(text);
	approvers_free(back);
	approvers_free(s);
}

static void
approvals(const char *buf, size_t len)
{
	struct approvers_approval *v = NULL;
	char detail[APPROVERS_DETAIL_MAX];
	json_t *j = NULL;
	size_t n = 0, i;
	int r;

	if (cjson_parse(buf, len, 65536, &j) != 0) {
		return;
	}
	detail[0] = '\0';
	r = approvers_parse_approvals(j, &v, &n, detail, sizeof(detail));
	if (r != 0) {
		if (r > 0 || v != NULL || strlen(detail) >= sizeof(detail) || detail[0] == '\0') {
			__builtin_trap();
		}
	} else {
		if (n == 0 || n > APPROVERS_MAX_APPROVALS) {
			__builtin_trap();
		}
		for (i = 0; i < n; i++) {
			if (parse_ident(v[i].approver, TOKEN_ID_MAX) < 0 || v[i].cred_id_len == 0 ||
			    v[i].auth_data_len < 37 || v[i].sig_len == 0 || v[i].cdj_len == 0) {
				__builtin_trap();
			}
		}
	}
	free(v);
	json_decref(j);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (size == 0) {
		return 0;
	}
	if (data[0] & 1) {
		approvals((const char *)data + 1, size - 1);
	} else {
		enrolment((const char *)data + 1, size - 1);
	}
	return 0;
}
