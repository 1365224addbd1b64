/* secmem: memory for long-lived secrets. Pages are mlocked, excluded from
 * core dumps and wiped on fork; freeing wipes them first. */
#ifndef WARRANT_SECMEM_H
#define WARRANT_SECMEM_H

#include <stddef.h>

/* Returns NULL (errno set) if the pages cannot be mapped or locked: a
 * secret that could be swapped out is refused, not silently accepted. */
void *secmem_alloc(size_t n);
void secmem_free(void *p, size_t n);

/* Make this process non-dumpable and disable core files. */
int secmem_harden_process(void);

#endif
