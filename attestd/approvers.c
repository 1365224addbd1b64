#include "approvers.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fido.h>
#include <fido/es256.h>
#include <openssl/crypto.h>

#include "b64url.h"
#include "cjson.h"
#include "fsutil.h"
#include "parse.h"
#include "text.h"

#define STORE_VERSION 1
#define ENROL_VERSION 1
/* Unpadded base64url lengths of the largest id and key. */
#define B64_ID_MAX ((WEBAUTHN_CRED_ID_MAX * 4 + 2) / 3)
#define B64_PK_MAX ((WEBAUTHN_PK_MAX * 4 + 2) / 3)

struct cred {
	struct webauthn_credential c;
	int64_t added;
};

struct person {
	char name[TOKEN_ID_MAX + 1];
	size_t n_creds;
	struct cred creds[APPROVERS_MAX_CREDS];
};

struct approvers {
	size_t n;
	struct person *people[APPROVERS_MAX_PEOPLE];
};

int
approvers_new(struct approvers **ret)
{
	struct approvers *s = calloc(1, sizeof(*s));

	if (s == NULL) {
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void
approvers_free(struct approvers *s)
{
	size_t i;

	if (s == NULL) {
		return;
	}
	for (i = 0; i < s->n; i++) {
		free(s->people[i]);
	}
	free(s);
}

int
approvers_dup(const struct approvers *s, struct approvers **ret)
{
	struct approvers *d = NULL;
	size_t i;
	int r;

	r = approvers_new(&d);
	if (r < 0) {
		return r;
	}
	for (i = 0; i < s->n; i++) {
		d->people[i] = malloc(sizeof(struct person));
		if (d->people[i] == NULL) {
			approvers_free(d);
			return -ENOMEM;
		}
		memcpy(d->people[i], s->people[i], sizeof(struct person));
		d->n++;
	}
	*ret = d;
	return 0;
}

size_t
approvers_people(const struct approvers *s)
{
	return s->n;
}

size_t
approvers_credentials(const struct approvers *s)
{
	size_t i, n = 0;

	for (i = 0; i < s->n; i++) {
		n += s->people[i]->n_creds;
	}
	return n;
}

static struct person *
find_person(const struct approvers *s, const char *name, size_t *ret_i)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcmp(s->people[i]->name, name) == 0) {
			if (ret_i != NULL) {
				*ret_i = i;
			}
			return s->people[i];
		}
	}
	return NULL;
}

/* Names that differ only in case would read as one person in a token's
 * "approvers" and in a log, yet count twice towards a quorum: a second
 * such name is refused. */
static struct person *
find_folded(const struct approvers *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++) {
		if (strcasecmp(s->people[i]->name, name) == 0) {
			return s->people[i];
		}
	}
	return NULL;
}

static bool
same_id(const struct webauthn_credential *c, const uint8_t *id, size_t len)
{
	return c->id_len == len && memcmp(c->id, id, len) == 0;
}

int
approvers_lookup(const struct approvers *s, const uint8_t *cred_id, size_t cred_id_len,
    const char **ret_name, const struct webauthn_credential **ret_cred)
{
	size_t i, j;

	for (i = 0; i < s->n; i++) {
		const struct person *p = s->people[i];

		for (j = 0; j < p->n_creds; j++) {
			if (same_id(&p->creds[j].c, cred_id, cred_id_len)) {
				if (ret_name != NULL) {
					*ret_name = p->name;
				}
				if (ret_cred != NULL) {
					*ret_cred = &p->creds[j].c;
				}
				return 0;
			}
		}
	}
	return -ENOENT;
}

static int
add_cred(struct approvers *s, const char *name, const struct webauthn_credential *c,
    int64_t added)
{
	struct person *p;

	if (approvers_lookup(s, c->id, c->id_len, NULL, NULL) == 0) {
		return -EEXIST;
	}
	p = find_person(s, name, NULL);
	if (p == NULL && find_folded(s, name) != NULL) {
		return -ENOTUNIQ;
	}
	if (p == NULL) {
		if (s->n >= APPROVERS_MAX_PEOPLE) {
			return -E2BIG;
		}
		p = calloc(1, sizeof(*p));
		if (p == NULL) {
			return -ENOMEM;
		}
		memcpy(p->name, name, strlen(name) + 1);
		s->people[s->n++] = p;
	}
	if (p->n_creds >= APPROVERS_MAX_CREDS) {
		return -E2BIG;
	}
	p->creds[p->n_creds].c = *c;
	p->creds[p->n_creds].added = added;
	p->n_creds++;
	return 0;
}

int
approvers_add(struct approvers *s, const struct approvers_enrolment *e, int64_t now)
{
	if (parse_ident(e->approver, TOKEN_ID_MAX) < 0 || e->cred.id_len == 0 ||
	    e->cred.id_len > WEBAUTHN_CRED_ID_MAX) {
		return -EINVAL;
	}
	return add_cred(s, e->approver, &e->cred, now);
}

static void
drop_person(struct approvers *s, size_t i)
{
	free(s->people[i]);
	memmove(&s->people[i], &s->people[i + 1], (s->n - i - 1) * sizeof(s->people[0]));
	s->n--;
	s->people[s->n] = NULL;
}

int
approvers_remove(struct approvers *s, const char *name, const uint8_t *cred_id,
    size_t cred_id_len)
{
	struct person *p;
	size_t i, j;

	p = find_person(s, name, &i);
	if (p == NULL) {
		return -ENOENT;
	}
	if (cred_id == NULL) {
		drop_person(s, i);
		return 0;
	}
	for (j = 0; j < p->n_creds; j++) {
		if (same_id(&p->creds[j].c, cred_id, cred_id_len)) {
			break;
		}
	}
	if (j == p->n_creds) {
		return -ENOENT;
	}
	memmove(&p->creds[j], &p->creds[j + 1], (p->n_creds - j - 1) * sizeof(p->creds[0]));
	p->n_creds--;
	if (p->n_creds == 0) {
		drop_person(s, i);
	}
	return 0;
}

int
approvers_apply(struct approvers *s, const struct approvers_result *res)
{
	size_t i, j, k;

	for (k = 0; k < res->n_counters; k++) {
		const struct approvers_counter *ct = &res->counters[k];
		bool found = false;

		for (i = 0; i < s->n && !found; i++) {
			struct person *p = s->people[i];

			for (j = 0; j < p->n_creds; j++) {
				if (same_id(&p->creds[j].c, ct->cred_id, ct->cred_id_len)) {
					p->creds[j].c.sign_count = ct->sign_count;
					found = true;
					break;
				}
			}
		}
		if (!found) {
			return -ENOENT;
		}
	}
	return 0;
}

/* Shared field parsers. */

static int
get_b64(const json_t *obj, const char *key, size_t min, size_t max, uint8_t *out,
    size_t *ret_len, const char *where, char *detail, size_t n)
{
	const json_t *v = json_object_get(obj, key);
	const char *s = json_string_value(v);
	size_t len;

	if (s == NULL || strlen(s) != json_string_length(v)) {
		text_printf(detail, n, "%sfield '%s' must be a base64url string", where, key);
		return -EINVAL;
	}
	if (json_string_length(v) > b64url_encoded_len(max) ||
	    b64url_decode(s, json_string_length(v), out, max, &len) < 0 || len < min) {
		text_printf(detail, n, "%sfield '%s' must be unpadded base64url of %zu..%zu bytes",
		    where, key, min, max);
		return -EINVAL;
	}
	*ret_len = len;
	return 0;
}

static int
get_ident(const json_t *obj, const char *key, char dst[TOKEN_ID_MAX + 1], const char *where,
    char *detail, size_t n)
{
	const char *s = json_string_value(json_object_get(obj, key));

	if (s == NULL || strlen(s) != json_string_length(json_object_get(obj, key)) ||
	    parse_ident(s, TOKEN_ID_MAX) < 0) {
		text_printf(detail, n, "%sfield '%s' must be a name of 1..%d characters "
		    "[A-Za-z0-9._:-] starting with a letter or digit", where, key, TOKEN_ID_MAX);
		return -EINVAL;
	}
	memcpy(dst, s, strlen(s) + 1);
	return 0;
}

static int
get_u32(const json_t *obj, const char *key, uint32_t *ret, const char *where, char *detail,
    size_t n)
{
	const json_t *v = json_object_get(obj, key);

	if (!json_is_integer(v) || json_integer_value(v) < 0 ||
	    json_integer_value(v) > (json_int_t)UINT32_MAX) {
		text_printf(detail, n, "%sfield '%s' must be an integer in 0..4294967295", where, key);
		return -EINVAL;
	}
	*ret = (uint32_t)json_integer_value(v);
	return 0;
}

/* alg and public_key together: the key's size depends on the algorithm. */
static int
get_key(const json_t *obj, struct webauthn_credential *c, const char *where, char *detail,
    size_t n)
{
	const char *alg = json_string_value(json_object_get(obj, "alg"));
	size_t want;
	int r;

	if (alg == NULL || webauthn_alg_parse(alg, &c->alg) < 0) {
		text_printf(detail, n, "%sfield 'alg' must be \"ES256\" or \"EdDSA\"", where);
		return -ENOTSUP;
	}
	switch (c->alg) {
	case WEBAUTHN_ALG_ES256: {
		want = 65;
		break;
	}
	case WEBAUTHN_ALG_EDDSA: {
		want = 32;
		break;
	}
	default: {
		text_printf(detail, n, "%sfield 'alg' must be \"ES256\" or \"EdDSA\"", where);
		return -ENOTSUP;
	}
	}
	r = get_b64(obj, "public_key", want, want, c->pk, &c->pk_len, where, detail, n);
	if (r < 0) {
		text_printf(detail, n, "%sfield 'public_key' must be unpadded base64url of the raw "
		    "%s key (%zu bytes%s)", where, alg, want,
		    c->alg == WEBAUTHN_ALG_ES256 ? ": 04||x||y" : "");
		return r;
	}
	if (c->alg == WEBAUTHN_ALG_ES256) {
		es256_pk_t *es;
		bool ok;

		/* Caught at enrolment, not at the first approval. */
		es = es256_pk_new();
		if (es == NULL) {
			return -ENOMEM;
		}
		ok = c->pk[0] == 0x04 && es256_pk_from_ptr(es, c->pk, c->pk_len) == FIDO_OK;
		es256_pk_free(&es);
		if (!ok) {
			text_printf(detail, n, "%sfield 'public_key' must be an uncompressed P-256 "
			    "point (04||x||y)", where);
			return -EINVAL;
		}
	}
	return 0;
}

/* Enrolment records. */

static const char *const enrol_keys[] = {
	"v", "approver", "credential_id", "alg", "public_key", "rp_id", "sign_count", NULL,
};

int
approvers_parse_enrolment(const char *buf, size_t len, const char *rp_id,
    struct approvers_enrolment *ret, char *detail, size_t detailsz)
{
	struct approvers_enrolment e;
	const char *bad = NULL, *rp;
	json_t *root = NULL;
	int r;

	memset(&e, 0, sizeof(e));
	r = cjson_parse(buf, len, APPROVERS_ENROL_MAX, &root);
	if (r < 0) {
		if (r == -EFBIG) {
			text_printf(detail, detailsz, "the enrolment record is larger than %d bytes",
			    APPROVERS_ENROL_MAX);
		} else {
			text_printf(detail, detailsz, "the enrolment record is not strict JSON");
			r = -EINVAL;
		}
		goto out;
	}
	r = -EINVAL;
	if (!json_is_object(root)) {
		text_printf(detail, detailsz, "the enrolment record must be a JSON object");
		goto out;
	}
	if (cjson_only_keys(root, enrol_keys, &bad) < 0) {
		text_printf(detail, detailsz, "unknown field '%s'", bad != NULL ? bad : "?");
		goto out;
	}
	if (!json_is_integer(json_object_get(root, "v")) ||
	    json_integer_value(json_object_get(root, "v")) != ENROL_VERSION) {
		text_printf(detail, detailsz, "field 'v' must be %d", ENROL_VERSION);
		goto out;
	}
	if ((r = get_ident(root, "approver", e.approver, "", detail, detailsz)) < 0 ||
	    (r = get_b64(root, "credential_id", 1, WEBAUTHN_CRED_ID_MAX, e.cred.id,
	    &e.cred.id_len, "", detail, detailsz)) < 0 ||
	    (r = get_key(root, &e.cred, "", detail, detailsz)) < 0 ||
	    (r = get_u32(root, "sign_count", &e.cred.sign_count, "", detail, detailsz)) < 0) {
		goto out;
	}
	rp = json_string_value(json_object_get(root, "rp_id"));
	if (rp == NULL || strlen(rp) != json_string_length(json_object_get(root, "rp_id"))) {
		text_printf(detail, detailsz, "field 'rp_id' must be a string");
		r = -EINVAL;
		goto out;
	}
	if (rp_id == NULL || strcmp(rp, rp_id) != 0) {
		/* Its assertions would carry another rpIdHash: never valid here. */
		text_printf(detail, detailsz, "field 'rp_id': the credential is for '%.64s', attestd's "
		    "relying party is '%.64s'", rp, rp_id != NULL ? rp_id : "(none configured)");
		r = -EINVAL;
		goto out;
	}
	*ret = e;
	r = 0;
out:
	json_decref(root);
	return r;
}

/* The store file. */

static const char *const store_keys[] = { "v", "approvers", NULL };
static const char *const person_keys[] = { "name", "credentials", NULL };
static const char *const cred_keys[] = {
	"credential_id", "alg", "public_key", "sign_count", "added", NULL,
};

static int
parse_cred(const json_t *j, const char *name, size_t ci, struct approvers *s, char *err,
    size_t errsz)
{
	struct webauthn_credential c;
	const json_t *added;
	char where[TOKEN_ID_MAX + 64];
	int r;

	memset(&c, 0, sizeof(c));
	(void)snprintf(where, sizeof(where), "approvers '%s' credential %zu: ", name, ci);
	if (!json_is_object(j) || cjson_only_keys(j, cred_keys, NULL) < 0) {
		text_printf(err, errsz, "%smust be an object with the fields credential_id, alg, "
		    "public_key, sign_count, added", where);
		return -EINVAL;
	}
	if ((r = get_b64(j, "credential_id", 1, WEBAUTHN_CRED_ID_MAX, c.id, &c.id_len, where,
	    err, errsz)) < 0 ||
	    (r = get_key(j, &c, where, err, errsz)) < 0 ||
	    (r = get_u32(j, "sign_count", &c.sign_count, where, err, errsz)) < 0) {
		return -EINVAL;
	}
	added = json_object_get(j, "added");
	if (!json_is_integer(added) || json_integer_value(added) < 0) {
		text_printf(err, errsz, "%sfield 'added' must be a non-negative integer", where);
		return -EINVAL;
	}
	r = add_cred(s, name, &c, json_integer_value(added));
	if (r == -EEXIST) {
		text_printf(err, errsz, "%sthe credential id is listed twice", where);
		return -EINVAL;
	}
	if (r == -ENOTUNIQ) {
		text_printf(err, errsz, "%sanother person's name differs only in case", where);
		return -EINVAL;
	}
	if (r == -E2BIG) {
		text_printf(err, errsz, "%smore than %d credentials", where, APPROVERS_MAX_CREDS);
	}
	return r;
}

int
approvers_parse(const char *buf, size_t len, struct approvers **ret, char *err, size_t errsz)
{
	struct approvers *s = NULL;
	const json_t *arr, *pj, *cj, *creds;
	json_t *root = NULL;
	size_t i, j;
	int r;

	r = cjson_parse(buf, len, APPROVERS_FILE_MAX, &root);
	if (r < 0) {
		if (r == -EFBIG) {
			text_printf(err, errsz, "larger than %d bytes", APPROVERS_FILE_MAX);
		} else {
			text_printf(err, errsz, "not strict JSON");
		}
		goto out;
	}
	r = -EINVAL;
	if (!json_is_object(root) || cjson_only_keys(root, store_keys, NULL) < 0) {
		text_printf(err, errsz, "must be an object with the fields v and approvers");
		goto out;
	}
	if (!json_is_integer(json_object_get(root, "v")) ||
	    json_integer_value(json_object_get(root, "v")) != STORE_VERSION) {
		text_printf(err, errsz, "field 'v' must be %d", STORE_VERSION);
		goto out;
	}
	arr = json_object_get(root, "approvers");
	if (!json_is_array(arr)) {
		text_printf(err, errsz, "field 'approvers' must be an array");
		goto out;
	}
	if (json_array_size(arr) > APPROVERS_MAX_PEOPLE) {
		text_printf(err, errsz, "field 'approvers' lists more than %d people",
		    APPROVERS_MAX_PEOPLE);
		r = -E2BIG;
		goto out;
	}
	r = approvers_new(&s);
	if (r < 0) {
		goto out;
	}
	json_array_foreach(arr, i, pj) {
		char name[TOKEN_ID_MAX + 1];
		char where[48];

		(void)snprintf(where, sizeof(where), "approvers[%zu]: ", i);
		r = -EINVAL;
		if (!json_is_object(pj) || cjson_only_keys(pj, person_keys, NULL) < 0) {
			text_printf(err, errsz, "%smust be an object with the fields name and "
			    "credentials", where);
			goto out;
		}
		if ((r = get_ident(pj, "name", name, where, err, errsz)) < 0) {
			goto out;
		}
		if (find_folded(s, name) != NULL) {
			text_printf(err, errsz, "%sperson '%s' is listed twice (names are compared "
			    "without case)", where, name);
			r = -EINVAL;
			goto out;
		}
		creds = json_object_get(pj, "credentials");
		if (!json_is_array(creds) || json_array_size(creds) == 0 ||
		    json_array_size(creds) > APPROVERS_MAX_CREDS) {
			text_printf(err, errsz, "%sfield 'credentials' must be an array of 1..%d "
			    "credentials", where, APPROVERS_MAX_CREDS);
			r = -EINVAL;
			goto out;
		}
		json_array_foreach(creds, j, cj) {
			r = parse_cred(cj, name, j, s, err, errsz);
			if (r < 0) {
				goto out;
			}
		}
	}
	*ret = s;
	s = NULL;
	r = 0;
out:
	approvers_free(s);
	json_decref(root);
	return r;
}

static json_t *
cred_json(const struct cred *c, bool store)
{
	char id[B64_ID_MAX + 1];
	char pk[B64_PK_MAX + 1];
	char fp[WEBAUTHN_FP_MAX];
	const char *alg = webauthn_alg_name(c->c.alg);

	if (alg == NULL || b64url_encode(c->c.id, c->c.id_len, id, sizeof(id)) < 0 ||
	    b64url_encode(c->c.pk, c->c.pk_len, pk, sizeof(pk)) < 0) {
		return NULL;
	}
	if (store) {
		return json_pack("{s:s,s:s,s:s,s:I,s:I}", "credential_id", id, "alg", alg,
		    "public_key", pk, "sign_count", (json_int_t)c->c.sign_count,
		    "added", (json_int_t)c->added);
	}
	/* The fingerprint root compares with the one the person sees on their
	 * Passkeys page. */
	if (webauthn_fingerprint(&c->c, fp) != 0) {
		return NULL;
	}
	return json_pack("{s:s,s:s,s:I,s:I,s:s}", "id", id, "alg", alg,
	    "sign_count", (json_int_t)c->c.sign_count, "added", (json_int_t)c->added,
	    "fingerprint", fp);
}

static json_t *
to_json(const struct approvers *s, bool store)
{
	json_t *arr = json_array(), *creds, *cj;
	size_t i, j;

	if (arr == NULL) {
		return NULL;
	}
	for (i = 0; i < s->n; i++) {
		const struct person *p = s->people[i];

		creds = json_array();
		if (creds == NULL) {
			goto fail;
		}
		for (j = 0; j < p->n_creds; j++) {
			cj = cred_json(&p->creds[j], store);
			if (cj == NULL || json_array_append_new(creds, cj) != 0) {
				json_decref(creds);
				goto fail;
			}
		}
		if (json_array_append_new(arr, json_pack("{s:s,s:o}", "name", p->name,
		    "credentials", creds)) != 0) {
			goto fail;
		}
	}
	if (store) {
		return json_pack("{s:i,s:o}", "v", STORE_VERSION, "approvers", arr);
	}
	return json_pack("{s:o}", "approvers", arr);
fail:
	json_decref(arr);
	return NULL;
}

json_t *
approvers_to_json(const struct approvers *s)
{
	return to_json(s, false);
}

int
approvers_dump(const struct approvers *s, char **ret, size_t *ret_len)
{
	json_t *j = to_json(s, true);
	int r;

	if (j == NULL) {
		return -ENOMEM;
	}
	r = cjson_dump(j, ret, ret_len);
	json_decref(j);
	return r;
}

static int
store_path(const char *state_dir, char *buf, size_t n)
{
	int k = snprintf(buf, n, "%s%s" APPROVERS_FILE, state_dir,
	    state_dir[0] != '\0' && state_dir[strlen(state_dir) - 1] == '/' ? "" : "/");

	return k < 0 || (size_t)k >= n ? -ENAMETOOLONG : 0;
}

int
approvers_load(const char *state_dir, struct approvers **ret, char *err, size_t errsz)
{
	char path[4096], *buf = NULL;
	struct stat st;
	size_t len = 0;
	int r;

	r = store_path(state_dir, path, sizeof(path));
	if (r < 0) {
		text_printf(err, errsz, "the state directory's path is too long");
		return r;
	}
	/* Whoever can write the file can enrol a key: only root or attestd's
	 * own user may (the state directory is checked the same way). */
	if (lstat(path, &st) == 0 && S_ISREG(st.st_mode) &&
	    ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0 ||
	    (st.st_uid != geteuid() && st.st_uid != 0))) {
		text_printf(err, errsz, "%s: writable by others than its owner, or owned by uid %u "
		    "(mode %04o; expected 0600, owned by root or attestd's user)", path,
		    (unsigned)st.st_uid, (unsigned)(st.st_mode & 07777));
		return -EPERM;
	}
	r = fs_read_file(path, APPROVERS_FILE_MAX, &buf, &len);
	if (r == -ENOENT) {
		return approvers_new(ret);
	}
	if (r < 0) {
		text_printf(err, errsz, "%s: %s", path, r == -ELOOP ? "is a symbolic link" :
		    r == -EFBIG ? "too large" : strerror(-r));
		return r;
	}
	r = approvers_parse(buf, len, ret, err, errsz);
	if (r < 0 && err != NULL && errsz > 0) {
		char why[256];

		(void)snprintf(why, sizeof(why), "%s", err);
		text_printf(err, errsz, "%s: %s", path, why);
	}
	free(buf);
	return r;
}

int
approvers_save(const struct approvers *s, const char *state_dir)
{
	char path[4096], *text = NULL;
	size_t len = 0;
	int r;

	r = store_path(state_dir, path, sizeof(path));
	if (r < 0) {
		return r;
	}
	r = approvers_dump(s, &text, &len);
	if (r < 0) {
		return r;
	}
	r = fs_write_file_atomic(path, text, len, 0600);
	free(text);
	return r;
}

/* Approvals. */

static const char *const approval_keys[] = {
	"approver", "credential_id", "client_data_json", "authenticator_data", "signature", NULL,
};

int
approvers_parse_approvals(const json_t *arr, struct approvers_approval **ret, size_t *ret_n,
    char *detail, size_t detailsz)
{
	struct approvers_approval *v = NULL;
	const json_t *item;
	const char *bad;
	char where[48];
	size_t i, n;
	int r;

	if (!json_is_array(arr) || json_array_size(arr) == 0) {
		text_printf(detail, detailsz, "field 'approvals' must be a non-empty array");
		return -EINVAL;
	}
	n = json_array_size(arr);
	if (n > APPROVERS_MAX_APPROVALS) {
		text_printf(detail, detailsz, "field 'approvals' holds more than %d items",
		    APPROVERS_MAX_APPROVALS);
		return -E2BIG;
	}
	v = calloc(n, sizeof(*v));
	if (v == NULL) {
		return -ENOMEM;
	}
	json_array_foreach(arr, i, item) {
		struct approvers_approval *a = &v[i];

		(void)snprintf(where, sizeof(where), "approvals[%zu]: ", i);
		bad = NULL;
		if (!json_is_object(item)) {
			text_printf(detail, detailsz, "%smust be an object", where);
			r = -EINVAL;
			goto out;
		}
		if (cjson_only_keys(item, approval_keys, &bad) < 0) {
			text_printf(detail, detailsz, "%sunknown field '%s'", where,
			    bad != NULL ? bad : "?");
			r = -EINVAL;
			goto out;
		}
		if ((r = get_ident(item, "approver", a->approver, where, detail, detailsz)) < 0 ||
		    (r = get_b64(item, "credential_id", 1, WEBAUTHN_CRED_ID_MAX, a->cred_id,
		    &a->cred_id_len, where, detail, detailsz)) < 0 ||
		    (r = get_b64(item, "client_data_json", 1, WEBAUTHN_CDJ_MAX, a->cdj, &a->cdj_len,
		    where, detail, detailsz)) < 0 ||
		    (r = get_b64(item, "authenticator_data", 37, WEBAUTHN_AUTHDATA_MAX, a->auth_data,
		    &a->auth_data_len, where, detail, detailsz)) < 0 ||
		    (r = get_b64(item, "signature", 1, WEBAUTHN_SIG_MAX, a->sig, &a->sig_len, where,
		    detail, detailsz)) < 0) {
			goto out;
		}
	}
	*ret = v;
	*ret_n = n;
	v = NULL;
	r = 0;
out:
	free(v);
	return r;
}

static int
cmp_name(const void *a, const void *b)
{
	return strcmp(a, b);
}

int
approvers_decide(const struct approvers *s, const struct webauthn_rp *rp,
    const struct approval_request *req, const struct approvers_approval *approvals,
    size_t n, unsigned quorum, struct approvers_result *ret, char *detail, size_t detailsz)
{
	struct approvers_result *res = NULL;
	uint8_t challenge[32];
	char why[APPROVERS_DETAIL_MAX];
	size_t i, k;
	int r;

	if (rp == NULL || rp->rp_id == NULL || rp->origins == NULL || quorum == 0) {
		text_printf(detail, detailsz, "no relying party or quorum configured");
		return -EINVAL;
	}
	r = approval_digest(req, challenge);
	if (r < 0) {
		text_printf(detail, detailsz, "the request is not a valid approval request "
		    "(a request id is required)");
		return -EINVAL;
	}
	if (n > APPROVERS_MAX_APPROVALS) {
		text_printf(detail, detailsz, "more than %d approvals", APPROVERS_MAX_APPROVALS);
		return -E2BIG;
	}
	res = calloc(1, sizeof(*res));
	if (res == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		const struct approvers_approval *a = &approvals[i];
		const struct webauthn_credential *cred = NULL;
		const char *owner = NULL;
		uint32_t count = 0;
		bool seen;

		if (approvers_lookup(s, a->cred_id, a->cred_id_len, &owner, &cred) < 0) {
			text_printf(detail, detailsz, "approvals[%zu] (%s): the credential is not "
			    "enrolled in attestd (or was removed)", i, a->approver);
			r = -EPERM;
			goto out;
		}
		if (strcmp(owner, a->approver) != 0) {
			text_printf(detail, detailsz, "approvals[%zu] (%s): the credential belongs to "
			    "another person", i, a->approver);
			r = -EPERM;
			goto out;
		}
		why[0] = '\0';
		r = webauthn_verify_assertion(rp, challenge, cred, a->cdj, a->cdj_len,
		    a->auth_data, a->auth_data_len, a->sig, a->sig_len, &count, why, sizeof(why));
		if (r < 0) {
			text_printf(detail, detailsz, "approvals[%zu] (%s): %s", i, a->approver,
			    why[0] != '\0' ? why : strerror(-r));
			r = r == -ENOMEM ? -ENOMEM : -EPERM;
			goto out;
		}
		/* The same credential twice: one counter, the highest. */
		seen = false;
		for (k = 0; k < res->n_counters; k++) {
			struct approvers_counter *ct = &res->counters[k];

			if (ct->cred_id_len == a->cred_id_len &&
			    memcmp(ct->cred_id, a->cred_id, a->cred_id_len) == 0) {
				if (count > ct->sign_count) {
					ct->sign_count = count;
				}
				seen = true;
				break;
			}
		}
		if (!seen) {
			struct approvers_counter *ct = &res->counters[res->n_counters++];

			memcpy(ct->cred_id, a->cred_id, a->cred_id_len);
			ct->cred_id_len = a->cred_id_len;
			ct->sign_count = count;
		}
		/* People, not credentials, are counted. */
		seen = false;
		for (k = 0; k < res->n_people; k++) {
			if (strcmp(res->people[k], owner) == 0) {
				seen = true;
				break;
			}
		}
		if (!seen) {
			if (res->n_people >= TOKEN_MAX_APPROVERS) {
				text_printf(detail, detailsz, "more than %d distinct approvers",
				    TOKEN_MAX_APPROVERS);
				r = -E2BIG;
				goto out;
			}
			memcpy(res->people[res->n_people], owner, strlen(owner) + 1);
			res->n_people++;
		}
	}
	if (res->n_people < quorum) {
		text_printf(detail, detailsz, "%zu of %u distinct approvers", res->n_people, quorum);
		r = -EACCES;
		goto out;
	}
	qsort(res->people, res->n_people, sizeof(res->people[0]), cmp_name);
	*ret = *res;
	r = 0;
out:
	OPENSSL_cleanse(challenge, sizeof(challenge));
	free(res);
	return r;
}
