#!/usr/bin/env bash
# The approver's API for tool proxies (docs/approvals.md, "The proxies'
# API") through the real parts: a private swtpm, attestd (the approver's
# uid holds the mint role), `approver init`, `user add` and `serve`, and
# curl on the API's unix socket as two different uids (two proxies).
# Submit, retry, conflict, long poll, pickup before approval, callers kept
# apart, cancel, expiry, the notify command (one that fails first, then
# works, while the request goes on), an approval through the web form with
# a software passkey and the token picked up once, and vmhost's checks of
# --approver. Then an approver database edited behind the service's back:
# forged decisions (attestd refuses them, and the request fails with its
# reason, or stays pending), and requests marked approved with no token or
# a forged one (nothing attestd minted comes out). vmhost's approver sink
# itself (build/tools/gate-client) against this approver: approved through
# the web over HTTPS with a client certificate and over the unix socket,
# denied with a reason, and refused for a certificate the CA did not sign.
# Last, the notify webhook: a local HTTPS server with a self-signed
# certificate (notify.webhook_ca) that fails first, is retried and gets the
# request's summary.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/attestd_lib.sh"

APPROVER="$BIN/approver"
S="$T/approver"
APIDIR="$T/api"
API="$APIDIR/api.sock"
NOTE="$T/notify"
HOOK="$T/hook"
PW="correct horse battery staple"
APPROVER_PID=""
HOOK_PID=""

my_cleanup() {
	if [ -n "$APPROVER_PID" ]; then
		kill "$APPROVER_PID" 2>/dev/null
		wait "$APPROVER_PID" 2>/dev/null
	fi
	if [ -n "$HOOK_PID" ]; then
		kill "$HOOK_PID" 2>/dev/null
		wait "$HOOK_PID" 2>/dev/null
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
# fs.list needs two people, in attestd and in the approver alike.
tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
APORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="https://localhost:$PORT"
cat >"$T/attestd.json" <<EOF
{"health_interval_seconds":1,"socket_group":"nogroup",
 "roles":{"0":["admin","mint","launch","verify:*"],"65534":["mint"]},
 "approvals":{"rp_id":"localhost","origins":["$BASE"],"quorum":{"default":1,"ops":{"fs.list":2}}}}
EOF
attestd_start --config "$T/attestd.json" || { fail "attestd starts"; finish; }
measure_default '{"fs.write":"ask","fs.read":"allow","fs.list":"ask"}' || { fail "measure a VM"; finish; }

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
# The webhook's receiver: HTTPS with a self-signed certificate for
# localhost, which the approver trusts through notify.webhook_ca. It keeps
# every POST (one JSON line each) and answers 500 to the first one about
# each request, 200 to the rest.
mkdir -p "$HOOK"
hook_ok=""
if command -v openssl >/dev/null 2>&1 &&
    openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 \
    -subj /CN=localhost -addext subjectAltName=DNS:localhost \
    -keyout "$HOOK/key.pem" -out "$HOOK/cert.pem" >>"$T/check.log" 2>&1; then
	python3 - "$HOOK" 1 >>"$T/hook.log" 2>&1 <<'PY' &
import http.server, json, os, ssl, sys, threading
d, fail_first = sys.argv[1], int(sys.argv[2])
seen, lock = {}, threading.Lock()
class Hook(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n).decode("utf-8", "replace")
        try:
            rid = json.loads(body).get("id", "")
        except (ValueError, AttributeError):
            rid = ""
        with lock:
            seen[rid] = seen.get(rid, 0) + 1
            status = 500 if seen[rid] <= fail_first else 200
            with open(os.path.join(d, "posts"), "a") as f:
                f.write(json.dumps({"id": rid, "status": status, "path": self.path,
                                    "type": self.headers.get("Content-Type", ""),
                                    "body": body}) + "\n")
        self.send_response(status)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")
    def log_message(self, *args):
        pass
srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(os.path.join(d, "cert.pem"), os.path.join(d, "key.pem"))
srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
with open(os.path.join(d, "port.tmp"), "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(os.path.join(d, "port.tmp"), os.path.join(d, "port"))
srv.serve_forever()
PY
	HOOK_PID=$!
	for _ in $(seq 1 100); do
		[ -s "$HOOK/port" ] && break
		sleep 0.1
	done
	# A path relative to the state folder, as the other files are.
	if [ -s "$HOOK/port" ] && cp "$HOOK/cert.pem" "$S/webhook-ca.pem" &&
	    chown nobody:nogroup "$S/webhook-ca.pem"; then
		hook_ok=1
	else
		fail "the webhook's HTTPS server did not start ($(tail -n 3 "$T/hook.log" | tr '\n' ' '))"
	fi
fi
python3 - "$S/approver.json" "$SOCK" "$API" "$NOTE" "${tls_ok:+$APORT}" "$CA/ca.pem" \
    "${hook_ok:+$(cat "$HOOK/port")}" <<'PY' || { fail "edit approver.json"; finish; }
import json, sys
path, sock, api, note, aport, ca, hport = sys.argv[1:8]
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
if hport:
    c["notify"]["webhook"] = "https://localhost:%s/hook" % hport
    c["notify"]["webhook_ca"] = "webhook-ca.pem"
c["quorum"] = {"default": 1, "ops": {"fs.list": 2}}
json.dump(c, open(path, "w"), indent=2)
PY

# Alice's passkey: enrolled in attestd, and put into the approver's own
# store directly (a software passkey makes no attestation for the
# Passkeys page; the browser tests cover that page).
passkey_ok=""
if [ -x "$SOFT_PASSKEY" ] && passkey_new alice "$T/alice.key" ES256 &&
    "$BIN/attestctl" --socket "$SOCK" approvers add --yes "$T/alice.key.enrol" >>"$T/check.log" 2>&1; then
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

# db SQL: sqlite3 on the approver's database as its owner, while it serves.
db() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    sqlite3 -cmd '.timeout 5000' "$S/approver.db" "$@"
}
# events ID: the events of ID's audit trail but page views, oldest first,
# on one line.
events() {
	"$APPROVER" --state-dir "$S" audit list --request "$1" 2>>"$T/check.log" |
	    sort -n | awk '$4 != "view" {print $4}' | tr '\n' ' '
}
# audit_detail ID EVENT: the detail of ID's EVENT record.
audit_detail() {
	db "SELECT detail FROM audit WHERE request = '$1' AND event = '$2';" 2>>"$T/check.log"
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
# The webhook's request: its first POST fails, and the request carries on.
# The retry comes 5 s later; its checks are at the end.
if [ -n "$hook_ok" ]; then
	api POST /api/v1/requests "$(body req-n)"
	DN=$(field .digest)
	EN=$(field .expires)
	for _ in $(seq 1 100); do
		jq -e -s 'any(.id == "req-n")' "$HOOK/posts" >/dev/null 2>&1 && break
		sleep 0.1
	done
	api GET /api/v1/requests/req-n
	if jq -e -s '[.[] | select(.id == "req-n") | .status] == [500]' "$HOOK/posts" \
	    >/dev/null 2>&1 && [ "$CODE" = 200 ] &&
	    [ "$(field .state)" = pending ]; then
		pass "the webhook answers 500: the request is still pending"
	else
		fail "the webhook's first answer ($(cat "$HOOK/posts" 2>/dev/null); API: $BODY)"
	fi
fi

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

	# --- the approver's database edited behind its back -----------------------------------
	# Whoever can write approver.db can forge decisions and states; attestd
	# checks every signature again, so none of it yields a token.
	# forge_decision ID USER APPROVAL_JSON|NULL: an approving decision row.
	forge_decision() {
		local aj=NULL
		[ "$3" != NULL ] && aj="'$3'"
		db "INSERT INTO decisions(request_id, user_id, approve, reason, approval_json, at)
		    SELECT '$1', id, 1, 'forged', $aj, CAST(strftime('%s', 'now') AS INTEGER)
		    FROM users WHERE name = '$2';" >>"$T/check.log" 2>&1
	}
	# web_approve ID DIGEST: alice approves ID through the form with a new
	# assertion over DIGEST; prints the HTTP status.
	web_approve() {
		local a
		get "$T/ja" "/requests/$1" "$T/r-$1.html" >/dev/null
		a=$("$SOFT_PASSKEY" assert "$T/alice.key" --challenge "$2" --origin "$BASE" \
		    2>>"$T/check.log")
		post "$T/ja" "/requests/$1/approve" "$T/ap-$1.html" \
		    --data-urlencode "csrf=$(csrf_of "$T/r-$1.html")" --data-urlencode "reason=looks right" \
		    --data-urlencode "credential_id=$(jq -r .credential_id <<<"$a")" \
		    --data-urlencode "client_data_json=$(jq -r .client_data_json <<<"$a")" \
		    --data-urlencode "authenticator_data=$(jq -r .authenticator_data <<<"$a")" \
		    --data-urlencode "signature=$(jq -r .signature <<<"$a")"
	}
	# failed_as ID TEXT...: the request failed with every TEXT in its reason,
	# as the API, the request's page, the database and the audit trail say;
	# and no token comes out of it.
	failed_as() {
		local id=$1 t ok=1 why=""
		shift
		api GET "/api/v1/requests/$id"
		for t in "$@"; do
			if ! jq -e --arg t "$t" '.state == "failed" and (.reason | contains($t)) and
			    (.reason | startswith("attestd refused to mint: "))' <<<"$BODY" >/dev/null; then
				ok="" why="$why API: $BODY;"
			fi
		done
		get "$T/ja" "/requests/$id" "$T/f-$id.html" >/dev/null
		for t in "$@"; do
			if ! grep -q '<strong id="state">failed</strong>' "$T/f-$id.html" ||
			    ! grep -F -q "$t" "$T/f-$id.html"; then
				ok="" why="$why page: $(grep -o 'id="state".*' "$T/f-$id.html" | head -n 1);"
			fi
		done
		local row
		row=$(db "SELECT state || '|' || state_reason || '|' || (token IS NULL) FROM requests
		    WHERE id = '$id';" 2>>"$T/check.log")
		for t in "$@"; do
			case "$row" in
			"5|attestd refused to mint: "*"$t"*"|1") ;;
			*) ok="" why="$why db: $row;" ;;
			esac
			if ! audit_detail "$id" mint_failed | grep -F -q "$t"; then
				ok="" why="$why audit: $(events "$id");"
			fi
		done
		if events "$id" | grep -qw mint; then
			ok="" why="$why a mint record: $(events "$id");"
		fi
		api POST "/api/v1/requests/$id/token"
		if [ "$CODE" != 409 ] || [ "$(field .error)" != not_approved ]; then
			ok="" why="$why pickup: HTTP $CODE $BODY;"
		fi
		[ -n "$ok" ] || echo "$why"
	}

	# (a) bob's decision, with alice's real assertion over this very request
	# relabelled as bob's: attestd finds the credential is not bob's.
	api POST /api/v1/requests "$(body req-f1 '{"op":"fs.list"}')"
	D=$(field .digest)
	forged=$("$SOFT_PASSKEY" assert "$T/alice.key" --challenge "$D" --origin "$BASE" \
	    2>>"$T/check.log" | jq -c '.approver = "bob"')
	forge_decision req-f1 bob "$forged"
	code=$(web_approve req-f1 "$D")
	why=$(failed_as req-f1 "approval_refused" "(bob): the credential belongs to another person")
	if [ "$code" = 303 ] && [ -z "$why" ]; then
		pass "bob's forged decision (alice's assertion as his): refused by attestd, failed with why"
	else
		fail "forged decision, relabelled assertion (HTTP $code):$why"
	fi

	# (a) bob's decision with random base64url fields.
	rnd() { head -c "$1" /dev/urandom | base64 -w 0 | tr '+/' '-_' | tr -d '='; }
	api POST /api/v1/requests "$(body req-f2 '{"op":"fs.list"}')"
	D=$(field .digest)
	forged=$(jq -cn --arg c "$(rnd 16)" --arg d "$(rnd 120)" --arg a "$(rnd 37)" \
	    --arg s "$(rnd 71)" '{approver:"bob",credential_id:$c,client_data_json:$d,
	    authenticator_data:$a,signature:$s}')
	forge_decision req-f2 bob "$forged"
	code=$(web_approve req-f2 "$D")
	why=$(failed_as req-f2 "approval_refused" "(bob): the credential is not enrolled in attestd")
	if [ "$code" = 303 ] && [ -z "$why" ]; then
		pass "bob's forged decision (random assertion fields): refused by attestd, failed with why"
	else
		fail "forged decision, random fields (HTTP $code):$why"
	fi

	# (a) bob's decision carrying a second real assertion of alice's, named
	# as hers: the approver counts two decisions, attestd one person. The
	# request goes back to pending (mint_deferred).
	api POST /api/v1/requests "$(body req-f3 '{"op":"fs.list"}')"
	D=$(field .digest)
	forged=$("$SOFT_PASSKEY" assert "$T/alice.key" --challenge "$D" --origin "$BASE" \
	    2>>"$T/check.log" | jq -c .)
	forge_decision req-f3 bob "$forged"
	code=$(web_approve req-f3 "$D")
	api GET /api/v1/requests/req-f3
	st=$BODY
	ev=$(events req-f3)
	det=$(audit_detail req-f3 mint_deferred)
	api POST /api/v1/requests/req-f3/token
	if [ "$code" = 303 ] && jq -e '.state == "pending" and .reason == ""' <<<"$st" >/dev/null &&
	    [ "$ev" = "submit approve mint_deferred " ] &&
	    grep -F -q "quorum_not_met: 1 of 2 distinct approvers" <<<"$det" && [ "$CODE" = 409 ]; then
		pass "alice's second assertion in bob's decision: quorum_not_met, mint_deferred, pending"
	else
		fail "duplicated assertion (HTTP $code, API: $st, audit: $ev, detail: $det," \
		    "pickup HTTP $CODE)"
	fi

	# (b) bob's decision approving without an assertion (approval_json
	# NULL): the approver cannot gather the approvals, so it never asks
	# attestd; alice's decision is refused and not recorded.
	api POST /api/v1/requests "$(body req-f4 '{"op":"fs.list"}')"
	D=$(field .digest)
	forge_decision req-f4 bob NULL
	code=$(web_approve req-f4 "$D")
	api GET /api/v1/requests/req-f4
	st=$BODY
	ev=$(events req-f4)
	n=$(db "SELECT count(*) FROM decisions WHERE request_id = 'req-f4';" 2>>"$T/check.log")
	api POST /api/v1/requests/req-f4/token
	if [ "$code" = 502 ] && grep -q 'Your decision was not recorded' "$T/ap-req-f4.html" &&
	    grep -q 'recorded for bob carries no passkey assertion' "$T/ap-req-f4.html" &&
	    jq -e '.state == "pending"' <<<"$st" >/dev/null && [ "$ev" = "submit " ] &&
	    [ "$n" = 1 ] && [ "$CODE" = 409 ]; then
		pass "a decision approved with no assertion: named on the page, not sent to attestd, still pending, no token"
	else
		fail "approval without an assertion (HTTP $code, API: $st, audit: $ev," \
		    "decisions: $n, pickup HTTP $CODE: $BODY)"
	fi

	# (b) the same with an empty object for the assertion: attestd is
	# asked, and refuses it.
	api POST /api/v1/requests "$(body req-f5 '{"op":"fs.list"}')"
	D=$(field .digest)
	forge_decision req-f5 bob '{}'
	code=$(web_approve req-f5 "$D")
	why=$(failed_as req-f5 "bad_request" "approvals[0]")
	if [ "$code" = 303 ] && [ -z "$why" ]; then
		pass "a decision with an empty assertion: refused by attestd, failed with why, no token"
	else
		fail "empty assertion (HTTP $code):$why"
	fi

	# (c) requests marked approved in the database.
	ARGS_SHA=$(python3 - "$ARGS" <<'PY'
import hashlib, json, sys
a = json.dumps(json.loads(sys.argv[1]), sort_keys=True, separators=(",", ":"))
print(hashlib.sha256(a.encode()).hexdigest())
PY
)
	verify() {
		"$BIN/attestctl" --socket "$SOCK" verify --aud proxy --vm "$VM" --launch-digest "$LD" \
		    --op fs.write --args-sha256 "$ARGS_SHA" "$1"
	}
	api POST /api/v1/requests "$(body req-f6)"
	db "UPDATE requests SET state = 2, decided = CAST(strftime('%s', 'now') AS INTEGER)
	    WHERE id = 'req-f6';" >>"$T/check.log" 2>&1
	api POST /api/v1/requests/req-f6/token
	if [ "$CODE" != 200 ] && ! jq -e 'has("token")' <<<"$BODY" >/dev/null 2>&1; then
		pass "a request set to approved with no token: no token comes out (HTTP $CODE)"
	else
		fail "approved without a token: HTTP $CODE $BODY"
	fi
	# A token made from req-w's real one, its claims rewritten for req-f7.
	api POST /api/v1/requests "$(body req-f7)"
	fake=$(python3 - "$TOK" <<'PY'
import base64, json, sys
seg = sys.argv[1].split(".")
pad = lambda s: s + "=" * (-len(s) % 4)
claims = json.loads(base64.urlsafe_b64decode(pad(seg[2])))
claims["request"] = "req-f7"
seg[2] = base64.urlsafe_b64encode(json.dumps(claims, sort_keys=True,
    separators=(",", ":")).encode()).decode().rstrip("=")
print(".".join(seg))
PY
)
	db "UPDATE requests SET state = 2, token = '$fake',
	    decided = CAST(strftime('%s', 'now') AS INTEGER) WHERE id = 'req-f7';" >>"$T/check.log" 2>&1
	api POST /api/v1/requests/req-f7/token
	got=$(field .token)
	if verify "$TOK" >"$T/v-real.json" 2>>"$T/check.log" && jq -e .valid "$T/v-real.json" >/dev/null; then
		pass "attestctl verify accepts the token attestd minted for req-w"
	else
		fail "attestctl verify of the real token: $(cat "$T/v-real.json")"
	fi
	if [ "$CODE" = 200 ] && [ "$got" = "$fake" ] &&
	    "$BIN/attestctl" token inspect "$got" 2>>"$T/check.log" |
	    jq -e '.claims.request == "req-f7"' >/dev/null &&
	    ! verify "$got" >"$T/v-fake.json" 2>>"$T/check.log" &&
	    jq -e '.valid == false and (.reason | length > 0)' "$T/v-fake.json" >/dev/null; then
		pass "a forged token put in the database: handed out, refused by the verifier ($(jq -r .reason "$T/v-fake.json"))"
	else
		fail "forged token (pickup HTTP $CODE, verify: $(cat "$T/v-fake.json" 2>/dev/null))"
	fi
else
	skip "approval through the web (no soft-passkey or its enrolment failed); the browser tests cover it"
fi

# --- vmhost's approver sink against the real approver (build/tools/gate-client) ------------------
# The sink submits and long-polls as a proxy does; the request is decided
# through the web, as people decide. Over HTTPS with a client certificate,
# over the unix socket, a denial, and a certificate the CA did not sign.
GATE_CLIENT="${TOOLBIN:-/nonexistent}/gate-client"
if [ -x "$GATE_CLIENT" ] && [ -n "$passkey_ok" ]; then
	# gate_start NAME ADDRESS [OPTIONS...]: gate-client in the background
	# for the measured VM; its id, output and exit status land in
	# $T/gc-NAME.{id,out,err,rc}.
	gate_start() {
		local n=$1 addr=$2
		shift 2
		rm -f "$T/gc-$n".*
		( "$GATE_CLIENT" --approver "$addr" "$@" --vm "$VM" --launch-digest "$LD" \
		    --op fs.write --args "$ARGS" --reason "save the notes" --ttl 300 --timeout 30 \
		    --id-file "$T/gc-$n.id" >"$T/gc-$n.out" 2>"$T/gc-$n.err"
		  echo $? >"$T/gc-$n.rc" ) &
		GC_PID=$!
	}
	# gate_id NAME: sets GC_ID once gate-client has submitted.
	gate_id() {
		GC_ID=""
		for _ in $(seq 1 100); do
			if [ -s "$T/gc-$1.id" ]; then
				GC_ID=$(cat "$T/gc-$1.id")
				return 0
			fi
			[ -e "$T/gc-$1.rc" ] && return 1
			sleep 0.1
		done
		return 1
	}
	# gate_end NAME: waits for gate-client; sets GC_RC and GC_OUT.
	gate_end() {
		wait "$GC_PID" 2>/dev/null
		GC_RC=$(cat "$T/gc-$1.rc" 2>/dev/null)
		GC_OUT=$(cat "$T/gc-$1.out" 2>/dev/null)
	}
	# gate_approved NAME: gate-client printed a token attestd minted for
	# its request, this VM and op, over alice's approval.
	gate_approved() {
		local tok
		[ "$GC_RC" = 0 ] && [ "${GC_OUT%% *}" = approved ] || return 1
		tok=${GC_OUT#approved }
		[ -n "$tok" ] && [ "$tok" != "$GC_OUT" ] || return 1
		"$BIN/attestctl" token inspect "$tok" 2>>"$T/check.log" |
		    jq -e --arg id "$GC_ID" --arg vm "$VM" '.claims.request == $id and
		    .claims.vm == $vm and .claims.op == "fs.write" and
		    .claims.approvers == ["alice"]' >/dev/null
	}
	# web_deny ID REASON: alice denies ID through the form; prints the status.
	web_deny() {
		get "$T/ja" "/requests/$1" "$T/d-$1.html" >/dev/null
		post "$T/ja" "/requests/$1/deny" "$T/dp-$1.html" \
		    --data-urlencode "csrf=$(csrf_of "$T/d-$1.html")" --data-urlencode "reason=$2"
	}
	TLS_OPTS=(--ca "$S/tls/cert.pem" --cert "$CA/a.pem" --key "$CA/a.key")

	# (a) over HTTPS with proxy a's certificate.
	if [ -n "$tls_ok" ]; then
		gate_start https "https://127.0.0.1:$APORT" "${TLS_OPTS[@]}"
		code=""
		if gate_id https; then
			code=$(web_approve "$GC_ID" \
			    "$(approval_digest proxy "$VM" "$LD" fs.write "$ARGS" 300 "$GC_ID")")
		fi
		gate_end https
		if [ "$code" = 303 ] && gate_approved https; then
			pass "gate-client over HTTPS with a client certificate: approved through the web, a token for its request"
		else
			fail "gate-client over HTTPS (web HTTP $code, exit $GC_RC: $GC_OUT $(tr '\n' ' ' <"$T/gc-https.err"))"
		fi
		ev=$(events "$GC_ID")
		if [ "$ev" = "submit approve mint pickup " ]; then
			pass "its audit trail: submit, approve, mint, pickup"
		else
			fail "gate-client's request over HTTPS: audit $ev"
		fi
	else
		skip "gate-client over HTTPS (no openssl to make certificates)"
	fi

	# (b) over the unix socket.
	gate_start unix "$API"
	code=""
	if gate_id unix; then
		code=$(web_approve "$GC_ID" \
		    "$(approval_digest proxy "$VM" "$LD" fs.write "$ARGS" 300 "$GC_ID")")
	fi
	gate_end unix
	if [ "$code" = 303 ] && gate_approved unix; then
		pass "gate-client over the unix socket: approved through the web, a token for its request"
	else
		fail "gate-client over the unix socket (web HTTP $code, exit $GC_RC: $GC_OUT $(tr '\n' ' ' <"$T/gc-unix.err"))"
	fi

	# (c) a denial through the web reaches the sink with its reason.
	if [ -n "$tls_ok" ]; then
		gate_start deny "https://127.0.0.1:$APORT" "${TLS_OPTS[@]}"
	else
		gate_start deny "$API"
	fi
	code=""
	if gate_id deny; then
		code=$(web_deny "$GC_ID" "not this file")
	fi
	gate_end deny
	if [ "$code" = 303 ] && [ "$GC_RC" = 3 ] && [ "${GC_OUT%% *}" = denied ] &&
	    grep -q 'not this file' <<<"$GC_OUT"; then
		pass "a denial through the web reaches gate-client with its reason ($GC_OUT)"
	else
		fail "gate-client denial (web HTTP $code, exit $GC_RC: $GC_OUT $(tr '\n' ' ' <"$T/gc-deny.err"))"
	fi

	# (d) a client certificate the CA did not sign: an error, not a wait.
	if [ -n "$tls_ok" ]; then
		rm -f "$T/gc-rogue".*
		start=$SECONDS
		timeout 60 "$GATE_CLIENT" --approver "https://127.0.0.1:$APORT" \
		    --ca "$S/tls/cert.pem" --cert "$CA/rogue.pem" --key "$CA/rogue.key" --vm "$VM" \
		    --launch-digest "$LD" --op fs.write --args "$ARGS" --timeout 30 \
		    --id-file "$T/gc-rogue.id" >"$T/gc-rogue.out" 2>"$T/gc-rogue.err"
		rc=$?
		took=$((SECONDS - start))
		if [ "$rc" = 1 ] && [ ! -s "$T/gc-rogue.out" ] && [ ! -e "$T/gc-rogue.id" ] &&
		    grep -q '^gate-client: submit ' "$T/gc-rogue.err" && [ "$took" -le 15 ]; then
			pass "gate-client with a certificate the CA did not sign: refused at submit (${took}s: $(tr '\n' ' ' <"$T/gc-rogue.err"))"
		else
			fail "gate-client with a rogue certificate (exit $rc, ${took}s: $(cat "$T/gc-rogue.out") $(tr '\n' ' ' <"$T/gc-rogue.err"))"
		fi
	else
		skip "gate-client with a rogue certificate (no openssl to make certificates)"
	fi
else
	skip "the approver sink against the approver (no $GATE_CLIENT, or no soft passkey)"
fi

# --- the notify webhook: failed once, retried, the summary delivered --------------------------------
if [ -n "$hook_ok" ]; then
	ok=""
	for _ in $(seq 1 200); do
		if [ -s "$HOOK/posts" ] &&
		    jq -e -s 'any(.id == "req-n" and .status == 200)' "$HOOK/posts" >/dev/null 2>&1; then
			ok=1
			break
		fi
		sleep 0.1
	done
	if [ -n "$ok" ] && jq -e -s '[.[] | select(.id == "req-n") | .status] | .[0] == 500' \
	    "$HOOK/posts" >/dev/null && grep -q 'notify: the webhook answered HTTP 500 for request req-n' \
	    "$T/serve.log"; then
		pass "the webhook (a self-signed certificate, notify.webhook_ca): a 500 is logged and retried"
	else
		fail "webhook retry ($(jq -c -s '[.[] | select(.id == "req-n") | .status]' "$HOOK/posts" 2>&1); $(grep 'notify:' "$T/serve.log" | tail -n 3 | tr '\n' ' '))"
	fi
	if [ -n "$ok" ] && python3 - "$HOOK/posts" "$BASE" "$VM" "$DN" "$EN" <<'PY' >>"$T/check.log" 2>&1
import json, sys
posts, base, vm, digest, expires = sys.argv[1:6]
p = [json.loads(l) for l in open(posts) if l.strip()]
p = [x for x in p if x["id"] == "req-n" and x["status"] == 200][0]
assert p["path"] == "/hook", p["path"]
assert p["type"] == "application/json", p["type"]
s = json.loads(p["body"])
assert set(s) == {"id", "vm", "op", "reason", "digest", "created", "expires", "url"}, s
assert s["url"] == base + "/requests/req-n", s["url"]
assert s["vm"] == vm and s["op"] == "fs.write" and s["reason"] == "save the notes", s
assert s["digest"] == digest and s["expires"] == int(expires), s
assert 0 < s["created"] <= s["expires"], s
PY
	then
		pass "the webhook gets the request's summary as JSON"
	else
		fail "webhook summary ($(tail -n 3 "$T/check.log" | tr '\n' ' '))"
	fi
	# Nothing but its submission (and its expiry, if the deadline has come).
	ev=$(events req-n)
	if [ "$ev" = "submit " ] || [ "$ev" = "submit expire " ]; then
		pass "the webhook's failure left no mark on the request's audit trail"
	else
		fail "the webhook's request: audit $ev"
	fi
	if grep -q 'does not verify' "$T/serve.log"; then
		fail "the webhook's certificate did not verify: $(grep 'does not verify' "$T/serve.log" | head -n 1)"
	fi
else
	skip "the notify webhook (no openssl, or its server did not start)"
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
