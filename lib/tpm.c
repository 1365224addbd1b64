#include "tpm.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tss2/tss2_esys.h>
#include <tss2/tss2_mu.h>
#include <tss2/tss2_rc.h>
#include <tss2/tss2_tctildr.h>

#define PCR_COUNT      24
#define PCR_SELECT_LEN 3        /* bytes of pcrSelect for 24 PCRs */
#define PCR_READ_TRIES 8        /* re-reads when the PCRs change under us */

struct tpm {
	TSS2_TCTI_CONTEXT *tcti;
	ESYS_CONTEXT *esys;
	uint64_t ncmd;
	char err[256];
};

/* Attributes our SRK template sets; a reused SRK must have all but noDA. */
#define SRK_ATTRS (TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_DECRYPT | \
	TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_NODA)
#define SRK_REQUIRED (SRK_ATTRS & ~(TPMA_OBJECT)TPMA_OBJECT_NODA)

/* Root key: usable only through its policy. userWithAuth clear: the USER
 * role (TPM2_HMAC) needs the PCR policy. adminWithPolicy set: the ADMIN role
 * (TPM2_ObjectChangeAuth, TPM2_Certify, ...) needs a policy session too, and
 * as the policy has no TPM2_PolicyCommandCode no admin command can be
 * authorised at all; with it clear, anyone holding the (public) blobs could
 * run them with the key's empty authValue. */
#define ROOT_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_SIGN_ENCRYPT | \
	TPMA_OBJECT_ADMINWITHPOLICY)

#define AK_ATTRS (TPMA_OBJECT_FIXEDTPM | TPMA_OBJECT_FIXEDPARENT | \
	TPMA_OBJECT_SENSITIVEDATAORIGIN | TPMA_OBJECT_USERWITHAUTH | \
	TPMA_OBJECT_RESTRICTED | TPMA_OBJECT_SIGN_ENCRYPT)

/* ---- errors ---------------------------------------------------------- */

static void
err_reset(struct tpm *t)
{
	t->err[0] = '\0';
}

static void __attribute__((format(printf, 2, 3)))
err_set(struct tpm *t, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	(void)vsnprintf(t->err, sizeof(t->err), fmt, ap);
	va_end(ap);
}

static bool
rc_is_tpm_layer(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;

	return layer == TSS2_TPM_RC_LAYER || layer == TSS2_RESMGR_TPM_RC_LAYER;
}

/* The TPM response code without the handle/session/parameter number that
 * format-one codes carry (0x99d is POLICY_FAIL on session 1). */
static uint32_t
rc_code(TSS2_RC rc)
{
	uint32_t c = rc & 0xffffu;

	if ((c & TPM2_RC_FMT1) != 0) {
		return c & (TPM2_RC_FMT1 | 0x3fu);
	}
	return c & 0xfffu;
}

static bool
rc_is(TSS2_RC rc, uint32_t code)
{
	return rc_is_tpm_layer(rc) && rc_code(rc) == code;
}

static int
rc_to_errno(TSS2_RC rc)
{
	TSS2_RC layer = rc & TSS2_RC_LAYER_MASK;
	uint32_t base = rc & 0xffffu;

	if (layer == TSS2_TCTI_RC_LAYER) {
		return -ECOMM;
	}
	if (!rc_is_tpm_layer(rc)) {
		switch (base) {
		case TSS2_BASE_RC_IO_ERROR:
		case TSS2_BASE_RC_NO_CONNECTION:
			return -ECOMM;
		case TSS2_BASE_RC_MEMORY:
			return -ENOMEM;
		default:
			return -EIO;
		}
	}
	switch (rc_code(rc)) {
	case TPM2_RC_POLICY_FAIL:
	case TPM2_RC_PCR_CHANGED:
	case TPM2_RC_POLICY:
		return -EKEYREJECTED;
	default:
		return -EIO;
	}
}

/* Describe a failure for tpm_last_error() and map it to an errno. */
static int
tss_local(struct tpm *t, const char *what, TSS2_RC rc)
{
	if (rc == TSS2_RC_SUCCESS) {
		return 0;
	}
	err_set(t, "%s: %s (0x%x)", what, Tss2_RC_Decode(rc), (unsigned)rc);
	return rc_to_errno(rc);
}

/* Every ESAPI call that sends a command goes through here, to be counted. */
static int
tss(struct tpm *t, const char *cmd, TSS2_RC rc)
{
	t->ncmd++;
	return tss_local(t, cmd, rc);
}

const char *
tpm_last_error(const struct tpm *t)
{
	return t->err;
}

/* ---- open / close ---------------------------------------------------- */

static int
probe(struct tpm *t, TSS2_RC *ret_rc)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more;
	TSS2_RC rc;

	rc = Esys_GetCapability(t->esys, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE,
	    TPM2_CAP_TPM_PROPERTIES, TPM2_PT_MANUFACTURER, 1, &more, &cap);
	Esys_Free(cap);
	*ret_rc = rc;
	return tss(t, "TPM2_GetCapability", rc);
}

int
tpm_open(const char *tcti, struct tpm **ret)
{
	struct tpm *t = NULL;
	TSS2_RC rc;
	int r;

	if (tcti == NULL || tcti[0] == '\0') {
		return -EINVAL;
	}
	t = calloc(1, sizeof(*t));
	if (t == NULL) {
		return -ENOMEM;
	}
	rc = Tss2_TctiLdr_Initialize(tcti, &t->tcti);
	if (rc != TSS2_RC_SUCCESS) {
		t->tcti = NULL;
		r = -ECOMM;
		goto out;
	}
	rc = Esys_Initialize(&t->esys, t->tcti, NULL);
	if (rc != TSS2_RC_SUCCESS) {
		t->esys = NULL;
		r = rc_to_errno(rc);
		goto out;
	}
	/* One cheap command tells "unreachable" apart early, and a TPM that
	 * nobody started (no firmware, swtpm without startup-clear) gets its
	 * Startup(CLEAR) here, once. */
	r = probe(t, &rc);
	if (r != 0 && rc_is(rc, TPM2_RC_INITIALIZE)) {
		r = tss(t, "TPM2_Startup", Esys_Startup(t->esys, TPM2_SU_CLEAR));
		if (r == 0) {
			r = probe(t, &rc);
		}
	}
	if (r != 0) {
		goto out;
	}
	*ret = t;
	t = NULL;
out:
	tpm_close(t);
	return r;
}

void
tpm_close(struct tpm *t)
{
	if (t == NULL) {
		return;
	}
	if (t->esys != NULL) {
		Esys_Finalize(&t->esys);
	}
	if (t->tcti != NULL) {
		Tss2_TctiLdr_Finalize(&t->tcti);
	}
	free(t);
}

uint64_t
tpm_command_count(const struct tpm *t)
{
	return t->ncmd;
}

/* ---- info ------------------------------------------------------------ */

/* A property holds four big-endian characters; keep the printable ones. */
static void
append_chars(char *dst, size_t cap, uint32_t v)
{
	size_t len = strlen(dst);
	int i;

	for (i = 3; i >= 0; i--) {
		char c = (char)((v >> (8 * i)) & 0xff);

		if (c < 0x21 || c > 0x7e) {
			continue;
		}
		if (len + 1 >= cap) {
			break;
		}
		dst[len++] = c;
	}
	dst[len] = '\0';
}

int
tpm_get_info(struct tpm *t, struct tpm_info *ret)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	struct tpm_info info;
	uint32_t vendor[4] = { 0 }, prop = TPM2_PT_FIXED;
	TPMI_YES_NO more = TPM2_YES;
	int r = 0, rounds, i;
	bool have_manufacturer = false;

	err_reset(t);
	memset(&info, 0, sizeof(info));
	for (rounds = 0; more == TPM2_YES && rounds < 8; rounds++) {
		TPML_TAGGED_TPM_PROPERTY *l;

		r = tss(t, "TPM2_GetCapability", Esys_GetCapability(t->esys,
		    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_TPM_PROPERTIES,
		    prop, TPM2_MAX_TPM_PROPERTIES, &more, &cap));
		if (r != 0) {
			goto out;
		}
		l = &cap->data.tpmProperties;
		if (cap->capability != TPM2_CAP_TPM_PROPERTIES || l->count == 0 ||
		    l->count > TPM2_MAX_TPM_PROPERTIES) {
			break;
		}
		for (i = 0; i < (int)l->count; i++) {
			uint32_t v = l->tpmProperty[i].value;

			switch (l->tpmProperty[i].property) {
			case TPM2_PT_MANUFACTURER:
				have_manufacturer = true;
				append_chars(info.manufacturer, sizeof(info.manufacturer), v);
				break;
			case TPM2_PT_VENDOR_STRING_1:
				vendor[0] = v;
				break;
			case TPM2_PT_VENDOR_STRING_2:
				vendor[1] = v;
				break;
			case TPM2_PT_VENDOR_STRING_3:
				vendor[2] = v;
				break;
			case TPM2_PT_VENDOR_STRING_4:
				vendor[3] = v;
				break;
			case TPM2_PT_FIRMWARE_VERSION_1:
				info.firmware1 = v;
				break;
			case TPM2_PT_FIRMWARE_VERSION_2:
				info.firmware2 = v;
				break;
			case TPM2_PT_REVISION:
				info.spec_revision = v;
				break;
			default:
				break;
			}
		}
		prop = l->tpmProperty[l->count - 1].property + 1;
		Esys_Free(cap);
		cap = NULL;
		/* Only the fixed group is wanted. */
		if (prop > TPM2_PT_FIXED + 0xff) {
			break;
		}
	}
	if (!have_manufacturer) {
		err_set(t, "TPM2_GetCapability: no TPM2_PT_MANUFACTURER in the answer");
		r = -EIO;
		goto out;
	}
	for (i = 0; i < 4; i++) {
		append_chars(info.vendor, sizeof(info.vendor), vendor[i]);
	}
	*ret = info;
	r = 0;
out:
	Esys_Free(cap);
	return r;
}

/* ---- PCR selections -------------------------------------------------- */

int
tpm_pcr_sel_parse(const char *s, struct tpm_pcr_sel *ret)
{
	static const char prefix[] = "sha256:";
	uint32_t mask = 0;
	const char *p;

	if (s == NULL || strncmp(s, prefix, sizeof(prefix) - 1) != 0) {
		return -EINVAL;
	}
	p = s + sizeof(prefix) - 1;
	for (;;) {
		unsigned v;

		/* One or two digits, no leading zero, then ',' or the end. */
		if (p[0] < '0' || p[0] > '9') {
			return -EINVAL;
		}
		v = (unsigned)(p[0] - '0');
		p++;
		if (p[0] >= '0' && p[0] <= '9') {
			if (v == 0) {
				return -EINVAL;
			}
			v = v * 10 + (unsigned)(p[0] - '0');
			p++;
		}
		if (v >= PCR_COUNT || (mask & (1u << v)) != 0) {
			return -EINVAL;
		}
		mask |= 1u << v;
		if (p[0] == '\0') {
			break;
		}
		if (p[0] != ',') {
			return -EINVAL;
		}
		p++;
	}
	ret->bank = TPM2_ALG_SHA256;
	ret->mask = mask;
	return 0;
}

static bool
sel_valid(const struct tpm_pcr_sel *sel)
{
	return sel != NULL && sel->bank == TPM2_ALG_SHA256 && sel->mask != 0 &&
	    (sel->mask >> PCR_COUNT) == 0;
}

int
tpm_pcr_sel_format(const struct tpm_pcr_sel *sel, char *buf, size_t n)
{
	char tmp[TPM_PCR_SEL_STR_MAX];
	size_t len;
	unsigned i;
	int k;

	if (!sel_valid(sel) || buf == NULL) {
		return -EINVAL;
	}
	len = (size_t)snprintf(tmp, sizeof(tmp), "sha256:");
	for (i = 0; i < PCR_COUNT; i++) {
		if ((sel->mask & (1u << i)) == 0) {
			continue;
		}
		k = snprintf(tmp + len, sizeof(tmp) - len, "%s%u",
		    tmp[len - 1] == ':' ? "" : ",", i);
		if (k < 0 || (size_t)k >= sizeof(tmp) - len) {
			return -ENOBUFS;
		}
		len += (size_t)k;
	}
	if (len + 1 > n) {
		return -ENOBUFS;
	}
	memcpy(buf, tmp, len + 1);
	return 0;
}

static void
sel_to_tpml(const struct tpm_pcr_sel *sel, uint32_t mask, TPML_PCR_SELECTION *l)
{
	memset(l, 0, sizeof(*l));
	l->count = 1;
	l->pcrSelections[0].hash = sel->bank;
	l->pcrSelections[0].sizeofSelect = PCR_SELECT_LEN;
	l->pcrSelections[0].pcrSelect[0] = (uint8_t)(mask & 0xff);
	l->pcrSelections[0].pcrSelect[1] = (uint8_t)((mask >> 8) & 0xff);
	l->pcrSelections[0].pcrSelect[2] = (uint8_t)((mask >> 16) & 0xff);
}

/* ---- PCR values and policy ------------------------------------------- */

/* Read the selected PCR values into vals[i] for each selected i. PCR_Read
 * returns at most 8 digests per call and tells which ones it returned;
 * if the update counter moves between calls, start over so that all
 * values belong to one state. */
static int
pcr_read_all(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t vals[PCR_COUNT][32])
{
	TPML_PCR_SELECTION in, *out = NULL;
	TPML_DIGEST *digests = NULL;
	uint32_t todo, counter = 0, first_counter = 0;
	int r = -EIO, tries, calls;

	for (tries = 0; tries < PCR_READ_TRIES; tries++) {
		bool moved = false;

		todo = sel->mask;
		for (calls = 0; todo != 0 && calls < PCR_COUNT; calls++) {
			uint32_t got = 0, k = 0;
			unsigned i;

			sel_to_tpml(sel, todo, &in);
			r = tss(t, "TPM2_PCR_Read", Esys_PCR_Read(t->esys, ESYS_TR_NONE,
			    ESYS_TR_NONE, ESYS_TR_NONE, &in, &counter, &out, &digests));
			if (r != 0) {
				goto out;
			}
			if (calls == 0) {
				first_counter = counter;
			} else if (counter != first_counter) {
				moved = true;
			}
			if (out->count == 1 && out->pcrSelections[0].hash == sel->bank) {
				for (i = 0; i < out->pcrSelections[0].sizeofSelect && i < 4; i++) {
					got |= (uint32_t)out->pcrSelections[0].pcrSelect[i] << (8 * i);
				}
			}
			/* The TPM must return a non-empty subset of what we asked. */
			if (got == 0 || (got & ~todo) != 0) {
				err_set(t, "TPM2_PCR_Read: unexpected selection 0x%x for 0x%x",
				    (unsigned)got, (unsigned)todo);
				r = -EIO;
				goto out;
			}
			for (i = 0; i < PCR_COUNT; i++) {
				if ((got & (1u << i)) == 0) {
					continue;
				}
				if (k >= digests->count || digests->digests[k].size != 32) {
					err_set(t, "TPM2_PCR_Read: malformed digest list");
					r = -EIO;
					goto out;
				}
				memcpy(vals[i], digests->digests[k].buffer, 32);
				k++;
			}
			todo &= ~got;
			Esys_Free(out);
			Esys_Free(digests);
			out = NULL;
			digests = NULL;
		}
		if (todo != 0) {
			err_set(t, "TPM2_PCR_Read: selection never completed");
			r = -EIO;
			goto out;
		}
		if (!moved) {
			r = 0;
			goto out;
		}
	}
	err_set(t, "TPM2_PCR_Read: PCRs kept changing while being read");
	r = -EAGAIN;
out:
	Esys_Free(out);
	Esys_Free(digests);
	return r;
}

int
tpm_pcr_digest(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t ret[32])
{
	uint8_t vals[PCR_COUNT][32];
	uint8_t md[32];
	EVP_MD_CTX *ctx = NULL;
	unsigned i, len = 0;
	int r;

	err_reset(t);
	if (!sel_valid(sel)) {
		return -EINVAL;
	}
	r = pcr_read_all(t, sel, vals);
	if (r != 0) {
		goto out;
	}
	ctx = EVP_MD_CTX_new();
	if (ctx == NULL || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < PCR_COUNT; i++) {
		if ((sel->mask & (1u << i)) != 0 && EVP_DigestUpdate(ctx, vals[i], 32) != 1) {
			r = -EIO;
			goto out;
		}
	}
	if (EVP_DigestFinal_ex(ctx, md, &len) != 1 || len != 32) {
		r = -EIO;
		goto out;
	}
	memcpy(ret, md, 32);
	r = 0;
out:
	EVP_MD_CTX_free(ctx);
	return r;
}

int
tpm_policy_pcr(const struct tpm_pcr_sel *sel, const uint8_t pcr_digest[32], uint8_t ret[32])
{
	/* policyDigest' = H(policyDigest || TPM_CC_PolicyPCR || pcrs || pcrDigest) */
	uint8_t buf[32 + 4 + sizeof(TPML_PCR_SELECTION) + 32];
	uint8_t md[32];
	TPML_PCR_SELECTION l;
	size_t off = 0;
	unsigned len = 0;

	if (!sel_valid(sel) || pcr_digest == NULL) {
		return -EINVAL;
	}
	memset(buf, 0, 32);
	off = 32;
	if (Tss2_MU_UINT32_Marshal(TPM2_CC_PolicyPCR, buf, sizeof(buf), &off) != 0) {
		return -EIO;
	}
	sel_to_tpml(sel, sel->mask, &l);
	if (Tss2_MU_TPML_PCR_SELECTION_Marshal(&l, buf, sizeof(buf), &off) != 0) {
		return -EIO;
	}
	if (off + 32 > sizeof(buf)) {
		return -EIO;
	}
	memcpy(buf + off, pcr_digest, 32);
	off += 32;
	if (EVP_Digest(buf, off, md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
		return -EIO;
	}
	memcpy(ret, md, 32);
	return 0;
}

static TPMT_SYM_DEF
session_aes128cfb(void)
{
	TPMT_SYM_DEF s;

	memset(&s, 0, sizeof(s));
	s.algorithm = TPM2_ALG_AES;
	s.keyBits.aes = 128;
	s.mode.aes = TPM2_ALG_CFB;
	return s;
}

int
tpm_policy_pcr_trial(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t ret[32])
{
	TPMT_SYM_DEF sym = session_aes128cfb();
	TPML_PCR_SELECTION l;
	TPM2B_DIGEST none = { .size = 0 }, *digest = NULL;
	ESYS_TR session = ESYS_TR_NONE;
	int r;

	err_reset(t);
	if (!sel_valid(sel)) {
		return -EINVAL;
	}
	r = tss(t, "TPM2_StartAuthSession", Esys_StartAuthSession(t->esys, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_TRIAL,
	    &sym, TPM2_ALG_SHA256, &session));
	if (r != 0) {
		session = ESYS_TR_NONE;
		goto out;
	}
	sel_to_tpml(sel, sel->mask, &l);
	r = tss(t, "TPM2_PolicyPCR", Esys_PolicyPCR(t->esys, session, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, &none, &l));
	if (r != 0) {
		goto out;
	}
	r = tss(t, "TPM2_PolicyGetDigest", Esys_PolicyGetDigest(t->esys, session,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, &digest));
	if (r != 0) {
		goto out;
	}
	if (digest->size != 32) {
		err_set(t, "TPM2_PolicyGetDigest: %u bytes, expected 32", (unsigned)digest->size);
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	if (session != ESYS_TR_NONE) {
		int r2 = tss(t, "TPM2_FlushContext", Esys_FlushContext(t->esys, session));

		if (r == 0) {
			r = r2;
		}
	}
	/* Only now: a failed flush is a failure too, and ret is written on
	 * success only. */
	if (r == 0) {
		memcpy(ret, digest->buffer, 32);
	}
	Esys_Free(digest);
	return r;
}

int
tpm_pcr_extend(struct tpm *t, unsigned index, const uint8_t digest[32])
{
	TPML_DIGEST_VALUES v;

	err_reset(t);
	if (index >= PCR_COUNT || digest == NULL) {
		return -EINVAL;
	}
	memset(&v, 0, sizeof(v));
	v.count = 1;
	v.digests[0].hashAlg = TPM2_ALG_SHA256;
	memcpy(v.digests[0].digest.sha256, digest, 32);
	return tss(t, "TPM2_PCR_Extend", Esys_PCR_Extend(t->esys, ESYS_TR_PCR0 + index,
	    ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &v));
}

/* ---- SRK ------------------------------------------------------------- */

static TPM2B_PUBLIC
srk_template(void)
{
	TPM2B_PUBLIC p;
	TPMT_PUBLIC *a = &p.publicArea;

	memset(&p, 0, sizeof(p));
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = SRK_ATTRS;
	a->parameters.eccDetail.symmetric.algorithm = TPM2_ALG_AES;
	a->parameters.eccDetail.symmetric.keyBits.aes = 128;
	a->parameters.eccDetail.symmetric.mode.aes = TPM2_ALG_CFB;
	a->parameters.eccDetail.scheme.scheme = TPM2_ALG_NULL;
	a->parameters.eccDetail.curveID = TPM2_ECC_NIST_P256;
	a->parameters.eccDetail.kdf.scheme = TPM2_ALG_NULL;
	return p;
}

static bool
srk_public_ok(const TPMT_PUBLIC *a)
{
	const TPMS_ECC_PARMS *e = &a->parameters.eccDetail;

	return a->type == TPM2_ALG_ECC && a->nameAlg == TPM2_ALG_SHA256 &&
	    (a->objectAttributes & SRK_REQUIRED) == SRK_REQUIRED &&
	    (a->objectAttributes & TPMA_OBJECT_SIGN_ENCRYPT) == 0 &&
	    e->symmetric.algorithm == TPM2_ALG_AES && e->symmetric.keyBits.aes == 128 &&
	    e->symmetric.mode.aes == TPM2_ALG_CFB && e->scheme.scheme == TPM2_ALG_NULL &&
	    e->curveID == TPM2_ECC_NIST_P256 && e->kdf.scheme == TPM2_ALG_NULL;
}

/* An ESYS_TR for the persistent handle TPM_SRK_HANDLE: ESAPI reads its
 * public area (one TPM2_ReadPublic) and keeps it for salting sessions. */
static int
srk_tr(struct tpm *t, ESYS_TR *ret)
{
	ESYS_TR srk = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	rc = Esys_TR_FromTPMPublic(t->esys, TPM_SRK_HANDLE, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &srk);
	r = tss(t, "TPM2_ReadPublic(0x81000001)", rc);
	if (r != 0) {
		if (rc_is(rc, TPM2_RC_HANDLE)) {
			err_set(t, "TPM2_ReadPublic(0x%08x): no object at that handle "
			    "(never provisioned, or the TPM was cleared)", TPM_SRK_HANDLE);
			r = -ENOENT;
		}
		return r;
	}
	*ret = srk;
	return 0;
}

/* The tag of a key in a serialised ESYS_TR (IESYSC_KEY_RSRC in tpm2-tss's
 * esys_types.h; the format tpm2-tools stores as .tr files). */
#define ESYS_SERIAL_KEY_RSRC 1u

/* The public area and the name ESAPI holds for tr. ESAPI takes both from the
 * TPM's ReadPublic answer and encrypts session salts to that public area,
 * but never checks that the name is the hash of it (tpm2-tss 3.2.1, still
 * so in 4.x). An answer forged on the way from the TPM could pair the
 * provisioned SRK's name with a key whose private part the forger holds,
 * and the name check alone would pass. So the name is computed here from
 * the public area ESAPI will use, and ESAPI's copy must be the same. */
static int
tr_key_public(struct tpm *t, ESYS_TR tr, uint32_t handle, TPM2B_PUBLIC *ret_pub,
    uint8_t *ret_name, size_t *ret_name_len)
{
	uint8_t *ser = NULL, md[32];
	size_t ser_len = 0, off = 0, pub_start;
	TPM2_HANDLE h = 0;
	TPM2B_NAME held;
	TPM2B_PUBLIC pub;
	UINT32 type = 0;
	unsigned len = 0;
	int r;

	memset(&held, 0, sizeof(held));
	memset(&pub, 0, sizeof(pub));
	r = tss_local(t, "Esys_TR_Serialize", Esys_TR_Serialize(t->esys, tr, &ser, &ser_len));
	if (r != 0) {
		ser = NULL;
		goto out;
	}
	if (Tss2_MU_TPM2_HANDLE_Unmarshal(ser, ser_len, &off, &h) != 0 ||
	    Tss2_MU_TPM2B_NAME_Unmarshal(ser, ser_len, &off, &held) != 0 ||
	    Tss2_MU_UINT32_Unmarshal(ser, ser_len, &off, &type) != 0 ||
	    h != handle || type != ESYS_SERIAL_KEY_RSRC) {
		err_set(t, "Esys_TR_Serialize(0x%08x): not a key object", handle);
		r = -EIO;
		goto out;
	}
	pub_start = off;
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(ser, ser_len, &off, &pub) != 0 ||
	    off != ser_len || off - pub_start < 2) {
		err_set(t, "Esys_TR_Serialize(0x%08x): malformed public area", handle);
		r = -EIO;
		goto out;
	}
	/* The name hashes the marshalled TPMT_PUBLIC (after the TPM2B size). */
	if (pub.publicArea.nameAlg != TPM2_ALG_SHA256 ||
	    EVP_Digest(ser + pub_start + 2, off - pub_start - 2, md, &len, EVP_sha256(),
	    NULL) != 1 || len != 32 || held.size != 34 ||
	    held.name[0] != (uint8_t)(TPM2_ALG_SHA256 >> 8) ||
	    held.name[1] != (uint8_t)(TPM2_ALG_SHA256 & 0xff) ||
	    CRYPTO_memcmp(held.name + 2, md, 32) != 0) {
		err_set(t, "TPM2_ReadPublic(0x%08x): the name in the answer is not the "
		    "sha256 name of the public area in it", handle);
		r = -EBADMSG;
		goto out;
	}
	*ret_pub = pub;
	memcpy(ret_name, held.name, held.size);
	*ret_name_len = held.size;
	r = 0;
out:
	Esys_Free(ser);
	return r;
}

/* An ESYS_TR for the persistent SRK, after checking what it is. The caller
 * releases it with Esys_TR_Close (never flush a persistent handle). The
 * name handed back is the hash of the public area ESAPI salts sessions
 * with (tr_key_public). */
static int
srk_open(struct tpm *t, ESYS_TR *ret, uint8_t *ret_name, size_t *ret_name_len)
{
	ESYS_TR srk = ESYS_TR_NONE;
	TPM2B_PUBLIC pub;
	uint8_t name[TPM_NAME_MAX];
	size_t name_len = 0;
	int r;

	r = srk_tr(t, &srk);
	if (r != 0) {
		goto out;
	}
	r = tr_key_public(t, srk, TPM_SRK_HANDLE, &pub, name, &name_len);
	if (r != 0) {
		goto out;
	}
	if (!srk_public_ok(&pub.publicArea)) {
		err_set(t, "persistent handle 0x%08x is not an ECC P-256 storage key "
		    "(restricted decrypt, AES-128-CFB, sha256)", TPM_SRK_HANDLE);
		r = -EBADMSG;
		goto out;
	}
	if (ret_name != NULL) {
		memcpy(ret_name, name, name_len);
		*ret_name_len = name_len;
	}
	*ret = srk;
	srk = ESYS_TR_NONE;
	r = 0;
out:
	if (srk != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &srk);
	}
	return r;
}

static int
srk_create(struct tpm *t)
{
	TPM2B_PUBLIC tmpl = srk_template();
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside = { .size = 0 };
	TPML_PCR_SELECTION creation_pcr = { .count = 0 };
	TPM2B_PUBLIC *out_pub = NULL;
	TPM2B_CREATION_DATA *cdata = NULL;
	TPM2B_DIGEST *chash = NULL;
	TPMT_TK_CREATION *ticket = NULL;
	ESYS_TR primary = ESYS_TR_NONE, persistent = ESYS_TR_NONE;
	TSS2_RC rc;
	int r, r2;

	memset(&sens, 0, sizeof(sens));
	r = tss(t, "TPM2_CreatePrimary(owner)", Esys_CreatePrimary(t->esys,
	    ESYS_TR_RH_OWNER, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE, &sens, &tmpl,
	    &outside, &creation_pcr, &primary, &out_pub, &cdata, &chash, &ticket));
	if (r != 0) {
		primary = ESYS_TR_NONE;
		goto out;
	}
	rc = Esys_EvictControl(t->esys, ESYS_TR_RH_OWNER, primary, ESYS_TR_PASSWORD,
	    ESYS_TR_NONE, ESYS_TR_NONE, TPM_SRK_HANDLE, &persistent);
	r = tss(t, "TPM2_EvictControl(0x81000001)", rc);
	if (r != 0) {
		persistent = ESYS_TR_NONE;
		/* Someone else persisted a key there meanwhile. */
		if (rc_is(rc, TPM2_RC_NV_DEFINED)) {
			r = -EEXIST;
		}
		goto out;
	}
	r = 0;
out:
	Esys_Free(out_pub);
	Esys_Free(cdata);
	Esys_Free(chash);
	Esys_Free(ticket);
	if (persistent != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &persistent);
	}
	if (primary != ESYS_TR_NONE) {
		r2 = tss(t, "TPM2_FlushContext", Esys_FlushContext(t->esys, primary));
		if (r == 0) {
			r = r2;
		}
	}
	return r;
}

int
tpm_srk_ensure(struct tpm *t, bool create, uint8_t *ret_name, size_t *ret_name_len)
{
	uint8_t name[TPM_NAME_MAX];
	size_t name_len = 0;
	ESYS_TR srk = ESYS_TR_NONE;
	int r;

	err_reset(t);
	r = srk_open(t, &srk, name, &name_len);
	if (r == -ENOENT && create) {
		err_reset(t);
		r = srk_create(t);
		if (r != 0) {
			goto out;
		}
		r = srk_open(t, &srk, name, &name_len);
	}
	if (r != 0) {
		goto out;
	}
	if (ret_name != NULL) {
		memcpy(ret_name, name, name_len);
		*ret_name_len = name_len;
	}
out:
	if (srk != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &srk);
	}
	return r;
}

/* ---- blobs ----------------------------------------------------------- */

static int
blob_unmarshal_public(const struct tpm_blob *b, TPM2B_PUBLIC *ret)
{
	TPM2B_PUBLIC p;
	size_t off = 0;

	if (b == NULL || b->pub_len < 2 || b->pub_len > TPM_BLOB_MAX) {
		return -EBADMSG;
	}
	memset(&p, 0, sizeof(p));
	if (Tss2_MU_TPM2B_PUBLIC_Unmarshal(b->pub, b->pub_len, &off, &p) != 0 ||
	    off != b->pub_len) {
		return -EBADMSG;
	}
	*ret = p;
	return 0;
}

static int
blob_unmarshal_private(const struct tpm_blob *b, TPM2B_PRIVATE *ret)
{
	TPM2B_PRIVATE p;
	size_t off = 0;

	if (b == NULL || b->priv_len < 2 || b->priv_len > TPM_BLOB_MAX) {
		return -EBADMSG;
	}
	memset(&p, 0, sizeof(p));
	if (Tss2_MU_TPM2B_PRIVATE_Unmarshal(b->priv, b->priv_len, &off, &p) != 0 ||
	    off != b->priv_len) {
		return -EBADMSG;
	}
	*ret = p;
	return 0;
}

static int
blob_marshal(const TPM2B_PUBLIC *pub, const TPM2B_PRIVATE *priv, struct tpm_blob *ret)
{
	struct tpm_blob b;
	size_t off = 0;

	memset(&b, 0, sizeof(b));
	if (Tss2_MU_TPM2B_PUBLIC_Marshal(pub, b.pub, sizeof(b.pub), &off) != 0) {
		return -EOVERFLOW;
	}
	b.pub_len = off;
	off = 0;
	if (Tss2_MU_TPM2B_PRIVATE_Marshal(priv, b.priv, sizeof(b.priv), &off) != 0) {
		return -EOVERFLOW;
	}
	b.priv_len = off;
	*ret = b;
	return 0;
}

int
tpm_blob_name(const struct tpm_blob *b, uint8_t *ret_name, size_t *ret_name_len)
{
	TPM2B_PUBLIC p;
	uint8_t md[32];
	unsigned len = 0;
	int r;

	r = blob_unmarshal_public(b, &p);
	if (r != 0) {
		return r;
	}
	if (p.publicArea.nameAlg != TPM2_ALG_SHA256) {
		return -EBADMSG;
	}
	/* The name hashes the marshalled TPMT_PUBLIC exactly as the TPM sent
	 * it: the bytes after the TPM2B's 2-byte size. */
	if (EVP_Digest(b->pub + 2, b->pub_len - 2, md, &len, EVP_sha256(), NULL) != 1 ||
	    len != 32) {
		return -EIO;
	}
	ret_name[0] = (uint8_t)(TPM2_ALG_SHA256 >> 8);
	ret_name[1] = (uint8_t)(TPM2_ALG_SHA256 & 0xff);
	memcpy(ret_name + 2, md, 32);
	*ret_name_len = 34;
	return 0;
}

int
tpm_blob_auth_policy(const struct tpm_blob *b, uint8_t ret[32])
{
	TPM2B_PUBLIC p;
	int r;

	r = blob_unmarshal_public(b, &p);
	if (r != 0) {
		return r;
	}
	if (p.publicArea.authPolicy.size != 32) {
		return -EBADMSG;
	}
	memcpy(ret, p.publicArea.authPolicy.buffer, 32);
	return 0;
}

int
tpm_blob_ecc_point(const struct tpm_blob *b, uint8_t ret[65])
{
	TPM2B_PUBLIC p;
	const TPMS_ECC_POINT *pt;
	int r;

	r = blob_unmarshal_public(b, &p);
	if (r != 0) {
		return r;
	}
	pt = &p.publicArea.unique.ecc;
	if (p.publicArea.type != TPM2_ALG_ECC ||
	    p.publicArea.parameters.eccDetail.curveID != TPM2_ECC_NIST_P256 ||
	    pt->x.size != 32 || pt->y.size != 32) {
		return -EBADMSG;
	}
	ret[0] = 0x04;   /* uncompressed point */
	memcpy(ret + 1, pt->x.buffer, 32);
	memcpy(ret + 33, pt->y.buffer, 32);
	return 0;
}

/* A root blob must be what tpm_create_root_key makes: a TPM-generated
 * HMAC-SHA256 key behind a policy. Anything else (say a key whose value
 * someone chose, or one usable with its password) is refused before use. */
static bool
root_public_ok(const TPMT_PUBLIC *a)
{
	const TPMT_KEYEDHASH_SCHEME *s = &a->parameters.keyedHashDetail.scheme;

	return a->type == TPM2_ALG_KEYEDHASH && a->nameAlg == TPM2_ALG_SHA256 &&
	    a->objectAttributes == ROOT_ATTRS && a->authPolicy.size == 32 &&
	    s->scheme == TPM2_ALG_HMAC && s->details.hmac.hashAlg == TPM2_ALG_SHA256;
}

/* ---- key creation ---------------------------------------------------- */

static int
create_under_srk(struct tpm *t, const TPM2B_PUBLIC *tmpl, const char *what,
    struct tpm_blob *ret)
{
	TPM2B_SENSITIVE_CREATE sens;
	TPM2B_DATA outside = { .size = 0 };
	TPML_PCR_SELECTION creation_pcr = { .count = 0 };
	TPM2B_PRIVATE *out_priv = NULL;
	TPM2B_PUBLIC *out_pub = NULL;
	TPM2B_CREATION_DATA *cdata = NULL;
	TPM2B_DIGEST *chash = NULL;
	TPMT_TK_CREATION *ticket = NULL;
	ESYS_TR srk = ESYS_TR_NONE;
	struct tpm_blob b;
	int r;

	memset(&sens, 0, sizeof(sens));
	r = srk_open(t, &srk, NULL, NULL);
	if (r != 0) {
		goto out;
	}
	r = tss(t, what, Esys_Create(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, &sens, tmpl, &outside, &creation_pcr, &out_priv, &out_pub,
	    &cdata, &chash, &ticket));
	if (r != 0) {
		goto out;
	}
	r = blob_marshal(out_pub, out_priv, &b);
	if (r != 0) {
		err_set(t, "%s: returned blob larger than %d bytes", what, TPM_BLOB_MAX);
		goto out;
	}
	*ret = b;
	r = 0;
out:
	Esys_Free(out_priv);
	Esys_Free(out_pub);
	Esys_Free(cdata);
	Esys_Free(chash);
	Esys_Free(ticket);
	if (srk != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &srk);
	}
	return r;
}

int
tpm_create_root_key(struct tpm *t, const struct tpm_pcr_sel *sel,
    struct tpm_blob *ret, uint8_t ret_policy[32])
{
	TPM2B_PUBLIC tmpl;
	TPMT_PUBLIC *a = &tmpl.publicArea;
	uint8_t pcr_digest[32], policy[32], trial[32];
	struct tpm_blob b;
	int r;

	err_reset(t);
	if (!sel_valid(sel)) {
		return -EINVAL;
	}
	r = tpm_pcr_digest(t, sel, pcr_digest);
	if (r != 0) {
		return r;
	}
	r = tpm_policy_pcr(sel, pcr_digest, policy);
	if (r != 0) {
		return r;
	}
	/* The TPM's own computation must agree with ours, or the key would
	 * be sealed to a policy nobody can satisfy. */
	r = tpm_policy_pcr_trial(t, sel, trial);
	if (r != 0) {
		return r;
	}
	if (CRYPTO_memcmp(policy, trial, 32) != 0) {
		err_set(t, "PolicyPCR digest differs between software and the TPM's trial "
		    "session (did the PCRs change meanwhile?)");
		return -EAGAIN;
	}
	memset(&tmpl, 0, sizeof(tmpl));
	a->type = TPM2_ALG_KEYEDHASH;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = ROOT_ATTRS;
	a->authPolicy.size = 32;
	memcpy(a->authPolicy.buffer, policy, 32);
	a->parameters.keyedHashDetail.scheme.scheme = TPM2_ALG_HMAC;
	a->parameters.keyedHashDetail.scheme.details.hmac.hashAlg = TPM2_ALG_SHA256;
	r = create_under_srk(t, &tmpl, "TPM2_Create(root key)", &b);
	if (r != 0) {
		return r;
	}
	*ret = b;
	memcpy(ret_policy, policy, 32);
	return 0;
}

int
tpm_create_ak(struct tpm *t, struct tpm_blob *ret)
{
	TPM2B_PUBLIC tmpl;
	TPMT_PUBLIC *a = &tmpl.publicArea;
	TPMS_ECC_PARMS *e = &a->parameters.eccDetail;

	err_reset(t);
	memset(&tmpl, 0, sizeof(tmpl));
	a->type = TPM2_ALG_ECC;
	a->nameAlg = TPM2_ALG_SHA256;
	a->objectAttributes = AK_ATTRS;
	e->symmetric.algorithm = TPM2_ALG_NULL;
	e->scheme.scheme = TPM2_ALG_ECDSA;
	e->scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	e->curveID = TPM2_ECC_NIST_P256;
	e->kdf.scheme = TPM2_ALG_NULL;
	return create_under_srk(t, &tmpl, "TPM2_Create(attestation key)", ret);
}

/* Open the persistent SRK, check it is the provisioned one, and load a
 * blob under it. srk_open names the SRK by the hash of the public area
 * tpm2-tss will use, so a key swapped in at 0x81000001 (or a forged
 * ReadPublic answer) cannot receive a session salt or wrap our blobs.
 * On success *ret_srk must be closed and *ret_key flushed by the caller;
 * on failure neither is set. */
static int
load_under_srk(struct tpm *t, const uint8_t *srk_name, size_t srk_name_len,
    const TPM2B_PRIVATE *priv, const TPM2B_PUBLIC *pub, const char *what,
    ESYS_TR *ret_srk, ESYS_TR *ret_key)
{
	uint8_t name[TPM_NAME_MAX];
	size_t name_len = 0;
	ESYS_TR srk = ESYS_TR_NONE, key = ESYS_TR_NONE;
	TSS2_RC rc;
	int r;

	r = srk_open(t, &srk, name, &name_len);
	if (r != 0) {
		return r;
	}
	if (name_len != srk_name_len || CRYPTO_memcmp(name, srk_name, srk_name_len) != 0) {
		err_set(t, "the SRK at 0x%08x is not the provisioned one (name differs)",
		    TPM_SRK_HANDLE);
		r = -EBADMSG;
		goto out;
	}
	rc = Esys_Load(t->esys, srk, ESYS_TR_PASSWORD, ESYS_TR_NONE, ESYS_TR_NONE,
	    priv, pub, &key);
	r = tss(t, what, rc);
	if (r != 0) {
		/* A parameter error: a blob this SRK did not wrap, or a damaged one. */
		if (rc_is_tpm_layer(rc) && (rc & TPM2_RC_FMT1) != 0 && (rc & TPM2_RC_P) != 0) {
			r = -EBADMSG;
		}
		goto out;
	}
	*ret_srk = srk;
	*ret_key = key;
	srk = ESYS_TR_NONE;
out:
	if (srk != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &srk);
	}
	return r;
}

/* ---- root HMAC ------------------------------------------------------- */

int
tpm_root_hmac(struct tpm *t, const uint8_t *srk_name, size_t srk_name_len,
    const struct tpm_blob *root, const struct tpm_pcr_sel *sel,
    const uint8_t *msg, size_t msg_len, uint8_t ret[32])
{
	TPMT_SYM_DEF sym = session_aes128cfb();
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
	TPM2B_DIGEST none = { .size = 0 }, *mac = NULL;
	TPM2B_MAX_BUFFER buf;
	TPML_PCR_SELECTION l;
	ESYS_TR srk = ESYS_TR_NONE, key = ESYS_TR_NONE, session = ESYS_TR_NONE;
	int r, r2;

	err_reset(t);
	if (srk_name == NULL || root == NULL || !sel_valid(sel) || ret == NULL ||
	    (msg == NULL && msg_len != 0) || msg_len > sizeof(buf.buffer)) {
		return -EINVAL;
	}
	if (blob_unmarshal_public(root, &pub) != 0 || blob_unmarshal_private(root, &priv) != 0) {
		err_set(t, "root key blob does not unmarshal");
		return -EBADMSG;
	}
	if (!root_public_ok(&pub.publicArea)) {
		err_set(t, "root key blob is not a policy-only HMAC-SHA256 key");
		return -EBADMSG;
	}

	r = load_under_srk(t, srk_name, srk_name_len, &priv, &pub, "TPM2_Load(root key)",
	    &srk, &key);
	if (r != 0) {
		goto out;
	}

	r = tss(t, "TPM2_StartAuthSession", Esys_StartAuthSession(t->esys, srk, srk,
	    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, NULL, TPM2_SE_POLICY, &sym,
	    TPM2_ALG_SHA256, &session));
	if (r != 0) {
		session = ESYS_TR_NONE;
		goto out;
	}
	/* continueSession stays set: the session is flushed explicitly below,
	 * on every path. ENCRYPT: the HMAC leaves the TPM encrypted. */
	r = tss_local(t, "Esys_TRSess_SetAttributes", Esys_TRSess_SetAttributes(t->esys,
	    session, TPMA_SESSION_CONTINUESESSION | TPMA_SESSION_ENCRYPT, 0xff));
	if (r != 0) {
		goto out;
	}

	sel_to_tpml(sel, sel->mask, &l);
	r = tss(t, "TPM2_PolicyPCR", Esys_PolicyPCR(t->esys, session, ESYS_TR_NONE,
	    ESYS_TR_NONE, ESYS_TR_NONE, &none, &l));
	if (r != 0) {
		goto out;
	}

	buf.size = (UINT16)msg_len;
	if (msg_len > 0) {
		memcpy(buf.buffer, msg, msg_len);
	}
	r = tss(t, "TPM2_HMAC", Esys_HMAC(t->esys, key, session, ESYS_TR_NONE, ESYS_TR_NONE,
	    &buf, TPM2_ALG_SHA256, &mac));
	if (r != 0) {
		mac = NULL;
		goto out;
	}
	if (mac->size != 32) {
		err_set(t, "TPM2_HMAC: %u bytes, expected 32", (unsigned)mac->size);
		r = -EIO;
		goto out;
	}
	r = 0;
out:
	OPENSSL_cleanse(buf.buffer, sizeof(buf.buffer));
	if (session != ESYS_TR_NONE) {
		r2 = tss(t, "TPM2_FlushContext(session)", Esys_FlushContext(t->esys, session));
		if (r == 0) {
			r = r2;
		}
	}
	if (key != ESYS_TR_NONE) {
		r2 = tss(t, "TPM2_FlushContext(root key)", Esys_FlushContext(t->esys, key));
		if (r == 0) {
			r = r2;
		}
	}
	if (srk != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &srk);
	}
	/* Handed over only when every flush worked too. */
	if (r == 0) {
		memcpy(ret, mac->buffer, 32);
	}
	if (mac != NULL) {
		OPENSSL_cleanse(mac->buffer, sizeof(mac->buffer));
		Esys_Free(mac);
	}
	return r;
}

/* ---- handles --------------------------------------------------------- */

/* Count the handles GetCapability(TPM_CAP_HANDLES) lists from first on
 * whose type byte is one of types (a loaded session's handle is 0x02...
 * for an HMAC session, 0x03... for a policy session). */
static int
count_handles(struct tpm *t, uint32_t first, uint8_t type1, uint8_t type2, unsigned *ret)
{
	TPMS_CAPABILITY_DATA *cap = NULL;
	TPMI_YES_NO more = TPM2_YES;
	uint32_t prop = first, i;
	unsigned n = 0;
	int r = 0, rounds;

	for (rounds = 0; more == TPM2_YES && rounds < 64; rounds++) {
		TPML_HANDLE *h;
		bool others = false;

		r = tss(t, "TPM2_GetCapability(handles)", Esys_GetCapability(t->esys,
		    ESYS_TR_NONE, ESYS_TR_NONE, ESYS_TR_NONE, TPM2_CAP_HANDLES, prop,
		    TPM2_MAX_CAP_HANDLES, &more, &cap));
		if (r != 0) {
			goto out;
		}
		h = &cap->data.handles;
		if (cap->capability != TPM2_CAP_HANDLES || h->count > TPM2_MAX_CAP_HANDLES) {
			err_set(t, "TPM2_GetCapability(handles): malformed answer");
			r = -EIO;
			goto out;
		}
		if (h->count == 0) {
			break;
		}
		for (i = 0; i < h->count; i++) {
			uint8_t type = (uint8_t)(h->handle[i] >> 24);

			if (type == type1 || type == type2) {
				n++;
			} else {
				others = true;
			}
		}
		prop = h->handle[h->count - 1] + 1;
		Esys_Free(cap);
		cap = NULL;
		/* The list ran on past the range asked for. */
		if (others) {
			break;
		}
	}
	*ret = n;
	r = 0;
out:
	Esys_Free(cap);
	return r;
}

int
tpm_count_transients(struct tpm *t, unsigned *ret_objects, unsigned *ret_sessions)
{
	unsigned objects = 0, sessions = 0;
	int r;

	err_reset(t);
	/* Spelled out: tss2's TPM2_TRANSIENT_FIRST shifts 0x80 into the sign
	 * bit of an int, which is undefined behaviour. */
	r = count_handles(t, (TPM2_HANDLE)0x80000000u, TPM2_HT_TRANSIENT, TPM2_HT_TRANSIENT,
	    &objects);
	if (r != 0) {
		return r;
	}
	r = count_handles(t, TPM2_LOADED_SESSION_FIRST, TPM2_HT_HMAC_SESSION,
	    TPM2_HT_POLICY_SESSION, &sessions);
	if (r != 0) {
		return r;
	}
	*ret_objects = objects;
	*ret_sessions = sessions;
	return 0;
}

/* ---- quotes ---------------------------------------------------------- */

_Static_assert(sizeof(((TPM2B_ATTEST *)0)->attestationData) <= TPM_ATTEST_MAX,
    "TPM_ATTEST_MAX holds a TPMS_ATTEST");
_Static_assert(sizeof(((TPM2B_DATA *)0)->buffer) >= TPM_NONCE_MAX,
    "TPM_NONCE_MAX fits qualifyingData");

/* An AK blob must be what tpm_create_ak makes: a restricted ECDSA-SHA256
 * P-256 signing key generated by the TPM, so that its quotes can only sign
 * TPM-generated structures. */
static bool
ak_public_ok(const TPMT_PUBLIC *a)
{
	const TPMS_ECC_PARMS *e = &a->parameters.eccDetail;

	return a->type == TPM2_ALG_ECC && a->nameAlg == TPM2_ALG_SHA256 &&
	    a->objectAttributes == AK_ATTRS && e->symmetric.algorithm == TPM2_ALG_NULL &&
	    e->scheme.scheme == TPM2_ALG_ECDSA &&
	    e->scheme.details.ecdsa.hashAlg == TPM2_ALG_SHA256 &&
	    e->curveID == TPM2_ECC_NIST_P256 && e->kdf.scheme == TPM2_ALG_NULL;
}

int
tpm_pcr_read_values(struct tpm *t, const struct tpm_pcr_sel *sel, uint8_t ret[24][32])
{
	uint8_t vals[PCR_COUNT][32];
	unsigned i;
	int r;

	err_reset(t);
	if (!sel_valid(sel) || ret == NULL) {
		return -EINVAL;
	}
	r = pcr_read_all(t, sel, vals);
	if (r != 0) {
		return r;
	}
	for (i = 0; i < PCR_COUNT; i++) {
		if ((sel->mask & (1u << i)) != 0) {
			memcpy(ret[i], vals[i], 32);
		}
	}
	return 0;
}

int
tpm_reset_count(struct tpm *t, uint32_t *ret)
{
	TPMS_TIME_INFO *info = NULL;
	int r;

	err_reset(t);
	if (ret == NULL) {
		return -EINVAL;
	}
	r = tss(t, "TPM2_ReadClock", Esys_ReadClock(t->esys, ESYS_TR_NONE, ESYS_TR_NONE,
	    ESYS_TR_NONE, &info));
	if (r != 0) {
		goto out;
	}
	*ret = info->clockInfo.resetCount;
out:
	Esys_Free(info);
	return r;
}

/* SHA-256 over the selected values, in index order: what a quote's
 * pcrDigest must be for these values. */
static int
values_digest(const struct tpm_pcr_sel *sel, uint8_t vals[PCR_COUNT][32], uint8_t ret[32])
{
	uint8_t buf[PCR_COUNT * 32];
	size_t n = 0;
	unsigned i, len = 0;

	for (i = 0; i < PCR_COUNT; i++) {
		if ((sel->mask & (1u << i)) != 0) {
			memcpy(buf + n, vals[i], 32);
			n += 32;
		}
	}
	if (EVP_Digest(buf, n, ret, &len, EVP_sha256(), NULL) != 1 || len != 32) {
		return -EIO;
	}
	return 0;
}

/* One TPM2_Quote with the loaded AK; the attestation bytes, the marshalled
 * signature and the quote's pcrDigest. */
static int
quote_once(struct tpm *t, ESYS_TR ak, const TPM2B_DATA *qualifying,
    const TPML_PCR_SELECTION *l, struct tpm_quote *q, uint8_t ret_pcr_digest[32])
{
	TPMT_SIG_SCHEME scheme;
	TPM2B_ATTEST *quoted = NULL;
	TPMT_SIGNATURE *sig = NULL;
	TPMS_ATTEST a;
	size_t off = 0;
	int r;

	memset(&scheme, 0, sizeof(scheme));
	scheme.scheme = TPM2_ALG_ECDSA;
	scheme.details.ecdsa.hashAlg = TPM2_ALG_SHA256;
	r = tss(t, "TPM2_Quote", Esys_Quote(t->esys, ak, ESYS_TR_PASSWORD, ESYS_TR_NONE,
	    ESYS_TR_NONE, qualifying, &scheme, l, &quoted, &sig));
	if (r != 0) {
		quoted = NULL;
		sig = NULL;
		goto out;
	}
	memset(&a, 0, sizeof(a));
	if (quoted->size == 0 || quoted->size > sizeof(q->attest) ||
	    Tss2_MU_TPMS_ATTEST_Unmarshal(quoted->attestationData, quoted->size, &off,
	    &a) != 0 || off != quoted->size || a.type != TPM2_ST_ATTEST_QUOTE ||
	    a.attested.quote.pcrDigest.size != 32) {
		err_set(t, "TPM2_Quote: the attestation structure is not a sha256 quote");
		r = -EIO;
		goto out;
	}
	off = 0;
	if (Tss2_MU_TPMT_SIGNATURE_Marshal(sig, q->sig, sizeof(q->sig), &off) != 0) {
		err_set(t, "TPM2_Quote: the signature does not marshal in %d bytes",
		    TPM_SIGNATURE_MAX);
		r = -EIO;
		goto out;
	}
	q->sig_len = off;
	/* Exactly the bytes the TPM signed, without the TPM2B size. */
	memcpy(q->attest, quoted->attestationData, quoted->size);
	q->attest_len = quoted->size;
	memcpy(ret_pcr_digest, a.attested.quote.pcrDigest.buffer, 32);
	r = 0;
out:
	Esys_Free(quoted);
	Esys_Free(sig);
	return r;
}

int
tpm_quote(struct tpm *t, const uint8_t *srk_name, size_t srk_name_len,
    const struct tpm_blob *ak, const struct tpm_pcr_sel *sel, const uint8_t *nonce,
    size_t nonce_len, struct tpm_quote *ret)
{
	struct tpm_quote *q = NULL;
	TPM2B_PUBLIC pub;
	TPM2B_PRIVATE priv;
	TPM2B_DATA qualifying;
	TPML_PCR_SELECTION l;
	uint8_t quoted_digest[32], read_digest[32];
	uint8_t vals[PCR_COUNT][32];
	ESYS_TR srk = ESYS_TR_NONE, key = ESYS_TR_NONE;
	int r, r2, tries;

	err_reset(t);
	if (srk_name == NULL || ak == NULL || !sel_valid(sel) || ret == NULL ||
	    (nonce == NULL && nonce_len != 0) || nonce_len > TPM_NONCE_MAX) {
		return -EINVAL;
	}
	if (blob_unmarshal_public(ak, &pub) != 0 || blob_unmarshal_private(ak, &priv) != 0) {
		err_set(t, "attestation key blob does not unmarshal");
		return -EBADMSG;
	}
	if (!ak_public_ok(&pub.publicArea)) {
		err_set(t, "attestation key blob is not a restricted ECDSA-SHA256 P-256 key");
		return -EBADMSG;
	}
	q = calloc(1, sizeof(*q));
	if (q == NULL) {
		return -ENOMEM;
	}

	r = load_under_srk(t, srk_name, srk_name_len, &priv, &pub,
	    "TPM2_Load(attestation key)", &srk, &key);
	if (r != 0) {
		goto out;
	}

	memset(&qualifying, 0, sizeof(qualifying));
	qualifying.size = (UINT16)nonce_len;
	if (nonce_len > 0) {
		memcpy(qualifying.buffer, nonce, nonce_len);
	}
	sel_to_tpml(sel, sel->mask, &l);
	/* The values handed back must be the quoted ones: read them after
	 * the quote and compare with its pcrDigest; if an extend came in
	 * between, quote again. */
	for (tries = 0; tries < PCR_READ_TRIES; tries++) {
		r = quote_once(t, key, &qualifying, &l, q, quoted_digest);
		if (r != 0) {
			goto out;
		}
		r = pcr_read_all(t, sel, vals);
		if (r != 0) {
			goto out;
		}
		r = values_digest(sel, vals, read_digest);
		if (r != 0) {
			goto out;
		}
		if (CRYPTO_memcmp(quoted_digest, read_digest, 32) == 0) {
			break;
		}
	}
	if (tries == PCR_READ_TRIES) {
		err_set(t, "TPM2_Quote: the PCRs kept changing while being quoted");
		r = -EAGAIN;
		goto out;
	}
	memcpy(q->pcrs, vals, sizeof(q->pcrs));
	r = 0;
out:
	if (key != ESYS_TR_NONE) {
		r2 = tss(t, "TPM2_FlushContext(attestation key)", Esys_FlushContext(t->esys, key));
		if (r == 0) {
			r = r2;
		}
	}
	if (srk != ESYS_TR_NONE) {
		(void)Esys_TR_Close(t->esys, &srk);
	}
	/* Handed over only when the flush worked too. */
	if (r == 0) {
		memcpy(ret, q, sizeof(*q));
	}
	free(q);
	return r;
}
