#!/usr/bin/env bash
# The approver's API for tool proxies (docs/approvals.md, "The proxies'
# API") through the real parts: a private swtpm, attestd (the approver's
# uid holds the mint role), `approver init`, `user add` and `serve`, and
# curl on the API's unix socket as two different uids (two proxies).
# Submit, retry, conflict, long poll, pickup before approval, callers kept
# apart, cancel, expiry, the notify command (one that fails first, then
# works, while the request goes on), an approval through the web form with
# a software passkey and the token picked up once, and vmhost's checks of
# --approver.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/attestd_lib.sh"

APPROVER="$BIN/approver"
S="$T/approver"
APIDIR="$T/api"
API="$APIDIR/api.sock"
NOTE="$T/notify"
PW="correct horse battery staple"
APPROVER_PID=""

my_cleanup() {
	if [ -n "$APPROVER_PID" ]; then
		kill "$APPROVER_PID" 2>/dev/null
		wait "$APPROVER_PID" 2>/dev/null
	fi
	cleanup
}
trap my_cleanup EXIT

if [ ! -x "$APPROVER" ]; then
	skip "approver API (no $APPROVER)"
	finish
fi
for tool in swtpm curl jq python3 setpriv sqlite3; do
	command -v "$tool" >/dev/null 2>&1 || { skip "approver API: $tool not installed"; finish; }
done
if [ "$(id -u)" != 0 ]; then
	skip "approver API: needs root (the approver runs as nobody, a second proxy as daemon)"
	finish
fi

# --- vmhost's checks of --approver (no VM needed: they come first) ------------------------
vm_usage() {
	local out rc
	out=$("$BIN/vmhost" launch "$@" /nonexistent/manifest.json 2>&1)
	rc=$?
	[ "$rc" = 2 ] && grep -q "$VM_USAGE_WANT" <<<"$out"
}
VM_USAGE_WANT="expected the absolute path" check "vmhost: --approver relative.sock is a usage error" \
    vm_usage --approver relative.sock
VM_USAGE_WANT="not both" check "vmhost: --approver with --approval-spool is a usage error" \
    vm_usage --approver /run/a.sock --approval-spool /tmp/spool
VM_USAGE_WANT="needs --approver-cert" check "vmhost: an https --approver needs a client certificate" \
    vm_usage --approver https://approver.example:8444
VM_USAGE_WANT="is not a file" check "vmhost: --approver-cert must exist" \
    vm_usage --approver https://approver.example:8444 --approver-cert /nonexistent/c.pem \
    --approver-key /nonexistent/k.pem
VM_USAGE_WANT="go with --approver" check "vmhost: --owner without --approver is a usage error" \
    vm_usage --owner alice

# --- attestd, with the approver's uid allowed to mint --------------------------------------
tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
APORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="https://localhost:$PORT"
cat >"$T/attestd.json" <<EOF
{"health_interval_seconds":1,"socket_group":"nogroup",
 "roles":{"0":["admin","mint","launch","verify:*"],"65534":["mint"]},
 "approvals":{"rp_id":"localhost","origins":["$BASE"]}}
EOF
attestd_start --config "$T/attestd.json" || { fail "attestd starts"; finish; }
measure_default '{"fs.write":"ask","fs.read":"allow"}' || { fail "measure a VM"; finish; }

# --- the approver --------------------------------------------------------------------------
mkdir -p "$S" "$APIDIR" "$NOTE"
chown nobody:nogroup "$S" "$APIDIR" "$NOTE"
if ! "$APPROVER" --state-dir "$S" init --port "$PORT" --user nobody >"$T/init.log" 2>&1; then
	fail "approver init ($(tail -n 3 "$T/init.log" | tr '\n' ' '))"
	finish
fi
for u in alice bob; do
	if ! printf '%s\n' "$PW" | "$APPROVER" --state-dir "$S" user add "$u" --role approver \
	    >>"$T/init.log" 2>&1; then
		fail "approver user add $u ($(tail -n 3 "$T/init.log" | tr '\n' ' '))"
		finish
	fi
done
# The notify command fails the first time, then writes each summary to a
# file: a failure is retried while the request carries on.
# Proxies on other hosts: a CA, two proxies' client certificates, and one
# that the CA did not sign.
CA="$T/ca"
mkdir -p "$CA"
tls_ok=""
if command -v openssl >/dev/null 2>&1 &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2         -subj /CN=proxies-ca -keyout "$CA/ca.key" -out "$CA/ca.pem" >>"$T/check.log" 2>&1; then
	tls_ok=1
	for n in a b rogue; do
		openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=proxy-$n" 		    -keyout "$CA/$n.key" -out "$CA/$n.csr" >>"$T/check.log" 2>&1 || tls_ok=""
	done
	for n in a b; do
		openssl x509 -req -in "$CA/$n.csr" -CA "$CA/ca.pem" -CAkey "$CA/ca.key" 		    -CAcreateserial -days 2 -out "$CA/$n.pem" >>"$T/check.log" 2>&1 || tls_ok=""
	done
	openssl x509 -req -in "$CA/rogue.csr" -signkey "$CA/rogue.key" -days 2 	    -out "$CA/rogue.pem" >>"$T/check.log" 2>&1 || tls_ok=""
	chmod 0755 "$CA"
	chmod 0644 "$CA/ca.pem"
fi
python3 - "$S/approver.json" "$SOCK" "$API" "$NOTE" "${tls_ok:+$APORT}" "$CA/ca.pem" <<'PY' || { fail "edit approver.json"; finish; }
import json, sys
path, sock, api, note, aport, ca = sys.argv[1:7]
c = json.load(open(path))
c["attestd_socket"] = sock
c["api_socket"] = api
if aport:
    c["api_listen"] = "127.0.0.1:" + aport
    c["api_client_ca"] = ca
c["request_lifetime_seconds"] = 20
script = ('if [ -e %s/failed-once ]; then cat >>%s/summaries; echo >>%s/summaries; '
          'else : >%s/failed-once; exit 1; fi') % (note, note, note, note)
c["notify"] = {"command": ["/bin/sh", "-c", script], "webhook": ""}
json.dump(c, open(path, "w"), indent=2)
PY

# Alice's passkey: enrolled in attestd, and put into the approver's own
# store directly (a software passkey makes no attestation for the
# Passkeys page; the browser tests cover that page).
passkey_ok=""
if [ -x "$SOFT_PASSKEY" ] && passkey_new alice "$T/alice.key" ES256 &&
    "$BIN/attestctl" --socket "$SOCK" approvers add "$T/alice.key.enrol" >>"$T/check.log" 2>&1; then
	cid=$(jq -r .credential_id "$T/alice.key.enrol")
	pk=$(jq -r .public_key "$T/alice.key.enrol")
	if setpriv --reuid=nobody --regid=nogroup --clear-groups sqlite3 "$S/approver.db" \
	    "INSERT INTO credentials(user_id, cred_id, alg, public_key, sign_count, label, created)
	     SELECT id, X'$(b64url_hex "$cid")', -7, X'$(b64url_hex "$pk")', 0, 'soft', 0
	     FROM users WHERE name = 'alice';" >>"$T/check.log" 2>&1; then
		passkey_ok=1
	fi
fi

"$APPROVER" --state-dir "$S" serve --listen "127.0.0.1:$PORT" >>"$T/serve.log" 2>&1 &
APPROVER_PID=$!
up=""
for _ in $(seq 1 100); do
	if [ -S "$API" ] && [ "$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$API" \
	    http://approver/api/v1/requests/none)" = 404 ]; then
		up=1
		break
	fi
	kill -0 "$APPROVER_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$up" ]; then
	fail "approver serve did not come up ($(tail -n 5 "$T/serve.log" | tr '\n' ' '))"
	finish
fi
mode=$(stat -c %a "$API")
if [ "$mode" = 666 ]; then pass "the API socket is 0666 (callers told apart by uid)"; else fail "API socket mode $mode"; fi

# api [--as USER] METHOD PATH [BODY]: sets CODE and BODY.
api() {
	local pre=() out
	if [ "$1" = --as ]; then
		pre=(setpriv --reuid="$2" --regid="$2" --clear-groups)
		shift 2
	fi
	local m="$1" p="$2"
	shift 2
	if [ $# -gt 0 ]; then
		out=$("${pre[@]}" curl -s --max-time 40 --unix-socket "$API" -X "$m" \
		    -H 'Content-Type: application/json' --data-binary "$1" \
		    -w '\n%{http_code}' "http://approver$p")
	else
		out=$("${pre[@]}" curl -s --max-time 40 --unix-socket "$API" -X "$m" \
		    -w '\n%{http_code}' "http://approver$p")
	fi
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

ARGS='{"path":"/gated/x.txt","data":"hi"}'
# body ID [EXTRA_JSON]: a submission for the measured VM.
body() {
	local sha
	sha=$(python3 -c 'import hashlib,json,sys; print(hashlib.sha256(json.dumps(json.loads(sys.argv[1]),sort_keys=True,separators=(",",":")).encode()).hexdigest())' "$ARGS")
	jq -cn --arg id "$1" --arg vm "$VM" --arg ld "$LD" --arg sha "$sha" --argjson args "$ARGS" \
	    --argjson extra "${2:-{\}}" \
	    '{id:$id,aud:"proxy",vm:$vm,launch_digest:$ld,op:"fs.write",args:$args,
	      args_sha256:$sha,reason:"save the notes",requested_ttl:300} + $extra'
}

# --- submit, retry, conflict ----------------------------------------------------------------
api POST /api/v1/requests "$(body req-1)"
expect "submit: 201 with the digest" 201 '.id == "req-1" and .state == "pending" and (.digest | test("^[0-9a-f]{64}$")) and .expires > 0'
D1=$(field .digest)
want=$(approval_digest proxy "$VM" "$LD" fs.write "$ARGS" 300 req-1)
if [ "$D1" = "$want" ]; then pass "the digest is the canonical request's"; else fail "digest $D1, wanted $want"; fi
api POST /api/v1/requests "$(body req-1)"
expect "the same submission again: 200" 200 ".id == \"req-1\" and .digest == \"$D1\""
api POST /api/v1/requests "$(body req-1 '{"reason":"something else"}')"
expect "the same id with other content: 409" 409 '.error == "conflict"'
api POST /api/v1/requests "$(body req-x '{"args_sha256":"00"}')"
expect "a bad args_sha256: 400 naming the field" 400 '.error == "bad_request" and (.detail | contains("args_sha256"))'
api POST /api/v1/requests "$(body req-x '{"extra":1}')"
expect "an unknown field: 400" 400 '.error == "bad_request" and (.detail | contains("extra"))'
api POST /api/v1/requests '{"id":"a","id":"b"}'
expect "duplicate keys: 400" 400 '.error == "bad_request"'
code=$(head -c 200000 /dev/zero | tr '\0' 'a' | curl -s -o /dev/null -w '%{http_code}' \
    --unix-socket "$API" -H 'Content-Type: application/json' --data-binary @- \
    http://approver/api/v1/requests)
if [ "$code" = 413 ]; then pass "a body over 128 KiB: 413"; else fail "oversized body: HTTP $code"; fi
api GET /api/v1/nothing
expect "an unknown path: 404" 404 '.error == "not_found"'
api PUT /api/v1/requests/req-1
expect "a wrong method: 405" 405

# --- the long poll and pickup before approval ---------------------------------------------------
start=$SECONDS
api GET "/api/v1/requests/req-1?wait=2"
took=$((SECONDS - start))
if [ "$CODE" = 200 ] && [ "$(field .state)" = pending ] && [ "$took" -ge 1 ] && [ "$took" -le 5 ]; then
	pass "GET ?wait=2 holds about 2 s and answers pending"
else
	fail "long poll (HTTP $CODE, ${took}s: $BODY)"
fi
api POST /api/v1/requests/req-1/token
expect "pickup before approval: 409" 409 '.error == "not_approved"'
curl -s -D "$T/h.txt" -o /dev/null --unix-socket "$API" http://approver/api/v1/requests/req-1
if grep -qi '^Cache-Control: no-store' "$T/h.txt"; then pass "replies carry Cache-Control: no-store"; else fail "no Cache-Control: no-store"; fi

# --- another proxy (uid daemon) -----------------------------------------------------------------
api --as daemon GET /api/v1/requests/req-1
expect "another uid cannot see the request: 404" 404 '.error == "not_found"'
api --as daemon POST /api/v1/requests/req-1/token
expect "another uid cannot pick up its token: 404" 404
api --as daemon DELETE /api/v1/requests/req-1
expect "another uid cannot cancel it: 404" 404
api --as daemon POST /api/v1/requests "$(body req-d1)"
expect "another uid submits its own: 201" 201
api GET /api/v1/requests/req-d1
expect "and the first cannot see that one: 404" 404

# --- the HTTPS listener: callers are client certificates -------------------------------------------
if [ -n "$tls_ok" ]; then
	# tapi CERT METHOD PATH [BODY]: over HTTPS with that client certificate
	# ("" for none); sets CODE and BODY (CODE 000: the handshake failed).
	tapi() {
		local c=() out
		[ -n "$1" ] && c=(--cert "$CA/$1.pem" --key "$CA/$1.key")
		local m="$2" p="$3"
		shift 3
		out=$(curl -s --max-time 20 --cacert "$S/tls/cert.pem" "${c[@]}" -X "$m" 		    --resolve "localhost:$APORT:127.0.0.1" -H 'Content-Type: application/json' 		    ${1:+--data-binary "$1"} -w '\n%{http_code}' "https://localhost:$APORT$p")
		CODE=${out##*$'\n'}
		BODY=${out%$'\n'*}
	}
	tapi a POST /api/v1/requests "$(body req-t1)"
	expect "HTTPS with proxy a's certificate: submit 201" 201 '.state == "pending"'
	tapi a GET /api/v1/requests/req-t1
	expect "proxy a sees its request" 200 '.state == "pending"'
	tapi b GET /api/v1/requests/req-t1
	expect "proxy b (another certificate of the same CA) does not: 404" 404
	tapi a GET /api/v1/requests/req-1
	expect "nor does a certificate see a unix-socket caller's request: 404" 404
	api GET /api/v1/requests/req-t1
	expect "nor a unix-socket caller a certificate's: 404" 404
	tapi "" GET /api/v1/requests/req-t1
	if [ "$CODE" = 403 ] || [ "$CODE" = 000 ]; then
		pass "HTTPS without a client certificate is refused (HTTP $CODE)"
	else
		fail "HTTPS without a client certificate: HTTP $CODE $BODY"
	fi
	tapi rogue GET /api/v1/requests/req-t1
	if [ "$CODE" = 403 ] || [ "$CODE" = 000 ]; then
		pass "a certificate the CA did not sign is refused (HTTP $CODE)"
	else
		fail "rogue certificate: HTTP $CODE $BODY"
	fi
else
	skip "the HTTPS listener (no openssl to make certificates)"
fi

# --- cancel ---------------------------------------------------------------------------------------
api POST /api/v1/requests "$(body req-c)"
( sleep 1; curl -s -o /dev/null --unix-socket "$API" -X DELETE http://approver/api/v1/requests/req-c ) &
canceller=$!
start=$SECONDS
api GET "/api/v1/requests/req-c?wait=20"
took=$((SECONDS - start))
if [ "$CODE" = 200 ] && [ "$(field .state)" = cancelled ] && [ "$took" -le 5 ]; then
	pass "DELETE cancels, and wakes a long poll at once"
else
	fail "cancel (HTTP $CODE, ${took}s: $BODY)"
fi
wait "$canceller"
api DELETE /api/v1/requests/req-c
expect "DELETE again: 200, still cancelled" 200 '.state == "cancelled"'

# --- notify: failed once, retried, the summary delivered -------------------------------------------
ok=""
for _ in $(seq 1 200); do
	if [ -s "$NOTE/summaries" ] && grep -q '"id":"req-1"' "$NOTE/summaries"; then
		ok=1
		break
	fi
	sleep 0.1
done
if [ -e "$NOTE/failed-once" ] && grep -q 'notify: .* failed' "$T/serve.log"; then
	pass "a failing notify command is logged"
else
	fail "the failing notify command is not logged ($(tail -n 3 "$T/serve.log" | tr '\n' ' '))"
fi
if [ -n "$ok" ] && python3 - "$NOTE/summaries" "$BASE" <<'PY' >>"$T/check.log" 2>&1
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
s = [l for l in lines if l["id"] == "req-1"][0]
assert set(s) == {"id", "vm", "op", "reason", "digest", "created", "expires", "url"}, s
assert s["url"] == sys.argv[2] + "/requests/req-1", s["url"]
assert s["op"] == "fs.write" and s["reason"] == "save the notes"
PY
then
	pass "the notify command is retried and gets the summary with the request's link"
else
	fail "notify summary ($(cat "$NOTE/summaries" 2>/dev/null))"
fi
api GET /api/v1/requests/req-1
expect "the request is still pending meanwhile" 200 '.state == "pending"'

# --- an approval through the web, the token picked up once -------------------------------------------
if [ -n "$passkey_ok" ]; then
	get() { curl -sk -c "$1" -b "$1" -D "$3.h" -o "$3" -w '%{http_code}' "$BASE$2"; }
	post() {
		local jar=$1 path=$2 out=$3
		shift 3
		curl -sk -c "$jar" -b "$jar" -D "$out.h" -o "$out" -w '%{http_code}' \
		    -H "Origin: $BASE" "$@" "$BASE$path"
	}
	# The last token on a page is its decision form's (the first is the
	# sign-out form's).
	csrf_of() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$1" | tail -n 1; }
	get "$T/ja" /login "$T/login.html" >/dev/null
	code=$(post "$T/ja" /login "$T/lp.html" --data-urlencode "csrf=$(csrf_of "$T/login.html")" \
	    --data-urlencode "username=alice" --data-urlencode "password=$PW")
	api POST /api/v1/requests "$(body req-w)"
	DW=$(field .digest)
	get "$T/ja" /requests/req-w "$T/rw.html" >/dev/null
	A=$("$SOFT_PASSKEY" assert "$T/alice.key" --challenge "$DW" --origin "$BASE" 2>>"$T/check.log")
	code=$(post "$T/ja" /requests/req-w/approve "$T/ap.html" \
	    --data-urlencode "csrf=$(csrf_of "$T/rw.html")" --data-urlencode "reason=looks right" \
	    --data-urlencode "credential_id=$(jq -r .credential_id <<<"$A")" \
	    --data-urlencode "client_data_json=$(jq -r .client_data_json <<<"$A")" \
	    --data-urlencode "authenticator_data=$(jq -r .authenticator_data <<<"$A")" \
	    --data-urlencode "signature=$(jq -r .signature <<<"$A")")
	api GET "/api/v1/requests/req-w?wait=10"
	if [ "$code" = 303 ] && [ "$CODE" = 200 ] && [ "$(field .state)" = approved ]; then
		pass "alice approves through the web with her passkey: approved"
	else
		fail "web approval (HTTP $code, API: $BODY; $(grep -o 'class="error"[^<]*<[^<]*' "$T/ap.html" | head -n 1))"
	fi
	api POST /api/v1/requests/req-w/token
	TOK=$(field .token)
	if [ "$CODE" = 200 ] && "$BIN/attestctl" token inspect "$TOK" 2>>"$T/check.log" |
	    jq -e --arg vm "$VM" '.claims.approvers == ["alice"] and .claims.request == "req-w" and
	    .claims.vm == $vm and .claims.op == "fs.write" and .claims.uses == 1' >/dev/null; then
		pass "the token is picked up: minted by attestd over alice's signature"
	else
		fail "pickup (HTTP $CODE: $BODY)"
	fi
	api POST /api/v1/requests/req-w/token
	expect "a second pickup: 410" 410 '.error == "picked_up"'
	api --as daemon POST /api/v1/requests/req-w/token
	expect "another uid cannot pick it up either: 404" 404
	if "$APPROVER" --state-dir "$S" audit list --request req-w >"$T/audit.txt" 2>>"$T/check.log" &&
	    grep -q submit "$T/audit.txt" && grep -q approve "$T/audit.txt" &&
	    grep -q mint "$T/audit.txt" && grep -q pickup "$T/audit.txt"; then
		pass "the audit trail has submit, approve, mint and pickup"
	else
		fail "audit list: $(cat "$T/audit.txt")"
	fi
else
	skip "approval through the web (no soft-passkey or its enrolment failed); the browser tests cover it"
fi

# --- expiry (request_lifetime_seconds 20) ----------------------------------------------------------
api POST /api/v1/requests "$(body req-e)"
E=$(field .expires)
now=$(date +%s)
if [ "$CODE" = 201 ] && [ $((E - now)) -le 20 ]; then
	pass "a request's deadline is request_lifetime_seconds away"
else
	fail "expires $E (now $now)"
fi
api POST /api/v1/requests "$(body req-p "{\"expires\":$((now + 3))}")"
expect "the proxy's own earlier deadline wins" 201 ".expires == $((now + 3))"
api GET "/api/v1/requests/req-p?wait=10"
expect "a pending request expires at its deadline (long poll woken)" 200 '.state == "expired"'
api GET "/api/v1/requests/req-e?wait=25"
expect "and at request_lifetime_seconds" 200 '.state == "expired"'
api POST /api/v1/requests/req-e/token
expect "an expired request has no token: 409" 409
if "$APPROVER" --state-dir "$S" audit verify >>"$T/check.log" 2>&1; then
	pass "approver audit verify: the chain is intact"
else
	fail "approver audit verify"
fi
finish
