/* Unit tests for lib/envelope.c: strict parsing, the decision on calls,
 * budgets, and the lattice laws checked on random envelopes: the meet is
 * commutative, associative and idempotent, lies below both sides, and
 * narrowing never widens what a call gets. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"
#include "envelope.h"

static const char example[] =
    "{\"fs.read\": \"allow\", \"fs.write\": {\"level\":\"ask\",\"paths\":[\"/out/\"],"
    "\"budget\":10}, \"exec\": {\"level\":\"allow\",\"argv\":[[\"ls\"],[\"git\",\"status\"]],"
    "\"timeout_ms\":5000,\"max_output\":65536}, \"fs.list\": \"allow\"}";

static json_t *
load(const char *text)
{
	json_t *j = NULL;

	assert_int_equal(cjson_parse(text, strlen(text), 1 << 20, &j), 0);
	return j;
}

static struct envelope *
parse_ok(const char *text)
{
	struct envelope *e = NULL;
	char err[256];
	json_t *j = load(text);
	int r;

	r = envelope_parse(j, &e, err, sizeof(err));
	if (r != 0) {
		print_error("parse of %s: %d %s\n", text, r, err);
		fail();
	}
	json_decref(j);
	assert_non_null(e);
	return e;
}

static void
expect_bad(const char *text, int want, const char *msg)
{
	struct envelope *e = (struct envelope *)0x1;
	char err[256];
	json_t *j = load(text);
	int r;

	r = envelope_parse(j, &e, err, sizeof(err));
	json_decref(j);
	if (r != want || (msg != NULL && strstr(err, msg) == NULL)) {
		print_error("%s: r=%d (want %d) err=\"%s\" (want \"%s\")\n", text, r, want, err,
		    msg != NULL ? msg : "");
		fail();
	}
	assert_ptr_equal(e, (struct envelope *)0x1);   /* not written on failure */
}

static char *
dump(const struct envelope *e)
{
	json_t *j = envelope_to_json(e);
	char *s = NULL;
	size_t len;

	assert_non_null(j);
	assert_int_equal(cjson_dump(j, &s, &len), 0);
	json_decref(j);
	return s;
}

static void
assert_dump(const struct envelope *e, const char *want)
{
	char *s = dump(e);

	if (strcmp(s, want) != 0) {
		print_error("got  %s\nwant %s\n", s, want);
		fail();
	}
	free(s);
}

/* The level a call gets; rule copied out if given. */
static enum envelope_level
check(const struct envelope *e, const char *tool, const char *args, char *rule, size_t rlen)
{
	enum envelope_level l = ENVELOPE_ALLOW;
	const char *r = (const char *)0x1;
	json_t *j = args != NULL ? load(args) : NULL;

	assert_int_equal(envelope_check(e, tool, j, &l, &r), 0);
	json_decref(j);
	if (l == ENVELOPE_NEVER) {
		assert_non_null(r);
		assert_true(r != (const char *)0x1);
		assert_true(strlen(r) < 512);
	} else {
		assert_null(r);
	}
	if (rule != NULL) {
		snprintf(rule, rlen, "%s", r != NULL ? r : "");
	}
	return l;
}

/* ---- parsing ---------------------------------------------------------- */

static void
test_parse_example(void **state)
{
	struct envelope *e;
	uint32_t t;
	size_t mo;
	uint64_t left;

	(void)state;
	e = parse_ok(example);
	assert_dump(e, "{\"exec\":{\"argv\":[[\"git\",\"status\"],[\"ls\"]],\"level\":\"allow\","
	    "\"max_output\":65536,\"timeout_ms\":5000},\"fs.list\":\"allow\",\"fs.read\":\"allow\","
	    "\"fs.write\":{\"budget\":10,\"level\":\"ask\",\"paths\":[\"/out/\"]}}");
	assert_int_equal(envelope_limits(e, "exec", &t, &mo), 0);
	assert_int_equal(t, 5000);
	assert_int_equal(mo, 65536);
	assert_int_equal(envelope_limits(e, "fs.read", &t, &mo), 0);
	assert_int_equal(t, 0);
	assert_int_equal(mo, 0);
	assert_int_equal(envelope_budget(e, "fs.write", &left), 0);
	assert_int_equal(left, 10);
	assert_int_equal(envelope_budget(e, "fs.read", &left), 0);
	assert_true(left == UINT64_MAX);
	assert_int_equal(envelope_budget(e, "net.fetch", &left), -ENOENT);
	envelope_free(e);

	/* Defaults, normal form, and what is dropped. */
	e = parse_ok("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"git\"],[\"git\",\"log\"],[\"git\"]]},"
	    "\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a/b\",\"/a/\",\"/c\",\"/c\"]},"
	    "\"fs.write\":\"never\",\"fs.list\":{\"level\":\"allow\",\"paths\":[\"/x/\",\"/\"]}}");
	assert_dump(e, "{\"exec\":{\"argv\":[[\"git\"]],\"level\":\"ask\",\"max_output\":1048576,"
	    "\"timeout_ms\":10000},\"fs.list\":\"allow\",\"fs.read\":{\"level\":\"allow\","
	    "\"paths\":[\"/a/\",\"/c\"]}}");
	assert_int_equal(envelope_limits(e, "fs.write", &t, &mo), -ENOENT);
	envelope_free(e);

	/* Nothing, and bounds that admit nothing, are "never". */
	e = parse_ok("{}");
	assert_dump(e, "{}");
	envelope_free(e);
	e = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[]},\"exec\":{\"level\":\"allow\","
	    "\"argv\":[]},\"fs.list\":{\"level\":\"never\",\"paths\":[\"/\"],\"budget\":3},"
	    "\"fs.write\":{\"level\":\"allow\",\"budget\":0}}");
	assert_dump(e, "{\"fs.write\":{\"budget\":0,\"level\":\"allow\"}}");
	envelope_free(e);

	/* Limits at their edges. */
	e = parse_ok("{\"exec\":{\"level\":\"allow\",\"argv\":[[\"a\",\"\"]],\"timeout_ms\":600000,"
	    "\"max_output\":16777216,\"budget\":1000000000}}");
	assert_dump(e, "{\"exec\":{\"argv\":[[\"a\",\"\"]],\"budget\":1000000000,\"level\":\"allow\","
	    "\"max_output\":16777216,\"timeout_ms\":600000}}");
	envelope_free(e);

	assert_string_equal(envelope_level_name(ENVELOPE_NEVER), "never");
	assert_string_equal(envelope_level_name(ENVELOPE_ASK), "ask");
	assert_string_equal(envelope_level_name(ENVELOPE_ALLOW), "allow");
	assert_string_equal(envelope_level_name((enum envelope_level)7), "never");
}

static void
test_parse_bad(void **state)
{
	char buf[16384], name[200];
	struct envelope *e = NULL;
	size_t off, i;
	json_t *j;

	(void)state;
	expect_bad("[]", -EINVAL, "object");
	expect_bad("\"allow\"", -EINVAL, "object");
	expect_bad("{\"fs.reed\":\"allow\"}", -EINVAL,
	    "tool \"fs.reed\": unknown tool (known: exec, fs.list, fs.read, fs.write)");
	expect_bad("{\"net.fetch\":\"never\"}", -EINVAL, "\"net.fetch\": unknown tool");
	expect_bad("{\"FS.READ\":\"allow\"}", -EINVAL, "unknown tool");
	expect_bad("{\"a\\nb\\\"c\":\"allow\"}", -EINVAL, "tool \"a?b?c\": unknown tool");
	memset(name, 'x', sizeof(name));
	snprintf(buf, sizeof(buf), "{\"%.*s\":\"allow\"}", 150, name);
	expect_bad(buf, -EINVAL, "xxx...\": unknown tool");

	expect_bad("{\"fs.read\":\"yes\"}", -EINVAL, "tool \"fs.read\": must be");
	expect_bad("{\"fs.read\":\"Allow\"}", -EINVAL, "fs.read");
	expect_bad("{\"fs.read\":true}", -EINVAL, "fs.read");
	expect_bad("{\"fs.read\":null}", -EINVAL, "fs.read");
	expect_bad("{\"fs.read\":{}}", -EINVAL, "\"level\" must be");
	expect_bad("{\"fs.read\":{\"level\":2}}", -EINVAL, "\"level\" must be");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"max_bytes\":1}}", -EINVAL,
	    "tool \"fs.read\": unknown bound \"max_bytes\" (fs.read takes: level, budget, paths)");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"argv\":[[\"ls\"]]}}", -EINVAL,
	    "unknown bound \"argv\"");
	expect_bad("{\"exec\":{\"level\":\"allow\",\"argv\":[[\"ls\"]],\"paths\":[\"/\"]}}",
	    -EINVAL, "(exec takes: level, budget, argv, timeout_ms, max_output)");
	expect_bad("{\"fs.read\":{\"level\":\"never\",\"Paths\":[]}}", -EINVAL, "\"Paths\"");

	/* budget */
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"budget\":-1}}", -ERANGE, "0..1000000000");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"budget\":1000000001}}", -ERANGE, "budget");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"budget\":\"1\"}}", -EINVAL, "budget");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"budget\":null}}", -EINVAL, "budget");

	/* paths */
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":\"/\"}}", -EINVAL, "\"paths\"");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"out/\"]}}", -EINVAL,
	    "\"paths\"[0]");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a\",\"\"]}}", -EINVAL,
	    "\"paths\"[1]");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a//b\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a/./b\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a/../b\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a/..\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a/.\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/..\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"//\"]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[1]}}", -EINVAL, "paths");
	expect_bad("{\"fs.read\":{\"level\":\"allow\",\"paths\":[[\"/\"]]}}", -EINVAL, "paths");
	/* ".x" and "..x" are names, not components to refuse. */
	e = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/.x/\",\"/a/..b\",\"/...\"]}}");
	envelope_free(e);
	off = (size_t)snprintf(buf, sizeof(buf), "{\"fs.read\":{\"level\":\"allow\",\"paths\":[");
	for (i = 0; i < 65; i++) {
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\"/p%zu\"", i ? "," : "", i);
	}
	snprintf(buf + off, sizeof(buf) - off, "]}}");
	expect_bad(buf, -E2BIG, "more than 64");
	/* A path of 4096 bytes is allowed, 4097 is not. */
	{
		char *big = malloc(4200 + 64);

		assert_non_null(big);
		off = (size_t)snprintf(big, 64, "{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"");
		big[off] = '/';
		memset(big + off + 1, 'a', 4095);
		snprintf(big + off + 4096, 64, "\"]}}");
		e = parse_ok(big);
		envelope_free(e);
		big[off + 4096] = 'a';
		snprintf(big + off + 4097, 64, "\"]}}");
		expect_bad(big, -EINVAL, "paths");
		free(big);
	}
	/* A NUL inside a path (only a program can make one). */
	j = json_pack("{s:{s:s,s:[o]}}", "fs.read", "level", "allow", "paths",
	    json_stringn("/a\0b", 4));
	assert_non_null(j);
	e = (struct envelope *)0x1;
	assert_int_equal(envelope_parse(j, &e, buf, sizeof(buf)), -EINVAL);
	assert_ptr_equal(e, (struct envelope *)0x1);
	json_decref(j);

	/* exec */
	expect_bad("{\"exec\":\"allow\"}", -EINVAL, "tool \"exec\": \"argv\" is required");
	expect_bad("{\"exec\":\"ask\"}", -EINVAL, "\"argv\" is required");
	expect_bad("{\"exec\":{\"level\":\"ask\"}}", -EINVAL, "\"argv\" is required");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[\"ls\"]}}", -EINVAL, "\"argv\"[0]");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[]]}}", -EINVAL, "\"argv\"[0]");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\"],[\"\"]]}}", -EINVAL,
	    "\"argv\"[1][0]");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\",1]]}}", -EINVAL,
	    "\"argv\"[0][1]");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":\"ls\"}}", -EINVAL, "\"argv\" must be");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\"]],\"timeout_ms\":0}}", -ERANGE,
	    "1..600000");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\"]],\"timeout_ms\":600001}}",
	    -ERANGE, "timeout_ms");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\"]],\"timeout_ms\":\"5\"}}",
	    -EINVAL, "timeout_ms");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\"]],\"max_output\":0}}", -ERANGE,
	    "1..16777216");
	expect_bad("{\"exec\":{\"level\":\"ask\",\"argv\":[[\"ls\"]],\"max_output\":16777217}}",
	    -ERANGE, "max_output");
	off = (size_t)snprintf(buf, sizeof(buf), "{\"exec\":{\"level\":\"allow\",\"argv\":[[");
	for (i = 0; i < 65; i++) {
		off += (size_t)snprintf(buf + off, sizeof(buf) - off, "%s\"a\"", i ? "," : "");
	}
	snprintf(buf + off, sizeof(buf) - off, "]]}}");
	expect_bad(buf, -EINVAL, "1..64 strings");
	j = json_pack("{s:{s:s,s:[[s,o]]}}", "exec", "level", "allow", "argv", "ls",
	    json_stringn("a\0b", 3));
	assert_non_null(j);
	e = (struct envelope *)0x1;
	assert_int_equal(envelope_parse(j, &e, buf, sizeof(buf)), -EINVAL);
	assert_non_null(strstr(buf, "without NUL"));
	json_decref(j);
	/* A real number, which only a program can hand in. */
	j = json_pack("{s:{s:s,s:f}}", "fs.read", "level", "allow", "budget", 1.0);
	assert_int_equal(envelope_parse(j, &e, buf, sizeof(buf)), -EINVAL);
	json_decref(j);

	/* NULL in, short error buffers. */
	assert_int_equal(envelope_parse(NULL, &e, buf, sizeof(buf)), -EINVAL);
	j = load("{\"x\":\"allow\"}");
	assert_int_equal(envelope_parse(j, &e, buf, 5), -EINVAL);
	assert_int_equal(strlen(buf), 4);
	assert_int_equal(envelope_parse(j, &e, NULL, 0), -EINVAL);
	assert_int_equal(envelope_parse(j, NULL, buf, sizeof(buf)), -EINVAL);
	json_decref(j);
	assert_ptr_equal(e, (struct envelope *)0x1);
}

/* ---- deciding calls --------------------------------------------------- */

static void
test_check(void **state)
{
	struct envelope *e;
	char rule[600];
	json_t *j;
	enum envelope_level l;
	const char *r;

	(void)state;
	e = parse_ok(example);

	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/x\"}", NULL, 0), ENVELOPE_ASK);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/a/b/c\",\"data\":\"x\"}", NULL, 0),
	    ENVELOPE_ASK);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out\"}", NULL, 0), ENVELOPE_ASK);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/\"}", NULL, 0), ENVELOPE_ASK);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/etc/x\"}", rule, sizeof(rule)),
	    ENVELOPE_NEVER);
	assert_string_equal(rule, "fs.write: path /etc/x is outside /out/");
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/outx\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/ou\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/\"}", NULL, 0), ENVELOPE_NEVER);
	/* Defence in depth: forms a resolved path never has. */
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/../etc/x\"}", rule, sizeof(rule)),
	    ENVELOPE_NEVER);
	assert_string_equal(rule, "fs.write: path is not an absolute path in normal form");
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/./x\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out//x\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/..\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/.\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"out/x\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":\"\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{\"path\":[\"/out/x\"]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", "{}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.write", NULL, NULL, 0), ENVELOPE_NEVER);
	j = json_pack("{s:o}", "path", json_stringn("/out/x\0/../../etc", 17));
	assert_int_equal(envelope_check(e, "fs.write", j, &l, &r), 0);
	assert_int_equal(l, ENVELOPE_NEVER);
	json_decref(j);
	/* The whole workspace, by default; still only normal forms. */
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/\"}", NULL, 0), ENVELOPE_ALLOW);
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/etc/shadow\"}", NULL, 0), ENVELOPE_ALLOW);
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/../etc/shadow\"}", NULL, 0),
	    ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.list", "{\"path\":\"/a\"}", NULL, 0), ENVELOPE_ALLOW);

	/* exec: argv prefixes, element by element. */
	assert_int_equal(check(e, "exec", "{\"argv\":[\"ls\"]}", NULL, 0), ENVELOPE_ALLOW);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"ls\",\"-l\",\"/\"]}", NULL, 0),
	    ENVELOPE_ALLOW);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"git\",\"status\"]}", NULL, 0),
	    ENVELOPE_ALLOW);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"git\",\"status\",\"-s\"]}", NULL, 0),
	    ENVELOPE_ALLOW);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"git\",\"push\"]}", rule, sizeof(rule)),
	    ENVELOPE_NEVER);
	assert_string_equal(rule, "exec: argv not allowed");
	assert_int_equal(check(e, "exec", "{\"argv\":[\"git\"]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"git status\"]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"lsx\"]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"/bin/ls\"]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{\"argv\":[]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{\"argv\":\"ls\"}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{\"argv\":[\"ls\",1]}", NULL, 0), ENVELOPE_NEVER);
	assert_int_equal(check(e, "exec", "{}", NULL, 0), ENVELOPE_NEVER);
	j = json_pack("{s:[o]}", "argv", json_stringn("ls\0rm", 5));
	assert_int_equal(envelope_check(e, "exec", j, &l, &r), 0);
	assert_int_equal(l, ENVELOPE_NEVER);
	json_decref(j);

	/* Unknown and absent tools. */
	assert_int_equal(check(e, "net.fetch", "{}", rule, sizeof(rule)), ENVELOPE_NEVER);
	assert_string_equal(rule, "net.fetch: unknown tool");
	assert_int_equal(check(e, "fs.read\n", "{}", rule, sizeof(rule)), ENVELOPE_NEVER);
	assert_string_equal(rule, "fs.read?: unknown tool");
	envelope_free(e);
	e = parse_ok("{\"fs.read\":\"allow\"}");
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/x\"}", rule, sizeof(rule)),
	    ENVELOPE_NEVER);
	assert_string_equal(rule, "fs.write: never in this envelope");
	assert_int_equal(envelope_check(NULL, "fs.read", NULL, &l, &r), -EINVAL);
	assert_int_equal(envelope_check(e, NULL, NULL, &l, &r), -EINVAL);
	assert_int_equal(envelope_check(e, "fs.read", NULL, NULL, &r), -EINVAL);
	j = load("{\"path\":\"/x\"}");
	assert_int_equal(envelope_check(e, "fs.read", j, &l, NULL), 0);
	assert_int_equal(l, ENVELOPE_ALLOW);
	json_decref(j);
	envelope_free(e);

	/* A file named exactly, several prefixes in the rule. */
	e = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/cfg/app.toml\",\"/data/\"]}}");
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/cfg/app.toml\"}", NULL, 0),
	    ENVELOPE_ALLOW);
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/cfg/app.toml/x\"}", NULL, 0),
	    ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/cfg/app.tom\"}", NULL, 0),
	    ENVELOPE_NEVER);
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/cfg/\"}", rule, sizeof(rule)),
	    ENVELOPE_NEVER);
	assert_string_equal(rule, "fs.read: path /cfg/ is outside /cfg/app.toml, /data/");
	assert_int_equal(check(e, "fs.read", "{\"path\":\"/e\\u00e9\\n\"}", rule, sizeof(rule)),
	    ENVELOPE_NEVER);
	assert_string_equal(rule, "fs.read: path /e??? is outside /cfg/app.toml, /data/");
	envelope_free(e);
}

/* The rule stays one bounded, printable line however long the bounds. */
static void
test_rule_bounded(void **state)
{
	char *text, name[300], rule[600];
	struct envelope *e;
	size_t off = 0, i, k;

	(void)state;
	text = malloc(65536);
	assert_non_null(text);
	off += (size_t)snprintf(text + off, 65536 - off,
	    "{\"fs.read\":{\"level\":\"allow\",\"paths\":[");
	for (i = 0; i < 64; i++) {
		memset(name, 'a' + (int)(i % 26), 200);
		name[200] = '\0';
		off += (size_t)snprintf(text + off, 65536 - off, "%s\"/%s%zu/\"", i ? "," : "",
		    name, i);
	}
	snprintf(text + off, 65536 - off, "]}}");
	e = parse_ok(text);
	memset(name, 'z', 250);
	name[250] = '\0';
	snprintf(text, 65536, "{\"path\":\"/%s\"}", name);
	assert_int_equal(check(e, "fs.read", text, rule, sizeof(rule)), ENVELOPE_NEVER);
	assert_true(strlen(rule) < 512);
	assert_non_null(strstr(rule, "fs.read: path /zzz"));
	assert_non_null(strstr(rule, "... is outside /aaa"));
	assert_int_equal(strcmp(rule + strlen(rule) - 3, "..."), 0);
	for (k = 0; rule[k] != '\0'; k++) {
		assert_true(rule[k] >= 0x20 && rule[k] < 0x7f);
	}
	envelope_free(e);
	free(text);
}

static void
test_charge(void **state)
{
	struct envelope *e;
	uint64_t left;
	int i;

	(void)state;
	e = parse_ok(example);
	for (i = 0; i < 10; i++) {
		assert_int_equal(envelope_charge(e, "fs.write"), 0);
	}
	assert_int_equal(envelope_charge(e, "fs.write"), -EDQUOT);
	assert_int_equal(envelope_charge(e, "fs.write"), -EDQUOT);
	assert_int_equal(envelope_budget(e, "fs.write", &left), 0);
	assert_int_equal(left, 0);
	/* A spent budget is charge's answer; check still gives the level. */
	assert_int_equal(check(e, "fs.write", "{\"path\":\"/out/x\"}", NULL, 0), ENVELOPE_ASK);
	assert_dump(e, "{\"exec\":{\"argv\":[[\"git\",\"status\"],[\"ls\"]],\"level\":\"allow\","
	    "\"max_output\":65536,\"timeout_ms\":5000},\"fs.list\":\"allow\",\"fs.read\":\"allow\","
	    "\"fs.write\":{\"budget\":0,\"level\":\"ask\",\"paths\":[\"/out/\"]}}");
	for (i = 0; i < 1000; i++) {
		assert_int_equal(envelope_charge(e, "fs.read"), 0);
	}
	assert_int_equal(envelope_charge(e, "net.fetch"), -ENOENT);
	assert_int_equal(envelope_charge(e, NULL), -EINVAL);
	assert_int_equal(envelope_charge(NULL, "fs.read"), -EINVAL);
	envelope_free(e);
	e = parse_ok("{\"fs.read\":\"allow\"}");
	assert_int_equal(envelope_charge(e, "fs.write"), -ENOENT);
	envelope_free(e);
}

/* ---- the lattice, by example ----------------------------------------- */

static void
expect_meet(const char *a, const char *b, const char *want)
{
	struct envelope *ea = parse_ok(a), *eb = parse_ok(b), *m = NULL;

	assert_int_equal(envelope_meet(ea, eb, &m), 0);
	assert_dump(m, want);
	assert_true(envelope_leq(m, ea));
	assert_true(envelope_leq(m, eb));
	envelope_free(m);
	envelope_free(ea);
	envelope_free(eb);
}

static void
test_meet_examples(void **state)
{
	struct envelope *a, *b, *m = (struct envelope *)0x1;

	(void)state;
	expect_meet("{\"fs.read\":\"allow\",\"fs.write\":\"allow\"}",
	    "{\"fs.read\":\"ask\",\"fs.list\":\"allow\"}", "{\"fs.read\":\"ask\"}");
	expect_meet("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out/\",\"/logs/\",\"/a\"]}}",
	    "{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out/a/\",\"/etc/\",\"/a/\",\"/logs\"]}}",
	    "{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/a\",\"/logs\",\"/out/a/\"]}}");
	expect_meet("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out/\"]}}",
	    "{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/etc/\"]}}", "{}");
	expect_meet("{\"fs.read\":\"allow\"}",
	    "{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/x/\"],\"budget\":3}}",
	    "{\"fs.read\":{\"budget\":3,\"level\":\"allow\",\"paths\":[\"/x/\"]}}");
	expect_meet("{\"exec\":{\"level\":\"allow\",\"argv\":[[\"git\"],[\"ls\",\"-l\"]],"
	    "\"timeout_ms\":100,\"max_output\":5000,\"budget\":7}}",
	    "{\"exec\":{\"level\":\"ask\",\"argv\":[[\"git\",\"status\"],[\"ls\"],[\"cat\"]],"
	    "\"timeout_ms\":50,\"max_output\":9000,\"budget\":9}}",
	    "{\"exec\":{\"argv\":[[\"git\",\"status\"],[\"ls\",\"-l\"]],\"budget\":7,"
	    "\"level\":\"ask\",\"max_output\":5000,\"timeout_ms\":50}}");
	expect_meet("{\"exec\":{\"level\":\"allow\",\"argv\":[[\"git\"]]}}",
	    "{\"exec\":{\"level\":\"allow\",\"argv\":[[\"ls\"]]}}", "{}");

	a = parse_ok("{\"fs.read\":\"allow\"}");
	b = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/\"]}}");
	assert_true(envelope_equal(a, b));
	assert_true(envelope_leq(a, b) && envelope_leq(b, a));
	assert_int_equal(envelope_meet(NULL, b, &m), -EINVAL);
	assert_int_equal(envelope_meet(a, NULL, &m), -EINVAL);
	assert_int_equal(envelope_meet(a, b, NULL), -EINVAL);
	assert_ptr_equal(m, (struct envelope *)0x1);
	assert_false(envelope_leq(NULL, b));
	assert_false(envelope_equal(a, NULL));
	envelope_free(a);
	envelope_free(b);

	/* leq is not fooled by what looks wider. */
	a = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out/a\"]}}");
	b = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out\"]}}");
	assert_false(envelope_leq(a, b));
	assert_false(envelope_leq(b, a));
	envelope_free(b);
	b = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"paths\":[\"/out/\"]}}");
	assert_true(envelope_leq(a, b));
	assert_false(envelope_leq(b, a));
	envelope_free(a);
	envelope_free(b);
	envelope_free(NULL);
	assert_null(envelope_to_json(NULL));
}

/* ---- the lattice laws, on random envelopes ---------------------------- */

static uint64_t rng_state = 0x9e3779b97f4a7c15ULL;

static uint32_t
rnd(uint32_t n)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return (uint32_t)(rng_state % n);
}

static const char *const bound_paths[] = {
	"/", "/out/", "/out", "/out/a/", "/out/a", "/out/b", "/out/a/b/", "/etc/", "/etc/x", "/o/",
};
static const char *const bound_argv[] = {
	"[\"ls\"]", "[\"ls\",\"-l\"]", "[\"git\"]", "[\"git\",\"status\"]", "[\"git\",\"log\"]",
	"[\"git\",\"log\",\"-1\"]", "[\"cat\",\"/x\"]",
};
static const char *const call_paths[] = {
	"/", "/out", "/out/", "/out/a", "/out/a/", "/out/a/b", "/out/a/b/c", "/out/b", "/out/bb",
	"/etc", "/etc/x", "/etc/y", "/o", "/o/x", "/outx", "/x", "/out/../etc/x", "//out/a",
};
static const char *const call_argv[] = {
	"[\"ls\"]", "[\"ls\",\"-l\"]", "[\"ls\",\"-la\"]", "[\"git\"]", "[\"git\",\"status\"]",
	"[\"git\",\"status\",\"-s\"]", "[\"git\",\"log\",\"-1\"]", "[\"git\",\"log\",\"-2\"]",
	"[\"git\",\"push\"]", "[\"cat\",\"/x\"]", "[\"cat\",\"/y\"]", "[\"lsx\"]",
};
static const char *const tools[] = { "fs.read", "fs.write", "fs.list", "exec" };
static const char *const levels[] = { "never", "ask", "allow" };

#define N(a) (sizeof(a) / sizeof((a)[0]))

/* A random envelope from a small universe, so that bounds overlap often. */
static struct envelope *
gen(void)
{
	char text[4096];
	size_t off = 0, t, i, n;
	bool first = true;

	off += (size_t)snprintf(text + off, sizeof(text) - off, "{");
	for (t = 0; t < N(tools); t++) {
		bool exec = strcmp(tools[t], "exec") == 0;
		const char *lv = levels[rnd(3)];

		if (rnd(5) == 0) {
			continue;
		}
		off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\"%s\":", first ? "" : ",",
		    tools[t]);
		first = false;
		if (!exec && rnd(3) == 0) {
			off += (size_t)snprintf(text + off, sizeof(text) - off, "\"%s\"", lv);
			continue;
		}
		off += (size_t)snprintf(text + off, sizeof(text) - off, "{\"level\":\"%s\"", lv);
		if (rnd(2) == 0) {
			static const char *const budgets[] = { "0", "1", "5", "1000000000" };

			off += (size_t)snprintf(text + off, sizeof(text) - off, ",\"budget\":%s",
			    budgets[rnd(N(budgets))]);
		}
		if (!exec && rnd(4) != 0) {
			n = rnd(4);
			off += (size_t)snprintf(text + off, sizeof(text) - off, ",\"paths\":[");
			for (i = 0; i < n; i++) {
				off += (size_t)snprintf(text + off, sizeof(text) - off, "%s\"%s\"",
				    i ? "," : "", bound_paths[rnd(N(bound_paths))]);
			}
			off += (size_t)snprintf(text + off, sizeof(text) - off, "]");
		}
		if (exec) {
			static const char *const times[] = { "1", "5000", "600000" };

			n = rnd(4);
			off += (size_t)snprintf(text + off, sizeof(text) - off, ",\"argv\":[");
			for (i = 0; i < n; i++) {
				off += (size_t)snprintf(text + off, sizeof(text) - off, "%s%s",
				    i ? "," : "", bound_argv[rnd(N(bound_argv))]);
			}
			off += (size_t)snprintf(text + off, sizeof(text) - off, "]");
			if (rnd(2) == 0) {
				off += (size_t)snprintf(text + off, sizeof(text) - off,
				    ",\"timeout_ms\":%s", times[rnd(N(times))]);
			}
			if (rnd(2) == 0) {
				off += (size_t)snprintf(text + off, sizeof(text) - off,
				    ",\"max_output\":%s", times[rnd(N(times))]);
			}
		}
		off += (size_t)snprintf(text + off, sizeof(text) - off, "}");
	}
	snprintf(text + off, sizeof(text) - off, "}");
	assert_true(off < sizeof(text) - 2);
	return parse_ok(text);
}

static struct envelope *
meet(const struct envelope *a, const struct envelope *b)
{
	struct envelope *m = NULL;

	assert_int_equal(envelope_meet(a, b, &m), 0);
	assert_non_null(m);
	return m;
}

/* Every call of the universe, with the level e gives it. */
#define N_CALLS (N(call_paths) * 3 + N(call_argv) + 2)

static void
levels_of(const struct envelope *e, enum envelope_level out[N_CALLS])
{
	char args[256];
	size_t i, k = 0, t;

	for (t = 0; t < 3; t++) {
		for (i = 0; i < N(call_paths); i++) {
			snprintf(args, sizeof(args), "{\"path\":\"%s\"}", call_paths[i]);
			out[k++] = check(e, tools[t], args, NULL, 0);
		}
	}
	for (i = 0; i < N(call_argv); i++) {
		snprintf(args, sizeof(args), "{\"argv\":%s}", call_argv[i]);
		out[k++] = check(e, "exec", args, NULL, 0);
	}
	out[k++] = check(e, "net.fetch", "{}", NULL, 0);
	out[k++] = check(e, "fs.read", "{}", NULL, 0);
	assert_int_equal(k, N_CALLS);
}

static void
test_lattice_laws(void **state)
{
	enum envelope_level la[N_CALLS], lb[N_CALLS], lm[N_CALLS];
	size_t iter, i, granted = 0, leqs = 0, narrowed = 0;

	(void)state;
	for (iter = 0; iter < 3000; iter++) {
		struct envelope *a = gen(), *b = gen(), *c = gen();
		struct envelope *ab = meet(a, b), *ba = meet(b, a), *aa = meet(a, a);
		struct envelope *bc = meet(b, c), *ab_c = meet(ab, c), *a_bc = meet(a, bc);
		struct envelope *rt = NULL;
		json_t *j;
		bool leq_ab = envelope_leq(a, b);

		/* Commutative, associative, idempotent. */
		assert_true(envelope_equal(ab, ba));
		assert_true(envelope_equal(ab_c, a_bc));
		assert_true(envelope_equal(aa, a));
		/* The meet lies below both; leq is exactly "the meet is a". */
		assert_true(envelope_leq(ab, a));
		assert_true(envelope_leq(ab, b));
		assert_true(envelope_leq(a, a));
		assert_int_equal(leq_ab, envelope_equal(ab, a));
		/* The JSON form is a faithful, canonical round trip. */
		j = envelope_to_json(ab);
		assert_non_null(j);
		assert_int_equal(envelope_parse(j, &rt, NULL, 0), 0);
		json_decref(j);
		assert_true(envelope_equal(rt, ab));
		envelope_free(rt);

		/* Narrowing never widens: every call gets from the meet exactly
		 * the lower of what a and b give it, never more. */
		levels_of(a, la);
		levels_of(b, lb);
		levels_of(ab, lm);
		for (i = 0; i < N_CALLS; i++) {
			enum envelope_level lo = la[i] < lb[i] ? la[i] : lb[i];

			assert_true(lm[i] <= la[i]);
			assert_true(lm[i] <= lb[i]);
			assert_int_equal(lm[i], lo);
			if (leq_ab) {
				assert_true(la[i] <= lb[i]);
			}
			granted += lm[i] != ENVELOPE_NEVER;
			narrowed += lm[i] < la[i] && lb[i] != ENVELOPE_NEVER;
		}
		leqs += leq_ab && !envelope_equal(a, b);

		envelope_free(a);
		envelope_free(b);
		envelope_free(c);
		envelope_free(ab);
		envelope_free(ba);
		envelope_free(aa);
		envelope_free(bc);
		envelope_free(ab_c);
		envelope_free(a_bc);
	}
	/* Not vacuous: meets grant calls, bounds cut some, strict leq happens. */
	print_message("granted %zu, narrowed by a bound %zu, strict leq %zu\n", granted, narrowed,
	    leqs);
	assert_true(granted > 10000);
	assert_true(narrowed > 1000);
	assert_true(leqs > 50);
}

/* Budgets narrow too: the meet's budget is the smaller, and a charged
 * envelope is below the one it was charged from. */
static void
test_budget_narrows(void **state)
{
	struct envelope *a, *b, *m;
	uint64_t left;

	(void)state;
	a = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"budget\":3}}");
	b = parse_ok("{\"fs.read\":{\"level\":\"allow\",\"budget\":3}}");
	assert_int_equal(envelope_charge(a, "fs.read"), 0);
	assert_true(envelope_leq(a, b));
	assert_false(envelope_leq(b, a));
	m = meet(b, a);
	assert_int_equal(envelope_budget(m, "fs.read", &left), 0);
	assert_int_equal(left, 2);
	envelope_free(m);
	envelope_free(a);
	envelope_free(b);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_parse_example),
		cmocka_unit_test(test_parse_bad),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_rule_bounded),
		cmocka_unit_test(test_charge),
		cmocka_unit_test(test_meet_examples),
		cmocka_unit_test(test_lattice_laws),
		cmocka_unit_test(test_budget_narrows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
