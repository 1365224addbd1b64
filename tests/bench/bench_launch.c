/* bench_launch: run a command (vmhost launch --foreground ...) and time
 * the lines it prints, on standard output and standard error, from just
 * before it starts. vmhost's log has whole seconds only; this takes a
 * monotonic timestamp of each line as it arrives through a pipe.
 *
 *   bench_launch --marker TEXT [--mark NAME=TEXT]... [--timeout S]
 *                [--grace S] [--log FILE] -- COMMAND [ARG]...
 *
 * Each --mark is the first line (either stream) containing TEXT; the
 * marker is the first such line too. Prints
 *   RESULT launch NAME_ms=T ... marker_ms=T exit_ms=T status=N
 * with -1 for a line never seen; status is the command's exit status (or
 * 128 + its signal). With --log, every line goes to FILE as
 * "SECONDS out|err LINE". At the timeout (default 120 s), or --grace
 * seconds after the marker (a guest that stays up after it), the command
 * gets SIGTERM, and SIGKILL 10 s later. Exits 1 if the marker never came,
 * or if the command failed without being stopped after the marker; never
 * because of timing. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_MARKS 8
#define LINE_MAX_LEN 4096

struct mark {
	char name[64];
	const char *text;
	double at;   /* seconds after start, or -1 */
};

struct stream {
	int fd;
	const char *label;
	char buf[LINE_MAX_LEN];
	size_t len;
};

static struct mark marks[MAX_MARKS + 1];   /* the last used one is the marker */
static size_t n_marks;
static double t_start;
static FILE *log_file;

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int
usage(void)
{
	fputs("usage: bench_launch --marker TEXT [--mark NAME=TEXT]... [--timeout S] "
	    "[--grace S] [--log FILE] -- COMMAND [ARG]...\n", stderr);
	return 2;
}

static void
line_done(struct stream *s, double at)
{
	size_t i;

	s->buf[s->len] = '\0';
	if (log_file != NULL) {
		fprintf(log_file, "%9.3f %s %s\n", at, s->label, s->buf);
	}
	for (i = 0; i < n_marks; i++) {
		if (marks[i].at < 0 && strstr(s->buf, marks[i].text) != NULL) {
			marks[i].at = at;
		}
	}
	s->len = 0;
}

/* Read what is there; false at end of file. */
static bool
drain(struct stream *s)
{
	char chunk[4096];
	ssize_t n, i;
	double at;

	n = read(s->fd, chunk, sizeof(chunk));
	if (n < 0 && (errno == EINTR || errno == EAGAIN)) {
		return true;
	}
	at = now_s() - t_start;
	if (n <= 0) {
		if (s->len > 0) {
			line_done(s, at);
		}
		return false;
	}
	for (i = 0; i < n; i++) {
		if (chunk[i] == '\n') {
			line_done(s, at);
		} else if (chunk[i] != '\r') {
			if (s->len == sizeof(s->buf) - 1) {
				line_done(s, at);
			}
			s->buf[s->len++] = chunk[i];
		}
	}
	return true;
}

int
main(int argc, char **argv)
{
	static struct stream out = { .fd = -1, .label = "out" }, err = { .fd = -1, .label = "err" };
	const char *marker = NULL, *log_path = NULL;
	double timeout = 120, grace = -1, t_exit = -1, term_at = -1;
	int po[2], pe[2], i, status = -1, rc;
	bool out_open = true, err_open = true, exited = false, stopped_after_marker = false;
	pid_t pid;
	size_t k;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			i++;
			break;
		}
		if (i + 1 >= argc) {
			return usage();
		}
		if (strcmp(argv[i], "--marker") == 0) {
			marker = argv[++i];
		} else if (strcmp(argv[i], "--log") == 0) {
			log_path = argv[++i];
		} else if (strcmp(argv[i], "--timeout") == 0) {
			timeout = strtod(argv[++i], NULL);
			if (!(timeout > 0)) {
				return usage();
			}
		} else if (strcmp(argv[i], "--grace") == 0) {
			grace = strtod(argv[++i], NULL);
			if (!(grace > 0)) {
				return usage();
			}
		} else if (strcmp(argv[i], "--mark") == 0) {
			const char *eq = strchr(argv[++i], '=');

			if (eq == NULL || eq == argv[i] || (size_t)(eq - argv[i]) >= sizeof(marks[0].name) ||
			    eq[1] == '\0' || n_marks == MAX_MARKS) {
				return usage();
			}
			memcpy(marks[n_marks].name, argv[i], (size_t)(eq - argv[i]));
			marks[n_marks].text = eq + 1;
			marks[n_marks].at = -1;
			n_marks++;
		} else {
			return usage();
		}
	}
	if (marker == NULL || i >= argc) {
		return usage();
	}
	memcpy(marks[n_marks].name, "marker", sizeof("marker"));
	marks[n_marks].text = marker;
	marks[n_marks].at = -1;
	n_marks++;
	if (log_path != NULL && (log_file = fopen(log_path, "we")) == NULL) {
		fprintf(stderr, "bench_launch: %s: %s\n", log_path, strerror(errno));
		return 1;
	}
	if (pipe2(po, O_CLOEXEC) != 0 || pipe2(pe, O_CLOEXEC) != 0) {
		perror("bench_launch: pipe2");
		return 1;
	}

	t_start = now_s();
	pid = fork();
	if (pid < 0) {
		perror("bench_launch: fork");
		return 1;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		if (nul < 0 || dup2(nul, STDIN_FILENO) < 0 || dup2(po[1], STDOUT_FILENO) < 0 ||
		    dup2(pe[1], STDERR_FILENO) < 0) {
			_exit(127);
		}
		execvp(argv[i], argv + i);
		fprintf(stderr, "bench_launch: cannot run %s: %s\n", argv[i], strerror(errno));
		_exit(127);
	}
	(void)close(po[1]);
	(void)close(pe[1]);
	out.fd = po[0];
	err.fd = pe[0];

	while (out_open || err_open || !exited) {
		struct pollfd p[2];
		nfds_t np = 0;
		double now = now_s() - t_start;

		if (!exited) {
			pid_t w = waitpid(pid, &status, WNOHANG);

			if (w == pid) {
				exited = true;
				t_exit = now_s() - t_start;
			}
		}
		if (exited && now > t_exit + 2) {
			break;   /* something else holds the pipes open: stop reading */
		}
		if (!exited && term_at < 0 && now > timeout) {
			fprintf(stderr, "bench_launch: no exit within %.0f s: stopping %s\n", timeout,
			    argv[i]);
			(void)kill(pid, SIGTERM);
			term_at = now;
		} else if (!exited && term_at < 0 && grace > 0 && marks[n_marks - 1].at >= 0 &&
		    now > marks[n_marks - 1].at + grace) {
			fprintf(stderr, "bench_launch: still running %.0f s after the marker: stopping "
			    "%s\n", grace, argv[i]);
			(void)kill(pid, SIGTERM);
			term_at = now;
			stopped_after_marker = true;
		} else if (!exited && term_at >= 0 && now > term_at + 10) {
			(void)kill(pid, SIGKILL);
		}
		if (out_open) {
			p[np].fd = out.fd;
			p[np++].events = POLLIN;
		}
		if (err_open) {
			p[np].fd = err.fd;
			p[np++].events = POLLIN;
		}
		if (np == 0) {
			/* Both pipes closed; the command has not exited yet. */
			(void)usleep(10000);
			continue;
		}
		if (poll(p, np, 50) < 0 && errno != EINTR) {
			perror("bench_launch: poll");
			break;
		}
		for (k = 0; k < np; k++) {
			if ((p[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
				continue;
			}
			if (p[k].fd == out.fd) {
				out_open = drain(&out);
			} else {
				err_open = drain(&err);
			}
		}
	}
	if (log_file != NULL) {
		(void)fclose(log_file);
	}
	if (!exited) {
		(void)waitpid(pid, &status, 0);
		t_exit = now_s() - t_start;
	}
	rc = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);

	printf("RESULT launch");
	for (k = 0; k < n_marks; k++) {
		printf(" %s_ms=%.0f", marks[k].name, marks[k].at < 0 ? -1.0 : marks[k].at * 1e3);
	}
	printf(" exit_ms=%.0f status=%d stopped=%d\n", t_exit * 1e3, rc, stopped_after_marker);
	return (rc == 0 || stopped_after_marker) && marks[n_marks - 1].at >= 0 ? 0 : 1;
}
