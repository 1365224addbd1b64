/* warrant-agent: the guest's command line to the tool proxy
 * (docs/agent-protocol.md).
 *
 *   warrant-agent [--timeout S] call TOOL [--reason TEXT] [key=value | key:=JSON] ...
 *   warrant-agent [--timeout S] drop ENVELOPE_JSON
 *   warrant-agent [--timeout S] envelope
 *
 * Exit status: 0 allowed and succeeded (the result as JSON on standard
 * output), 1 refused or failed (error and detail on standard error), 2 the
 * channel failed or the command line is wrong. */
#include <errno.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent_client.h"
#include "frame.h"

#define EXIT_REFUSED 1
#define EXIT_CHANNEL 2
#define DEFAULT_TIMEOUT_S 600
#define MAX_TIMEOUT_S 86400
#define KEY_MAX 128
#define ARGS_MAX 64

enum cmd {
	CMD_NONE = 0,
	CMD_CALL,
	CMD_DROP,
	CMD_ENVELOPE,
};

struct opts {
	enum cmd cmd;
	int timeout_s;
	const char *reason;
	const char *tool;
	const char *envelope;
	const char *args[ARGS_MAX];
	size_t nargs;
};

static void
usage(FILE *f)
{
	fprintf(f,
	    "usage: warrant-agent [--timeout S] call TOOL [--reason TEXT] [key=value | key:=JSON] ...\n"
	    "       warrant-agent [--timeout S] drop ENVELOPE_JSON\n"
	    "       warrant-agent [--timeout S] envelope\n"
	    "Sends one request to the tool proxy over the agent channel and prints the\n"
	    "result as JSON. key=value gives a string argument, key:=JSON any JSON value\n"
	    "(argv:='[\"ls\",\"-l\"]'). --timeout bounds the wait for the reply (default %d s;\n"
	    "a gated call waits for a human). Exit status: 0 succeeded, 1 refused or\n"
	    "failed, 2 channel failure or usage error.\n", DEFAULT_TIMEOUT_S);
}

/* Text from the host goes to a terminal: no control characters, C0, DEL
 * or C1 (also in their UTF-8 form). */
static void
print_clean(FILE *f, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;

	for (; *p != '\0'; p++) {
		if (*p < 0x20 || *p == 0x7f) {
			fputc('?', f);
		} else if (*p == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f) {
			fputc('?', f);
			p++;
		} else {
			fputc(*p, f);
		}
	}
}

static void
say(const char *what, const char *text)
{
	fputs("warrant-agent: ", stderr);
	fputs(what, stderr);
	if (text != NULL) {
		print_clean(stderr, text);
	}
	fputc('\n', stderr);
}

/* Strict decimal: digits only, 1..MAX_TIMEOUT_S. */
static int
parse_timeout(const char *s, int *ret)
{
	long v = 0;
	size_t i;

	if (s[0] == '\0') {
		return -EINVAL;
	}
	for (i = 0; s[i] != '\0'; i++) {
		if (s[i] < '0' || s[i] > '9') {
			return -EINVAL;
		}
		v = v * 10 + (s[i] - '0');
		if (v > MAX_TIMEOUT_S) {
			return -ERANGE;
		}
	}
	if (v < 1) {
		return -ERANGE;
	}
	*ret = (int)v;
	return 0;
}

static int
parse_cmdline(int argc, char **argv, struct opts *o)
{
	int i;
	bool opts_done = false;

	for (i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (!opts_done && strcmp(a, "--") == 0) {
			opts_done = true;
			continue;
		}
		if (!opts_done && (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)) {
			usage(stdout);
			exit(0);
		}
		if (!opts_done && strcmp(a, "--timeout") == 0) {
			if (i + 1 >= argc || parse_timeout(argv[i + 1], &o->timeout_s) != 0) {
				say("--timeout needs whole seconds, 1 to 86400", NULL);
				return -EINVAL;
			}
			i++;
			continue;
		}
		if (!opts_done && strcmp(a, "--reason") == 0) {
			if (i + 1 >= argc) {
				say("--reason needs a text", NULL);
				return -EINVAL;
			}
			if (strlen(argv[i + 1]) > AGENT_REASON_MAX) {
				say("--reason is longer than 1024 bytes", NULL);
				return -EINVAL;
			}
			o->reason = argv[++i];
			continue;
		}
		if (!opts_done && a[0] == '-' && a[1] != '\0') {
			say("unknown option ", a);
			return -EINVAL;
		}
		if (o->cmd == CMD_NONE) {
			if (strcmp(a, "call") == 0) {
				o->cmd = CMD_CALL;
			} else if (strcmp(a, "drop") == 0) {
				o->cmd = CMD_DROP;
			} else if (strcmp(a, "envelope") == 0) {
				o->cmd = CMD_ENVELOPE;
			} else {
				say("unknown command ", a);
				return -EINVAL;
			}
			continue;
		}
		switch (o->cmd) {
		case CMD_CALL:
			if (o->tool == NULL) {
				o->tool = a;
			} else if (o->nargs < ARGS_MAX) {
				o->args[o->nargs++] = a;
			} else {
				say("too many arguments", NULL);
				return -EINVAL;
			}
			break;
		case CMD_DROP:
			if (o->envelope != NULL) {
				say("drop takes one envelope", NULL);
				return -EINVAL;
			}
			o->envelope = a;
			break;
		case CMD_ENVELOPE:
			say("envelope takes no arguments", NULL);
			return -EINVAL;
		case CMD_NONE:
		default:
			return -EINVAL;
		}
	}
	switch (o->cmd) {
	case CMD_CALL:
		if (o->tool == NULL) {
			say("call needs a tool", NULL);
			return -EINVAL;
		}
		if (!agent_tool_name_ok(o->tool)) {
			say("not a tool name: ", o->tool);
			return -EINVAL;
		}
		return 0;
	case CMD_DROP:
		if (o->reason != NULL) {
			say("--reason goes with call only", NULL);
			return -EINVAL;
		}
		if (o->envelope == NULL) {
			say("drop needs an envelope (JSON object)", NULL);
			return -EINVAL;
		}
		return 0;
	case CMD_ENVELOPE:
		if (o->reason != NULL) {
			say("--reason goes with call only", NULL);
			return -EINVAL;
		}
		return 0;
	case CMD_NONE:
	default:
		usage(stderr);
		return -EINVAL;
	}
}

/* Strict JSON from the command line, at the depth it will have in the
 * request (the request object is depth 1). */
static int
parse_json_arg(const char *s, int depth, json_t **ret)
{
	json_error_t jerr;
	json_t *j;

	j = json_loads(s, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &jerr);
	if (j == NULL) {
		fputs("warrant-agent: not valid JSON: ", stderr);
		print_clean(stderr, jerr.text);
		fputc('\n', stderr);
		return -EINVAL;
	}
	if (agent_json_check(j, depth) != 0) {
		say("JSON with a real number or nested deeper than 16 levels: ", s);
		json_decref(j);
		return -EINVAL;
	}
	*ret = j;
	return 0;
}

/* key=value (a string) or key:=JSON into args. */
static int
build_args(const struct opts *o, json_t **ret)
{
	json_t *args = NULL, *v = NULL;
	char key[KEY_MAX + 1];
	size_t i;
	int r;

	args = json_object();
	if (args == NULL) {
		r = -ENOMEM;
		goto out;
	}
	for (i = 0; i < o->nargs; i++) {
		const char *a = o->args[i], *eq = strchr(a, '=');
		size_t klen;
		bool is_json;

		if (eq == NULL || eq == a) {
			say("arguments are key=value or key:=JSON, not ", a);
			r = -EINVAL;
			goto out;
		}
		klen = (size_t)(eq - a);
		is_json = eq[-1] == ':';
		if (is_json) {
			klen--;
		}
		if (klen == 0 || klen > KEY_MAX) {
			say("argument name empty or longer than 128 bytes: ", a);
			r = -EINVAL;
			goto out;
		}
		memcpy(key, a, klen);
		key[klen] = '\0';
		if (json_object_get(args, key) != NULL) {
			say("argument given twice: ", key);
			r = -EINVAL;
			goto out;
		}
		if (is_json) {
			r = parse_json_arg(eq + 1, 3, &v);
			if (r != 0) {
				goto out;
			}
		} else {
			v = json_string(eq + 1);
			if (v == NULL) {
				say("argument is not UTF-8: ", key);
				r = -EINVAL;
				goto out;
			}
		}
		/* json_object_set_new refuses a key that is not UTF-8. */
		if (json_object_set_new(args, key, v) != 0) {
			v = NULL;
			say("argument name is not UTF-8", NULL);
			r = -EINVAL;
			goto out;
		}
		v = NULL;
	}
	*ret = args;
	args = NULL;
	r = 0;
out:
	json_decref(v);
	json_decref(args);
	return r;
}

static void
on_pending(void *arg, const char *request_id)
{
	(void)arg;
	say("waiting for approval, request ", request_id);
}

static const char *
channel_error(int r)
{
	switch (r) {
	case -ENOENT:
		return "no channel: no virtio-serial port named " AGENT_PORT_NAME " and no vsock to the host";
	case -EBUSY:
		return "the channel stayed in use by another process until the timeout";
	case -ENOTCONN:
		return "the host end of the channel is not connected";
	case -ETIMEDOUT:
		return "no reply before the timeout";
	case -EPIPE:
		return "the channel closed";
	case -EBADMSG:
		return "malformed reply from the host";
	case -EMSGSIZE:
		return "the request is larger than a frame (65536 bytes)";
	case -EINVAL:
		return "the request is not valid";
	default:
		return strerror(-r);
	}
}

int
main(int argc, char **argv)
{
	struct opts o = { .cmd = CMD_NONE, .timeout_s = DEFAULT_TIMEOUT_S };
	struct agent_reply rep = { 0 };
	struct agent_client *c = NULL;
	json_t *j = NULL;
	char *out = NULL;
	int r, rc = EXIT_CHANNEL, timeout_ms;

	if (parse_cmdline(argc, argv, &o) != 0) {
		goto out;
	}
	switch (o.cmd) {
	case CMD_CALL:
		r = build_args(&o, &j);
		if (r == 0 && o.reason != NULL) {
			json_t *rs = json_string(o.reason);

			if (rs == NULL) {
				say("--reason is not UTF-8", NULL);
				r = -EINVAL;
			}
			json_decref(rs);
		}
		break;
	case CMD_DROP:
		r = parse_json_arg(o.envelope, 2, &j);
		if (r == 0 && !json_is_object(j)) {
			say("the envelope must be a JSON object", NULL);
			r = -EINVAL;
		}
		break;
	case CMD_ENVELOPE:
		r = 0;
		break;
	case CMD_NONE:
	default:
		r = -EINVAL;
		break;
	}
	if (r != 0) {
		goto out;
	}

	timeout_ms = o.timeout_s * 1000;
	r = agent_open(timeout_ms, &c);
	if (r != 0) {
		say(channel_error(r), NULL);
		goto out;
	}
	switch (o.cmd) {
	case CMD_CALL:
		r = agent_call(c, o.tool, j, o.reason, timeout_ms, on_pending, NULL, &rep);
		break;
	case CMD_DROP:
		r = agent_drop(c, j, timeout_ms, &rep);
		break;
	case CMD_ENVELOPE:
		r = agent_envelope(c, timeout_ms, &rep);
		break;
	case CMD_NONE:
	default:
		r = -EINVAL;
		break;
	}
	if (r != 0) {
		fputs("warrant-agent: ", stderr);
		fputs(channel_error(r), stderr);
		fputs(" (", stderr);
		fputs(agent_channel(c), stderr);
		fputs(")\n", stderr);
		goto out;
	}
	if (!rep.ok) {
		fprintf(stderr, "warrant-agent: %s: ", rep.error);
		print_clean(stderr, rep.detail);
		fputc('\n', stderr);
		rc = EXIT_REFUSED;
		goto out;
	}
	out = json_dumps(rep.result, JSON_COMPACT | JSON_SORT_KEYS);
	if (out == NULL) {
		say("out of memory", NULL);
		goto out;
	}
	if (puts(out) == EOF || fflush(stdout) != 0) {
		say("cannot write the result to standard output", NULL);
		goto out;
	}
	rc = 0;
out:
	free(out);
	agent_reply_clear(&rep);
	agent_close(c);
	json_decref(j);
	return rc;
}
