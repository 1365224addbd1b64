/* tlscert: a self-signed certificate for a first run (`approver init`):
 * an ECDSA P-256 key and a certificate for `host` (subjectAltName DNS and,
 * for 127.0.0.1, IP), valid for `days`, written 0600/0644 atomically. */
#ifndef WARRANT_APPROVER_TLSCERT_H
#define WARRANT_APPROVER_TLSCERT_H

int tlscert_make_self_signed(const char *cert_path, const char *key_path, const char *host,
    int days);

#endif
