#include "tlscert.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "fsutil.h"

/* What browsers accept for a certificate's lifetime. */
#define TLSCERT_DAYS_MAX 825
#define TLSCERT_HOST_MAX 253

static bool
host_ok(const char *h)
{
	size_t i, n = strlen(h);

	if (n == 0 || n > TLSCERT_HOST_MAX) {
		return false;
	}
	for (i = 0; i < n; i++) {
		char c = h[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == ':')) {
			return false;
		}
	}
	return true;
}

static bool
is_ip(const char *h)
{
	unsigned char buf[16];

	return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

static int
add_ext(X509 *crt, int nid, const char *value)
{
	X509V3_CTX ctx;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&ctx);
	X509V3_set_ctx(&ctx, crt, crt, NULL, NULL, 0);
	ext = X509V3_EXT_conf_nid(NULL, &ctx, nid, value);
	if (ext == NULL) {
		return -EINVAL;
	}
	ok = X509_add_ext(crt, ext, -1);
	X509_EXTENSION_free(ext);
	return ok == 1 ? 0 : -EIO;
}

static int
bio_bytes(BIO *b, const char **ret, size_t *ret_len)
{
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);

	if (n <= 0 || p == NULL) {
		return -EIO;
	}
	*ret = p;
	*ret_len = (size_t)n;
	return 0;
}

int
tlscert_make_self_signed(const char *cert_path, const char *key_path, const char *host,
    int days)
{
	EVP_PKEY *key = NULL;
	X509 *crt = NULL;
	X509_NAME *name;
	BIGNUM *serial = NULL;
	BIO *kb = NULL, *cb = NULL;
	const char *data;
	size_t len;
	char san[2 * TLSCERT_HOST_MAX + 64];
	int r, n;

	if (cert_path == NULL || key_path == NULL || host == NULL || !host_ok(host) ||
	    days < 1 || days > TLSCERT_DAYS_MAX) {
		return -EINVAL;
	}
	if (is_ip(host)) {
		n = snprintf(san, sizeof(san), "IP:%s", host);
	} else if (strcmp(host, "localhost") == 0) {
		n = snprintf(san, sizeof(san), "DNS:localhost,IP:127.0.0.1,IP:::1");
	} else {
		n = snprintf(san, sizeof(san), "DNS:%s", host);
	}
	if (n < 0 || (size_t)n >= sizeof(san)) {
		return -EINVAL;
	}
	key = EVP_EC_gen("P-256");
	crt = X509_new();
	serial = BN_new();
	if (key == NULL || crt == NULL || serial == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* A random positive 127-bit serial. */
	if (BN_rand(serial, 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
	    BN_to_ASN1_INTEGER(serial, X509_get_serialNumber(crt)) == NULL ||
	    X509_set_version(crt, X509_VERSION_3) != 1 ||
	    X509_gmtime_adj(X509_getm_notBefore(crt), -300) == NULL ||
	    X509_time_adj_ex(X509_getm_notAfter(crt), days, 0, NULL) == NULL ||
	    X509_set_pubkey(crt, key) != 1) {
		r = -EIO;
		goto out;
	}
	name = X509_get_subject_name(crt);
	if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *)host, -1,
	    -1, 0) != 1 || X509_set_issuer_name(crt, name) != 1) {
		r = -EIO;
		goto out;
	}
	r = add_ext(crt, NID_subject_alt_name, san);
	if (r == 0) {
		r = add_ext(crt, NID_basic_constraints, "critical,CA:FALSE");
	}
	if (r == 0) {
		r = add_ext(crt, NID_key_usage, "critical,digitalSignature");
	}
	if (r == 0) {
		r = add_ext(crt, NID_ext_key_usage, "serverAuth");
	}
	if (r == 0) {
		r = add_ext(crt, NID_subject_key_identifier, "hash");
	}
	if (r != 0) {
		goto out;
	}
	if (X509_sign(crt, key, EVP_sha256()) <= 0) {
		r = -EIO;
		goto out;
	}
	kb = BIO_new(BIO_s_secmem());
	cb = BIO_new(BIO_s_mem());
	if (kb == NULL || cb == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (PEM_write_bio_PrivateKey(kb, key, NULL, NULL, 0, NULL, NULL) != 1 ||
	    PEM_write_bio_X509(cb, crt) != 1) {
		r = -EIO;
		goto out;
	}
	/* The key first: a certificate without its key is of no use. */
	r = bio_bytes(kb, &data, &len);
	if (r == 0) {
		r = fs_write_file_atomic(key_path, data, len, 0600);
	}
	if (r == 0) {
		r = bio_bytes(cb, &data, &len);
	}
	if (r == 0) {
		r = fs_write_file_atomic(cert_path, data, len, 0644);
	}
out:
	BIO_free(kb);          /* a secmem BIO clears what it held */
	BIO_free(cb);
	BN_free(serial);
	X509_free(crt);
	EVP_PKEY_free(key);
	return r;
}
