#include "web.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "assets.h"
#include "b64url.h"
#include "form.h"
#include "fsutil.h"
#include "html.h"
#include "log.h"
#include "pages.h"
#include "parse.h"
#include "password.h"
#include "session.h"
#include "store.h"
#include "text.h"

#define WEB_CONN_TIMEOUT_S     30
#define WEB_MAX_CONNS          512
#define WEB_MAX_PER_IP         64
#define WEB_PEM_MAX            (64 * 1024)
#define WEB_PAGE_ROWS          50
#define WEB_PAGE_MAX           10000
#define WEB_DISCARD_MAX        (4 * FORM_BODY_MAX)
#define WEB_CHALLENGE_TTL_S    300
#define WEB_DETAIL_MAX         512
#define WEB_TOUCH_EVERY_S      10
#define WEB_ADDR_MAX           64
#define WEB_B64_FIELD_MAX      ((WEBAUTHN_ATTOBJ_MAX * 4 + 2) / 3 + 4)
#define LOG_BURST              10
#define LOG_WINDOW_S           60

static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self'; "
    "img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'";

struct web {
	const struct settings *cfg;
	struct requests *rq;
	struct requests_attestd *attestd;
	struct MHD_Daemon *mhd;
	pthread_key_t store_key;
	bool key_made;
	char db_path[SETTINGS_PATH_MAX + 32];
	uint8_t login_key[32];              /* signs login forms; this process only */
	char *tls_key;
	size_t tls_key_len;
	char *tls_cert;
	struct sockaddr_storage addr;
	struct session_conns *conns;        /* open connections per address key */
	pthread_mutex_t login_lock;         /* throttle check and failure record: one step */
	pthread_mutex_t log_lock;
	time_t log_start;
	unsigned log_lines;
};

/* One HTTP request: its body, read in pieces. */
struct req {
	char *body;
	size_t len;
	size_t cap;
	bool too_large;
	size_t discarded;
};

struct resp {
	unsigned status;
	char *body;
	size_t len;
	const char *type;
	bool persistent;                    /* body is static: do not free */
	char location[512];
	int64_t retry_after;                /* seconds, for a 429 or 503; 0: none */
	char cookies[2][SESSION_SETCOOKIE_MAX];
	int n_cookies;
};

/* Everything one request's handler needs. */
struct ctx {
	struct web *w;
	struct MHD_Connection *mc;
	const char *url;
	bool post;
	struct store *st;
	int64_t now;
	char addr[WEB_ADDR_MAX];            /* the peer, as audited */
	char addr_key[WEB_ADDR_MAX];        /* what failed sign-ins are counted by */
	struct form *form;
	/* The signed-in person, once require_session succeeded. */
	bool authed;
	uint8_t sid_hash[32];
	struct store_session sess;
	struct store_user user;
	char csrf_global[SESSION_TOKEN_LEN + 1];
	struct pages_user pu;
	struct resp rs;
};

/* --- plumbing ---------------------------------------------------------- */

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void
mhd_log(void *cls, const char *fmt, va_list ap)
{
	struct web *w = cls;
	char line[512];
	time_t now = time(NULL);
	size_t n;
	bool say;

	(void)pthread_mutex_lock(&w->log_lock);
	if (now - w->log_start >= LOG_WINDOW_S) {
		w->log_start = now;
		w->log_lines = 0;
	}
	say = w->log_lines++ < LOG_BURST;
	(void)pthread_mutex_unlock(&w->log_lock);
	if (!say) {
		return;
	}
	(void)vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	if (n > 0 && line[n - 1] == '\n') {
		line[n - 1] = '\0';
	}
	log_warn("web: %s", line);
}

static void
close_store(void *p)
{
	store_close(p);
}

/* This worker thread's own store handle (store.h: one per thread). */
static struct store *
thread_store(struct web *w)
{
	struct store *st = pthread_getspecific(w->store_key);
	int r;

	if (st != NULL) {
		return st;
	}
	r = store_open(w->db_path, &st);
	if (r < 0) {
		log_error("web: cannot open %s: %s", w->db_path, strerror(-r));
		return NULL;
	}
	if (pthread_setspecific(w->store_key, st) != 0) {
		store_close(st);
		return NULL;
	}
	return st;
}

static void
set_html(struct ctx *c, unsigned status, struct html *h)
{
	char *body = NULL;
	size_t len = 0;

	free(c->rs.body);
	c->rs.body = NULL;
	if (html_take(h, &body, &len) < 0) {
		static const char oops[] = "<!DOCTYPE html><title>Error</title><p>The page could not "
		    "be built.</p>";

		c->rs.status = 500;
		c->rs.body = (char *)oops;
		c->rs.len = sizeof(oops) - 1;
		c->rs.persistent = true;
		c->rs.type = "text/html; charset=utf-8";
		return;
	}
	c->rs.status = status;
	c->rs.body = body;
	c->rs.len = len;
	c->rs.persistent = false;
	c->rs.type = "text/html; charset=utf-8";
}

static void
message(struct ctx *c, unsigned status, const char *title, const char *msg, bool is_error)
{
	struct html h;

	html_init(&h, 0);
	pages_message(&h, title, c->authed ? &c->pu : NULL, msg, is_error);
	set_html(c, status, &h);
}

static void
redirect(struct ctx *c, const char *location)
{
	c->rs.status = 303;
	(void)snprintf(c->rs.location, sizeof(c->rs.location), "%s", location);
	free(c->rs.body);
	c->rs.body = NULL;
	c->rs.len = 0;
	c->rs.type = "text/plain; charset=utf-8";
}

static void
add_cookie(struct ctx *c, const char *name, const char *value, int64_t max_age)
{
	if (c->rs.n_cookies >= 2) {
		return;
	}
	if (session_set_cookie(name, value, max_age, c->rs.cookies[c->rs.n_cookies],
	    sizeof(c->rs.cookies[0])) == 0) {
		c->rs.n_cookies++;
	}
}

static const char *
header(struct ctx *c, const char *name)
{
	return MHD_lookup_connection_value(c->mc, MHD_HEADER_KIND, name);
}

static const char *
query(struct ctx *c, const char *name)
{
	return MHD_lookup_connection_value(c->mc, MHD_GET_ARGUMENT_KIND, name);
}

struct cookie_join {
	char buf[FORM_COOKIE_MAX + 1];
	size_t len;
	bool overflow;
};

static enum MHD_Result
join_cookie_headers(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
	struct cookie_join *j = cls;
	size_t n;

	(void)kind;
	if (strcasecmp(key, MHD_HTTP_HEADER_COOKIE) != 0 || value == NULL) {
		return MHD_YES;
	}
	n = strlen(value);
	if (j->len + n + 2 > FORM_COOKIE_MAX) {
		j->overflow = true;
		return MHD_NO;
	}
	if (j->len > 0) {
		memcpy(j->buf + j->len, "; ", 2);
		j->len += 2;
	}
	memcpy(j->buf + j->len, value, n);
	j->len += n;
	j->buf[j->len] = '\0';
	return MHD_YES;
}

/* Our cookie `name`, from every Cookie header the browser sent. */
static int
cookie(struct ctx *c, const char *name, char *out, size_t outsz)
{
	struct cookie_join j;

	memset(&j, 0, sizeof(j));
	(void)MHD_get_connection_values(c->mc, MHD_HEADER_KIND, join_cookie_headers, &j);
	if (j.overflow) {
		return -EINVAL;
	}
	return form_cookie(j.buf, name, out, outsz);
}

static void
client_address(struct MHD_Connection *mc, char *out, size_t outsz, char *key, size_t keysz)
{
	const union MHD_ConnectionInfo *ci;

	(void)snprintf(out, outsz, "unknown");
	(void)snprintf(key, keysz, "unknown");
	ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci == NULL || ci->client_addr == NULL) {
		return;
	}
	(void)session_addr_key(ci->client_addr, out, outsz, key, keysz);
}

static void
audit(struct ctx *c, const char *actor, const char *event, const char *request, json_t *detail)
{
	int r = store_audit_append(c->st, actor, event, request, detail, c->now);

	if (r < 0) {
		log_error("web: audit %s: %s", event, strerror(-r));
	}
	json_decref(detail);
}

/* --- sessions ----------------------------------------------------------- */

/* 0 with c->authed set; -EACCES no (valid) session: the caller answers. */
static int
load_session(struct ctx *c)
{
	char value[SESSION_ID_LEN + 2];
	int r;

	r = cookie(c, SESSION_COOKIE, value, sizeof(value));
	if (r < 0 || session_hash(value, c->sid_hash) < 0) {
		explicit_bzero(value, sizeof(value));
		return -EACCES;
	}
	explicit_bzero(value, sizeof(value));
	r = store_session_get(c->st, c->sid_hash, &c->sess);
	if (r < 0) {
		return -EACCES;
	}
	if (session_expired(c->sess.created, c->sess.last_seen, c->now,
	    c->w->cfg->session_idle_seconds, c->w->cfg->session_max_seconds)) {
		(void)store_session_delete(c->st, c->sid_hash);
		explicit_bzero(&c->sess, sizeof(c->sess));
		return -EACCES;
	}
	r = store_user_get_id(c->st, c->sess.user_id, &c->user);
	if (r < 0 || c->user.disabled) {
		explicit_bzero(&c->sess, sizeof(c->sess));
		return -EACCES;
	}
	/* One durable write per page view is costly; the idle timeout is at
	 * least a minute, so its clock may lag by a few seconds. */
	if (c->now - c->sess.last_seen >= WEB_TOUCH_EVERY_S) {
		(void)store_session_touch(c->st, c->sid_hash, c->now);
	}
	if (session_csrf_token(c->sess.csrf_key, "global", c->csrf_global) < 0) {
		return -EACCES;
	}
	c->authed = true;
	c->pu.name = c->user.name;
	c->pu.role = store_role_name(c->user.role);
	c->pu.csrf_global = c->csrf_global;
	return 0;
}

static void
to_login(struct ctx *c)
{
	add_cookie(c, SESSION_COOKIE, NULL, 0);
	redirect(c, "/login");
}

/* --- POST checks --------------------------------------------------------- */

/* The Host header names the public URL's authority: a form posted to us
 * under another name (DNS rebinding, a relay on another port) is refused
 * even if its Origin matched that name. */
static bool
host_ok(struct ctx *c)
{
	const char *origin = settings_origin(c->w->cfg);
	const char *host = header(c, MHD_HTTP_HEADER_HOST);
	const char *auth = strstr(origin, "://");
	size_t alen;

	if (host == NULL || auth == NULL) {
		return false;
	}
	auth += 3;
	alen = strlen(auth);
	if (strcmp(host, auth) == 0) {
		return true;
	}
	/* "https://host" is also reached as "host:443". */
	return strchr(auth, ':') == NULL && strncmp(host, auth, alen) == 0 &&
	    strcmp(host + alen, ":443") == 0;
}

/* The form was sent by one of our own pages: Origin, or failing that
 * Sec-Fetch-Site. SameSite=Strict already keeps the session cookie off
 * cross-site requests; this refuses them before anything else is read. */
static bool
same_origin(struct ctx *c)
{
	const char *origin = header(c, "Origin");
	const char *site;

	/* With Referrer-Policy no-referrer, browsers send "Origin: null" on
	 * their own same-origin form posts; Sec-Fetch-Site, which a page
	 * cannot set, then tells a same-origin post (including from a
	 * sandboxed frame of another site, which says cross-site). */
	if (origin != NULL && strcmp(origin, "null") != 0) {
		return strcmp(origin, settings_origin(c->w->cfg)) == 0;
	}
	site = header(c, "Sec-Fetch-Site");
	return site != NULL && strcmp(site, "same-origin") == 0;
}

static int
parse_body(struct ctx *c, const struct req *rq)
{
	const char *type = header(c, MHD_HTTP_HEADER_CONTENT_TYPE);

	if (type == NULL || (strcasecmp(type, "application/x-www-form-urlencoded") != 0 &&
	    strncasecmp(type, "application/x-www-form-urlencoded;", 34) != 0)) {
		return -EINVAL;
	}
	return form_parse(rq->body, rq->len, &c->form);
}

static bool
csrf_ok(struct ctx *c, const char *scope)
{
	return session_csrf_verify(c->sess.csrf_key, scope, form_get(c->form, "csrf", NULL)) == 0;
}

static void
refuse_csrf(struct ctx *c)
{
	message(c, 403, "Refused", "This form has expired or did not come from this page. Go back, "
	    "reload the page and try again.", true);
}

/* --- login --------------------------------------------------------------- */

static void
login_page(struct ctx *c, unsigned status, const char *username, const char *error)
{
	char value[SESSION_ID_LEN + 2];
	char token[SESSION_TOKEN_LEN + 1];
	uint8_t unused[32];
	struct html h;

	/* Keep the login cookie the browser has, so that a second tab's form
	 * stays valid; make one if it has none. */
	if (cookie(c, SESSION_LOGIN_COOKIE, value, sizeof(value)) < 0 ||
	    session_hash(value, unused) < 0) {
		if (session_new_id(value, unused) < 0) {
			message(c, 500, "Error", "No randomness.", true);
			return;
		}
		add_cookie(c, SESSION_LOGIN_COOKIE, value, SESSION_LOGIN_MAX_AGE);
	}
	if (session_login_token(c->w->login_key, value, token) < 0) {
		explicit_bzero(value, sizeof(value));
		message(c, 500, "Error", "The sign-in form could not be built.", true);
		return;
	}
	explicit_bzero(value, sizeof(value));
	html_init(&h, 0);
	pages_login(&h, token, username, error);
	set_html(c, status, &h);
}

static int64_t
now_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_REALTIME, &ts) < 0) {
		return (int64_t)time(NULL) * 1000;
	}
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* The stricter of the account's and the address's throttles. */
static enum session_throttle
login_throttle(struct ctx *c, const char *rec_name, int64_t by_name, int64_t by_addr,
    int64_t *ret_retry_s)
{
	const struct settings *cfg = c->w->cfg;
	int64_t since = c->now - cfg->login_window_seconds, name_at = 0, addr_at = 0;
	int64_t rn = 0, ra = 0, ms = now_ms();
	enum session_throttle tn, ta;

	if (by_name == 0 && by_addr == 0) {
		return SESSION_THROTTLE_OK;
	}
	if (store_login_last_failure(c->st, rec_name, c->addr_key, since, &name_at, &addr_at) < 0) {
		*ret_retry_s = 1;
		return SESSION_THROTTLE_WAIT;   /* fail closed */
	}
	tn = session_login_throttle(by_name, name_at, (int64_t)cfg->login_max_failures_name,
	    cfg->login_window_seconds, ms, &rn);
	ta = session_login_throttle(by_addr, addr_at, (int64_t)cfg->login_max_failures_addr,
	    cfg->login_window_seconds, ms, &ra);
	if (tn == SESSION_THROTTLE_LOCKED || ta == SESSION_THROTTLE_LOCKED) {
		*ret_retry_s = tn == SESSION_THROTTLE_LOCKED && (ta != SESSION_THROTTLE_LOCKED ||
		    rn > ra) ? rn : ra;
		return SESSION_THROTTLE_LOCKED;
	}
	if (tn == SESSION_THROTTLE_WAIT || ta == SESSION_THROTTLE_WAIT) {
		*ret_retry_s = rn > ra ? rn : ra;
		return SESSION_THROTTLE_WAIT;
	}
	return SESSION_THROTTLE_OK;
}

static void
login_post(struct ctx *c)
{
	const struct settings *cfg = c->w->cfg;
	char value[SESSION_ID_LEN + 2];
	char sid[SESSION_ID_LEN + 1];
	uint8_t sid_hash[32], csrf_key[32], old_hash[32];
	struct store_user u;
	const char *name, *pw, *rec_name;
	size_t pwlen = 0;
	int64_t by_name = 0, by_addr = 0, retry = 0;
	enum session_throttle t;
	char msg[128];
	bool name_ok, known = false, ok = false;
	int r;

	memset(&u, 0, sizeof(u));
	if (cookie(c, SESSION_LOGIN_COOKIE, value, sizeof(value)) < 0 ||
	    session_login_verify(c->w->login_key, value, form_get(c->form, "csrf", NULL)) < 0) {
		explicit_bzero(value, sizeof(value));
		login_page(c, 403, NULL, "This sign-in form has expired. Please try again.");
		return;
	}
	explicit_bzero(value, sizeof(value));
	name = form_get(c->form, "username", NULL);
	pw = form_get(c->form, "password", &pwlen);
	if (name == NULL || pw == NULL) {
		login_page(c, 400, NULL, "Enter a username and a password.");
		return;
	}
	name_ok = parse_ident(name, STORE_NAME_MAX) == 0;
	/* Failures are counted under the name as typed; a name that cannot
	 * exist is counted under one shared placeholder. */
	rec_name = name_ok ? name : "-";
	/* The check and the (provisional) record below are one step under
	 * login_lock: a few indexed reads and one insert, never Argon2id. */
	(void)pthread_mutex_lock(&c->w->login_lock);
	r = store_login_failures(c->st, rec_name, c->addr_key, c->now - cfg->login_window_seconds,
	    &by_name, &by_addr);
	if (r < 0) {
		(void)pthread_mutex_unlock(&c->w->login_lock);
		message(c, 503, "Sign in", "Sign-in is not available right now.", true);
		return;
	}
	/* Refused without looking at the password (so a right guess in a
	 * refused attempt tells nothing) and without sleeping in this worker
	 * thread: a wait here would let a few wrong guesses stall every page.
	 * Refusals are not audited: they cost an attacker nothing. */
	t = login_throttle(c, rec_name, by_name, by_addr, &retry);
	if (t == SESSION_THROTTLE_OK) {
		/* The failure is recorded before the password is checked, and
		 * taken back by a success (store_login_succeeded forgets the
		 * name's rows from this address): parallel guesses then see it at once, instead of
		 * all passing the throttle while the first one's Argon2id runs. */
		r = store_login_failed(c->st, rec_name, c->addr_key, c->now);
	}
	(void)pthread_mutex_unlock(&c->w->login_lock);
	if (t != SESSION_THROTTLE_OK) {
		if (t == SESSION_THROTTLE_LOCKED) {
			(void)snprintf(msg, sizeof(msg), "Too many failed sign-ins; try again later.");
		} else {
			(void)snprintf(msg, sizeof(msg), "Too many failed sign-ins; try again in %lld "
			    "second%s.", (long long)retry, retry == 1 ? "" : "s");
		}
		message(c, 429, "Sign in", msg, true);
		c->rs.retry_after = retry;
		return;
	}
	if (r < 0) {
		/* Unrecorded, unchecked. */
		message(c, 503, "Sign in", "Sign-in is not available right now.", true);
		return;
	}
	if (name_ok && store_user_get(c->st, name, &u) == 0) {
		known = true;
	}
	/* No clamp on the length: password_verify refuses a password longer
	 * than PASSWORD_MAX at once, and password_verify_dummy answers as fast
	 * for it; verifying only its first PASSWORD_MAX bytes would accept any
	 * suffix after a password of exactly that length. */
	if (known) {
		r = password_verify(u.pwhash, pw, pwlen);
	} else {
		r = password_verify_dummy(pw, pwlen);
	}
	if (r == -EBUSY) {
		/* Every Argon2id slot is taken (a burst of logins): nothing was
		 * checked, so this is no failure; take back its record. */
		(void)pthread_mutex_lock(&c->w->login_lock);
		(void)store_login_failed_undo(c->st, rec_name, c->addr_key, c->now);
		(void)pthread_mutex_unlock(&c->w->login_lock);
		explicit_bzero(&u, sizeof(u));
		message(c, 503, "Sign in", "The service is busy; try again in a moment.", true);
		c->rs.retry_after = 1;
		return;
	}
	ok = known && r == 0 && !u.disabled;
	if (!ok) {
		/* The wait before the next attempt counts from this answer, not
		 * from before the check: however long Argon2id took, the person
		 * (or the guesser) waits the whole of it. */
		int64_t done = (int64_t)time(NULL);

		if (done != c->now) {
			(void)pthread_mutex_lock(&c->w->login_lock);
			(void)store_login_failed_restamp(c->st, rec_name, c->addr_key, c->now, done);
			(void)pthread_mutex_unlock(&c->w->login_lock);
		}
		audit(c, rec_name, "login_failed", "", json_pack("{s:s,s:b}", "addr", c->addr,
		    "disabled", known && u.disabled));
		/* A lockout is audited once, by the failure that reaches it. */
		if (by_name + 1 == (int64_t)cfg->login_max_failures_name ||
		    by_addr + 1 == (int64_t)cfg->login_max_failures_addr) {
			audit(c, rec_name, "login_locked", "", json_pack("{s:s,s:b,s:b}", "addr",
			    c->addr, "account", by_name + 1 == (int64_t)cfg->login_max_failures_name,
			    "address", by_addr + 1 == (int64_t)cfg->login_max_failures_addr));
		}
		explicit_bzero(&u, sizeof(u));
		login_page(c, 401, name_ok ? name : NULL, "Wrong username or password.");
		return;
	}
	/* A new session id at every login: a cookie planted before it (session
	 * fixation) is dropped, never promoted. */
	if (cookie(c, SESSION_COOKIE, value, sizeof(value)) == 0 &&
	    session_hash(value, old_hash) == 0) {
		(void)store_session_delete(c->st, old_hash);
	}
	explicit_bzero(value, sizeof(value));
	r = session_new_id(sid, sid_hash);
	if (r == 0) {
		r = session_random(csrf_key);
	}
	if (r == 0) {
		r = store_session_create(c->st, sid_hash, u.id, csrf_key, c->now);
	}
	explicit_bzero(csrf_key, sizeof(csrf_key));
	if (r < 0) {
		explicit_bzero(sid, sizeof(sid));
		explicit_bzero(&u, sizeof(u));
		message(c, 503, "Sign in", "Sign-in is not available right now.", true);
		return;
	}
	(void)store_login_succeeded(c->st, u.name, c->addr_key);
	audit(c, u.name, "login", "", json_pack("{s:s}", "addr", c->addr));
	add_cookie(c, SESSION_COOKIE, sid, cfg->session_max_seconds);
	add_cookie(c, SESSION_LOGIN_COOKIE, NULL, 0);
	explicit_bzero(sid, sizeof(sid));
	explicit_bzero(&u, sizeof(u));
	redirect(c, "/requests");
}

static void
logout_post(struct ctx *c)
{
	if (!csrf_ok(c, "global")) {
		refuse_csrf(c);
		return;
	}
	(void)store_session_delete(c->st, c->sid_hash);
	audit(c, c->user.name, "logout", "", NULL);
	add_cookie(c, SESSION_COOKIE, NULL, 0);
	redirect(c, "/login");
}

/* --- requests ------------------------------------------------------------ */

struct list_ctx {
	struct html *h;
	int64_t rows;
	int64_t limit;
	bool more;
};

static int
list_row(const struct store_request *r, void *arg)
{
	struct list_ctx *l = arg;

	if (l->rows >= l->limit) {
		l->more = true;
		return 0;
	}
	pages_requests_row(l->h, r);
	l->rows++;
	return 0;
}

static void
requests_list(struct ctx *c, const char *action, const char *title, const char *def_state)
{
	const char *state = query(c, "state"), *op = query(c, "op"), *vm = query(c, "vm");
	const char *page_s = query(c, "page");
	struct store_filter f;
	struct list_ctx l;
	struct html h;
	enum store_state es;
	uint64_t page = 1;
	int r;

	memset(&f, 0, sizeof(f));
	if (state == NULL || state[0] == '\0') {
		state = def_state;
	}
	if (strcmp(state, "pending") == 0) {
		f.state = STORE_PENDING;
	} else if (strcmp(state, "decided") == 0) {
		f.state = -2;
	} else if (strcmp(state, "all") == 0) {
		f.state = -1;
	} else if (store_state_parse(state, &es) == 0) {
		f.state = (int)es;
	} else {
		message(c, 400, title, "Unknown state filter.", true);
		return;
	}
	if (op != NULL && op[0] == '\0') {
		op = NULL;
	}
	if (vm != NULL && vm[0] == '\0') {
		vm = NULL;
	}
	if ((op != NULL && parse_op(op, TOKEN_OP_MAX) != 0) ||
	    (vm != NULL && parse_ident(vm, TOKEN_ID_MAX) != 0)) {
		message(c, 400, title, "The operation or VM filter is not a valid name.", true);
		return;
	}
	if (page_s != NULL && parse_u64(page_s, 1, WEB_PAGE_MAX, &page) < 0) {
		message(c, 400, title, "Bad page number.", true);
		return;
	}
	f.op = op;
	f.vm = vm;
	f.limit = WEB_PAGE_ROWS + 1;     /* one more tells whether there is a next page */
	f.offset = (int64_t)(page - 1) * WEB_PAGE_ROWS;
	html_init(&h, 0);
	pages_begin(&h, title, &c->pu, NULL);
	pages_requests_begin(&h, title, action, state, op, vm, true);
	memset(&l, 0, sizeof(l));
	l.h = &h;
	l.limit = WEB_PAGE_ROWS;
	r = store_request_list(c->st, &f, list_row, &l);
	if (r < 0) {
		html_free(&h);
		message(c, 503, title, "The requests could not be read.", true);
		return;
	}
	pages_requests_end(&h, l.rows, action, state, op, vm, page, l.more);
	pages_end(&h);
	set_html(c, 200, &h);
}

struct decisions_ctx {
	struct html *h;
	int64_t rows;
	bool mine;
	int64_t me;
};

static int
decision_row(const struct store_decision *d, void *arg)
{
	struct decisions_ctx *dc = arg;

	pages_decision_row(dc->h, d);
	dc->rows++;
	if (d->user_id == dc->me) {
		dc->mine = true;
	}
	return 0;
}

struct creds_ctx {
	char *buf;        /* comma-separated base64url ids */
	size_t len;
	size_t cap;
	int err;
};

static int
cred_id_append(const struct store_credential *cr, void *arg)
{
	struct creds_ctx *cc = arg;
	char id[WEBAUTHN_CRED_ID_MAX * 2];
	size_t n;

	if (b64url_encode(cr->cred.id, cr->cred.id_len, id, sizeof(id)) < 0) {
		return 0;
	}
	n = strlen(id);
	if (cc->len + n + 2 > cc->cap) {
		size_t cap = cc->cap == 0 ? 1024 : cc->cap * 2;
		char *p;

		while (cap < cc->len + n + 2) {
			cap *= 2;
		}
		if (cap > 256 * 1024) {
			cc->err = -EFBIG;
			return -EFBIG;
		}
		p = realloc(cc->buf, cap);
		if (p == NULL) {
			cc->err = -ENOMEM;
			return -ENOMEM;
		}
		cc->buf = p;
		cc->cap = cap;
	}
	if (cc->len > 0) {
		cc->buf[cc->len++] = ',';
	}
	memcpy(cc->buf + cc->len, id, n);
	cc->len += n;
	cc->buf[cc->len] = '\0';
	return 0;
}

static const char *
done_text(const char *done)
{
	if (done == NULL) {
		return NULL;
	}
	if (strcmp(done, "approved") == 0) {
		return "Your approval was recorded.";
	}
	if (strcmp(done, "denied") == 0) {
		return "Your denial was recorded.";
	}
	return NULL;
}

/* The request's page; error (may be NULL) is shown at the top. */
static void
request_page(struct ctx *c, const char *id, unsigned status, const char *error, bool log_view)
{
	struct store_request r;
	struct decisions_ctx dc;
	struct creds_ctx cc;
	char scope[SESSION_SCOPE_MAX + 1];
	char token[SESSION_TOKEN_LEN + 1];
	char *canonical = NULL;
	size_t clen = 0;
	struct html h;
	const char *notice;
	int knows = -EIO, rc;

	memset(&r, 0, sizeof(r));
	memset(&cc, 0, sizeof(cc));
	if (parse_ident(id, TOKEN_ID_MAX) != 0) {
		message(c, 404, "Not found", "There is no such request.", true);
		return;
	}
	rc = store_request_get(c->st, id, &r);
	if (rc == -ENOENT) {
		message(c, 404, "Not found", "There is no such request.", true);
		return;
	}
	if (rc < 0) {
		message(c, 503, "Request", "The request could not be read.", true);
		return;
	}
	if (log_view) {
		audit(c, c->user.name, "view", r.ar.request, NULL);
	}
	(void)approval_canonical(&r.ar, &canonical, &clen);
	if (c->w->attestd != NULL) {
		knows = requests_attestd_knows_launch(c->w->attestd, r.ar.vm, r.ar.launch_digest);
	}
	html_init(&h, 0);
	pages_begin(&h, "Request", &c->pu, r.state == STORE_PENDING ? "/static/approve.js" : NULL);
	if (error != NULL) {
		pages_error(&h, error);
	}
	notice = done_text(query(c, "done"));
	if (notice != NULL && error == NULL) {
		pages_notice(&h, notice);
	}
	pages_request_head(&h, &r, canonical, knows);
	memset(&dc, 0, sizeof(dc));
	dc.h = &h;
	dc.me = c->user.id;
	pages_decisions_begin(&h);
	(void)store_decision_list(c->st, id, decision_row, &dc);
	pages_decisions_end(&h, dc.rows);
	if (r.state == STORE_PENDING) {
		/* The form is there even when the rules will refuse the decision:
		 * requests_decide is the one place that says no, and its reason is
		 * then shown. */
		if (r.owner[0] != '\0' && strcmp(r.owner, c->user.name) == 0) {
			pages_notice(&h, "This request is your own: somebody else must review it.");
		} else if (dc.mine) {
			pages_notice(&h, "You have decided on this request; a decision is final.");
		}
		if (session_scope_request(r.ar.request, scope, sizeof(scope)) == 0 &&
		    session_csrf_token(c->sess.csrf_key, scope, token) == 0) {
			(void)store_credential_list(c->st, c->user.id, cred_id_append, &cc);
			pages_decide_form(&h, &r, token, c->w->cfg->rp_id, cc.buf != NULL ? cc.buf : "");
			if (cc.len == 0) {
				html_raw(&h, "<p class=\"muted\">You have no passkey yet: <a "
				    "href=\"/passkeys\">add one</a> to approve. You can deny without "
				    "one.</p>\n");
			}
		}
	}
	pages_end(&h);
	set_html(c, status, &h);
	free(cc.buf);
	free(canonical);
	store_request_clear(&r);
}

/* One line: a textarea's line breaks become spaces (the store keeps a
 * reason as one line of text). */
static char *
one_line(const char *s)
{
	char *out = strdup(s), *p;

	if (out == NULL) {
		return NULL;
	}
	for (p = out; *p != '\0'; p++) {
		if (*p == '\r' || *p == '\n' || *p == '\t') {
			*p = ' ';
		}
	}
	return out;
}

static bool
b64_field_ok(const char *s, size_t maxbytes)
{
	uint8_t *buf;
	size_t n = 0, len;
	int r;

	if (s == NULL) {
		return false;
	}
	len = strlen(s);
	if (len == 0 || len > WEB_B64_FIELD_MAX) {
		return false;
	}
	buf = malloc(maxbytes);
	if (buf == NULL) {
		return false;
	}
	r = b64url_decode(s, len, buf, maxbytes, &n);
	free(buf);
	return r == 0;
}

static void
decide_post(struct ctx *c, const char *id, bool approve)
{
	static const char *const fields[] = { "credential_id", "client_data_json",
		"authenticator_data", "signature" };
	static const size_t maxes[] = { WEBAUTHN_CRED_ID_MAX, WEBAUTHN_CDJ_MAX,
		WEBAUTHN_AUTHDATA_MAX, WEBAUTHN_SIG_MAX };
	char scope[SESSION_SCOPE_MAX + 1];
	char detail[WEB_DETAIL_MAX];
	char page_error[WEB_DETAIL_MAX + 64];
	char loc[TOKEN_ID_MAX + 40];
	json_t *approval = NULL;
	enum store_state state = STORE_PENDING;
	const char *reason;
	char *line = NULL;
	unsigned status;
	size_t i, present = 0;
	int r;

	if (parse_ident(id, TOKEN_ID_MAX) != 0) {
		message(c, 404, "Not found", "There is no such request.", true);
		return;
	}
	if (session_scope_request(id, scope, sizeof(scope)) < 0 || !csrf_ok(c, scope)) {
		refuse_csrf(c);
		return;
	}
	reason = form_get(c->form, "reason", NULL);
	if (reason == NULL || reason[strspn(reason, " \t\r\n")] == '\0') {
		request_page(c, id, 400, "A reason is required, for an approval and for a denial.",
		    false);
		return;
	}
	if (approve) {
		for (i = 0; i < 4; i++) {
			const char *v = form_get(c->form, fields[i], NULL);

			if (v != NULL && v[0] != '\0') {
				present++;
			}
		}
		if (present == 0) {
			request_page(c, id, 400, "Approving needs your passkey: this page's JavaScript "
			    "asks your browser for it when you press Approve. Turn JavaScript on for "
			    "this site, or deny without a passkey.", false);
			return;
		}
		for (i = 0; i < 4; i++) {
			if (!b64_field_ok(form_get(c->form, fields[i], NULL), maxes[i])) {
				request_page(c, id, 400, "The passkey's answer was incomplete or malformed; "
				    "try again.", false);
				return;
			}
		}
		approval = json_pack("{s:s,s:s,s:s,s:s,s:s}", "approver", c->user.name,
		    "credential_id", form_get(c->form, "credential_id", NULL),
		    "client_data_json", form_get(c->form, "client_data_json", NULL),
		    "authenticator_data", form_get(c->form, "authenticator_data", NULL),
		    "signature", form_get(c->form, "signature", NULL));
		if (approval == NULL) {
			message(c, 500, "Error", "Out of memory.", true);
			return;
		}
	}
	line = one_line(reason);
	if (line == NULL) {
		json_decref(approval);
		message(c, 500, "Error", "Out of memory.", true);
		return;
	}
	detail[0] = '\0';
	r = requests_decide(c->w->rq, c->st, &c->user, id, approve, line, approval, c->now,
	    &state, detail, sizeof(detail));
	free(line);
	json_decref(approval);
	if (r == 0) {
		(void)snprintf(loc, sizeof(loc), "/requests/%s?done=%s", id,
		    approve ? "approved" : "denied");
		redirect(c, loc);
		return;
	}
	switch (r) {
	case -ENOENT: {
		status = 404;
		break;
	}
	case -ESTALE:
	case -EEXIST: {
		status = 409;
		break;
	}
	case -EPERM: {
		status = 403;
		break;
	}
	case -EINVAL: {
		status = 400;
		break;
	}
	default: {
		status = 502;
		break;
	}
	}
	(void)snprintf(page_error, sizeof(page_error), "Your decision was not recorded: %s.",
	    detail[0] != '\0' ? detail : strerror(-r));
	if (r == -ENOENT) {
		message(c, status, "Not found", page_error, true);
		return;
	}
	request_page(c, id, status, page_error, false);
}

/* --- history and audit ------------------------------------------------------ */

struct audit_ctx {
	struct html *h;
	int64_t rows;
	int64_t last_seq;
};

static int
audit_row(const struct store_audit *a, void *arg)
{
	struct audit_ctx *ac = arg;

	pages_audit_row(ac->h, a);
	ac->rows++;
	ac->last_seq = a->seq;
	return 0;
}

static void
audit_page(struct ctx *c)
{
	const char *before_s = query(c, "before");
	uint64_t before = 0;
	struct audit_ctx ac;
	struct html h;

	if (before_s != NULL && parse_u64(before_s, 1, INT64_MAX, &before) < 0) {
		message(c, 400, "Audit trail", "Bad position.", true);
		return;
	}
	html_init(&h, 0);
	pages_begin(&h, "Audit trail", &c->pu, NULL);
	pages_audit_begin(&h);
	memset(&ac, 0, sizeof(ac));
	ac.h = &h;
	if (store_audit_list(c->st, (int64_t)before, WEB_PAGE_ROWS, NULL, audit_row, &ac) < 0) {
		html_free(&h);
		message(c, 503, "Audit trail", "The audit trail could not be read.", true);
		return;
	}
	pages_audit_end(&h, ac.rows, ac.rows == WEB_PAGE_ROWS && ac.last_seq > 1 ?
	    ac.last_seq : 0);
	pages_end(&h);
	set_html(c, 200, &h);
}

/* --- passkeys ------------------------------------------------------------ */

/* The enrolment record root gives `attestctl approvers add`. */
static char *
enrolment_record(struct ctx *c, const struct store_credential *cr)
{
	char id[WEBAUTHN_CRED_ID_MAX * 2], pk[WEBAUTHN_PK_MAX * 2];
	const char *alg = webauthn_alg_name(cr->cred.alg);
	json_t *j;
	char *text;

	if (alg == NULL || b64url_encode(cr->cred.id, cr->cred.id_len, id, sizeof(id)) < 0 ||
	    b64url_encode(cr->cred.pk, cr->cred.pk_len, pk, sizeof(pk)) < 0) {
		return NULL;
	}
	j = json_pack("{s:i,s:s,s:s,s:s,s:s,s:s,s:I}", "v", 1, "approver", cr->user,
	    "credential_id", id, "alg", alg, "public_key", pk, "rp_id", c->w->cfg->rp_id,
	    "sign_count", (json_int_t)cr->cred.sign_count);
	if (j == NULL) {
		return NULL;
	}
	text = json_dumps(j, JSON_COMPACT | JSON_SORT_KEYS);
	json_decref(j);
	return text;
}

struct passkeys_ctx {
	struct ctx *c;
	struct html *h;
	int64_t rows;
	int64_t newest_at;
	char *newest;
};

static int
passkey_row(const struct store_credential *cr, void *arg)
{
	struct passkeys_ctx *pc = arg;
	char *rec = enrolment_record(pc->c, cr);

	pages_passkey_row(pc->h, cr, rec != NULL ? rec : "(could not be built)");
	pc->rows++;
	if (rec != NULL && (pc->newest == NULL || cr->created >= pc->newest_at)) {
		free(pc->newest);
		pc->newest = rec;
		pc->newest_at = cr->created;
		rec = NULL;
	}
	free(rec);
	return 0;
}

static void
passkeys_page(struct ctx *c, unsigned status, const char *error)
{
	struct passkeys_ctx pc;
	struct html h;
	const char *done = query(c, "done");

	html_init(&h, 0);
	pages_begin(&h, "Passkeys", &c->pu, "/static/passkeys.js");
	if (error != NULL) {
		pages_error(&h, error);
	} else if (done != NULL && strcmp(done, "added") == 0) {
		pages_notice(&h, "Your passkey was added. Give its enrolment record to root.");
	}
	pages_passkeys_begin(&h, c->csrf_global);
	memset(&pc, 0, sizeof(pc));
	pc.c = c;
	pc.h = &h;
	(void)store_credential_list(c->st, c->user.id, passkey_row, &pc);
	pages_passkeys_end(&h, pc.rows, pc.newest);
	free(pc.newest);
	pages_end(&h);
	set_html(c, status, &h);
}

static int
exclude_id(const struct store_credential *cr, void *arg)
{
	json_t *list = arg;
	char id[WEBAUTHN_CRED_ID_MAX * 2];

	if (b64url_encode(cr->cred.id, cr->cred.id_len, id, sizeof(id)) == 0) {
		(void)json_array_append_new(list, json_pack("{s:s,s:s}", "type", "public-key",
		    "id", id));
	}
	return 0;
}

static void
passkey_options(struct ctx *c)
{
	uint8_t challenge[32], uid[8];
	char ch[SESSION_TOKEN_LEN + 1], uid_b64[16];
	json_t *j = NULL, *exclude = NULL;
	char *text;
	size_t i;

	if (!csrf_ok(c, "global")) {
		refuse_csrf(c);
		return;
	}
	if (session_random(challenge) < 0 || b64url_encode(challenge, 32, ch, sizeof(ch)) < 0 ||
	    store_challenge_put(c->st, c->sid_hash, challenge, c->now + WEB_CHALLENGE_TTL_S) < 0) {
		message(c, 503, "Passkeys", "A challenge could not be made.", true);
		return;
	}
	/* The WebAuthn user handle: the account's number, opaque to others. */
	for (i = 0; i < 8; i++) {
		uid[i] = (uint8_t)((uint64_t)c->user.id >> (56 - 8 * i));
	}
	(void)b64url_encode(uid, sizeof(uid), uid_b64, sizeof(uid_b64));
	exclude = json_array();
	if (exclude != NULL) {
		(void)store_credential_list(c->st, c->user.id, exclude_id, exclude);
	}
	j = json_pack("{s:s,s:{s:s,s:s},s:{s:s,s:s,s:s},s:[{s:s,s:i},{s:s,s:i}],"
	    "s:{s:s,s:s,s:b},s:s,s:i,s:o}",
	    "challenge", ch,
	    "rp", "id", c->w->cfg->rp_id, "name", "Warrant approver",
	    "user", "id", uid_b64, "name", c->user.name, "displayName", c->user.name,
	    "pubKeyCredParams", "type", "public-key", "alg", WEBAUTHN_ALG_ES256,
	    "type", "public-key", "alg", WEBAUTHN_ALG_EDDSA,
	    "authenticatorSelection", "userVerification", "required", "residentKey", "discouraged",
	    "requireResidentKey", 0,
	    "attestation", "none",
	    "timeout", 120000,
	    "excludeCredentials", exclude != NULL ? exclude : json_array());
	explicit_bzero(challenge, sizeof(challenge));
	text = j != NULL ? json_dumps(j, JSON_COMPACT) : NULL;
	json_decref(j);
	if (text == NULL) {
		message(c, 500, "Passkeys", "Out of memory.", true);
		return;
	}
	free(c->rs.body);
	c->rs.status = 200;
	c->rs.body = text;
	c->rs.len = strlen(text);
	c->rs.persistent = false;
	c->rs.type = "application/json";
}

static int
b64_decode_alloc(const char *s, size_t max, uint8_t **ret, size_t *ret_len)
{
	uint8_t *buf;
	size_t n = 0;
	int r;

	if (s == NULL || s[0] == '\0') {
		return -EINVAL;
	}
	buf = malloc(max);
	if (buf == NULL) {
		return -ENOMEM;
	}
	r = b64url_decode(s, strlen(s), buf, max, &n);
	if (r < 0) {
		free(buf);
		return r;
	}
	*ret = buf;
	*ret_len = n;
	return 0;
}

static void
passkey_add(struct ctx *c)
{
	const char *origins[2] = { settings_origin(c->w->cfg), NULL };
	struct webauthn_rp rp = { c->w->cfg->rp_id, origins };
	struct store_credential cr;
	uint8_t challenge[32];
	uint8_t *cdj = NULL, *ao = NULL;
	size_t cdj_len = 0, ao_len = 0;
	char detail[WEB_DETAIL_MAX], msg[WEB_DETAIL_MAX + 64], idb64[WEBAUTHN_CRED_ID_MAX * 2];
	const char *label;
	int r;

	memset(&cr, 0, sizeof(cr));
	if (!csrf_ok(c, "global")) {
		refuse_csrf(c);
		return;
	}
	label = form_get(c->form, "label", NULL);
	if (label != NULL && label[0] != '\0' && parse_ident(label, STORE_NAME_MAX) != 0) {
		passkeys_page(c, 400, "A passkey's name is letters, digits and . _ : - (at most 64).");
		return;
	}
	if (b64_decode_alloc(form_get(c->form, "client_data_json", NULL), WEBAUTHN_CDJ_MAX,
	    &cdj, &cdj_len) < 0 ||
	    b64_decode_alloc(form_get(c->form, "attestation_object", NULL), WEBAUTHN_ATTOBJ_MAX,
	    &ao, &ao_len) < 0) {
		passkeys_page(c, 400, "The browser's answer was incomplete; adding a passkey needs "
		    "JavaScript.");
		goto out;
	}
	r = store_challenge_take(c->st, c->sid_hash, c->now, challenge);
	if (r < 0) {
		passkeys_page(c, 400, "The passkey request expired; press Add a passkey again.");
		goto out;
	}
	detail[0] = '\0';
	r = webauthn_register(&rp, challenge, cdj, cdj_len, ao, ao_len, &cr.cred, detail,
	    sizeof(detail));
	if (r < 0) {
		(void)snprintf(msg, sizeof(msg), "The passkey was refused: %s.", detail);
		passkeys_page(c, 400, msg);
		goto out;
	}
	cr.user_id = c->user.id;
	(void)snprintf(cr.user, sizeof(cr.user), "%s", c->user.name);
	(void)snprintf(cr.label, sizeof(cr.label), "%s",
	    label != NULL && label[0] != '\0' ? label : "passkey");
	cr.created = c->now;
	(void)b64url_encode(cr.cred.id, cr.cred.id_len, idb64, sizeof(idb64));
	r = store_begin(c->st);
	if (r == 0) {
		r = store_credential_add(c->st, &cr);
	}
	if (r == 0) {
		json_t *d = json_pack("{s:s,s:s?}", "credential_id", idb64, "alg",
		    webauthn_alg_name(cr.cred.alg));

		r = store_audit_append(c->st, c->user.name, "passkey_added", "", d, c->now);
		json_decref(d);
	}
	if (r == 0) {
		r = store_commit(c->st);
	}
	if (r < 0) {
		store_rollback(c->st);
		passkeys_page(c, r == -EEXIST ? 409 : 503, r == -EEXIST ?
		    "This passkey is registered already." : "The passkey could not be stored.");
		goto out;
	}
	redirect(c, "/passkeys?done=added");
out:
	free(cdj);
	free(ao);
}

/* --- routing ------------------------------------------------------------- */

static void
serve_asset(struct ctx *c, const struct asset *a)
{
	c->rs.status = 200;
	c->rs.body = (char *)a->body;
	c->rs.len = a->len;
	c->rs.persistent = true;
	c->rs.type = a->content_type;
}

/* "/requests/ID" or "/requests/ID/approve": the id and the rest. */
static bool
split_request_path(const char *url, char *id, size_t idsz, const char **ret_rest)
{
	const char *p = url + strlen("/requests/"), *slash = strchr(p, '/');
	size_t n = slash != NULL ? (size_t)(slash - p) : strlen(p);

	if (n == 0 || n >= idsz) {
		return false;
	}
	memcpy(id, p, n);
	id[n] = '\0';
	*ret_rest = slash != NULL ? slash : "";
	return parse_ident(id, TOKEN_ID_MAX) == 0;
}

static void
dispatch(struct ctx *c, const char *method, const struct req *rq)
{
	const struct asset *a;
	char id[TOKEN_ID_MAX + 1];
	const char *rest = "";
	bool get = strcmp(method, "GET") == 0 || strcmp(method, "HEAD") == 0;
	bool is_request = strncmp(c->url, "/requests/", 10) == 0;

	c->post = strcmp(method, "POST") == 0;
	if (!get && !c->post) {
		message(c, 405, "Not allowed", "This method is not used here.", true);
		return;
	}
	if (get && (a = assets_find(c->url)) != NULL) {
		serve_asset(c, a);
		return;
	}
	if (c->post) {
		if (!same_origin(c) || !host_ok(c)) {
			message(c, 403, "Refused", "This server refused a cross-site form: the request "
			    "did not come from one of its own pages.", true);
			return;
		}
		if (rq->too_large) {
			message(c, 413, "Too large", "The form was too large.", true);
			return;
		}
		if (parse_body(c, rq) < 0) {
			message(c, 400, "Bad form", "The form could not be read.", true);
			return;
		}
	}
	c->st = thread_store(c->w);
	if (c->st == NULL) {
		message(c, 503, "Unavailable", "The approver's database is not available.", true);
		return;
	}
	if (strcmp(c->url, "/login") == 0) {
		if (get) {
			login_page(c, 200, NULL, NULL);
		} else {
			login_post(c);
		}
		return;
	}
	if (is_request && !split_request_path(c->url, id, sizeof(id), &rest)) {
		/* Checked before the session so that a bad id is a plain 404. */
		rest = NULL;
	}
	if (load_session(c) < 0) {
		to_login(c);
		return;
	}
	if (strcmp(c->url, "/logout") == 0 && c->post) {
		logout_post(c);
	} else if (strcmp(c->url, "/") == 0 && get) {
		redirect(c, "/requests");
	} else if (strcmp(c->url, "/requests") == 0 && get) {
		requests_list(c, "/requests", "Requests", "pending");
	} else if (strcmp(c->url, "/history") == 0 && get) {
		requests_list(c, "/history", "History", "decided");
	} else if (strcmp(c->url, "/audit") == 0 && get) {
		audit_page(c);
	} else if (strcmp(c->url, "/passkeys") == 0 && get) {
		passkeys_page(c, 200, NULL);
	} else if (strcmp(c->url, "/passkeys") == 0 && c->post) {
		passkey_add(c);
	} else if (strcmp(c->url, "/passkeys/options") == 0 && c->post) {
		passkey_options(c);
	} else if (is_request && rest != NULL && rest[0] == '\0' && get) {
		request_page(c, id, 200, NULL, true);
	} else if (is_request && rest != NULL && strcmp(rest, "/approve") == 0 && c->post) {
		decide_post(c, id, true);
	} else if (is_request && rest != NULL && strcmp(rest, "/deny") == 0 && c->post) {
		decide_post(c, id, false);
	} else {
		message(c, 404, "Not found", "There is no such page.", true);
	}
}

static void
security_headers(struct MHD_Response *resp)
{
	(void)MHD_add_response_header(resp, "Content-Security-Policy", CSP);
	(void)MHD_add_response_header(resp, "X-Frame-Options", "DENY");
	(void)MHD_add_response_header(resp, "X-Content-Type-Options", "nosniff");
	(void)MHD_add_response_header(resp, "Referrer-Policy", "no-referrer");
	(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
	(void)MHD_add_response_header(resp, "Strict-Transport-Security", "max-age=31536000");
	(void)MHD_add_response_header(resp, "Cross-Origin-Opener-Policy", "same-origin");
	(void)MHD_add_response_header(resp, "Cross-Origin-Resource-Policy", "same-origin");
}

static enum MHD_Result
send_resp(struct MHD_Connection *mc, struct resp *rs)
{
	static const char oom[] = "out of memory\n";
	struct MHD_Response *resp;
	enum MHD_Result ret;
	unsigned status = rs->status;
	int i;

	if (rs->body == NULL && status != 303) {
		status = 500;
		resp = MHD_create_response_from_buffer(sizeof(oom) - 1, (void *)oom,
		    MHD_RESPMEM_PERSISTENT);
	} else if (rs->body == NULL) {
		resp = MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	} else if (rs->persistent) {
		resp = MHD_create_response_from_buffer(rs->len, rs->body, MHD_RESPMEM_PERSISTENT);
	} else {
		resp = MHD_create_response_from_buffer_with_free_callback(rs->len, rs->body, free);
	}
	if (resp == NULL) {
		if (!rs->persistent) {
			free(rs->body);
		}
		rs->body = NULL;
		return MHD_NO;
	}
	rs->body = NULL;   /* the response owns it now */
	security_headers(resp);
	if (rs->type != NULL) {
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, rs->type);
	}
	if (status == 303) {
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, rs->location);
	}
	if ((status == 429 || status == 503) && rs->retry_after > 0) {
		char ra[24];

		(void)snprintf(ra, sizeof(ra), "%lld", (long long)rs->retry_after);
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_RETRY_AFTER, ra);
	}
	for (i = 0; i < rs->n_cookies; i++) {
		(void)MHD_add_response_header(resp, MHD_HTTP_HEADER_SET_COOKIE, rs->cookies[i]);
	}
	ret = MHD_queue_response(mc, status, resp);
	MHD_destroy_response(resp);
	return ret;
}

static int
append_body(struct req *rq, const char *data, size_t n)
{
	size_t need;

	if (__builtin_add_overflow(rq->len, n, &need) || need > FORM_BODY_MAX) {
		return -EFBIG;
	}
	if (need > rq->cap) {
		size_t cap = rq->cap == 0 ? 4096 : rq->cap;
		char *p;

		while (cap < need) {
			cap *= 2;
		}
		if (cap > FORM_BODY_MAX) {
			cap = FORM_BODY_MAX;
		}
		p = malloc(cap);
		if (p == NULL) {
			return -ENOMEM;
		}
		if (rq->body != NULL) {
			memcpy(p, rq->body, rq->len);
			explicit_bzero(rq->body, rq->cap);
			free(rq->body);
		}
		rq->body = p;
		rq->cap = cap;
	}
	memcpy(rq->body + rq->len, data, n);
	rq->len = need;
	return 0;
}

static enum MHD_Result
access_handler(void *cls, struct MHD_Connection *mc, const char *url, const char *method,
    const char *version, const char *upload_data, size_t *upload_data_size, void **req_cls)
{
	struct web *w = cls;
	struct req *rq = *req_cls;
	struct ctx c;
	enum MHD_Result ret;
	int r;

	(void)version;
	if (rq == NULL) {
		const char *cl;
		uint64_t n;

		rq = calloc(1, sizeof(*rq));
		if (rq == NULL) {
			return MHD_NO;
		}
		*req_cls = rq;
		/* An announced oversized body is refused. A client that waits for
		 * "100 Continue", or whose body is too large to be read and thrown
		 * away, is answered now (the body is never read; libmicrohttpd then
		 * closes the connection). Others are answered after the body has
		 * been read and discarded: closing while a client still sends
		 * resets the connection, and the client may never see the answer. */
		cl = MHD_lookup_connection_value(mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
		if (cl != NULL && parse_u64(cl, 0, FORM_BODY_MAX, &n) < 0) {
			const char *expect = MHD_lookup_connection_value(mc, MHD_HEADER_KIND,
			    MHD_HTTP_HEADER_EXPECT);

			rq->too_large = true;
			if (parse_u64(cl, 0, WEB_DISCARD_MAX, &n) == 0 &&
			    (expect == NULL || strcasecmp(expect, "100-continue") != 0)) {
				return MHD_YES;
			}
			memset(&c, 0, sizeof(c));
			c.w = w;
			c.mc = mc;
			c.url = url;
			message(&c, 413, "Too large", "The form was too large.", true);
			return send_resp(mc, &c.rs);
		}
		return MHD_YES;
	}
	if (*upload_data_size > 0) {
		size_t n = *upload_data_size;

		*upload_data_size = 0;
		if (rq->too_large) {
			rq->discarded += n;
			return rq->discarded > WEB_DISCARD_MAX ? MHD_NO : MHD_YES;
		}
		r = append_body(rq, upload_data, n);
		if (r == -EFBIG) {
			rq->too_large = true;
		} else if (r < 0) {
			return MHD_NO;
		}
		return MHD_YES;
	}
	memset(&c, 0, sizeof(c));
	c.w = w;
	c.mc = mc;
	c.url = url;
	c.now = (int64_t)time(NULL);
	client_address(mc, c.addr, sizeof(c.addr), c.addr_key, sizeof(c.addr_key));
	dispatch(&c, method, rq);
	ret = send_resp(mc, &c.rs);
	form_free(c.form);
	explicit_bzero(&c.sess, sizeof(c.sess));
	explicit_bzero(c.sid_hash, sizeof(c.sid_hash));
	explicit_bzero(c.user.pwhash, sizeof(c.user.pwhash));
	return ret;
}

static void
request_completed(void *cls, struct MHD_Connection *mc, void **req_cls,
    enum MHD_RequestTerminationCode toe)
{
	struct req *rq = *req_cls;

	(void)cls;
	(void)mc;
	(void)toe;
	if (rq != NULL) {
		/* A body may hold a password. */
		if (rq->body != NULL) {
			explicit_bzero(rq->body, rq->cap);
		}
		free(rq->body);
		free(rq);
	}
	*req_cls = NULL;
}

/* --- start and stop ------------------------------------------------------ */

/* libmicrohttpd caps connections per address; this caps them per IPv6 /64
 * too (session_addr_key), which one client commonly holds whole: without
 * it, one host could take every connection. Counted from STARTED to
 * CLOSED, checked at accept: a few accepts racing may pass the cap by
 * their number, not more. */
static enum MHD_Result
accept_policy(void *cls, const struct sockaddr *addr, socklen_t addrlen)
{
	struct web *w = cls;
	char a[WEB_ADDR_MAX], key[WEB_ADDR_MAX];

	(void)addrlen;
	if (session_addr_key(addr, a, sizeof(a), key, sizeof(key)) < 0) {
		return MHD_YES;
	}
	return session_conns_allows(w->conns, key) ? MHD_YES : MHD_NO;
}

static void
notify_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
    enum MHD_ConnectionNotificationCode toe)
{
	struct web *w = cls;
	const union MHD_ConnectionInfo *ci;
	char a[WEB_ADDR_MAX], key[WEB_ADDR_MAX];

	switch (toe) {
	case MHD_CONNECTION_NOTIFY_STARTED: {
		ci = MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		if (ci != NULL && ci->client_addr != NULL &&
		    session_addr_key(ci->client_addr, a, sizeof(a), key, sizeof(key)) == 0) {
			*socket_context = session_conns_add(w->conns, key);
		}
		break;
	}
	case MHD_CONNECTION_NOTIFY_CLOSED: {
		session_conns_drop(w->conns, *socket_context);
		*socket_context = NULL;
		break;
	}
	default: {
		break;
	}
	}
}

static int
resolve_listen(const char *listen, struct sockaddr_storage *ret, bool *ret_v6)
{
	char host[SETTINGS_URL_MAX + 1];
	const char *colon, *port;
	struct addrinfo hints, *ai = NULL;
	size_t n;
	int r;

	colon = strrchr(listen, ':');
	if (colon == NULL || colon == listen || colon[1] == '\0') {
		return -EINVAL;
	}
	n = (size_t)(colon - listen);
	if (n >= sizeof(host)) {
		return -EINVAL;
	}
	memcpy(host, listen, n);
	host[n] = '\0';
	port = colon + 1;
	if (host[0] == '[' && n >= 2 && host[n - 1] == ']') {
		memmove(host, host + 1, n - 2);
		host[n - 2] = '\0';
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_NUMERICSERV | AI_PASSIVE;
	r = getaddrinfo(host, port, &hints, &ai);
	if (r != 0 || ai == NULL) {
		return -EINVAL;
	}
	if (ai->ai_addrlen > sizeof(*ret)) {
		freeaddrinfo(ai);
		return -EINVAL;
	}
	memset(ret, 0, sizeof(*ret));
	memcpy(ret, ai->ai_addr, ai->ai_addrlen);
	*ret_v6 = ai->ai_family == AF_INET6;
	freeaddrinfo(ai);
	return 0;
}

static void
web_free(struct web *w)
{
	if (w == NULL) {
		return;
	}
	if (w->key_made) {
		(void)pthread_key_delete(w->store_key);
	}
	if (w->tls_key != NULL) {
		explicit_bzero(w->tls_key, w->tls_key_len);
		free(w->tls_key);
	}
	free(w->tls_cert);
	explicit_bzero(w->login_key, sizeof(w->login_key));
	session_conns_free(w->conns);
	(void)pthread_mutex_destroy(&w->log_lock);
	(void)pthread_mutex_destroy(&w->login_lock);
	free(w);
}

int
web_start(const struct settings *cfg, struct requests *rq, struct requests_attestd *attestd,
    const char *listen, struct web **ret, char *err, size_t errsz)
{
	struct web *w = NULL;
	size_t cert_len = 0;
	unsigned flags;
	bool v6 = false;
	int r, n;

	if (cfg == NULL || rq == NULL || ret == NULL) {
		return -EINVAL;
	}
	if (listen == NULL) {
		listen = cfg->listen;
	}
	w = calloc(1, sizeof(*w));
	if (w == NULL) {
		return -ENOMEM;
	}
	(void)pthread_mutex_init(&w->log_lock, NULL);
	(void)pthread_mutex_init(&w->login_lock, NULL);
	w->cfg = cfg;
	w->rq = rq;
	w->attestd = attestd;
	n = snprintf(w->db_path, sizeof(w->db_path), "%s/%s", cfg->state_dir, SETTINGS_DB_FILE);
	if (n < 0 || (size_t)n >= sizeof(w->db_path)) {
		text_printf(err, errsz, "state_dir: path too long");
		r = -ENAMETOOLONG;
		goto out;
	}
	r = resolve_listen(listen, &w->addr, &v6);
	if (r < 0) {
		text_printf(err, errsz, "listen: %s is not host:port", listen);
		goto out;
	}
	r = session_random(w->login_key);
	if (r < 0) {
		text_printf(err, errsz, "getrandom: %s", strerror(-r));
		goto out;
	}
	/* The first unknown name would otherwise also pay for making the dummy
	 * hash, and so take longer than a real account's check. */
	(void)password_verify_dummy("not a password", 14);
	r = fs_read_file(cfg->tls_key, WEB_PEM_MAX, &w->tls_key, &w->tls_key_len);
	if (r < 0) {
		text_printf(err, errsz, "tls_key %s: %s", cfg->tls_key, strerror(-r));
		goto out;
	}
	r = fs_read_file(cfg->tls_cert, WEB_PEM_MAX, &w->tls_cert, &cert_len);
	if (r < 0) {
		text_printf(err, errsz, "tls_cert %s: %s", cfg->tls_cert, strerror(-r));
		goto out;
	}
	r = session_conns_new(WEB_MAX_CONNS, WEB_MAX_PER_IP, &w->conns);
	if (r < 0) {
		text_printf(err, errsz, "out of memory");
		goto out;
	}
	if (pthread_key_create(&w->store_key, close_store) != 0) {
		r = -EAGAIN;
		text_printf(err, errsz, "pthread_key_create failed");
		goto out;
	}
	w->key_made = true;
	flags = MHD_USE_TLS | MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_USE_ERROR_LOG;
	if (v6) {
		flags |= MHD_USE_IPv6;
	}
	w->mhd = MHD_start_daemon(flags, 0, accept_policy, w, access_handler, w,
	    MHD_OPTION_EXTERNAL_LOGGER, mhd_log, w,
	    MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&w->addr,
	    MHD_OPTION_HTTPS_MEM_KEY, w->tls_key,
	    MHD_OPTION_HTTPS_MEM_CERT, w->tls_cert,
	    MHD_OPTION_HTTPS_PRIORITIES, "NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2",
	    MHD_OPTION_THREAD_POOL_SIZE, cfg->threads,
	    MHD_OPTION_CONNECTION_LIMIT, (unsigned)WEB_MAX_CONNS,
	    MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)WEB_MAX_PER_IP,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)WEB_CONN_TIMEOUT_S,
	    MHD_OPTION_NOTIFY_COMPLETED, request_completed, NULL,
	    MHD_OPTION_NOTIFY_CONNECTION, notify_connection, w,
	    MHD_OPTION_END);
	if (w->mhd == NULL) {
		text_printf(err, errsz, "cannot listen on %s (address in use, or a bad key or "
		    "certificate)", listen);
		r = -EADDRINUSE;
		goto out;
	}
	*ret = w;
	w = NULL;
	r = 0;
out:
	web_free(w);
	return r;
}

void
web_stop(struct web *w)
{
	if (w == NULL) {
		return;
	}
	/* Joins the worker threads; each closes its store handle on exit. */
	MHD_stop_daemon(w->mhd);
	web_free(w);
}
