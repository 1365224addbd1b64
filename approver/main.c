/* approver: the service where people approve or deny gated calls, and its
 * administration commands (docs/approver.md).
 *
 * Exit status: 0 success, 1 failure, 2 usage error. */
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <jansson.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "args.h"
#include "b64url.h"
#include "cjson.h"
#include "fsutil.h"
#include "log.h"
#include "notify.h"
#include "parse.h"
#include "password.h"
#include "proxyapi.h"
#include "requests.h"
#include "secmem.h"
#include "settings.h"
#include "store.h"
#include "tlscert.h"
#include "web.h"

#define DEFAULT_STATE   "/var/lib/warrant-approver"
#define DEFAULT_PORT    8443
#define CERT_DAYS       825
#define MAX_POSITIONAL  4
#define AUDIT_LIST_DEFAULT 50

enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
"usage: approver [--state-dir DIR] COMMAND [ARGS]\n"
"\n"
"  init [--host HOST] [--port PORT] [--user NAME]\n"
"      create DIR (0700), its approver.json, a self-signed certificate for HOST\n"
"      (default localhost) and the database; --user gives them to that account,\n"
"      which the service then runs as\n"
"  serve [--listen HOST:PORT] [--attestd-socket PATH]\n"
"      serve the web pages and the proxies' API until SIGINT or SIGTERM\n"
"  user add NAME --role approver|admin\n"
"      add a person; the password (at least 12 bytes) is read from standard input\n"
"  user disable NAME | user enable NAME\n"
"      stop (and end the sessions of) or restore an account\n"
"  user list\n"
"      the accounts: name, role, disabled, created\n"
"  passkey list NAME\n"
"      a person's passkeys, with each key's fingerprint (for root to compare)\n"
"  passkey export NAME [--credential B64URL]\n"
"      the enrolment record of the newest (or the given) passkey, as JSON, for\n"
"      'attestctl approvers add'\n"
"  audit verify\n"
"      recompute the audit chain: exit 0 if intact, 1 naming the first bad record\n"
"  audit list [--limit N] [--request ID]\n"
"      the newest audit records\n"
"\n"
"DIR defaults to " DEFAULT_STATE ". Run as root on a DIR owned by another\n"
"account, every command first switches to that account.\n"
"Exit status: 0 success, 1 failure, 2 usage error.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int failf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int
usage_error(const char *fmt, ...)
{
	va_list ap;

	fputs("approver: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputs("\n(try 'approver --help')\n", stderr);
	return EXIT_USAGE;
}

static int
failf(const char *fmt, ...)
{
	va_list ap;

	fputs("approver: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return EXIT_FAIL;
}

static int
parse_args(int argc, char **argv, struct args_opt *opts, struct args *ret)
{
	struct args_error e;

	if (args_parse(argc, argv, opts, MAX_POSITIONAL, ARGS_NONEMPTY | ARGS_DUP_BY_NAME, ret,
	    &e) != 0) {
		return usage_error("%s'%.*s'%s", e.pre, e.arg_len, e.arg, e.post);
	}
	return 0;
}

static int
join(char *buf, size_t size, const char *dir, const char *name)
{
	int n = snprintf(buf, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* --- privileges ------------------------------------------------------------ */

/* Who ran the command, for the audit trail: the real uid, taken before any
 * switch. */
static char actor[STORE_CALLER_MAX + 1];

static void
set_actor(void)
{
	(void)snprintf(actor, sizeof(actor), "cli:%u", (unsigned)getuid());
}

static int
drop_to(uid_t uid, gid_t gid)
{
	if (setgroups(0, NULL) != 0 || setgid(gid) != 0 || setuid(uid) != 0) {
		return -errno;
	}
	/* Check it stuck: every id, and no way back. */
	if (getuid() != uid || geteuid() != uid || getgid() != gid || getegid() != gid ||
	    (uid != 0 && setuid(0) == 0)) {
		return -EPERM;
	}
	return 0;
}

/* Files the service creates must stay the service's: as root on a state
 * folder owned by another account, become that account first. serve
 * refuses to run as root at all. */
static int
become_owner(const char *state_dir, bool serving)
{
	struct stat sb;
	int r;

	if (lstat(state_dir, &sb) != 0) {
		return failf("%s: %s%s", state_dir, strerror(errno),
		    errno == ENOENT ? " (run 'approver init' first)" : "");
	}
	if (!S_ISDIR(sb.st_mode)) {
		return failf("%s: not a directory (symbolic links are refused)", state_dir);
	}
	if (geteuid() != 0) {
		return EXIT_OK;
	}
	if (sb.st_uid == 0) {
		if (serving) {
			return failf("serve: refusing to run as root: %s is owned by root; give it "
			    "to the service's account ('approver --state-dir %s init --user NAME' for "
			    "a new one, or chown -R NAME: %s) and run as that account", state_dir,
			    state_dir, state_dir);
		}
		return EXIT_OK;
	}
	r = drop_to(sb.st_uid, sb.st_gid);
	if (r < 0) {
		return failf("switching to uid %u, gid %u (the owner of %s): %s",
		    (unsigned)sb.st_uid, (unsigned)sb.st_gid, state_dir, strerror(-r));
	}
	return EXIT_OK;
}

static int
open_store(const char *state_dir, bool serving, struct store **ret)
{
	char path[SETTINGS_PATH_MAX + 32];
	int r, rc;

	rc = become_owner(state_dir, serving);
	if (rc != EXIT_OK) {
		return rc;
	}
	if (join(path, sizeof(path), state_dir, SETTINGS_DB_FILE) < 0) {
		return failf("%s: path too long", state_dir);
	}
	r = store_open(path, ret);
	if (r < 0) {
		return failf("%s: %s", path, r == -EIO ? "not an approver database, or a newer "
		    "one" : strerror(-r));
	}
	return EXIT_OK;
}

/* --- init ------------------------------------------------------------------ */

static bool
host_name_ok(const char *h)
{
	size_t i, n = strlen(h);

	if (n == 0 || n > WEBAUTHN_RP_ID_MAX || h[0] == '.' || h[0] == '-' || h[n - 1] == '.') {
		return false;
	}
	for (i = 0; i < n; i++) {
		if (!((h[i] >= 'a' && h[i] <= 'z') || (h[i] >= '0' && h[i] <= '9') || h[i] == '-' ||
		    h[i] == '.') || (h[i] == '.' && h[i + 1] == '.')) {
			return false;
		}
	}
	/* Passkeys are bound to a name; browsers refuse an address as rp id. */
	return strspn(h, "0123456789.") != n;
}

static int
config_text(const char *host, unsigned port, char **ret)
{
	char *def = NULL, *dumped = NULL, *full = NULL, listen[64], url[SETTINGS_URL_MAX + 1];
	json_t *j = NULL;
	int r = -ENOMEM, n;

	(void)snprintf(listen, sizeof(listen), "127.0.0.1:%u", port);
	n = port == 443 ? snprintf(url, sizeof(url), "https://%s", host) :
	    snprintf(url, sizeof(url), "https://%s:%u", host, port);
	if (n < 0 || (size_t)n >= sizeof(url)) {
		return -ENAMETOOLONG;
	}
	r = settings_default_text(&def);
	if (r < 0) {
		return r;
	}
	j = json_loads(def, JSON_REJECT_DUPLICATES, NULL);
	if (j == NULL || json_object_set_new(j, "listen", json_string(listen)) != 0 ||
	    json_object_set_new(j, "public_url", json_string(url)) != 0 ||
	    json_object_set_new(j, "rp_id", json_string(host)) != 0) {
		r = -ENOMEM;
		goto out;
	}
	dumped = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
	if (dumped == NULL) {
		r = -ENOMEM;
		goto out;
	}
	/* A text file ends with a newline. */
	n = (int)strlen(dumped);
	full = malloc((size_t)n + 2);
	if (full == NULL) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(full, dumped, (size_t)n);
	full[n] = '\n';
	full[n + 1] = '\0';
	*ret = full;
	r = 0;
out:
	free(dumped);
	json_decref(j);
	free(def);
	return r;
}

static int
give(const char *path, bool have_user, uid_t uid, gid_t gid, bool must)
{
	if (!have_user) {
		return 0;
	}
	if (fchownat(AT_FDCWD, path, uid, gid, AT_SYMLINK_NOFOLLOW) != 0) {
		if (errno == ENOENT && !must) {
			return 0;
		}
		return failf("chown %s: %s", path, strerror(errno));
	}
	return 0;
}

static int
cmd_init(const char *state_arg, int argc, char **argv)
{
	enum { O_HOST, O_PORT, O_USER };
	struct args_opt opts[] = { ARGS_OPT("host"), ARGS_OPT("port"), ARGS_OPT("user"),
		ARGS_END };
	char dir[SETTINGS_PATH_MAX], cfgpath[SETTINGS_PATH_MAX + 32], tls[SETTINGS_PATH_MAX + 32];
	char cert[SETTINGS_PATH_MAX + 32], key[SETTINGS_PATH_MAX + 32];
	char db[SETTINGS_PATH_MAX + 32], side[SETTINGS_PATH_MAX + 48], err[512];
	const char *host = "localhost";
	struct settings *cfg = NULL;
	struct store *st = NULL;
	struct passwd *pw;
	struct stat sb;
	struct args a;
	char *text = NULL;
	json_t *detail = NULL;
	uint64_t port = DEFAULT_PORT;
	bool have_user = false;
	uid_t uid = 0;
	gid_t gid = 0;
	int rc, r;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 0) {
		return usage_error("init: unexpected argument '%s'", a.pos[0]);
	}
	if (opts[O_HOST].value != NULL) {
		host = opts[O_HOST].value;
	}
	if (!host_name_ok(host)) {
		return usage_error("init: --host '%s': expected a lower-case host name (passkeys "
		    "are bound to a name, not to an address)", host);
	}
	if (opts[O_PORT].value != NULL && parse_u64(opts[O_PORT].value, 1, 65535, &port) != 0) {
		return usage_error("init: --port '%s': expected 1..65535", opts[O_PORT].value);
	}
	if (opts[O_USER].value != NULL) {
		errno = 0;
		pw = getpwnam(opts[O_USER].value);
		if (pw == NULL) {
			return failf("init: --user %s: no such account", opts[O_USER].value);
		}
		uid = pw->pw_uid;
		gid = pw->pw_gid;
		have_user = true;
		if (uid == 0) {
			return usage_error("init: --user: the service must not run as root");
		}
		if (geteuid() != 0 && geteuid() != uid) {
			return failf("init: --user %s: only root can give files to another account",
			    opts[O_USER].value);
		}
	}
	if (mkdir(state_arg, 0700) != 0 && errno != EEXIST) {
		return failf("init: mkdir %s: %s", state_arg, strerror(errno));
	}
	if (lstat(state_arg, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
		return failf("init: %s: not a directory (symbolic links are refused)", state_arg);
	}
	if (realpath(state_arg, dir) == NULL) {
		return failf("init: %s: %s", state_arg, strerror(errno));
	}
	if (join(cfgpath, sizeof(cfgpath), dir, SETTINGS_FILE) < 0 ||
	    join(tls, sizeof(tls), dir, "tls") < 0 || join(cert, sizeof(cert), tls, "cert.pem") < 0 ||
	    join(key, sizeof(key), tls, "key.pem") < 0 ||
	    join(db, sizeof(db), dir, SETTINGS_DB_FILE) < 0) {
		return failf("init: %s: path too long", dir);
	}
	if (lstat(cfgpath, &sb) == 0 || errno != ENOENT) {
		return failf("init: %s exists; refusing to overwrite it (edit it, or remove the "
		    "folder to start over)", cfgpath);
	}
	if (chmod(dir, 0700) != 0) {
		return failf("init: chmod %s: %s", dir, strerror(errno));
	}
	r = config_text(host, (unsigned)port, &text);
	if (r < 0) {
		rc = failf("init: %s", strerror(-r));
		goto out;
	}
	/* What we write must be what serve will accept. */
	r = settings_parse(dir, text, strlen(text), &cfg, err, sizeof(err));
	if (r < 0) {
		rc = failf("init: %s", err);
		goto out;
	}
	if (fs_ensure_dir(tls, 0700) != 0) {
		rc = failf("init: %s: cannot create it, or not a directory", tls);
		goto out;
	}
	r = tlscert_make_self_signed(cert, key, host, CERT_DAYS);
	if (r < 0) {
		rc = failf("init: the self-signed certificate: %s", strerror(-r));
		goto out;
	}
	r = store_open(db, &st);
	if (r < 0) {
		rc = failf("init: %s: %s", db, strerror(-r));
		goto out;
	}
	detail = json_pack("{s:s, s:I}", "host", host, "port", (json_int_t)port);
	r = detail != NULL ? store_audit_append(st, actor, "init", NULL, detail, time(NULL)) :
	    -ENOMEM;
	store_close(st);
	st = NULL;
	if (r < 0) {
		rc = failf("init: %s: the first audit record: %s", db, strerror(-r));
		goto out;
	}
	/* The configuration last: its presence means init finished. */
	r = fs_write_file_atomic(cfgpath, text, strlen(text), 0600);
	if (r < 0) {
		rc = failf("init: %s: %s", cfgpath, strerror(-r));
		goto out;
	}
	rc = EXIT_OK;
	if (have_user) {
		const char *suffixes[] = { "-wal", "-shm", "-journal" };
		size_t i;

		if ((rc = give(dir, true, uid, gid, true)) != 0 ||
		    (rc = give(tls, true, uid, gid, true)) != 0 ||
		    (rc = give(cert, true, uid, gid, true)) != 0 ||
		    (rc = give(key, true, uid, gid, true)) != 0 ||
		    (rc = give(db, true, uid, gid, true)) != 0 ||
		    (rc = give(cfgpath, true, uid, gid, true)) != 0) {
			goto out;
		}
		for (i = 0; i < sizeof(suffixes) / sizeof(suffixes[0]); i++) {
			(void)snprintf(side, sizeof(side), "%s%s", db, suffixes[i]);
			if ((rc = give(side, true, uid, gid, false)) != 0) {
				goto out;
			}
		}
	}
	printf("approver: created %s (0700)\n", dir);
	printf("  configuration  %s (listen %s, public_url %s, rp_id %s)\n", cfgpath, cfg->listen,
	    cfg->public_url, cfg->rp_id);
	printf("  certificate    %s (self-signed for %s, %d days)\n", cert, host, CERT_DAYS);
	printf("  key            %s (0600)\n", key);
	printf("  database       %s\n", db);
	if (have_user) {
		printf("  owner          %s (uid %u, gid %u)\n", opts[O_USER].value, (unsigned)uid,
		    (unsigned)gid);
	}
	printf("next: approver --state-dir %s user add NAME --role admin < password-file\n", dir);
out:
	json_decref(detail);
	settings_free(cfg);
	if (text != NULL) {
		free(text);
	}
	return rc;
}

/* --- serve ----------------------------------------------------------------- */

static int
cmd_serve(const char *state_dir, int argc, char **argv)
{
	enum { O_LISTEN, O_ATTESTD };
	struct args_opt opts[] = { ARGS_OPT("listen"), ARGS_OPT("attestd-socket"), ARGS_END };
	struct settings *cfg = NULL;
	struct requests_attestd *att = NULL;
	struct requests *rq = NULL;
	struct web *w = NULL;
	struct proxyapi *api = NULL;
	struct notify *nt = NULL;
	struct store *st = NULL;
	const char *listen;
	char err[512] = "";
	sigset_t mask;
	struct args a;
	int rc, r, sig = 0;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 0) {
		return usage_error("serve: unexpected argument '%s'", a.pos[0]);
	}
	rc = open_store(state_dir, true, &st);
	if (rc != EXIT_OK) {
		return rc;
	}
	/* The schema exists now; every thread opens its own handle. */
	store_close(st);
	st = NULL;
	(void)prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	if (secmem_harden_process() != 0) {
		return failf("serve: cannot make the process non-dumpable");
	}
	log_init("approver", LOG_INFO);
	r = settings_load(state_dir, &cfg, err, sizeof(err));
	if (r < 0) {
		return failf("serve: %s", err);
	}
	listen = opts[O_LISTEN].value != NULL ? opts[O_LISTEN].value : cfg->listen;
	if (opts[O_ATTESTD].value != NULL) {
		if (strlen(opts[O_ATTESTD].value) >= sizeof(cfg->attestd_socket)) {
			settings_free(cfg);
			return usage_error("serve: --attestd-socket: longer than %d bytes",
			    SETTINGS_SOCKET_MAX);
		}
		memcpy(cfg->attestd_socket, opts[O_ATTESTD].value,
		    strlen(opts[O_ATTESTD].value) + 1);
	}
	/* Every thread started below inherits the blocked set, so only
	 * sigwait sees these. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGTERM);
	if (pthread_sigmask(SIG_BLOCK, &mask, NULL) != 0) {
		rc = failf("serve: blocking signals failed");
		goto out;
	}
	(void)signal(SIGPIPE, SIG_IGN);
	rc = EXIT_FAIL;
	r = requests_attestd_new(cfg->attestd_socket, &att);
	if (r < 0) {
		log_error("attestd client for %s: %s", cfg->attestd_socket, strerror(-r));
		goto out;
	}
	r = requests_new(cfg, requests_attestd_mint, att, &rq);
	if (r < 0) {
		log_error("starting the rules: %s", strerror(-r));
		goto out;
	}
	err[0] = '\0';
	r = web_start(cfg, rq, att, listen, &w, err, sizeof(err));
	if (r < 0) {
		log_error("web pages on %s: %s", listen, err[0] != '\0' ? err : strerror(-r));
		goto out;
	}
	err[0] = '\0';
	r = proxyapi_start(cfg, rq, &api, err, sizeof(err));
	if (r < 0) {
		log_error("proxies' API on %s: %s", cfg->api_socket, err[0] != '\0' ? err :
		    strerror(-r));
		goto out;
	}
	r = notify_start(cfg, rq, &nt);
	if (r < 0) {
		log_error("notifications: %s", strerror(-r));
		goto out;
	}
	printf("approver: serving https://%s (api: %s%s%s)\n", listen, cfg->api_socket,
	    cfg->api_listen[0] != '\0' ? ", https://" : "", cfg->api_listen);
	(void)fflush(stdout);
	log_info("serving https://%s as %s, api %s", listen, settings_origin(cfg),
	    cfg->api_socket);
	for (;;) {
		r = sigwait(&mask, &sig);
		if (r == 0 && (sig == SIGINT || sig == SIGTERM)) {
			break;
		}
		if (r != 0 && r != EINTR) {
			log_error("sigwait: %s", strerror(r));
			break;
		}
	}
	log_info("signal %d: stopping", sig);
	rc = EXIT_OK;
out:
	/* Wake the long polls first so the servers can drain. */
	if (rq != NULL) {
		requests_shutdown(rq);
	}
	notify_stop(nt);
	proxyapi_stop(api);
	web_stop(w);
	requests_free(rq);
	requests_attestd_free(att);
	settings_free(cfg);
	return rc;
}

/* --- user ------------------------------------------------------------------ */

/* One line from standard input, the newline stripped. Echo is off when it
 * is a terminal. */
static int
read_password(const char *name, char *buf, size_t size, size_t *ret_len)
{
	struct termios old, quiet;
	bool tty = isatty(STDIN_FILENO) == 1;
	size_t n;

	if (tty && tcgetattr(STDIN_FILENO, &old) == 0) {
		quiet = old;
		quiet.c_lflag &= ~(tcflag_t)ECHO;
		fprintf(stderr, "password for %s: ", name);
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	} else {
		tty = false;
	}
	if (fgets(buf, (int)size, stdin) == NULL) {
		buf[0] = '\0';
	}
	if (tty) {
		(void)tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
		fputc('\n', stderr);
	}
	n = strlen(buf);
	if (n > 0 && buf[n - 1] == '\n') {
		buf[--n] = '\0';
		if (n > 0 && buf[n - 1] == '\r') {
			buf[--n] = '\0';
		}
	} else if (n == size - 1) {
		return -E2BIG;
	}
	*ret_len = n;
	return 0;
}

static int
audit_user(struct store *st, const char *event, const char *name, const char *role)
{
	json_t *d = role != NULL ? json_pack("{s:s, s:s}", "user", name, "role", role) :
	    json_pack("{s:s}", "user", name);
	int r;

	if (d == NULL) {
		return -ENOMEM;
	}
	r = store_audit_append(st, actor, event, NULL, d, time(NULL));
	json_decref(d);
	return r;
}

static int
user_add(const char *state_dir, const char *name, const char *role_s)
{
	char pw[PASSWORD_MAX + 2], hash[STORE_PWHASH_MAX + 1];
	enum store_role role;
	struct store *st = NULL;
	size_t len = 0;
	int rc, r;

	if (store_role_parse(role_s, &role) != 0) {
		return usage_error("user add: --role '%s': expected 'approver' or 'admin'", role_s);
	}
	r = read_password(name, pw, sizeof(pw), &len);
	if (r < 0 || len > PASSWORD_MAX) {
		rc = failf("user add: the password is longer than %d bytes", PASSWORD_MAX);
		goto out;
	}
	if (len == 0) {
		rc = failf("user add: no password on standard input (one line, at least %d bytes)",
		    PASSWORD_MIN);
		goto out;
	}
	if (len < PASSWORD_MIN) {
		rc = failf("user add: the password is too short: %zu bytes, at least %d needed",
		    len, PASSWORD_MIN);
		goto out;
	}
	if (memchr(pw, '\0', len) != NULL) {
		rc = failf("user add: the password holds a NUL byte");
		goto out;
	}
	rc = open_store(state_dir, false, &st);
	if (rc != EXIT_OK) {
		goto out;
	}
	r = password_hash(pw, len, hash);
	if (r < 0) {
		rc = failf("user add: hashing the password: %s", strerror(-r));
		goto out;
	}
	r = store_begin(st);
	if (r == 0) {
		r = store_user_add(st, name, role, hash, time(NULL), NULL);
	}
	if (r == 0) {
		r = audit_user(st, "user_add", name, store_role_name(role));
	}
	if (r == 0) {
		r = store_commit(st);
	} else {
		store_rollback(st);
	}
	if (r == -EEXIST) {
		rc = failf("user add: '%s' exists", name);
		goto out;
	}
	if (r < 0) {
		rc = failf("user add: %s", strerror(-r));
		goto out;
	}
	printf("approver: added %s (%s)\n", name, store_role_name(role));
	rc = EXIT_OK;
out:
	explicit_bzero(pw, sizeof(pw));
	explicit_bzero(hash, sizeof(hash));
	store_close(st);
	return rc;
}

static int
user_set_disabled(const char *state_dir, const char *name, bool disabled)
{
	const char *event = disabled ? "user_disable" : "user_enable";
	struct store *st = NULL;
	int rc, r;

	rc = open_store(state_dir, false, &st);
	if (rc != EXIT_OK) {
		return rc;
	}
	r = store_begin(st);
	if (r == 0) {
		r = store_user_set_disabled(st, name, disabled);
	}
	if (r == 0) {
		r = audit_user(st, event, name, NULL);
	}
	if (r == 0) {
		r = store_commit(st);
	} else {
		store_rollback(st);
	}
	store_close(st);
	if (r == -ENOENT) {
		return failf("user %s: no user '%s'", disabled ? "disable" : "enable", name);
	}
	if (r < 0) {
		return failf("user %s: %s", disabled ? "disable" : "enable", strerror(-r));
	}
	printf("approver: %s %s\n", disabled ? "disabled" : "enabled", name);
	return EXIT_OK;
}

static void
format_time(int64_t t, char out[32])
{
	struct tm tm;
	time_t tt = (time_t)t;

	if (gmtime_r(&tt, &tm) == NULL || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0) {
		(void)snprintf(out, 32, "%lld", (long long)t);
	}
}

struct user_table {
	int width;
	bool print;
};

static int
user_row(const struct store_user *u, void *arg)
{
	struct user_table *t = arg;
	char when[32];
	int n = (int)strlen(u->name);

	if (!t->print) {
		if (n > t->width) {
			t->width = n;
		}
		return 0;
	}
	format_time(u->created, when);
	printf("%-*s  %-8s  %-8s  %s\n", t->width, u->name, store_role_name(u->role),
	    u->disabled ? "yes" : "no", when);
	return 0;
}

static int
user_list(const char *state_dir)
{
	struct user_table t = { 4, false };
	struct store *st = NULL;
	int rc, r;

	rc = open_store(state_dir, false, &st);
	if (rc != EXIT_OK) {
		return rc;
	}
	r = store_user_list(st, user_row, &t);
	if (r == 0) {
		t.print = true;
		printf("%-*s  %-8s  %-8s  %s\n", t.width, "NAME", "ROLE", "DISABLED", "CREATED");
		r = store_user_list(st, user_row, &t);
	}
	store_close(st);
	if (r < 0) {
		return failf("user list: %s", strerror(-r));
	}
	return EXIT_OK;
}

static int
cmd_user(const char *state_dir, int argc, char **argv)
{
	enum { O_ROLE };
	struct args_opt opts[] = { ARGS_OPT("role"), ARGS_END };
	struct args a;
	int rc;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos == 0) {
		return usage_error("user: expected 'add', 'disable', 'enable' or 'list'");
	}
	if (strcmp(a.pos[0], "list") == 0) {
		if (a.n_pos != 1 || opts[O_ROLE].set) {
			return usage_error("user list: takes no arguments");
		}
		return user_list(state_dir);
	}
	if (strcmp(a.pos[0], "add") != 0 && strcmp(a.pos[0], "disable") != 0 &&
	    strcmp(a.pos[0], "enable") != 0) {
		return usage_error("user: unknown subcommand '%s'", a.pos[0]);
	}
	if (a.n_pos != 2) {
		return usage_error("user %s: expected exactly one NAME", a.pos[0]);
	}
	if (parse_ident(a.pos[1], STORE_NAME_MAX) != 0) {
		return usage_error("user %s: NAME '%s': expected 1..%d characters of "
		    "[A-Za-z0-9._:-], starting with a letter or digit", a.pos[0], a.pos[1],
		    STORE_NAME_MAX);
	}
	if (strcmp(a.pos[0], "add") == 0) {
		if (opts[O_ROLE].value == NULL) {
			return usage_error("user add: --role approver|admin is required");
		}
		return user_add(state_dir, a.pos[1], opts[O_ROLE].value);
	}
	if (opts[O_ROLE].set) {
		return usage_error("user %s: --role is only for 'user add'", a.pos[0]);
	}
	return user_set_disabled(state_dir, a.pos[1], strcmp(a.pos[0], "disable") == 0);
}

/* --- passkey --------------------------------------------------------------- */

struct cred_pick {
	const uint8_t *want;        /* NULL: the newest */
	size_t want_len;
	bool found;
	struct store_credential c;
	bool print;
};

static int
cred_pick(const struct store_credential *c, void *arg)
{
	struct cred_pick *p = arg;
	char id[WEBAUTHN_CRED_ID_MAX * 2], when[32], fp[WEBAUTHN_FP_MAX];

	if (p->print) {
		if (b64url_encode(c->cred.id, c->cred.id_len, id, sizeof(id)) < 0) {
			return -EIO;
		}
		format_time(c->created, when);
		/* The fingerprint the person reads to root (docs/approvals.md). */
		printf("%-6s  %10u  %-20s  %-50s  %s  %s\n", webauthn_alg_name(c->cred.alg) != NULL ?
		    webauthn_alg_name(c->cred.alg) : "?", c->cred.sign_count, when,
		    webauthn_fingerprint(&c->cred, fp) == 0 ? fp : "?",
		    c->label[0] != '\0' ? c->label : "-", id);
		p->found = true;
		return 0;
	}
	/* Listed oldest first: the last one seen is the newest. */
	if (p->want == NULL || (c->cred.id_len == p->want_len &&
	    memcmp(c->cred.id, p->want, p->want_len) == 0)) {
		p->c = *c;
		p->found = true;
	}
	return 0;
}

static int
passkey_export(const char *state_dir, struct store *st, const struct store_user *u,
    const char *cred_b64)
{
	struct cred_pick *p = NULL;
	struct settings *cfg = NULL;
	uint8_t want[WEBAUTHN_CRED_ID_MAX];
	char id[WEBAUTHN_CRED_ID_MAX * 2], pk[WEBAUTHN_PK_MAX * 2], err[512];
	json_t *rec = NULL;
	char *text = NULL;
	size_t wlen = 0;
	int rc = EXIT_FAIL, r;

	if (cred_b64 != NULL && (b64url_decode(cred_b64, strlen(cred_b64), want, sizeof(want),
	    &wlen) != 0 || wlen == 0)) {
		return usage_error("passkey export: --credential: expected a credential id in "
		    "unpadded base64url");
	}
	r = settings_load(state_dir, &cfg, err, sizeof(err));
	if (r < 0) {
		return failf("passkey export: %s", err);
	}
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		rc = failf("passkey export: out of memory");
		goto out;
	}
	p->want = cred_b64 != NULL ? want : NULL;
	p->want_len = wlen;
	r = store_credential_list(st, u->id, cred_pick, p);
	if (r < 0) {
		rc = failf("passkey export: %s", strerror(-r));
		goto out;
	}
	if (!p->found) {
		rc = failf("passkey export: %s has %s", u->name, cred_b64 != NULL ?
		    "no passkey with that id" : "no passkey (add one on the Passkeys page)");
		goto out;
	}
	if (b64url_encode(p->c.cred.id, p->c.cred.id_len, id, sizeof(id)) < 0 ||
	    b64url_encode(p->c.cred.pk, p->c.cred.pk_len, pk, sizeof(pk)) < 0 ||
	    webauthn_alg_name(p->c.cred.alg) == NULL) {
		rc = failf("passkey export: the stored credential is malformed");
		goto out;
	}
	rec = json_pack("{s:i, s:s, s:s, s:s, s:s, s:s, s:I}", "v", 1, "approver", u->name,
	    "credential_id", id, "alg", webauthn_alg_name(p->c.cred.alg), "public_key", pk,
	    "rp_id", cfg->rp_id, "sign_count", (json_int_t)p->c.cred.sign_count);
	text = rec != NULL ? json_dumps(rec, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
	if (text == NULL) {
		rc = failf("passkey export: out of memory");
		goto out;
	}
	printf("%s\n", text);
	rc = EXIT_OK;
out:
	free(text);
	json_decref(rec);
	free(p);
	settings_free(cfg);
	return rc;
}

static int
cmd_passkey(const char *state_dir, int argc, char **argv)
{
	enum { O_CRED };
	struct args_opt opts[] = { ARGS_OPT("credential"), ARGS_END };
	struct store_user u;
	struct store *st = NULL;
	struct args a;
	int rc, r;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 2 || (strcmp(a.pos[0], "list") != 0 && strcmp(a.pos[0], "export") != 0)) {
		return usage_error("passkey: expected 'list NAME' or 'export NAME [--credential ID]'");
	}
	if (strcmp(a.pos[0], "list") == 0 && opts[O_CRED].set) {
		return usage_error("passkey list: --credential is only for 'passkey export'");
	}
	if (parse_ident(a.pos[1], STORE_NAME_MAX) != 0) {
		return usage_error("passkey %s: NAME '%s' is not a user name", a.pos[0], a.pos[1]);
	}
	rc = open_store(state_dir, false, &st);
	if (rc != EXIT_OK) {
		return rc;
	}
	r = store_user_get(st, a.pos[1], &u);
	if (r < 0) {
		rc = failf("passkey %s: %s", a.pos[0], r == -ENOENT ? "no such user" : strerror(-r));
		goto out;
	}
	if (strcmp(a.pos[0], "export") == 0) {
		rc = passkey_export(state_dir, st, &u, opts[O_CRED].value);
	} else {
		struct cred_pick *p = calloc(1, sizeof(*p));

		if (p == NULL) {
			rc = failf("passkey list: out of memory");
			goto out;
		}
		p->print = true;
		printf("%-6s  %10s  %-20s  %-50s  %s  %s\n", "ALG", "SIGN_COUNT", "CREATED",
		    "FINGERPRINT", "LABEL", "CREDENTIAL");
		r = store_credential_list(st, u.id, cred_pick, p);
		if (r == 0 && !p->found) {
			printf("(%s has no passkey)\n", u.name);
		}
		free(p);
		rc = r == 0 ? EXIT_OK : failf("passkey list: %s", strerror(-r));
	}
out:
	explicit_bzero(&u, sizeof(u));
	store_close(st);
	return rc;
}

/* --- audit ----------------------------------------------------------------- */

static int
audit_row(const struct store_audit *e, void *arg)
{
	char when[32];

	(void)arg;
	format_time(e->at, when);
	printf("%6lld  %s  %-16s  %-16s  %-32s  %s\n", (long long)e->seq, when, e->actor,
	    e->event, e->request[0] != '\0' ? e->request : "-", e->detail);
	return 0;
}

static int
cmd_audit(const char *state_dir, int argc, char **argv)
{
	enum { O_LIMIT, O_REQUEST };
	struct args_opt opts[] = { ARGS_OPT("limit"), ARGS_OPT("request"), ARGS_END };
	struct store *st = NULL;
	struct args a;
	char detail[256] = "";
	int64_t n = 0, bad = 0;
	uint64_t limit = AUDIT_LIST_DEFAULT;
	int rc, r;

	rc = parse_args(argc, argv, opts, &a);
	if (rc != 0) {
		return rc;
	}
	if (a.help) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (a.n_pos != 1 || (strcmp(a.pos[0], "verify") != 0 && strcmp(a.pos[0], "list") != 0)) {
		return usage_error("audit: expected 'verify' or 'list [--limit N] [--request ID]'");
	}
	if (strcmp(a.pos[0], "verify") == 0 && (opts[O_LIMIT].set || opts[O_REQUEST].set)) {
		return usage_error("audit verify: takes no options");
	}
	if (opts[O_LIMIT].value != NULL && parse_u64(opts[O_LIMIT].value, 1, 100000, &limit)) {
		return usage_error("audit list: --limit '%s': expected 1..100000",
		    opts[O_LIMIT].value);
	}
	if (opts[O_REQUEST].value != NULL && parse_ident(opts[O_REQUEST].value, TOKEN_ID_MAX)) {
		return usage_error("audit list: --request '%s' is not a request id",
		    opts[O_REQUEST].value);
	}
	rc = open_store(state_dir, false, &st);
	if (rc != EXIT_OK) {
		return rc;
	}
	if (strcmp(a.pos[0], "verify") == 0) {
		r = store_audit_verify(st, &n, &bad, detail, sizeof(detail));
		if (r == 0) {
			printf("audit: %lld records, chain intact\n", (long long)n);
			rc = EXIT_OK;
		} else if (r == -EBADMSG) {
			printf("audit: chain broken at record %lld: %s\n", (long long)bad, detail);
			rc = EXIT_FAIL;
		} else {
			rc = failf("audit verify: %s", strerror(-r));
		}
	} else {
		r = store_audit_list(st, 0, (int64_t)limit, opts[O_REQUEST].value, audit_row, NULL);
		rc = r == 0 ? EXIT_OK : failf("audit list: %s", strerror(-r));
	}
	store_close(st);
	return rc;
}

/* --- main ------------------------------------------------------------------ */

int
main(int argc, char **argv)
{
	const char *state_arg = NULL, *cmd;
	char state[SETTINGS_PATH_MAX];
	int i = 1;

	set_actor();
	while (i < argc && strncmp(argv[i], "-", 1) == 0) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			fputs(usage_text, stdout);
			return EXIT_OK;
		}
		if (strcmp(argv[i], "--state-dir") == 0 || strncmp(argv[i], "--state-dir=", 12) == 0) {
			const char *val = argv[i][11] == '=' ? argv[i] + 12 : NULL;

			if (val == NULL) {
				if (i + 1 >= argc) {
					return usage_error("option '%s' needs a value", argv[i]);
				}
				val = argv[++i];
			}
			if (state_arg != NULL) {
				return usage_error("option '%s' given twice", "--state-dir");
			}
			if (val[0] == '\0') {
				return usage_error("--state-dir: empty path");
			}
			state_arg = val;
			i++;
			continue;
		}
		return usage_error("unknown option '%s'", argv[i]);
	}
	if (i >= argc) {
		return usage_error("no command given");
	}
	if (state_arg == NULL) {
		state_arg = DEFAULT_STATE;
	}
	if (strlen(state_arg) >= sizeof(state) - 64) {
		return usage_error("--state-dir: path too long");
	}
	cmd = argv[i++];
	if (strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return EXIT_OK;
	}
	if (strcmp(cmd, "init") == 0) {
		return cmd_init(state_arg, argc - i, argv + i);
	}
	if (strcmp(cmd, "serve") != 0 && strcmp(cmd, "user") != 0 && strcmp(cmd, "passkey") != 0 &&
	    strcmp(cmd, "audit") != 0) {
		return usage_error("unknown command '%s'", cmd);
	}
	/* Paths in the configuration are relative to the folder: resolve it
	 * once, so they do not depend on the working directory. */
	if (realpath(state_arg, state) == NULL) {
		return failf("%s: %s%s", state_arg, strerror(errno),
		    errno == ENOENT ? " (run 'approver init' first)" : "");
	}
	if (strcmp(cmd, "serve") == 0) {
		return cmd_serve(state, argc - i, argv + i);
	}
	if (strcmp(cmd, "user") == 0) {
		return cmd_user(state, argc - i, argv + i);
	}
	if (strcmp(cmd, "passkey") == 0) {
		return cmd_passkey(state, argc - i, argv + i);
	}
	return cmd_audit(state, argc - i, argv + i);
}
