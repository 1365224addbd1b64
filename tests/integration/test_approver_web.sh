#!/usr/bin/env bash
# The approver's web form over HTTPS with curl: no browser, no TPM, and an
# attestd socket that does not exist (pages say "could not ask attestd").
# Checks the login page's labels, the security headers on every response,
# the session cookie's attributes, the Origin and CSRF checks, the failed
# login limit, logout, and (through the proxies' API on S/api.sock) that a
# request's markup renders as text and that a denial needs a reason.
. "$(dirname "$0")/common.sh"

APPROVER="$BIN/approver"
S="$T/approver"
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
	skip "approver web (no $APPROVER)"
	exit 0
fi
for tool in curl python3; do
	if ! command -v "$tool" >/dev/null; then
		skip "approver web (no $tool)"
		exit 0
	fi
done

PORT=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
BASE="https://localhost:$PORT"
mkdir -p "$S"
# As root, the approver serves as nobody: it must own its state folder.
if [ "$(id -u)" = 0 ]; then
	chown nobody "$S"
fi
if ! "$APPROVER" --state-dir "$S" init --port "$PORT" --user nobody >"$T/init.log" 2>&1; then
	fail "approver init ($(tail -n 3 "$T/init.log" | tr '\n' ' '))"
	exit 0
fi
for u in alice bob; do
	if ! printf '%s\n' "$PW" | "$APPROVER" --state-dir "$S" user add "$u" --role approver \
	    >>"$T/init.log" 2>&1; then
		fail "approver user add $u ($(tail -n 3 "$T/init.log" | tr '\n' ' '))"
		exit 0
	fi
done
"$APPROVER" --state-dir "$S" serve --listen "127.0.0.1:$PORT" \
    --attestd-socket "$T/no-attestd.sock" >>"$T/serve.log" 2>&1 &
APPROVER_PID=$!
up=""
for _ in $(seq 1 100); do
	if [ "$(curl -sk -o /dev/null -w '%{http_code}' "$BASE/login")" = 200 ]; then
		up=1
		break
	fi
	kill -0 "$APPROVER_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$up" ]; then
	fail "approver serve did not come up ($(tail -n 5 "$T/serve.log" | tr '\n' ' '))"
	exit 0
fi

# get JAR PATH OUT: a GET with the jar; prints the status.
get() {
	curl -sk -c "$1" -b "$1" -D "$3.h" -o "$3" -w '%{http_code}' "$BASE$2"
}
# post JAR PATH OUT [curl args]: a same-origin form post; prints the status.
post() {
	local jar=$1 path=$2 out=$3
	shift 3
	curl -sk -c "$jar" -b "$jar" -D "$out.h" -o "$out" -w '%{http_code}' -H "Origin: $BASE" \
	    "$@" "$BASE$path"
}
csrf_of() { sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$1" | head -n 1; }
# The token of a request page's decision form (the first one is sign-out's).
decide_csrf_of() {
	sed -n '/id="decide"/,/<\/form>/s/.*name="csrf" value="\([^"]*\)".*/\1/p' "$1" | head -n 1
}
# login JAR USER PASSWORD: prints the status of the form post.
login() {
	local jar=$1
	get "$jar" /login "$T/login.html" >/dev/null
	post "$jar" /login "$T/login-post.html" --data-urlencode "csrf=$(csrf_of "$T/login.html")" \
	    --data-urlencode "username=$2" --data-urlencode "password=$3"
}
has_header() { grep -qi "^$2" "$1"; }

# --- the login page ------------------------------------------------------------
code=$(get "$T/j0" /login "$T/l.html")
if [ "$code" = 200 ] && grep -q '<label for="username">Username</label>' "$T/l.html" &&
    grep -q '<label for="password">Password</label>' "$T/l.html" &&
    grep -q 'id="username"' "$T/l.html" && grep -q 'type="password" id="password"' "$T/l.html"; then
	pass "/login has fields labelled Username and Password"
else
	fail "/login labels (HTTP $code)"
fi

# --- headers on every kind of response -------------------------------------------
headers_ok=1
for path in /login /static/style.css /static/approve.js /requests /nope "/requests?state=bogus"; do
	get "$T/j0" "$path" "$T/h.out" >/dev/null
	if ! has_header "$T/h.out.h" "Content-Security-Policy: default-src 'none'; script-src 'self'.*frame-ancestors 'none'" ||
	    ! has_header "$T/h.out.h" "Cache-Control: no-store" ||
	    ! has_header "$T/h.out.h" "X-Content-Type-Options: nosniff" ||
	    ! has_header "$T/h.out.h" "X-Frame-Options: DENY" ||
	    ! has_header "$T/h.out.h" "Referrer-Policy: no-referrer" ||
	    ! has_header "$T/h.out.h" "Strict-Transport-Security: max-age="; then
		headers_ok=0
		echo "missing headers on $path" >>"$T/check.log"
	fi
done
code=$(curl -sk -o /dev/null -D "$T/post.h" -w '%{http_code}' -H "Origin: https://evil.example" \
    -d x=1 "$BASE/login")
has_header "$T/post.h" "Content-Security-Policy: .*frame-ancestors 'none'" || headers_ok=0
if [ "$headers_ok" = 1 ]; then
	pass "CSP with frame-ancestors 'none', no-store, nosniff, DENY on every response"
else
	fail "security headers missing on some response"
fi

# --- signing in ---------------------------------------------------------------------
code=$(login "$T/ja" alice "$PW")
setc=$(grep -i '^Set-Cookie: __Host-session=' "$T/login-post.html.h" | tr -d '\r')
if [ "$code" = 303 ] && grep -qi '^Location: /requests' "$T/login-post.html.h" &&
    [[ "$setc" == *"; Secure"* ]] && [[ "$setc" == *"; HttpOnly"* ]] &&
    [[ "$setc" == *"; SameSite=Strict"* ]] && [[ "$setc" == *"; Path=/"* ]] &&
    [[ "$setc" != *"Domain"* ]]; then
	pass "login sets __Host-session with Secure, HttpOnly, SameSite=Strict, Path=/, no Domain"
else
	fail "login cookie (HTTP $code: $setc)"
fi
code=$(get "$T/ja" /requests "$T/list.html")
if [ "$code" = 200 ] && grep -q 'id="requests"' "$T/list.html"; then
	pass "signed in: /requests lists pending requests"
else
	fail "/requests after login (HTTP $code)"
fi
code=$(get "$T/jnone" /requests "$T/x.html")
if [ "$code" = 303 ] && grep -qi '^Location: /login' "$T/x.html.h"; then
	pass "without a session /requests sends to /login"
else
	fail "/requests without a session (HTTP $code)"
fi
GCSRF=$(csrf_of "$T/list.html")

# --- Origin and CSRF ------------------------------------------------------------------
code=$(curl -sk -c "$T/ja" -b "$T/ja" -o "$T/x.html" -w '%{http_code}' \
    -H "Origin: https://evil.example" --data-urlencode "csrf=$GCSRF" "$BASE/passkeys/options")
if [ "$code" = 403 ] && grep -q 'refused a cross-site form' "$T/x.html"; then
	pass "a POST with a foreign Origin is 403"
else
	fail "foreign Origin (HTTP $code)"
fi
code=$(curl -sk -c "$T/ja" -b "$T/ja" -o /dev/null -w '%{http_code}' \
    -H "Sec-Fetch-Site: cross-site" --data-urlencode "csrf=$GCSRF" "$BASE/passkeys/options")
if [ "$code" = 403 ]; then
	pass "a POST without Origin and with Sec-Fetch-Site: cross-site is 403"
else
	fail "Sec-Fetch-Site cross-site (HTTP $code)"
fi
code=$(curl -sk -c "$T/ja" -b "$T/ja" -o /dev/null -w '%{http_code}' -H "Origin: null" \
    -H "Sec-Fetch-Site: same-origin" --data-urlencode "csrf=$GCSRF" "$BASE/passkeys/options")
code2=$(curl -sk -c "$T/ja" -b "$T/ja" -o /dev/null -w '%{http_code}' -H "Origin: null" \
    -H "Sec-Fetch-Site: cross-site" --data-urlencode "csrf=$GCSRF" "$BASE/passkeys/options")
if [ "$code" = 200 ] && [ "$code2" = 403 ]; then
	pass "Origin: null is judged by Sec-Fetch-Site (same-origin 200, cross-site 403)"
else
	fail "Origin: null (same-origin: HTTP $code, cross-site: HTTP $code2)"
fi
# The right Origin, but sent to another host name (what a relay or a
# rebound DNS name would deliver).
code=$(curl -sk -o /dev/null -w '%{http_code}' -H "Origin: $BASE" \
    -H "Cookie: __Host-session=$(awk '$6 == "__Host-session" { print $7 }' "$T/ja")" \
    --data-urlencode "csrf=$GCSRF" "https://127.0.0.1:$PORT/passkeys/options")
if [ "$code" = 403 ]; then
	pass "a POST under another host name is 403 even with our Origin"
else
	fail "POST under another host name (HTTP $code)"
fi
code=$(post "$T/ja" /passkeys/options "$T/x.html" -d "x=1")
if [ "$code" = 403 ]; then
	pass "a POST without a CSRF token is 403"
else
	fail "POST without a CSRF token (HTTP $code)"
fi
code=$(post "$T/ja" /passkeys/options "$T/opts.json" --data-urlencode "csrf=$GCSRF")
if [ "$code" = 200 ] && python3 - "$T/opts.json" <<'PY' >>"$T/check.log" 2>&1
import json, sys
o = json.load(open(sys.argv[1]))
assert {p["alg"] for p in o["pubKeyCredParams"]} == {-7, -8}
assert o["authenticatorSelection"]["userVerification"] == "required"
assert o["attestation"] == "none" and o["rp"]["id"] == "localhost"
assert len(o["challenge"]) == 43
PY
then
	pass "passkey registration options: ES256 and EdDSA, user verification required"
else
	fail "passkey options (HTTP $code)"
fi
code=$(get "$T/ja" /passkeys "$T/pk.html")
if [ "$code" = 200 ] && grep -q 'id="add-passkey">Add a passkey<' "$T/pk.html"; then
	pass "/passkeys has the Add a passkey button"
else
	fail "/passkeys (HTTP $code)"
fi

# --- requests through the proxies' API ---------------------------------------------------
submit() {
	# submit ID OWNER: a request whose reason and arguments hold markup.
	python3 - "$1" "$2" <<'PY'
import hashlib, json, sys
args = {"path": "/tmp/<script>alert(1)</script>", "quote": "\"'&<b>"}
canon = json.dumps(args, sort_keys=True, separators=(",", ":")).encode()
body = {"id": sys.argv[1], "aud": "proxy", "vm": "vm-web-test", "launch_digest": "ab" * 32,
        "op": "fs.write", "args": args, "args_sha256": hashlib.sha256(canon).hexdigest(),
        "reason": "<script>alert('reason')</script> javascript:alert(2)", "requested_ttl": 60}
if sys.argv[2]:
    body["owner"] = sys.argv[2]
print(json.dumps(body))
PY
}
ID1=$(python3 -c 'import os; print(os.urandom(16).hex())')
ID2=$(python3 -c 'import os; print(os.urandom(16).hex())')
api_ok=1
for _ in $(seq 1 50); do
	[ -S "$S/api.sock" ] && break
	sleep 0.1
done
for id in "$ID1" "$ID2"; do
	owner=""
	[ "$id" = "$ID2" ] && owner=alice
	code=$(submit "$id" "$owner" | curl -s --unix-socket "$S/api.sock" -o "$T/sub.json" \
	    -w '%{http_code}' -H 'Content-Type: application/json' --data-binary @- \
	    http://approver/api/v1/requests)
	if [ "$code" != 201 ]; then
		api_ok=0
		echo "submit $id: HTTP $code $(cat "$T/sub.json")" >>"$T/check.log"
	fi
done
if [ "$api_ok" = 1 ]; then
	code=$(get "$T/ja" /requests/$ID1 "$T/r1.html")
	if [ "$code" = 200 ] && ! grep -q '<script>alert' "$T/r1.html" &&
	    grep -q '&lt;script&gt;alert(&#39;reason&#39;)&lt;/script&gt;' "$T/r1.html" &&
	    grep -q '&lt;script&gt;alert(1)&lt;/script&gt;' "$T/r1.html" &&
	    ! grep -q '<script>' <(grep -v '<script src="/static/' "$T/r1.html"); then
		pass "a request's reason and arguments with <script> render escaped"
	else
		fail "request page escaping (HTTP $code)"
	fi
	if grep -q 'id="state">pending<' "$T/r1.html" && grep -Eq 'id="digest"[^>]*>[0-9a-f]{64}<' "$T/r1.html" &&
	    grep -q 'could not ask attestd' "$T/r1.html" &&
	    grep -q '<button type="submit" id="approve">Approve</button>' "$T/r1.html" &&
	    grep -q 'id="deny"[^>]*>Deny</button>' "$T/r1.html" &&
	    grep -q '<label for="reason">Reason</label>' "$T/r1.html"; then
		pass "request page: state, digest, attestd status, Approve, Deny and Reason"
	else
		fail "request page contents"
	fi
	RCSRF=$(decide_csrf_of "$T/r1.html")
	code=$(post "$T/ja" /requests/$ID1/deny "$T/d.html" --data-urlencode "csrf=$RCSRF" \
	    --data-urlencode "reason=   ")
	if [ "$code" = 400 ] && grep -q 'class="error" role="alert">A reason is required' "$T/d.html" &&
	    grep -q 'id="state">pending<' "$T/d.html"; then
		pass "a deny with an empty reason is refused"
	else
		fail "deny with an empty reason (HTTP $code)"
	fi
	code=$(post "$T/ja" /requests/$ID1/approve "$T/d.html" --data-urlencode "csrf=$RCSRF" \
	    --data-urlencode "reason=fine")
	if [ "$code" = 400 ] && grep -q 'needs your passkey' "$T/d.html"; then
		pass "an approve without a passkey assertion asks for the passkey"
	else
		fail "approve without an assertion (HTTP $code)"
	fi
	code=$(get "$T/ja" /requests/$ID2 "$T/r2.html")
	R2CSRF=$(decide_csrf_of "$T/r2.html")
	code=$(post "$T/ja" /requests/$ID1/deny "$T/d.html" --data-urlencode "csrf=$R2CSRF" \
	    --data-urlencode "reason=wrong token")
	if [ "$code" = 403 ]; then
		pass "a CSRF token of another request's page is refused"
	else
		fail "CSRF token of another request (HTTP $code)"
	fi
	code=$(post "$T/ja" /requests/$ID1/deny "$T/d.html" --data-urlencode "csrf=$RCSRF" \
	    --data-urlencode "reason=not <b>today</b>")
	loc=$(grep -i '^Location:' "$T/d.html.h" | tr -d '\r')
	get "$T/ja" "/requests/$ID1?done=denied" "$T/r1b.html" >/dev/null
	if [ "$code" = 303 ] && [[ "$loc" == *"/requests/$ID1?done=denied" ]] &&
	    grep -q 'id="state">denied<' "$T/r1b.html" &&
	    grep -q 'not &lt;b&gt;today&lt;/b&gt;' "$T/r1b.html"; then
		pass "deny with a reason: 303 to the request, state denied, the reason as text"
	else
		fail "deny with a reason (HTTP $code, $loc)"
	fi
	state=$(curl -s --unix-socket "$S/api.sock" http://approver/api/v1/requests/$ID1 |
	    python3 -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null)
	if [ "$state" = denied ]; then
		pass "the proxy sees the denial through the API"
	else
		fail "API state after the denial: '$state'"
	fi
	code=$(post "$T/ja" /requests/$ID2/deny "$T/d2.html" --data-urlencode "csrf=$R2CSRF" \
	    --data-urlencode "reason=my own")
	if grep -q 'your own' "$T/r2.html" && [ "$code" = 403 ] &&
	    grep -q 'class="error" role="alert">Your decision was not recorded' "$T/d2.html" &&
	    grep -q 'id="state">pending<' "$T/d2.html"; then
		pass "the owner of a request cannot decide it; the reason is shown"
	else
		fail "owner's decision on their own request (HTTP $code)"
	fi
	get "$T/ja" /audit "$T/audit.html" >/dev/null
	if grep -q '<td>view</td>' "$T/audit.html" && grep -q '<td>login</td>' "$T/audit.html"; then
		pass "/audit lists logins and views"
	else
		fail "/audit"
	fi
else
	fail "submitting requests through $S/api.sock"
fi

# --- an oversized body ------------------------------------------------------------------------
# Announced by Content-Length with "Expect: 100-continue": answered 413 at
# once, the body never sent; without it, 413 after the body was discarded.
head -c 1000000 /dev/zero | tr '\0' 'a' >"$T/big"
head -c 100000 /dev/zero | tr '\0' 'a' >"$T/big2"
code=$(curl -sk -o "$T/big.html" -w '%{http_code}' -H "Origin: $BASE" -H 'Expect: 100-continue' \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$T/big" "$BASE/login")
code2=$(curl -sk -o "$T/big2.html" -w '%{http_code}' -H "Origin: $BASE" -H 'Expect:' \
    -H 'Content-Type: application/x-www-form-urlencoded' --data-binary @"$T/big2" "$BASE/login")
if [ "$code" = 413 ] && grep -q 'The form was too large' "$T/big.html" && [ "$code2" = 413 ]; then
	pass "oversized forms are answered 413 (1 MB: before it is sent; 100 kB: after)"
else
	fail "oversized form (1 MB: HTTP $code, 100 kB: HTTP $code2)"
fi

# --- the failed-login limit ---------------------------------------------------------------
# Nothing sleeps in the server: after k failures, attempts are answered 429
# with Retry-After until last failure + 250 ms * 2^(k-1); at 5 the account is
# locked for the window. Failures are counted per name and per address.
# login_from ADDR JAR USER PASSWORD: login from a given loopback address.
login_from() {
	local addr=$1 jar=$2
	curl -sk --interface "$addr" -c "$jar" -b "$jar" -o "$T/login.html" "$BASE/login"
	curl -sk --interface "$addr" -c "$jar" -b "$jar" -D "$T/login-post.html.h" \
	    -o "$T/login-post.html" -w '%{http_code}' -H "Origin: $BASE" \
	    --data-urlencode "csrf=$(csrf_of "$T/login.html")" --data-urlencode "username=$3" \
	    --data-urlencode "password=$4" "$BASE/login"
}
retry_after() { sed -n 's/^Retry-After: *\([0-9]*\).*/\1/ip' "$T/login-post.html.h" | head -n 1; }

t0=$(date +%s%N)
c1=$(login "$T/jb" bob "wrong password 1")
c2=$(login "$T/jb" bob "wrong password 2")
ra=$(retry_after)
t1=$(date +%s%N)
if [ "$c1" = 401 ] && [ "$c2" = 429 ] && [ -n "$ra" ] && [ "$ra" -ge 1 ] && [ "$ra" -le 2 ] &&
    grep -q 'Too many failed sign-ins; try again in [0-9]* second' "$T/login-post.html"; then
	pass "a second wrong password at once is answered 429 with Retry-After $ra" \
	    "($(( (t1 - t0) / 1000000 )) ms for both)"
else
	fail "throttle after one failure (HTTP $c1 then $c2, Retry-After '$ra')"
fi
codes=""
for i in 2 3 4 5; do
	for _ in 1 2 3; do
		sleep "${ra:-1}"
		code=$(login "$T/jb" bob "wrong password $i")
		ra=$(retry_after)
		[ "$code" = 429 ] || break
	done
	codes="$codes $code"
done
code=$(login "$T/jb" bob "$PW")
ra=$(retry_after)
if [ "$codes" = " 401 401 401 401" ] && [ "$code" = 429 ] && [ -n "$ra" ] &&
    grep -q 'Too many failed sign-ins; try again later' "$T/login-post.html"; then
	pass "5 wrong passwords lock the account: the right one then gets 429 (Retry-After $ra)"
else
	fail "login limit (wrong:$codes, right: $code)"
fi
# The lockout is audited once, by the failure that reached it, not by each
# refused attempt (an outsider could otherwise fill the audit trail).
login "$T/jb" bob "$PW" >/dev/null
get "$T/ja" /audit "$T/audit2.html" >/dev/null
n=$(grep -o '<td>bob</td><td>login_locked</td>' "$T/audit2.html" | wc -l)
nf=$(grep -o '<td>bob</td><td>login_failed</td>' "$T/audit2.html" | wc -l)
if [ "$n" = 1 ] && [ "$nf" = 5 ]; then
	pass "the lockout is audited once; refused attempts are not audited"
else
	fail "audit of the lockout: $n login_locked, $nf login_failed for bob"
fi
# The address that failed 5 times waits 4 s even for another account; another
# address is not held back by it.
code=$(login "$T/jc" alice "$PW")
code2=$(login_from 127.0.0.2 "$T/jd" alice "$PW")
if [ "$code" = 429 ] && [ "$code2" = 303 ]; then
	pass "failures are counted per address: 127.0.0.1 waits, 127.0.0.2 signs in"
else
	fail "per-address throttle (127.0.0.1: HTTP $code, 127.0.0.2: HTTP $code2)"
fi
# Parallel guesses: the failure is recorded before the password is checked,
# so of 8 wrong passwords sent at once from a fresh address for one name,
# one is checked (401) and the others are refused at once (429).
for i in 1 2 3 4 5 6 7 8; do
	curl -sk --interface 127.0.0.4 -c "$T/jp$i" -b "$T/jp$i" -o "$T/lp$i.html" "$BASE/login"
done
pids=""
for i in 1 2 3 4 5 6 7 8; do
	curl -sk --interface 127.0.0.4 -c "$T/jp$i" -b "$T/jp$i" -o /dev/null -w '%{http_code}\n' \
	    -H "Origin: $BASE" --data-urlencode "csrf=$(csrf_of "$T/lp$i.html")" \
	    --data-urlencode "username=mallory" --data-urlencode "password=guess number $i" \
	    "$BASE/login" >"$T/par$i" &
	pids="$pids $!"
done
# shellcheck disable=SC2086
wait $pids
checked=$(cat "$T"/par? | grep -c '^401$')
refused=$(cat "$T"/par? | grep -c '^429$')
if [ "$checked" = 1 ] && [ "$refused" = 7 ]; then
	pass "8 parallel wrong passwords: $checked checked, $refused refused at once"
else
	fail "parallel wrong passwords: $checked checked (401), $refused refused (429) of 8"
fi
# A password of exactly PASSWORD_MAX bytes followed by more is wrong (it was
# once cut to PASSWORD_MAX bytes and then accepted).
LONG=$(head -c 1024 /dev/zero | tr '\0' 'x')
if printf '%s\n' "$LONG" | "$APPROVER" --state-dir "$S" user add carol --role approver \
    >>"$T/init.log" 2>&1; then
	code=$(login_from 127.0.0.3 "$T/je" carol "${LONG}y")
	sleep 2
	code2=$(login_from 127.0.0.3 "$T/je" carol "$LONG")
	if [ "$code" = 401 ] && [ "$code2" = 303 ]; then
		pass "a 1024-byte password with a suffix is refused; the password itself signs in"
	else
		fail "over-long password (with suffix: HTTP $code, exact: HTTP $code2)"
	fi
else
	fail "approver user add carol with a 1024-byte password ($(tail -n 2 "$T/init.log" | tr '\n' ' '))"
fi

# --- logout ----------------------------------------------------------------------------------
old=$(awk '$6 == "__Host-session" { print $7 }' "$T/ja")
code=$(post "$T/ja" /logout "$T/x.html" --data-urlencode "csrf=$GCSRF")
after=$(curl -sk -o /dev/null -w '%{http_code}' -H "Cookie: __Host-session=$old" "$BASE/requests")
if [ "$code" = 303 ] && grep -qi '^Set-Cookie: __Host-session=; .*Max-Age=0' "$T/x.html.h" &&
    [ "$after" = 303 ]; then
	pass "logout expires the cookie and ends the session on the server"
else
	fail "logout (HTTP $code, old cookie afterwards: HTTP $after)"
fi

exit 0
