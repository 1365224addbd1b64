/* keystore: the provisioned state directory that attest-keys writes and
 * attestd reads (docs/provisioning.md). Holds only TPM-wrapped blobs, names
 * and the policy; nothing in it is usable without the TPM that made it. */
#ifndef WARRANT_KEYSTORE_H
#define WARRANT_KEYSTORE_H

#include <stddef.h>
#include <stdint.h>

#include "tpm.h"

#define KEYSTORE_MAX_GENS 16

struct keystore_gen {
	uint32_t gen;
	int64_t created;      /* unix seconds */
	int64_t retired;      /* when the next generation replaced it; 0 = current */
	uint8_t name[TPM_NAME_MAX];
	size_t name_len;
	struct tpm_blob blob;
};

struct keystore {
	struct tpm_pcr_sel pcrs;
	uint8_t policy[32];
	uint8_t srk_name[TPM_NAME_MAX];
	size_t srk_name_len;
	size_t n_gens;                        /* oldest first */
	struct keystore_gen gens[KEYSTORE_MAX_GENS];
	uint8_t ak_name[TPM_NAME_MAX];
	size_t ak_name_len;
	struct tpm_blob ak;
};

/* Read <dir>/keys.json and the blobs it names. -ENOENT if not provisioned. */
int keystore_load(const char *dir, struct keystore **ret);
/* The same, describing a failure in err (which file, what is wrong) for
 * the caller's message. */
int keystore_load_verbose(const char *dir, struct keystore **ret, char *err, size_t err_len);
/* Write blobs (0600) then keys.json atomically, last. */
int keystore_save(const char *dir, const struct keystore *ks);
void keystore_free(struct keystore *ks);
/* The newest generation (the one attestd mints with); NULL if none. */
const struct keystore_gen *keystore_current(const struct keystore *ks);
const struct keystore_gen *keystore_find(const struct keystore *ks, uint32_t gen);

#endif
