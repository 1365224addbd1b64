#!/usr/bin/env bash
# attestd on a private swtpm: status, mint, roles by uid, the keys and
# verify endpoints, strict input checking, limits, keep-alive, socket
# handling, shutdown, and no leaked TPM handles.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/attestd_lib.sh"

for tool in swtpm curl jq tpm2_getcap; do
	command -v "$tool" >/dev/null 2>&1 || { skip "attestd: $tool not installed"; finish; }
done
tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
write_config "$T/attestd.json"
attestd_start --config "$T/attestd.json" || { fail "attestd starts"; finish; }
ROOT=$(id -u)
# Minting needs a VM attestd measured: a small one, allowing fs.write and
# fs.list, asking for fs.read; "exec" is "never" and every other tool absent.
measure_default '{"fs.write":"allow","fs.read":"ask","fs.list":"allow","exec":"never"}' ||
    { fail "measure a VM"; finish; }

# --- status and mint ------------------------------------------------------
req GET /v1/status
expect "status" 200 '.tpm == "ok" and .policy == "ok" and .minting == true and
    .mode == "epoch" and .generation == 1 and .generations == [1] and
    .epoch_seconds == 3600 and (.tpm_commands | type) == "number"'
if [ "$(stat -c %a "$SOCK")" = 660 ]; then pass "socket mode 0660"; else fail "socket mode $(stat -c %a "$SOCK")"; fi
if [ "$ROOT" = 0 ]; then
	if [ "$(stat -c %G "$SOCK")" = nogroup ]; then pass "socket group"; else fail "socket group $(stat -c %G "$SOCK")"; fi
fi

# --- launches: what an approver asks before it shows a request -----------
req GET "/v1/launches/$VM"
expect "launches: a measured VM and its digest" 200 ".vm == \"$VM\" and .launch_digest == \"$LD\""
req GET /v1/launches/vm-0000000000000000
expect "launches: an unknown VM is 404" 404 '.error == "unknown_launch"'
req GET "/v1/launches/bad%20id"
expect "launches: a bad id is 400" 400 '.error == "bad_request"'
req POST "/v1/launches/$VM" '{}'
expect "launches: POST is 405" 405

req POST /v1/mint "$MINT"
expect "mint 200" 200 '(.token | startswith("w1.")) and (.jti | length) == 22 and .exp - .iat == 300'
TOKEN=$(field .token)
KID=$(token_kid "$TOKEN")
EPOCH=$(jq -r .epoch <<<"$KID")
if jq -e '.gen == 1 and .mode == "epoch" and .aud == "proxy"' >/dev/null <<<"$KID"; then
	pass "token kid"
else
	fail "token kid $KID"
fi

req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args_sha256":"'$LD'","ttl":3600,"uses":1000,"request":"req-12"}'
expect "mint with args_sha256, ttl max, uses max" 200 '.exp - .iat == 3600'
# fs.read is "ask": people's approvals are needed (tests/integration/test_approvals.sh).
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.read","args_sha256":"'$LD'","request":"req-13"}'
expect "mint for an ask op without approvals: 403" 403 '.error == "approvals_required"'

req POST /v1/verify '{"token":"'"$TOKEN"'"}'
expect "verify in attestd" 200 '.mac == "ok"'

# --- minting needs a measured VM -------------------------------------------
req POST /v1/mint '{"aud":"proxy","vm":"vm-0000000000000000","launch_digest":"'$LD'","op":"fs.write","args":1}'
expect "mint for a VM attestd did not measure: 403" 403 '.error == "not_measured"'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$(printf 'b%.0s' $(seq 64))'","op":"fs.write","args":1}'
expect "mint with another launch digest: 403" 403 '.error == "launch_mismatch"'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.delete","args":1}'
expect "mint for an op absent from the envelope: 403" 403 '.error == "not_in_envelope"'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"exec","args":1}'
expect "mint for an op the envelope says never: 403" 403 '.error == "not_in_envelope"'
req GET /v1/status
expect "status reports the event log and the VMs" 200 '.event_log == "ok" and .launch_pcr == 15 and
    .vms == 1 and .launch_records == 4'

# The served audience key checks the tag (t0 = HMAC(key, signing input)).
req GET "/v1/keys/proxy?gen=1&epoch=$EPOCH"
expect "keys endpoint" 200 '.aud == "proxy" and .gen == 1 and .not_after == .epoch_end + 3600 and
    .epoch_end - .not_before == 3600'
KEYHEX=$(b64url_hex "$(field .key)")
want=$(b64url_hex "${TOKEN##*.}")
got=$(printf '%s' "${TOKEN%.*}" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEYHEX" | awk '{print $NF}')
if [ "$want" = "$got" ]; then pass "served key verifies the token"; else fail "served key verifies the token"; fi
KW=$(jq -c '{not_before,epoch_end,not_after}' <<<"$BODY")
req POST /v1/verify '{"token":"'"$TOKEN"'"}'
expect "verify gives the key window GET /v1/keys gives" 200 \
    "{not_before,epoch_end,not_after} == $KW and .mac == \"ok\""
req GET /v1/status
expect "status counts the epoch keys held" 200 '.mode == "epoch" and .epoch_keys >= 1'
req GET /v1/keys/proxy
expect "keys default to the current generation and epoch" 200 ".gen == 1 and .epoch == $EPOCH"
printf '{"path":"/notes.txt","data":"hi"}' >"$T/args.json"
if "$BIN/attestctl" --socket "$SOCK" verify --aud proxy --vm "$VM" --launch-digest "$LD" \
    --op fs.write --args-file "$T/args.json" "$TOKEN" >>"$T/check.log" 2>&1; then
	pass "attestctl verify (offline, keys from attestd)"
else
	fail "attestctl verify (offline, keys from attestd)"
fi

# --- roles ----------------------------------------------------------------
# The other uids must reach the socket: a TMPDIR of mode 0700 hides it, and
# every case below would fail for that reason alone.
if [ "$ROOT" = 0 ] && command -v setpriv >/dev/null &&
    ! setpriv --reuid=65534 --regid=65534 --clear-groups test -w "$SOCK"; then
	skip "roles by uid (uid 65534 cannot reach $SOCK: is TMPDIR searchable by others?)"
elif [ "$ROOT" = 0 ] && command -v setpriv >/dev/null; then
	req --as 65534 POST /v1/mint "$MINT"
	expect "mint without role mint: 403" 403 '.error == "forbidden"'
	req --as 65534 GET "/v1/keys/proxy?gen=1&epoch=$EPOCH"
	expect "verify:proxy gets the proxy key" 200 '.aud == "proxy"'
	req --as 65534 GET "/v1/keys/vmhost?gen=1&epoch=$EPOCH"
	expect "verify:proxy does not get the vmhost key" 403 '.error == "forbidden"'
	req --as 65534 GET /v1/status
	expect "any role reads status" 200
	req --as 65534 POST /v1/admin/reload
	expect "reload without admin: 403" 403
	req --as 65534 POST /v1/verify '{"token":"'"$TOKEN"'"}'
	expect "verify:proxy verifies a proxy token" 200
	req --as 65533 GET /v1/status
	expect "no role: status 403" 403 '.error == "forbidden"'
	req --as 65533 POST /v1/mint "$MINT"
	expect "no role: mint 403" 403
	req --as 65533 GET /v1/nowhere
	expect "no role: 403 even for unknown paths" 403
	req --as 65532 GET /v1/status
	expect "unlisted uid: 403" 403
else
	skip "roles by uid (needs root and setpriv)"
fi

# --- strict input ---------------------------------------------------------
req POST /v1/mint '{"aud":"proxy","aud":"vmhost","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1}'
expect "duplicate keys: 400" 400 '.error == "bad_request"'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1,"approvers":["alice"]}'
expect "unknown field (approvers): 400" 400 '.detail | contains("approvers")'
req POST /v1/verify '{"token":"w1.!!!!.eyJ9.AAAA"}'
expect "bad base64 token: 400" 400 '.error == "bad_request"'
req POST /v1/verify '{"token":"'"${TOKEN%?}"'"}'
tamper_code=$CODE
if [ "$tamper_code" = 400 ] || [ "$tamper_code" = 422 ]; then pass "truncated token refused ($tamper_code)"; else fail "truncated token: $tamper_code"; fi
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1,"ttl":3601}'
expect "ttl over max: 400" 400 '.detail | contains("ttl")'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1,"ttl":0}'
expect "ttl 0: 400" 400
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1,"uses":1001}'
expect "uses over 1000: 400" 400 '.detail | contains("uses")'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1,"args_sha256":"'$LD'"}'
expect "args and args_sha256: 400" 400
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list"}'
expect "neither args nor args_sha256: 400" 400
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'${LD^^}'","op":"fs.list","args":1}'
expect "upper-case launch_digest: 400" 400 '.detail | contains("launch_digest")'
req POST /v1/mint '{"aud":"a/b","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1}'
expect "invalid audience: 400" 400 '.detail | contains("aud")'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1.5}'
expect "real number: 400" 400
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.list","args":1,"ttl":"300"}'
expect "ttl as a string: 400" 400
req POST /v1/mint 'not json'
expect "not JSON: 400" 400
req POST /v1/mint "$(printf '[%.0s' $(seq 1 40))"
expect "deep nesting: 400" 400

# --- limits ---------------------------------------------------------------
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" --data-binary @"$T/big" http://attestd/v1/mint)
if [ "$code" = 413 ]; then pass "body over 64 KiB: 413"; else fail "body over 64 KiB: $code"; fi
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" -H 'Transfer-Encoding: chunked' \
    --data-binary @"$T/big" http://attestd/v1/mint)
if [ "$code" = 413 ]; then pass "chunked body over 64 KiB: 413"; else fail "chunked body over 64 KiB: $code"; fi
head -c 65000 /dev/zero | tr '\0' ' ' >"$T/fits"
code=$(curl -s -o /dev/null -w '%{http_code}' --unix-socket "$SOCK" --data-binary @"$T/fits" http://attestd/v1/mint)
if [ "$code" = 400 ]; then pass "body under 64 KiB is parsed (400)"; else fail "body under 64 KiB: $code"; fi

# --- paths, methods, keys rules -------------------------------------------
req GET /v1/nowhere
expect "unknown path: 404" 404 '.error == "not_found"'
req GET /v1/mint
expect "GET /v1/mint: 405" 405 '.error == "method_not_allowed"'
req POST /v1/status '{}'
expect "POST /v1/status: 405" 405
req GET "/v1/keys/proxy?gen=1&epoch=$((EPOCH + 1))"
expect "keys for a future epoch: 404" 404
req GET "/v1/keys/proxy?gen=9&epoch=$EPOCH"
expect "keys for an unknown generation: 404" 404
req GET "/v1/keys/proxy?gen=1&epoch=5"
expect "keys for an epoch before the generation: 404" 404
req GET "/v1/keys/proxy?gen=x&epoch=$EPOCH"
expect "non-numeric gen: 400" 400
req GET "/v1/keys/proxy?gen=1&gen=1"
expect "repeated gen: 400" 400
req GET "/v1/keys/proxy?foo=1"
expect "unknown parameter: 400" 400
req GET "/v1/keys/bad!aud"
expect "invalid audience in path: 400" 400
req POST /v1/admin/reload
expect "reload" 200 '.generation == 1 and .generations == [1]'

# --- keep-alive -----------------------------------------------------------
if curl -sv --unix-socket "$SOCK" http://attestd/v1/status http://attestd/v1/status 2>&1 |
    grep -qi 're-using existing connection'; then
	pass "keep-alive"
else
	fail "keep-alive"
fi
n=$(seq 1 200 | sed "s|.*|url = \"http://attestd/v1/mint\"|" >"$T/urls"; \
    curl -s --unix-socket "$SOCK" -K "$T/urls" -H 'Content-Type: application/json' \
    --data-binary "$MINT" | grep -o '"token"' | wc -l)
if [ "$n" = 200 ]; then pass "200 mints on one connection"; else fail "200 mints on one connection: $n"; fi

# --- clients that misbehave -----------------------------------------------
if command -v python3 >/dev/null; then
	# 50 clients announce a body, send part of it and hang up: each is
	# cleaned up, the server keeps answering, and its log does not grow by
	# a line per client.
	before=$(grep -c ' http: ' "$T/attestd.log")
	python3 - "$SOCK" <<'PY' >>"$T/check.log" 2>&1
import socket, sys
for i in range(50):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    s.sendall(b"POST /v1/mint HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{\"aud\"")
    s.close()
PY
	req POST /v1/mint "$MINT"
	expect "mint after 50 clients hung up mid-body" 200
	after=$(grep -c ' http: ' "$T/attestd.log")
	if [ $((after - before)) -le 11 ]; then
		pass "libmicrohttpd messages are rate-limited ($((after - before)) lines)"
	else
		fail "libmicrohttpd messages are rate-limited ($((after - before)) lines)"
	fi
	# max_connections (64) idle connections: the next client waits, and
	# is served once they are gone.
	if python3 - "$SOCK" <<'PY' >>"$T/check.log" 2>&1; then
import socket, sys, time
idle = []
for i in range(64):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sys.argv[1])
    idle.append(s)
time.sleep(0.3)
c = socket.socket(socket.AF_UNIX)
c.connect(sys.argv[1])
c.sendall(b"GET /v1/status HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
c.settimeout(1.0)
try:
    data = c.recv(4096)
    print("served past the limit:", data[:80])
    sys.exit(1)
except socket.timeout:
    pass
for s in idle:
    s.close()
c.settimeout(10.0)
data = c.recv(4096)
sys.exit(0 if data.startswith(b"HTTP/1.1 200") else 1)
PY
		pass "max_connections: the next client waits until one closes"
	else
		fail "max_connections: the next client waits until one closes"
	fi
else
	skip "misbehaving clients (python3 not installed)"
fi

# --- socket handling and shutdown -----------------------------------------
# Each refusal must be for the reason named, not any failure to start.
if timeout 10 "$BIN/attestd" --tcti "$TCTI" --state-dir "$STATE" --socket "$SOCK" \
    --config "$T/attestd.json" >"$T/attestd2.log" 2>&1; then
	fail "a second attestd on a live socket is refused"
elif grep -q "another process answers on it" "$T/attestd2.log"; then
	pass "a second attestd on a live socket is refused"
else
	fail "a second attestd on a live socket is refused ($(tail -n 1 "$T/attestd2.log"))"
fi
req GET /v1/status
expect "the first attestd still answers" 200
touch "$T/plain"
if timeout 10 "$BIN/attestd" --tcti "$TCTI" --state-dir "$STATE" --socket "$T/plain" \
    --config "$T/attestd.json" >"$T/attestd2.log" 2>&1; then
	fail "refuses to replace a file that is not a socket (it started)"
elif [ -f "$T/plain" ] && grep -q "is not a socket" "$T/attestd2.log"; then
	pass "refuses to replace a file that is not a socket"
else
	fail "refuses to replace a file that is not a socket ($(tail -n 1 "$T/attestd2.log"))"
fi
echo '{"clock_skew_seconds":30}' >"$T/skew.json"
if timeout 10 "$BIN/attestd" --config "$T/skew.json" 2>&1 | grep -q "clock_skew_seconds"; then
	pass "clock_skew_seconds is refused by name (not an attestd setting)"
else
	fail "clock_skew_seconds is refused by name (not an attestd setting)"
fi
if (cd "$T" && timeout 10 "$BIN/attestd" --tcti "$TCTI" --state-dir "$STATE" \
    --socket attestd-rel.sock --config "$T/attestd.json" 2>&1) | grep -q "socket' must be an absolute path"; then
	pass "a relative --socket is refused"
else
	fail "a relative --socket is refused"
fi
refute "an explicit missing --config is an error" "$BIN/attestd" --config "$T/missing.json"
echo '{"epoch_seconds":10}' >"$T/bad.json"
if "$BIN/attestd" --config "$T/bad.json" 2>&1 | grep -q epoch_seconds; then
	pass "a bad config names the field"
else
	fail "a bad config names the field"
fi

kill -TERM "$ATTESTD_PID"
wait "$ATTESTD_PID"
rc=$?
ATTESTD_PID=""
if [ "$rc" = 0 ]; then pass "SIGTERM: exit 0"; else fail "SIGTERM: exit $rc"; fi
if [ ! -e "$SOCK" ]; then pass "SIGTERM removes the socket"; else fail "SIGTERM removes the socket"; fi

# A stale socket left by a killed attestd is replaced.
attestd_start --config "$T/attestd.json" || fail "attestd starts again"
kill -KILL "$ATTESTD_PID"
wait "$ATTESTD_PID" 2>/dev/null
ATTESTD_PID=""
if attestd_start --config "$T/attestd.json"; then pass "a stale socket is replaced"; else fail "a stale socket is replaced"; fi
req POST /v1/mint "$MINT"
expect "after restarts the measured VM is still known (event log replayed)" 200
attestd_stop

check "no leaked TPM handles" no_leaked_handles
finish
