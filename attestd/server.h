/* server: libmicrohttpd on attestd's unix socket, driven by the caller's
 * event loop (no threads of its own). It reads each connection's peer uid
 * once with SO_PEERCRED, caps request bodies at API_BODY_MAX and hands
 * every complete request to api_handle. */
#ifndef WARRANT_ATTESTD_SERVER_H
#define WARRANT_ATTESTD_SERVER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "api.h"

struct server;

/* Bind a listening AF_UNIX socket at path, mode 0660 (group gid if
 * has_gid). A stale socket is replaced; -EEXIST if path exists and is not
 * a socket, -EADDRINUSE if something answers on it. */
int server_listen(const char *path, bool has_gid, gid_t gid, int *ret_fd);

/* Takes ownership of listen_fd, also on failure. */
int server_new(int listen_fd, unsigned max_connections, struct api *api,
    struct server **ret);
void server_free(struct server *s);

/* The descriptor to poll for input (libmicrohttpd's epoll set). */
int server_fd(const struct server *s);
/* Milliseconds until the server must run even without input; -1: none. */
int64_t server_timeout_ms(struct server *s);
/* Process whatever is ready, without blocking. */
int server_run(struct server *s);

#endif
