#include "keystore.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cjson.h"
#include "fsutil.h"
#include "parse.h"
#include "text.h"

#define KEYS_JSON      "keys.json"
#define KEYS_JSON_MAX  (64 * 1024)
#define NAME_LEN       34          /* sha256 names: alg id + digest */
#define BLOB_NAME_MAX  32          /* "root-4294967295.priv" and the NUL */

static int
blob_file_name(char *buf, uint32_t gen, const char *ext)
{
	int n;

	if (gen == 0) {
		n = snprintf(buf, BLOB_NAME_MAX, "ak.%s", ext);
	} else {
		n = snprintf(buf, BLOB_NAME_MAX, "root-%u.%s", (unsigned)gen, ext);
	}
	return n < 0 || n >= BLOB_NAME_MAX ? -ENAMETOOLONG : 0;
}

/* ---- reading --------------------------------------------------------- */

/* Read a regular file in dfd, not a symlink, writable by its owner only.
 * O_NONBLOCK: a FIFO put in the file's place must not hang the reader in
 * open(2); it is refused below like any other non-regular file (and the
 * flag does nothing to reads of a regular file). */
static int
read_at(int dfd, const char *name, size_t cap, uint8_t *buf, size_t *ret_len)
{
	struct stat st;
	size_t len = 0;
	int fd = -1, r;

	fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	if (fstat(fd, &st) != 0) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EINVAL;
		goto out;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		r = -EPERM;
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		r = -EFBIG;
		goto out;
	}
	for (;;) {
		ssize_t n = read(fd, buf + len, cap - len);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			r = -errno;
			goto out;
		}
		if (n == 0) {
			break;
		}
		len += (size_t)n;
		if (len == cap) {
			/* Full: one more byte means the file grew past the cap. */
			uint8_t extra;

			n = read(fd, &extra, 1);
			if (n != 0) {
				r = n < 0 ? -errno : -EFBIG;
				goto out;
			}
			break;
		}
	}
	*ret_len = len;
	r = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	return r;
}

/* What read_at's refusal means, for the message. */
static const char *
read_error(int r)
{
	switch (r) {
	case -ELOOP:
		return "a symlink, not a regular file";
	case -EINVAL:
		return "not a regular file";
	case -EPERM:
		return "writable by group or others";
	default:
		return strerror(-r);
	}
}

static int
parse_name(const char *s, uint8_t *ret, size_t *ret_len)
{
	uint8_t name[NAME_LEN];

	/* Only sha256 names (0x000b || 32 bytes) are ever produced here. */
	if (s == NULL || parse_hex(s, name, sizeof(name)) != 0 || name[0] != 0x00 ||
	    name[1] != 0x0b) {
		return -EINVAL;
	}
	memcpy(ret, name, sizeof(name));
	*ret_len = sizeof(name);
	return 0;
}

static int
get_int(const json_t *obj, const char *key, int64_t min, int64_t max, int64_t *ret)
{
	json_t *v = json_object_get(obj, key);
	json_int_t i;

	if (!json_is_integer(v)) {
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < min || i > max) {
		return -ERANGE;
	}
	*ret = (int64_t)i;
	return 0;
}

/* Read the pub/priv files an entry names (which must be exactly the fixed
 * names for gen), and check the public part hashes to the recorded name. */
static int
load_blob(int dfd, const json_t *obj, const char *what, uint32_t gen,
    const uint8_t *name, size_t name_len, struct tpm_blob *ret, char *err, size_t errn)
{
	char pub_name[BLOB_NAME_MAX], priv_name[BLOB_NAME_MAX];
	uint8_t computed[TPM_NAME_MAX];
	size_t computed_len = 0;
	const char *pub, *priv;
	struct tpm_blob b;
	int r;

	if (blob_file_name(pub_name, gen, "pub") != 0 ||
	    blob_file_name(priv_name, gen, "priv") != 0) {
		return -ENAMETOOLONG;
	}
	pub = cjson_get_str(obj, "pub");
	priv = cjson_get_str(obj, "priv");
	if (pub == NULL || strcmp(pub, pub_name) != 0) {
		text_printf(err, errn, "%s: %s.pub must be \"%s\"", KEYS_JSON, what, pub_name);
		return -EINVAL;
	}
	if (priv == NULL || strcmp(priv, priv_name) != 0) {
		text_printf(err, errn, "%s: %s.priv must be \"%s\"", KEYS_JSON, what, priv_name);
		return -EINVAL;
	}
	memset(&b, 0, sizeof(b));
	r = read_at(dfd, pub_name, TPM_BLOB_MAX, b.pub, &b.pub_len);
	if (r != 0) {
		text_printf(err, errn, "%s: %s", pub_name, read_error(r));
		return r;
	}
	r = read_at(dfd, priv_name, TPM_BLOB_MAX, b.priv, &b.priv_len);
	if (r != 0) {
		text_printf(err, errn, "%s: %s", priv_name, read_error(r));
		return r;
	}
	r = tpm_blob_name(&b, computed, &computed_len);
	if (r != 0) {
		text_printf(err, errn, "%s: not a marshalled TPM2B_PUBLIC", pub_name);
		return -EBADMSG;
	}
	if (computed_len != name_len || CRYPTO_memcmp(computed, name, name_len) != 0) {
		text_printf(err, errn, "%s: its name does not match %s.name in %s", pub_name,
		    what, KEYS_JSON);
		return -EBADMSG;
	}
	/* The private part is checked by the TPM when it is loaded; here only
	 * its framing. */
	if (b.priv_len < 2 || (size_t)((b.priv[0] << 8) | b.priv[1]) + 2 != b.priv_len) {
		text_printf(err, errn, "%s: not a marshalled TPM2B_PRIVATE", priv_name);
		return -EBADMSG;
	}
	*ret = b;
	return 0;
}

static int
load_gen(int dfd, const json_t *g, size_t idx, struct keystore_gen *ret, char *err, size_t errn)
{
	static const char *const keys[] = {
		"gen", "created", "retired", "name", "pub", "priv", NULL
	};
	char what[32];
	const char *bad = NULL;
	int64_t gen, created, retired;
	int r;

	(void)snprintf(what, sizeof(what), "generations[%zu]", idx);
	if (cjson_only_keys(g, keys, &bad) != 0) {
		if (bad != NULL) {
			text_printf(err, errn, "%s: %s: unknown field \"%s\"", KEYS_JSON, what, bad);
		} else {
			text_printf(err, errn, "%s: %s: not an object", KEYS_JSON, what);
		}
		return -EINVAL;
	}
	if (get_int(g, "gen", 1, UINT32_MAX, &gen) != 0 ||
	    get_int(g, "created", 0, INT64_MAX, &created) != 0 ||
	    get_int(g, "retired", 0, INT64_MAX, &retired) != 0) {
		text_printf(err, errn, "%s: %s: gen, created and retired must be integers in range",
		    KEYS_JSON, what);
		return -EINVAL;
	}
	if (parse_name(cjson_get_str(g, "name"), ret->name, &ret->name_len) != 0) {
		text_printf(err, errn, "%s: %s.name: not a sha256 TPM name in hex", KEYS_JSON, what);
		return -EINVAL;
	}
	ret->gen = (uint32_t)gen;
	ret->created = created;
	ret->retired = retired;
	r = load_blob(dfd, g, what, ret->gen, ret->name, ret->name_len, &ret->blob, err, errn);
	return r;
}

static int
load_json(int dfd, const json_t *j, struct keystore *ks, char *err, size_t errn)
{
	static const char *const top_keys[] = {
		"version", "pcrs", "policy_digest", "srk", "ak", "generations", NULL
	};
	static const char *const srk_keys[] = { "handle", "name", NULL };
	static const char *const ak_keys[] = { "name", "pub", "priv", NULL };
	char handle[16];
	const char *bad = NULL;
	const json_t *srk, *ak, *gens;
	uint8_t policy[32];
	int64_t version;
	size_t i, n;
	int r;

	if (cjson_only_keys(j, top_keys, &bad) != 0) {
		if (bad != NULL) {
			text_printf(err, errn, "%s: unknown field \"%s\"", KEYS_JSON, bad);
		} else {
			text_printf(err, errn, "%s: not a JSON object", KEYS_JSON);
		}
		return -EINVAL;
	}
	if (get_int(j, "version", 1, 1, &version) != 0) {
		text_printf(err, errn, "%s: version must be 1", KEYS_JSON);
		return -EINVAL;
	}
	if (tpm_pcr_sel_parse(cjson_get_str(j, "pcrs"), &ks->pcrs) != 0) {
		text_printf(err, errn, "%s: pcrs: not a PCR selection like \"sha256:0,2,4,7\"",
		    KEYS_JSON);
		return -EINVAL;
	}
	if (parse_hex(cjson_get_str(j, "policy_digest"), policy, 32) != 0) {
		text_printf(err, errn, "%s: policy_digest: not 64 lower-case hex digits", KEYS_JSON);
		return -EINVAL;
	}
	memcpy(ks->policy, policy, 32);

	srk = json_object_get(j, "srk");
	(void)snprintf(handle, sizeof(handle), "0x%08x", TPM_SRK_HANDLE);
	if (cjson_only_keys(srk, srk_keys, &bad) != 0 || cjson_get_str(srk, "handle") == NULL ||
	    strcmp(cjson_get_str(srk, "handle"), handle) != 0 ||
	    parse_name(cjson_get_str(srk, "name"), ks->srk_name, &ks->srk_name_len) != 0) {
		text_printf(err, errn, "%s: srk: must be {\"handle\": \"%s\", \"name\": <hex>}",
		    KEYS_JSON, handle);
		return -EINVAL;
	}

	ak = json_object_get(j, "ak");
	if (cjson_only_keys(ak, ak_keys, &bad) != 0 ||
	    parse_name(cjson_get_str(ak, "name"), ks->ak_name, &ks->ak_name_len) != 0) {
		text_printf(err, errn, "%s: ak: must be {\"name\": <hex>, \"pub\", \"priv\"}",
		    KEYS_JSON);
		return -EINVAL;
	}
	r = load_blob(dfd, ak, "ak", 0, ks->ak_name, ks->ak_name_len, &ks->ak, err, errn);
	if (r != 0) {
		return r;
	}

	gens = json_object_get(j, "generations");
	n = json_array_size(gens);
	if (!json_is_array(gens) || n == 0 || n > KEYSTORE_MAX_GENS) {
		text_printf(err, errn, "%s: generations: 1 to %d entries expected", KEYS_JSON,
		    KEYSTORE_MAX_GENS);
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		struct keystore_gen *g = &ks->gens[i];

		r = load_gen(dfd, json_array_get(gens, i), i, g, err, errn);
		if (r != 0) {
			return r;
		}
		/* Oldest first, each retired when the next came; the last is
		 * the current one. */
		if (i > 0 && g->gen <= ks->gens[i - 1].gen) {
			text_printf(err, errn, "%s: generations: gen numbers must increase", KEYS_JSON);
			return -EINVAL;
		}
		if ((i + 1 == n) != (g->retired == 0)) {
			text_printf(err, errn, "%s: generations[%zu]: only the newest generation "
			    "may have retired 0", KEYS_JSON, i);
			return -EINVAL;
		}
	}
	ks->n_gens = n;
	r = tpm_blob_auth_policy(&ks->gens[n - 1].blob, policy);
	if (r != 0 || CRYPTO_memcmp(policy, ks->policy, 32) != 0) {
		text_printf(err, errn, "root-%u.pub: its authPolicy is not policy_digest in %s",
		    (unsigned)ks->gens[n - 1].gen, KEYS_JSON);
		return -EBADMSG;
	}
	return 0;
}

static int
open_state_dir(const char *dir, int *ret, char *err, size_t errn)
{
	struct stat st;
	int dfd, r;

	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0) {
		r = -errno;
		if (r == -ELOOP || r == -ENOTDIR) {
			/* O_NOFOLLOW on a symlink: say what it is. */
			if (lstat(dir, &st) == 0 && S_ISLNK(st.st_mode)) {
				text_printf(err, errn, "%s: the state directory is a symlink", dir);
				return -ELOOP;
			}
		}
		text_printf(err, errn, "%s: %s", dir, strerror(-r));
		return r;
	}
	if (fstat(dfd, &st) != 0) {
		r = -errno;
		text_printf(err, errn, "%s: %s", dir, strerror(-r));
		(void)close(dfd);
		return r;
	}
	if ((st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
		text_printf(err, errn, "%s: the state directory is writable by group or others "
		    "(mode %04o; expected 0700)", dir, (unsigned)(st.st_mode & 07777));
		(void)close(dfd);
		return -EPERM;
	}
	if (st.st_uid != geteuid() && st.st_uid != 0) {
		text_printf(err, errn, "%s: the state directory belongs to uid %u, not to us or root",
		    dir, (unsigned)st.st_uid);
		(void)close(dfd);
		return -EPERM;
	}
	*ret = dfd;
	return 0;
}

int
keystore_load_verbose(const char *dir, struct keystore **ret, char *err, size_t err_len)
{
	struct keystore *ks = NULL;
	json_t *j = NULL;
	char *buf = NULL;
	size_t len = 0;
	int dfd = -1, r;

	text_printf(err, err_len, "%s", "");
	if (dir == NULL || ret == NULL) {
		return -EINVAL;
	}
	r = open_state_dir(dir, &dfd, err, err_len);
	if (r != 0) {
		goto out;
	}
	buf = malloc(KEYS_JSON_MAX);
	ks = calloc(1, sizeof(*ks));
	if (buf == NULL || ks == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = read_at(dfd, KEYS_JSON, KEYS_JSON_MAX, (uint8_t *)buf, &len);
	if (r != 0) {
		text_printf(err, err_len, "%s/%s: %s", dir, KEYS_JSON, r == -EFBIG ?
		    "larger than 64 KiB" : read_error(r));
		goto out;
	}
	r = cjson_parse(buf, len, KEYS_JSON_MAX, &j);
	if (r != 0) {
		text_printf(err, err_len, "%s/%s: not valid JSON (or duplicate keys, or reals)",
		    dir, KEYS_JSON);
		r = -EINVAL;
		goto out;
	}
	r = load_json(dfd, j, ks, err, err_len);
	if (r != 0) {
		goto out;
	}
	*ret = ks;
	ks = NULL;
	r = 0;
out:
	json_decref(j);
	free(buf);
	keystore_free(ks);
	if (dfd >= 0) {
		(void)close(dfd);
	}
	return r;
}

int
keystore_load(const char *dir, struct keystore **ret)
{
	return keystore_load_verbose(dir, ret, NULL, 0);
}

/* ---- writing --------------------------------------------------------- */

static bool
ks_valid(const struct keystore *ks)
{
	size_t i;

	if (ks == NULL || ks->n_gens == 0 || ks->n_gens > KEYSTORE_MAX_GENS ||
	    ks->srk_name_len != NAME_LEN || ks->ak_name_len != NAME_LEN) {
		return false;
	}
	for (i = 0; i < ks->n_gens; i++) {
		const struct keystore_gen *g = &ks->gens[i];

		if (g->gen == 0 || g->name_len != NAME_LEN || g->created < 0 || g->retired < 0 ||
		    (i > 0 && g->gen <= ks->gens[i - 1].gen) ||
		    ((i + 1 == ks->n_gens) != (g->retired == 0)) ||
		    g->blob.pub_len == 0 || g->blob.pub_len > TPM_BLOB_MAX ||
		    g->blob.priv_len == 0 || g->blob.priv_len > TPM_BLOB_MAX) {
			return false;
		}
	}
	return ks->ak.pub_len > 0 && ks->ak.pub_len <= TPM_BLOB_MAX &&
	    ks->ak.priv_len > 0 && ks->ak.priv_len <= TPM_BLOB_MAX;
}

static int
join(char *buf, const char *dir, const char *name)
{
	int n = snprintf(buf, PATH_MAX, "%s/%s", dir, name);

	return n < 0 || n >= PATH_MAX ? -ENAMETOOLONG : 0;
}

static int
write_blob(const char *dir, uint32_t gen, const struct tpm_blob *b)
{
	char name[BLOB_NAME_MAX], path[PATH_MAX];
	int r;

	r = blob_file_name(name, gen, "pub");
	if (r == 0) {
		r = join(path, dir, name);
	}
	if (r == 0) {
		r = fs_write_file_atomic(path, b->pub, b->pub_len, 0600);
	}
	if (r != 0) {
		return r;
	}
	r = blob_file_name(name, gen, "priv");
	if (r == 0) {
		r = join(path, dir, name);
	}
	if (r == 0) {
		r = fs_write_file_atomic(path, b->priv, b->priv_len, 0600);
	}
	return r;
}

static int
set_hex(json_t *obj, const char *key, const uint8_t *in, size_t n)
{
	char hex[2 * TPM_NAME_MAX + 1];

	if (n > TPM_NAME_MAX) {
		return -EINVAL;
	}
	format_hex(in, n, hex);
	return json_object_set_new(obj, key, json_string(hex)) == 0 ? 0 : -ENOMEM;
}

static int
set_blob_names(json_t *obj, uint32_t gen)
{
	char name[BLOB_NAME_MAX];

	if (blob_file_name(name, gen, "pub") != 0 ||
	    json_object_set_new(obj, "pub", json_string(name)) != 0 ||
	    blob_file_name(name, gen, "priv") != 0 ||
	    json_object_set_new(obj, "priv", json_string(name)) != 0) {
		return -ENOMEM;
	}
	return 0;
}

static int
build_json(const struct keystore *ks, json_t **ret)
{
	char pcrs[TPM_PCR_SEL_STR_MAX], handle[16];
	json_t *j = NULL, *srk, *ak, *gens;
	size_t i;
	int r;

	r = tpm_pcr_sel_format(&ks->pcrs, pcrs, sizeof(pcrs));
	if (r != 0) {
		return r;
	}
	(void)snprintf(handle, sizeof(handle), "0x%08x", TPM_SRK_HANDLE);
	j = json_object();
	srk = json_object();
	ak = json_object();
	gens = json_array();
	if (j == NULL || srk == NULL || ak == NULL || gens == NULL) {
		json_decref(srk);
		json_decref(ak);
		json_decref(gens);
		r = -ENOMEM;
		goto out;
	}
	/* The object takes the references of srk, ak and gens here. */
	if (json_object_set_new(j, "version", json_integer(1)) != 0 ||
	    json_object_set_new(j, "pcrs", json_string(pcrs)) != 0 ||
	    set_hex(j, "policy_digest", ks->policy, 32) != 0 ||
	    json_object_set_new(j, "srk", srk) != 0 ||
	    json_object_set_new(j, "ak", ak) != 0 ||
	    json_object_set_new(j, "generations", gens) != 0 ||
	    json_object_set_new(srk, "handle", json_string(handle)) != 0 ||
	    set_hex(srk, "name", ks->srk_name, ks->srk_name_len) != 0 ||
	    set_hex(ak, "name", ks->ak_name, ks->ak_name_len) != 0 ||
	    set_blob_names(ak, 0) != 0) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < ks->n_gens; i++) {
		const struct keystore_gen *g = &ks->gens[i];
		json_t *o = json_object();

		if (o == NULL || json_array_append_new(gens, o) != 0 ||
		    json_object_set_new(o, "gen", json_integer(g->gen)) != 0 ||
		    json_object_set_new(o, "created", json_integer(g->created)) != 0 ||
		    json_object_set_new(o, "retired", json_integer(g->retired)) != 0 ||
		    set_hex(o, "name", g->name, g->name_len) != 0 ||
		    set_blob_names(o, g->gen) != 0) {
			r = -ENOMEM;
			goto out;
		}
	}
	*ret = j;
	j = NULL;
	r = 0;
out:
	json_decref(j);
	return r;
}

static bool
referenced(const struct keystore *ks, const char *name)
{
	char want[BLOB_NAME_MAX];
	size_t i;

	for (i = 0; i < ks->n_gens; i++) {
		if ((blob_file_name(want, ks->gens[i].gen, "pub") == 0 &&
		    strcmp(want, name) == 0) ||
		    (blob_file_name(want, ks->gens[i].gen, "priv") == 0 &&
		    strcmp(want, name) == 0)) {
			return true;
		}
	}
	return false;
}

/* After keys.json no longer names them, dropped generations' blobs go.
 * Best effort: a leftover blob is useless without keys.json naming it. */
static void
remove_stale_blobs(int dfd, const struct keystore *ks)
{
	DIR *d;
	struct dirent *e;
	int fd;

	fd = fcntl(dfd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0) {
		return;
	}
	d = fdopendir(fd);
	if (d == NULL) {
		(void)close(fd);
		return;
	}
	while ((e = readdir(d)) != NULL) {
		const char *p = e->d_name, *dot;
		uint64_t gen;
		char num[16];
		size_t len;

		if (strncmp(p, "root-", 5) != 0) {
			continue;
		}
		dot = strchr(p + 5, '.');
		if (dot == NULL || (strcmp(dot, ".pub") != 0 && strcmp(dot, ".priv") != 0)) {
			continue;
		}
		len = (size_t)(dot - (p + 5));
		if (len == 0 || len >= sizeof(num)) {
			continue;
		}
		memcpy(num, p + 5, len);
		num[len] = '\0';
		if (parse_u64(num, 1, UINT32_MAX, &gen) != 0 || referenced(ks, p)) {
			continue;
		}
		(void)unlinkat(dfd, p, 0);
	}
	(void)closedir(d);
}

/* Indented, key order as built, with a final newline. */
static int
dump_json(const json_t *j, char **ret, size_t *ret_len)
{
	char *text, *p;
	size_t len;

	text = json_dumps(j, JSON_INDENT(2));
	if (text == NULL) {
		return -ENOMEM;
	}
	len = strlen(text);
	p = realloc(text, len + 2);
	if (p == NULL) {
		free(text);
		return -ENOMEM;
	}
	p[len++] = '\n';
	p[len] = '\0';
	*ret = p;
	*ret_len = len;
	return 0;
}

int
keystore_save(const char *dir, const struct keystore *ks)
{
	char path[PATH_MAX];
	struct stat st;
	json_t *j = NULL;
	char *text = NULL;
	size_t i, len;
	int dfd = -1, r;

	if (dir == NULL || !ks_valid(ks)) {
		return -EINVAL;
	}
	r = fs_ensure_dir(dir, 0700);
	if (r != 0) {
		goto out;
	}
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (dfd < 0 || fstat(dfd, &st) != 0) {
		r = -errno;
		goto out;
	}
	if ((st.st_mode & 07777) != 0700 && fchmod(dfd, 0700) != 0) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < ks->n_gens; i++) {
		r = write_blob(dir, ks->gens[i].gen, &ks->gens[i].blob);
		if (r != 0) {
			goto out;
		}
	}
	r = write_blob(dir, 0, &ks->ak);
	if (r != 0) {
		goto out;
	}
	r = build_json(ks, &j);
	if (r != 0) {
		goto out;
	}
	r = join(path, dir, KEYS_JSON);
	if (r != 0) {
		goto out;
	}
	r = dump_json(j, &text, &len);
	if (r != 0) {
		goto out;
	}
	/* keys.json last: until it is replaced, the old one names only the
	 * old blobs, which are all still there. */
	r = fs_write_file_atomic(path, text, len, 0600);
	if (r != 0) {
		goto out;
	}
	remove_stale_blobs(dfd, ks);
	r = 0;
out:
	free(text);
	json_decref(j);
	if (dfd >= 0) {
		(void)close(dfd);
	}
	return r;
}

void
keystore_free(struct keystore *ks)
{
	free(ks);
}

const struct keystore_gen *
keystore_current(const struct keystore *ks)
{
	if (ks == NULL || ks->n_gens == 0) {
		return NULL;
	}
	return &ks->gens[ks->n_gens - 1];
}

const struct keystore_gen *
keystore_find(const struct keystore *ks, uint32_t gen)
{
	size_t i;

	if (ks == NULL) {
		return NULL;
	}
	for (i = 0; i < ks->n_gens; i++) {
		if (ks->gens[i].gen == gen) {
			return &ks->gens[i];
		}
	}
	return NULL;
}
