/* tools: the proxy's tool table (docs/agent-protocol.md, "Tools and their
 * arguments"; docs/proxy.md). Each tool is one entry: its name, whether it
 * needs the workspace, a strict check of its arguments that also returns
 * them in normal form (paths resolved to the workspace's view "/a/b", the
 * form the envelope and an approval token are checked against), and the
 * code that runs it. A new tool joins by adding one entry to the table in
 * tools.c; the proxy's core does not change.
 *
 * The fs tools see the manifest's workspace folder as "/". It is opened
 * once as a directory descriptor; every path beneath it is opened with
 * openat2(RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS),
 * so neither "..", nor a symbolic link, nor one swapped in during the call
 * leads outside. exec runs an argv without a shell: fork and execve with a
 * clean environment, in the workspace, stdin /dev/null, its output
 * captured up to a cap, killed with its process group at the timeout.
 *
 * Tools do not log; they return a result or an error for the caller to
 * report. Thread-safe: a struct tools is only read after tools_new. */
#ifndef WARRANT_TOOLS_H
#define WARRANT_TOOLS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define TOOLS_PATH_MAX            4096               /* a guest path, bytes */
#define TOOLS_FILE_MAX_DEFAULT    (1024 * 1024)      /* fs.read / fs.write cap */
#define TOOLS_EXEC_TIMEOUT_MS     10000              /* default */
#define TOOLS_EXEC_TIMEOUT_MAX_MS 3600000
#define TOOLS_OUTPUT_DEFAULT      65536              /* per stream, default */
#define TOOLS_OUTPUT_MAX          (1024 * 1024)      /* per stream, hard cap */
#define TOOLS_ARGV_MAX            64
#define TOOLS_ARG_MAX             4096               /* one argv string */
#define TOOLS_LIST_MAX            4096               /* entries fs.list reads */
/* What a result may take of a reply frame (FRAME_MAX minus the envelope
 * {"id":..,"ok":true,"result":..}). */
#define TOOLS_RESULT_MAX          (64 * 1024 - 128)
#define TOOLS_DETAIL_MAX          256

struct tools_config {
	const char *workspace;      /* absolute folder; NULL or "": none */
	size_t file_max;            /* fs.read/fs.write size cap; 0: default */
	uint32_t exec_timeout_ms;   /* 0: default */
	size_t exec_max_output;     /* per stream; 0: default */
};

/* Why a tool call did not produce a result. code is one of the protocol's
 * error codes: "bad_request" (arguments), "denied" (the workspace's
 * confinement refused the path: it leaves the workspace, passes a symbolic
 * link, or there is no workspace), "too_large", "tool_failed". */
struct tools_error {
	const char *code;
	char detail[TOOLS_DETAIL_MAX];
};

struct tools;

/* Per-call limits the envelope may set (docs/envelope.md); 0: the
 * configured default. They can only lower the configured values. */
struct tools_limits {
	uint32_t timeout_ms;
	size_t max_output;
};

struct tool {
	const char *name;
	bool needs_workspace;
	/* Check args strictly (every key known, every type right, every size
	 * bounded) and return a new object in normal form. */
	int (*prepare)(const json_t *args, json_t **ret, struct tools_error *err);
	/* Run the call on prepared args; a new result object on success. */
	int (*run)(const struct tools *t, const json_t *args, const struct tools_limits *lim,
	    json_t **ret, struct tools_error *err);
};

/* Open the workspace (if any) as a directory descriptor. -ENOTDIR, -ELOOP
 * (a symbolic link), or open's error. */
int tools_new(const struct tools_config *c, struct tools **ret);
void tools_free(struct tools *t);
bool tools_has_workspace(const struct tools *t);

/* The entry for name, or NULL. */
const struct tool *tools_find(const char *name);
size_t tools_count(void);
const struct tool *tools_at(size_t i);

/* prepare and run through the table, with the workspace check: what the
 * proxy calls. */
int tools_prepare(const struct tool *tool, const json_t *args, json_t **ret,
    struct tools_error *err);
int tools_run(const struct tools *t, const struct tool *tool, const json_t *args,
    const struct tools_limits *lim, json_t **ret, struct tools_error *err);

/* Resolve a guest path lexically to its normal form: absolute, no empty,
 * "." or ".." components, at most TOOLS_PATH_MAX bytes. -EINVAL for a
 * relative path, a NUL or an over-long name; -EXDEV when ".." would climb
 * above "/". Exported for the tests. */
int tools_path_normalize(const char *in, size_t len, char *out, size_t outlen);

/* Valid UTF-8 of n bytes, with invalid sequences and NUL bytes replaced by
 * U+FFFD, cut (at a character boundary) where its JSON-escaped form would
 * pass budget bytes. *ret_cut: something was left out. */
int tools_utf8_sanitize(const uint8_t *in, size_t n, size_t budget, char **ret,
    size_t *ret_len, bool *ret_cut);

#endif
