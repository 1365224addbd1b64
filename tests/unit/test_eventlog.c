/* Unit tests for lib/eventlog.c: the record format, strict line parsing,
 * the extend rule and replay of whole logs, with adversarial logs. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"
#include "eventlog.h"
#include "parse.h"

#define PCR 15

static const char hash_a[] =
    "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";

/* ---- building logs --------------------------------------------------- */

struct log {
	char *buf;
	size_t len;
	size_t nlines;
	char *lines[64];
	size_t lens[64];
	uint8_t digests[64][32];
};

static json_t *
artifact(const char *ev, const char *vm, json_int_t size)
{
	return json_pack("{s:s,s:s,s:I,s:s}", "event", ev, "sha256", hash_a, "size", size,
	    "vm", vm);
}

static json_t *
cmdline(const char *vm)
{
	return json_pack("{s:s,s:s,s:s}", "cmdline", "console=ttyS0 quiet", "event",
	    "cmdline", "vm", vm);
}

static json_t *
config(const char *vm)
{
	return json_pack("{s:{s:I,s:[s]},s:s,s:s}", "config", "vcpus", (json_int_t)1,
	    "envelope", "fs:read", "event", "config", "vm", vm);
}

/* Append a record made by eventlog_format, numbered by position. */
static void
add(struct log *l, json_t *content)
{
	char *line = NULL;
	size_t len = 0;

	assert_non_null(content);
	assert_true(l->nlines < 64);
	assert_int_equal(eventlog_format(l->nlines, PCR, content, &line, &len,
	    l->digests[l->nlines]), 0);
	assert_int_equal(strlen(line), len);
	l->lines[l->nlines] = line;
	l->lens[l->nlines] = len;
	l->nlines++;
	json_decref(content);
}

/* Append a record built by hand around any content (what format refuses). */
static void
add_raw(struct log *l, json_t *content, uint64_t recnum, unsigned pcr)
{
	json_t *rec;
	uint8_t d[32];
	char hex[65], *line = NULL;
	size_t len = 0;

	assert_int_equal(cjson_sha256(content, d), 0);
	format_hex(d, 32, hex);
	rec = json_pack("{s:o,s:s,s:[{s:s,s:s}],s:I,s:I}", "content", content,
	    "content_type", "warrant", "digests", "digest", hex, "hashAlg", "sha256",
	    "pcr", (json_int_t)pcr, "recnum", (json_int_t)recnum);
	assert_non_null(rec);
	assert_int_equal(cjson_dump(rec, &line, &len), 0);
	json_decref(rec);
	memcpy(l->digests[l->nlines], d, 32);
	l->lines[l->nlines] = line;
	l->lens[l->nlines] = len;
	l->nlines++;
}

static void
launch(struct log *l, const char *vm, int with_rootfs)
{
	add(l, artifact("kernel", vm, 1000));
	add(l, artifact("initrd", vm, 2000));
	if (with_rootfs)
		add(l, artifact("rootfs", vm, 3000));
	add(l, cmdline(vm));
	add(l, config(vm));
}

/* Join the lines, each ending in a newline. */
static void
join(struct log *l)
{
	size_t i, off = 0, total = 0;

	for (i = 0; i < l->nlines; i++)
		total += l->lens[i] + 1;
	free(l->buf);
	l->buf = malloc(total + 1);
	assert_non_null(l->buf);
	for (i = 0; i < l->nlines; i++) {
		memcpy(l->buf + off, l->lines[i], l->lens[i]);
		off += l->lens[i];
		l->buf[off++] = '\n';
	}
	l->buf[off] = '\0';
	l->len = off;
}

static void
log_free(struct log *l)
{
	size_t i;

	for (i = 0; i < l->nlines; i++)
		free(l->lines[i]);
	free(l->buf);
	memset(l, 0, sizeof(*l));
}

/* Two launches: vm-a with a rootfs (5 records), vm-b without (4). */
static void
good_log(struct log *l)
{
	memset(l, 0, sizeof(*l));
	launch(l, "vm-a", 1);
	launch(l, "vm-b", 0);
	join(l);
}

/* ---- replay helpers -------------------------------------------------- */

struct seen {
	unsigned n;
	char vm[4][65];
	uint8_t digest[4][32];
	int fail_at;     /* return an error at this launch (1-based), 0 never */
};

static int
collect(void *ctx, const char *vm_id, const uint8_t launch_digest[32], const json_t *cfg)
{
	struct seen *s = ctx;

	assert_true(json_is_object(cfg));
	assert_non_null(json_object_get(cfg, "envelope"));
	if (s->fail_at != 0 && (unsigned)s->fail_at == s->n + 1)
		return -EPERM;
	assert_true(s->n < 4);
	snprintf(s->vm[s->n], sizeof(s->vm[0]), "%s", vm_id);
	memcpy(s->digest[s->n], launch_digest, 32);
	s->n++;
	return 0;
}

static const char *
reject(const char *buf, size_t len)
{
	uint8_t pcr[32];
	uint64_t n = 77;
	const char *reason = NULL;

	memset(pcr, 0xaa, sizeof(pcr));
	assert_int_not_equal(eventlog_replay(buf, len, PCR, pcr, &n, NULL, NULL, &reason), 0);
	assert_non_null(reason);
	/* Nothing written on failure. */
	assert_int_equal(n, 77);
	assert_int_equal(pcr[0], 0xaa);
	assert_int_equal(pcr[31], 0xaa);
	return reason;
}

static void
expect_reject(struct log *l, const char *want)
{
	join(l);
	assert_string_equal(reject(l->buf, l->len), want);
}

/* ---- tests ----------------------------------------------------------- */

static void
test_extend_is_tpm2_extend(void **state)
{
	uint8_t pcr[32], d[32], buf[64], want[32];

	(void)state;
	memset(pcr, 0, 32);
	SHA256((const unsigned char *)"abc", 3, d);
	memset(buf, 0, 32);
	memcpy(buf + 32, d, 32);
	SHA256(buf, 64, want);
	eventlog_extend(pcr, d);
	assert_memory_equal(pcr, want, 32);
	memcpy(buf, want, 32);
	SHA256(buf, 64, want);
	eventlog_extend(pcr, d);
	assert_memory_equal(pcr, want, 32);
}

static void
test_format_vector(void **state)
{
	/* The example in docs/event-log.md. */
	static const char want[] =
	    "{\"content\":{\"event\":\"kernel\",\"sha256\":"
	    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
	    "\"size\":1000,\"vm\":\"vm-a\"},\"content_type\":\"warrant\",\"digests\":"
	    "[{\"digest\":\"%s\",\"hashAlg\":\"sha256\"}],\"pcr\":15,\"recnum\":0}";
	static const char content_text[] =
	    "{\"event\":\"kernel\",\"sha256\":"
	    "\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\","
	    "\"size\":1000,\"vm\":\"vm-a\"}";
	json_t *c = artifact("kernel", "vm-a", 1000);
	char *line = NULL, hex[65], expect[1024];
	uint8_t d[32], d2[32], pcr[32];
	size_t len = 0;

	(void)state;
	assert_int_equal(eventlog_format(0, PCR, c, &line, &len, d), 0);
	SHA256((const unsigned char *)content_text, strlen(content_text), d2);
	assert_memory_equal(d, d2, 32);
	format_hex(d, 32, hex);
	assert_string_equal(hex, "72f08df80f3d0f1fb082492d14561b22d50656d68be58d64f21c34f69ac384b8");
	snprintf(expect, sizeof(expect), want, hex);
	assert_string_equal(line, expect);
	assert_int_equal(len, strlen(expect));
	memset(pcr, 0, sizeof(pcr));
	eventlog_extend(pcr, d);
	format_hex(pcr, 32, hex);
	assert_string_equal(hex, "902d75768c7369ab2fecf2df9836646bd1f1202912621428e96193c577535897");
	free(line);
	json_decref(c);
}

static void
test_parse_roundtrip(void **state)
{
	struct eventlog_event ev;
	json_t *c = config("vm-z");
	char *line = NULL;
	size_t len = 0;
	uint8_t d[32];

	(void)state;
	assert_int_equal(eventlog_format(41, 7, c, &line, &len, d), 0);
	memset(&ev, 0, sizeof(ev));
	assert_int_equal(eventlog_parse_line(line, len, &ev), 0);
	assert_int_equal(ev.recnum, 41);
	assert_int_equal(ev.pcr, 7);
	assert_memory_equal(ev.digest, d, 32);
	assert_true(json_equal(ev.content, c));
	json_decref(ev.content);
	free(line);
	json_decref(c);
}

static void
test_format_refuses(void **state)
{
	json_t *bad[] = {
		json_pack("{s:s,s:s}", "event", "firmware", "vm", "a"),
		json_pack("{s:s,s:s,s:I,s:s,s:i}", "event", "kernel", "sha256", hash_a,
		    "size", (json_int_t)1, "vm", "a", "x", 1),
		json_pack("{s:s,s:s,s:I,s:s}", "event", "kernel", "sha256", "ABC", "size",
		    (json_int_t)1, "vm", "a"),
		json_pack("{s:s,s:s,s:I,s:s}", "event", "kernel", "sha256", hash_a, "size",
		    (json_int_t)-1, "vm", "a"),
		json_pack("{s:s,s:s,s:s}", "cmdline", "x", "event", "cmdline", "vm", "../a"),
		json_pack("{s:i,s:s,s:s}", "cmdline", 1, "event", "cmdline", "vm", "a"),
		json_pack("{s:s,s:s,s:s}", "config", "x", "event", "config", "vm", "a"),
		json_pack("[s]", "kernel"),
	};
	json_t *big;
	char *line = (char *)0x1, *huge;
	size_t i, len = 7;
	uint8_t d[32];

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_non_null(bad[i]);
		assert_int_equal(eventlog_format(0, PCR, bad[i], &line, &len, d), -EINVAL);
		assert_ptr_equal(line, (char *)0x1);
		assert_int_equal(len, 7);
		json_decref(bad[i]);
	}
	big = config("a");
	assert_int_equal(eventlog_format(0, 24, big, &line, &len, d), -EINVAL);
	json_decref(big);
	/* A record longer than a line may be is never written. */
	huge = malloc(EVENTLOG_LINE_MAX + 1);
	assert_non_null(huge);
	memset(huge, 'x', EVENTLOG_LINE_MAX);
	huge[EVENTLOG_LINE_MAX] = '\0';
	big = json_pack("{s:s,s:s,s:s}", "cmdline", huge, "event", "cmdline", "vm", "a");
	assert_int_equal(eventlog_format(0, PCR, big, &line, &len, d), -E2BIG);
	json_decref(big);
	free(huge);
}

static void
test_replay_good(void **state)
{
	struct log l;
	struct seen s;
	uint8_t pcr[32], want[32], ld[32];
	uint64_t n = 0;
	const char *reason = NULL;
	size_t i;

	(void)state;
	good_log(&l);
	memset(&s, 0, sizeof(s));
	assert_int_equal(eventlog_replay(l.buf, l.len, PCR, pcr, &n, collect, &s, &reason), 0);
	assert_int_equal(n, 9);
	memset(want, 0, 32);
	for (i = 0; i < l.nlines; i++)
		eventlog_extend(want, l.digests[i]);
	assert_memory_equal(pcr, want, 32);

	assert_int_equal(s.n, 2);
	assert_string_equal(s.vm[0], "vm-a");
	assert_string_equal(s.vm[1], "vm-b");
	SHA256(l.digests[0], 5 * 32, ld);
	assert_memory_equal(s.digest[0], ld, 32);
	SHA256(l.digests[5], 4 * 32, ld);
	assert_memory_equal(s.digest[1], ld, 32);

	/* No callback needed; ret_n optional. */
	assert_int_equal(eventlog_replay(l.buf, l.len, PCR, pcr, NULL, NULL, NULL, NULL), 0);
	assert_memory_equal(pcr, want, 32);
	log_free(&l);
}

static void
test_replay_empty(void **state)
{
	uint8_t pcr[32], zero[32];
	uint64_t n = 9;
	struct seen s;

	(void)state;
	memset(zero, 0, 32);
	memset(pcr, 0xaa, 32);
	memset(&s, 0, sizeof(s));
	assert_int_equal(eventlog_replay("", 0, PCR, pcr, &n, collect, &s, NULL), 0);
	assert_memory_equal(pcr, zero, 32);
	assert_int_equal(n, 0);
	assert_int_equal(s.n, 0);
	memset(pcr, 0xaa, 32);
	assert_int_equal(eventlog_replay(NULL, 0, PCR, pcr, &n, NULL, NULL, NULL), 0);
	assert_memory_equal(pcr, zero, 32);
}

/* Change one byte of line i in place, keeping it canonical. */
static void
test_altered_lines(void **state)
{
	struct log l;
	size_t i;

	(void)state;
	good_log(&l);
	for (i = 0; i < l.nlines; i++) {
		char *p = strstr(l.lines[i], "\"vm\":\"vm-");

		assert_non_null(p);
		p[9] = 'q';            /* vm-a -> vm-q: another VM, same digest line */
		expect_reject(&l, "digest_mismatch");
		p[9] = i < 5 ? 'a' : 'b';
	}
	/* The digest itself altered. */
	{
		char *p = strstr(l.lines[2], "\"digest\":\"");

		p[10] = p[10] == '0' ? '1' : '0';
		expect_reject(&l, "digest_mismatch");
	}
	log_free(&l);
}

/* Rewriting a record with its digest recomputed replays, but to another
 * PCR value: only the TPM's quote of the PCR catches that. */
static void
test_rewritten_record_changes_pcr(void **state)
{
	struct log l, m;
	uint8_t a[32], b[32];

	(void)state;
	good_log(&l);
	memset(&m, 0, sizeof(m));
	launch(&m, "vm-a", 1);
	add(&m, artifact("kernel", "vm-b", 999));
	add(&m, artifact("initrd", "vm-b", 2000));
	add(&m, cmdline("vm-b"));
	add(&m, config("vm-b"));
	join(&m);
	assert_int_equal(eventlog_replay(l.buf, l.len, PCR, a, NULL, NULL, NULL, NULL), 0);
	assert_int_equal(eventlog_replay(m.buf, m.len, PCR, b, NULL, NULL, NULL, NULL), 0);
	assert_memory_not_equal(a, b, 32);
	log_free(&l);
	log_free(&m);
}

static void
test_dropped_duplicated_reordered(void **state)
{
	struct log l;
	size_t i, j;

	(void)state;
	good_log(&l);
	for (i = 0; i < l.nlines; i++) {
		struct log d;
		const char *reason;

		/* Drop line i. */
		memset(&d, 0, sizeof(d));
		for (j = 0; j < l.nlines; j++) {
			if (j == i)
				continue;
			d.lines[d.nlines] = l.lines[j];
			d.lens[d.nlines++] = l.lens[j];
		}
		join(&d);
		reason = reject(d.buf, d.len);
		assert_string_equal(reason, i + 1 == l.nlines ? "incomplete_launch" : "recnum_gap");
		free(d.buf);

		/* Duplicate line i. */
		memset(&d, 0, sizeof(d));
		for (j = 0; j < l.nlines; j++) {
			d.lines[d.nlines] = l.lines[j];
			d.lens[d.nlines++] = l.lens[j];
			if (j == i) {
				d.lines[d.nlines] = l.lines[j];
				d.lens[d.nlines++] = l.lens[j];
			}
		}
		join(&d);
		assert_string_equal(reject(d.buf, d.len), "recnum_gap");
		free(d.buf);

		/* Swap lines i and i+1. */
		if (i + 1 < l.nlines) {
			memset(&d, 0, sizeof(d));
			for (j = 0; j < l.nlines; j++) {
				size_t k = j == i ? i + 1 : j == i + 1 ? i : j;

				d.lines[d.nlines] = l.lines[k];
				d.lens[d.nlines++] = l.lens[k];
			}
			join(&d);
			assert_string_equal(reject(d.buf, d.len), "recnum_gap");
			free(d.buf);
		}
	}
	/* Truncated in the middle of the last line, as by a crash. */
	assert_string_equal(reject(l.buf, l.len - 10), "unterminated_line");
	assert_string_equal(reject(l.buf, l.len - 1), "unterminated_line");
	log_free(&l);
}

/* Records renumbered so the numbers are right but the order is not. */
static void
test_out_of_order(void **state)
{
	struct log l;

	(void)state;
	memset(&l, 0, sizeof(l));
	add(&l, artifact("initrd", "a", 1));
	expect_reject(&l, "out_of_order");
	log_free(&l);

	add(&l, artifact("kernel", "a", 1));
	add(&l, cmdline("a"));
	expect_reject(&l, "out_of_order");
	log_free(&l);

	add(&l, artifact("kernel", "a", 1));
	add(&l, artifact("initrd", "a", 1));
	add(&l, cmdline("a"));
	add(&l, artifact("rootfs", "a", 1));
	expect_reject(&l, "out_of_order");
	log_free(&l);

	add(&l, artifact("kernel", "a", 1));
	add(&l, artifact("initrd", "a", 1));
	add(&l, artifact("initrd", "a", 1));
	expect_reject(&l, "out_of_order");
	log_free(&l);

	add(&l, artifact("kernel", "a", 1));
	add(&l, artifact("initrd", "a", 1));
	add(&l, cmdline("a"));
	add(&l, config("a"));
	add(&l, config("a"));
	expect_reject(&l, "out_of_order");
	log_free(&l);

	add(&l, config("a"));
	expect_reject(&l, "out_of_order");
	log_free(&l);
}

static void
test_interleaved_incomplete_duplicate(void **state)
{
	struct log l;

	(void)state;
	memset(&l, 0, sizeof(l));
	add(&l, artifact("kernel", "a", 1));
	add(&l, artifact("kernel", "b", 1));
	expect_reject(&l, "interleaved_launch");
	log_free(&l);

	add(&l, artifact("kernel", "a", 1));
	add(&l, artifact("initrd", "b", 1));
	expect_reject(&l, "interleaved_launch");
	log_free(&l);

	add(&l, artifact("kernel", "a", 1));
	add(&l, artifact("initrd", "a", 1));
	add(&l, cmdline("a"));
	add(&l, config("b"));
	expect_reject(&l, "interleaved_launch");
	log_free(&l);

	launch(&l, "a", 0);
	add(&l, artifact("kernel", "b", 1));
	add(&l, artifact("initrd", "b", 1));
	add(&l, cmdline("b"));
	expect_reject(&l, "incomplete_launch");
	log_free(&l);

	launch(&l, "a", 0);
	launch(&l, "b", 1);
	launch(&l, "a", 1);
	expect_reject(&l, "duplicate_vm");
	log_free(&l);
}

static void
test_unknown_event_and_fields(void **state)
{
	struct log l;

	(void)state;
	memset(&l, 0, sizeof(l));
	add_raw(&l, json_pack("{s:s,s:s}", "event", "firmware", "vm", "a"), 0, PCR);
	expect_reject(&l, "unknown_event");
	log_free(&l);

	add_raw(&l, json_pack("{s:s,s:s,s:I,s:s,s:b}", "event", "kernel", "sha256", hash_a,
	    "size", (json_int_t)1, "vm", "a", "extra", 1), 0, PCR);
	expect_reject(&l, "unknown_field");
	log_free(&l);

	add_raw(&l, json_pack("{s:s,s:I,s:s}", "event", "kernel", "size", (json_int_t)1,
	    "vm", "a"), 0, PCR);
	expect_reject(&l, "bad_field");
	log_free(&l);

	add_raw(&l, json_pack("{s:s,s:s,s:I,s:s}", "event", "kernel", "sha256", hash_a,
	    "size", (json_int_t)1, "vm", "bad/id"), 0, PCR);
	expect_reject(&l, "bad_vm_id");
	log_free(&l);

	add_raw(&l, json_pack("{s:s,s:s,s:s,s:s}", "event", "kernel", "sha256", hash_a,
	    "size", "1", "vm", "a"), 0, PCR);
	expect_reject(&l, "bad_field");
	log_free(&l);

	add_raw(&l, json_pack("{s:i,s:s}", "event", 3, "vm", "a"), 0, PCR);
	expect_reject(&l, "bad_field");
	log_free(&l);

	add_raw(&l, artifact("kernel", "a", 1), 0, 7);
	expect_reject(&l, "wrong_pcr");
	log_free(&l);

	add_raw(&l, artifact("kernel", "a", 1), 1, PCR);
	expect_reject(&l, "recnum_gap");
	log_free(&l);
}

/* Lines edited by hand: each must be rejected for the reason named. */
static void
test_bad_envelopes(void **state)
{
	static const struct { const char *from, *to, *why; } edits[] = {
		{ "\"pcr\":15", "\"pcr\":\"15\"", "bad_field" },
		{ "\"pcr\":15", "\"pcr\":24", "bad_field" },
		{ "\"recnum\":0", "\"recnum\":-1", "bad_field" },
		{ "\"recnum\":0", "\"recnum\":00", "bad_json" },
		{ "\"content_type\":\"warrant\"", "\"content_type\":\"cel\"", "bad_content_type" },
		{ "\"hashAlg\":\"sha256\"", "\"hashAlg\":\"sha1\"", "bad_hash_alg" },
		{ "\"hashAlg\":\"sha256\"}]", "\"hashAlg\":\"sha256\"},{\"digest\":\"00\","
		    "\"hashAlg\":\"sha256\"}]", "bad_field" },
		{ "\"hashAlg\":\"sha256\"}]", "\"hashAlg\":\"sha256\",\"x\":1}]", "unknown_field" },
		{ "\"recnum\":0}", "\"recnum\":0,\"x\":1}", "unknown_field" },
		{ "{\"content\"", "{\"aaa\":1,\"content\"", "unknown_field" },
		{ "\"content_type\"", "\"content_type\"", NULL },
		/* Non-canonical spellings of the same record. */
		{ "{\"content\":", "{ \"content\":", "non_canonical" },
		{ "\"pcr\":15", "\"pcr\": 15", "non_canonical" },
		{ "\"vm\":\"vm-a\"", "\"vm\":\"vm\\u002da\"", "non_canonical" },
		{ "\"pcr\":15,\"recnum\":0", "\"recnum\":0,\"pcr\":15", "non_canonical" },
		{ "\"recnum\":0}", "\"recnum\":0}  ", "non_canonical" },
		{ "\"recnum\":0}", "\"recnum\":0}\r", "non_canonical" },
		/* Not JSON, or JSON cjson refuses. */
		{ "\"recnum\":0}", "\"recnum\":0", "bad_json" },
		{ "\"recnum\":0}", "\"recnum\":0.0}", "bad_json" },
		{ "\"pcr\":15", "\"pcr\":15,\"pcr\":15", "bad_json" },
	};
	struct log l;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
		char *line, *p, *nl;
		size_t flen = strlen(edits[i].from), tlen = strlen(edits[i].to), len;

		memset(&l, 0, sizeof(l));
		launch(&l, "vm-a", 0);
		p = strstr(l.lines[0], edits[i].from);
		assert_non_null(p);
		len = l.lens[0] - flen + tlen;
		line = malloc(len + 1);
		assert_non_null(line);
		memcpy(line, l.lines[0], (size_t)(p - l.lines[0]));
		memcpy(line + (p - l.lines[0]), edits[i].to, tlen);
		memcpy(line + (p - l.lines[0]) + tlen, p + flen,
		    l.lens[0] - (size_t)(p - l.lines[0]) - flen + 1);
		free(l.lines[0]);
		l.lines[0] = line;
		l.lens[0] = len;
		join(&l);
		nl = memchr(l.buf, '\n', l.len);
		assert_non_null(nl);
		if (edits[i].why == NULL) {
			assert_int_equal(eventlog_replay(l.buf, l.len, PCR, (uint8_t[32]){ 0 }, NULL,
			    NULL, NULL, NULL), 0);
		} else {
			struct eventlog_event ev = { 5, 5, { 0 }, (json_t *)0x1 };

			assert_string_equal(reject(l.buf, l.len), edits[i].why);
			assert_int_equal(eventlog_parse_line(l.buf, (size_t)(nl - l.buf), &ev),
			    -EINVAL);
			assert_int_equal(ev.recnum, 5);
			assert_ptr_equal(ev.content, (json_t *)0x1);
		}
		log_free(&l);
	}
}

static void
test_bounds(void **state)
{
	struct log l;
	char *buf;
	size_t n;

	(void)state;
	/* One line over EVENTLOG_LINE_MAX, with or without its newline. */
	n = EVENTLOG_LINE_MAX + 2;
	buf = malloc(n);
	assert_non_null(buf);
	memset(buf, ' ', n);
	buf[n - 1] = '\n';
	assert_string_equal(reject(buf, n), "line_too_long");
	assert_string_equal(reject(buf, n - 1), "line_too_long");
	assert_string_equal(reject(buf, EVENTLOG_LINE_MAX), "unterminated_line");
	buf[EVENTLOG_LINE_MAX] = '\n';
	/* Exactly EVENTLOG_LINE_MAX is allowed through to the parser. */
	assert_string_equal(reject(buf, EVENTLOG_LINE_MAX + 1), "bad_json");
	free(buf);

	/* The whole log over EVENTLOG_MAX_BYTES, whatever it holds. */
	buf = calloc(1, EVENTLOG_MAX_BYTES + 1);
	assert_non_null(buf);
	assert_string_equal(reject(buf, EVENTLOG_MAX_BYTES + 1), "log_too_large");
	free(buf);

	/* Blank lines, NUL bytes. */
	memset(&l, 0, sizeof(l));
	launch(&l, "a", 0);
	join(&l);
	buf = malloc(l.len + 2);
	assert_non_null(buf);
	buf[0] = '\n';
	memcpy(buf + 1, l.buf, l.len);
	assert_string_equal(reject(buf, l.len + 1), "empty_line");
	memcpy(buf, l.buf, l.len);
	buf[l.len] = '\n';
	assert_string_equal(reject(buf, l.len + 1), "empty_line");
	memcpy(buf, l.buf, l.len);
	buf[5] = '\0';
	assert_string_equal(reject(buf, l.len), "bad_json");
	free(buf);
	log_free(&l);
}

static void
test_callback_error_stops(void **state)
{
	struct log l;
	struct seen s;
	uint8_t pcr[32];
	const char *reason = NULL;

	(void)state;
	good_log(&l);
	memset(&s, 0, sizeof(s));
	s.fail_at = 2;
	assert_int_equal(eventlog_replay(l.buf, l.len, PCR, pcr, NULL, collect, &s, &reason),
	    -EPERM);
	assert_string_equal(reason, "callback_failed");
	assert_int_equal(s.n, 1);
	/* Another launch PCR: every record is for 15. */
	assert_int_equal(eventlog_replay(l.buf, l.len, 16, pcr, NULL, NULL, NULL, &reason),
	    -EINVAL);
	assert_string_equal(reason, "wrong_pcr");
	assert_int_equal(eventlog_replay(l.buf, l.len, 24, pcr, NULL, NULL, NULL, &reason),
	    -EINVAL);
	assert_string_equal(reason, "invalid_argument");
	log_free(&l);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_extend_is_tpm2_extend),
		cmocka_unit_test(test_format_vector),
		cmocka_unit_test(test_parse_roundtrip),
		cmocka_unit_test(test_format_refuses),
		cmocka_unit_test(test_replay_good),
		cmocka_unit_test(test_replay_empty),
		cmocka_unit_test(test_altered_lines),
		cmocka_unit_test(test_rewritten_record_changes_pcr),
		cmocka_unit_test(test_dropped_duplicated_reordered),
		cmocka_unit_test(test_out_of_order),
		cmocka_unit_test(test_interleaved_incomplete_duplicate),
		cmocka_unit_test(test_unknown_event_and_fields),
		cmocka_unit_test(test_bad_envelopes),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_callback_error_stops),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
