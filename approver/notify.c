/* notify: the approver's background thread (notify.h). */
#include "notify.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "log.h"
#include "store.h"
#include "uhttp.h"

#define NOTIFY_TICK_MS        1000
#define NOTIFY_PER_TICK       16       /* then expiry gets its turn again */
#define NOTIFY_BACKOFF_FIRST  5
#define NOTIFY_BACKOFF_MAX    600

struct notify {
	const struct settings *cfg;
	struct requests *rq;
	char db_path[SETTINGS_PATH_MAX + 32];
	pthread_t thread;
	pthread_mutex_t mu;
	pthread_cond_t cv;
	bool stop;
};

json_t *
notify_summary(const struct settings *cfg, const struct store_request *r)
{
	char url[SETTINGS_URL_MAX + TOKEN_ID_MAX + 16];
	size_t n = strlen(cfg->public_url);

	/* No doubled slash when public_url ends with one. */
	while (n > 0 && cfg->public_url[n - 1] == '/') {
		n--;
	}
	(void)snprintf(url, sizeof(url), "%.*s/requests/%s", (int)n, cfg->public_url,
	    r->ar.request);
	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:I, s:I, s:s}", "id", r->ar.request,
	    "vm", r->ar.vm, "op", r->ar.op, "reason", r->reason != NULL ? r->reason : "",
	    "digest", r->digest, "created", (json_int_t)r->created,
	    "expires", (json_int_t)r->expires, "url", url);
}

/* The command, with the summary on its standard input, a clean
 * environment, nothing else open, and NOTIFY_TIMEOUT_MS to finish. */
static int
run_command(const struct settings *cfg, const char *text, size_t len)
{
	static char *const envp[] = { "PATH=/usr/bin:/bin", NULL };
	int in[2] = { -1, -1 }, devnull = -1, status = 0, rc;
	int64_t deadline;
	sigset_t none;
	pid_t pid, w;
	size_t off = 0;

	if (pipe2(in, O_CLOEXEC) != 0) {
		return -errno;
	}
	devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (devnull < 0) {
		rc = -errno;
		goto out;
	}
	pid = fork();
	if (pid < 0) {
		rc = -errno;
		goto out;
	}
	if (pid == 0) {
		/* Only async-signal-safe calls from here on. */
		if (dup2(in[0], 0) < 0 || dup2(devnull, 1) < 0 || dup2(devnull, 2) < 0) {
			_exit(126);
		}
		(void)close_range(3, ~0U, 0);
		/* The service blocks SIGTERM and ignores SIGPIPE; the command
		 * starts with neither. */
		(void)signal(SIGPIPE, SIG_DFL);
		(void)sigemptyset(&none);
		(void)sigprocmask(SIG_SETMASK, &none, NULL);
		execve(cfg->notify_argv[0], cfg->notify_argv, envp);
		_exit(127);
	}
	(void)close(in[0]);
	in[0] = -1;
	/* A summary is a few kilobytes: well within a pipe's buffer, so a
	 * command that never reads cannot hold this up. */
	(void)fcntl(in[1], F_SETFL, O_NONBLOCK);
	while (off < len) {
		ssize_t k = write(in[1], text + off, len - off);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k <= 0) {
			break;
		}
		off += (size_t)k;
	}
	(void)close(in[1]);
	in[1] = -1;
	deadline = (int64_t)clock_mono_ms() + NOTIFY_TIMEOUT_MS;
	for (;;) {
		w = waitpid(pid, &status, WNOHANG);
		if (w == pid || (w < 0 && errno != EINTR)) {
			break;
		}
		if ((int64_t)clock_mono_ms() >= deadline) {
			(void)kill(pid, SIGKILL);
			(void)waitpid(pid, &status, 0);
			rc = -ETIMEDOUT;
			goto out;
		}
		clock_sleep_ms(20);
	}
	if (w != pid) {
		rc = -ECHILD;
	} else if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		rc = 0;
	} else {
		rc = -EIO;
	}
out:
	if (in[0] >= 0) {
		(void)close(in[0]);
	}
	if (in[1] >= 0) {
		(void)close(in[1]);
	}
	if (devnull >= 0) {
		(void)close(devnull);
	}
	return rc;
}

static int
post_webhook(const struct settings *cfg, const json_t *summary, long *ret_status)
{
	struct uhttp *h = NULL;
	char *body = NULL;
	size_t len = 0;
	long status = 0;
	int rc;

	char base[SETTINGS_URL_MAX + 1];
	const char *scheme_end = strstr(cfg->notify_webhook, "://"), *path = "/";
	size_t blen = strlen(cfg->notify_webhook);

	/* uhttp wants the origin and the path apart. */
	if (scheme_end != NULL && (path = strchr(scheme_end + 3, '/')) != NULL) {
		blen = (size_t)(path - cfg->notify_webhook);
	} else {
		path = "/";
	}
	if (blen >= sizeof(base)) {
		return -EINVAL;
	}
	memcpy(base, cfg->notify_webhook, blen);
	base[blen] = '\0';
	rc = uhttp_new_url(base, &h);
	if (rc == 0) {
		rc = uhttp_set_timeouts(h, UHTTP_CONNECT_TIMEOUT_MS, NOTIFY_TIMEOUT_MS);
	}
	if (rc == 0 && cfg->notify_webhook_ca[0] != '\0') {
		/* A private CA or a self-signed chat server: trusted for this only. */
		rc = uhttp_set_cafile(h, cfg->notify_webhook_ca);
	}
	if (rc == 0) {
		rc = cjson_dump(summary, &body, &len);
	}
	if (rc == 0) {
		/* Any reply body will do: chat services answer with text. */
		char *rb = NULL;
		size_t rl = 0;

		rc = uhttp_request(h, "POST", path, body, len, &status, &rb, &rl);
		free(rb);
	}
	if (rc == 0 && (status < 200 || status > 299)) {
		rc = -EPROTO;
	}
	*ret_status = status;
	free(body);
	uhttp_free(h);
	return rc;
}

/* One notification: 0 done (or nothing left to tell), negative to retry. */
static int
notify_one(struct notify *n, struct store *st, const char *id)
{
	struct store_request r;
	json_t *summary = NULL;
	char *text = NULL;
	size_t len = 0;
	long status = 0;
	int rc;

	memset(&r, 0, sizeof(r));
	rc = store_request_get(st, id, &r);
	if (rc == -ENOENT || (rc == 0 && r.state != STORE_PENDING)) {
		rc = 0;   /* decided or gone before anyone was told: nothing to do */
		goto out;
	}
	if (rc != 0) {
		goto out;
	}
	summary = notify_summary(n->cfg, &r);
	if (summary == NULL || cjson_dump(summary, &text, &len) != 0) {
		rc = -ENOMEM;
		goto out;
	}
	if (n->cfg->notify_argc > 0) {
		rc = run_command(n->cfg, text, len);
		if (rc != 0) {
			log_warn("notify: %s for request %s failed: %s", n->cfg->notify_argv[0], id,
			    rc == -ETIMEDOUT ? "timed out" : rc == -EIO ? "non-zero exit" :
			    strerror(-rc));
			goto out;
		}
	}
	if (n->cfg->notify_webhook[0] != '\0') {
		rc = post_webhook(n->cfg, summary, &status);
		if (rc != 0) {
			if (rc == -EPROTO && status != 0) {
				log_warn("notify: the webhook answered HTTP %ld for request %s", status, id);
			} else if (rc == -EACCES) {
				const char *ca = n->cfg->notify_webhook_ca;

				log_warn("notify: the webhook for request %s failed: its certificate "
				    "does not verify against %s", id,
				    ca[0] != '\0' ? ca : "the system's trust store");
			} else {
				log_warn("notify: the webhook for request %s failed: %s", id,
				    strerror(-rc));
			}
			goto out;
		}
	}
	rc = 0;
out:
	free(text);
	json_decref(summary);
	store_request_clear(&r);
	return rc;
}

static void
drain_queue(struct notify *n, struct store *st)
{
	int i;

	for (i = 0; i < NOTIFY_PER_TICK; i++) {
		char id[TOKEN_ID_MAX + 1];
		int64_t attempts = 0, now = (int64_t)time(NULL), delay;
		int r;

		r = store_notify_next(st, now, id, &attempts);
		if (r == -ENOENT) {
			return;
		}
		if (r != 0) {
			log_warn("notify: the queue cannot be read: %s", strerror(-r));
			return;
		}
		if (n->cfg->notify_argc == 0 && n->cfg->notify_webhook[0] == '\0') {
			(void)store_notify_done(st, id);
			continue;
		}
		r = notify_one(n, st, id);
		if (r == 0) {
			r = store_notify_done(st, id);
		} else if (attempts + 1 >= NOTIFY_MAX_ATTEMPTS) {
			log_error("notify: giving up on request %s after %lld attempts", id,
			    (long long)(attempts + 1));
			r = store_notify_done(st, id);
		} else {
			delay = NOTIFY_BACKOFF_FIRST;
			while (delay < NOTIFY_BACKOFF_MAX && attempts-- > 0) {
				delay *= 2;
			}
			if (delay > NOTIFY_BACKOFF_MAX) {
				delay = NOTIFY_BACKOFF_MAX;
			}
			r = store_notify_retry(st, id, (int64_t)time(NULL) + delay);
		}
		if (r != 0) {
			log_warn("notify: the queue cannot be updated: %s", strerror(-r));
			return;
		}
		/* Expiry does not wait for a slow command. */
		(void)requests_expire_due(n->rq, st, (int64_t)time(NULL));
	}
}

static void *
notify_main(void *arg)
{
	struct notify *n = arg;
	struct store *st = NULL;
	int r;

	r = store_open(n->db_path, &st);
	if (r != 0) {
		log_error("notify: cannot open %s: %s; requests will not expire", n->db_path,
		    strerror(-r));
		return NULL;
	}
	r = requests_recover(n->rq, st, (int64_t)time(NULL));
	if (r != 0) {
		log_warn("notify: cannot recover requests left minting: %s", strerror(-r));
	}
	pthread_mutex_lock(&n->mu);
	while (!n->stop) {
		struct timespec ts;
		int64_t now, purged = 0;

		pthread_mutex_unlock(&n->mu);
		now = (int64_t)time(NULL);
		r = requests_expire_due(n->rq, st, now);
		if (r != 0) {
			log_warn("notify: expiring requests failed: %s", strerror(-r));
		}
		r = store_session_purge(st, now - n->cfg->session_idle_seconds,
		    now - n->cfg->session_max_seconds);
		if (r != 0) {
			log_warn("notify: purging sessions failed: %s", strerror(-r));
		}
		r = store_login_purge(st, now - n->cfg->login_window_seconds);
		if (r != 0) {
			log_warn("notify: purging failed logins failed: %s", strerror(-r));
		}
		r = store_token_purge(st, now, &purged);
		if (r != 0) {
			log_warn("notify: purging expired tokens failed: %s", strerror(-r));
		} else if (purged > 0) {
			log_info("%lld approved request(s) expired: their tokens were never picked up",
			    (long long)purged);
			requests_changed(n->rq);
		}
		drain_queue(n, st);
		pthread_mutex_lock(&n->mu);
		if (n->stop) {
			break;
		}
		(void)clock_gettime(CLOCK_MONOTONIC, &ts);
		ts.tv_sec += NOTIFY_TICK_MS / 1000;
		(void)pthread_cond_timedwait(&n->cv, &n->mu, &ts);
	}
	pthread_mutex_unlock(&n->mu);
	store_close(st);
	return NULL;
}

int
notify_start(const struct settings *cfg, struct requests *rq, struct notify **ret)
{
	struct notify *n;
	pthread_condattr_t ca;
	int r;

	n = calloc(1, sizeof(*n));
	if (n == NULL) {
		return -ENOMEM;
	}
	n->cfg = cfg;
	n->rq = rq;
	(void)snprintf(n->db_path, sizeof(n->db_path), "%s/%s", cfg->state_dir, SETTINGS_DB_FILE);
	(void)pthread_mutex_init(&n->mu, NULL);
	(void)pthread_condattr_init(&ca);
	(void)pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	(void)pthread_cond_init(&n->cv, &ca);
	pthread_condattr_destroy(&ca);
	r = pthread_create(&n->thread, NULL, notify_main, n);
	if (r != 0) {
		pthread_cond_destroy(&n->cv);
		pthread_mutex_destroy(&n->mu);
		free(n);
		return -r;
	}
	*ret = n;
	return 0;
}

void
notify_stop(struct notify *n)
{
	if (n == NULL) {
		return;
	}
	pthread_mutex_lock(&n->mu);
	n->stop = true;
	pthread_cond_signal(&n->cv);
	pthread_mutex_unlock(&n->mu);
	(void)pthread_join(n->thread, NULL);
	pthread_cond_destroy(&n->cv);
	pthread_mutex_destroy(&n->mu);
	free(n);
}
