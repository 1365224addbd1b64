/* Unit tests for lib/frame.c: the guest channel's framing
 * (docs/agent-protocol.md). Adversarial input for both readers: short
 * reads, interrupted reads, length 0, lengths over max, garbage, duplicate
 * keys, trailing bytes inside a frame, many frames in one feed, one frame
 * byte by byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "frame.h"

/* A raw frame: header for len, then body. Returns the total size. */
static size_t
raw_frame(uint8_t *out, size_t cap, uint32_t len, const char *body, size_t blen)
{
	assert_true(4 + blen <= cap);
	out[0] = (uint8_t)(len >> 24);
	out[1] = (uint8_t)(len >> 16);
	out[2] = (uint8_t)(len >> 8);
	out[3] = (uint8_t)len;
	memcpy(out + 4, body, blen);
	return 4 + blen;
}

static size_t
str_frame(uint8_t *out, size_t cap, const char *body)
{
	return raw_frame(out, cap, (uint32_t)strlen(body), body, strlen(body));
}

static void
write_all(int fd, const void *buf, size_t n)
{
	const uint8_t *p = buf;

	while (n > 0) {
		ssize_t k = write(fd, p, n);

		assert_true(k > 0);
		p += k;
		n -= (size_t)k;
	}
}

static void
make_pipe(int fds[2])
{
	assert_int_equal(pipe2(fds, O_CLOEXEC), 0);
}

/* Feed a byte string through a pipe into frame_read, closing the write
 * end so the reader sees end of stream after it. */
static int
read_from_bytes(const uint8_t *buf, size_t n, size_t max, json_t **ret)
{
	int fds[2], r;

	make_pipe(fds);
	write_all(fds[1], buf, n);
	close(fds[1]);
	r = frame_read(fds[0], max, ret);
	close(fds[0]);
	return r;
}

static void
expect_int(json_t *j, const char *key, json_int_t v)
{
	assert_non_null(j);
	assert_true(json_is_object(j));
	assert_int_equal(json_integer_value(json_object_get(j, key)), v);
}

static void
test_write_is_canonical(void **state)
{
	json_t *j = json_pack("{s:i, s:s, s:{s:b, s:n}}", "id", 7, "op", "call",
	    "args", "z", 1, "a");
	static const char want[] = "{\"args\":{\"a\":null,\"z\":true},\"id\":7,\"op\":\"call\"}";
	uint8_t buf[256];
	int fds[2];
	ssize_t n;

	(void)state;
	make_pipe(fds);
	assert_int_equal(frame_write(fds[1], j), 0);
	close(fds[1]);
	n = read(fds[0], buf, sizeof(buf));
	assert_int_equal(n, 4 + (ssize_t)strlen(want));
	assert_memory_equal(buf, "\0\0\0", 3);
	assert_int_equal(buf[3], strlen(want));
	assert_memory_equal(buf + 4, want, strlen(want));
	close(fds[0]);
	json_decref(j);
}

static void
test_roundtrip_and_clean_eof(void **state)
{
	json_t *a = json_pack("{s:i, s:s}", "id", 1, "text", "h\xc3\xa9llo\n");
	json_t *b = json_pack("{s:i}", "id", 2);
	json_t *got = NULL;
	int fds[2];

	(void)state;
	make_pipe(fds);
	assert_int_equal(frame_write(fds[1], a), 0);
	assert_int_equal(frame_write(fds[1], b), 0);
	close(fds[1]);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), 0);
	assert_true(json_equal(got, a));
	json_decref(got);
	got = NULL;
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), 0);
	assert_true(json_equal(got, b));
	json_decref(got);
	got = NULL;
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), -EPIPE);
	assert_null(got);
	close(fds[0]);
	json_decref(a);
	json_decref(b);
}

static void
test_write_rejects(void **state)
{
	json_t *arr = json_pack("[i]", 1);
	json_t *real = json_pack("{s:f}", "x", 1.5);
	json_t *deep = json_object(), *cur = deep, *big;
	char *s;
	int fds[2], i;
	uint8_t b;

	(void)state;
	make_pipe(fds);
	assert_int_equal(frame_write(fds[1], NULL), -EINVAL);
	assert_int_equal(frame_write(fds[1], arr), -EINVAL);
	assert_int_equal(frame_write(fds[1], real), -EINVAL);
	/* 17 nested objects: one more than the protocol allows. */
	for (i = 0; i < 16; i++) {
		json_t *n = json_object();

		json_object_set_new(cur, "a", n);
		cur = n;
	}
	assert_int_equal(frame_write(fds[1], deep), -EINVAL);
	/* {"s":"xxx..."} of exactly FRAME_MAX + 1 bytes. */
	s = malloc(FRAME_MAX + 1);
	assert_non_null(s);
	memset(s, 'x', FRAME_MAX + 1 - 8);
	s[FRAME_MAX + 1 - 8] = '\0';
	big = json_pack("{s:s}", "s", s);
	assert_int_equal(frame_write(fds[1], big), -EMSGSIZE);
	/* Nothing of the refused frames reached the stream. */
	close(fds[1]);
	assert_int_equal(read(fds[0], &b, 1), 0);
	close(fds[0]);
	free(s);
	json_decref(arr);
	json_decref(real);
	json_decref(deep);
	json_decref(big);
}

static void
test_exact_max(void **state)
{
	json_t *j, *got = NULL;
	char *s;
	int fds[2];

	(void)state;
	/* {"s":"xxx..."} of exactly FRAME_MAX bytes goes through both ways. */
	s = malloc(FRAME_MAX);
	assert_non_null(s);
	memset(s, 'x', FRAME_MAX - 8);
	s[FRAME_MAX - 8] = '\0';
	j = json_pack("{s:s}", "s", s);
	/* Room for two frames, so that one thread can write and then read. */
	make_pipe(fds);
	assert_true(fcntl(fds[1], F_SETPIPE_SZ, 4 * FRAME_MAX) >= 4 * FRAME_MAX);
	assert_int_equal(frame_write(fds[1], j), 0);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), 0);
	assert_true(json_equal(got, j));
	json_decref(got);
	got = NULL;
	/* The same frame against a smaller max. */
	assert_int_equal(frame_write(fds[1], j), 0);
	assert_int_equal(frame_read(fds[0], FRAME_MAX - 1, &got), -EMSGSIZE);
	assert_null(got);
	close(fds[0]);
	close(fds[1]);
	free(s);
	json_decref(j);
}

static void
test_read_length_zero_stays_in_sync(void **state)
{
	uint8_t buf[64];
	size_t n;
	json_t *got = NULL;
	int fds[2];

	(void)state;
	n = raw_frame(buf, sizeof(buf), 0, "", 0);
	n += str_frame(buf + n, sizeof(buf) - n, "{\"id\":3}");
	make_pipe(fds);
	write_all(fds[1], buf, n);
	close(fds[1]);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), -EINVAL);
	assert_null(got);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), 0);
	expect_int(got, "id", 3);
	json_decref(got);
	close(fds[0]);
}

static void
test_read_length_over_max(void **state)
{
	static const uint32_t lens[] = { 101, FRAME_MAX + 1, 0x7fffffff, 0xffffffff };
	uint8_t buf[16];
	json_t *got = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(lens) / sizeof(lens[0]); i++) {
		raw_frame(buf, sizeof(buf), lens[i], "{}", 2);
		assert_int_equal(read_from_bytes(buf, 6, 100, &got), -EMSGSIZE);
		assert_null(got);
	}
	/* max above FRAME_MAX is clamped to it; max 0 is refused. */
	raw_frame(buf, sizeof(buf), FRAME_MAX + 1, "{}", 2);
	assert_int_equal(read_from_bytes(buf, 6, SIZE_MAX, &got), -EMSGSIZE);
	str_frame(buf, sizeof(buf), "{}");
	assert_int_equal(read_from_bytes(buf, 6, 0, &got), -EINVAL);
	assert_null(got);
}

static void
test_read_truncated(void **state)
{
	uint8_t buf[64];
	json_t *got = NULL;
	size_t n;

	(void)state;
	n = str_frame(buf, sizeof(buf), "{\"id\":1}");
	assert_int_equal(read_from_bytes(buf, 0, FRAME_MAX, &got), -EPIPE);
	assert_int_equal(read_from_bytes(buf, 2, FRAME_MAX, &got), -ECONNRESET);
	assert_int_equal(read_from_bytes(buf, 4, FRAME_MAX, &got), -ECONNRESET);
	assert_int_equal(read_from_bytes(buf, n - 1, FRAME_MAX, &got), -ECONNRESET);
	assert_null(got);
	assert_int_equal(read_from_bytes(buf, n, FRAME_MAX, &got), 0);
	json_decref(got);
}

/* Bodies that are not one strict JSON object. */
static const char *const bad_bodies[] = {
	"garbage",
	"\x01\x02\x03\xff",
	"{\"a\":1,\"a\":2}",                    /* duplicate keys */
	"{\"a\":{\"b\":1,\"b\":1}}",            /* duplicate keys, nested */
	"{\"a\":1}x",                           /* trailing bytes inside the frame */
	"{\"a\":1}{\"b\":2}",                   /* two objects in one frame */
	"{\"a\":1} 0",
	"[1,2]",                                /* not an object */
	"\"str\"",
	"42",
	"null",
	"{\"a\":1.0}",                          /* reals */
	"{\"a\":1e3}",
	"{\"a\":[0.5]}",
	"{\"a\":99999999999999999999999}",      /* integer overflow */
	"{\"a\":\"\\u0000\"}",                  /* NUL in a string */
	"{\"a\":\"\xc3\x28\"}",                 /* not UTF-8 */
	"{\"a\":\"\xed\xa0\x80\"}",             /* a surrogate in UTF-8 */
	"{\"a\":1",                             /* cut */
	"{'a':1}",
	"{\"a\":01}",
	"{\"a\":NaN}",
	"\xef\xbb\xbf{}",                       /* a byte-order mark */
	"{\"a\":[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}",  /* 17 levels */
};

static void
test_read_bad_bodies(void **state)
{
	uint8_t buf[256];
	json_t *got = NULL;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		n = str_frame(buf, sizeof(buf), bad_bodies[i]);
		if (read_from_bytes(buf, n, FRAME_MAX, &got) != -EINVAL) {
			fail_msg("accepted bad body %zu: %s", i, bad_bodies[i]);
		}
		assert_null(got);
	}
	/* A NUL byte inside the frame, outside and inside a string. */
	n = raw_frame(buf, sizeof(buf), 8, "{\"a\":1}\0", 8);
	assert_int_equal(read_from_bytes(buf, n, FRAME_MAX, &got), -EINVAL);
	n = raw_frame(buf, sizeof(buf), 10, "{\"a\":\"\0\"}", 10);
	assert_int_equal(read_from_bytes(buf, n, FRAME_MAX, &got), -EINVAL);
}

static void
test_read_good_edges(void **state)
{
	static const char *const good[] = {
		"{}",
		" {\"a\":1}\n ",                     /* whitespace around */
		"{\"a\":[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]}",  /* 16 levels */
		"{\"a\":-9007199254740992,\"b\":9223372036854775807}",
		"{\"\\u00e9\":\"\\ud83d\\ude00\"}",
	};
	uint8_t buf[256];
	json_t *got = NULL;
	size_t i, n;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		n = str_frame(buf, sizeof(buf), good[i]);
		if (read_from_bytes(buf, n, FRAME_MAX, &got) != 0) {
			fail_msg("refused good body %zu: %s", i, good[i]);
		}
		assert_true(json_is_object(got));
		json_decref(got);
		got = NULL;
	}
}

/* A bad frame between two good ones: the blocking reader resynchronises. */
static void
test_read_resync_after_garbage(void **state)
{
	uint8_t buf[256];
	json_t *got = NULL;
	size_t n = 0;
	int fds[2];

	(void)state;
	n += str_frame(buf + n, sizeof(buf) - n, "{\"id\":1}");
	n += str_frame(buf + n, sizeof(buf) - n, "{\"id\":2,\"id\":2}");
	n += str_frame(buf + n, sizeof(buf) - n, "not json at all");
	n += str_frame(buf + n, sizeof(buf) - n, "{\"id\":3}");
	make_pipe(fds);
	write_all(fds[1], buf, n);
	close(fds[1]);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), 0);
	expect_int(got, "id", 1);
	json_decref(got);
	got = NULL;
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), -EINVAL);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), -EINVAL);
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), 0);
	expect_int(got, "id", 3);
	json_decref(got);
	got = NULL;
	assert_int_equal(frame_read(fds[0], FRAME_MAX, &got), -EPIPE);
	close(fds[0]);
}

static volatile sig_atomic_t alarms;

static void
on_alarm(int sig)
{
	(void)sig;
	alarms++;
}

/* The writer sends one byte at a time, slowly, while a timer interrupts
 * the reader every millisecond: every read is short and many return
 * EINTR, and frame_read must still deliver the frame. */
static void
test_read_short_and_interrupted(void **state)
{
	static const char body[] = "{\"args\":{\"path\":\"/x\"},\"id\":9,\"op\":\"call\",\"tool\":\"fs.read\"}";
	struct sigaction sa, old;
	struct itimerval it = { .it_interval = { 0, 1000 }, .it_value = { 0, 1000 } };
	struct itimerval stop = { { 0, 0 }, { 0, 0 } };
	uint8_t buf[128];
	json_t *got = NULL;
	size_t n, i;
	int fds[2], st, r;
	pid_t pid;

	(void)state;
	n = str_frame(buf, sizeof(buf), body);
	make_pipe(fds);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		struct timespec ts = { 0, 300000 };

		close(fds[0]);
		for (i = 0; i < n; i++) {
			if (write(fds[1], buf + i, 1) != 1) {
				_exit(1);
			}
			nanosleep(&ts, NULL);
		}
		_exit(0);
	}
	close(fds[1]);
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_alarm;     /* no SA_RESTART: reads get EINTR */
	sigemptyset(&sa.sa_mask);
	assert_int_equal(sigaction(SIGALRM, &sa, &old), 0);
	alarms = 0;
	assert_int_equal(setitimer(ITIMER_REAL, &it, NULL), 0);
	r = frame_read(fds[0], FRAME_MAX, &got);
	setitimer(ITIMER_REAL, &stop, NULL);
	sigaction(SIGALRM, &old, NULL);
	assert_int_equal(r, 0);
	assert_true(alarms > 0);
	expect_int(got, "id", 9);
	json_decref(got);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(fds[0]);
}

static void
test_write_to_closed_pipe(void **state)
{
	json_t *j = json_pack("{s:i}", "id", 1);
	int fds[2];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	make_pipe(fds);
	close(fds[0]);
	assert_int_equal(frame_write(fds[1], j), -EPIPE);
	close(fds[1]);
	json_decref(j);
}

/* --- the incremental reader --- */

static void
test_reader_byte_by_byte(void **state)
{
	struct frame_reader *r = frame_reader_new(FRAME_MAX);
	uint8_t buf[128];
	json_t *got = NULL;
	size_t n, i;

	(void)state;
	assert_non_null(r);
	n = str_frame(buf, sizeof(buf), "{\"id\":42,\"ok\":true,\"result\":{}}");
	for (i = 0; i < n; i++) {
		assert_int_equal(frame_reader_next(r, &got), 0);
		assert_int_equal(frame_reader_feed(r, buf + i, 1), 0);
	}
	assert_int_equal(frame_reader_next(r, &got), 1);
	expect_int(got, "id", 42);
	json_decref(got);
	got = NULL;
	assert_int_equal(frame_reader_next(r, &got), 0);
	assert_null(got);
	frame_reader_free(r);
}

static void
test_reader_many_frames_one_feed(void **state)
{
	struct frame_reader *r = frame_reader_new(64);
	uint8_t buf[1024];
	json_t *got = NULL;
	size_t n = 0;
	int i;

	(void)state;
	assert_non_null(r);
	for (i = 1; i <= 10; i++) {
		char body[32];

		snprintf(body, sizeof(body), "{\"id\":%d}", i);
		n += str_frame(buf + n, sizeof(buf) - n, body);
		if (i == 4) {
			n += str_frame(buf + n, sizeof(buf) - n, "{\"d\":1,\"d\":1}");
		}
		if (i == 7) {
			n += raw_frame(buf + n, sizeof(buf) - n, 0, "", 0);
		}
	}
	/* 12 frames and the first half of a 13th; more than 4 + max bytes
	 * in one feed. */
	n += raw_frame(buf + n, sizeof(buf) - n, 9, "{\"id\"", 5);
	assert_true(n > 4 + 64);
	assert_int_equal(frame_reader_feed(r, buf, n), 0);
	for (i = 1; i <= 10; i++) {
		assert_int_equal(frame_reader_next(r, &got), 1);
		expect_int(got, "id", i);
		json_decref(got);
		got = NULL;
		if (i == 4 || i == 7) {
			assert_int_equal(frame_reader_next(r, &got), -EINVAL);
			assert_null(got);
		}
	}
	assert_int_equal(frame_reader_next(r, &got), 0);
	assert_int_equal(frame_reader_feed(r, ":13}", 4), 0);
	assert_int_equal(frame_reader_next(r, &got), 1);
	expect_int(got, "id", 13);
	json_decref(got);
	frame_reader_free(r);
}

static void
test_reader_bad_bodies_resync(void **state)
{
	struct frame_reader *r = frame_reader_new(FRAME_MAX);
	uint8_t buf[256];
	json_t *got = NULL;
	size_t i, n;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < sizeof(bad_bodies) / sizeof(bad_bodies[0]); i++) {
		n = str_frame(buf, sizeof(buf), bad_bodies[i]);
		n += str_frame(buf + n, sizeof(buf) - n, "{\"ok\":1}");
		assert_int_equal(frame_reader_feed(r, buf, n), 0);
		if (frame_reader_next(r, &got) != -EINVAL) {
			fail_msg("reader accepted bad body %zu: %s", i, bad_bodies[i]);
		}
		assert_int_equal(frame_reader_next(r, &got), 1);
		expect_int(got, "ok", 1);
		json_decref(got);
		got = NULL;
	}
	frame_reader_free(r);
}

static void
test_reader_over_max(void **state)
{
	struct frame_reader *r = frame_reader_new(16);
	uint8_t buf[128];
	json_t *got = NULL;
	size_t n = 0;

	(void)state;
	assert_non_null(r);
	n += str_frame(buf + n, sizeof(buf) - n, "{\"id\":1}");
	n += str_frame(buf + n, sizeof(buf) - n, "{\"a\":\"01234567\"}");  /* 16: fits */
	n += str_frame(buf + n, sizeof(buf) - n, "{\"a\":\"012345678\"}"); /* 17 */
	n += str_frame(buf + n, sizeof(buf) - n, "{\"id\":2}");
	assert_int_equal(frame_reader_feed(r, buf, n), -EMSGSIZE);
	/* What came before the oversized header is still delivered... */
	assert_int_equal(frame_reader_next(r, &got), 1);
	expect_int(got, "id", 1);
	json_decref(got);
	got = NULL;
	assert_int_equal(frame_reader_next(r, &got), 1);
	json_decref(got);
	got = NULL;
	/* ...but nothing after it: the stream is out of sync for good. */
	assert_int_equal(frame_reader_next(r, &got), 0);
	assert_int_equal(frame_reader_feed(r, buf, 12), -EMSGSIZE);
	assert_int_equal(frame_reader_next(r, &got), 0);
	frame_reader_free(r);

	/* A header announcing 4 GiB, split across feeds. */
	r = frame_reader_new(FRAME_MAX);
	assert_non_null(r);
	assert_int_equal(frame_reader_feed(r, "\xff\xff", 2), 0);
	assert_int_equal(frame_reader_feed(r, "\xff\xff", 2), -EMSGSIZE);
	frame_reader_free(r);
}

static void
test_reader_new_limits(void **state)
{
	struct frame_reader *r;
	json_t *got = NULL;
	uint8_t hdr[4] = { 0, 1, 0, 1 };    /* FRAME_MAX + 1 */

	(void)state;
	assert_null(frame_reader_new(0));
	r = frame_reader_new(SIZE_MAX);     /* clamped to FRAME_MAX */
	assert_non_null(r);
	assert_int_equal(frame_reader_feed(r, hdr, 4), -EMSGSIZE);
	frame_reader_free(r);
	frame_reader_free(NULL);
	assert_int_equal(frame_reader_feed(NULL, hdr, 4), -EINVAL);
	assert_int_equal(frame_reader_next(NULL, &got), -EINVAL);
	r = frame_reader_new(8);
	assert_non_null(r);
	assert_int_equal(frame_reader_feed(r, NULL, 0), 0);
	assert_int_equal(frame_reader_feed(r, NULL, 1), -EINVAL);
	frame_reader_free(r);
}

/* A full-size frame in random chunks, twice, with a partial frame left in
 * the reader when it is freed (no leak under ASan). */
static void
test_reader_random_chunks(void **state)
{
	struct frame_reader *r = frame_reader_new(FRAME_MAX);
	size_t blen = FRAME_MAX, n, off, total;
	uint8_t *buf;
	json_t *got = NULL;
	unsigned seed = 12345;
	int frames = 0, k;

	(void)state;
	assert_non_null(r);
	buf = malloc(3 * (4 + blen));
	assert_non_null(buf);
	total = 0;
	for (k = 0; k < 2; k++) {
		char *body = (char *)buf + total + 4;

		memcpy(body, "{\"s\":\"", 6);
		memset(body + 6, 'a' + k, blen - 8);
		memcpy(body + blen - 2, "\"}", 2);
		raw_frame(buf + total, 4, (uint32_t)blen, "", 0);
		total += 4 + blen;
	}
	raw_frame(buf + total, 8, 100, "{\"x", 3);
	total += 7;
	for (off = 0; off < total; off += n) {
		seed = seed * 1103515245u + 12345u;
		n = 1 + (seed >> 8) % 9000;
		if (n > total - off) {
			n = total - off;
		}
		assert_int_equal(frame_reader_feed(r, buf + off, n), 0);
		while ((k = frame_reader_next(r, &got)) == 1) {
			const char *s = json_string_value(json_object_get(got, "s"));

			assert_non_null(s);
			assert_int_equal(strlen(s), blen - 8);
			assert_int_equal(s[0], 'a' + frames);
			frames++;
			json_decref(got);
			got = NULL;
		}
		assert_int_equal(k, 0);
	}
	assert_int_equal(frames, 2);
	frame_reader_free(r);
	free(buf);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_write_is_canonical),
		cmocka_unit_test(test_roundtrip_and_clean_eof),
		cmocka_unit_test(test_write_rejects),
		cmocka_unit_test(test_exact_max),
		cmocka_unit_test(test_read_length_zero_stays_in_sync),
		cmocka_unit_test(test_read_length_over_max),
		cmocka_unit_test(test_read_truncated),
		cmocka_unit_test(test_read_bad_bodies),
		cmocka_unit_test(test_read_good_edges),
		cmocka_unit_test(test_read_resync_after_garbage),
		cmocka_unit_test(test_read_short_and_interrupted),
		cmocka_unit_test(test_write_to_closed_pipe),
		cmocka_unit_test(test_reader_byte_by_byte),
		cmocka_unit_test(test_reader_many_frames_one_feed),
		cmocka_unit_test(test_reader_bad_bodies_resync),
		cmocka_unit_test(test_reader_over_max),
		cmocka_unit_test(test_reader_new_limits),
		cmocka_unit_test(test_reader_random_chunks),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
