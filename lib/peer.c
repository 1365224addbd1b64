#include "peer.h"

#include <errno.h>
#include <stddef.h>
#include <sys/socket.h>

int
peer_uid(int fd, uid_t *ret_uid)
{
	struct ucred uc;
	socklen_t len = sizeof(uc);

	if (ret_uid == NULL) {
		return -EINVAL;
	}
	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &uc, &len) != 0) {
		return -errno;
	}
	if (len != sizeof(uc)) {
		return -EIO;
	}
	*ret_uid = uc.uid;
	return 0;
}
