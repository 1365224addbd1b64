/* attestd: the only holder of the TPM key. Flags, configuration, process
 * hardening, the socket and the single-threaded event loop; the work is
 * in api.c, keyring.c and server.c. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <malloc.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api.h"
#include "clock.h"
#include "config.h"
#include "keyring.h"
#include "launchlog.h"
#include "log.h"
#include "measure.h"
#include "parse.h"
#include "secmem.h"
#include "server.h"

struct opts {
	const char *config;
	bool config_given;
	const char *tcti;
	const char *state_dir;
	const char *socket;
	const char *launch_socket;
	const char *event_log_dir;
	bool strict;
	bool epoch_given;
	int64_t epoch_seconds;
};

static void
usage(FILE *f)
{
	(void)fprintf(f,
	    "usage: attestd [--config FILE] [--tcti TCTI] [--state-dir DIR] [--socket PATH]\n"
	    "               [--launch-socket PATH] [--event-log-dir DIR] [--strict]\n"
	    "               [--epoch-seconds N]\n"
	    "Flags override the configuration file (default " CONFIG_DEFAULT_PATH
	    ", optional).\n");
}

static int
parse_opts(int argc, char **argv, struct opts *ret)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "tcti", required_argument, NULL, 't' },
		{ "state-dir", required_argument, NULL, 'd' },
		{ "socket", required_argument, NULL, 's' },
		{ "launch-socket", required_argument, NULL, 'L' },
		{ "event-log-dir", required_argument, NULL, 'E' },
		{ "strict", no_argument, NULL, 'S' },
		{ "epoch-seconds", required_argument, NULL, 'e' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .config = CONFIG_DEFAULT_PATH };
	uint64_t v;
	int ch;

	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c': {
			o.config = optarg;
			o.config_given = true;
			break;
		}
		case 't': {
			o.tcti = optarg;
			break;
		}
		case 'd': {
			o.state_dir = optarg;
			break;
		}
		case 's': {
			o.socket = optarg;
			break;
		}
		case 'L': {
			o.launch_socket = optarg;
			break;
		}
		case 'E': {
			o.event_log_dir = optarg;
			break;
		}
		case 'S': {
			o.strict = true;
			break;
		}
		case 'e': {
			if (parse_u64(optarg, CONFIG_EPOCH_MIN, CONFIG_EPOCH_MAX, &v) < 0) {
				(void)fprintf(stderr, "attestd: --epoch-seconds must be an integer "
				    "in %d..%d\n", CONFIG_EPOCH_MIN, CONFIG_EPOCH_MAX);
				return -EINVAL;
			}
			o.epoch_given = true;
			o.epoch_seconds = (int64_t)v;
			break;
		}
		case 'h': {
			usage(stdout);
			exit(0);
		}
		default: {
			usage(stderr);
			return -EINVAL;
		}
		}
	}
	if (optind != argc) {
		usage(stderr);
		return -EINVAL;
	}
	*ret = o;
	return 0;
}

static int
set_field(char *dst, size_t n, const char *src, const char *flag)
{
	size_t len = strlen(src);

	if (len == 0 || len >= n) {
		(void)fprintf(stderr, "attestd: %s must be 1..%zu characters\n", flag, n - 1);
		return -EINVAL;
	}
	memcpy(dst, src, len + 1);
	return 0;
}

static int
load_config(const struct opts *o, struct config **ret)
{
	struct config *c = NULL;
	char err[512] = "";
	int r;

	r = config_load(o->config, &c, err, sizeof(err));
	if (r == -ENOENT && !o->config_given) {
		r = config_new(&c);
	}
	if (r < 0) {
		(void)fprintf(stderr, "attestd: configuration: %s\n", err[0] ? err : strerror(-r));
		return r;
	}
	if ((o->tcti != NULL && (r = set_field(c->tcti, sizeof(c->tcti), o->tcti, "--tcti")) < 0) ||
	    (o->state_dir != NULL && (r = set_field(c->state_dir, sizeof(c->state_dir),
	    o->state_dir, "--state-dir")) < 0) ||
	    (o->socket != NULL && (r = set_field(c->socket, sizeof(c->socket), o->socket,
	    "--socket")) < 0) ||
	    (o->launch_socket != NULL && (r = set_field(c->launch_socket,
	    sizeof(c->launch_socket), o->launch_socket, "--launch-socket")) < 0) ||
	    (o->event_log_dir != NULL && (r = set_field(c->event_log_dir,
	    sizeof(c->event_log_dir), o->event_log_dir, "--event-log-dir")) < 0)) {
		goto out;
	}
	if (o->strict) {
		c->mode = CONFIG_MODE_STRICT;
	}
	if (o->epoch_given) {
		c->epoch_seconds = o->epoch_seconds;
	}
	r = config_derive(c, err, sizeof(err));
	if (r < 0) {
		(void)fprintf(stderr, "attestd: configuration: %s\n", err);
		goto out;
	}
	*ret = c;
	c = NULL;
out:
	config_free(c);
	return r;
}

/* jansson's buffers may hold tokens (POST /v1/verify) and claims: wipe
 * them when freed. */
static void *
wiping_malloc(size_t n)
{
	return malloc(n);
}

static void
wiping_free(void *p)
{
	if (p != NULL) {
		explicit_bzero(p, malloc_usable_size(p));
	}
	free(p);
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	(void)clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Remove the socket only if it is still the one we bound. */
static void
remove_socket(const char *path, const struct stat *bound)
{
	struct stat st;

	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode) && st.st_dev == bound->st_dev &&
	    st.st_ino == bound->st_ino) {
		(void)unlink(path);
	}
}

/* The health check runs every interval, and also when the keyring has a
 * deadline in wall-clock time: a key to wipe the second its not_after has
 * passed, or the next epoch's key to derive before the boundary. The
 * launch socket's connections have deadlines of their own. */
static int
event_loop(struct server *srv, struct measure *ms, struct api *api, struct keyring *kr,
    struct launchlog *ll, int sfd, int64_t interval_ms)
{
	int64_t next_check = (int64_t)clock_mono_ms() + interval_ms;

	for (;;) {
		struct pollfd pfd[3] = {
			{ .fd = server_fd(srv), .events = POLLIN },
			{ .fd = sfd, .events = POLLIN },
			{ .fd = measure_fd(ms), .events = POLLIN },
		};
		int64_t now = (int64_t)clock_mono_ms(), t = server_timeout_ms(srv);
		int64_t wait = next_check - now;
		int64_t mt = measure_timeout_ms(ms);
		int64_t wall = wall_ms();
		int64_t due = keyring_next_deadline(kr, wall / 1000);
		int n;

		if (due < INT64_MAX / 1000 && due * 1000 - wall < wait) {
			wait = due * 1000 - wall;
		}
		if (wait < 0) {
			wait = 0;
		}
		if (t >= 0 && t < wait) {
			wait = t;
		}
		if (mt >= 0 && mt < wait) {
			wait = mt;
		}
		n = poll(pfd, 3, (int)(wait > 60000 ? 60000 : wait));
		if (n < 0 && errno != EINTR) {
			log_error("poll: %s", strerror(errno));
			return -errno;
		}
		if (n > 0 && (pfd[1].revents & POLLIN)) {
			struct signalfd_siginfo si;

			if (read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
				switch (si.ssi_signo) {
				case SIGHUP: {
					log_info("SIGHUP: reloading the keystore");
					(void)api_reload(api, (int64_t)time(NULL));
					break;
				}
				case SIGTERM:
				case SIGINT: {
					log_info("signal %u: stopping", si.ssi_signo);
					return 0;
				}
				default: {
					break;
				}
				}
			}
		}
		wall = wall_ms() / 1000;
		if ((int64_t)clock_mono_ms() >= next_check || wall >= due) {
			keyring_check(kr, wall);
			launchlog_check(ll);
			next_check = (int64_t)clock_mono_ms() + interval_ms;
		}
		measure_run(ms);
		/* libmicrohttpd wants a run after every poll, input or not. */
		if (server_run(srv) < 0) {
			log_error("http: the server stopped running");
			return -EIO;
		}
	}
}

/* Never seal to what launches extend (docs/architecture.md): a launch
 * would break the root key's policy, or a policy over that PCR would let
 * a launch choose the key's state. */
static int
check_launch_pcr(const struct config *cfg, struct keyring *kr)
{
	struct tpm_pcr_sel sel;
	char s[TPM_PCR_SEL_STR_MAX];

	if (keyring_policy_pcrs(kr, &sel) < 0) {
		return 0;
	}
	if ((sel.mask & (1u << cfg->launch_pcr)) != 0) {
		if (tpm_pcr_sel_format(&sel, s, sizeof(s)) < 0) {
			s[0] = '\0';
		}
		log_error("launch_pcr %u is one of the root key's policy PCRs (%s): launches "
		    "would extend what the key is sealed to; choose another launch_pcr",
		    cfg->launch_pcr, s);
		return -EINVAL;
	}
	return 0;
}

int
main(int argc, char **argv)
{
	struct config *cfg = NULL;
	struct keyring *kr = NULL;
	struct api *api = NULL;
	struct server *srv = NULL;
	struct launchlog *ll = NULL;
	struct measure *ms = NULL;
	struct keyring_params kp;
	struct opts o;
	struct stat bound, lbound;
	char err[256] = "";
	sigset_t mask;
	int fd = -1, lfd = -1, sfd = -1, r, rc = 1;
	bool have_socket = false, have_lsocket = false;

	log_init("attestd", LOG_INFO);
	/* tpm2-tss would print its own lines on every failed health check;
	 * our messages carry its response code already. TSS2_LOG set by the
	 * caller wins. */
	(void)setenv("TSS2_LOG", "all+NONE", 0);
	if (parse_opts(argc, argv, &o) < 0) {
		return 2;
	}
	if (load_config(&o, &cfg) < 0) {
		return 1;
	}
	r = secmem_harden_process();
	if (r < 0) {
		log_error("hardening the process: %s", strerror(-r));
		goto out;
	}
	/* attestd never executes anything: it needs no new privileges. */
	(void)prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
	json_set_alloc_funcs(wiping_malloc, wiping_free);
	(void)signal(SIGPIPE, SIG_IGN);

	kp = (struct keyring_params){
		.epoch_seconds = cfg->epoch_seconds,
		.max_ttl_seconds = cfg->max_ttl_seconds,
		.strict = cfg->mode == CONFIG_MODE_STRICT,
		.tcti = cfg->tcti,
		/* Checks run every interval: one of them falls in this window. */
		.prefetch_seconds = cfg->health_interval_seconds + 1,
	};
	r = keyring_new(&kp, NULL, &kr);
	if (r < 0) {
		log_error("allocating locked memory for keys: %s", strerror(-r));
		goto out;
	}
	r = keyring_load(kr, cfg->state_dir, err, sizeof(err));
	if (r < 0) {
		log_error("loading the keystore from %s: %s%s", cfg->state_dir,
		    err[0] != '\0' ? err : strerror(-r),
		    r == -ENOENT ? " (run attest-keys init)" : "");
		goto out;
	}
	/* The first check opens the TPM. attestd starts even if it is
	 * unreachable: it reports so and recovers by itself. */
	keyring_check(kr, (int64_t)time(NULL));
	if (check_launch_pcr(cfg, kr) < 0) {
		goto out;
	}
	r = launchlog_new(cfg->event_log_dir, cfg->launch_pcr, kr, &ll);
	if (r < 0) {
		log_error("event log folder %s: %s", cfg->event_log_dir, strerror(-r));
		goto out;
	}
	/* Replays the log and compares it with the launch PCR, or says why
	 * not; attestd starts either way and keeps checking. */
	launchlog_check(ll);
	r = api_new(cfg, kr, ll, &api);
	if (r < 0) {
		goto out;
	}
	/* A store that does not parse would silently drop people or their
	 * counters: stop rather than run without them. */
	err[0] = '\0';
	r = api_load_approvers(api, err, sizeof(err));
	if (r < 0) {
		log_error("loading the enrolled approvers: %s; fix or remove the file "
		    "(attestctl approvers add re-enrols)", err[0] != '\0' ? err : strerror(-r));
		goto out;
	}

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) < 0 ||
	    (sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK)) < 0) {
		log_error("signalfd: %s", strerror(errno));
		goto out;
	}

	r = server_listen(cfg->socket, cfg->has_socket_group, cfg->socket_gid, &fd);
	if (r < 0) {
		log_error("socket %s: %s", cfg->socket, r == -EEXIST ?
		    "exists and is not a socket; refusing to replace it" :
		    r == -EADDRINUSE ? "another process answers on it" : strerror(-r));
		goto out;
	}
	have_socket = lstat(cfg->socket, &bound) == 0;
	r = server_new(fd, cfg->max_connections, api, &srv);
	fd = -1;
	if (r < 0) {
		log_error("starting the HTTP server: %s", strerror(-r));
		goto out;
	}
	/* The hashing threads inherit the blocked signals from here. */
	r = server_listen(cfg->launch_socket, cfg->has_socket_group, cfg->socket_gid, &lfd);
	if (r < 0) {
		log_error("launch socket %s: %s", cfg->launch_socket, r == -EEXIST ?
		    "exists and is not a socket; refusing to replace it" :
		    r == -EADDRINUSE ? "another process answers on it" : strerror(-r));
		goto out;
	}
	have_lsocket = lstat(cfg->launch_socket, &lbound) == 0;
	r = measure_new(lfd, cfg, kr, ll, &ms);
	lfd = -1;
	if (r < 0) {
		log_error("starting the launch socket: %s", strerror(-r));
		goto out;
	}
	log_info("listening on %s and %s (%s mode, epoch %llds, generation %u, launch PCR %u, "
	    "approvals %s)",
	    cfg->socket, cfg->launch_socket, cfg->mode == CONFIG_MODE_STRICT ? "strict" : "epoch",
	    (long long)cfg->epoch_seconds, (unsigned)keyring_generation(kr), cfg->launch_pcr,
	    cfg->approvals.configured ? cfg->approvals.rp_id : "not configured");

	r = event_loop(srv, ms, api, kr, ll, sfd, cfg->health_interval_seconds * 1000);
	if (r == 0) {
		rc = 0;
	}
out:
	measure_free(ms);   /* waits for hashing threads */
	server_free(srv);
	if (have_socket) {
		remove_socket(cfg->socket, &bound);
	}
	if (have_lsocket) {
		remove_socket(cfg->launch_socket, &lbound);
	}
	if (lfd >= 0) {
		(void)close(lfd);
	}
	if (fd >= 0) {
		(void)close(fd);
	}
	if (sfd >= 0) {
		(void)close(sfd);
	}
	api_free(api);
	launchlog_free(ll);
	keyring_free(kr);   /* wipes every epoch key */
	config_free(cfg);
	return rc;
}
