/* Targets settings_parse (approver/settings.c): the approver's
 * configuration file. Any input yields settings whose every value is in
 * range and whose rp id matches its origin, or an error with a message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../approver/settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct settings *s = NULL;
	char err[512];
	size_t i;
	int r;

	err[0] = '\0';
	r = settings_parse("/var/lib/warrant-approver", (const char *)data, size, &s, err,
	    sizeof(err));
	if (r == 0) {
		if (s == NULL || s->quorum_default < 1 || s->quorum_default > 16 ||
		    s->threads < 1 || s->threads > 64 || s->max_pending < 1 ||
		    s->session_max_seconds < s->session_idle_seconds ||
		    s->n_quorum > SETTINGS_MAX_QUORUM_OPS || s->notify_argc > SETTINGS_MAX_ARGV ||
		    s->notify_argv[s->notify_argc] != NULL ||
		    strncmp(settings_origin(s), "https://", 8) != 0 ||
		    strstr(settings_origin(s), s->rp_id) == NULL || s->api_socket[0] == '\0')
			__builtin_trap();
		for (i = 0; i < s->n_quorum; i++) {
			if (settings_quorum_for(s, s->quorum[i].op) != s->quorum[i].n)
				__builtin_trap();
		}
		settings_free(s);
	} else if (s != NULL || err[0] == '\0') {
		__builtin_trap();
	}
	return 0;
}
