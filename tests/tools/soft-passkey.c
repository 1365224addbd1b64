/* soft-passkey: a software WebAuthn authenticator for the API-level tests
 * of attestd (docs/approvals.md). It keeps its private key in a file and
 * answers as a browser and a passkey would: an enrolment record, and
 * assertions over a given challenge. Never a real credential.
 *
 *   soft-passkey new --approver NAME --rp-id RP [--alg ES256|EdDSA] --out KEYFILE
 *   soft-passkey enrolment KEYFILE
 *   soft-passkey assert KEYFILE --challenge HEX64 --origin ORIGIN [--rp-id RP]
 *       [--counter N] [--no-up] [--no-uv] [--type T]
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include "b64url.h"
#include "fsutil.h"
#include "parse.h"
#include "webauthn.h"

#define KEYFILE_MAX   16384
#define CRED_ID_LEN   16

struct key {
	char approver[128];
	char rp_id[WEBAUTHN_RP_ID_MAX + 1];
	int alg;
	uint8_t id[WEBAUTHN_CRED_ID_MAX];
	size_t id_len;
	uint64_t counter;
	EVP_PKEY *pkey;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: soft-passkey new --approver NAME --rp-id RP [--alg ES256|EdDSA] --out KEYFILE\n"
	    "       soft-passkey enrolment KEYFILE\n"
	    "       soft-passkey assert KEYFILE --challenge HEX64 --origin ORIGIN [--rp-id RP]\n"
	    "           [--counter N] [--no-up] [--no-uv] [--type T]\n");
}

static int
b64(const uint8_t *in, size_t n, char **ret)
{
	size_t cap = b64url_encoded_len(n) + 1;
	char *s = malloc(cap);

	if (s == NULL) {
		return -ENOMEM;
	}
	if (b64url_encode(in, n, s, cap) < 0) {
		free(s);
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

static int
public_key(EVP_PKEY *pkey, int alg, uint8_t out[WEBAUTHN_PK_MAX], size_t *ret_len)
{
	size_t len = WEBAUTHN_PK_MAX;

	if (alg == WEBAUTHN_ALG_ES256) {
		if (EVP_PKEY_get_octet_string_param(pkey, OSSL_PKEY_PARAM_PUB_KEY, out,
		    WEBAUTHN_PK_MAX, &len) != 1 || len != 65 || out[0] != 0x04) {
			return -EIO;
		}
	} else {
		len = 32;
		if (EVP_PKEY_get_raw_public_key(pkey, out, &len) != 1 || len != 32) {
			return -EIO;
		}
	}
	*ret_len = len;
	return 0;
}

static int
print_enrolment(const struct key *k)
{
	uint8_t pk[WEBAUTHN_PK_MAX];
	size_t pk_len = 0;
	char *id = NULL, *pkb = NULL, *text = NULL;
	json_t *j = NULL;
	int r;

	if ((r = public_key(k->pkey, k->alg, pk, &pk_len)) < 0 ||
	    (r = b64(k->id, k->id_len, &id)) < 0 || (r = b64(pk, pk_len, &pkb)) < 0) {
		goto out;
	}
	j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:i}", "v", 1, "approver", k->approver,
	    "credential_id", id, "alg", webauthn_alg_name(k->alg), "public_key", pkb,
	    "rp_id", k->rp_id, "sign_count", 0);
	if (j == NULL || (text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	printf("%s\n", text);
	r = fflush(stdout) == 0 ? 0 : -EIO;
out:
	free(id);
	free(pkb);
	free(text);
	json_decref(j);
	return r;
}

/* The key file: JSON with the private key in PEM. */
static int
key_save(const struct key *k, const char *path, bool create)
{
	BIO *bio = NULL;
	char *pem = NULL, *id = NULL, *text = NULL;
	long pem_len;
	json_t *j = NULL;
	int r, fd = -1;

	bio = BIO_new(BIO_s_mem());
	if (bio == NULL || PEM_write_bio_PrivateKey(bio, k->pkey, NULL, NULL, 0, NULL, NULL) != 1) {
		r = -EIO;
		goto out;
	}
	pem_len = BIO_get_mem_data(bio, &pem);
	if (pem_len <= 0 || (r = b64(k->id, k->id_len, &id)) < 0) {
		r = -EIO;
		goto out;
	}
	j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:I,s:s%}", "v", 1, "approver", k->approver,
	    "rp_id", k->rp_id, "alg", webauthn_alg_name(k->alg), "credential_id", id,
	    "counter", (json_int_t)k->counter, "private_key_pem", pem, (size_t)pem_len);
	if (j == NULL || (text = json_dumps(j, JSON_INDENT(1) | JSON_PRESERVE_ORDER)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (create) {
		/* Never overwrite a key: a test that reuses a path is a test bug. */
		fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
		if (fd < 0) {
			r = -errno;
			goto out;
		}
		if (write(fd, text, strlen(text)) != (ssize_t)strlen(text) || fsync(fd) < 0) {
			r = -EIO;
			goto out;
		}
	} else if ((r = fs_write_file_atomic(path, text, strlen(text), 0600)) < 0) {
		goto out;
	}
	r = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	if (text != NULL) {
		OPENSSL_cleanse(text, strlen(text));
	}
	free(text);
	free(id);
	json_decref(j);
	BIO_free(bio);
	return r;
}

static int
key_load(const char *path, struct key *k)
{
	char *text = NULL;
	size_t len = 0, n = 0;
	json_t *j = NULL;
	json_error_t jerr;
	const char *approver = NULL, *rp_id = NULL, *alg = NULL, *id = NULL, *pem = NULL;
	json_int_t counter = 0;
	BIO *bio = NULL;
	int r;

	memset(k, 0, sizeof(*k));
	if ((r = fs_read_file(path, KEYFILE_MAX, &text, &len)) < 0) {
		fprintf(stderr, "soft-passkey: %s: %s\n", path, strerror(-r));
		return r;
	}
	j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL || json_unpack(j, "{s:s,s:s,s:s,s:s,s:I,s:s}", "approver", &approver,
	    "rp_id", &rp_id, "alg", &alg, "credential_id", &id, "counter", &counter,
	    "private_key_pem", &pem) != 0 ||
	    strlen(approver) >= sizeof(k->approver) || strlen(rp_id) >= sizeof(k->rp_id) ||
	    webauthn_alg_parse(alg, &k->alg) < 0 || counter < 0 || counter > UINT32_MAX ||
	    b64url_decode(id, strlen(id), k->id, sizeof(k->id), &n) < 0) {
		fprintf(stderr, "soft-passkey: %s: not a key file\n", path);
		r = -EINVAL;
		goto out;
	}
	memcpy(k->approver, approver, strlen(approver) + 1);
	memcpy(k->rp_id, rp_id, strlen(rp_id) + 1);
	k->id_len = n;
	k->counter = (uint64_t)counter;
	bio = BIO_new_mem_buf(pem, -1);
	if (bio == NULL || (k->pkey = PEM_read_bio_PrivateKey(bio, NULL, NULL, NULL)) == NULL) {
		fprintf(stderr, "soft-passkey: %s: the private key does not load\n", path);
		r = -EINVAL;
		goto out;
	}
	r = 0;
out:
	BIO_free(bio);
	json_decref(j);
	if (text != NULL) {
		OPENSSL_cleanse(text, len);
	}
	free(text);
	return r;
}

static int
cmd_new(int argc, char **argv)
{
	const char *approver = NULL, *rp_id = NULL, *alg = "ES256", *out = NULL;
	struct key k;
	int i, r;

	memset(&k, 0, sizeof(k));
	for (i = 0; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--approver") == 0) {
			approver = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--rp-id") == 0) {
			rp_id = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--alg") == 0) {
			alg = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--out") == 0) {
			out = argv[++i];
		} else {
			usage();
			return 2;
		}
	}
	if (approver == NULL || rp_id == NULL || out == NULL ||
	    strlen(approver) >= sizeof(k.approver) || strlen(rp_id) >= sizeof(k.rp_id) ||
	    webauthn_alg_parse(alg, &k.alg) < 0) {
		usage();
		return 2;
	}
	memcpy(k.approver, approver, strlen(approver) + 1);
	memcpy(k.rp_id, rp_id, strlen(rp_id) + 1);
	k.pkey = k.alg == WEBAUTHN_ALG_ES256 ? EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256") :
	    EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	k.id_len = CRED_ID_LEN;
	if (k.pkey == NULL || RAND_bytes(k.id, CRED_ID_LEN) != 1) {
		fprintf(stderr, "soft-passkey: key generation failed\n");
		EVP_PKEY_free(k.pkey);
		return 1;
	}
	r = key_save(&k, out, true);
	if (r < 0) {
		fprintf(stderr, "soft-passkey: %s: %s\n", out, strerror(-r));
	} else {
		r = print_enrolment(&k);
	}
	EVP_PKEY_free(k.pkey);
	return r < 0 ? 1 : 0;
}

static int
cmd_enrolment(int argc, char **argv)
{
	struct key k;
	int r;

	if (argc != 1) {
		usage();
		return 2;
	}
	if (key_load(argv[0], &k) < 0) {
		return 1;
	}
	r = print_enrolment(&k);
	EVP_PKEY_free(k.pkey);
	return r < 0 ? 1 : 0;
}

static int
sign(EVP_PKEY *pkey, int alg, const uint8_t *msg, size_t len, uint8_t *sig, size_t *sig_len)
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	int r = -EIO;

	if (ctx == NULL) {
		return -ENOMEM;
	}
	if (EVP_DigestSignInit(ctx, NULL, alg == WEBAUTHN_ALG_ES256 ? EVP_sha256() : NULL, NULL,
	    pkey) == 1 && EVP_DigestSign(ctx, sig, sig_len, msg, len) == 1) {
		r = 0;
	}
	EVP_MD_CTX_free(ctx);
	return r;
}

static int
cmd_assert(int argc, char **argv)
{
	const char *path, *challenge_hex = NULL, *origin = NULL, *rp_id = NULL;
	const char *type = "webauthn.get";
	struct key k;
	uint8_t challenge[32], ad[37], msg[37 + 32], sig[WEBAUTHN_SIG_MAX];
	size_t sig_len = sizeof(sig);
	uint64_t counter = 0;
	bool have_counter = false, up = true, uv = true;
	char *cb = NULL, *cdj = NULL, *cdjb = NULL, *adb = NULL, *sigb = NULL, *idb = NULL;
	char *text = NULL;
	json_t *j = NULL;
	int i, r, rc = 1;

	if (argc < 1) {
		usage();
		return 2;
	}
	path = argv[0];
	for (i = 1; i < argc; i++) {
		if (i + 1 < argc && strcmp(argv[i], "--challenge") == 0) {
			challenge_hex = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--origin") == 0) {
			origin = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--rp-id") == 0) {
			rp_id = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--type") == 0) {
			type = argv[++i];
		} else if (i + 1 < argc && strcmp(argv[i], "--counter") == 0) {
			if (parse_u64(argv[++i], 0, UINT32_MAX, &counter) < 0) {
				usage();
				return 2;
			}
			have_counter = true;
		} else if (strcmp(argv[i], "--no-up") == 0) {
			up = false;
		} else if (strcmp(argv[i], "--no-uv") == 0) {
			uv = false;
		} else {
			usage();
			return 2;
		}
	}
	if (challenge_hex == NULL || origin == NULL ||
	    parse_hex(challenge_hex, challenge, sizeof(challenge)) < 0) {
		usage();
		return 2;
	}
	if (key_load(path, &k) < 0) {
		return 1;
	}
	if (rp_id == NULL) {
		rp_id = k.rp_id;
	}
	if (!have_counter) {
		if (k.counter >= UINT32_MAX) {
			fprintf(stderr, "soft-passkey: the counter is exhausted\n");
			goto out;
		}
		counter = k.counter + 1;
	}
	k.counter = counter;

	if ((r = b64(challenge, sizeof(challenge), &cb)) < 0) {
		goto out;
	}
	/* Member order as browsers write it. */
	j = json_pack("{s:s,s:s,s:s,s:b}", "type", type, "challenge", cb, "origin", origin,
	    "crossOrigin", 0);
	if (j == NULL || (cdj = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		goto out;
	}
	json_decref(j);
	j = NULL;
	SHA256((const unsigned char *)rp_id, strlen(rp_id), ad);
	ad[32] = (uint8_t)((up ? 0x01 : 0) | (uv ? 0x04 : 0));
	ad[33] = (uint8_t)(counter >> 24);
	ad[34] = (uint8_t)(counter >> 16);
	ad[35] = (uint8_t)(counter >> 8);
	ad[36] = (uint8_t)counter;
	memcpy(msg, ad, sizeof(ad));
	SHA256((const unsigned char *)cdj, strlen(cdj), msg + sizeof(ad));
	if (sign(k.pkey, k.alg, msg, sizeof(msg), sig, &sig_len) < 0) {
		fprintf(stderr, "soft-passkey: signing failed\n");
		goto out;
	}
	/* Store the counter before the assertion leaves, as an authenticator does. */
	if ((r = key_save(&k, path, false)) < 0) {
		fprintf(stderr, "soft-passkey: %s: %s\n", path, strerror(-r));
		goto out;
	}
	if (b64((const uint8_t *)cdj, strlen(cdj), &cdjb) < 0 || b64(ad, sizeof(ad), &adb) < 0 ||
	    b64(sig, sig_len, &sigb) < 0 || b64(k.id, k.id_len, &idb) < 0) {
		goto out;
	}
	j = json_pack("{s:s,s:s,s:s,s:s,s:s}", "approver", k.approver, "credential_id", idb,
	    "client_data_json", cdjb, "authenticator_data", adb, "signature", sigb);
	if (j == NULL || (text = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER)) == NULL) {
		goto out;
	}
	printf("%s\n", text);
	rc = fflush(stdout) == 0 ? 0 : 1;
out:
	free(cb);
	free(cdj);
	free(cdjb);
	free(adb);
	free(sigb);
	free(idb);
	free(text);
	json_decref(j);
	EVP_PKEY_free(k.pkey);
	return rc;
}

int
main(int argc, char **argv)
{
	if (argc < 2) {
		usage();
		return 2;
	}
	if (strcmp(argv[1], "new") == 0) {
		return cmd_new(argc - 2, argv + 2);
	}
	if (strcmp(argv[1], "enrolment") == 0) {
		return cmd_enrolment(argc - 2, argv + 2);
	}
	if (strcmp(argv[1], "assert") == 0) {
		return cmd_assert(argc - 2, argv + 2);
	}
	usage();
	return 2;
}
