/* Unit tests for approver/settings.c: the approver's configuration file. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../approver/settings.h"

#define STATE "/srv/approver"

static int
parse(const char *text, struct settings **ret, char *err, size_t errsz)
{
	return settings_parse(STATE, text, strlen(text), ret, err, errsz);
}

/* Must fail, with an error that names `want`. */
static void
refuse(const char *text, const char *want)
{
	struct settings *s = NULL;
	char err[512] = "";

	if (parse(text, &s, err, sizeof(err)) == 0) {
		fail_msg("accepted: %s", text);
	}
	assert_null(s);
	if (strstr(err, want) == NULL) {
		fail_msg("error for %s is '%s', not naming '%s'", text, err, want);
	}
}

static void
test_defaults(void **state)
{
	struct settings *s = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(parse("{}", &s, err, sizeof(err)), 0);
	assert_string_equal(s->state_dir, STATE);
	assert_string_equal(s->listen, "127.0.0.1:8443");
	assert_string_equal(s->public_url, "https://localhost:8443");
	assert_string_equal(settings_origin(s), "https://localhost:8443");
	assert_string_equal(s->rp_id, "localhost");
	assert_string_equal(s->tls_cert, STATE "/tls/cert.pem");
	assert_string_equal(s->tls_key, STATE "/tls/key.pem");
	assert_string_equal(s->api_socket, STATE "/api.sock");
	assert_string_equal(s->api_listen, "");
	assert_string_equal(s->attestd_socket, "/run/warrant/attestd.sock");
	assert_int_equal(s->quorum_default, 1);
	assert_int_equal(s->n_quorum, 0);
	assert_int_equal(s->request_lifetime_seconds, 900);
	assert_int_equal(s->session_idle_seconds, 900);
	assert_int_equal(s->session_max_seconds, 28800);
	assert_int_equal(s->login_max_failures_name, 5);
	assert_int_equal(s->login_max_failures_addr, 50);
	assert_int_equal(s->login_window_seconds, 900);
	assert_int_equal(s->max_pending, 10000);
	assert_int_equal(s->notify_argc, 0);
	assert_null(s->notify_argv[0]);
	assert_string_equal(s->notify_webhook, "");
	assert_string_equal(s->notify_webhook_ca, "");
	assert_int_equal(s->threads, 4);
	assert_int_equal(settings_quorum_for(s, "exec"), 1);
	settings_free(s);
}

static void
test_default_text_parses(void **state)
{
	struct settings *s = NULL;
	char *text = NULL;
	char err[256] = "";

	(void)state;
	assert_int_equal(settings_default_text(&text), 0);
	assert_int_equal(parse(text, &s, err, sizeof(err)), 0);
	assert_string_equal(s->rp_id, "localhost");
	assert_string_equal(s->api_socket, STATE "/api.sock");
	settings_free(s);
	free(text);
}

static void
test_full(void **state)
{
	struct settings *s = NULL;
	char err[256] = "";
	const char *text =
	    "{\"listen\":\"[::1]:9000\",\"public_url\":\"https://approve.example.com\","
	    "\"rp_id\":\"example.com\",\"tls_cert\":\"/etc/c.pem\",\"tls_key\":\"k.pem\","
	    "\"api_socket\":\"/run/a.sock\",\"api_listen\":\"0.0.0.0:9443\","
	    "\"api_client_ca\":\"ca.pem\",\"attestd_socket\":\"/run/x.sock\","
	    "\"quorum\":{\"default\":2,\"ops\":{\"exec\":3,\"fs/write\":1}},"
	    "\"request_lifetime_seconds\":10,\"session_idle_seconds\":60,"
	    "\"session_max_seconds\":604800,"
	    "\"login\":{\"max_failures_name\":100,\"max_failures_addr\":10000,"
	    "\"window_seconds\":86400},\"max_pending\":1,"
	    "\"notify\":{\"command\":[\"/usr/bin/notify\",\"--to\",\"ops\"],"
	    "\"webhook\":\"https://hooks.example.com:8080/x?y=z\",\"webhook_ca\":\"hook-ca.pem\"},"
	    "\"threads\":64}";

	(void)state;
	assert_int_equal(parse(text, &s, err, sizeof(err)), 0);
	assert_string_equal(s->listen, "[::1]:9000");
	assert_string_equal(settings_origin(s), "https://approve.example.com");
	assert_string_equal(s->rp_id, "example.com");
	assert_string_equal(s->tls_cert, "/etc/c.pem");
	assert_string_equal(s->tls_key, STATE "/k.pem");
	assert_string_equal(s->api_socket, "/run/a.sock");
	assert_string_equal(s->api_listen, "0.0.0.0:9443");
	assert_string_equal(s->api_client_ca, STATE "/ca.pem");
	assert_string_equal(s->attestd_socket, "/run/x.sock");
	assert_int_equal(s->quorum_default, 2);
	assert_int_equal(s->n_quorum, 2);
	assert_int_equal(settings_quorum_for(s, "exec"), 3);
	assert_int_equal(settings_quorum_for(s, "fs/write"), 1);
	assert_int_equal(settings_quorum_for(s, "other"), 2);
	assert_int_equal(settings_quorum_for(s, NULL), 2);
	assert_int_equal(s->request_lifetime_seconds, 10);
	assert_int_equal(s->session_max_seconds, 604800);
	assert_int_equal(s->login_max_failures_addr, 10000);
	assert_int_equal(s->max_pending, 1);
	assert_int_equal(s->notify_argc, 3);
	assert_string_equal(s->notify_argv[0], "/usr/bin/notify");
	assert_string_equal(s->notify_argv[2], "ops");
	assert_null(s->notify_argv[3]);
	assert_string_equal(s->notify_webhook, "https://hooks.example.com:8080/x?y=z");
	assert_string_equal(s->notify_webhook_ca, STATE "/hook-ca.pem");
	assert_int_equal(s->threads, 64);
	settings_free(s);

	/* An absolute CA path is kept; an empty one means the system's store. */
	assert_int_equal(parse("{\"notify\":{\"webhook\":\"https://h.example/\","
	    "\"webhook_ca\":\"/etc/hook/ca.pem\"}}", &s, err, sizeof(err)), 0);
	assert_string_equal(s->notify_webhook_ca, "/etc/hook/ca.pem");
	settings_free(s);
	assert_int_equal(parse("{\"notify\":{\"webhook\":\"\",\"webhook_ca\":\"\"}}", &s, err,
	    sizeof(err)), 0);
	assert_string_equal(s->notify_webhook_ca, "");
	settings_free(s);

	/* rp_id defaults to the public URL's host. */
	assert_int_equal(parse("{\"public_url\":\"https://a.b.example:1234\"}", &s, err,
	    sizeof(err)), 0);
	assert_string_equal(s->rp_id, "a.b.example");
	settings_free(s);
}

static void
test_refuses_syntax(void **state)
{
	(void)state;
	refuse("", "strict JSON");
	refuse("[]", "JSON object");
	refuse("\"x\"", "JSON object");
	refuse("{\"threads\":4,\"threads\":4}", "strict JSON");
	refuse("{\"threads\":4.0}", "strict JSON");
	refuse("{} {}", "strict JSON");
	refuse("{\"thread\":4}", "unknown field 'thread'");
	refuse("{\"login\":{\"max_failures\":1}}", "unknown field 'login.max_failures'");
	refuse("{\"quorum\":{\"default\":1,\"exec\":2}}", "unknown field 'quorum.exec'");
	refuse("{\"notify\":{\"cmd\":[]}}", "unknown field 'notify.cmd'");
	refuse("{\"listen\":\"a\\u0000b:1\"}", "strict JSON");
	refuse("{\"listen\":\"a\\u0001b:1\"}", "listen");
}

static void
test_refuses_values(void **state)
{
	(void)state;
	refuse("{\"threads\":0}", "threads");
	refuse("{\"threads\":65}", "threads");
	refuse("{\"threads\":\"4\"}", "threads");
	refuse("{\"threads\":-1}", "threads");
	refuse("{\"threads\":99999999999999999999}", "strict JSON");
	refuse("{\"max_pending\":0}", "max_pending");
	refuse("{\"max_pending\":100001}", "max_pending");
	refuse("{\"request_lifetime_seconds\":9}", "request_lifetime_seconds");
	refuse("{\"request_lifetime_seconds\":86401}", "request_lifetime_seconds");
	refuse("{\"session_idle_seconds\":59}", "session_idle_seconds");
	refuse("{\"session_max_seconds\":299}", "session_max_seconds");
	refuse("{\"session_max_seconds\":604801}", "session_max_seconds");
	refuse("{\"session_idle_seconds\":3600,\"session_max_seconds\":600}",
	    "session_max_seconds");
	refuse("{\"login\":{\"max_failures_name\":0}}", "login.max_failures_name");
	refuse("{\"login\":{\"max_failures_addr\":10001}}", "login.max_failures_addr");
	refuse("{\"login\":{\"window_seconds\":59}}", "login.window_seconds");
	refuse("{\"login\":[]}", "login");
	refuse("{\"quorum\":{\"default\":0}}", "quorum.default");
	refuse("{\"quorum\":{\"default\":17}}", "quorum.default");
	refuse("{\"quorum\":{\"ops\":{\"exec\":0}}}", "quorum.ops.exec");
	refuse("{\"quorum\":{\"ops\":{\"bad op\":1}}}", "quorum.ops");
	refuse("{\"quorum\":{\"ops\":[]}}", "quorum.ops");
	refuse("{\"quorum\":2}", "quorum");
	refuse("{\"tls_cert\":\"\"}", "tls_cert");
	refuse("{\"tls_cert\":7}", "tls_cert");
	refuse("{\"tls_key\":\"a\\nb\"}", "tls_key");
	refuse("{\"api_socket\":\"/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa.sock\"}", "api_socket");
	refuse("{\"api_listen\":\"0.0.0.0:9443\"}", "api_client_ca");
	refuse("{\"api_listen\":\"nope\",\"api_client_ca\":\"/ca\"}", "api_listen");
	refuse("{\"notify\":{\"command\":[\"relative\"]}}", "notify.command[0]");
	refuse("{\"notify\":{\"command\":[\"/bin/x\",\"\"]}}", "notify.command[1]");
	refuse("{\"notify\":{\"command\":[\"/bin/x\",3]}}", "notify.command[1]");
	refuse("{\"notify\":{\"command\":\"/bin/x\"}}", "notify.command");
	refuse("{\"notify\":{\"command\":[\"/a\",\"1\",\"2\",\"3\",\"4\",\"5\",\"6\",\"7\",\"8\","
	    "\"9\",\"10\",\"11\",\"12\",\"13\",\"14\",\"15\",\"16\"]}}", "notify.command");
	refuse("{\"notify\":{\"webhook\":\"http://x.example/\"}}", "notify.webhook");
	refuse("{\"notify\":{\"webhook\":\"https://x.example/a b\"}}", "notify.webhook");
	refuse("{\"notify\":{\"webhook\":\"https:///path\"}}", "notify.webhook");
	refuse("{\"notify\":{\"webhook\":\"https://x.example/#frag\"}}", "notify.webhook");
	/* webhook_ca: a path string, and only with a webhook to trust it for. */
	refuse("{\"notify\":{\"webhook_ca\":\"ca.pem\"}}", "notify.webhook_ca");
	refuse("{\"notify\":{\"webhook\":\"\",\"webhook_ca\":\"/etc/ca.pem\"}}",
	    "notify.webhook_ca");
	refuse("{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":3}}",
	    "notify.webhook_ca");
	refuse("{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":[\"a\"]}}",
	    "notify.webhook_ca");
	refuse("{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":null}}",
	    "notify.webhook_ca");
	refuse("{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":\"a\\nb\"}}",
	    "notify.webhook_ca");
	refuse("{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":\"a\\u0000b\"}}",
	    "strict JSON");
	refuse("{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":\"a\","
	    "\"webhook_ca\":\"b\"}}", "strict JSON");
	refuse("{\"notify\":{\"webhook_CA\":\"a\"}}", "unknown field 'notify.webhook_CA'");
	{
		/* Longer than a path once the state folder is put in front. */
		size_t n = SETTINGS_PATH_MAX - 8;
		const char *pre = "{\"notify\":{\"webhook\":\"https://h.example/\",\"webhook_ca\":\"";
		char *text = malloc(strlen(pre) + n + 8);

		assert_non_null(text);
		strcpy(text, pre);
		memset(text + strlen(pre), 'a', n);
		strcpy(text + strlen(pre) + n, "\"}}");
		refuse(text, "notify.webhook_ca");
		free(text);
	}
}

static void
test_refuses_urls(void **state)
{
	(void)state;
	refuse("{\"listen\":\"127.0.0.1\"}", "listen");
	refuse("{\"listen\":\"127.0.0.1:0\"}", "listen");
	refuse("{\"listen\":\"127.0.0.1:65536\"}", "listen");
	refuse("{\"listen\":\"127.0.0.1:08443\"}", "listen");
	refuse("{\"listen\":\":8443\"}", "listen");
	refuse("{\"listen\":\"[::1:8443\"}", "listen");
	refuse("{\"listen\":\"host name:1\"}", "listen");
	refuse("{\"public_url\":\"http://localhost:8443\"}", "public_url");
	refuse("{\"public_url\":\"https://localhost:8443/\"}", "public_url");
	refuse("{\"public_url\":\"https://localhost:8443/approve\"}", "public_url");
	refuse("{\"public_url\":\"https://localhost:8443?x=1\"}", "public_url");
	refuse("{\"public_url\":\"https://user@localhost:8443\"}", "public_url");
	refuse("{\"public_url\":\"https://LocalHost:8443\"}", "public_url");
	refuse("{\"public_url\":\"https://localhost:443\"}", "public_url");
	refuse("{\"public_url\":\"https://\"}", "public_url");
	refuse("{\"public_url\":\"https://-bad.example\"}", "public_url");
	refuse("{\"public_url\":\"https://a..b\"}", "public_url");
	refuse("{\"public_url\":\"https://localhost:\"}", "public_url");
	/* The rp id: the host or a parent domain of it, never an address. */
	refuse("{\"public_url\":\"https://a.example.com\",\"rp_id\":\"b.example.com\"}", "rp_id");
	refuse("{\"public_url\":\"https://a.example.com\",\"rp_id\":\"xample.com\"}", "rp_id");
	refuse("{\"public_url\":\"https://example.com\",\"rp_id\":\"a.example.com\"}", "rp_id");
	refuse("{\"public_url\":\"https://localhost:8443\",\"rp_id\":\"LOCALHOST\"}", "rp_id");
	refuse("{\"public_url\":\"https://localhost:8443\",\"rp_id\":\"\"}", "rp_id");
	refuse("{\"public_url\":\"https://127.0.0.1:8443\"}", "rp_id");
	refuse("{\"public_url\":\"https://[::1]:8443\"}", "rp_id");
	refuse("{\"public_url\":\"https://x.example\",\"rp_id\":\".example\"}", "rp_id");
}

static void
test_too_large(void **state)
{
	size_t n = SETTINGS_MAX_BYTES + 2;
	char *big = malloc(n + 1);
	struct settings *s = NULL;
	char err[256] = "";

	(void)state;
	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	big[n] = '\0';
	assert_int_not_equal(settings_parse(STATE, big, n, &s, err, sizeof(err)), 0);
	assert_null(s);
	assert_non_null(strstr(err, "larger"));
	free(big);
}

static void
test_load(void **state)
{
	char dir[] = "/tmp/test_settings.XXXXXX", path[128], link[128];
	struct settings *s = NULL;
	char err[512] = "";
	FILE *fp;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(settings_load(dir, &s, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "approver.json"));
	snprintf(path, sizeof(path), "%s/approver.json", dir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"threads\":2}", fp);
	fclose(fp);
	assert_int_equal(settings_load(dir, &s, err, sizeof(err)), 0);
	assert_int_equal(s->threads, 2);
	settings_free(s);
	s = NULL;
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs("{\"threads\":0}", fp);
	fclose(fp);
	assert_int_not_equal(settings_load(dir, &s, err, sizeof(err)), 0);
	assert_non_null(strstr(err, "approver.json"));
	assert_non_null(strstr(err, "threads"));
	/* A symlinked configuration is refused. */
	unlink(path);
	snprintf(link, sizeof(link), "%s/real.json", dir);
	fp = fopen(link, "w");
	assert_non_null(fp);
	fputs("{}", fp);
	fclose(fp);
	assert_int_equal(symlink(link, path), 0);
	assert_int_equal(settings_load(dir, &s, err, sizeof(err)), -ELOOP);
	unlink(path);
	unlink(link);
	rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_default_text_parses),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_refuses_syntax),
		cmocka_unit_test(test_refuses_values),
		cmocka_unit_test(test_refuses_urls),
		cmocka_unit_test(test_too_large),
		cmocka_unit_test(test_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
