/* Targets manifest_parse (lib/manifest.c): the launch manifest. Paths are
 * resolved against a private folder made at start that holds a kernel, an
 * initrd, a rootfs, a workspace, a subfolder and symbolic links, so that
 * the path checks are reached too. Any input yields a manifest whose
 * canonical config dumps, or an error line naming what is wrong. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cjson.h"
#include "manifest.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char base[256];

static void
cleanup(void)
{
	static const char *const names[] = {
		"kernel", "initrd", "rootfs", "sub/k", "link", "sub", "ws", NULL,
	};
	char p[512];
	size_t i;

	for (i = 0; names[i] != NULL; i++) {
		(void)snprintf(p, sizeof(p), "%s/%s", base, names[i]);
		if (unlink(p) != 0)
			(void)rmdir(p);
	}
	(void)rmdir(base);
}

static void
touch(const char *name, const char *data)
{
	char p[512];
	FILE *f;

	(void)snprintf(p, sizeof(p), "%s/%s", base, name);
	f = fopen(p, "w");
	if (f == NULL)
		abort();
	(void)fputs(data, f);
	(void)fclose(f);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	const char *tmp = getenv("TMPDIR");
	char p[512], *real;

	(void)argc;
	(void)argv;
	(void)snprintf(p, sizeof(p), "%s/fuzz_manifest.XXXXXX", tmp != NULL ? tmp : "/tmp");
	if (mkdtemp(p) == NULL || (real = realpath(p, NULL)) == NULL || strlen(real) >= sizeof(base))
		abort();
	memcpy(base, real, strlen(real) + 1);
	free(real);
	touch("kernel", "K");
	touch("initrd", "I");
	touch("rootfs", "R");
	(void)snprintf(p, sizeof(p), "%s/sub", base);
	(void)mkdir(p, 0700);
	(void)snprintf(p, sizeof(p), "%s/ws", base);
	(void)mkdir(p, 0700);
	touch("sub/k", "k");
	(void)snprintf(p, sizeof(p), "%s/link", base);
	(void)symlink("kernel", p);
	(void)atexit(cleanup);
	return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct manifest *m = NULL;
	char err[512];
	json_t *cfg;
	char *s = NULL;
	size_t len;
	int r;

	err[0] = '\0';
	r = manifest_parse((const char *)data, size, base, &m, err, sizeof(err));
	if (r == 0) {
		if (m == NULL || m->kernel[0] != '/' || m->initrd[0] != '/' ||
		    m->vcpus < 1 || m->vcpus > 32 || m->memory_mib < 64 ||
		    m->memory_mib > 65536 || !json_is_object(m->envelope) ||
		    strlen(m->cmdline) > MANIFEST_CMDLINE_MAX)
			__builtin_trap();
		cfg = manifest_config(m);
		if (cfg == NULL || cjson_dump(cfg, &s, &len) != 0)
			__builtin_trap();
		free(s);
		json_decref(cfg);
		manifest_free(m);
	} else if (m != NULL || r > 0 || strncmp(err, "manifest: ", 10) != 0) {
		__builtin_trap();
	}
	return 0;
}
