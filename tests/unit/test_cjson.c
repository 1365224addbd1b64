/* Unit tests for lib/cjson.c: strict parsing and the canonical form. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "cjson.h"

static json_t *
parse_ok(const char *s)
{
	json_t *j = NULL;

	assert_int_equal(cjson_parse(s, strlen(s), 4096, &j), 0);
	return j;
}

static void
test_canonical_form(void **state)
{
	static const struct { const char *in, *out; } cases[] = {
		{ "{ \"b\" : 1, \"a\" : [ true, null, \"x\" ] }", "{\"a\":[true,null,\"x\"],\"b\":1}" },
		{ "{\"\xc3\xa9\":1,\"z\":2,\"A\":3}", "{\"A\":3,\"z\":2,\"\xc3\xa9\":1}" },
		{ "\"tab\\there \\u00e9 \\/\"", "\"tab\\there \xc3\xa9 /\"" },
		{ "{\"n\":-12,\"o\":{\"y\":{},\"x\":[]}}", "{\"n\":-12,\"o\":{\"x\":[],\"y\":{}}}" },
	};
	size_t i, len;
	char *s;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		json_t *j = parse_ok(cases[i].in);

		assert_int_equal(cjson_dump(j, &s, &len), 0);
		assert_string_equal(s, cases[i].out);
		assert_int_equal(len, strlen(cases[i].out));
		free(s);
		json_decref(j);
	}
}

static void
test_digest_ignores_key_order(void **state)
{
	json_t *a = parse_ok("{\"path\":\"/x\",\"data\":\"hi\"}");
	json_t *b = parse_ok("{\"data\":\"hi\",  \"path\":\"/x\"}");
	json_t *c = parse_ok("{\"data\":\"hi\",\"path\":\"/y\"}");
	uint8_t da[32], db[32], dc[32];

	(void)state;
	assert_int_equal(cjson_sha256(a, da), 0);
	assert_int_equal(cjson_sha256(b, db), 0);
	assert_int_equal(cjson_sha256(c, dc), 0);
	assert_memory_equal(da, db, 32);
	assert_memory_not_equal(da, dc, 32);
	json_decref(a);
	json_decref(b);
	json_decref(c);
}

static void
test_rejects(void **state)
{
	static const char *bad[] = {
		"{\"a\":1,\"a\":2}",          /* duplicate key */
		"{\"a\":1.5}",                /* real */
		"{\"a\":1e3}",                /* real */
		"{\"a\":1} x",                /* trailing data */
		"{\"a\":\"\\u0000\"}",        /* NUL in a string */
		"{\"a\":\"\xff\"}",           /* invalid UTF-8 */
		"{'a':1}",
		"",
		"[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]",  /* 18 deep */
		NULL,
	};
	json_t *j = (json_t *)0x1;
	size_t i;

	(void)state;
	for (i = 0; bad[i] != NULL; i++) {
		assert_int_equal(cjson_parse(bad[i], strlen(bad[i]), 4096, &j), -EINVAL);
		assert_ptr_equal(j, (json_t *)0x1);
	}
	assert_int_equal(cjson_parse("{\"a\":1}\0", 8, 4096, &j), -EINVAL);
	assert_int_equal(cjson_parse("{\"a\":1}", 7, 6, &j), -EFBIG);
}

static void
test_dump_rejects_real(void **state)
{
	json_t *j = json_pack("{s:f}", "x", 1.5);
	char *s = NULL;
	size_t n;

	(void)state;
	assert_int_equal(cjson_dump(j, &s, &n), -EINVAL);
	assert_null(s);
	json_decref(j);
}

static void
test_only_keys(void **state)
{
	static const char *const allowed[] = { "a", "b", NULL };
	json_t *ok = parse_ok("{\"a\":1}"), *bad = parse_ok("{\"a\":1,\"c\":2}");
	const char *which = NULL;

	(void)state;
	assert_int_equal(cjson_only_keys(ok, allowed, &which), 0);
	assert_int_equal(cjson_only_keys(bad, allowed, &which), -EINVAL);
	assert_string_equal(which, "c");
	json_decref(ok);
	json_decref(bad);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_canonical_form),
		cmocka_unit_test(test_digest_ignores_key_order),
		cmocka_unit_test(test_rejects),
		cmocka_unit_test(test_dump_rejects_real),
		cmocka_unit_test(test_only_keys),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
