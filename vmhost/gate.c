/* gate: approval sinks (gate.h); the spool-directory sink. */
#include "gate.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cjson.h"
#include "clock.h"
#include "fsutil.h"
#include "parse.h"
#include "token.h"

struct gate {
	struct gate_ops ops;
	void *ctx;
	atomic_bool cancel;
};

int
gate_new(const struct gate_ops *ops, void *ctx, struct gate **ret)
{
	struct gate *g;

	if (ops == NULL || ops->submit == NULL || ops->wait == NULL) {
		return -EINVAL;
	}
	g = calloc(1, sizeof(*g));
	if (g == NULL) {
		return -ENOMEM;
	}
	g->ops = *ops;
	g->ctx = ctx;
	atomic_init(&g->cancel, false);
	*ret = g;
	return 0;
}

void
gate_free(struct gate *g)
{
	if (g == NULL) {
		return;
	}
	if (g->ops.free != NULL) {
		g->ops.free(g->ctx);
	}
	free(g);
}

int
gate_submit(struct gate *g, const struct gate_request *r)
{
	if (parse_ident(r->id, GATE_ID_MAX) != 0) {
		return -EINVAL;
	}
	return g->ops.submit(g->ctx, r);
}

int
gate_wait(struct gate *g, const char *id, uint64_t timeout_ms, char **ret_token, char **ret_reason)
{
	char *tok = NULL, *why = NULL;
	int r;

	if (parse_ident(id, GATE_ID_MAX) != 0) {
		return -EINVAL;
	}
	if (atomic_load(&g->cancel)) {
		return -ECANCELED;
	}
	r = g->ops.wait(g->ctx, id, clock_mono_ms() + timeout_ms, &g->cancel, &tok, &why);
	if (r == 0) {
		*ret_token = tok;
	} else if (r == -EACCES) {
		*ret_reason = why;
	}
	return r;
}

void
gate_done(struct gate *g, const char *id)
{
	if (g->ops.done != NULL && parse_ident(id, GATE_ID_MAX) == 0) {
		g->ops.done(g->ctx, id);
	}
}

void
gate_cancel(struct gate *g)
{
	if (g != NULL) {
		atomic_store(&g->cancel, true);
	}
}

int
gate_new_id(char ret[GATE_ID_MAX + 1])
{
	uint8_t b[GATE_ID_LEN / 2];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n < 0 && errno == EINTR) {
			continue;
		}
		if (n < 0) {
			return -errno;
		}
		got += (size_t)n;
	}
	format_hex(b, sizeof(b), ret);
	return 0;
}

json_t *
gate_request_to_json(const struct gate_request *r)
{
	return json_pack("{s:s, s:s, s:s, s:s, s:O, s:s, s:s, s:I, s:I, s:I}", "id", r->id,
	    "vm", r->vm, "launch_digest", r->launch_digest, "op", r->op, "args", r->args,
	    "args_sha256", r->args_sha256, "reason", r->reason != NULL ? r->reason : "",
	    "requested_ttl", (json_int_t)r->requested_ttl, "created", (json_int_t)r->created,
	    "expires", (json_int_t)r->expires);
}

/* --- the spool sink ------------------------------------------------------- */

enum { SPOOL_REQUESTS, SPOOL_TOKENS, SPOOL_DENIED, SPOOL_N };

static const char *const spool_sub[SPOOL_N] = { "requests", "tokens", "denied" };

struct spool {
	int fd[SPOOL_N];          /* the three folders, opened once */
};

static int
write_all(int fd, const char *p, size_t n)
{
	while (n > 0) {
		ssize_t k = write(fd, p, n);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0) {
			return -errno;
		}
		p += k;
		n -= (size_t)k;
	}
	return 0;
}

/* requests/<id>.json: written under a dot-name, fsynced, renamed into
 * place and the folder fsynced, so an approver never sees half a request. */
static int
spool_submit(void *ctx, const struct gate_request *r)
{
	struct spool *s = ctx;
	char tmp[GATE_ID_MAX + 16], name[GATE_ID_MAX + 8];
	char *text = NULL;
	json_t *j = NULL;
	size_t len = 0;
	int fd = -1, rc;

	(void)snprintf(tmp, sizeof(tmp), ".%s.tmp", r->id);
	(void)snprintf(name, sizeof(name), "%s.json", r->id);
	j = gate_request_to_json(r);
	if (j == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = cjson_dump(j, &text, &len);
	if (rc != 0) {
		goto out;
	}
	(void)unlinkat(s->fd[SPOOL_REQUESTS], tmp, 0);
	fd = openat(s->fd[SPOOL_REQUESTS], tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW,
	    0600);
	if (fd < 0) {
		rc = -errno;
		goto out;
	}
	if (fchmod(fd, 0600) != 0 || (rc = write_all(fd, text, len)) != 0 ||
	    (rc = write_all(fd, "\n", 1)) != 0 || fsync(fd) != 0) {
		rc = rc != 0 ? rc : -errno;
		goto out;
	}
	if (close(fd) != 0) {
		fd = -1;
		rc = -errno;
		goto out;
	}
	fd = -1;
	if (renameat(s->fd[SPOOL_REQUESTS], tmp, s->fd[SPOOL_REQUESTS], name) != 0 ||
	    fsync(s->fd[SPOOL_REQUESTS]) != 0) {
		rc = -errno;
		goto out;
	}
	rc = 0;
out:
	if (fd >= 0) {
		(void)close(fd);
	}
	if (rc != 0) {
		(void)unlinkat(s->fd[SPOOL_REQUESTS], tmp, 0);
	}
	free(text);
	json_decref(j);
	return rc;
}

/* Read folder/id once it is there and settled (not modified for
 * GATE_SETTLE_MS: a writer that does not rename into place may still be
 * writing): 1 and *ret (NUL-terminated, trailing white space cut), 0 if
 * not there or not settled yet, negative if it is not a usable file. */
static int
spool_take(int dirfd, const char *id, size_t cap, char **ret)
{
	struct timespec now;
	struct stat st;
	char *buf = NULL;
	size_t n = 0;
	int64_t age_ms;
	int fd, rc;

	fd = openat(dirfd, id, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY);
	if (fd < 0) {
		return errno == ENOENT ? 0 : -errno;
	}
	if (fstat(fd, &st) != 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		rc = -EINVAL;
		goto out;
	}
	if ((uint64_t)st.st_size > cap) {
		rc = -EFBIG;
		goto out;
	}
	(void)clock_gettime(CLOCK_REALTIME, &now);
	age_ms = (int64_t)(now.tv_sec - st.st_mtim.tv_sec) * 1000 +
	    (now.tv_nsec - st.st_mtim.tv_nsec) / 1000000;
	if (age_ms < GATE_SETTLE_MS) {
		rc = 0;
		goto out;
	}
	buf = malloc(cap + 2);
	if (buf == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	while (n < cap + 1) {
		ssize_t k = read(fd, buf + n, cap + 1 - n);

		if (k < 0 && errno == EINTR) {
			continue;
		}
		if (k < 0) {
			rc = -errno;
			goto out;
		}
		if (k == 0) {
			break;
		}
		n += (size_t)k;
	}
	if (n > cap) {
		rc = -EFBIG;
		goto out;
	}
	while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r' || buf[n - 1] == ' ' ||
	    buf[n - 1] == '\t')) {
		n--;
	}
	buf[n] = '\0';
	*ret = buf;
	buf = NULL;
	rc = 1;
out:
	if (buf != NULL) {
		explicit_bzero(buf, cap + 2);
		free(buf);
	}
	(void)close(fd);
	return rc;
}

/* A denial's reason as shown to the guest and logged: printable ASCII,
 * anything else becomes '?'. */
static void
clean_reason(char *s)
{
	for (; *s != '\0'; s++) {
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e) {
			*s = '?';
		}
	}
}

static int
spool_wait(void *ctx, const char *id, uint64_t deadline_ms, const atomic_bool *cancel,
    char **ret_token, char **ret_reason)
{
	struct spool *s = ctx;
	char *text = NULL;
	int r;

	for (;;) {
		uint64_t now;

		/* A denial first: if both are there, the veto wins. */
		r = spool_take(s->fd[SPOOL_DENIED], id, GATE_REASON_MAX, &text);
		if (r == 1) {
			clean_reason(text);
			if (text[0] == '\0') {
				free(text);
				text = strdup("denied");
				if (text == NULL) {
					return -ENOMEM;
				}
			}
			*ret_reason = text;
			return -EACCES;
		}
		if (r < 0) {
			/* Something is there that is not a reason: still a no. */
			text = strdup("an unreadable denial");
			if (text == NULL) {
				return -ENOMEM;
			}
			*ret_reason = text;
			return -EACCES;
		}
		r = spool_take(s->fd[SPOOL_TOKENS], id, TOKEN_MAX_LEN, &text);
		if (r == 1) {
			*ret_token = text;
			return 0;
		}
		if (r < 0) {
			return r;
		}
		if (atomic_load(cancel)) {
			return -ECANCELED;
		}
		now = clock_mono_ms();
		if (now >= deadline_ms) {
			return -ETIMEDOUT;
		}
		clock_sleep_ms(deadline_ms - now < GATE_POLL_MS ? deadline_ms - now : GATE_POLL_MS);
	}
}

static void
spool_done(void *ctx, const char *id)
{
	struct spool *s = ctx;
	char name[GATE_ID_MAX + 8];

	(void)snprintf(name, sizeof(name), "%s.json", id);
	(void)unlinkat(s->fd[SPOOL_REQUESTS], name, 0);
	(void)unlinkat(s->fd[SPOOL_TOKENS], id, 0);
	(void)unlinkat(s->fd[SPOOL_DENIED], id, 0);
}

static void
spool_free(void *ctx)
{
	struct spool *s = ctx;
	int i;

	if (s == NULL) {
		return;
	}
	for (i = 0; i < SPOOL_N; i++) {
		if (s->fd[i] >= 0) {
			(void)close(s->fd[i]);
		}
	}
	free(s);
}

int
gate_spool_new(const char *dir, struct gate **ret)
{
	static const struct gate_ops ops = { spool_submit, spool_wait, spool_done, spool_free };
	struct spool *s = NULL;
	int base = -1, r, i;

	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		return -ENOMEM;
	}
	for (i = 0; i < SPOOL_N; i++) {
		s->fd[i] = -1;
	}
	r = fs_ensure_dir(dir, 0700);
	if (r != 0) {
		goto out;
	}
	base = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
	if (base < 0) {
		r = -errno;
		goto out;
	}
	for (i = 0; i < SPOOL_N; i++) {
		if (mkdirat(base, spool_sub[i], 0700) != 0 && errno != EEXIST) {
			r = -errno;
			goto out;
		}
		s->fd[i] = openat(base, spool_sub[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NOFOLLOW);
		if (s->fd[i] < 0) {
			r = -errno;
			goto out;
		}
	}
	r = gate_new(&ops, s, ret);
	if (r == 0) {
		s = NULL;
	}
out:
	if (base >= 0) {
		(void)close(base);
	}
	spool_free(s);
	return r;
}
