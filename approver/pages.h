/* pages: the HTML of the web form. Every function writes into an html
 * buffer; text from outside (requests, reasons, names) always goes through
 * html_text/html_attr. Ids and labels are part of the interface the
 * browser tests use: #username, #password, #reason, button#approve,
 * button#deny, button#add-passkey, table#requests, #state, #digest,
 * #enrolment, and .error (role=alert) for errors. */
#ifndef WARRANT_APPROVER_PAGES_H
#define WARRANT_APPROVER_PAGES_H

#include <stdbool.h>
#include <stdint.h>

#include "html.h"
#include "store.h"

/* Who is signed in (NULL on the login page) and the token of the
 * sign-out form. */
struct pages_user {
	const char *name;
	const char *role;
	const char *csrf_global;
};

void pages_begin(struct html *h, const char *title, const struct pages_user *u,
    const char *script /* NULL or "/static/x.js" */);
void pages_end(struct html *h);
void pages_error(struct html *h, const char *msg);
void pages_notice(struct html *h, const char *msg);
/* A whole page with one message. */
void pages_message(struct html *h, const char *title, const struct pages_user *u,
    const char *msg, bool is_error);

void pages_login(struct html *h, const char *csrf, const char *username, const char *error);

/* The list of requests: filters, then rows. */
void pages_requests_begin(struct html *h, const char *title, const char *action,
    const char *state, const char *op, const char *vm, bool show_filters);
void pages_requests_row(struct html *h, const struct store_request *r);
void pages_requests_end(struct html *h, int64_t rows, const char *action, const char *state,
    const char *op, const char *vm, uint64_t page, bool more);

/* One request. attestd_knows: 1, 0 or negative (could not ask). */
void pages_request_head(struct html *h, const struct store_request *r, const char *canonical,
    int attestd_knows);
void pages_decisions_begin(struct html *h);
void pages_decision_row(struct html *h, const struct store_decision *d);
void pages_decisions_end(struct html *h, int64_t rows);
/* The decision form; cred_ids: the person's credential ids, base64url,
 * comma-separated. */
void pages_decide_form(struct html *h, const struct store_request *r, const char *csrf,
    const char *rp_id, const char *cred_ids);

void pages_audit_begin(struct html *h);
void pages_audit_row(struct html *h, const struct store_audit *a);
void pages_audit_end(struct html *h, int64_t rows, int64_t next_before);

/* The passkeys page: the person's credentials with their enrolment
 * records, newest last; newest_record is shown as #enrolment. */
void pages_passkeys_begin(struct html *h, const char *csrf);
void pages_passkey_row(struct html *h, const struct store_credential *c, const char *record);
void pages_passkeys_end(struct html *h, int64_t rows, const char *newest_record);

#endif
