/* peer: who is at the other end of a unix socket. */
#ifndef WARRANT_PEER_H
#define WARRANT_PEER_H

#include <sys/types.h>

/* The uid of the process that connected fd (SO_PEERCRED, taken by the
 * kernel at connect time, so the peer cannot lie about it). -ENOTSOCK or
 * another negative errno when fd is not a connected unix socket; *ret_uid
 * is not written on failure. */
int peer_uid(int fd, uid_t *ret_uid);

#endif
