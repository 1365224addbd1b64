#include "config.h"

#include <errno.h>
#include <grp.h>
#include <jansson.h>
#include <pwd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cjson.h"
#include "fsutil.h"
#include "parse.h"
#include "text.h"

/* getpwnam_r/getgrnam_r buffers: enough for any sane passwd/group entry. */
#define NSS_BUF 16384

static const struct config_grant grant_all = {
	.roles = CONFIG_ROLE_ADMIN | CONFIG_ROLE_MINT | CONFIG_ROLE_LAUNCH |
	    CONFIG_GRANT_VERIFY_ANY,
};

int
config_new(struct config **ret)
{
	struct config *c;
	const char *tcti = getenv("WARRANT_TCTI");

	c = calloc(1, sizeof(*c));
	if (c == NULL) {
		return -ENOMEM;
	}
	(void)text_copy(c->state_dir, sizeof(c->state_dir), CONFIG_DEFAULT_STATE);
	(void)text_copy(c->socket, sizeof(c->socket), CONFIG_DEFAULT_SOCKET);
	/* launch_socket and event_log_dir stay "" until config_derive: next
	 * to socket and under state_dir unless set. */
	c->launch_pcr = CONFIG_DEFAULT_LAUNCH_PCR;
	if (tcti == NULL || tcti[0] == '\0' || text_copy(c->tcti, sizeof(c->tcti), tcti) < 0) {
		(void)text_copy(c->tcti, sizeof(c->tcti), CONFIG_DEFAULT_TCTI);
	}
	c->mode = CONFIG_MODE_EPOCH;
	c->epoch_seconds = 3600;
	c->max_ttl_seconds = 3600;
	c->default_ttl_seconds = 300;
	c->health_interval_seconds = 5;
	c->max_connections = 64;
	/* SO_PEERCRED reports effective uids. */
	c->self_uid = geteuid();
	*ret = c;
	return 0;
}

void
config_free(struct config *c)
{
	if (c == NULL) {
		return;
	}
	free(c->grants);
	free(c);
}

static int
get_int(const json_t *v, const char *field, int64_t min, int64_t max, int64_t *ret,
    char *err, size_t errsz)
{
	json_int_t i;

	if (!json_is_integer(v)) {
		text_printf(err, errsz, "field '%s' must be an integer in %lld..%lld", field,
		    (long long)min, (long long)max);
		return -EINVAL;
	}
	i = json_integer_value(v);
	if (i < min || i > max) {
		text_printf(err, errsz, "field '%s' must be an integer in %lld..%lld", field,
		    (long long)min, (long long)max);
		return -ERANGE;
	}
	*ret = (int64_t)i;
	return 0;
}

static int
get_str(const json_t *v, const char *field, char *dst, size_t dstsz, char *err, size_t errsz)
{
	const char *s;

	if (!json_is_string(v)) {
		text_printf(err, errsz, "field '%s' must be a string", field);
		return -EINVAL;
	}
	s = json_string_value(v);
	if (s[0] == '\0' || strlen(s) != json_string_length(v)) {
		text_printf(err, errsz, "field '%s' must be a non-empty string without NUL", field);
		return -EINVAL;
	}
	if (text_copy(dst, dstsz, s) < 0) {
		text_printf(err, errsz, "field '%s' is longer than %zu bytes", field, dstsz - 1);
		return -ENAMETOOLONG;
	}
	return 0;
}

static int
get_path(const json_t *v, const char *field, char *dst, size_t dstsz, char *err, size_t errsz)
{
	int r = get_str(v, field, dst, dstsz, err, errsz);

	if (r < 0) {
		return r;
	}
	if (dst[0] != '/') {
		text_printf(err, errsz, "field '%s' must be an absolute path", field);
		return -EINVAL;
	}
	return 0;
}

/* A uid given as a decimal number or as a user name. */
static int
resolve_user(const char *s, uid_t *ret)
{
	struct passwd pw, *res = NULL;
	char *buf = NULL;
	uint64_t u;
	int r;

	if (s[0] >= '0' && s[0] <= '9') {
		/* (uid_t)-1 is "no uid" to the kernel: never a caller. */
		r = parse_u64(s, 0, UINT32_MAX - 1, &u);
		if (r < 0) {
			return r;
		}
		*ret = (uid_t)u;
		return 0;
	}
	buf = malloc(NSS_BUF);
	if (buf == NULL) {
		return -ENOMEM;
	}
	r = getpwnam_r(s, &pw, buf, NSS_BUF, &res);
	if (r != 0) {
		r = -r;
		goto out;
	}
	if (res == NULL) {
		r = -ENOENT;
		goto out;
	}
	*ret = pw.pw_uid;
	r = 0;
out:
	free(buf);
	return r;
}

static int
resolve_group(const char *s, gid_t *ret)
{
	struct group gr, *res = NULL;
	char *buf = NULL;
	int r;

	buf = malloc(NSS_BUF);
	if (buf == NULL) {
		return -ENOMEM;
	}
	r = getgrnam_r(s, &gr, buf, NSS_BUF, &res);
	if (r != 0) {
		r = -r;
		goto out;
	}
	if (res == NULL) {
		r = -ENOENT;
		goto out;
	}
	*ret = gr.gr_gid;
	r = 0;
out:
	free(buf);
	return r;
}

static int
parse_role(const char *user, const char *role, struct config_grant *g, char *err, size_t errsz)
{
	unsigned bit = 0;
	size_t i;

	if (strcmp(role, "admin") == 0) {
		bit = CONFIG_ROLE_ADMIN;
	} else if (strcmp(role, "mint") == 0) {
		bit = CONFIG_ROLE_MINT;
	} else if (strcmp(role, "launch") == 0) {
		bit = CONFIG_ROLE_LAUNCH;
	} else if (strcmp(role, "verify:*") == 0) {
		bit = CONFIG_GRANT_VERIFY_ANY;
	} else if (strncmp(role, "verify:", 7) == 0) {
		const char *aud = role + 7;

		if (parse_ident(aud, TOKEN_ID_MAX) < 0) {
			text_printf(err, errsz, "field 'roles.%s': '%s' is not a valid audience", user, aud);
			return -EINVAL;
		}
		for (i = 0; i < g->n_auds; i++) {
			if (strcmp(g->auds[i], aud) == 0) {
				text_printf(err, errsz, "field 'roles.%s': role '%s' listed twice", user, role);
				return -EINVAL;
			}
		}
		if (g->n_auds >= CONFIG_MAX_AUDS) {
			text_printf(err, errsz, "field 'roles.%s': more than %d audiences", user,
			    CONFIG_MAX_AUDS);
			return -E2BIG;
		}
		memcpy(g->auds[g->n_auds], aud, strlen(aud) + 1);
		g->n_auds++;
		return 0;
	} else {
		text_printf(err, errsz, "field 'roles.%s': unknown role '%s' (admin, mint, "
		    "launch, verify:<aud>, verify:*)", user, role);
		return -EINVAL;
	}
	if (g->roles & bit) {
		text_printf(err, errsz, "field 'roles.%s': role '%s' listed twice", user, role);
		return -EINVAL;
	}
	g->roles |= bit;
	return 0;
}

static int
parse_roles(const json_t *v, struct config *c, char *err, size_t errsz)
{
	struct config_grant *grants = NULL;
	const char *user;
	const json_t *list;
	size_t n = 0, i;
	int r;

	if (!json_is_object(v)) {
		text_printf(err, errsz, "field 'roles' must be an object mapping users to role arrays");
		return -EINVAL;
	}
	if (json_object_size(v) > CONFIG_MAX_GRANTS) {
		text_printf(err, errsz, "field 'roles' lists more than %d users", CONFIG_MAX_GRANTS);
		return -E2BIG;
	}
	if (json_object_size(v) > 0) {
		grants = calloc(json_object_size(v), sizeof(*grants));
		if (grants == NULL) {
			return -ENOMEM;
		}
	}
	json_object_foreach((json_t *)v, user, list) {
		struct config_grant *g = &grants[n];
		const json_t *role;
		size_t j;

		r = resolve_user(user, &g->uid);
		if (r < 0) {
			text_printf(err, errsz, "field 'roles': '%s' is neither a uid nor a known user",
			    user);
			r = -EINVAL;
			goto out;
		}
		for (i = 0; i < n; i++) {
			if (grants[i].uid == g->uid) {
				text_printf(err, errsz, "field 'roles': uid %u is listed twice ('%s')",
				    (unsigned)g->uid, user);
				r = -EINVAL;
				goto out;
			}
		}
		if (!json_is_array(list)) {
			text_printf(err, errsz, "field 'roles.%s' must be an array of strings", user);
			r = -EINVAL;
			goto out;
		}
		json_array_foreach(list, j, role) {
			if (!json_is_string(role) ||
			    strlen(json_string_value(role)) != json_string_length(role)) {
				text_printf(err, errsz, "field 'roles.%s' must be an array of strings", user);
				r = -EINVAL;
				goto out;
			}
			r = parse_role(user, json_string_value(role), g, err, errsz);
			if (r < 0) {
				goto out;
			}
		}
		n++;
	}
	free(c->grants);
	c->grants = grants;
	grants = NULL;
	c->n_grants = n;
	c->has_roles = true;
	r = 0;
out:
	free(grants);
	return r;
}

static const char *const config_keys[] = {
	"state_dir", "socket", "launch_socket", "launch_pcr", "event_log_dir", "tcti", "mode",
	"epoch_seconds", "max_ttl_seconds", "default_ttl_seconds", "health_interval_seconds",
	"max_connections", "socket_group", "roles", "approvals", NULL,
};

static const char *const approvals_keys[] = { "rp_id", "origins", "quorum", NULL };

/* A relying party id is a host name: labels of [A-Za-z0-9-] and dots. */
static int
check_rp_id(const char *s)
{
	size_t i, n = strlen(s);

	if (n == 0 || n > CONFIG_RP_ID_MAX || s[0] == '.' || s[n - 1] == '.') {
		return -EINVAL;
	}
	for (i = 0; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.') ||
		    (ch == '.' && s[i + 1] == '.')) {
			return -EINVAL;
		}
	}
	return 0;
}

/* "https://host[:port]": what a browser puts in clientDataJSON's origin,
 * so no path, no user info, nothing to normalise. */
static int
check_origin(const char *s)
{
	size_t i, n = strlen(s);

	if (n <= 8 || n > CONFIG_ORIGIN_MAX || strncmp(s, "https://", 8) != 0) {
		return -EINVAL;
	}
	for (i = 8; i < n; i++) {
		char ch = s[i];

		if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '.' || ch == ':' ||
		    ch == '[' || ch == ']')) {
			return -EINVAL;
		}
	}
	return 0;
}

static int
parse_approvals(const json_t *v, struct config *c, char *err, size_t errsz)
{
	struct config_approvals *ap = NULL;
	const char *bad = NULL;
	const json_t *origins, *o, *q;
	size_t i, k;
	int r;

	if (!json_is_object(v)) {
		text_printf(err, errsz, "field 'approvals' must be an object");
		return -EINVAL;
	}
	if (cjson_only_keys(v, approvals_keys, &bad) < 0) {
		text_printf(err, errsz, "unknown field 'approvals.%s'", bad != NULL ? bad : "?");
		return -EINVAL;
	}
	/* Built aside: a half-parsed section never stays in c. */
	ap = calloc(1, sizeof(*ap));
	if (ap == NULL) {
		return -ENOMEM;
	}
	ap->quorum_default = 1;
	if (json_object_get(v, "rp_id") == NULL) {
		text_printf(err, errsz, "field 'approvals.rp_id' is required");
		r = -EINVAL;
		goto out;
	}
	r = get_str(json_object_get(v, "rp_id"), "approvals.rp_id", ap->rp_id, sizeof(ap->rp_id),
	    err, errsz);
	if (r < 0) {
		goto out;
	}
	if (check_rp_id(ap->rp_id) < 0) {
		text_printf(err, errsz, "field 'approvals.rp_id' must be a host name");
		r = -EINVAL;
		goto out;
	}
	origins = json_object_get(v, "origins");
	if (!json_is_array(origins) || json_array_size(origins) == 0 ||
	    json_array_size(origins) > CONFIG_APPROVAL_ORIGINS_MAX) {
		text_printf(err, errsz, "field 'approvals.origins' must be an array of 1..%d origins",
		    CONFIG_APPROVAL_ORIGINS_MAX);
		r = -EINVAL;
		goto out;
	}
	json_array_foreach(origins, i, o) {
		char field[48];

		(void)snprintf(field, sizeof(field), "approvals.origins[%zu]", i);
		r = get_str(o, field, ap->origins[i], sizeof(ap->origins[i]), err, errsz);
		if (r < 0) {
			goto out;
		}
		if (check_origin(ap->origins[i]) < 0) {
			text_printf(err, errsz, "field '%s' must be \"https://host[:port]\" "
			    "(at most %d characters)", field, CONFIG_ORIGIN_MAX);
			r = -EINVAL;
			goto out;
		}
		for (k = 0; k < i; k++) {
			if (strcmp(ap->origins[k], ap->origins[i]) == 0) {
				text_printf(err, errsz, "field '%s' repeats an origin", field);
				r = -EINVAL;
				goto out;
			}
		}
		ap->n_origins++;
	}
	if ((q = json_object_get(v, "quorum")) != NULL &&
	    (r = quorum_parse(q, "approvals.quorum", ap->ops, CONFIG_QUORUM_OPS_MAX,
	    &ap->quorum_default, &ap->n_ops, err, errsz)) < 0) {
		goto out;
	}
	ap->configured = true;
	c->approvals = *ap;
	r = 0;
out:
	free(ap);
	return r;
}

static int
apply(const json_t *root, struct config *c, char *err, size_t errsz)
{
	const char *bad = NULL;
	const json_t *v;
	int64_t i;
	int r;

	if (!json_is_object(root)) {
		text_printf(err, errsz, "the configuration must be a JSON object");
		return -EINVAL;
	}
	if (cjson_only_keys(root, config_keys, &bad) < 0) {
		/* attestd mints with its own clock and /v1/verify checks only
		 * MACs and key windows: clock skew is each verifier's setting. */
		if (bad != NULL && strcmp(bad, "clock_skew_seconds") == 0) {
			text_printf(err, errsz, "field 'clock_skew_seconds' is not an attestd "
			    "setting (clock skew is allowed by each verifier); remove it");
		} else {
			text_printf(err, errsz, "unknown field '%s'", bad != NULL ? bad : "?");
		}
		return -EINVAL;
	}
	if ((v = json_object_get(root, "state_dir")) != NULL &&
	    (r = get_path(v, "state_dir", c->state_dir, sizeof(c->state_dir), err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "socket")) != NULL &&
	    (r = get_path(v, "socket", c->socket, sizeof(c->socket), err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "launch_socket")) != NULL &&
	    (r = get_path(v, "launch_socket", c->launch_socket, sizeof(c->launch_socket), err,
	    errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "event_log_dir")) != NULL &&
	    (r = get_path(v, "event_log_dir", c->event_log_dir, sizeof(c->event_log_dir), err,
	    errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "launch_pcr")) != NULL) {
		r = get_int(v, "launch_pcr", 0, 23, &i, err, errsz);
		if (r < 0) {
			return r;
		}
		c->launch_pcr = (unsigned)i;
	}
	if ((v = json_object_get(root, "tcti")) != NULL &&
	    (r = get_str(v, "tcti", c->tcti, sizeof(c->tcti), err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "mode")) != NULL) {
		const char *m = json_is_string(v) ? json_string_value(v) : NULL;

		if (m != NULL && strcmp(m, "epoch") == 0) {
			c->mode = CONFIG_MODE_EPOCH;
		} else if (m != NULL && strcmp(m, "strict") == 0) {
			c->mode = CONFIG_MODE_STRICT;
		} else {
			text_printf(err, errsz, "field 'mode' must be \"epoch\" or \"strict\"");
			return -EINVAL;
		}
	}
	if ((v = json_object_get(root, "epoch_seconds")) != NULL) {
		r = get_int(v, "epoch_seconds", CONFIG_EPOCH_MIN, CONFIG_EPOCH_MAX,
		    &c->epoch_seconds, err, errsz);
		if (r < 0) {
			return r;
		}
	}
	if ((v = json_object_get(root, "max_ttl_seconds")) != NULL) {
		r = get_int(v, "max_ttl_seconds", 1, 86400, &c->max_ttl_seconds, err, errsz);
		if (r < 0) {
			return r;
		}
	}
	if ((v = json_object_get(root, "default_ttl_seconds")) != NULL) {
		r = get_int(v, "default_ttl_seconds", 1, 86400, &c->default_ttl_seconds, err, errsz);
		if (r < 0) {
			return r;
		}
	}
	if ((v = json_object_get(root, "health_interval_seconds")) != NULL) {
		r = get_int(v, "health_interval_seconds", 1, 300, &c->health_interval_seconds,
		    err, errsz);
		if (r < 0) {
			return r;
		}
	}
	if ((v = json_object_get(root, "max_connections")) != NULL) {
		r = get_int(v, "max_connections", 1, 1024, &i, err, errsz);
		if (r < 0) {
			return r;
		}
		c->max_connections = (unsigned)i;
	}
	if ((v = json_object_get(root, "socket_group")) != NULL) {
		char name[256];

		r = get_str(v, "socket_group", name, sizeof(name), err, errsz);
		if (r < 0) {
			return r;
		}
		if (resolve_group(name, &c->socket_gid) < 0) {
			text_printf(err, errsz, "field 'socket_group': no group named '%s'", name);
			return -EINVAL;
		}
		c->has_socket_group = true;
	}
	if ((v = json_object_get(root, "roles")) != NULL &&
	    (r = parse_roles(v, c, err, errsz)) < 0) {
		return r;
	}
	if ((v = json_object_get(root, "approvals")) != NULL &&
	    (r = parse_approvals(v, c, err, errsz)) < 0) {
		return r;
	}
	return config_check(c, err, errsz);
}

int
config_parse(const char *buf, size_t len, struct config **ret, char *err, size_t errsz)
{
	struct config *c = NULL;
	json_t *root = NULL;
	int r;

	r = cjson_parse(buf, len, CONFIG_MAX_BYTES, &root);
	if (r < 0) {
		if (r == -EFBIG) {
			text_printf(err, errsz, "the configuration is larger than %d bytes",
			    CONFIG_MAX_BYTES);
		} else {
			text_printf(err, errsz, "the configuration is not strict JSON (duplicate "
			    "keys, real numbers, nesting deeper than %d and trailing data are "
			    "refused)", CJSON_MAX_DEPTH);
		}
		goto out;
	}
	r = config_new(&c);
	if (r < 0) {
		goto out;
	}
	r = apply(root, c, err, errsz);
	if (r < 0) {
		goto out;
	}
	*ret = c;
	c = NULL;
out:
	json_decref(root);
	config_free(c);
	return r;
}

int
config_load(const char *path, struct config **ret, char *err, size_t errsz)
{
	char *buf = NULL;
	size_t len = 0;
	int r;

	r = fs_read_file(path, CONFIG_MAX_BYTES, &buf, &len);
	if (r < 0) {
		text_printf(err, errsz, "%s: %s", path, strerror(-r));
		return r;
	}
	r = config_parse(buf, len, ret, err, errsz);
	free(buf);
	return r;
}

int
config_check(const struct config *c, char *err, size_t errsz)
{
	/* Command-line flags bypass get_path. */
	if (c->state_dir[0] != '/') {
		text_printf(err, errsz, "field 'state_dir' must be an absolute path");
		return -EINVAL;
	}
	if (c->socket[0] != '/') {
		text_printf(err, errsz, "field 'socket' must be an absolute path");
		return -EINVAL;
	}
	/* "" is "not set": config_derive fills it. */
	if (c->launch_socket[0] != '\0' && c->launch_socket[0] != '/') {
		text_printf(err, errsz, "field 'launch_socket' must be an absolute path");
		return -EINVAL;
	}
	if (strcmp(c->launch_socket, c->socket) == 0) {
		text_printf(err, errsz, "field 'launch_socket' must differ from 'socket'");
		return -EINVAL;
	}
	if (c->event_log_dir[0] != '\0' && c->event_log_dir[0] != '/') {
		text_printf(err, errsz, "field 'event_log_dir' must be an absolute path");
		return -EINVAL;
	}
	if (c->launch_pcr > 23) {
		text_printf(err, errsz, "field 'launch_pcr' must be an integer in 0..23");
		return -ERANGE;
	}
	if (c->epoch_seconds < CONFIG_EPOCH_MIN || c->epoch_seconds > CONFIG_EPOCH_MAX) {
		text_printf(err, errsz, "field 'epoch_seconds' must be an integer in %d..%d",
		    CONFIG_EPOCH_MIN, CONFIG_EPOCH_MAX);
		return -ERANGE;
	}
	if (c->default_ttl_seconds > c->max_ttl_seconds) {
		text_printf(err, errsz, "field 'default_ttl_seconds' (%lld) must not exceed "
		    "'max_ttl_seconds' (%lld)", (long long)c->default_ttl_seconds,
		    (long long)c->max_ttl_seconds);
		return -ERANGE;
	}
	return 0;
}

int
config_derive(struct config *c, char *err, size_t errsz)
{
	const char *slash;
	int n, r;

	r = config_check(c, err, errsz);
	if (r < 0) {
		return r;
	}
	if (c->launch_socket[0] == '\0') {
		slash = strrchr(c->socket, '/');
		if (slash == NULL) {
			text_printf(err, errsz, "field 'socket' must be an absolute path");
			return -EINVAL;
		}
		n = snprintf(c->launch_socket, sizeof(c->launch_socket), "%.*s/attestd-launch.sock",
		    (int)(slash - c->socket), c->socket);
		if (n < 0 || (size_t)n >= sizeof(c->launch_socket)) {
			c->launch_socket[0] = '\0';
			text_printf(err, errsz, "field 'launch_socket': the default next to 'socket' is "
			    "longer than %d bytes; set it", CONFIG_SOCKET_MAX);
			return -ENAMETOOLONG;
		}
	}
	if (c->event_log_dir[0] == '\0') {
		n = snprintf(c->event_log_dir, sizeof(c->event_log_dir), "%s%sevents", c->state_dir,
		    c->state_dir[strlen(c->state_dir) - 1] == '/' ? "" : "/");
		if (n < 0 || (size_t)n >= sizeof(c->event_log_dir)) {
			c->event_log_dir[0] = '\0';
			text_printf(err, errsz, "field 'event_log_dir': the default under 'state_dir' is "
			    "too long; set it");
			return -ENAMETOOLONG;
		}
	}
	return config_check(c, err, errsz);
}

const struct config_grant *
config_grant_for(const struct config *c, uid_t uid)
{
	size_t i;

	if (!c->has_roles) {
		return (uid == 0 || uid == c->self_uid) ? &grant_all : NULL;
	}
	for (i = 0; i < c->n_grants; i++) {
		if (c->grants[i].uid == uid) {
			const struct config_grant *g = &c->grants[i];

			/* An empty role list is no role: 403 everywhere. */
			return (g->roles == 0 && g->n_auds == 0) ? NULL : g;
		}
	}
	return NULL;
}

bool
config_allows(const struct config_grant *g, enum config_role role, const char *aud)
{
	size_t i;

	if (g == NULL) {
		return false;
	}
	switch (role) {
	case CONFIG_ROLE_ADMIN:
	case CONFIG_ROLE_MINT:
	case CONFIG_ROLE_LAUNCH: {
		return (g->roles & (unsigned)role) != 0;
	}
	case CONFIG_ROLE_VERIFY: {
		if (g->roles & CONFIG_GRANT_VERIFY_ANY) {
			return true;
		}
		if (aud == NULL) {
			return false;
		}
		for (i = 0; i < g->n_auds; i++) {
			if (strcmp(g->auds[i], aud) == 0) {
				return true;
			}
		}
		return false;
	}
	default: {
		return false;
	}
	}
}

unsigned
config_quorum(const struct config *c, const char *op)
{
	if (!c->approvals.configured) {
		return 0;
	}
	return quorum_for(c->approvals.ops, c->approvals.n_ops, c->approvals.quorum_default, op);
}
