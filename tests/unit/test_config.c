/* Unit tests for attestd/config.c: defaults, every field's errors (each
 * message must name the field), role resolution and the default roles. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../attestd/config.h"

static int
parse(const char *s, struct config **ret, char *err, size_t n)
{
	err[0] = '\0';
	return config_parse(s, strlen(s), ret, err, n);
}

/* The text must be refused with a message that mentions `field`. */
static void
expect_error(const char *text, const char *field)
{
	struct config *c = NULL;
	char err[512];
	int r;

	r = parse(text, &c, err, sizeof(err));
	if (r >= 0 || strstr(err, field) == NULL)
		print_error("config %s: r=%d err='%s' (wanted the field '%s')\n", text, r, err, field);
	assert_true(r < 0);
	assert_null(c);
	assert_non_null(strstr(err, field));
}

static void
test_defaults(void **state)
{
	struct config *c = NULL;
	char err[256];

	(void)state;
	unsetenv("WARRANT_TCTI");
	assert_int_equal(parse("{}", &c, err, sizeof(err)), 0);
	assert_string_equal(c->state_dir, CONFIG_DEFAULT_STATE);
	assert_string_equal(c->socket, CONFIG_DEFAULT_SOCKET);
	assert_string_equal(c->tcti, CONFIG_DEFAULT_TCTI);
	assert_int_equal(c->mode, CONFIG_MODE_EPOCH);
	assert_int_equal(c->epoch_seconds, 3600);
	assert_int_equal(c->max_ttl_seconds, 3600);
	assert_int_equal(c->default_ttl_seconds, 300);
	assert_int_equal(c->health_interval_seconds, 5);
	assert_int_equal(c->max_connections, 64);
	assert_false(c->has_socket_group);
	assert_false(c->has_roles);
	/* Roles are granted by the effective uid, which SO_PEERCRED reports. */
	assert_int_equal(c->self_uid, geteuid());
	/* The launch socket and the event log follow socket and state_dir
	 * unless set: filled by config_derive. */
	assert_string_equal(c->launch_socket, "");
	assert_string_equal(c->event_log_dir, "");
	assert_int_equal(c->launch_pcr, 15);
	assert_int_equal(config_derive(c, err, sizeof(err)), 0);
	assert_string_equal(c->launch_socket, "/run/warrant/attestd-launch.sock");
	assert_string_equal(c->event_log_dir, "/var/lib/warrant/events");
	config_free(c);

	setenv("WARRANT_TCTI", "swtpm:path=/tmp/x.sock", 1);
	assert_int_equal(parse("{}", &c, err, sizeof(err)), 0);
	assert_string_equal(c->tcti, "swtpm:path=/tmp/x.sock");
	config_free(c);
	unsetenv("WARRANT_TCTI");
}

static void
test_full(void **state)
{
	struct config *c = NULL;
	char err[256];
	const char *text =
	    "{\"state_dir\":\"/var/lib/w\",\"socket\":\"/run/w.sock\",\"tcti\":\"swtpm:path=/t\","
	    "\"mode\":\"strict\",\"epoch_seconds\":60,\"max_ttl_seconds\":86400,"
	    "\"default_ttl_seconds\":86400,"
	    "\"health_interval_seconds\":300,\"max_connections\":1024,"
	    "\"launch_socket\":\"/run/l.sock\",\"launch_pcr\":23,\"event_log_dir\":\"/e\","
	    "\"socket_group\":\"root\",\"roles\":{\"root\":[\"admin\"],"
	    "\"65534\":[\"mint\",\"verify:proxy\",\"verify:vmhost\"],\"1000\":[\"verify:*\"],"
	    "\"1001\":[]}}";

	(void)state;
	assert_int_equal(parse(text, &c, err, sizeof(err)), 0);
	assert_string_equal(c->state_dir, "/var/lib/w");
	assert_string_equal(c->socket, "/run/w.sock");
	assert_string_equal(c->tcti, "swtpm:path=/t");
	assert_int_equal(c->mode, CONFIG_MODE_STRICT);
	assert_int_equal(c->epoch_seconds, 60);
	assert_int_equal(c->max_ttl_seconds, 86400);
	assert_int_equal(c->default_ttl_seconds, 86400);
	assert_int_equal(c->health_interval_seconds, 300);
	assert_int_equal(c->max_connections, 1024);
	assert_true(c->has_socket_group);
	assert_int_equal(c->socket_gid, 0);
	assert_true(c->has_roles);
	assert_int_equal(c->n_grants, 4);
	assert_string_equal(c->launch_socket, "/run/l.sock");
	assert_int_equal(c->launch_pcr, 23);
	assert_string_equal(c->event_log_dir, "/e");
	assert_int_equal(config_derive(c, err, sizeof(err)), 0);
	assert_string_equal(c->launch_socket, "/run/l.sock");
	assert_string_equal(c->event_log_dir, "/e");
	config_free(c);
}

static void
test_bad_fields(void **state)
{
	(void)state;
	expect_error("{\"bogus\":1}", "bogus");
	expect_error("{\"state_dir\":1}", "state_dir");
	expect_error("{\"state_dir\":\"relative/path\"}", "state_dir");
	expect_error("{\"state_dir\":\"\"}", "state_dir");
	expect_error("{\"socket\":\"/a/very/long/socket/path/that/does/not/fit/into/sun_path/"
	    "because/it/is/longer/than/one/hundred/and/seven/bytes.sock\"}", "socket");
	expect_error("{\"tcti\":true}", "tcti");
	expect_error("{\"mode\":\"fast\"}", "mode");
	expect_error("{\"mode\":1}", "mode");
	expect_error("{\"epoch_seconds\":59}", "epoch_seconds");
	expect_error("{\"epoch_seconds\":86401}", "epoch_seconds");
	expect_error("{\"epoch_seconds\":\"3600\"}", "epoch_seconds");
	expect_error("{\"epoch_seconds\":-1}", "epoch_seconds");
	expect_error("{\"max_ttl_seconds\":0}", "max_ttl_seconds");
	expect_error("{\"max_ttl_seconds\":86401}", "max_ttl_seconds");
	expect_error("{\"default_ttl_seconds\":0}", "default_ttl_seconds");
	expect_error("{\"default_ttl_seconds\":600,\"max_ttl_seconds\":300}",
	    "default_ttl_seconds");
	/* Not an attestd setting (each verifier allows its own skew): refused
	 * by name, whatever its value, rather than parsed and ignored. */
	expect_error("{\"clock_skew_seconds\":30}", "clock_skew_seconds");
	expect_error("{\"clock_skew_seconds\":301}", "clock_skew_seconds");
	expect_error("{\"health_interval_seconds\":0}", "health_interval_seconds");
	expect_error("{\"health_interval_seconds\":301}", "health_interval_seconds");
	expect_error("{\"max_connections\":0}", "max_connections");
	expect_error("{\"max_connections\":1025}", "max_connections");
	expect_error("{\"socket_group\":\"no-such-group-here\"}", "socket_group");
	expect_error("{\"socket_group\":[]}", "socket_group");
	expect_error("{\"roles\":[]}", "roles");
	expect_error("{\"roles\":{\"0\":\"admin\"}}", "roles");
	expect_error("{\"roles\":{\"0\":[1]}}", "roles");
	expect_error("{\"roles\":{\"0\":[\"root\"]}}", "roles.0");
	expect_error("{\"roles\":{\"0\":[\"verify:\"]}}", "roles.0");
	expect_error("{\"roles\":{\"0\":[\"verify:bad/aud\"]}}", "roles.0");
	expect_error("{\"roles\":{\"0\":[\"mint\",\"mint\"]}}", "roles.0");
	expect_error("{\"roles\":{\"0\":[\"verify:a\",\"verify:a\"]}}", "roles.0");
	expect_error("{\"roles\":{\"no-such-user-here\":[\"mint\"]}}", "roles");
	expect_error("{\"roles\":{\"0\":[\"mint\"],\"root\":[\"admin\"]}}", "roles");
	expect_error("{\"roles\":{\"007\":[\"mint\"]}}", "roles");
	expect_error("{\"roles\":{\"4294967295\":[\"mint\"]}}", "roles");
	expect_error("{\"roles\":{\"0\":[\"launch\",\"launch\"]}}", "roles.0");
	expect_error("{\"launch_socket\":\"rel.sock\"}", "launch_socket");
	expect_error("{\"launch_socket\":1}", "launch_socket");
	expect_error("{\"launch_socket\":\"/run/warrant/attestd.sock\"}", "launch_socket");
	expect_error("{\"launch_pcr\":24}", "launch_pcr");
	expect_error("{\"launch_pcr\":-1}", "launch_pcr");
	expect_error("{\"launch_pcr\":\"15\"}", "launch_pcr");
	expect_error("{\"event_log_dir\":\"events\"}", "event_log_dir");
	expect_error("{\"event_log_dir\":\"\"}", "event_log_dir");
}

static void
test_bad_json(void **state)
{
	struct config *c = NULL;
	char err[256];

	(void)state;
	/* Duplicate keys, reals, trailing data, not an object. */
	assert_true(parse("{\"mode\":\"epoch\",\"mode\":\"strict\"}", &c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "duplicate"));
	assert_true(parse("{\"epoch_seconds\":3600.0}", &c, err, sizeof(err)) < 0);
	assert_true(parse("{} {}", &c, err, sizeof(err)) < 0);
	assert_true(parse("[]", &c, err, sizeof(err)) < 0);
	assert_true(parse("", &c, err, sizeof(err)) < 0);
	assert_true(parse("{\"roles\":{\"0\":[\"mint\"],\"0\":[]}}", &c, err, sizeof(err)) < 0);
	assert_null(c);
}

static void
test_roles(void **state)
{
	struct config *c = NULL;
	const struct config_grant *g;
	char err[256];

	(void)state;
	assert_int_equal(parse("{\"roles\":{\"root\":[\"admin\",\"mint\"],"
	    "\"nobody\":[\"verify:proxy\",\"verify:vmhost\"],\"1000\":[\"verify:*\"],"
	    "\"1001\":[]}}", &c, err, sizeof(err)), 0);

	g = config_grant_for(c, 0);
	assert_non_null(g);
	assert_true(config_allows(g, CONFIG_ROLE_ADMIN, NULL));
	assert_true(config_allows(g, CONFIG_ROLE_MINT, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_LAUNCH, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_VERIFY, "proxy"));

	g = config_grant_for(c, 65534);
	assert_non_null(g);
	assert_false(config_allows(g, CONFIG_ROLE_ADMIN, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_MINT, NULL));
	assert_true(config_allows(g, CONFIG_ROLE_VERIFY, "proxy"));
	assert_true(config_allows(g, CONFIG_ROLE_VERIFY, "vmhost"));
	assert_false(config_allows(g, CONFIG_ROLE_VERIFY, "approver"));
	assert_false(config_allows(g, CONFIG_ROLE_VERIFY, "prox"));
	assert_false(config_allows(g, CONFIG_ROLE_VERIFY, NULL));

	g = config_grant_for(c, 1000);
	assert_true(config_allows(g, CONFIG_ROLE_VERIFY, "anything"));
	assert_false(config_allows(g, CONFIG_ROLE_MINT, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_LAUNCH, NULL));

	/* Listed with no role, or not listed: no role at all. */
	assert_null(config_grant_for(c, 1001));
	assert_null(config_grant_for(c, 4242));
	assert_false(config_allows(NULL, CONFIG_ROLE_MINT, NULL));
	/* roles given: attestd's own uid gets nothing implicitly. */
	c->self_uid = 4242;
	assert_null(config_grant_for(c, 4242));
	config_free(c);

	/* launch alone: the launch socket and status, nothing else. */
	assert_int_equal(parse("{\"roles\":{\"1002\":[\"launch\"]}}", &c, err, sizeof(err)), 0);
	g = config_grant_for(c, 1002);
	assert_non_null(g);
	assert_true(config_allows(g, CONFIG_ROLE_LAUNCH, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_MINT, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_ADMIN, NULL));
	assert_false(config_allows(g, CONFIG_ROLE_VERIFY, "vmhost"));
	config_free(c);
}

static void
test_default_roles(void **state)
{
	struct config *c = NULL;
	const struct config_grant *g;
	char err[256];

	(void)state;
	assert_int_equal(parse("{}", &c, err, sizeof(err)), 0);
	c->self_uid = 999;
	g = config_grant_for(c, 0);
	assert_true(config_allows(g, CONFIG_ROLE_ADMIN, NULL));
	assert_true(config_allows(g, CONFIG_ROLE_MINT, NULL));
	assert_true(config_allows(g, CONFIG_ROLE_VERIFY, "proxy"));
	assert_true(config_allows(g, CONFIG_ROLE_LAUNCH, NULL));
	g = config_grant_for(c, 999);
	assert_true(config_allows(g, CONFIG_ROLE_MINT, NULL));
	assert_true(config_allows(g, CONFIG_ROLE_LAUNCH, NULL));
	assert_null(config_grant_for(c, 1000));
	config_free(c);
}

static void
test_check(void **state)
{
	struct config *c = NULL;
	char err[256];

	(void)state;
	assert_int_equal(config_new(&c), 0);
	assert_int_equal(config_check(c, err, sizeof(err)), 0);
	c->epoch_seconds = 59;   /* as --epoch-seconds could set it */
	assert_true(config_check(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "epoch_seconds"));
	c->epoch_seconds = 60;
	c->default_ttl_seconds = c->max_ttl_seconds + 1;
	assert_true(config_check(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "default_ttl_seconds"));
	c->default_ttl_seconds = c->max_ttl_seconds;
	assert_int_equal(config_check(c, err, sizeof(err)), 0);
	/* --socket and --state-dir bypass the parser: relative paths are
	 * refused here. */
	(void)snprintf(c->socket, sizeof(c->socket), "attestd.sock");
	assert_true(config_check(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "socket"));
	(void)snprintf(c->socket, sizeof(c->socket), "/run/a.sock");
	(void)snprintf(c->state_dir, sizeof(c->state_dir), "keys");
	assert_true(config_check(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "state_dir"));
	/* The derived paths follow the overridden ones. */
	(void)snprintf(c->state_dir, sizeof(c->state_dir), "/srv/w/");
	assert_int_equal(config_derive(c, err, sizeof(err)), 0);
	assert_string_equal(c->launch_socket, "/run/attestd-launch.sock");
	assert_string_equal(c->event_log_dir, "/srv/w/events");
	/* --launch-socket bypasses the parser too. */
	(void)snprintf(c->launch_socket, sizeof(c->launch_socket), "l.sock");
	assert_true(config_check(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "launch_socket"));
	(void)snprintf(c->launch_socket, sizeof(c->launch_socket), "/run/a.sock");
	assert_true(config_check(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "launch_socket"));
	config_free(c);

	/* A socket deep enough that the launch socket beside it would not fit
	 * in sun_path: refused by name, not truncated. */
	assert_int_equal(config_new(&c), 0);
	(void)snprintf(c->socket, sizeof(c->socket), "/%095d/a.sock", 0);
	assert_true(config_derive(c, err, sizeof(err)) < 0);
	assert_non_null(strstr(err, "launch_socket"));
	config_free(c);
}

static void
test_load(void **state)
{
	char dir[] = "/tmp/test_config.XXXXXX", path[256], link[256];
	struct config *c = NULL;
	char err[256];
	int fd;

	(void)state;
	assert_non_null(mkdtemp(dir));
	(void)snprintf(path, sizeof(path), "%s/attestd.json", dir);
	(void)snprintf(link, sizeof(link), "%s/link.json", dir);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), -ENOENT);
	fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "{\"epoch_seconds\":120}", 21), 21);
	(void)close(fd);
	assert_int_equal(config_load(path, &c, err, sizeof(err)), 0);
	assert_int_equal(c->epoch_seconds, 120);
	config_free(c);
	c = NULL;
	assert_int_equal(symlink(path, link), 0);
	assert_true(config_load(link, &c, err, sizeof(err)) < 0);
	assert_null(c);
	(void)unlink(link);
	(void)unlink(path);
	(void)rmdir(dir);
}

static void
test_approvals(void **state)
{
	struct config *c = NULL;
	char err[512];
	char big[2048];
	size_t i;
	int n;

	(void)state;
	/* Absent: not configured, no quorum. */
	assert_int_equal(parse("{}", &c, err, sizeof(err)), 0);
	assert_false(c->approvals.configured);
	assert_int_equal(config_quorum(c, "exec"), 0);
	config_free(c);
	c = NULL;

	assert_int_equal(parse("{\"approvals\":{\"rp_id\":\"localhost\","
	    "\"origins\":[\"https://localhost:8443\",\"https://approve.example.org\"],"
	    "\"quorum\":{\"default\":1,\"ops\":{\"exec\":2,\"fs/write\":16}}}}",
	    &c, err, sizeof(err)), 0);
	assert_true(c->approvals.configured);
	assert_string_equal(c->approvals.rp_id, "localhost");
	assert_int_equal(c->approvals.n_origins, 2);
	assert_string_equal(c->approvals.origins[1], "https://approve.example.org");
	assert_int_equal(config_quorum(c, "exec"), 2);
	assert_int_equal(config_quorum(c, "fs/write"), 16);
	assert_int_equal(config_quorum(c, "fs.read"), 1);
	config_free(c);
	c = NULL;

	/* The default quorum is 1 without a "quorum" member. */
	assert_int_equal(parse("{\"approvals\":{\"rp_id\":\"a.b\",\"origins\":"
	    "[\"https://a.b\"]}}", &c, err, sizeof(err)), 0);
	assert_int_equal(config_quorum(c, "anything"), 1);
	config_free(c);
	c = NULL;
	assert_int_equal(parse("{\"approvals\":{\"rp_id\":\"a.b\",\"origins\":"
	    "[\"https://a.b\"],\"quorum\":{\"default\":3}}}", &c, err, sizeof(err)), 0);
	assert_int_equal(config_quorum(c, "anything"), 3);
	config_free(c);
	c = NULL;

	expect_error("{\"approvals\":1}", "approvals");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"extra\":1}}", "approvals.extra");
	expect_error("{\"approvals\":{\"origins\":[\"https://x\"]}}", "approvals.rp_id");
	expect_error("{\"approvals\":{\"rp_id\":\"\",\"origins\":[\"https://x\"]}}",
	    "approvals.rp_id");
	expect_error("{\"approvals\":{\"rp_id\":\"bad host\",\"origins\":[\"https://x\"]}}",
	    "approvals.rp_id");
	expect_error("{\"approvals\":{\"rp_id\":\"a..b\",\"origins\":[\"https://x\"]}}",
	    "approvals.rp_id");
	expect_error("{\"approvals\":{\"rp_id\":7,\"origins\":[\"https://x\"]}}",
	    "approvals.rp_id");
	expect_error("{\"approvals\":{\"rp_id\":\"x\"}}", "approvals.origins");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[]}}", "approvals.origins");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":\"https://x\"}}",
	    "approvals.origins");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"http://x\"]}}",
	    "approvals.origins[0]");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://\"]}}",
	    "approvals.origins[0]");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\","
	    "\"https://x/path\"]}}", "approvals.origins[1]");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\","
	    "\"https://x\"]}}", "approvals.origins[1]");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[1]}}",
	    "approvals.origins[0]");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://a\",\"https://b\","
	    "\"https://c\",\"https://d\",\"https://e\",\"https://f\",\"https://g\",\"https://h\","
	    "\"https://i\"]}}", "approvals.origins");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"default\":0}}}", "approvals.quorum.default");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"default\":17}}}", "approvals.quorum.default");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"default\":\"2\"}}}", "approvals.quorum.default");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"min\":2}}}", "approvals.quorum.min");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"ops\":{\"exec\":0}}}}", "approvals.quorum.ops.exec");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"ops\":{\"exec\":17}}}}", "approvals.quorum.ops.exec");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"ops\":{\"bad op\":1}}}}", "approvals.quorum.ops");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":{\"ops\":[1]}}}", "approvals.quorum.ops");
	expect_error("{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://x\"],"
	    "\"quorum\":[]}}", "approvals.quorum");
	/* An origin one character over 255. */
	n = snprintf(big, sizeof(big), "{\"approvals\":{\"rp_id\":\"x\",\"origins\":[\"https://");
	for (i = 0; i < 248; i++)
		big[n++] = 'a';
	(void)snprintf(big + n, sizeof(big) - (size_t)n, "\"]}}");
	expect_error(big, "approvals.origins[0]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_bad_json),
		cmocka_unit_test(test_roles),
		cmocka_unit_test(test_default_roles),
		cmocka_unit_test(test_check),
		cmocka_unit_test(test_load),
		cmocka_unit_test(test_approvals),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
