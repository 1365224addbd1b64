/* Targets config_parse (attestd/config.c): attestd's configuration file.
 * Any input yields a configuration that passes config_check, or an error
 * with a message. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../attestd/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct config *c = NULL;
	char err[512];
	int r;

	err[0] = '\0';
	r = config_parse((const char *)data, size, &c, err, sizeof(err));
	if (r == 0) {
		if (c == NULL || config_check(c, err, sizeof(err)) != 0 ||
		    c->default_ttl_seconds > c->max_ttl_seconds)
			__builtin_trap();
		(void)config_grant_for(c, 0);
		config_free(c);
	} else if (c != NULL || err[0] == '\0') {
		__builtin_trap();
	}
	return 0;
}
