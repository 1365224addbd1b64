/* b64url: unpadded base64url (RFC 4648 section 5), strict on input. */
#ifndef WARRANT_B64URL_H
#define WARRANT_B64URL_H

#include <stddef.h>
#include <stdint.h>

/* Characters needed to encode n bytes, without the terminating NUL. */
size_t b64url_encoded_len(size_t n);

/* Encode n bytes into out (NUL-terminated). -ENOBUFS if outsz is too small. */
int b64url_encode(const uint8_t *in, size_t n, char *out, size_t outsz);

/* Decode exactly len characters. Rejects padding, characters outside the
 * alphabet, impossible lengths and non-zero trailing bits, so every byte
 * string has exactly one accepted encoding. -EINVAL on bad input,
 * -ENOBUFS if outsz is too small; *ret_len is written only on success. */
int b64url_decode(const char *in, size_t len, uint8_t *out, size_t outsz, size_t *ret_len);

#endif
