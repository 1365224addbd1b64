/* assets: the web form's style sheet and scripts, compiled in. Scripts
 * live only here, never inline in a page, so the pages' content security
 * policy can be script-src 'self'. */
#ifndef WARRANT_APPROVER_ASSETS_H
#define WARRANT_APPROVER_ASSETS_H

#include <stddef.h>

struct asset {
	const char *path;           /* "/static/style.css" */
	const char *content_type;
	const char *body;
	size_t len;
};

/* NULL when path is not an asset. */
const struct asset *assets_find(const char *path);

#endif
