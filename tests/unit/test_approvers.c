/* Unit tests for attestd/approvers.c: the store (add, remove, caps,
 * persistence), adversarial enrolment records, store files and approvals
 * arrays, and the decision over assertions signed here with OpenSSL by a
 * small software authenticator. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/sha.h>

#include "../../attestd/approvers.h"
#include "b64url.h"
#include "cjson.h"

#define RP_ID   "localhost"
#define ORIGIN  "https://localhost:8443"

/* --- a software authenticator --------------------------------------------- */

struct authn {
	EVP_PKEY *pkey;
	int alg;
	char name[TOKEN_ID_MAX + 1];
	uint8_t id[16];
	uint8_t pk[65];
	size_t pk_len;
};

static void
authn_new(struct authn *a, const char *name, int alg, uint8_t id_byte)
{
	memset(a, 0, sizeof(*a));
	a->alg = alg;
	(void)snprintf(a->name, sizeof(a->name), "%s", name);
	memset(a->id, id_byte, sizeof(a->id));
	if (alg == WEBAUTHN_ALG_ES256) {
		a->pkey = EVP_EC_gen("P-256");
		assert_non_null(a->pkey);
		assert_int_equal(EVP_PKEY_get_octet_string_param(a->pkey, OSSL_PKEY_PARAM_PUB_KEY,
		    a->pk, sizeof(a->pk), &a->pk_len), 1);
		assert_int_equal(a->pk_len, 65);
	} else {
		a->pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
		assert_non_null(a->pkey);
		a->pk_len = 32;
		assert_int_equal(EVP_PKEY_get_raw_public_key(a->pkey, a->pk, &a->pk_len), 1);
	}
}

static void
authn_free(struct authn *a)
{
	EVP_PKEY_free(a->pkey);
	a->pkey = NULL;
}

static void
enrolment_of(const struct authn *a, struct approvers_enrolment *e)
{
	memset(e, 0, sizeof(*e));
	memcpy(e->approver, a->name, strlen(a->name) + 1);
	memcpy(e->cred.id, a->id, sizeof(a->id));
	e->cred.id_len = sizeof(a->id);
	e->cred.alg = a->alg;
	memcpy(e->cred.pk, a->pk, a->pk_len);
	e->cred.pk_len = a->pk_len;
}

/* What may be wrong with an assertion. */
struct twist {
	const char *origin;
	const char *rp_id;
	const char *type;
	uint8_t flags;          /* 0: UP|UV */
	int bad_sig;
};

/* Sign an assertion over challenge into *ap, naming `as` as the approver. */
static void
authn_assert(const struct authn *a, const char *as, const uint8_t challenge[32],
    uint32_t counter, const struct twist *tw, struct approvers_approval *ap)
{
	char ch64[64];
	uint8_t msg[37 + 32];
	unsigned char *sig = NULL;
	size_t siglen = 0;
	EVP_MD_CTX *md;
	int n;

	memset(ap, 0, sizeof(*ap));
	(void)snprintf(ap->approver, sizeof(ap->approver), "%s", as);
	memcpy(ap->cred_id, a->id, sizeof(a->id));
	ap->cred_id_len = sizeof(a->id);
	assert_int_equal(b64url_encode(challenge, 32, ch64, sizeof(ch64)), 0);
	n = snprintf((char *)ap->cdj, sizeof(ap->cdj),
	    "{\"type\":\"%s\",\"challenge\":\"%s\",\"origin\":\"%s\",\"crossOrigin\":false}",
	    tw != NULL && tw->type != NULL ? tw->type : "webauthn.get", ch64,
	    tw != NULL && tw->origin != NULL ? tw->origin : ORIGIN);
	assert_true(n > 0 && (size_t)n < sizeof(ap->cdj));
	ap->cdj_len = (size_t)n;
	SHA256((const uint8_t *)(tw != NULL && tw->rp_id != NULL ? tw->rp_id : RP_ID),
	    strlen(tw != NULL && tw->rp_id != NULL ? tw->rp_id : RP_ID), ap->auth_data);
	ap->auth_data[32] = tw != NULL && tw->flags != 0 ? tw->flags : 0x05;
	ap->auth_data[33] = (uint8_t)(counter >> 24);
	ap->auth_data[34] = (uint8_t)(counter >> 16);
	ap->auth_data[35] = (uint8_t)(counter >> 8);
	ap->auth_data[36] = (uint8_t)counter;
	ap->auth_data_len = 37;
	memcpy(msg, ap->auth_data, 37);
	SHA256(ap->cdj, ap->cdj_len, msg + 37);
	md = EVP_MD_CTX_new();
	assert_non_null(md);
	assert_int_equal(EVP_DigestSignInit(md, NULL, a->alg == WEBAUTHN_ALG_ES256 ?
	    EVP_sha256() : NULL, NULL, a->pkey), 1);
	assert_int_equal(EVP_DigestSign(md, NULL, &siglen, msg, sizeof(msg)), 1);
	sig = malloc(siglen);
	assert_non_null(sig);
	assert_int_equal(EVP_DigestSign(md, sig, &siglen, msg, sizeof(msg)), 1);
	assert_true(siglen <= sizeof(ap->sig));
	memcpy(ap->sig, sig, siglen);
	ap->sig_len = siglen;
	if (tw != NULL && tw->bad_sig) {
		ap->sig[siglen - 1] ^= 0x01;
	}
	free(sig);
	EVP_MD_CTX_free(md);
}

static void
request_fill(struct approval_request *r, const char *id)
{
	memset(r, 0, sizeof(*r));
	(void)snprintf(r->request, sizeof(r->request), "%s", id);
	(void)snprintf(r->aud, sizeof(r->aud), "proxy");
	(void)snprintf(r->vm, sizeof(r->vm), "vm-1");
	memset(r->launch_digest, 'a', TOKEN_HEX256_LEN);
	(void)snprintf(r->op, sizeof(r->op), "exec");
	memset(r->args_sha256, 'b', TOKEN_HEX256_LEN);
	r->ttl = 300;
}

static const char *const origins[] = { ORIGIN, NULL };
static const struct webauthn_rp rp = { RP_ID, origins };

/* --- fixtures --------------------------------------------------------------- */

struct fx {
	struct authn alice, alice2, bob;
	struct approvers *s;
	struct approval_request req;
	uint8_t challenge[32];
	char dir[256];
};

static int
setup(void **state)
{
	struct approvers_enrolment e;
	const char *tmp = getenv("TMPDIR");
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	authn_new(&f->alice, "alice", WEBAUTHN_ALG_ES256, 0xa1);
	authn_new(&f->alice2, "alice", WEBAUTHN_ALG_EDDSA, 0xa2);
	authn_new(&f->bob, "bob", WEBAUTHN_ALG_EDDSA, 0xb1);
	assert_int_equal(approvers_new(&f->s), 0);
	enrolment_of(&f->alice, &e);
	assert_int_equal(approvers_add(f->s, &e, 1000), 0);
	enrolment_of(&f->alice2, &e);
	assert_int_equal(approvers_add(f->s, &e, 1001), 0);
	enrolment_of(&f->bob, &e);
	assert_int_equal(approvers_add(f->s, &e, 1002), 0);
	request_fill(&f->req, "req-1");
	assert_int_equal(approval_digest(&f->req, f->challenge), 0);
	(void)snprintf(f->dir, sizeof(f->dir), "%s/test-approvers.XXXXXX",
	    tmp != NULL && tmp[0] != '\0' ? tmp : "/tmp");
	assert_non_null(mkdtemp(f->dir));
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fx *f = *state;
	char path[512];

	(void)snprintf(path, sizeof(path), "%s/" APPROVERS_FILE, f->dir);
	(void)unlink(path);
	(void)rmdir(f->dir);
	approvers_free(f->s);
	authn_free(&f->alice);
	authn_free(&f->alice2);
	authn_free(&f->bob);
	free(f);
	return 0;
}

static int
decide(struct fx *f, const struct approvers_approval *ap, size_t n, unsigned quorum,
    struct approvers_result *res, char *detail, size_t dsz)
{
	detail[0] = '\0';
	return approvers_decide(f->s, &rp, &f->req, ap, n, quorum, res, detail, dsz);
}

/* --- the store -------------------------------------------------------------- */

static void
test_store(void **state)
{
	struct fx *f = *state;
	struct approvers_enrolment e;
	const struct webauthn_credential *c = NULL;
	const char *name = NULL;
	struct approvers *s2 = NULL;
	uint8_t id[16];
	size_t i;

	assert_int_equal(approvers_people(f->s), 2);
	assert_int_equal(approvers_credentials(f->s), 3);
	assert_int_equal(approvers_lookup(f->s, f->alice2.id, 16, &name, &c), 0);
	assert_string_equal(name, "alice");
	assert_int_equal(c->alg, WEBAUTHN_ALG_EDDSA);
	/* A credential id belongs to one person only, whoever enrols it. */
	enrolment_of(&f->alice, &e);
	assert_int_equal(approvers_add(f->s, &e, 1), -EEXIST);
	memcpy(e.approver, "carol", 6);
	assert_int_equal(approvers_add(f->s, &e, 1), -EEXIST);
	memcpy(e.approver, "-bad", 5);
	assert_int_equal(approvers_add(f->s, &e, 1), -EINVAL);
	/* A new credential under a name that differs from a person's only in
	 * case would be a second person who reads as the first. */
	enrolment_of(&f->bob, &e);
	e.cred.id[0] ^= 0xff;
	memcpy(e.approver, "Alice", 6);
	assert_int_equal(approvers_add(f->s, &e, 1), -ENOTUNIQ);
	memcpy(e.approver, "BOB", 4);
	assert_int_equal(approvers_add(f->s, &e, 1), -ENOTUNIQ);
	assert_int_equal(approvers_people(f->s), 2);
	assert_int_equal(approvers_credentials(f->s), 3);
	/* 16 credentials each. */
	assert_int_equal(approvers_dup(f->s, &s2), 0);
	enrolment_of(&f->bob, &e);
	for (i = 1; i < APPROVERS_MAX_CREDS; i++) {
		e.cred.id[0] = (uint8_t)i;
		assert_int_equal(approvers_add(s2, &e, 1), 0);
	}
	e.cred.id[0] = 0xee;
	assert_int_equal(approvers_add(s2, &e, 1), -E2BIG);
	/* The copy is independent. */
	assert_int_equal(approvers_credentials(f->s), 3);
	assert_int_equal(approvers_credentials(s2), 2 + APPROVERS_MAX_CREDS);
	approvers_free(s2);
	s2 = NULL;
	/* 256 people. */
	assert_int_equal(approvers_new(&s2), 0);
	for (i = 0; i < APPROVERS_MAX_PEOPLE; i++) {
		(void)snprintf(e.approver, sizeof(e.approver), "p%zu", i);
		e.cred.id[0] = (uint8_t)i;
		e.cred.id[1] = (uint8_t)(i >> 8);
		assert_int_equal(approvers_add(s2, &e, 1), 0);
	}
	(void)snprintf(e.approver, sizeof(e.approver), "one-too-many");
	e.cred.id[1] = 0x77;
	assert_int_equal(approvers_add(s2, &e, 1), -E2BIG);
	approvers_free(s2);

	/* Remove one credential, then a person. */
	memset(id, 0xa2, sizeof(id));
	assert_int_equal(approvers_remove(f->s, "alice", id, sizeof(id)), 0);
	assert_int_equal(approvers_remove(f->s, "alice", id, sizeof(id)), -ENOENT);
	assert_int_equal(approvers_lookup(f->s, id, sizeof(id), NULL, NULL), -ENOENT);
	assert_int_equal(approvers_remove(f->s, "bob", f->alice.id, 16), -ENOENT);
	assert_int_equal(approvers_remove(f->s, "carol", NULL, 0), -ENOENT);
	assert_int_equal(approvers_remove(f->s, "bob", NULL, 0), 0);
	assert_int_equal(approvers_people(f->s), 1);
	/* The last credential takes the person with it. */
	assert_int_equal(approvers_remove(f->s, "alice", f->alice.id, 16), 0);
	assert_int_equal(approvers_people(f->s), 0);
}

static void
test_persist(void **state)
{
	struct fx *f = *state;
	struct approvers *s2 = NULL;
	struct approvers_result res;
	const struct webauthn_credential *c = NULL;
	char path[512], err[256], *a = NULL, *b = NULL;
	size_t alen = 0, blen = 0;
	struct stat st;
	int fd;

	/* Missing: an empty store. */
	assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), 0);
	assert_int_equal(approvers_people(s2), 0);
	approvers_free(s2);
	s2 = NULL;

	memset(&res, 0, sizeof(res));
	res.n_counters = 1;
	memcpy(res.counters[0].cred_id, f->bob.id, 16);
	res.counters[0].cred_id_len = 16;
	res.counters[0].sign_count = 42;
	assert_int_equal(approvers_apply(f->s, &res), 0);
	assert_int_equal(approvers_save(f->s, f->dir), 0);
	(void)snprintf(path, sizeof(path), "%s/" APPROVERS_FILE, f->dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), 0);
	assert_int_equal(approvers_people(s2), 2);
	assert_int_equal(approvers_credentials(s2), 3);
	assert_int_equal(approvers_lookup(s2, f->bob.id, 16, NULL, &c), 0);
	assert_int_equal(c->sign_count, 42);
	assert_int_equal(memcmp(c->pk, f->bob.pk, 32), 0);
	/* A file others may write would let them enrol keys: refused. */
	approvers_free(s2);
	s2 = NULL;
	assert_int_equal(chmod(path, 0620), 0);
	err[0] = '\0';
	assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), -EPERM);
	assert_null(s2);
	assert_non_null(strstr(err, "writable by others"));
	assert_int_equal(chmod(path, 0602), 0);
	assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), -EPERM);
	assert_null(s2);
	if (geteuid() == 0) {
		assert_int_equal(chmod(path, 0600), 0);
		assert_int_equal(chown(path, 65534, 65534), 0);
		assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), -EPERM);
		assert_null(s2);
		assert_int_equal(chown(path, 0, 0), 0);
	}
	/* Read-only for others is no risk to the keys (no secret in it). */
	assert_int_equal(chmod(path, 0644), 0);
	assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), 0);
	approvers_free(s2);
	s2 = NULL;
	assert_int_equal(chmod(path, 0600), 0);
	assert_int_equal(approvers_load(f->dir, &s2, err, sizeof(err)), 0);
	/* Byte for byte the same after a round trip. */
	assert_int_equal(approvers_dump(f->s, &a, &alen), 0);
	assert_int_equal(approvers_dump(s2, &b, &blen), 0);
	assert_int_equal(alen, blen);
	assert_memory_equal(a, b, alen);
	free(a);
	free(b);
	approvers_free(s2);
	s2 = NULL;
	/* An unknown credential's counter is an error, not ignored. */
	res.counters[0].cred_id[0] ^= 0xff;
	assert_int_equal(approvers_apply(f->s, &res), -ENOENT);

	/* A corrupt file is an error naming the file. */
	(void)unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"v\":1,\"approvers\":[", 20), 20);
	(void)close(fd);
	err[0] = '\0';
	assert_true(approvers_load(f->dir, &s2, err, sizeof(err)) < 0);
	assert_null(s2);
	assert_non_null(strstr(err, APPROVERS_FILE));
	/* A symbolic link is refused. */
	(void)unlink(path);
	assert_int_equal(symlink("/etc/passwd", path), 0);
	assert_true(approvers_load(f->dir, &s2, err, sizeof(err)) < 0);
	assert_null(s2);
	(void)unlink(path);
}

/* Store files: each must be refused. */
static void
test_store_adversarial(void **state)
{
	static const char *const bad[] = {
		"",
		"[]",
		"{\"v\":2,\"approvers\":[]}",
		"{\"v\":1}",
		"{\"v\":1,\"approvers\":{}}",
		"{\"v\":1,\"approvers\":[],\"x\":1}",
		"{\"v\":1,\"approvers\":[1]}",
		"{\"v\":1,\"approvers\":[{\"name\":\"a\"}]}",
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[]}]}",
		"{\"v\":1,\"approvers\":[{\"name\":\"-a\",\"credentials\":[]}]}",
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		    "\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"sign_count\":0}]}]}",
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		    "\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"sign_count\":-1,\"added\":0}]}]}",
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		    "\"alg\":\"RS256\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"sign_count\":0,\"added\":0}]}]}",
		/* The same credential id twice, for two people. */
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		    "\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"sign_count\":0,\"added\":0}]},{\"name\":\"b\",\"credentials\":[{"
		    "\"credential_id\":\"AA\",\"alg\":\"EdDSA\",\"public_key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"sign_count\":0,\"added\":0}]}]}",
		/* The same person twice. */
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		    "\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"sign_count\":0,\"added\":0}]},{\"name\":\"a\",\"credentials\":[{"
		    "\"credential_id\":\"AQ\",\"alg\":\"EdDSA\",\"public_key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"sign_count\":0,\"added\":0}]}]}",
		/* Two people whose names differ only in case. */
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		    "\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"sign_count\":0,\"added\":0}]},{\"name\":\"A\",\"credentials\":[{"
		    "\"credential_id\":\"AQ\",\"alg\":\"EdDSA\",\"public_key\":"
		    "\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\",\"sign_count\":0,\"added\":0}]}]}",
	};
	static const char good[] =
		"{\"v\":1,\"approvers\":[{\"name\":\"a\",\"credentials\":[{\"credential_id\":\"AA\","
		"\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		"\"sign_count\":7,\"added\":5}]}]}";
	struct approvers *s = NULL;
	char err[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		err[0] = '\0';
		if (approvers_parse(bad[i], strlen(bad[i]), &s, err, sizeof(err)) >= 0) {
			print_error("accepted store %zu: %s\n", i, bad[i]);
		}
		assert_null(s);
		assert_true(err[0] != '\0');
	}
	assert_int_equal(approvers_parse(good, strlen(good), &s, err, sizeof(err)), 0);
	assert_int_equal(approvers_credentials(s), 1);
	approvers_free(s);
}

/* --- enrolment records ------------------------------------------------------- */

static char *
record(const struct authn *a, const char *rp_id)
{
	char id[64], pk[128], *out = NULL;

	assert_int_equal(b64url_encode(a->id, sizeof(a->id), id, sizeof(id)), 0);
	assert_int_equal(b64url_encode(a->pk, a->pk_len, pk, sizeof(pk)), 0);
	assert_true(asprintf(&out, "{\"v\":1,\"approver\":\"%s\",\"credential_id\":\"%s\","
	    "\"alg\":\"%s\",\"public_key\":\"%s\",\"rp_id\":\"%s\",\"sign_count\":0}", a->name, id,
	    webauthn_alg_name(a->alg), pk, rp_id) > 0);
	return out;
}

/* Replace the first occurrence of from with to in a record. */
static char *
edit(const char *s, const char *from, const char *to)
{
	const char *p = strstr(s, from);
	char *out = NULL;

	assert_non_null(p);
	assert_true(asprintf(&out, "%.*s%s%s", (int)(p - s), s, to, p + strlen(from)) > 0);
	return out;
}

static void
expect_enrol_error(const char *text, const char *field)
{
	struct approvers_enrolment e;
	char detail[APPROVERS_DETAIL_MAX];
	int r;

	detail[0] = '\0';
	r = approvers_parse_enrolment(text, strlen(text), RP_ID, &e, detail, sizeof(detail));
	if (r >= 0 || strstr(detail, field) == NULL) {
		print_error("enrolment %s: r=%d detail='%s' (wanted '%s')\n", text, r, detail, field);
	}
	assert_true(r < 0);
	assert_non_null(strstr(detail, field));
}

static void
test_enrolment(void **state)
{
	struct fx *f = *state;
	struct approvers_enrolment e;
	char detail[APPROVERS_DETAIL_MAX], *good, *bad, big[APPROVERS_ENROL_MAX + 64], pk[128];
	char id[1400];
	uint8_t raw[1024];
	size_t i;

	good = record(&f->alice, RP_ID);
	assert_int_equal(approvers_parse_enrolment(good, strlen(good), RP_ID, &e, detail,
	    sizeof(detail)), 0);
	assert_string_equal(e.approver, "alice");
	assert_int_equal(e.cred.alg, WEBAUTHN_ALG_ES256);
	assert_int_equal(e.cred.pk_len, 65);
	assert_int_equal(e.cred.id_len, 16);
	/* No relying party configured: never accepted. */
	assert_true(approvers_parse_enrolment(good, strlen(good), NULL, &e, detail,
	    sizeof(detail)) < 0);

	expect_enrol_error("", "strict JSON");
	expect_enrol_error("[]", "object");
	expect_enrol_error("{\"v\":1,\"v\":1}", "strict JSON");
	bad = edit(good, "\"v\":1", "\"v\":2");
	expect_enrol_error(bad, "'v'");
	free(bad);
	bad = edit(good, "\"v\":1,", "");
	expect_enrol_error(bad, "'v'");
	free(bad);
	bad = edit(good, "\"v\":1", "\"v\":1,\"extra\":true");
	expect_enrol_error(bad, "extra");
	free(bad);
	bad = edit(good, "\"alice\"", "\"-alice\"");
	expect_enrol_error(bad, "approver");
	free(bad);
	bad = edit(good, "\"alice\"", "7");
	expect_enrol_error(bad, "approver");
	free(bad);
	bad = edit(good, "\"ES256\"", "\"RS256\"");
	expect_enrol_error(bad, "alg");
	free(bad);
	bad = edit(good, "\"ES256\"", "\"EdDSA\"");   /* a 65-byte key for EdDSA */
	expect_enrol_error(bad, "public_key");
	free(bad);
	bad = edit(good, "\"rp_id\":\"localhost\"", "\"rp_id\":\"evil.example\"");
	expect_enrol_error(bad, "rp_id");
	free(bad);
	bad = edit(good, "\"sign_count\":0", "\"sign_count\":-1");
	expect_enrol_error(bad, "sign_count");
	free(bad);
	bad = edit(good, "\"sign_count\":0", "\"sign_count\":4294967296");
	expect_enrol_error(bad, "sign_count");
	free(bad);
	/* Padding, the standard alphabet, an empty id. */
	assert_int_equal(b64url_encode(f->alice.id, 16, id, sizeof(id)), 0);
	{
		char padded[1500];

		(void)snprintf(padded, sizeof(padded), "\"%s==\"", id);
		(void)snprintf(big, sizeof(big), "\"%s\"", id);
		bad = edit(good, big, padded);
		expect_enrol_error(bad, "credential_id");
		free(bad);
		bad = edit(good, big, "\"\"");
		expect_enrol_error(bad, "credential_id");
		free(bad);
		bad = edit(good, big, "\"ab+/\"");
		expect_enrol_error(bad, "credential_id");
		free(bad);
	}
	/* A credential id over 1023 bytes. */
	memset(raw, 0x5a, sizeof(raw));
	assert_int_equal(b64url_encode(raw, 1024, id, sizeof(id)), 0);
	(void)snprintf(big, sizeof(big), "{\"v\":1,\"approver\":\"a\",\"credential_id\":\"%s\","
	    "\"alg\":\"EdDSA\",\"public_key\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
	    "\"rp_id\":\"localhost\",\"sign_count\":0}", id);
	expect_enrol_error(big, "credential_id");
	/* Not a point on P-256 (x and y of a valid length, off the curve). */
	memset(raw, 0x01, 65);
	raw[0] = 0x04;
	assert_int_equal(b64url_encode(raw, 65, pk, sizeof(pk)), 0);
	{
		char want[160], got[200];

		assert_int_equal(b64url_encode(f->alice.pk, 65, want, sizeof(want)), 0);
		(void)snprintf(got, sizeof(got), "\"%s\"", want);
		(void)snprintf(want, sizeof(want), "\"%s\"", pk);
		bad = edit(good, got, want);
		expect_enrol_error(bad, "public_key");
		free(bad);
		/* A compressed point prefix. */
		raw[0] = 0x02;
		assert_int_equal(b64url_encode(raw, 65, pk, sizeof(pk)), 0);
		(void)snprintf(want, sizeof(want), "\"%s\"", pk);
		bad = edit(good, got, want);
		expect_enrol_error(bad, "public_key");
		free(bad);
	}
	/* Over the size cap. */
	memset(big, ' ', sizeof(big));
	big[0] = '{';
	for (i = 1; i < APPROVERS_ENROL_MAX + 10; i++) {
		big[i] = ' ';
	}
	big[APPROVERS_ENROL_MAX + 10] = '}';
	big[APPROVERS_ENROL_MAX + 11] = '\0';
	expect_enrol_error(big, "larger");
	free(good);
}

/* --- approvals arrays ------------------------------------------------------- */

static void
test_parse_approvals(void **state)
{
	static const char *const bad[] = {
		"{}", "[]", "[1]", "[{}]",
		"[{\"approver\":\"a\",\"credential_id\":\"AA\",\"client_data_json\":\"AA\","
		    "\"authenticator_data\":\"AA\",\"signature\":\"AA\"}]",    /* authData < 37 */
		"[{\"approver\":\"a\",\"credential_id\":\"AA\",\"client_data_json\":\"AA\","
		    "\"signature\":\"AA\"}]",
		"[{\"approver\":\"a\",\"credential_id\":\"AA==\",\"client_data_json\":\"AA\","
		    "\"authenticator_data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"signature\":\"AA\"}]",
		"[{\"approver\":\"a\",\"credential_id\":\"AA\",\"client_data_json\":\"AA\","
		    "\"authenticator_data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"signature\":\"AA\",\"reason\":\"x\"}]",
		"[{\"approver\":\"\",\"credential_id\":\"AA\",\"client_data_json\":\"AA\","
		    "\"authenticator_data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"signature\":\"AA\"}]",
		"[{\"approver\":\"a\",\"credential_id\":\"AA\",\"client_data_json\":\"AA\","
		    "\"authenticator_data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		    "\"signature\":\"\"}]",
	};
	static const char one[] =
		"{\"approver\":\"a\",\"credential_id\":\"AA\",\"client_data_json\":\"AA\","
		"\"authenticator_data\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\","
		"\"signature\":\"AA\"}";
	struct approvers_approval *v = NULL;
	char detail[APPROVERS_DETAIL_MAX], text[8192];
	json_t *j = NULL;
	size_t i, n = 0;
	int len;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(cjson_parse(bad[i], strlen(bad[i]), 65536, &j), 0);
		detail[0] = '\0';
		if (approvers_parse_approvals(j, &v, &n, detail, sizeof(detail)) >= 0) {
			print_error("accepted approvals %zu: %s\n", i, bad[i]);
		}
		assert_null(v);
		assert_true(detail[0] != '\0');
		json_decref(j);
		j = NULL;
	}
	/* The detail names the item. */
	(void)snprintf(text, sizeof(text), "[%s,%.*s]", one, (int)(strlen(bad[7]) - 2), bad[7] + 1);
	assert_int_equal(cjson_parse(text, strlen(text), 65536, &j), 0);
	assert_true(approvers_parse_approvals(j, &v, &n, detail, sizeof(detail)) < 0);
	assert_non_null(strstr(detail, "approvals[1]"));
	json_decref(j);
	j = NULL;
	/* 16 items are fine, 17 are not. */
	len = snprintf(text, sizeof(text), "[%s", one);
	for (i = 1; i < APPROVERS_MAX_APPROVALS; i++) {
		len += snprintf(text + len, sizeof(text) - (size_t)len, ",%s", one);
	}
	(void)snprintf(text + len, sizeof(text) - (size_t)len, "]");
	assert_int_equal(cjson_parse(text, strlen(text), 65536, &j), 0);
	assert_int_equal(approvers_parse_approvals(j, &v, &n, detail, sizeof(detail)), 0);
	assert_int_equal(n, APPROVERS_MAX_APPROVALS);
	assert_int_equal(v[3].auth_data_len, 37);
	assert_int_equal(v[3].cred_id_len, 1);
	free(v);
	v = NULL;
	json_decref(j);
	(void)snprintf(text + len, sizeof(text) - (size_t)len, ",%s]", one);
	assert_int_equal(cjson_parse(text, strlen(text), 65536, &j), 0);
	assert_int_equal(approvers_parse_approvals(j, &v, &n, detail, sizeof(detail)), -E2BIG);
	json_decref(j);
}

/* --- the decision ----------------------------------------------------------- */

static void
test_decide_one(void **state)
{
	struct fx *f = *state;
	struct approvers_approval ap[1];
	struct approvers_result res;
	char detail[APPROVERS_DETAIL_MAX];

	authn_assert(&f->alice, "alice", f->challenge, 0, NULL, &ap[0]);
	assert_int_equal(decide(f, ap, 1, 1, &res, detail, sizeof(detail)), 0);
	assert_int_equal(res.n_people, 1);
	assert_string_equal(res.people[0], "alice");
	assert_int_equal(res.n_counters, 1);
	assert_int_equal(res.counters[0].sign_count, 0);
	/* EdDSA, with a counter. */
	authn_assert(&f->bob, "bob", f->challenge, 9, NULL, &ap[0]);
	assert_int_equal(decide(f, ap, 1, 1, &res, detail, sizeof(detail)), 0);
	assert_string_equal(res.people[0], "bob");
	assert_int_equal(res.counters[0].sign_count, 9);
	/* Quorum 2 with one person. */
	assert_int_equal(decide(f, ap, 1, 2, &res, detail, sizeof(detail)), -EACCES);
	assert_string_equal(detail, "1 of 2 distinct approvers");
	/* No request id: no digest, nothing to check against. */
	f->req.request[0] = '\0';
	assert_int_equal(decide(f, ap, 1, 1, &res, detail, sizeof(detail)), -EINVAL);
}

/* Each refusal must be -EPERM with a detail naming the index and person. */
static void
expect_refused(struct fx *f, const struct approvers_approval *ap, size_t n, size_t idx,
    const char *who, const char *why)
{
	struct approvers_result res;
	char detail[APPROVERS_DETAIL_MAX], want[64];
	int r;

	(void)snprintf(want, sizeof(want), "approvals[%zu] (%s)", idx, who);
	r = decide(f, ap, n, 1, &res, detail, sizeof(detail));
	if (r != -EPERM || strstr(detail, want) == NULL || strstr(detail, why) == NULL) {
		print_error("r=%d detail='%s' (wanted '%s' and '%s')\n", r, detail, want, why);
	}
	assert_int_equal(r, -EPERM);
	assert_non_null(strstr(detail, want));
	assert_non_null(strstr(detail, why));
}

static void
test_decide_refused(void **state)
{
	struct fx *f = *state;
	struct approvers_approval ap[2];
	struct approvers_enrolment e;
	struct approval_request other;
	struct approvers_result res;
	struct twist tw;
	struct authn eve;
	uint8_t other_ch[32];

	/* Not enrolled. */
	authn_new(&eve, "eve", WEBAUTHN_ALG_ES256, 0xee);
	authn_assert(&eve, "eve", f->challenge, 1, NULL, &ap[0]);
	expect_refused(f, ap, 1, 0, "eve", "not enrolled");
	/* Enrolled, but to bob; the assertion names alice. */
	authn_assert(&f->bob, "alice", f->challenge, 1, NULL, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "another person");
	/* Signed over another request's digest. */
	request_fill(&other, "req-2");
	assert_int_equal(approval_digest(&other, other_ch), 0);
	authn_assert(&f->alice, "alice", other_ch, 1, NULL, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "another request");
	/* The same request with another ttl is another request too. */
	other = f->req;
	other.ttl = 301;
	assert_int_equal(approval_digest(&other, other_ch), 0);
	authn_assert(&f->alice, "alice", other_ch, 1, NULL, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "another request");
	/* Wrong origin, rp id, type, flags, signature. */
	memset(&tw, 0, sizeof(tw));
	tw.origin = "https://evil.example";
	authn_assert(&f->alice, "alice", f->challenge, 1, &tw, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "origin");
	memset(&tw, 0, sizeof(tw));
	tw.rp_id = "evil.example";
	authn_assert(&f->alice, "alice", f->challenge, 1, &tw, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "relying party");
	memset(&tw, 0, sizeof(tw));
	tw.type = "webauthn.create";
	authn_assert(&f->alice, "alice", f->challenge, 1, &tw, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "type");
	memset(&tw, 0, sizeof(tw));
	tw.flags = 0x01;    /* UP only */
	authn_assert(&f->alice, "alice", f->challenge, 1, &tw, &ap[0]);
	expect_refused(f, ap, 1, 0, "alice", "UV");
	memset(&tw, 0, sizeof(tw));
	tw.bad_sig = 1;
	authn_assert(&f->bob, "bob", f->challenge, 1, &tw, &ap[0]);
	expect_refused(f, ap, 1, 0, "bob", "signature");
	/* A counter that went backwards. */
	enrolment_of(&eve, &e);
	e.cred.sign_count = 5;
	assert_int_equal(approvers_add(f->s, &e, 1), 0);
	authn_assert(&eve, "eve", f->challenge, 3, NULL, &ap[0]);
	expect_refused(f, ap, 1, 0, "eve", "counter");
	authn_assert(&eve, "eve", f->challenge, 5, NULL, &ap[0]);
	expect_refused(f, ap, 1, 0, "eve", "counter");
	authn_assert(&eve, "eve", f->challenge, 6, NULL, &ap[0]);
	assert_int_equal(decide(f, ap, 1, 1, &res, (char[APPROVERS_DETAIL_MAX]){ 0 },
	    APPROVERS_DETAIL_MAX), 0);
	/* One good and one bad: the whole decision is refused, naming the bad
	 * one, even though the good one alone meets the quorum. */
	authn_assert(&f->alice, "alice", f->challenge, 1, NULL, &ap[0]);
	memset(&tw, 0, sizeof(tw));
	tw.bad_sig = 1;
	authn_assert(&f->bob, "bob", f->challenge, 1, &tw, &ap[1]);
	expect_refused(f, ap, 2, 1, "bob", "signature");
	authn_free(&eve);
}

static void
test_decide_people(void **state)
{
	struct fx *f = *state;
	struct approvers_approval ap[3];
	struct approvers_result res;
	char detail[APPROVERS_DETAIL_MAX];

	/* Two credentials of one person count once. */
	authn_assert(&f->alice, "alice", f->challenge, 1, NULL, &ap[0]);
	authn_assert(&f->alice2, "alice", f->challenge, 1, NULL, &ap[1]);
	assert_int_equal(decide(f, ap, 2, 2, &res, detail, sizeof(detail)), -EACCES);
	assert_string_equal(detail, "1 of 2 distinct approvers");
	/* The same credential twice counts once; one counter, the highest. */
	authn_assert(&f->alice, "alice", f->challenge, 3, NULL, &ap[1]);
	assert_int_equal(decide(f, ap, 2, 2, &res, detail, sizeof(detail)), -EACCES);
	assert_int_equal(decide(f, ap, 2, 1, &res, detail, sizeof(detail)), 0);
	assert_int_equal(res.n_people, 1);
	assert_int_equal(res.n_counters, 1);
	assert_int_equal(res.counters[0].sign_count, 3);
	/* Two people: the quorum of 2 is met, the names come out sorted. */
	authn_assert(&f->bob, "bob", f->challenge, 1, NULL, &ap[0]);
	authn_assert(&f->alice, "alice", f->challenge, 1, NULL, &ap[1]);
	authn_assert(&f->alice2, "alice", f->challenge, 1, NULL, &ap[2]);
	assert_int_equal(decide(f, ap, 3, 2, &res, detail, sizeof(detail)), 0);
	assert_int_equal(res.n_people, 2);
	assert_string_equal(res.people[0], "alice");
	assert_string_equal(res.people[1], "bob");
	assert_int_equal(res.n_counters, 3);
	assert_int_equal(decide(f, ap, 3, 3, &res, detail, sizeof(detail)), -EACCES);
	assert_string_equal(detail, "2 of 3 distinct approvers");
	/* The decision changes nothing; applying it stores the counters. */
	assert_int_equal(decide(f, ap, 3, 2, &res, detail, sizeof(detail)), 0);
	assert_int_equal(approvers_apply(f->s, &res), 0);
	assert_int_equal(decide(f, ap, 3, 2, &res, detail, sizeof(detail)), -EPERM);
	assert_non_null(strstr(detail, "approvals[0] (bob)"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_persist, setup, teardown),
		cmocka_unit_test(test_store_adversarial),
		cmocka_unit_test_setup_teardown(test_enrolment, setup, teardown),
		cmocka_unit_test(test_parse_approvals),
		cmocka_unit_test_setup_teardown(test_decide_one, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decide_people, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
