/* libFuzzer target for eventlog_replay (lib/eventlog.c), with
 * eventlog_parse_line and eventlog_format checked on what it accepts:
 * every accepted line is exactly what eventlog_format writes for its
 * content, and the PCR is the extends of the record digests in order. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "eventlog.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
count_launch(void *ctx, const char *vm_id, const uint8_t launch_digest[32],
    const json_t *config)
{
	unsigned *n = ctx;

	(void)launch_digest;
	if (vm_id == NULL || vm_id[0] == '\0' || !json_is_object(config))
		abort();
	(*n)++;
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *reason = NULL;
	uint8_t pcr[32], want[32];
	uint64_t n = 0, i = 0;
	unsigned launches = 0, configs = 0;
	size_t off = 0;
	int r;

	r = eventlog_replay(buf, size, 15, pcr, &n, count_launch, &launches, &reason);
	if (r != 0) {
		if (reason == NULL)
			abort();
		return 0;
	}
	memset(want, 0, sizeof(want));
	while (off < size) {
		const char *nl = memchr(buf + off, '\n', size - off);
		struct eventlog_event ev;
		char *line = NULL;
		size_t len, flen = 0;
		uint8_t d[32];

		if (nl == NULL)
			abort();   /* replay accepted an unterminated line */
		len = (size_t)(nl - (buf + off));
		if (eventlog_parse_line(buf + off, len, &ev) != 0 || ev.recnum != i ||
		    ev.pcr != 15)
			abort();
		if (eventlog_format(ev.recnum, ev.pcr, ev.content, &line, &flen, d) != 0 ||
		    flen != len || memcmp(line, buf + off, len) != 0 ||
		    memcmp(d, ev.digest, 32) != 0)
			abort();
		if (strcmp(json_string_value(json_object_get(ev.content, "event")), "config") == 0)
			configs++;
		eventlog_extend(want, ev.digest);
		free(line);
		json_decref(ev.content);
		off += len + 1;
		i++;
	}
	if (i != n || memcmp(want, pcr, 32) != 0 || launches != configs)
		abort();
	return 0;
}
