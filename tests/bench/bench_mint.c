/* bench_mint: concurrent clients minting over attestd's unix socket, each
 * on its own keep-alive connection, for a fixed time. Prints tokens/s,
 * p50 and p99 latency, and the TPM commands attestd issued per 1,000
 * tokens (from GET /v1/status before and after). Never fails on timing.
 *
 *   bench_mint --socket PATH --vm ID --launch-digest HEX [--seconds N]
 *              [--threads N] [--label TEXT]
 *
 * attestd mints only for a VM it measured (attestctl measure), for an op
 * its envelope allows: fs.write here. */
#include <errno.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "parse.h"
#include "uhttp.h"

#define MAX_THREADS 64

static char body[512];
static size_t body_len;

struct worker {
	pthread_t thread;
	const char *socket;
	double deadline;
	uint64_t *lat_ns;
	size_t n;
	size_t cap;
	uint64_t errors;
	int first_error;
	long first_status;
};

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct uhttp *h = NULL;

	if (uhttp_new_unix(w->socket, &h) != 0) {
		w->errors++;
		return NULL;
	}
	while (now_s() < w->deadline) {
		char *rep = NULL;
		size_t len = 0;
		long status = 0;
		double t0 = now_s(), t1;
		int r;

		r = uhttp_request(h, "POST", "/v1/mint", body, body_len, &status, &rep, &len);
		t1 = now_s();
		if (r != 0 || status != 200 || len < 10 || strncmp(rep, "{\"token\":", 9) != 0) {
			if (w->errors++ == 0) {
				w->first_error = r;
				w->first_status = status;
			}
			free(rep);
			if (r != 0) {
				break;   /* attestd went away: do not spin */
			}
			continue;
		}
		free(rep);
		if (w->n == w->cap) {
			size_t cap = w->cap == 0 ? 65536 : w->cap * 2;
			uint64_t *p = realloc(w->lat_ns, cap * sizeof(*p));

			if (p == NULL) {
				break;
			}
			w->lat_ns = p;
			w->cap = cap;
		}
		w->lat_ns[w->n++] = (uint64_t)((t1 - t0) * 1e9);
	}
	uhttp_free(h);
	return NULL;
}

static int
cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y ? 1 : 0;
}

/* tpm_commands, tokens_minted and mode from GET /v1/status. */
static int
read_status(const char *sock, int64_t *tpm, int64_t *minted, char *mode, size_t modesz)
{
	struct uhttp *h = NULL;
	json_t *j = NULL;
	long status = 0;
	int r;

	r = uhttp_new_unix(sock, &h);
	if (r == 0) {
		r = uhttp_request_json(h, "GET", "/v1/status", NULL, &status, &j);
	}
	if (r == 0 && (status != 200 || !json_is_integer(json_object_get(j, "tpm_commands")))) {
		r = -EPROTO;
	}
	if (r == 0) {
		*tpm = json_integer_value(json_object_get(j, "tpm_commands"));
		*minted = json_integer_value(json_object_get(j, "tokens_minted"));
		snprintf(mode, modesz, "%s",
		    json_string_value(json_object_get(j, "mode")) != NULL ?
		    json_string_value(json_object_get(j, "mode")) : "?");
	}
	json_decref(j);
	uhttp_free(h);
	return r;
}

static int
usage(void)
{
	fprintf(stderr, "usage: bench_mint --socket PATH --vm ID --launch-digest HEX "
	    "[--seconds N] [--threads N] [--label TEXT]\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static struct worker w[MAX_THREADS];
	const char *sock = NULL, *label = NULL, *vm = NULL, *ld = NULL;
	uint8_t digest[32];
	int n;
	uint64_t seconds = 5, threads = 2, total = 0, errors = 0, *all;
	int64_t tpm0 = 0, tpm1 = 0, m0 = 0, m1 = 0;
	char mode[16] = "?";
	double t0, elapsed, tps;
	size_t i, k;
	int a;

	for (a = 1; a < argc; a++) {
		if (a + 1 >= argc) {
			return usage();
		}
		if (strcmp(argv[a], "--socket") == 0) {
			sock = argv[++a];
		} else if (strcmp(argv[a], "--seconds") == 0) {
			if (parse_u64(argv[++a], 1, 3600, &seconds) != 0) {
				return usage();
			}
		} else if (strcmp(argv[a], "--threads") == 0) {
			if (parse_u64(argv[++a], 1, MAX_THREADS, &threads) != 0) {
				return usage();
			}
		} else if (strcmp(argv[a], "--label") == 0) {
			label = argv[++a];
		} else if (strcmp(argv[a], "--vm") == 0) {
			vm = argv[++a];
		} else if (strcmp(argv[a], "--launch-digest") == 0) {
			ld = argv[++a];
		} else {
			return usage();
		}
	}
	if (sock == NULL || vm == NULL || ld == NULL || parse_ident(vm, 64) != 0 ||
	    parse_hex(ld, digest, sizeof(digest)) != 0) {
		return usage();
	}
	n = snprintf(body, sizeof(body), "{\"aud\":\"proxy\",\"vm\":\"%s\","
	    "\"launch_digest\":\"%s\",\"op\":\"fs.write\","
	    "\"args\":{\"path\":\"/notes.txt\",\"data\":\"hi\"},\"ttl\":300,\"uses\":1}", vm, ld);
	if (n < 0 || (size_t)n >= sizeof(body)) {
		return usage();
	}
	body_len = (size_t)n;
	if (read_status(sock, &tpm0, &m0, mode, sizeof(mode)) != 0) {
		fprintf(stderr, "bench_mint: cannot read %s /v1/status\n", sock);
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < threads; i++) {
		w[i].socket = sock;
		w[i].deadline = t0 + (double)seconds;
		if (pthread_create(&w[i].thread, NULL, worker_main, &w[i]) != 0) {
			fprintf(stderr, "bench_mint: cannot start a thread\n");
			return 1;
		}
	}
	for (i = 0; i < threads; i++) {
		pthread_join(w[i].thread, NULL);
		total += w[i].n;
		errors += w[i].errors;
	}
	elapsed = now_s() - t0;
	if (read_status(sock, &tpm1, &m1, mode, sizeof(mode)) != 0) {
		fprintf(stderr, "bench_mint: cannot read /v1/status afterwards\n");
		return 1;
	}
	for (i = 0; i < threads; i++) {
		if (w[i].errors != 0) {
			fprintf(stderr, "bench_mint: thread %zu: %" PRIu64 " errors, first: %s, "
			    "HTTP %ld\n", i, w[i].errors,
			    w[i].first_error != 0 ? strerror(-w[i].first_error) : "none",
			    w[i].first_status);
		}
	}
	all = malloc((total > 0 ? total : 1) * sizeof(*all));
	if (all == NULL) {
		return 1;
	}
	for (i = 0, k = 0; i < threads; i++) {
		memcpy(all + k, w[i].lat_ns, w[i].n * sizeof(*all));
		k += w[i].n;
		free(w[i].lat_ns);
	}
	qsort(all, total, sizeof(*all), cmp_u64);
	tps = (double)total / elapsed;
	printf("mint%s%s (%s mode): %" PRIu64 " threads x %.1f s: %" PRIu64 " tokens, "
	    "%.0f tokens/s, p50 %.3f ms, p99 %.3f ms, errors %" PRIu64 "\n",
	    label != NULL ? " " : "", label != NULL ? label : "", mode, threads, elapsed,
	    total, tps, total > 0 ? (double)all[total / 2] / 1e6 : 0.0,
	    total > 0 ? (double)all[(size_t)((double)total * 0.99)] / 1e6 : 0.0, errors);
	printf("  TPM commands: %" PRId64 " for %" PRId64 " tokens minted = %.2f per 1,000 tokens\n",
	    tpm1 - tpm0, m1 - m0, m1 > m0 ? (double)(tpm1 - tpm0) * 1000.0 / (double)(m1 - m0) : 0.0);
	printf("RESULT mint mode=%s tokens=%" PRIu64 " tps=%.0f p50_ms=%.3f p99_ms=%.3f "
	    "tpm_per_1000=%.2f errors=%" PRIu64 "\n", mode, total, tps,
	    total > 0 ? (double)all[total / 2] / 1e6 : 0.0,
	    total > 0 ? (double)all[(size_t)((double)total * 0.99)] / 1e6 : 0.0,
	    m1 > m0 ? (double)(tpm1 - tpm0) * 1000.0 / (double)(m1 - m0) : 0.0, errors);
	free(all);
	return 0;
}
