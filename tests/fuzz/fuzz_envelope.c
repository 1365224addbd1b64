/* libFuzzer target for envelope_parse (lib/envelope.c), with
 * envelope_to_json, envelope_meet, envelope_leq and envelope_check checked
 * on what it accepts. The input is one JSON document: an envelope, or an
 * array [A, B, call...] of two envelopes and calls {"tool": T, "args": {...}}.
 * Invariants: the JSON form round-trips exactly; the meet is commutative
 * and idempotent and lies below both sides; every call gets from the meet
 * exactly the lower of what A and B give it; a refusal always comes with a
 * short printable rule; budgets only go down. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"
#include "envelope.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Envelopes every input is also met with, and calls every envelope is
 * asked about. */
static const char *const refs[] = {
	"{\"fs.read\":\"allow\",\"fs.write\":{\"level\":\"ask\",\"paths\":[\"/out/\"],\"budget\":10},"
	"\"exec\":{\"level\":\"allow\",\"argv\":[[\"ls\"],[\"git\",\"status\"]],\"timeout_ms\":5000,"
	"\"max_output\":65536},\"fs.list\":\"allow\"}",
	"{\"fs.read\":{\"level\":\"ask\",\"paths\":[\"/a/\",\"/out/x\"]},\"exec\":{\"level\":\"ask\","
	"\"argv\":[[\"git\"]]}}",
	"{}",
};

static const char *const calls[] = {
	"{\"tool\":\"fs.read\",\"args\":{\"path\":\"/out/x\"}}",
	"{\"tool\":\"fs.write\",\"args\":{\"path\":\"/out/a/b\"}}",
	"{\"tool\":\"fs.write\",\"args\":{\"path\":\"/out\"}}",
	"{\"tool\":\"fs.list\",\"args\":{\"path\":\"/\"}}",
	"{\"tool\":\"fs.read\",\"args\":{\"path\":\"/a/../etc\"}}",
	"{\"tool\":\"exec\",\"args\":{\"argv\":[\"git\",\"status\",\"-s\"]}}",
	"{\"tool\":\"exec\",\"args\":{\"argv\":[\"ls\"]}}",
	"{\"tool\":\"net.fetch\",\"args\":{}}",
};

#define NCALLS_MAX 64

static struct envelope *
parse(const json_t *j)
{
	struct envelope *e = NULL;
	char err[256];
	int r;

	r = envelope_parse(j, &e, err, sizeof(err));
	if (r == 0) {
		if (e == NULL) {
			abort();
		}
		return e;
	}
	/* Refused: a negative errno, a message, nothing handed out. */
	if (r >= 0 || e != NULL || err[0] == '\0' || strlen(err) >= sizeof(err)) {
		abort();
	}
	return NULL;
}

static char *
dump(const struct envelope *e)
{
	json_t *j = envelope_to_json(e);
	char *s = NULL;
	size_t len;

	if (j == NULL || cjson_dump(j, &s, &len) != 0) {
		abort();
	}
	json_decref(j);
	return s;
}

/* The JSON form parses back to the same envelope, in the same bytes. */
static void
round_trip(const struct envelope *e)
{
	json_t *j = envelope_to_json(e);
	struct envelope *back;
	char *s1, *s2;

	if (j == NULL) {
		abort();
	}
	back = parse(j);
	json_decref(j);
	if (back == NULL || !envelope_equal(back, e) || !envelope_leq(back, e) ||
	    !envelope_leq(e, back)) {
		abort();
	}
	s1 = dump(e);
	s2 = dump(back);
	if (strcmp(s1, s2) != 0) {
		abort();
	}
	free(s1);
	free(s2);
	envelope_free(back);
}

static enum envelope_level
decide(const struct envelope *e, const json_t *call)
{
	const char *tool = json_string_value(json_object_get(call, "tool")), *rule = NULL;
	enum envelope_level l = ENVELOPE_NEVER;
	size_t i;

	if (tool == NULL) {
		tool = "";
	}
	if (envelope_check(e, tool, json_object_get(call, "args"), &l, &rule) != 0) {
		abort();
	}
	if (l != ENVELOPE_NEVER && l != ENVELOPE_ASK && l != ENVELOPE_ALLOW) {
		abort();
	}
	if ((l == ENVELOPE_NEVER) != (rule != NULL)) {
		abort();
	}
	if (rule != NULL) {
		if (strlen(rule) >= 512) {
			abort();
		}
		for (i = 0; rule[i] != '\0'; i++) {
			if ((unsigned char)rule[i] < 0x20 || (unsigned char)rule[i] >= 0x7f) {
				abort();
			}
		}
	}
	return l;
}

static void
laws(const struct envelope *a, const struct envelope *b, json_t *const *cs, size_t ncs)
{
	struct envelope *ab = NULL, *ba = NULL, *aa = NULL;
	size_t i;

	if (envelope_meet(a, b, &ab) != 0 || envelope_meet(b, a, &ba) != 0 ||
	    envelope_meet(a, a, &aa) != 0) {
		abort();
	}
	if (!envelope_equal(ab, ba) || !envelope_equal(aa, a) || !envelope_leq(ab, a) ||
	    !envelope_leq(ab, b) || envelope_leq(a, b) != envelope_equal(ab, a)) {
		abort();
	}
	round_trip(ab);
	for (i = 0; i < ncs; i++) {
		enum envelope_level la = decide(a, cs[i]), lb = decide(b, cs[i]);
		enum envelope_level lm = decide(ab, cs[i]);

		if (lm != (la < lb ? la : lb)) {
			abort();
		}
		if (envelope_leq(a, b) && la > lb) {
			abort();
		}
	}
	envelope_free(ab);
	envelope_free(ba);
	envelope_free(aa);
}

/* Charging lowers a budget by one until it is spent, and the charged
 * envelope lies below the one before. */
static void
budgets(const struct envelope *e)
{
	static const char *const tools[] = { "fs.read", "fs.write", "fs.list", "exec", "x" };
	struct envelope *c = NULL;
	uint64_t before, after;
	size_t i;
	int r;

	if (envelope_meet(e, e, &c) != 0) {
		abort();
	}
	for (i = 0; i < sizeof(tools) / sizeof(tools[0]); i++) {
		if (envelope_budget(c, tools[i], &before) != 0) {
			if (envelope_charge(c, tools[i]) != -ENOENT) {
				abort();
			}
			continue;
		}
		r = envelope_charge(c, tools[i]);
		if (envelope_budget(c, tools[i], &after) != 0) {
			abort();
		}
		if ((before == 0 && r != -EDQUOT) || (before != 0 && r != 0) ||
		    (before == UINT64_MAX && after != before) ||
		    (before != UINT64_MAX && before != 0 && after != before - 1) ||
		    (before == 0 && after != 0)) {
			abort();
		}
	}
	if (!envelope_leq(c, e)) {
		abort();
	}
	envelope_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *doc = NULL, *cs[NCALLS_MAX + 8];
	struct envelope *a = NULL, *b = NULL, *ref[3] = { NULL, NULL, NULL };
	size_t i, ncs = 0;

	if (cjson_parse((const char *)data, size, 64 * 1024, &doc) != 0) {
		return 0;
	}
	for (i = 0; i < 3; i++) {
		json_t *j = NULL;

		if (cjson_parse(refs[i], strlen(refs[i]), 4096, &j) != 0) {
			abort();
		}
		ref[i] = parse(j);
		json_decref(j);
		if (ref[i] == NULL) {
			abort();
		}
	}
	for (i = 0; i < sizeof(calls) / sizeof(calls[0]); i++) {
		if (cjson_parse(calls[i], strlen(calls[i]), 4096, &cs[ncs]) != 0) {
			abort();
		}
		ncs++;
	}
	if (json_is_array(doc) && json_array_size(doc) >= 2) {
		a = parse(json_array_get(doc, 0));
		b = parse(json_array_get(doc, 1));
		for (i = 2; i < json_array_size(doc) && ncs < NCALLS_MAX; i++) {
			cs[ncs++] = json_incref(json_array_get(doc, i));
		}
	} else {
		a = parse(doc);
	}
	if (a != NULL) {
		round_trip(a);
		budgets(a);
		for (i = 0; i < 3; i++) {
			laws(a, ref[i], cs, ncs);
		}
	}
	if (a != NULL && b != NULL) {
		laws(a, b, cs, ncs);
		laws(b, a, cs, ncs);
	}
	for (i = 0; i < ncs; i++) {
		json_decref(cs[i]);
	}
	for (i = 0; i < 3; i++) {
		envelope_free(ref[i]);
	}
	envelope_free(a);
	envelope_free(b);
	json_decref(doc);
	return 0;
}
