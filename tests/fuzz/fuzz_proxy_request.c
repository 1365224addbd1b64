/* Targets proxy_parse_request (vmhost/proxy.c), the proxy's request
 * parser, and tools_prepare (vmhost/tools.c), the argument checks and
 * path resolution a call goes through before the envelope sees it. The
 * input is one frame's body, decoded as the proxy decodes it
 * (frame_reader). Whatever the input: either a request whose every field
 * is within the protocol's ranges, or -EINVAL with a NUL-terminated
 * detail; and a prepared path is absolute, in normal form (normalising it
 * again changes nothing), with no ".." left. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "frame.h"
#include "parse.h"
#include "token.h"
#include "../../vmhost/proxy.h"
#include "../../vmhost/tools.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void
check_prepared(const json_t *args)
{
	const json_t *p = json_object_get(args, "path");
	char again[TOOLS_PATH_MAX + 2];
	const char *s;
	size_t n;

	if (p == NULL) {
		return;
	}
	s = json_string_value(p);
	n = json_string_length(p);
	if (s == NULL || n == 0 || s[0] != '/' || strstr(s, "/../") != NULL ||
	    (n >= 3 && strcmp(s + n - 3, "/..") == 0) || strstr(s, "//") != NULL ||
	    tools_path_normalize(s, n, again, sizeof(again)) != 0 || strcmp(again, s) != 0) {
		__builtin_trap();
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct frame_reader *rd;
	struct proxy_request rq;
	char detail[PROXY_DETAIL_MAX];
	uint8_t hdr[4];
	json_t *j = NULL;
	int r;

	if (size == 0 || size > FRAME_MAX) {
		return 0;
	}
	rd = frame_reader_new(FRAME_MAX);
	if (rd == NULL) {
		return 0;
	}
	hdr[0] = (uint8_t)(size >> 24);
	hdr[1] = (uint8_t)(size >> 16);
	hdr[2] = (uint8_t)(size >> 8);
	hdr[3] = (uint8_t)size;
	if (frame_reader_feed(rd, hdr, sizeof(hdr)) != 0 || frame_reader_feed(rd, data, size) != 0 ||
	    frame_reader_next(rd, &j) != 1) {
		frame_reader_free(rd);
		return 0;
	}
	frame_reader_free(rd);

	detail[0] = '\0';
	r = proxy_parse_request(j, &rq, detail, sizeof(detail));
	if (r == 0) {
		if (rq.id == 0 || rq.id > PROXY_ID_MAX || rq.id != proxy_request_id(j)) {
			__builtin_trap();
		}
		switch (rq.op) {
		case PROXY_OP_CALL: {
			const struct tool *t;
			struct tools_error err;
			json_t *prep = NULL;

			if (rq.tool == NULL || parse_op(rq.tool, TOKEN_OP_MAX) != 0 ||
			    !json_is_object(rq.args) || rq.reason == NULL ||
			    strlen(rq.reason) > PROXY_REASON_MAX) {
				__builtin_trap();
			}
			t = tools_find(rq.tool);
			if (t != NULL) {
				memset(&err, 0, sizeof(err));
				if (tools_prepare(t, rq.args, &prep, &err) == 0) {
					check_prepared(prep);
					json_decref(prep);
				} else if (err.code == NULL ||
				    strlen(err.detail) >= sizeof(err.detail)) {
					__builtin_trap();
				}
			}
			break;
		}
		case PROXY_OP_DROP: {
			if (!json_is_object(rq.envelope)) {
				__builtin_trap();
			}
			break;
		}
		case PROXY_OP_ENVELOPE: {
			break;
		}
		default: {
			__builtin_trap();
		}
		}
	} else if (r != -EINVAL || detail[0] == '\0' || strlen(detail) >= sizeof(detail)) {
		__builtin_trap();
	} else if (proxy_request_id(j) > PROXY_ID_MAX) {
		__builtin_trap();
	}
	json_decref(j);
	return 0;
}
