#include "keyring.h"

#include <errno.h>
#include <openssl/crypto.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "parse.h"
#include "secmem.h"

#define LABEL_EPOCH  "warrant/v1/epoch"
#define LABEL_AUD    "warrant/v1/aud"
#define LABEL_STRICT "warrant/v1/strict"

struct slot {
	uint64_t epoch;
	uint64_t last_use;     /* LRU stamp: the table is a cache of TPM results */
	uint32_t gen;
	uint32_t used;
	uint8_t key[TOKEN_KEY_LEN];
};

struct keyring {
	struct keyring_backend be;
	struct tpm *tpm;                 /* the default backend's context */
	char *tcti;
	int64_t epoch_seconds;
	int64_t max_ttl;
	int64_t prefetch;
	bool strict;
	struct keystore *ks;
	struct slot *slots;              /* secmem: KEYRING_SLOTS */
	uint64_t use_clock;
	bool open;
	bool checked;                    /* a first state has been logged */
	bool was_minting;
	bool reloaded;                   /* policy reset to unknown by a reload */
	enum keyring_policy_state policy_before_reload;
	enum keyring_tpm_state tpm_state;
	enum keyring_policy_state policy_state;
	uint64_t commands_closed;        /* commands of contexts since closed */
	uint64_t minted;
	char last_error[KEYRING_ERR_MAX];
};

/* The default backend: lib/tpm.h. */

static int
real_open(void *arg, const char *tcti)
{
	struct keyring *kr = arg;
	struct tpm *t = NULL;
	int r;

	r = tpm_open(tcti, &t);
	if (r < 0)
		return r;
	kr->tpm = t;
	return 0;
}

static void
real_close(void *arg)
{
	struct keyring *kr = arg;

	tpm_close(kr->tpm);
	kr->tpm = NULL;
}

static int
real_root_hmac(void *arg, const struct keystore *ks, const struct keystore_gen *g,
    const uint8_t *msg, size_t len, uint8_t ret[32])
{
	struct keyring *kr = arg;

	return tpm_root_hmac(kr->tpm, ks->srk_name, ks->srk_name_len, &g->blob, &ks->pcrs,
	    msg, len, ret);
}

static int
real_pcr_digest(void *arg, const struct tpm_pcr_sel *sel, uint8_t ret[32])
{
	struct keyring *kr = arg;

	return tpm_pcr_digest(kr->tpm, sel, ret);
}

static uint64_t
real_commands(void *arg)
{
	struct keyring *kr = arg;

	return kr->tpm != NULL ? tpm_command_count(kr->tpm) : 0;
}

static const char *
real_last_error(void *arg)
{
	struct keyring *kr = arg;

	return kr->tpm != NULL ? tpm_last_error(kr->tpm) : "";
}

static int
real_pcr_read(void *arg, const struct tpm_pcr_sel *sel, uint8_t ret[24][32])
{
	struct keyring *kr = arg;

	return tpm_pcr_read_values(kr->tpm, sel, ret);
}

static int
real_pcr_extend(void *arg, unsigned index, const uint8_t digest[32])
{
	struct keyring *kr = arg;

	return tpm_pcr_extend(kr->tpm, index, digest);
}

static int
real_reset_count(void *arg, uint32_t *ret)
{
	struct keyring *kr = arg;

	return tpm_reset_count(kr->tpm, ret);
}

static int
real_quote(void *arg, const struct keystore *ks, const struct tpm_pcr_sel *sel,
    const uint8_t *nonce, size_t nonce_len, struct tpm_quote *ret)
{
	struct keyring *kr = arg;

	return tpm_quote(kr->tpm, ks->srk_name, ks->srk_name_len, &ks->ak, sel, nonce, nonce_len,
	    ret);
}

static void
set_error(struct keyring *kr, const char *what, int r)
{
	const char *more = kr->open && kr->be.last_error != NULL ?
	    kr->be.last_error(kr->be.arg) : NULL;

	if (more != NULL && more[0] != '\0')
		(void)snprintf(kr->last_error, sizeof(kr->last_error), "%s: %s (%s)", what,
		    strerror(-r), more);
	else
		(void)snprintf(kr->last_error, sizeof(kr->last_error), "%s: %s", what,
		    strerror(-r));
}

static const char *
tpm_state_name(enum keyring_tpm_state s)
{
	switch (s) {
	case KEYRING_TPM_OK: {
		return "ok";
	}
	case KEYRING_TPM_UNREACHABLE: {
		return "unreachable";
	}
	default: {
		return "?";
	}
	}
}

static const char *
policy_state_name(enum keyring_policy_state s)
{
	switch (s) {
	case KEYRING_POLICY_OK: {
		return "ok";
	}
	case KEYRING_POLICY_VIOLATED: {
		return "violated";
	}
	case KEYRING_POLICY_UNKNOWN: {
		return "unknown";
	}
	default: {
		return "?";
	}
	}
}

/* State changes are logged here, once each, never per tick. */
static void
set_state(struct keyring *kr, enum keyring_tpm_state t, enum keyring_policy_state p)
{
	bool minting;

	if (kr->reloaded) {
		kr->reloaded = false;
		/* A reload that changed nothing is not a transition. */
		if (t == kr->tpm_state && p == kr->policy_before_reload) {
			kr->policy_state = p;
			return;
		}
	}
	if (kr->checked && t == kr->tpm_state && p == kr->policy_state)
		return;
	kr->tpm_state = t;
	kr->policy_state = p;
	kr->checked = true;
	minting = keyring_minting(kr);
	if (t == KEYRING_TPM_OK && p == KEYRING_POLICY_OK) {
		log_info("tpm ok, policy ok%s", minting && !kr->was_minting ? ": minting" : "");
	} else {
		log_warn("tpm %s, policy %s%s (%s)", tpm_state_name(t), policy_state_name(p),
		    kr->was_minting && !minting ? ": minting stopped" : "",
		    kr->last_error[0] != '\0' ? kr->last_error : "no error");
	}
	kr->was_minting = minting;
}

static void
lose_tpm(struct keyring *kr)
{
	if (kr->open) {
		kr->commands_closed += kr->be.commands(kr->be.arg);
		kr->be.close(kr->be.arg);
		kr->open = false;
	}
	set_state(kr, KEYRING_TPM_UNREACHABLE, KEYRING_POLICY_UNKNOWN);
}

/* Every TPM failure passes here: -ECOMM closes the context (the next check
 * reopens it), a policy refusal stops minting at once. */
static void
tpm_failed(struct keyring *kr, const char *what, int r)
{
	set_error(kr, what, r);
	switch (r) {
	case -ECOMM: {
		lose_tpm(kr);
		break;
	}
	case -EKEYREJECTED: {
		set_state(kr, kr->tpm_state, KEYRING_POLICY_VIOLATED);
		break;
	}
	default: {
		break;
	}
	}
}

/* A failed TPM command in the health check: the check's verdict. */
static void
check_failed(struct keyring *kr, const char *what, int r)
{
	set_error(kr, what, r);
	switch (r) {
	case -ECOMM: {
		lose_tpm(kr);
		break;
	}
	case -EKEYREJECTED: {
		set_state(kr, KEYRING_TPM_OK, KEYRING_POLICY_VIOLATED);
		break;
	}
	default: {
		set_state(kr, KEYRING_TPM_OK, KEYRING_POLICY_UNKNOWN);
		break;
	}
	}
}

static void
wipe_slot(struct slot *s)
{
	explicit_bzero(s, sizeof(*s));
}

/* Slot epochs passed the window checks or are at most the current epoch's
 * successor (keyring_check checks that bound): these cannot overflow. */
static int64_t
slot_start(const struct keyring *kr, const struct slot *s)
{
	return (int64_t)s->epoch * kr->epoch_seconds;
}

static int64_t
slot_not_after(const struct keyring *kr, const struct slot *s)
{
	return slot_start(kr, s) + kr->epoch_seconds + kr->max_ttl;
}

/* Whether a and b are the same root key (a state directory provisioned
 * again may reuse a generation number for another key). */
static bool
same_root_key(const struct keystore_gen *a, const struct keystore_gen *b)
{
	return a->created == b->created && a->name_len == b->name_len &&
	    a->name_len <= sizeof(a->name) && memcmp(a->name, b->name, a->name_len) == 0;
}

int
keyring_new(const struct keyring_params *p, const struct keyring_backend *be,
    struct keyring **ret)
{
	struct keyring *kr = NULL;
	int r;

	if (p->epoch_seconds <= 0 || p->max_ttl_seconds <= 0 || p->tcti == NULL)
		return -EINVAL;
	kr = calloc(1, sizeof(*kr));
	if (kr == NULL)
		return -ENOMEM;
	kr->slots = secmem_alloc(KEYRING_SLOTS * sizeof(struct slot));
	if (kr->slots == NULL) {
		r = errno > 0 ? -errno : -ENOMEM;
		goto out;
	}
	memset(kr->slots, 0, KEYRING_SLOTS * sizeof(struct slot));
	kr->tcti = strdup(p->tcti);
	if (kr->tcti == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (be != NULL) {
		kr->be = *be;
	} else {
		kr->be = (struct keyring_backend){
			.open = real_open,
			.close = real_close,
			.root_hmac = real_root_hmac,
			.pcr_digest = real_pcr_digest,
			.commands = real_commands,
			.last_error = real_last_error,
			.pcr_read = real_pcr_read,
			.pcr_extend = real_pcr_extend,
			.reset_count = real_reset_count,
			.quote = real_quote,
			.arg = kr,
		};
	}
	kr->epoch_seconds = p->epoch_seconds;
	kr->max_ttl = p->max_ttl_seconds;
	kr->prefetch = p->prefetch_seconds < 0 ? 0 : p->prefetch_seconds;
	if (kr->prefetch > p->epoch_seconds / 2)
		kr->prefetch = p->epoch_seconds / 2;
	kr->strict = p->strict;
	if (kr->strict) {
		kr->prefetch = 0;   /* there is no epoch key to derive ahead */
	}
	kr->tpm_state = KEYRING_TPM_UNREACHABLE;
	kr->policy_state = KEYRING_POLICY_UNKNOWN;
	*ret = kr;
	kr = NULL;
	r = 0;
out:
	keyring_free(kr);
	return r;
}

void
keyring_free(struct keyring *kr)
{
	if (kr == NULL)
		return;
	if (kr->open)
		kr->be.close(kr->be.arg);
	secmem_free(kr->slots, KEYRING_SLOTS * sizeof(struct slot));
	keystore_free(kr->ks);
	free(kr->tcti);
	explicit_bzero(kr, sizeof(*kr));
	free(kr);
}

int
keyring_set_keystore(struct keyring *kr, struct keystore *ks)
{
	size_t i;

	if (ks == NULL || keystore_current(ks) == NULL)
		return -ENOENT;
	/* A generation that left the state directory may not be served; one
	 * whose number now names another root key has other epoch keys. */
	for (i = 0; i < KEYRING_SLOTS; i++) {
		struct slot *s = &kr->slots[i];
		const struct keystore_gen *was, *now;

		if (!s->used)
			continue;
		was = kr->ks != NULL ? keystore_find(kr->ks, s->gen) : NULL;
		now = keystore_find(ks, s->gen);
		if (was == NULL || now == NULL || !same_root_key(was, now))
			wipe_slot(s);
	}
	keystore_free(kr->ks);
	kr->ks = ks;
	/* Unknown until the caller's next keyring_check. */
	if (!kr->reloaded)
		kr->policy_before_reload = kr->policy_state;
	kr->reloaded = kr->checked;
	kr->policy_state = KEYRING_POLICY_UNKNOWN;
	return 0;
}

int
keyring_load(struct keyring *kr, const char *state_dir, char *err, size_t errsz)
{
	struct keystore *ks = NULL;
	int r;

	r = keystore_load_verbose(state_dir, &ks, err, errsz);
	if (r < 0)
		return r;
	r = keyring_set_keystore(kr, ks);
	if (r < 0) {
		(void)snprintf(err, errsz, "no root key generation");
		keystore_free(ks);
	}
	return r;
}

uint64_t
keyring_epoch_of(const struct keyring *kr, int64_t now)
{
	return now < 0 ? 0 : (uint64_t)(now / kr->epoch_seconds);
}

uint32_t
keyring_generation(const struct keyring *kr)
{
	const struct keystore_gen *g = kr->ks != NULL ? keystore_current(kr->ks) : NULL;

	return g != NULL ? g->gen : 0;
}

bool
keyring_minting(const struct keyring *kr)
{
	return kr->ks != NULL && kr->open && kr->tpm_state == KEYRING_TPM_OK &&
	    kr->policy_state == KEYRING_POLICY_OK;
}

/* Wipe every key no token can need any more: past its not_after, or of an
 * epoch that began after its generation was retired (never served). */
static void
wipe_expired(struct keyring *kr, int64_t now)
{
	size_t i;

	for (i = 0; i < KEYRING_SLOTS; i++) {
		struct slot *s = &kr->slots[i];
		const struct keystore_gen *g;

		if (!s->used)
			continue;
		g = kr->ks != NULL ? keystore_find(kr->ks, s->gen) : NULL;
		if (now > slot_not_after(kr, s) || g == NULL ||
		    (g->retired != 0 && slot_start(kr, s) >= g->retired))
			wipe_slot(s);
	}
}

int64_t
keyring_next_deadline(const struct keyring *kr, int64_t now)
{
	int64_t due = INT64_MAX, t;
	uint64_t e;
	size_t i;

	for (i = 0; i < KEYRING_SLOTS; i++) {
		const struct slot *s = &kr->slots[i];

		if (!s->used)
			continue;
		t = slot_not_after(kr, s);
		/* wipe_expired wipes at now > not_after. */
		if (t < INT64_MAX && t + 1 > now && t + 1 < due)
			due = t + 1;
	}
	if (!kr->strict && kr->prefetch > 0 && kr->ks != NULL && now >= 0) {
		e = keyring_epoch_of(kr, now);
		if (e < (uint64_t)(INT64_MAX / kr->epoch_seconds) - 2) {
			/* Inside the window the health interval retries; only its
			 * start is a deadline, or a failing TPM would spin the loop. */
			t = (int64_t)(e + 1) * kr->epoch_seconds - kr->prefetch;
			if (t > now && t < due)
				due = t;
		}
	}
	return due;
}

static struct slot *
find_slot(struct keyring *kr, uint32_t gen, uint64_t epoch)
{
	size_t i;

	for (i = 0; i < KEYRING_SLOTS; i++) {
		struct slot *s = &kr->slots[i];

		if (s->used && s->gen == gen && s->epoch == epoch) {
			s->last_use = ++kr->use_clock;
			return s;
		}
	}
	return NULL;
}

static struct slot *
free_slot(struct keyring *kr)
{
	struct slot *lru = &kr->slots[0];
	size_t i;

	for (i = 0; i < KEYRING_SLOTS; i++) {
		if (!kr->slots[i].used)
			return &kr->slots[i];
		if (kr->slots[i].last_use < lru->last_use)
			lru = &kr->slots[i];
	}
	/* Full: the least recently used key can be derived again if needed. */
	wipe_slot(lru);
	return lru;
}

/* K_{g,e} from the TPM into a slot. The caller decides whether a TPM
 * command may be spent and what a failure means. */
static int
derive_epoch_key(struct keyring *kr, const struct keystore_gen *g, uint64_t epoch,
    struct slot **ret)
{
	uint8_t msg[sizeof(LABEL_EPOCH) + 8];
	uint8_t key[TOKEN_KEY_LEN];
	struct slot *s;
	size_t i;
	int r;

	/* The point of strict mode: no epoch key exists outside the TPM. Every
	 * path to a derivation passes here. */
	if (kr->strict) {
		return -EPERM;
	}
	if (!kr->open)
		return -EAGAIN;
	memcpy(msg, LABEL_EPOCH, sizeof(LABEL_EPOCH));  /* with its NUL: the 0x00 separator */
	for (i = 0; i < 8; i++)
		msg[sizeof(LABEL_EPOCH) + i] = (uint8_t)(epoch >> (56 - 8 * i));
	r = kr->be.root_hmac(kr->be.arg, kr->ks, g, msg, sizeof(msg), key);
	if (r < 0)
		goto out;
	s = free_slot(kr);
	s->gen = g->gen;
	s->epoch = epoch;
	s->used = 1;
	s->last_use = ++kr->use_clock;
	memcpy(s->key, key, sizeof(key));
	*ret = s;
	r = 0;
out:
	explicit_bzero(key, sizeof(key));
	return r;
}

/* K_{g,e}, from the cache or from the TPM. */
static int
epoch_key(struct keyring *kr, const struct keystore_gen *g, uint64_t epoch, struct slot **ret)
{
	struct slot *s;
	int r;

	if (kr->strict) {
		return -EPERM;
	}
	s = find_slot(kr, g->gen, epoch);
	if (s != NULL) {
		*ret = s;
		return 0;
	}
	/* Without the TPM or with a violated policy the command cannot
	 * succeed: do not spend one. */
	if (!kr->open || kr->policy_state == KEYRING_POLICY_VIOLATED)
		return -EAGAIN;
	r = derive_epoch_key(kr, g, epoch, ret);
	if (r < 0)
		tpm_failed(kr, "deriving an epoch key", r);
	return r;
}

static int
audience_key(const uint8_t ek[TOKEN_KEY_LEN], const char *aud, uint8_t ret[TOKEN_KEY_LEN])
{
	uint8_t msg[sizeof(LABEL_AUD) + TOKEN_ID_MAX];
	size_t n = strlen(aud);

	if (n == 0 || n > TOKEN_ID_MAX)
		return -EINVAL;
	memcpy(msg, LABEL_AUD, sizeof(LABEL_AUD));
	memcpy(msg + sizeof(LABEL_AUD), aud, n);
	return token_hmac(ek, TOKEN_KEY_LEN, msg, sizeof(LABEL_AUD) + n, ret);
}

/* t0 of a strict-mode token: a TPM HMAC over the digest of its input. */
static int
strict_t0(struct keyring *kr, const struct keystore_gen *g, const char *input, size_t len,
    uint8_t ret[TOKEN_TAG_LEN])
{
	uint8_t msg[sizeof(LABEL_STRICT) + 32];
	int r;

	if (!kr->open || kr->policy_state == KEYRING_POLICY_VIOLATED)
		return -EAGAIN;
	memcpy(msg, LABEL_STRICT, sizeof(LABEL_STRICT));
	token_strict_message(input, len, msg + sizeof(LABEL_STRICT));
	r = kr->be.root_hmac(kr->be.arg, kr->ks, g, msg, sizeof(msg), ret);
	if (r < 0)
		tpm_failed(kr, "computing a strict-mode MAC", r);
	return r;
}

/* The serving rules of docs/attestd-api.md, GET /v1/keys. */
static int
key_window(const struct keyring *kr, int64_t now, uint32_t gen, uint64_t epoch,
    const struct keystore_gen **ret_g, struct keyring_key *ret)
{
	const struct keystore_gen *g;
	int64_t start, end;

	if (kr->ks == NULL)
		return -EAGAIN;
	g = keystore_find(kr->ks, gen);
	if (g == NULL)
		return -ENOENT;
	if (epoch >= (uint64_t)(INT64_MAX / kr->epoch_seconds) - 1)
		return -ENOENT;
	start = (int64_t)epoch * kr->epoch_seconds;
	end = start + kr->epoch_seconds;
	if (start > now)
		return -ENOENT;                 /* the future */
	if (g->retired != 0 && start >= g->retired)
		return -ENOENT;                 /* already replaced when it began */
	if (g->created != 0 && end <= g->created)
		return -ENOENT;                 /* over before the generation existed */
	if (now > end + kr->max_ttl)
		return -EKEYEXPIRED;
	*ret_g = g;
	ret->gen = gen;
	ret->epoch = epoch;
	ret->not_before = start;
	ret->epoch_end = end;
	ret->not_after = end + kr->max_ttl;
	return 0;
}

int
keyring_audience_key(struct keyring *kr, int64_t now, const char *aud, uint32_t gen,
    uint64_t epoch, struct keyring_key *ret)
{
	const struct keystore_gen *g = NULL;
	struct keyring_key k = { .gen = 0 };
	struct slot *s = NULL;
	int r;

	if (parse_ident(aud, TOKEN_ID_MAX) < 0)
		return -EINVAL;
	/* Whoever holds an audience key can make epoch-mode tokens for that
	 * audience; strict mode has none to give. */
	if (kr->strict) {
		return -EPERM;
	}
	wipe_expired(kr, now);
	r = key_window(kr, now, gen, epoch, &g, &k);
	if (r < 0)
		goto out;
	r = epoch_key(kr, g, epoch, &s);
	if (r < 0)
		goto out;
	r = audience_key(s->key, aud, k.key);
	if (r < 0)
		goto out;
	*ret = k;
out:
	explicit_bzero(&k, sizeof(k));
	return r;
}

int
keyring_mint(struct keyring *kr, int64_t now, const struct token_claims *c, char **ret)
{
	const struct keystore_gen *g;
	struct token_kid kid = { .gen = 0 };
	uint8_t key[TOKEN_KEY_LEN];
	char *input = NULL, *tok = NULL;
	size_t len = 0;
	struct slot *s = NULL;
	int r;

	if (!keyring_minting(kr))
		return -EAGAIN;
	g = keystore_current(kr->ks);
	if (g == NULL)
		return -EAGAIN;
	kid.gen = g->gen;
	kid.epoch = keyring_epoch_of(kr, now);
	kid.mode = kr->strict ? TOKEN_MODE_STRICT : TOKEN_MODE_EPOCH;
	memcpy(kid.aud, c->aud, sizeof(kid.aud));
	if (kr->strict) {
		r = token_signing_input(&kid, c, &input, &len);
		if (r < 0)
			goto out;
		r = strict_t0(kr, g, input, len, key);
		if (r < 0)
			goto out;
		r = token_finish(input, len, key, &tok);
	} else {
		r = epoch_key(kr, g, kid.epoch, &s);
		if (r < 0)
			goto out;
		r = audience_key(s->key, c->aud, key);
		if (r < 0)
			goto out;
		r = token_encode(&kid, c, key, &tok);
	}
	if (r < 0)
		goto out;
	kr->minted++;
	*ret = tok;
	tok = NULL;
out:
	explicit_bzero(key, sizeof(key));
	free(input);
	keyring_free_token(tok);
	return r;
}

void
keyring_free_token(char *token)
{
	if (token == NULL)
		return;
	explicit_bzero(token, strlen(token));
	free(token);
}

int
keyring_verify(struct keyring *kr, int64_t now, const struct token *t,
    struct keyring_window *ret)
{
	const struct token_kid *kid = token_kid(t);
	const struct token_claims *c = token_claims(t);
	const struct keystore_gen *g = NULL;
	struct keyring_key k = { .gen = 0 };
	uint8_t t0[TOKEN_TAG_LEN];
	struct slot *s = NULL;
	int r;

	/* A strict attestd derives no epoch key, so it never made an
	 * epoch-mode token: one that claims to be its work was made with an
	 * audience key from elsewhere, or is a forgery. */
	if (kr->strict && kid->mode != TOKEN_MODE_STRICT) {
		r = -EPERM;
		goto out;
	}
	wipe_expired(kr, now);
	r = key_window(kr, now, kid->gen, kid->epoch, &g, &k);
	if (r < 0)
		goto out;
	if (c->iat < k.not_before || c->iat >= k.epoch_end) {
		r = -ERANGE;
		goto out;
	}
	switch (kid->mode) {
	case TOKEN_MODE_STRICT: {
		const char *input;
		size_t len = 0;

		input = token_signed_part(t, &len);
		r = strict_t0(kr, g, input, len, t0);
		if (r < 0)
			goto out;
		r = token_verify_chain(t, t0);
		break;
	}
	case TOKEN_MODE_EPOCH: {
		r = epoch_key(kr, g, kid->epoch, &s);
		if (r < 0)
			goto out;
		r = audience_key(s->key, kid->aud, k.key);
		if (r < 0)
			goto out;
		r = token_verify_mac(t, k.key);
		break;
	}
	default: {
		r = -EINVAL;
		break;
	}
	}
	if (r < 0 && r != -EBADMSG && r != -EAGAIN && r != -ECOMM && r != -EKEYREJECTED &&
	    r != -EPERM) {
		r = -EBADMSG;   /* a chain that does not check out is a bad MAC */
	}
	if (r == 0 && ret != NULL) {
		*ret = (struct keyring_window){
			.gen = k.gen,
			.epoch = k.epoch,
			.not_before = k.not_before,
			.epoch_end = k.epoch_end,
			.not_after = k.not_after,
		};
	}
out:
	explicit_bzero(&k, sizeof(k));
	explicit_bzero(t0, sizeof(t0));
	return r;
}

/* The key of (g, epoch) in a slot, deriving it if needed; for the check,
 * which has just compared the PCRs and so may spend a TPM command. */
static int
ensure_epoch_key(struct keyring *kr, const struct keystore_gen *g, uint64_t epoch)
{
	struct slot *s = NULL;

	if (find_slot(kr, g->gen, epoch) != NULL)
		return 0;
	return derive_epoch_key(kr, g, epoch, &s);
}

void
keyring_check(struct keyring *kr, int64_t now)
{
	uint8_t digest[32], policy[32];
	const struct keystore_gen *g;
	uint64_t e;
	int r;

	wipe_expired(kr, now);
	if (kr->ks == NULL)
		return;
	if (!kr->open) {
		r = kr->be.open(kr->be.arg, kr->tcti);
		if (r < 0) {
			set_error(kr, "connecting to the TPM", r);
			set_state(kr, KEYRING_TPM_UNREACHABLE, KEYRING_POLICY_UNKNOWN);
			return;
		}
		kr->open = true;
	}
	r = kr->be.pcr_digest(kr->be.arg, &kr->ks->pcrs, digest);
	if (r < 0) {
		check_failed(kr, "reading the PCRs", r);
		return;
	}
	r = tpm_policy_pcr(&kr->ks->pcrs, digest, policy);
	if (r < 0) {
		set_error(kr, "computing the PCR policy", r);
		set_state(kr, KEYRING_TPM_OK, KEYRING_POLICY_UNKNOWN);
		return;
	}
	if (CRYPTO_memcmp(policy, kr->ks->policy, sizeof(policy)) != 0) {
		(void)snprintf(kr->last_error, sizeof(kr->last_error),
		    "the PCRs no longer satisfy the root key's policy");
		set_state(kr, KEYRING_TPM_OK, KEYRING_POLICY_VIOLATED);
		return;
	}
	/* Derive the current epoch key here rather than in the first mint of
	 * the epoch, keeping the TPM off the request path, and before saying
	 * "ok": the TPM has the last word on its policy, and a check after
	 * which every mint would fail must stop minting instead. Near the end
	 * of the epoch the next key is derived too. Strict mode has none. */
	g = keystore_current(kr->ks);
	e = keyring_epoch_of(kr, now);
	if (!kr->strict && g != NULL) {
		r = ensure_epoch_key(kr, g, e);
		if (r < 0) {
			check_failed(kr, "deriving the current epoch key", r);
			return;
		}
		if (kr->prefetch > 0 && e < (uint64_t)(INT64_MAX / kr->epoch_seconds) - 2 &&
		    (int64_t)(e + 1) * kr->epoch_seconds - now <= kr->prefetch) {
			r = ensure_epoch_key(kr, g, e + 1);
			if (r < 0) {
				check_failed(kr, "deriving the next epoch key", r);
				return;
			}
		}
	}
	set_state(kr, KEYRING_TPM_OK, KEYRING_POLICY_OK);
}

void
keyring_status(const struct keyring *kr, int64_t now, struct keyring_status *ret)
{
	struct keyring_status st = { .tpm = kr->tpm_state };
	size_t i;

	st.policy = kr->policy_state;
	st.minting = keyring_minting(kr);
	st.strict = kr->strict;
	st.generation = keyring_generation(kr);
	if (kr->ks != NULL) {
		for (i = 0; i < kr->ks->n_gens && i < KEYSTORE_MAX_GENS; i++)
			st.gens[i] = kr->ks->gens[i].gen;
		st.n_gens = i;
	}
	st.epoch = keyring_epoch_of(kr, now);
	st.tpm_commands = kr->commands_closed + (kr->open ? kr->be.commands(kr->be.arg) : 0);
	st.tokens_minted = kr->minted;
	for (i = 0; i < KEYRING_SLOTS; i++)
		st.cached_epoch_keys += kr->slots[i].used ? 1 : 0;
	memcpy(st.last_error, kr->last_error, sizeof(st.last_error));
	*ret = st;
}

/* The TPM pass-throughs: the context must be open (the health check opens
 * it); a failure goes through tpm_failed like every other command. */
static int
plain_ready(struct keyring *kr, bool have)
{
	if (!have)
		return -EOPNOTSUPP;
	if (!kr->open || kr->tpm_state != KEYRING_TPM_OK)
		return -EAGAIN;
	return 0;
}

int
keyring_pcr_read(struct keyring *kr, const struct tpm_pcr_sel *sel, uint8_t ret[24][32])
{
	int r = plain_ready(kr, kr->be.pcr_read != NULL);

	if (r < 0)
		return r;
	r = kr->be.pcr_read(kr->be.arg, sel, ret);
	if (r < 0)
		tpm_failed(kr, "reading the launch PCR", r);
	return r;
}

int
keyring_pcr_extend(struct keyring *kr, unsigned index, const uint8_t digest[32])
{
	int r = plain_ready(kr, kr->be.pcr_extend != NULL);

	if (r < 0)
		return r;
	r = kr->be.pcr_extend(kr->be.arg, index, digest);
	if (r < 0)
		tpm_failed(kr, "extending the launch PCR", r);
	return r;
}

int
keyring_reset_count(struct keyring *kr, uint32_t *ret)
{
	int r = plain_ready(kr, kr->be.reset_count != NULL);

	if (r < 0)
		return r;
	r = kr->be.reset_count(kr->be.arg, ret);
	if (r < 0)
		tpm_failed(kr, "reading the TPM's reset count", r);
	return r;
}

int
keyring_quote(struct keyring *kr, const struct tpm_pcr_sel *sel, const uint8_t *nonce,
    size_t nonce_len, struct tpm_quote *ret)
{
	int r;

	if (kr->ks == NULL || kr->ks->ak.pub_len == 0 || kr->ks->ak.priv_len == 0)
		return -ENOENT;
	r = plain_ready(kr, kr->be.quote != NULL);
	if (r < 0)
		return r;
	r = kr->be.quote(kr->be.arg, kr->ks, sel, nonce, nonce_len, ret);
	if (r < 0)
		tpm_failed(kr, "quoting with the attestation key", r);
	return r;
}

int
keyring_policy_pcrs(const struct keyring *kr, struct tpm_pcr_sel *ret)
{
	if (kr->ks == NULL)
		return -ENOENT;
	*ret = kr->ks->pcrs;
	return 0;
}
