#include "eventlog.h"

#include <errno.h>
#include <openssl/evp.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"
#include "parse.h"

#define PCR_COUNT     24
#define VM_ID_MAX     64         /* launch.h: char vm_id[65] */
#define LAUNCH_EVENTS 5          /* kernel, initrd, rootfs, cmdline, config */

/* Every rejection names itself with one of these (docs/event-log.md). */
#define R_TOO_LARGE    "log_too_large"
#define R_LINE_LONG    "line_too_long"
#define R_UNTERMINATED "unterminated_line"
#define R_EMPTY_LINE   "empty_line"
#define R_BAD_JSON     "bad_json"
#define R_NONCANON     "non_canonical"
#define R_UNKNOWN      "unknown_field"
#define R_BAD_FIELD    "bad_field"
#define R_CONTENT_TYPE "bad_content_type"
#define R_HASH_ALG     "bad_hash_alg"
#define R_DIGEST       "digest_mismatch"
#define R_EVENT        "unknown_event"
#define R_VM_ID        "bad_vm_id"
#define R_RECNUM       "recnum_gap"
#define R_PCR          "wrong_pcr"
#define R_ORDER        "out_of_order"
#define R_INTERLEAVED  "interleaved_launch"
#define R_INCOMPLETE   "incomplete_launch"
#define R_DUP_VM       "duplicate_vm"
#define R_CALLBACK     "callback_failed"
#define R_NOMEM        "out_of_memory"
#define R_ARG          "invalid_argument"

enum kind {
	K_KERNEL,
	K_INITRD,
	K_ROOTFS,
	K_CMDLINE,
	K_CONFIG,
};

static const char *const record_keys[] = {
	"content", "content_type", "digests", "pcr", "recnum", NULL,
};
static const char *const digest_keys[] = { "digest", "hashAlg", NULL };
static const char *const artifact_keys[] = { "event", "sha256", "size", "vm", NULL };
static const char *const cmdline_keys[] = { "cmdline", "event", "vm", NULL };
static const char *const config_keys[] = { "config", "event", "vm", NULL };

/* The integer member key of obj, in [0, max]. */
static int
get_uint(const json_t *obj, const char *key, uint64_t max, uint64_t *ret)
{
	const json_t *v = json_object_get(obj, key);
	json_int_t i;

	if (!json_is_integer(v)) {
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < 0 || (uint64_t)i > max) {
		return -EINVAL;
	}
	*ret = (uint64_t)i;
	return 0;
}

/* Check a record's content against the five kinds and say which it is and
 * for which VM. Every member is required; no other member is allowed. */
static int
check_content(const json_t *c, enum kind *ret_kind, const char **ret_vm,
    const char **ret_reason)
{
	const char *const *keys;
	const char *ev, *vm;
	enum kind k;
	uint8_t h[32];
	uint64_t size;

	if (!json_is_object(c)) {
		*ret_reason = R_BAD_FIELD;
		return -EINVAL;
	}
	ev = cjson_get_str(c, "event");
	if (ev == NULL) {
		*ret_reason = R_BAD_FIELD;
		return -EINVAL;
	}
	if (strcmp(ev, "kernel") == 0) {
		k = K_KERNEL;
		keys = artifact_keys;
	} else if (strcmp(ev, "initrd") == 0) {
		k = K_INITRD;
		keys = artifact_keys;
	} else if (strcmp(ev, "rootfs") == 0) {
		k = K_ROOTFS;
		keys = artifact_keys;
	} else if (strcmp(ev, "cmdline") == 0) {
		k = K_CMDLINE;
		keys = cmdline_keys;
	} else if (strcmp(ev, "config") == 0) {
		k = K_CONFIG;
		keys = config_keys;
	} else {
		*ret_reason = R_EVENT;
		return -EINVAL;
	}
	if (cjson_only_keys(c, keys, NULL) != 0) {
		*ret_reason = R_UNKNOWN;
		return -EINVAL;
	}
	vm = cjson_get_str(c, "vm");
	if (vm == NULL || parse_ident(vm, VM_ID_MAX) != 0) {
		*ret_reason = R_VM_ID;
		return -EINVAL;
	}
	switch (k) {
	case K_KERNEL:
	case K_INITRD:
	case K_ROOTFS:
		if (get_uint(c, "size", INT64_MAX, &size) != 0 ||
		    parse_hex(cjson_get_str(c, "sha256"), h, sizeof(h)) != 0) {
			*ret_reason = R_BAD_FIELD;
			return -EINVAL;
		}
		break;
	case K_CMDLINE:
		if (!json_is_string(json_object_get(c, "cmdline"))) {
			*ret_reason = R_BAD_FIELD;
			return -EINVAL;
		}
		break;
	case K_CONFIG:
		if (!json_is_object(json_object_get(c, "config"))) {
			*ret_reason = R_BAD_FIELD;
			return -EINVAL;
		}
		break;
	default:
		*ret_reason = R_EVENT;
		return -EINVAL;
	}
	*ret_kind = k;
	*ret_vm = vm;
	return 0;
}

/* TPM2_PCR_Extend on a sha256 bank: new = SHA-256(old || digest). */
static int
extend(uint8_t pcr[32], const uint8_t digest[32])
{
	uint8_t buf[64], md[32];
	unsigned len = 0;

	memcpy(buf, pcr, 32);
	memcpy(buf + 32, digest, 32);
	if (EVP_Digest(buf, sizeof(buf), md, &len, EVP_sha256(), NULL) != 1 || len != 32) {
		return -ENOMEM;
	}
	memcpy(pcr, md, 32);
	return 0;
}

void
eventlog_extend(uint8_t pcr[32], const uint8_t digest[32])
{
	/* No way to report a failure here: leave a value that no TPM will
	 * ever hold, so every comparison that follows fails closed. */
	if (extend(pcr, digest) != 0) {
		memset(pcr, 0xff, 32);
	}
}

int
eventlog_format(uint64_t recnum, unsigned pcr, const json_t *content, char **ret_line,
    size_t *ret_len, uint8_t ret_digest[32])
{
	json_t *rec = NULL;
	char *line = NULL, hex[65];
	uint8_t digest[32];
	const char *reason = NULL, *vm = NULL;
	enum kind k;
	size_t len = 0;
	int r;

	if (content == NULL || ret_line == NULL || ret_len == NULL || pcr >= PCR_COUNT ||
	    recnum > INT64_MAX) {
		return -EINVAL;
	}
	/* Write only what eventlog_parse_line and eventlog_replay accept. */
	r = check_content(content, &k, &vm, &reason);
	if (r != 0) {
		goto out;
	}
	r = cjson_sha256(content, digest);
	if (r != 0) {
		goto out;
	}
	format_hex(digest, sizeof(digest), hex);
	rec = json_pack("{s:O,s:s,s:[{s:s,s:s}],s:I,s:I}", "content", content,
	    "content_type", "warrant", "digests", "digest", hex, "hashAlg", "sha256",
	    "pcr", (json_int_t)pcr, "recnum", (json_int_t)recnum);
	if (rec == NULL) {
		r = -ENOMEM;
		goto out;
	}
	r = cjson_dump(rec, &line, &len);
	if (r != 0) {
		goto out;
	}
	if (len > EVENTLOG_LINE_MAX) {
		r = -E2BIG;
		goto out;
	}
	if (ret_digest != NULL) {
		memcpy(ret_digest, digest, 32);
	}
	*ret_line = line;
	*ret_len = len;
	line = NULL;
	r = 0;
out:
	free(line);
	json_decref(rec);
	return r;
}

/* eventlog_parse_line with the reason for a rejection. */
static int
parse_line(const char *line, size_t len, struct eventlog_event *ret, const char **ret_reason)
{
	json_t *rec = NULL, *digests, *d, *content;
	char *canon = NULL;
	const char *s, *reason = R_BAD_FIELD, *vm = NULL;
	uint8_t want[32], got[32];
	uint64_t recnum = 0, pcr = 0;
	enum kind k;
	size_t canon_len = 0;
	int r;

	if (len > EVENTLOG_LINE_MAX) {
		reason = R_LINE_LONG;
		r = -EFBIG;
		goto out;
	}
	if (len == 0) {
		reason = R_EMPTY_LINE;
		r = -EINVAL;
		goto out;
	}
	r = cjson_parse(line, len, EVENTLOG_LINE_MAX, &rec);
	if (r != 0) {
		rec = NULL;
		reason = R_BAD_JSON;
		r = -EINVAL;
		goto out;
	}
	/* One byte string per record: what was hashed and extended is exactly
	 * what is on the line, and a verifier needs no JSON library of ours. */
	r = cjson_dump(rec, &canon, &canon_len);
	if (r != 0 || canon_len != len || memcmp(canon, line, len) != 0) {
		reason = R_NONCANON;
		r = -EINVAL;
		goto out;
	}
	r = -EINVAL;
	if (!json_is_object(rec)) {
		goto out;
	}
	if (cjson_only_keys(rec, record_keys, NULL) != 0) {
		reason = R_UNKNOWN;
		goto out;
	}
	if (get_uint(rec, "recnum", INT64_MAX, &recnum) != 0 ||
	    get_uint(rec, "pcr", PCR_COUNT - 1, &pcr) != 0) {
		goto out;
	}
	s = cjson_get_str(rec, "content_type");
	if (s == NULL || strcmp(s, "warrant") != 0) {
		reason = R_CONTENT_TYPE;
		goto out;
	}
	digests = json_object_get(rec, "digests");
	if (!json_is_array(digests) || json_array_size(digests) != 1) {
		goto out;
	}
	d = json_array_get(digests, 0);
	if (!json_is_object(d)) {
		goto out;
	}
	if (cjson_only_keys(d, digest_keys, NULL) != 0) {
		reason = R_UNKNOWN;
		goto out;
	}
	s = cjson_get_str(d, "hashAlg");
	if (s == NULL || strcmp(s, "sha256") != 0) {
		reason = R_HASH_ALG;
		goto out;
	}
	if (parse_hex(cjson_get_str(d, "digest"), got, sizeof(got)) != 0) {
		goto out;
	}
	content = json_object_get(rec, "content");
	if (check_content(content, &k, &vm, &reason) != 0) {
		goto out;
	}
	if (cjson_sha256(content, want) != 0) {
		goto out;
	}
	if (memcmp(want, got, sizeof(want)) != 0) {
		reason = R_DIGEST;
		goto out;
	}
	ret->recnum = recnum;
	ret->pcr = (unsigned)pcr;
	memcpy(ret->digest, want, 32);
	ret->content = json_incref(content);
	r = 0;
out:
	if (r != 0 && ret_reason != NULL) {
		*ret_reason = reason;
	}
	free(canon);
	json_decref(rec);
	return r;
}

int
eventlog_parse_line(const char *line, size_t len, struct eventlog_event *ret)
{
	if ((line == NULL && len != 0) || ret == NULL) {
		return -EINVAL;
	}
	return parse_line(line, len, ret, NULL);
}

/* A launch being replayed: the kinds seen so far, in order, and digests. */
struct launch {
	bool open;
	enum kind last;
	char vm[VM_ID_MAX + 1];
	size_t n;
	uint8_t digests[LAUNCH_EVENTS][32];
};

/* Whether kind k may follow last inside one launch. */
static bool
follows(enum kind last, enum kind k)
{
	switch (k) {
	case K_INITRD:
		return last == K_KERNEL;
	case K_ROOTFS:
		return last == K_INITRD;
	case K_CMDLINE:
		return last == K_INITRD || last == K_ROOTFS;
	case K_CONFIG:
		return last == K_CMDLINE;
	case K_KERNEL:
	default:
		return false;
	}
}

/* Apply one record to the launch state; on the config record, hand the
 * finished launch to cb. seen holds every VM id met so far. */
static int
launch_step(struct launch *l, json_t *seen, const struct eventlog_event *ev,
    eventlog_launch_cb cb, void *ctx, const char **ret_reason)
{
	const char *vm = NULL, *reason = NULL;
	uint8_t ld[32];
	unsigned len = 0;
	enum kind k;
	int r;

	/* parse_line checked the content already; this only extracts. */
	r = check_content(ev->content, &k, &vm, &reason);
	if (r != 0) {
		*ret_reason = reason;
		return r;
	}
	if (k == K_KERNEL) {
		if (l->open) {
			*ret_reason = R_INTERLEAVED;
			return -EINVAL;
		}
		if (json_object_get(seen, vm) != NULL) {
			*ret_reason = R_DUP_VM;
			return -EINVAL;
		}
		if (json_object_set_new(seen, vm, json_true()) != 0) {
			*ret_reason = R_NOMEM;
			return -ENOMEM;
		}
		memset(l, 0, sizeof(*l));
		l->open = true;
		/* parse_ident bounded it to VM_ID_MAX characters. */
		memcpy(l->vm, vm, strlen(vm) + 1);
	} else {
		if (!l->open) {
			*ret_reason = R_ORDER;
			return -EINVAL;
		}
		if (strcmp(l->vm, vm) != 0) {
			*ret_reason = R_INTERLEAVED;
			return -EINVAL;
		}
		if (!follows(l->last, k) || l->n >= LAUNCH_EVENTS) {
			*ret_reason = R_ORDER;
			return -EINVAL;
		}
	}
	l->last = k;
	memcpy(l->digests[l->n], ev->digest, 32);
	l->n++;
	if (k != K_CONFIG) {
		return 0;
	}

	l->open = false;
	if (EVP_Digest(l->digests, l->n * 32, ld, &len, EVP_sha256(), NULL) != 1 || len != 32) {
		*ret_reason = R_NOMEM;
		return -ENOMEM;
	}
	if (cb != NULL) {
		r = cb(ctx, l->vm, ld, json_object_get(ev->content, "config"));
		if (r != 0) {
			*ret_reason = R_CALLBACK;
			return r < 0 ? r : -ECANCELED;
		}
	}
	return 0;
}

int
eventlog_replay(const char *buf, size_t len, unsigned pcr, uint8_t ret_pcr[32],
    uint64_t *ret_n, eventlog_launch_cb cb, void *ctx, const char **ret_reason)
{
	struct eventlog_event ev = { 0, 0, { 0 }, NULL };
	struct launch l;
	json_t *seen = NULL;
	const char *reason = R_BAD_FIELD;
	uint8_t value[32];
	uint64_t n = 0;
	size_t off = 0;
	int r;

	memset(&l, 0, sizeof(l));
	memset(value, 0, sizeof(value));
	if ((buf == NULL && len != 0) || pcr >= PCR_COUNT || ret_pcr == NULL) {
		reason = R_ARG;
		r = -EINVAL;
		goto out;
	}
	if (len > EVENTLOG_MAX_BYTES) {
		reason = R_TOO_LARGE;
		r = -EFBIG;
		goto out;
	}
	seen = json_object();
	if (seen == NULL) {
		reason = R_NOMEM;
		r = -ENOMEM;
		goto out;
	}
	while (off < len) {
		size_t avail = len - off, cap = avail, line_len;
		const char *nl;

		/* Look no further than one line may be long. */
		if (cap > EVENTLOG_LINE_MAX + 1) {
			cap = EVENTLOG_LINE_MAX + 1;
		}
		nl = memchr(buf + off, '\n', cap);
		if (nl == NULL) {
			reason = cap < avail || avail > EVENTLOG_LINE_MAX ? R_LINE_LONG :
			    R_UNTERMINATED;
			r = -EINVAL;
			goto out;
		}
		line_len = (size_t)(nl - (buf + off));
		r = parse_line(buf + off, line_len, &ev, &reason);
		if (r != 0) {
			goto out;
		}
		if (ev.recnum != n) {
			reason = R_RECNUM;
			r = -EINVAL;
			goto out;
		}
		if (ev.pcr != pcr) {
			reason = R_PCR;
			r = -EINVAL;
			goto out;
		}
		r = launch_step(&l, seen, &ev, cb, ctx, &reason);
		if (r != 0) {
			goto out;
		}
		r = extend(value, ev.digest);
		if (r != 0) {
			reason = R_NOMEM;
			goto out;
		}
		json_decref(ev.content);
		ev.content = NULL;
		n++;
		off += line_len + 1;
	}
	if (l.open) {
		reason = R_INCOMPLETE;
		r = -EINVAL;
		goto out;
	}
	memcpy(ret_pcr, value, 32);
	if (ret_n != NULL) {
		*ret_n = n;
	}
	r = 0;
out:
	if (r != 0 && ret_reason != NULL) {
		*ret_reason = reason;
	}
	json_decref(ev.content);
	json_decref(seen);
	return r;
}
