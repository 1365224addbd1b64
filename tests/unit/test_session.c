/* Unit tests for approver/session.c: cookies, timeouts and CSRF tokens. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <string.h>
#include <sys/socket.h>

#include "b64url.h"
#include "../../approver/session.h"

static void
test_new_id(void **state)
{
	char a[SESSION_ID_LEN + 1], b[SESSION_ID_LEN + 1];
	uint8_t ha[32], hb[32], h2[32], want[32];

	(void)state;
	assert_int_equal(session_new_id(a, ha), 0);
	assert_int_equal(session_new_id(b, hb), 0);
	assert_int_equal(strlen(a), SESSION_ID_LEN);
	assert_string_not_equal(a, b);
	assert_memory_not_equal(ha, hb, 32);
	assert_int_equal(session_hash(a, h2), 0);
	assert_memory_equal(ha, h2, 32);
	(void)SHA256((const unsigned char *)a, SESSION_ID_LEN, want);
	assert_memory_equal(ha, want, 32);   /* the store never sees the cookie */
}

static void
test_hash_rejects(void **state)
{
	uint8_t h[32];
	char s[SESSION_ID_LEN + 2];

	(void)state;
	assert_int_equal(session_hash(NULL, h), -EINVAL);
	assert_int_equal(session_hash("", h), -EINVAL);
	memset(s, 'A', SESSION_ID_LEN);
	s[SESSION_ID_LEN] = '\0';
	assert_int_equal(session_hash(s, h), 0);
	s[SESSION_ID_LEN - 1] = 'B';    /* non-zero trailing bits */
	assert_int_equal(session_hash(s, h), -EINVAL);
	s[SESSION_ID_LEN - 1] = 'A';
	s[3] = '+';
	assert_int_equal(session_hash(s, h), -EINVAL);
	s[3] = 'A';
	s[SESSION_ID_LEN] = 'A';
	s[SESSION_ID_LEN + 1] = '\0';
	assert_int_equal(session_hash(s, h), -EINVAL);
	s[SESSION_ID_LEN - 1] = '\0';
	assert_int_equal(session_hash(s, h), -EINVAL);
}

static void
test_set_cookie(void **state)
{
	char c[SESSION_SETCOOKIE_MAX];

	(void)state;
	assert_int_equal(session_set_cookie(SESSION_COOKIE, "abc", 600, c, sizeof(c)), 0);
	assert_string_equal(c, "__Host-session=abc; Path=/; Max-Age=600; Secure; HttpOnly; "
	    "SameSite=Strict");
	assert_null(strstr(c, "Domain"));
	assert_int_equal(session_set_cookie(SESSION_COOKIE, NULL, 0, c, sizeof(c)), 0);
	assert_string_equal(c, "__Host-session=; Path=/; Max-Age=0; Secure; HttpOnly; "
	    "SameSite=Strict");
	assert_int_equal(session_set_cookie(SESSION_COOKIE, "abc", 0, c, sizeof(c)), -EINVAL);
	assert_int_equal(session_set_cookie(SESSION_COOKIE, "abc", 60, c, 10), -ENOBUFS);
}

static void
test_expiry(void **state)
{
	(void)state;
	assert_false(session_expired(1000, 1000, 1000, 900, 28800));
	assert_false(session_expired(1000, 1500, 2400, 900, 28800));
	assert_true(session_expired(1000, 1500, 2401, 900, 28800));         /* idle */
	assert_false(session_expired(1000, 29000, 29800, 900, 28800));
	assert_true(session_expired(1000, 29700, 29801, 900, 28800));       /* absolute */
	assert_true(session_expired(1000, 1000, 999, 900, 28800));          /* clock went back */
	assert_true(session_expired(1000, 900, 1000, 900, 28800));
}

static void
test_csrf(void **state)
{
	uint8_t k1[32], k2[32], tag[32];
	char t[SESSION_TOKEN_LEN + 1], t2[SESSION_TOKEN_LEN + 1], want[SESSION_TOKEN_LEN + 1];
	char scope[SESSION_SCOPE_MAX + 8];
	unsigned int tl = 0;

	(void)state;
	memset(k1, 1, 32);
	memset(k2, 2, 32);
	assert_int_equal(session_csrf_token(k1, "global", t), 0);
	/* The documented construction. */
	assert_non_null(HMAC(EVP_sha256(), k1, 32, (const unsigned char *)"csrf:v1:global", 14,
	    tag, &tl));
	assert_int_equal(b64url_encode(tag, 32, want, sizeof(want)), 0);
	assert_string_equal(t, want);
	assert_int_equal(session_csrf_verify(k1, "global", t), 0);
	assert_int_equal(session_csrf_verify(k2, "global", t), -EPERM);
	assert_int_equal(session_csrf_verify(k1, "request:abc", t), -EPERM);
	assert_int_equal(session_csrf_verify(k1, "global", NULL), -EPERM);
	assert_int_equal(session_csrf_verify(k1, "global", ""), -EPERM);
	memcpy(t2, t, sizeof(t));
	t2[5] ^= 1;
	assert_int_equal(session_csrf_verify(k1, "global", t2), -EPERM);
	memcpy(t2, t, sizeof(t));
	t2[SESSION_TOKEN_LEN - 1] = '\0';
	assert_int_equal(session_csrf_verify(k1, "global", t2), -EPERM);

	assert_int_equal(session_scope_request("r1", scope, sizeof(scope)), 0);
	assert_string_equal(scope, "request:r1");
	assert_int_equal(session_csrf_token(k1, scope, t), 0);
	assert_int_equal(session_csrf_verify(k1, "request:r1", t), 0);
	assert_int_equal(session_csrf_verify(k1, "request:r2", t), -EPERM);
	assert_int_equal(session_scope_request("r1", scope, 5), -ENOBUFS);
	memset(scope, 'a', SESSION_SCOPE_MAX + 1);
	scope[SESSION_SCOPE_MAX + 1] = '\0';
	assert_int_equal(session_csrf_token(k1, scope, t), -EINVAL);
}

static void
test_login_token(void **state)
{
	uint8_t pk[32], h[32];
	char c1[SESSION_ID_LEN + 1], c2[SESSION_ID_LEN + 1], t[SESSION_TOKEN_LEN + 1];
	char g[SESSION_TOKEN_LEN + 1];

	(void)state;
	assert_int_equal(session_random(pk), 0);
	assert_int_equal(session_new_id(c1, h), 0);
	assert_int_equal(session_new_id(c2, h), 0);
	assert_int_equal(session_login_token(pk, c1, t), 0);
	assert_int_equal(session_login_verify(pk, c1, t), 0);
	assert_int_equal(session_login_verify(pk, c2, t), -EPERM);
	assert_int_equal(session_login_verify(pk, "short", t), -EPERM);
	assert_int_equal(session_login_token(pk, "short", t), -EINVAL);
	/* A login token is not a CSRF token of the same key and vice versa. */
	assert_int_equal(session_csrf_token(pk, c1, g), 0);
	assert_string_not_equal(g, t);
	assert_int_equal(session_login_verify(pk, c1, g), -EPERM);
}

/* The sign-in throttle: 1 s * 2^(k-1) after the last failure, capped at
 * 30 s, counted from the end of the stored second; locked at the maximum. */
static void
test_login_throttle(void **state)
{
	const int64_t last = 1000, end = last * 1000 + 999;   /* ms */
	int64_t retry = -1;

	(void)state;
	assert_int_equal(session_login_throttle(0, 0, 5, 900, end, &retry), SESSION_THROTTLE_OK);
	assert_int_equal(retry, -1);
	/* k = 1: 1 s. */
	assert_int_equal(session_login_throttle(1, last, 5, 900, end + 999, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 1);
	assert_int_equal(session_login_throttle(1, last, 5, 900, end + 1000, NULL),
	    SESSION_THROTTLE_OK);
	/* Within the stored second, the wait still covers the whole delay. */
	assert_int_equal(session_login_throttle(1, last, 5, 900, last * 1000, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 2);
	/* k = 4: 8 s; k = 5..: doubling up to 30 s. */
	assert_int_equal(session_login_throttle(4, last, 50, 900, end + 7999, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 1);
	assert_int_equal(session_login_throttle(4, last, 50, 900, end, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 8);
	assert_int_equal(session_login_throttle(4, last, 50, 900, end + 8000, &retry),
	    SESSION_THROTTLE_OK);
	assert_int_equal(session_login_throttle(6, last, 50, 900, end, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 30);   /* 1 s * 32 = 32 s, capped */
	assert_int_equal(session_login_throttle(49, last, 50, 900, end + 29999, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 1);
	assert_int_equal(session_login_throttle(49, last, 50, 900, end + 30000, &retry),
	    SESSION_THROTTLE_OK);
	assert_int_equal(session_login_throttle(INT64_MAX, last, INT64_MAX, 900, end, &retry),
	    SESSION_THROTTLE_LOCKED);
	/* At the maximum: locked for the window, however long one waits within it. */
	assert_int_equal(session_login_throttle(5, last, 5, 900, end + 60000, &retry),
	    SESSION_THROTTLE_LOCKED);
	assert_int_equal(retry, 840);
	assert_int_equal(session_login_throttle(7, last, 5, 900, end, &retry),
	    SESSION_THROTTLE_LOCKED);
	assert_int_equal(retry, 900);
	/* A failure from the future waits the delay, not until then. */
	assert_int_equal(session_login_throttle(1, last + 3600, 5, 900, end, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 1);
	/* Nonsense rows: refused for the longest wait. */
	assert_int_equal(session_login_throttle(1, -5, 5, 900, end, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 30);
	assert_int_equal(session_login_throttle(1, INT64_MAX, 5, 900, end, &retry),
	    SESSION_THROTTLE_WAIT);
	assert_int_equal(retry, 30);
}

static void
test_addr_key(void **state)
{
	struct sockaddr_in v4;
	struct sockaddr_in6 v6;
	struct sockaddr un = { .sa_family = AF_UNIX };
	char addr[64], key[64], small[8];

	(void)state;
	memset(&v4, 0, sizeof(v4));
	v4.sin_family = AF_INET;
	assert_int_equal(inet_pton(AF_INET, "192.0.2.7", &v4.sin_addr), 1);
	assert_int_equal(session_addr_key((struct sockaddr *)&v4, addr, sizeof(addr), key,
	    sizeof(key)), 0);
	assert_string_equal(addr, "192.0.2.7");
	assert_string_equal(key, "192.0.2.7");
	/* Two addresses of one /64 share a key; the audit keeps the address. */
	memset(&v6, 0, sizeof(v6));
	v6.sin6_family = AF_INET6;
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2:aaaa:bbbb:cccc:dddd", &v6.sin6_addr), 1);
	assert_int_equal(session_addr_key((struct sockaddr *)&v6, addr, sizeof(addr), key,
	    sizeof(key)), 0);
	assert_string_equal(addr, "2001:db8:1:2:aaaa:bbbb:cccc:dddd");
	assert_string_equal(key, "2001:db8:1:2::/64");
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:2::1", &v6.sin6_addr), 1);
	assert_int_equal(session_addr_key((struct sockaddr *)&v6, addr, sizeof(addr), key,
	    sizeof(key)), 0);
	assert_string_equal(key, "2001:db8:1:2::/64");
	assert_int_equal(inet_pton(AF_INET6, "2001:db8:1:3::1", &v6.sin6_addr), 1);
	assert_int_equal(session_addr_key((struct sockaddr *)&v6, addr, sizeof(addr), key,
	    sizeof(key)), 0);
	assert_string_equal(key, "2001:db8:1:3::/64");
	/* An IPv4 peer on a dual-stack socket is the IPv4 address. */
	assert_int_equal(inet_pton(AF_INET6, "::ffff:192.0.2.7", &v6.sin6_addr), 1);
	assert_int_equal(session_addr_key((struct sockaddr *)&v6, addr, sizeof(addr), key,
	    sizeof(key)), 0);
	assert_string_equal(addr, "192.0.2.7");
	assert_string_equal(key, "192.0.2.7");
	assert_int_equal(session_addr_key(&un, addr, sizeof(addr), key, sizeof(key)),
	    -EAFNOSUPPORT);
	assert_int_equal(session_addr_key((struct sockaddr *)&v4, addr, sizeof(addr), small,
	    sizeof(small)), -ENOBUFS);
	assert_int_equal(session_addr_key(NULL, addr, sizeof(addr), key, sizeof(key)), -EINVAL);
}

static void
test_conns(void **state)
{
	struct session_conns *sc = NULL;
	void *h[5];
	char longkey[128];
	int i;

	(void)state;
	assert_int_equal(session_conns_new(0, 2, &sc), -EINVAL);
	assert_int_equal(session_conns_new(2, 0, &sc), -EINVAL);
	assert_int_equal(session_conns_new(2, 2, &sc), 0);
	/* Two per key; a key's slot is free again once its last one closes. */
	assert_true(session_conns_allows(sc, "2001:db8:1:2::/64"));
	h[0] = session_conns_add(sc, "2001:db8:1:2::/64");
	h[1] = session_conns_add(sc, "2001:db8:1:2::/64");
	assert_non_null(h[0]);
	assert_ptr_equal(h[0], h[1]);
	assert_false(session_conns_allows(sc, "2001:db8:1:2::/64"));
	assert_int_equal(session_conns_count(sc, "2001:db8:1:2::/64"), 2);
	assert_true(session_conns_allows(sc, "192.0.2.7"));
	h[2] = session_conns_add(sc, "192.0.2.7");
	assert_non_null(h[2]);
	assert_ptr_not_equal(h[2], h[0]);
	/* Both slots in use: a third key is not counted (and not refused). */
	assert_null(session_conns_add(sc, "192.0.2.8"));
	assert_true(session_conns_allows(sc, "192.0.2.8"));
	session_conns_drop(sc, h[0]);
	assert_true(session_conns_allows(sc, "2001:db8:1:2::/64"));
	session_conns_drop(sc, h[1]);
	assert_int_equal(session_conns_count(sc, "2001:db8:1:2::/64"), 0);
	session_conns_drop(sc, h[1]);   /* an extra drop does not wrap */
	assert_int_equal(session_conns_count(sc, "2001:db8:1:2::/64"), 0);
	h[3] = session_conns_add(sc, "192.0.2.8");
	assert_non_null(h[3]);
	assert_int_equal(session_conns_count(sc, "192.0.2.8"), 1);
	assert_int_equal(session_conns_count(sc, "192.0.2.7"), 1);
	memset(longkey, 'a', sizeof(longkey) - 1);
	longkey[sizeof(longkey) - 1] = '\0';
	assert_null(session_conns_add(sc, longkey));
	session_conns_drop(sc, NULL);
	for (i = 0; i < 2; i++) {
		h[4] = session_conns_add(sc, "192.0.2.7");
	}
	assert_int_equal(session_conns_count(sc, "192.0.2.7"), 3);   /* add does not refuse */
	session_conns_free(sc);
	session_conns_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_id),
		cmocka_unit_test(test_hash_rejects),
		cmocka_unit_test(test_set_cookie),
		cmocka_unit_test(test_expiry),
		cmocka_unit_test(test_csrf),
		cmocka_unit_test(test_login_token),
		cmocka_unit_test(test_login_throttle),
		cmocka_unit_test(test_addr_key),
		cmocka_unit_test(test_conns),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
