/* Unit tests for lib/peer.c: the uid at the other end of a unix socket. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "peer.h"

static void
test_socketpair_is_us(void **state)
{
	int sv[2];
	uid_t uid = (uid_t)-1;

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(peer_uid(sv[0], &uid), 0);
	assert_int_equal(uid, getuid());
	uid = (uid_t)-1;
	assert_int_equal(peer_uid(sv[1], &uid), 0);
	assert_int_equal(uid, getuid());
	(void)close(sv[0]);
	(void)close(sv[1]);
}

static void
test_not_a_socket(void **state)
{
	int p[2];
	uid_t uid = 4242;

	(void)state;
	assert_int_equal(pipe2(p, O_CLOEXEC), 0);
	assert_int_equal(peer_uid(p[0], &uid), -ENOTSOCK);
	assert_int_equal(uid, 4242);
	(void)close(p[0]);
	(void)close(p[1]);
	assert_int_equal(peer_uid(-1, &uid), -EBADF);
	assert_int_equal(uid, 4242);
}

static void
test_null_out(void **state)
{
	int sv[2];

	(void)state;
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
	assert_int_equal(peer_uid(sv[0], NULL), -EINVAL);
	(void)close(sv[0]);
	(void)close(sv[1]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_socketpair_is_us),
		cmocka_unit_test(test_not_a_socket),
		cmocka_unit_test(test_null_out),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
