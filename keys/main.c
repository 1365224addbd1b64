/* attest-keys: provisioning of the TPM keys attestd uses (docs/provisioning.md).
 * Creates or reuses the SRK, creates root HMAC key generations sealed to a
 * PCR policy and the attestation key, reports their state, rotates. */
#include <errno.h>
#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "keystore.h"
#include "log.h"
#include "parse.h"
#include "tpm.h"

#define EXIT_USAGE     2
#define DEFAULT_TCTI   "device:/dev/tpmrm0"
#define DEFAULT_PCRS   "sha256:0,2,4,7"
#define RETIRE_HOLD    (24 * 60 * 60)   /* a retired generation is kept this long */
/* The message whose HMAC proves the root key works; never a token label. */
#define PROBE_LABEL    "warrant/attest-keys/probe"

struct opts {
	const char *tcti;
	const char *state_dir;
};

static void
usage(void)
{
	printf(
	    "usage: attest-keys [--tcti TCTI] --state-dir DIR COMMAND [ARGS]\n"
	    "\n"
	    "commands:\n"
	    "  init [--pcrs SEL] [--force]  reuse or create the SRK (0x81000001), create root key\n"
	    "                               generation 1 sealed to the current values of the\n"
	    "                               PCRs in SEL (default " DEFAULT_PCRS ") and the\n"
	    "                               attestation key; refuses to replace keys.json\n"
	    "                               without --force\n"
	    "  status                       JSON: TPM, SRK, policy, whether the root key is\n"
	    "                               usable now, generations, AK\n"
	    "  rotate                       new root key generation sealed to the current PCR\n"
	    "                               values; the previous one is marked retired\n"
	    "  ak-public                    the attestation key as a PEM public key\n"
	    "\n"
	    "TCTI defaults to $WARRANT_TCTI, else " DEFAULT_TCTI ".\n"
	    "tpm2-tss's own log is off unless TSS2_LOG is set.\n"
	    "Exit status: 0 success, 1 failure, 2 usage error.\n");
}

/* ---- messages -------------------------------------------------------- */

static const char *
explain(int r)
{
	switch (r) {
	case -ECOMM:
		return "the TPM could not be reached";
	case -EKEYREJECTED:
		return "the PCR policy is not satisfied: the PCR values differ from those the "
		    "key was sealed to";
	case -ENOENT:
		return "no persistent SRK at 0x81000001";
	case -EBADMSG:
		return "a blob or name does not match what the TPM holds";
	default:
		return strerror(-r);
	}
}

static void
tpm_error(const struct tpm *t, const char *doing, int r)
{
	const char *detail = t != NULL ? tpm_last_error(t) : "";

	log_error("%s: %s%s%s", doing, explain(r), detail[0] != '\0' ? ": " : "", detail);
}

static void
format_time(int64_t when, char *buf, size_t n)
{
	time_t tt = (time_t)when;
	struct tm tm;

	if (gmtime_r(&tt, &tm) == NULL || strftime(buf, n, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		(void)snprintf(buf, n, "%lld", (long long)when);
	}
}

static json_t *
hex_string(const uint8_t *in, size_t n)
{
	char hex[2 * TPM_NAME_MAX + 1];

	if (n > TPM_NAME_MAX) {
		return NULL;
	}
	format_hex(in, n, hex);
	return json_string(hex);
}

/* Print j and drop the reference (json_pack's result is passed straight in). */
static int
print_json(json_t *j)
{
	int r;

	if (j == NULL) {
		log_error("out of memory building the output");
		return -ENOMEM;
	}
	r = json_dumpf(j, stdout, JSON_INDENT(2));
	json_decref(j);
	if (r == 0 && (fputc('\n', stdout) == EOF || fflush(stdout) != 0)) {
		r = -1;
	}
	if (r != 0) {
		log_error("cannot write to standard output");
		return -EIO;
	}
	return 0;
}

/* ---- shared steps ---------------------------------------------------- */

static int
open_tpm(const struct opts *o, struct tpm **ret)
{
	int r = tpm_open(o->tcti, ret);

	if (r != 0) {
		log_error("cannot open the TPM at TCTI \"%s\": %s", o->tcti, explain(r));
	}
	return r;
}

static int
load_state(const struct opts *o, struct keystore **ret)
{
	char err[512];
	int r;

	r = keystore_load_verbose(o->state_dir, ret, err, sizeof(err));
	if (r == 0) {
		return 0;
	}
	if (r == -ENOENT) {
		log_error("%s: not provisioned (run attest-keys init): %s", o->state_dir,
		    err[0] != '\0' ? err : strerror(-r));
	} else if (err[0] != '\0') {
		log_error("refusing the state in %s: %s", o->state_dir, err);
	} else {
		log_error("refusing the state in %s: %s", o->state_dir, strerror(-r));
	}
	return r;
}

/* Create a root key generation and prove it works before anyone relies
 * on it: one HMAC through its policy session. */
static int
new_root_key(struct tpm *t, const uint8_t *srk_name, size_t srk_name_len,
    const struct tpm_pcr_sel *sel, struct keystore_gen *g, uint8_t policy[32])
{
	uint8_t mac[32];
	int r;

	r = tpm_create_root_key(t, sel, &g->blob, policy);
	if (r != 0) {
		tpm_error(t, "cannot create the root key", r);
		return r;
	}
	r = tpm_blob_name(&g->blob, g->name, &g->name_len);
	if (r != 0) {
		log_error("the TPM returned a root key blob that does not parse");
		return r;
	}
	r = tpm_root_hmac(t, srk_name, srk_name_len, &g->blob, sel,
	    (const uint8_t *)PROBE_LABEL, strlen(PROBE_LABEL), mac);
	explicit_bzero(mac, sizeof(mac));
	if (r != 0) {
		tpm_error(t, "the new root key failed its first HMAC", r);
		return r;
	}
	return 0;
}

static json_t *
generations_json(const struct keystore *ks)
{
	json_t *a = json_array();
	size_t i;

	for (i = 0; a != NULL && i < ks->n_gens; i++) {
		const struct keystore_gen *g = &ks->gens[i];

		if (json_array_append_new(a, json_pack("{s:I, s:I, s:I, s:o}",
		    "gen", (json_int_t)g->gen, "created", (json_int_t)g->created,
		    "retired", (json_int_t)g->retired, "name", hex_string(g->name, g->name_len))) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* ---- commands -------------------------------------------------------- */

static int
cmd_init(const struct opts *o, int argc, char **argv)
{
	const char *pcrs = DEFAULT_PCRS;
	bool force = false, srk_created = false;
	struct tpm_pcr_sel sel;
	struct keystore *ks = NULL;
	struct tpm *t = NULL;
	char path[4096], selstr[TPM_PCR_SEL_STR_MAX];
	struct stat st;
	int i, r;

	for (i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--force") == 0) {
			force = true;
		} else if (strcmp(argv[i], "--pcrs") == 0 && i + 1 < argc) {
			pcrs = argv[++i];
		} else if (strncmp(argv[i], "--pcrs=", 7) == 0) {
			pcrs = argv[i] + 7;
		} else {
			log_error("init: unexpected argument \"%s\"", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (tpm_pcr_sel_parse(pcrs, &sel) != 0) {
		log_error("init: --pcrs \"%s\": expected sha256:N,N,... with distinct PCRs 0-23",
		    pcrs);
		return EXIT_USAGE;
	}
	(void)tpm_pcr_sel_format(&sel, selstr, sizeof(selstr));
	r = snprintf(path, sizeof(path), "%s/keys.json", o->state_dir);
	if (r < 0 || (size_t)r >= sizeof(path)) {
		log_error("init: state directory path too long");
		return EXIT_FAILURE;
	}
	if (lstat(path, &st) == 0 && !force) {
		log_error("init: %s exists: refusing to replace a provisioned state (use --force; "
		    "its root key generations would be lost)", path);
		return EXIT_FAILURE;
	}

	ks = calloc(1, sizeof(*ks));
	if (ks == NULL) {
		log_error("out of memory");
		return EXIT_FAILURE;
	}
	r = open_tpm(o, &t);
	if (r != 0) {
		goto out;
	}
	r = tpm_srk_ensure(t, false, ks->srk_name, &ks->srk_name_len);
	if (r == -ENOENT) {
		srk_created = true;
		r = tpm_srk_ensure(t, true, ks->srk_name, &ks->srk_name_len);
	}
	if (r != 0) {
		tpm_error(t, srk_created ? "cannot create the SRK" : "cannot use the SRK", r);
		goto out;
	}
	ks->pcrs = sel;
	ks->n_gens = 1;
	ks->gens[0].gen = 1;
	ks->gens[0].created = (int64_t)time(NULL);
	ks->gens[0].retired = 0;
	r = new_root_key(t, ks->srk_name, ks->srk_name_len, &sel, &ks->gens[0], ks->policy);
	if (r != 0) {
		goto out;
	}
	r = tpm_create_ak(t, &ks->ak);
	if (r != 0) {
		tpm_error(t, "cannot create the attestation key", r);
		goto out;
	}
	r = tpm_blob_name(&ks->ak, ks->ak_name, &ks->ak_name_len);
	if (r != 0) {
		log_error("the TPM returned an attestation key blob that does not parse");
		goto out;
	}
	r = keystore_save(o->state_dir, ks);
	if (r != 0) {
		log_error("cannot write the state to %s: %s", o->state_dir, strerror(-r));
		goto out;
	}
	r = print_json(json_pack("{s:s, s:{s:s, s:o, s:b}, s:s, s:o, s:{s:I, s:I, s:o}, s:{s:o}}",
	    "state_dir", o->state_dir,
	    "srk", "handle", "0x81000001", "name", hex_string(ks->srk_name, ks->srk_name_len),
	    "created", srk_created,
	    "pcrs", selstr,
	    "policy_digest", hex_string(ks->policy, 32),
	    "generation", "gen", (json_int_t)1, "created", (json_int_t)ks->gens[0].created,
	    "name", hex_string(ks->gens[0].name, ks->gens[0].name_len),
	    "ak", "name", hex_string(ks->ak_name, ks->ak_name_len)));
out:
	tpm_close(t);
	keystore_free(ks);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int
cmd_status(const struct opts *o)
{
	struct keystore *ks = NULL;
	struct tpm *t = NULL;
	const struct keystore_gen *cur;
	struct tpm_info info;
	uint8_t srk_name[TPM_NAME_MAX], pcr_digest[32], policy_now[32], mac[32];
	size_t srk_name_len = 0;
	char selstr[TPM_PCR_SEL_STR_MAX], firmware[48], root_err[320] = "";
	bool srk_present = false, srk_matches = false, satisfied, usable;
	json_t *out = NULL;
	int r;

	r = load_state(o, &ks);
	if (r != 0) {
		goto out;
	}
	r = open_tpm(o, &t);
	if (r != 0) {
		goto out;
	}
	r = tpm_get_info(t, &info);
	if (r != 0) {
		tpm_error(t, "cannot read the TPM's properties", r);
		goto out;
	}
	r = tpm_srk_ensure(t, false, srk_name, &srk_name_len);
	if (r == 0) {
		srk_present = true;
		srk_matches = srk_name_len == ks->srk_name_len &&
		    memcmp(srk_name, ks->srk_name, srk_name_len) == 0;
	} else if (r == -ECOMM) {
		tpm_error(t, "cannot read the SRK", r);
		goto out;
	}
	r = tpm_pcr_digest(t, &ks->pcrs, pcr_digest);
	if (r == 0) {
		r = tpm_policy_pcr(&ks->pcrs, pcr_digest, policy_now);
	}
	if (r != 0) {
		tpm_error(t, "cannot read the PCRs", r);
		goto out;
	}
	satisfied = memcmp(policy_now, ks->policy, 32) == 0;

	cur = keystore_current(ks);
	r = tpm_root_hmac(t, ks->srk_name, ks->srk_name_len, &cur->blob, &ks->pcrs,
	    (const uint8_t *)PROBE_LABEL, strlen(PROBE_LABEL), mac);
	explicit_bzero(mac, sizeof(mac));
	usable = r == 0;
	if (r == -ECOMM) {
		tpm_error(t, "the TPM stopped answering", r);
		goto out;
	}
	if (!usable) {
		const char *d = tpm_last_error(t);

		(void)snprintf(root_err, sizeof(root_err), "%s%s%s", explain(r),
		    d[0] != '\0' ? ": " : "", d);
	}

	(void)tpm_pcr_sel_format(&ks->pcrs, selstr, sizeof(selstr));
	(void)snprintf(firmware, sizeof(firmware), "%u.%u.%u.%u",
	    (unsigned)(info.firmware1 >> 16), (unsigned)(info.firmware1 & 0xffff),
	    (unsigned)(info.firmware2 >> 16), (unsigned)(info.firmware2 & 0xffff));
	out = json_pack("{s:{s:s, s:s, s:s, s:I}, s:{s:s, s:o, s:b, s:b}, s:s, s:o, s:o, "
	    "s:b, s:b, s:I, s:o, s:{s:o}}",
	    "tpm", "manufacturer", info.manufacturer, "vendor", info.vendor,
	    "firmware", firmware, "spec_revision", (json_int_t)info.spec_revision,
	    "srk", "handle", "0x81000001", "name", hex_string(ks->srk_name, ks->srk_name_len),
	    "present", srk_present, "matches", srk_matches,
	    "pcrs", selstr,
	    "policy_digest", hex_string(ks->policy, 32),
	    "policy_current", hex_string(policy_now, 32),
	    "policy_satisfied", satisfied,
	    "root_key_usable", usable,
	    "current_generation", (json_int_t)cur->gen,
	    "generations", generations_json(ks),
	    "ak", "name", hex_string(ks->ak_name, ks->ak_name_len));
	if (out != NULL && !usable) {
		(void)json_object_set_new(out, "root_key_error", json_string(root_err));
	}
	r = print_json(out);
	out = NULL;
out:
	json_decref(out);
	tpm_close(t);
	keystore_free(ks);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int
cmd_rotate(const struct opts *o)
{
	struct keystore *ks = NULL;
	struct tpm *t = NULL;
	struct keystore_gen g;
	uint8_t srk_name[TPM_NAME_MAX], policy[32];
	size_t srk_name_len = 0;
	int64_t now = (int64_t)time(NULL);
	uint32_t retired_gen, dropped = 0;
	int r;

	memset(&g, 0, sizeof(g));
	r = load_state(o, &ks);
	if (r != 0) {
		goto out;
	}
	if (keystore_current(ks)->gen == UINT32_MAX) {
		log_error("rotate: generation numbers exhausted");
		r = -ERANGE;
		goto out;
	}
	if (ks->n_gens == KEYSTORE_MAX_GENS) {
		const struct keystore_gen *old = &ks->gens[0];

		if (now - old->retired < RETIRE_HOLD) {
			char when[32], after[32];
			int64_t retry;

			/* retired comes from keys.json (any value up to INT64_MAX). */
			if (__builtin_add_overflow(old->retired, (int64_t)RETIRE_HOLD, &retry)) {
				retry = INT64_MAX;
			}
			format_time(old->retired, when, sizeof(when));
			format_time(retry, after, sizeof(after));
			log_error("rotate: the state keeps at most %d generations and the oldest, "
			    "generation %u, was retired at %s, less than 24 h ago: tokens derived "
			    "from it may still be verified. Retry after %s.", KEYSTORE_MAX_GENS,
			    (unsigned)old->gen, when, after);
			r = -EBUSY;
			goto out;
		}
	}
	r = open_tpm(o, &t);
	if (r != 0) {
		goto out;
	}
	/* New blobs must wrap under the SRK keys.json names, or attestd
	 * would refuse them. */
	r = tpm_srk_ensure(t, false, srk_name, &srk_name_len);
	if (r != 0) {
		tpm_error(t, "cannot use the SRK", r);
		goto out;
	}
	if (srk_name_len != ks->srk_name_len || memcmp(srk_name, ks->srk_name, srk_name_len) != 0) {
		log_error("rotate: the SRK at 0x81000001 is not the one in %s/keys.json; "
		    "refusing (re-provision with init --force if the TPM was cleared)",
		    o->state_dir);
		r = -EBADMSG;
		goto out;
	}
	g.gen = keystore_current(ks)->gen + 1;
	g.created = now;
	g.retired = 0;
	r = new_root_key(t, ks->srk_name, ks->srk_name_len, &ks->pcrs, &g, policy);
	if (r != 0) {
		goto out;
	}

	retired_gen = keystore_current(ks)->gen;
	ks->gens[ks->n_gens - 1].retired = now;
	if (ks->n_gens == KEYSTORE_MAX_GENS) {
		dropped = ks->gens[0].gen;
		memmove(&ks->gens[0], &ks->gens[1], (ks->n_gens - 1) * sizeof(ks->gens[0]));
		ks->n_gens--;
	}
	ks->gens[ks->n_gens++] = g;
	memcpy(ks->policy, policy, 32);
	r = keystore_save(o->state_dir, ks);
	if (r != 0) {
		log_error("cannot write the state to %s: %s", o->state_dir, strerror(-r));
		goto out;
	}
	r = print_json(json_pack("{s:I, s:I, s:o, s:o, s:o}",
	    "generation", (json_int_t)g.gen, "retired", (json_int_t)retired_gen,
	    "dropped", dropped != 0 ? json_integer(dropped) : json_null(),
	    "name", hex_string(g.name, g.name_len),
	    "policy_digest", hex_string(policy, 32)));
out:
	tpm_close(t);
	keystore_free(ks);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int
cmd_ak_public(const struct opts *o)
{
	struct keystore *ks = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pkey = NULL;
	OSSL_PARAM params[3];
	uint8_t point[65];
	char group[] = "prime256v1";
	int r;

	r = load_state(o, &ks);
	if (r != 0) {
		goto out;
	}
	r = tpm_blob_ecc_point(&ks->ak, point);
	if (r != 0) {
		log_error("%s/ak.pub: not an ECC P-256 public key", o->state_dir);
		goto out;
	}
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME, group, 0);
	params[1] = OSSL_PARAM_construct_octet_string(OSSL_PKEY_PARAM_PUB_KEY, point,
	    sizeof(point));
	params[2] = OSSL_PARAM_construct_end();
	ctx = EVP_PKEY_CTX_new_from_name(NULL, "EC", NULL);
	if (ctx == NULL || EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) != 1) {
		log_error("%s/ak.pub: OpenSSL refuses the point as a P-256 public key",
		    o->state_dir);
		r = -EBADMSG;
		goto out;
	}
	if (PEM_write_PUBKEY(stdout, pkey) != 1 || fflush(stdout) != 0) {
		log_error("cannot write to standard output");
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	EVP_PKEY_free(pkey);
	EVP_PKEY_CTX_free(ctx);
	keystore_free(ks);
	return r == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* ---- main ------------------------------------------------------------ */

static bool
is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0;
}

int
main(int argc, char **argv)
{
	struct opts o = { .tcti = NULL, .state_dir = NULL };
	const char *cmd;
	int i;

	log_init("attest-keys", LOG_INFO);
	(void)umask(077);
	/* tpm2-tss prints its own ERROR lines; our messages carry the decoded
	 * response code already. TSS2_LOG set by the caller wins. */
	(void)setenv("TSS2_LOG", "all+NONE", 0);

	for (i = 1; i < argc; i++) {
		if (is_help(argv[i])) {
			usage();
			return EXIT_SUCCESS;
		}
	}
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--tcti") == 0 && i + 1 < argc) {
			o.tcti = argv[++i];
		} else if (strncmp(argv[i], "--tcti=", 7) == 0) {
			o.tcti = argv[i] + 7;
		} else if (strcmp(argv[i], "--state-dir") == 0 && i + 1 < argc) {
			o.state_dir = argv[++i];
		} else if (strncmp(argv[i], "--state-dir=", 12) == 0) {
			o.state_dir = argv[i] + 12;
		} else {
			log_error("unknown or incomplete option \"%s\" (see --help)", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (i >= argc) {
		log_error("no command given (see --help)");
		return EXIT_USAGE;
	}
	if (o.state_dir == NULL || o.state_dir[0] == '\0') {
		log_error("--state-dir is required (see --help)");
		return EXIT_USAGE;
	}
	if (o.tcti == NULL) {
		o.tcti = getenv("WARRANT_TCTI");
	}
	if (o.tcti == NULL || o.tcti[0] == '\0') {
		o.tcti = DEFAULT_TCTI;
	}
	cmd = argv[i++];
	if (strcmp(cmd, "init") == 0) {
		return cmd_init(&o, argc - i, argv + i);
	}
	if (i != argc) {
		log_error("%s: unexpected argument \"%s\"", cmd, argv[i]);
		return EXIT_USAGE;
	}
	if (strcmp(cmd, "status") == 0) {
		return cmd_status(&o);
	}
	if (strcmp(cmd, "rotate") == 0) {
		return cmd_rotate(&o);
	}
	if (strcmp(cmd, "ak-public") == 0) {
		return cmd_ak_public(&o);
	}
	log_error("unknown command \"%s\" (see --help)", cmd);
	return EXIT_USAGE;
}
