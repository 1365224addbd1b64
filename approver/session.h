/* session: the secrets and rules behind a signed-in browser, without the
 * database (web.c stores the rows).
 *
 *  - A session cookie is 32 random bytes, base64url (43 characters); the
 *    store keeps only its SHA-256, so a copy of the database signs nobody
 *    in. It lives in `__Host-session` (Secure, HttpOnly, SameSite=Strict,
 *    Path=/, no Domain: the browser then refuses it from any other host or
 *    from plain HTTP).
 *  - A session ends when idle longer than idle_seconds or older than
 *    max_seconds, checked on every request.
 *  - CSRF tokens are base64url(HMAC-SHA256(session csrf_key, "csrf:v1:" ||
 *    scope)), scope "request:<id>" on a request's forms, "global" elsewhere,
 *    so a token lifted from one request's page is worthless on another's.
 *  - Before login there is no session: `__Host-login` holds a random value
 *    and the login form carries the HMAC of it under a per-process key. */
#ifndef WARRANT_APPROVER_SESSION_H
#define WARRANT_APPROVER_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SESSION_COOKIE         "__Host-session"
#define SESSION_LOGIN_COOKIE   "__Host-login"
#define SESSION_ID_LEN         43        /* base64url of 32 bytes */
#define SESSION_TOKEN_LEN      43
#define SESSION_SCOPE_MAX      128
#define SESSION_SETCOOKIE_MAX  256
#define SESSION_LOGIN_MAX_AGE  3600

/* A new random cookie value and the hash the store keys it by. */
int session_new_id(char ret[SESSION_ID_LEN + 1], uint8_t ret_hash[32]);
/* The store's key for a cookie value: -EINVAL unless it is exactly 43
 * base64url characters of 32 bytes. */
int session_hash(const char *cookie, uint8_t ret[32]);
/* 32 random bytes (a CSRF key, a challenge, the login key). */
int session_random(uint8_t ret[32]);

/* The Set-Cookie header's value; value NULL expires the cookie. */
int session_set_cookie(const char *name, const char *value, int64_t max_age, char *out,
    size_t outsz);

/* true when a session created at `created`, last used at `last_seen`, has
 * ended at `now`. */
bool session_expired(int64_t created, int64_t last_seen, int64_t now, int64_t idle_seconds,
    int64_t max_seconds);

/* CSRF token for scope ("global", "request:<id>"). */
int session_csrf_token(const uint8_t key[32], const char *scope,
    char ret[SESSION_TOKEN_LEN + 1]);
/* 0 when token is the scope's token (compared in constant time); -EPERM. */
int session_csrf_verify(const uint8_t key[32], const char *scope, const char *token);
/* "request:<id>" into out. */
int session_scope_request(const char *id, char *out, size_t outsz);
/* The login form's token: the HMAC of the `__Host-login` value under the
 * process's key. */
int session_login_token(const uint8_t process_key[32], const char *login_cookie,
    char ret[SESSION_TOKEN_LEN + 1]);
int session_login_verify(const uint8_t process_key[32], const char *login_cookie,
    const char *token);

/* Failed sign-ins: after k failures within the window (for an account, or
 * for an address), the next attempt is refused without looking at the
 * password until last_failure + min(1 s * 2^(k-1), 30 s); at the
 * maximum, until the window has passed. Nothing sleeps: the refusal is an
 * answer (429), so wrong guesses cannot tie up the worker threads. */
#define SESSION_THROTTLE_BASE_MS  1000
#define SESSION_THROTTLE_MAX_MS   30000

enum session_throttle {
	SESSION_THROTTLE_OK = 0,     /* check the password */
	SESSION_THROTTLE_WAIT,       /* too soon after the last failure */
	SESSION_THROTTLE_LOCKED,     /* max_failures reached in the window */
};

/* failures and last_failure (seconds; the store keeps whole seconds, so it
 * is read as the end of that second) within the window of window_s seconds;
 * now_ms in milliseconds. *ret_retry_s (may be NULL) is set to the whole
 * seconds to wait (>= 1) unless the answer is SESSION_THROTTLE_OK. */
enum session_throttle session_login_throttle(int64_t failures, int64_t last_failure,
    int64_t max_failures, int64_t window_s, int64_t now_ms, int64_t *ret_retry_s);

struct sockaddr;

/* The peer's address as text (addr) and the key its failed sign-ins are
 * counted under (key): an IPv4 address, or an IPv6 address's /64
 * ("2001:db8:1:2::/64"), since one client commonly holds a whole /64 and
 * could otherwise start afresh with each of its 2^64 addresses. An
 * IPv4-mapped IPv6 peer counts as IPv4. -EAFNOSUPPORT for other families,
 * -ENOBUFS when a buffer is too small (at least INET6_ADDRSTRLEN + 3). */
int session_addr_key(const struct sockaddr *sa, char *addr, size_t addrsz, char *key,
    size_t keysz);

/* Open connections per address key (see session_addr_key), to cap what
 * one IPv6 /64 holds: libmicrohttpd's own per-address cap counts each of
 * its addresses apart. Thread-safe. A key gets a slot while it has a
 * connection; slots are at most `slots` (the connection limit). */
struct session_conns;

int session_conns_new(size_t slots, unsigned per_key_max, struct session_conns **ret);
void session_conns_free(struct session_conns *sc);
/* true when key has fewer than per_key_max connections. */
bool session_conns_allows(struct session_conns *sc, const char *key);
/* Count one more connection for key: a handle for session_conns_drop, or
 * NULL (every slot taken, or key too long: not counted). */
void *session_conns_add(struct session_conns *sc, const char *key);
void session_conns_drop(struct session_conns *sc, void *handle);
/* Connections counted for key (for tests). */
unsigned session_conns_count(struct session_conns *sc, const char *key);

#endif
