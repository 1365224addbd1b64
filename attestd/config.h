/* config: attestd's configuration file (JSON) and who holds which role.
 *
 * Parsing is strict: duplicate keys, unknown keys, wrong types and values
 * out of range are each an error whose message names the field. User
 * names in "roles" and "socket_group" are resolved when the file is
 * loaded, so a typo stops attestd at start rather than locking a caller
 * out later. */
#ifndef WARRANT_ATTESTD_CONFIG_H
#define WARRANT_ATTESTD_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "quorum.h"
#include "token.h"

#define CONFIG_DEFAULT_PATH   "/etc/warrant/attestd.json"
#define CONFIG_DEFAULT_STATE  "/var/lib/warrant"
#define CONFIG_DEFAULT_SOCKET "/run/warrant/attestd.sock"
#define CONFIG_DEFAULT_TCTI   "device:/dev/tpmrm0"
#define CONFIG_DEFAULT_LAUNCH_PCR    15
#define CONFIG_MAX_BYTES      (256 * 1024)
#define CONFIG_MAX_GRANTS     1024   /* uids in "roles" */
#define CONFIG_MAX_AUDS       64     /* verify:<aud> roles per uid */
#define CONFIG_PATH_MAX       4096
#define CONFIG_SOCKET_MAX     107    /* sizeof(sun_path) - 1 */
#define CONFIG_TCTI_MAX       512

#define CONFIG_APPROVAL_ORIGINS_MAX 8
#define CONFIG_ORIGIN_MAX     255
#define CONFIG_RP_ID_MAX      253
#define CONFIG_QUORUM_MAX     16     /* TOKEN_MAX_APPROVERS */
#define CONFIG_QUORUM_OPS_MAX 256

#define CONFIG_EPOCH_MIN      60
#define CONFIG_EPOCH_MAX      86400

enum config_mode {
	CONFIG_MODE_EPOCH = 0,
	CONFIG_MODE_STRICT = 1,
};

enum config_role {
	CONFIG_ROLE_ADMIN = 1u << 0,
	CONFIG_ROLE_MINT = 1u << 1,
	CONFIG_ROLE_VERIFY = 1u << 2,   /* verify:<aud>; needs the audience */
	CONFIG_ROLE_LAUNCH = 1u << 4,   /* the launch socket: measure a VM */
};

/* The roles of one uid. VERIFY_ANY stands for verify:*. */
#define CONFIG_GRANT_VERIFY_ANY (1u << 3)

struct config_grant {
	uid_t uid;
	unsigned roles;                 /* CONFIG_ROLE_ADMIN | _MINT | _LAUNCH | CONFIG_GRANT_VERIFY_ANY */
	size_t n_auds;
	char auds[CONFIG_MAX_AUDS][TOKEN_ID_MAX + 1];
};

/* The optional "approvals" section (docs/approvals.md): the WebAuthn
 * relying party attestd checks assertions against and its own quorum of
 * distinct people per operation. */
struct config_approvals {
	bool configured;
	char rp_id[CONFIG_RP_ID_MAX + 1];
	size_t n_origins;
	char origins[CONFIG_APPROVAL_ORIGINS_MAX][CONFIG_ORIGIN_MAX + 1];
	unsigned quorum_default;        /* 1..CONFIG_QUORUM_MAX, default 1 */
	size_t n_ops;
	struct quorum_op ops[CONFIG_QUORUM_OPS_MAX];
};

struct config {
	char state_dir[CONFIG_PATH_MAX];
	char socket[CONFIG_SOCKET_MAX + 1];
	char launch_socket[CONFIG_SOCKET_MAX + 1];   /* "": next to socket (config_derive) */
	char event_log_dir[CONFIG_PATH_MAX];         /* "": state_dir/events (config_derive) */
	unsigned launch_pcr;            /* 0..23; never one of the root key's policy PCRs */
	char tcti[CONFIG_TCTI_MAX + 1];
	enum config_mode mode;
	int64_t epoch_seconds;
	int64_t max_ttl_seconds;
	int64_t default_ttl_seconds;
	int64_t health_interval_seconds;
	unsigned max_connections;
	bool has_socket_group;
	gid_t socket_gid;
	uid_t self_uid;                 /* attestd's own uid: a default role holder */
	bool has_roles;                 /* false: uid 0 and self_uid hold every role */
	size_t n_grants;
	struct config_grant *grants;
	struct config_approvals approvals;
};

/* Defaults: tcti from $WARRANT_TCTI or CONFIG_DEFAULT_TCTI. */
int config_new(struct config **ret);
void config_free(struct config *c);

/* Parse a configuration file's text over the defaults. On error returns
 * a negative errno and, if err is given, a message naming the field. */
int config_parse(const char *buf, size_t len, struct config **ret, char *err, size_t errsz);

/* Read and parse path. A missing file is -ENOENT (the caller decides
 * whether that matters: the default path is optional). */
int config_load(const char *path, struct config **ret, char *err, size_t errsz);

/* Cross-field checks, for after command-line overrides. */
int config_check(const struct config *c, char *err, size_t errsz);

/* After the overrides: fill launch_socket (attestd-launch.sock in socket's
 * folder) and event_log_dir (state_dir/events) if still unset, then
 * config_check. The defaults are /run/warrant/attestd-launch.sock and
 * /var/lib/warrant/events. */
int config_derive(struct config *c, char *err, size_t errsz);

/* The roles uid holds; NULL if none. */
const struct config_grant *config_grant_for(const struct config *c, uid_t uid);

/* Whether g grants role (for CONFIG_ROLE_VERIFY: for audience aud). A NULL
 * grant grants nothing. */
bool config_allows(const struct config_grant *g, enum config_role role, const char *aud);

/* attestd's quorum for op: its own entry, else the default. 0 when no
 * approvals section is configured. */
unsigned config_quorum(const struct config *c, const char *op);

#endif
