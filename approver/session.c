#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/socket.h>

#include "b64url.h"

int
session_random(uint8_t ret[32])
{
	size_t got = 0;

	while (got < 32) {
		ssize_t n = getrandom(ret + got, 32 - got, 0);

		if (n < 0) {
			if (errno == EINTR) {
				continue;
			}
			return -errno;
		}
		got += (size_t)n;
	}
	return 0;
}

int
session_new_id(char ret[SESSION_ID_LEN + 1], uint8_t ret_hash[32])
{
	uint8_t raw[32];
	char id[SESSION_ID_LEN + 1];
	int r;

	r = session_random(raw);
	if (r < 0) {
		goto out;
	}
	r = b64url_encode(raw, sizeof(raw), id, sizeof(id));
	if (r < 0) {
		goto out;
	}
	(void)SHA256((const unsigned char *)id, SESSION_ID_LEN, ret_hash);
	memcpy(ret, id, sizeof(id));
	r = 0;
out:
	explicit_bzero(raw, sizeof(raw));
	explicit_bzero(id, sizeof(id));
	return r;
}

int
session_hash(const char *cookie, uint8_t ret[32])
{
	uint8_t raw[32];
	size_t n = 0;

	if (cookie == NULL || strnlen(cookie, SESSION_ID_LEN + 1) != SESSION_ID_LEN) {
		return -EINVAL;
	}
	if (b64url_decode(cookie, SESSION_ID_LEN, raw, sizeof(raw), &n) < 0 || n != 32) {
		explicit_bzero(raw, sizeof(raw));
		return -EINVAL;
	}
	explicit_bzero(raw, sizeof(raw));
	(void)SHA256((const unsigned char *)cookie, SESSION_ID_LEN, ret);
	return 0;
}

int
session_set_cookie(const char *name, const char *value, int64_t max_age, char *out,
    size_t outsz)
{
	int n;

	if (name == NULL || out == NULL) {
		return -EINVAL;
	}
	if (value == NULL) {
		n = snprintf(out, outsz, "%s=; Path=/; Max-Age=0; Secure; HttpOnly; SameSite=Strict",
		    name);
	} else {
		if (max_age <= 0) {
			return -EINVAL;
		}
		n = snprintf(out, outsz, "%s=%s; Path=/; Max-Age=%lld; Secure; HttpOnly; "
		    "SameSite=Strict", name, value, (long long)max_age);
	}
	if (n < 0 || (size_t)n >= outsz) {
		return -ENOBUFS;
	}
	return 0;
}

bool
session_expired(int64_t created, int64_t last_seen, int64_t now, int64_t idle_seconds,
    int64_t max_seconds)
{
	/* A clock that went backwards, or rows from the future: ended. */
	if (now < created || now < last_seen || last_seen < created) {
		return true;
	}
	return now - last_seen > idle_seconds || now - created > max_seconds;
}

static int
mac(const uint8_t key[32], const char *prefix, const char *scope, char ret[SESSION_TOKEN_LEN + 1])
{
	char msg[16 + SESSION_SCOPE_MAX + 1];
	uint8_t tag[32];
	unsigned int tlen = 0;
	int n, r;

	if (scope == NULL || strnlen(scope, SESSION_SCOPE_MAX + 1) > SESSION_SCOPE_MAX) {
		return -EINVAL;
	}
	n = snprintf(msg, sizeof(msg), "%s%s", prefix, scope);
	if (n < 0 || (size_t)n >= sizeof(msg)) {
		return -EINVAL;
	}
	if (HMAC(EVP_sha256(), key, 32, (const unsigned char *)msg, (size_t)n, tag, &tlen) == NULL ||
	    tlen != sizeof(tag)) {
		r = -EIO;
		goto out;
	}
	r = b64url_encode(tag, sizeof(tag), ret, SESSION_TOKEN_LEN + 1);
out:
	explicit_bzero(tag, sizeof(tag));
	return r;
}

static int
mac_verify(const uint8_t key[32], const char *prefix, const char *scope, const char *token)
{
	char want[SESSION_TOKEN_LEN + 1];
	int r;

	if (token == NULL || strnlen(token, SESSION_TOKEN_LEN + 1) != SESSION_TOKEN_LEN) {
		return -EPERM;
	}
	r = mac(key, prefix, scope, want);
	if (r < 0) {
		return r;
	}
	r = CRYPTO_memcmp(want, token, SESSION_TOKEN_LEN) == 0 ? 0 : -EPERM;
	explicit_bzero(want, sizeof(want));
	return r;
}

int
session_csrf_token(const uint8_t key[32], const char *scope, char ret[SESSION_TOKEN_LEN + 1])
{
	return mac(key, "csrf:v1:", scope, ret);
}

int
session_csrf_verify(const uint8_t key[32], const char *scope, const char *token)
{
	return mac_verify(key, "csrf:v1:", scope, token);
}

int
session_scope_request(const char *id, char *out, size_t outsz)
{
	int n = snprintf(out, outsz, "request:%s", id);

	return n < 0 || (size_t)n >= outsz ? -ENOBUFS : 0;
}

int
session_login_token(const uint8_t process_key[32], const char *login_cookie,
    char ret[SESSION_TOKEN_LEN + 1])
{
	uint8_t h[32];

	if (session_hash(login_cookie, h) < 0) {
		return -EINVAL;
	}
	return mac(process_key, "login:v1:", login_cookie, ret);
}

int
session_login_verify(const uint8_t process_key[32], const char *login_cookie, const char *token)
{
	uint8_t h[32];

	if (session_hash(login_cookie, h) < 0) {
		return -EPERM;
	}
	return mac_verify(process_key, "login:v1:", login_cookie, token);
}

static int64_t
ceil_seconds(int64_t ms)
{
	return ms <= 1000 ? 1 : (ms + 999) / 1000;
}

enum session_throttle
session_login_throttle(int64_t failures, int64_t last_failure, int64_t max_failures,
    int64_t window_s, int64_t now_ms, int64_t *ret_retry_s)
{
	int64_t delay = SESSION_THROTTLE_BASE_MS, until, last_ms, k;

	if (failures <= 0) {
		return SESSION_THROTTLE_OK;
	}
	if (last_failure < 0 || last_failure > INT64_MAX / 1000 - 2 * 86400 || window_s < 0 ||
	    window_s > 86400 * 365) {
		/* Rows no clock of ours wrote: refuse for the longest wait. */
		if (ret_retry_s != NULL) {
			*ret_retry_s = SESSION_THROTTLE_MAX_MS / 1000;
		}
		return SESSION_THROTTLE_WAIT;
	}
	/* The failure happened somewhere in that second: count from its end, so
	 * that the wait is never shorter than promised. */
	last_ms = last_failure * 1000 + 999;
	if (failures >= max_failures) {
		until = last_ms + window_s * 1000;
		if (now_ms < until) {
			if (ret_retry_s != NULL) {
				*ret_retry_s = ceil_seconds(until - now_ms);
			}
			return SESSION_THROTTLE_LOCKED;
		}
		/* Cannot be: the failures are all inside the window. */
		return SESSION_THROTTLE_OK;
	}
	for (k = 1; k < failures && delay < SESSION_THROTTLE_MAX_MS; k++) {
		delay *= 2;
	}
	if (delay > SESSION_THROTTLE_MAX_MS) {
		delay = SESSION_THROTTLE_MAX_MS;
	}
	until = last_ms + delay;
	if (now_ms >= until) {
		return SESSION_THROTTLE_OK;
	}
	if (until - now_ms > delay + 1000) {
		/* A failure from the future (the clock went back): wait the delay. */
		until = now_ms + delay;
	}
	if (ret_retry_s != NULL) {
		*ret_retry_s = ceil_seconds(until - now_ms);
	}
	return SESSION_THROTTLE_WAIT;
}

int
session_addr_key(const struct sockaddr *sa, char *addr, size_t addrsz, char *key, size_t keysz)
{
	char a[INET6_ADDRSTRLEN], net[INET6_ADDRSTRLEN];
	int n;

	if (sa == NULL || addr == NULL || key == NULL) {
		return -EINVAL;
	}
	if (sa->sa_family == AF_INET) {
		if (inet_ntop(AF_INET, &((const struct sockaddr_in *)(const void *)sa)->sin_addr, a,
		    sizeof(a)) == NULL) {
			return -EINVAL;
		}
		memcpy(net, a, sizeof(a));
	} else if (sa->sa_family == AF_INET6) {
		struct in6_addr a6 = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;

		if (IN6_IS_ADDR_V4MAPPED(&a6)) {
			if (inet_ntop(AF_INET, &a6.s6_addr[12], a, sizeof(a)) == NULL) {
				return -EINVAL;
			}
			memcpy(net, a, sizeof(a));
		} else {
			if (inet_ntop(AF_INET6, &a6, a, sizeof(a)) == NULL) {
				return -EINVAL;
			}
			memset(&a6.s6_addr[8], 0, 8);
			if (inet_ntop(AF_INET6, &a6, net, sizeof(net)) == NULL) {
				return -EINVAL;
			}
			n = snprintf(key, keysz, "%s/64", net);
			goto addr;
		}
	} else {
		return -EAFNOSUPPORT;
	}
	n = snprintf(key, keysz, "%s", net);
addr:
	if (n < 0 || (size_t)n >= keysz) {
		return -ENOBUFS;
	}
	n = snprintf(addr, addrsz, "%s", a);
	if (n < 0 || (size_t)n >= addrsz) {
		return -ENOBUFS;
	}
	return 0;
}

#define CONNS_KEY_MAX  (INET6_ADDRSTRLEN + 8)

struct conns_slot {
	char key[CONNS_KEY_MAX];
	unsigned n;
};

struct session_conns {
	pthread_mutex_t lock;
	unsigned per_key_max;
	size_t n_slots;
	struct conns_slot slots[];
};

int
session_conns_new(size_t slots, unsigned per_key_max, struct session_conns **ret)
{
	struct session_conns *sc;
	size_t size;

	if (slots == 0 || slots > 1000000 || per_key_max == 0 || ret == NULL) {
		return -EINVAL;
	}
	if (__builtin_mul_overflow(slots, sizeof(struct conns_slot), &size) ||
	    __builtin_add_overflow(size, sizeof(*sc), &size)) {
		return -EINVAL;
	}
	sc = calloc(1, size);
	if (sc == NULL) {
		return -ENOMEM;
	}
	if (pthread_mutex_init(&sc->lock, NULL) != 0) {
		free(sc);
		return -ENOMEM;
	}
	sc->per_key_max = per_key_max;
	sc->n_slots = slots;
	*ret = sc;
	return 0;
}

void
session_conns_free(struct session_conns *sc)
{
	if (sc == NULL) {
		return;
	}
	(void)pthread_mutex_destroy(&sc->lock);
	free(sc);
}

/* Called with the lock held. */
static struct conns_slot *
conns_find(struct session_conns *sc, const char *key)
{
	size_t i;

	for (i = 0; i < sc->n_slots; i++) {
		if (sc->slots[i].n > 0 && strcmp(sc->slots[i].key, key) == 0) {
			return &sc->slots[i];
		}
	}
	return NULL;
}

bool
session_conns_allows(struct session_conns *sc, const char *key)
{
	struct conns_slot *slot;
	bool ok;

	if (sc == NULL || key == NULL) {
		return true;
	}
	(void)pthread_mutex_lock(&sc->lock);
	slot = conns_find(sc, key);
	ok = slot == NULL || slot->n < sc->per_key_max;
	(void)pthread_mutex_unlock(&sc->lock);
	return ok;
}

void *
session_conns_add(struct session_conns *sc, const char *key)
{
	struct conns_slot *slot;
	size_t i;

	if (sc == NULL || key == NULL || strnlen(key, CONNS_KEY_MAX) >= CONNS_KEY_MAX) {
		return NULL;
	}
	(void)pthread_mutex_lock(&sc->lock);
	slot = conns_find(sc, key);
	for (i = 0; slot == NULL && i < sc->n_slots; i++) {
		if (sc->slots[i].n == 0) {
			slot = &sc->slots[i];
			memcpy(slot->key, key, strlen(key) + 1);
		}
	}
	if (slot != NULL) {
		slot->n++;
	}
	(void)pthread_mutex_unlock(&sc->lock);
	return slot;
}

void
session_conns_drop(struct session_conns *sc, void *handle)
{
	struct conns_slot *slot = handle;

	if (sc == NULL || slot == NULL) {
		return;
	}
	(void)pthread_mutex_lock(&sc->lock);
	if (slot->n > 0) {
		slot->n--;
	}
	(void)pthread_mutex_unlock(&sc->lock);
}

unsigned
session_conns_count(struct session_conns *sc, const char *key)
{
	struct conns_slot *slot;
	unsigned n;

	if (sc == NULL || key == NULL) {
		return 0;
	}
	(void)pthread_mutex_lock(&sc->lock);
	slot = conns_find(sc, key);
	n = slot != NULL ? slot->n : 0;
	(void)pthread_mutex_unlock(&sc->lock);
	return n;
}
