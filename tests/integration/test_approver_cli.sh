#!/usr/bin/env bash
# The approver's administration commands (docs/approver.md): init, users,
# the audit chain and its tamper detection, and the privilege rules. No TPM.
. "$(dirname "$0")/common.sh"

AP="$BIN/approver"
S="$T/state"
PW='correct horse battery staple'

mode() { stat -c %a "$1"; }
owner() { stat -c %U "$1"; }
# sql DB STATEMENTS: the sqlite3 shell if installed, else python3's module.
sql() {
	if command -v sqlite3 >/dev/null 2>&1; then
		sqlite3 "$1" "$2"
	else
		python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()' "$1" "$2"
	fi
}

# --- init ---------------------------------------------------------------------
if "$AP" --state-dir "$S" init >"$T/init.out" 2>&1; then
	pass "init"
else
	fail "init ($(cat "$T/init.out"))"
fi
check "init: folder 0700" test "$(mode "$S")" = 700
check "init: approver.json 0600" test "$(mode "$S/approver.json")" = 600
check "init: key 0600" test "$(mode "$S/tls/key.pem")" = 600
check "init: database 0600" test "$(mode "$S/approver.db")" = 600
check "init: certificate parses" openssl x509 -in "$S/tls/cert.pem" -noout
if openssl x509 -in "$S/tls/cert.pem" -noout -text 2>/dev/null |
    grep -q 'DNS:localhost, IP Address:127.0.0.1'; then
	pass "init: certificate names localhost and 127.0.0.1"
else
	fail "init: certificate subjectAltName"
fi
check "init: key matches the certificate" bash -c "
	[ \"\$(openssl x509 -in '$S/tls/cert.pem' -noout -pubkey)\" = \
	  \"\$(openssl pkey -in '$S/tls/key.pem' -pubout)\" ]"
check "init: configuration names the origin" grep -q '"public_url": "https://localhost:8443"' \
    "$S/approver.json"
check "init: prints what it made" grep -q 'approver.db' "$T/init.out"

cp "$S/approver.json" "$T/cfg.before"
"$AP" --state-dir "$S" init >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'refusing to overwrite' "$T/out" &&
    cmp -s "$S/approver.json" "$T/cfg.before"; then
	pass "init: refuses to overwrite an existing configuration"
else
	fail "init: second init (rc $rc)"
fi
"$AP" --state-dir "$T/ip" init --host 127.0.0.1 >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 2 ] && [ ! -e "$T/ip/approver.json" ]; then
	pass "init: an address as host is refused (passkeys need a name)"
else
	fail "init --host 127.0.0.1 (rc $rc)"
fi
"$AP" --state-dir "$T/p" init --port 70000 >/dev/null 2>&1
check "init: a bad port is a usage error" test $? -eq 2
"$AP" --state-dir "$T/h" init --host a.example --port 9443 >/dev/null 2>&1
check "init --host --port" grep -q '"public_url": "https://a.example:9443"' "$T/h/approver.json"

# --- users --------------------------------------------------------------------
check "user add alice (admin)" bash -c "printf '%s\n' '$PW' | '$AP' --state-dir '$S' user add alice --role admin"
check "user add bob (approver)" bash -c "printf '%s\n' '$PW-2' | '$AP' --state-dir '$S' user add bob --role approver"
refute "user add: a taken name" bash -c "printf '%s\n' '$PW' | '$AP' --state-dir '$S' user add alice --role admin"
printf 'short\n' | "$AP" --state-dir "$S" user add carol --role approver >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'too short' "$T/out"; then
	pass "user add: a short password is refused"
else
	fail "user add: short password (rc $rc: $(cat "$T/out"))"
fi
"$AP" --state-dir "$S" user add carol --role approver </dev/null >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'no password' "$T/out"; then
	pass "user add: an empty password is refused"
else
	fail "user add: empty password (rc $rc)"
fi
printf '%s\n' "$PW" | "$AP" --state-dir "$S" user add carol --role root >"$T/out" 2>&1
check "user add: a bad role is a usage error" test $? -eq 2
printf '%s\n' "$PW" | "$AP" --state-dir "$S" user add 'bad name' --role admin >/dev/null 2>&1
check "user add: a bad name is a usage error" test $? -eq 2
"$AP" --state-dir "$S" user list >"$T/list" 2>&1
if grep -Eq '^alice +admin +no ' "$T/list" && grep -Eq '^bob +approver +no ' "$T/list" &&
    ! grep -q carol "$T/list"; then
	pass "user list"
else
	fail "user list ($(cat "$T/list"))"
fi
check "user disable bob" "$AP" --state-dir "$S" user disable bob
"$AP" --state-dir "$S" user list >"$T/list" 2>&1
check "user list shows bob disabled" grep -Eq '^bob +approver +yes ' "$T/list"
check "user enable bob" "$AP" --state-dir "$S" user enable bob
refute "user disable: no such user" "$AP" --state-dir "$S" user disable nobody-here
hash=$(python3 -c 'import sqlite3,sys
print(sqlite3.connect(sys.argv[1]).execute("select pwhash from users where name=?", ("alice",)).fetchone()[0])' \
    "$S/approver.db" 2>/dev/null)
case "$hash" in
'$argon2id$v=19$m=65536,t=3,p=1$'*) pass "passwords are stored as Argon2id" ;;
*) fail "password hash: '$hash'" ;;
esac
refute "passkey export: no passkey yet" "$AP" --state-dir "$S" passkey export alice

# A passkey as the web page would store it (ES256, 65-byte key), then its
# enrolment record (docs/approvals.md).
PK="04$(printf '11%.0s' $(seq 64))"
check "store a passkey for alice" sql "$S/approver.db" \
    "INSERT INTO credentials(user_id, cred_id, alg, public_key, sign_count, label, created)
     SELECT id, X'0102030405', -7, X'$PK', 3, 'laptop', 100 FROM users WHERE name = 'alice';
     INSERT INTO credentials(user_id, cred_id, alg, public_key, sign_count, label, created)
     SELECT id, X'0a0b0c', -8, X'$(printf '22%.0s' $(seq 32))', 0, 'phone', 200 FROM users WHERE name = 'alice';"
"$AP" --state-dir "$S" passkey list alice >"$T/out" 2>&1
if grep -q 'laptop' "$T/out" && grep -q 'phone' "$T/out" && grep -q 'AQIDBAU' "$T/out"; then
	pass "passkey list"
else
	fail "passkey list ($(cat "$T/out"))"
fi
"$AP" --state-dir "$S" passkey export alice >"$T/rec.json" 2>"$T/out"
if python3 - "$T/rec.json" <<'PYEOF'
import base64, json, sys
d = json.loads(open(sys.argv[1]).read())
assert list(d) == ["v", "approver", "credential_id", "alg", "public_key", "rp_id", "sign_count"], d
assert d["v"] == 1 and d["approver"] == "alice" and d["rp_id"] == "localhost"
assert d["credential_id"] == "CgsM" and d["alg"] == "EdDSA" and d["sign_count"] == 0
assert base64.urlsafe_b64decode(d["public_key"] + "=") == b"\x22" * 32
PYEOF
then
	pass "passkey export: the newest, as an enrolment record"
else
	fail "passkey export ($(cat "$T/rec.json" "$T/out"))"
fi
"$AP" --state-dir "$S" passkey export alice --credential AQIDBAU >"$T/rec.json" 2>"$T/out"
if python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["alg"]=="ES256" and d["sign_count"]==3 and d["credential_id"]=="AQIDBAU"' "$T/rec.json"; then
	pass "passkey export --credential"
else
	fail "passkey export --credential ($(cat "$T/rec.json" "$T/out"))"
fi
refute "passkey export: an unknown credential" "$AP" --state-dir "$S" passkey export alice --credential AAAA
"$AP" --state-dir "$S" passkey export alice --credential 'not base64!' >/dev/null 2>&1
check "passkey export: a malformed id is a usage error" test $? -eq 2

# --- the audit chain ----------------------------------------------------------
"$AP" --state-dir "$S" audit verify >"$T/out" 2>&1
rc=$?
# init, two adds, disable, enable.
if [ "$rc" -eq 0 ] && grep -q '^audit: 5 records, chain intact$' "$T/out"; then
	pass "audit verify: intact"
else
	fail "audit verify (rc $rc: $(cat "$T/out"))"
fi
"$AP" --state-dir "$S" audit list --limit 2 >"$T/out" 2>&1
if [ "$(wc -l <"$T/out")" -eq 2 ] && head -1 "$T/out" | grep -q 'user_enable'; then
	pass "audit list: newest first, limited"
else
	fail "audit list ($(cat "$T/out"))"
fi

refute "audit rows cannot be changed through SQL" sql "$S/approver.db" \
    "UPDATE audit SET actor = 'mallory' WHERE seq = 3;"
refute "audit rows cannot be deleted through SQL" sql "$S/approver.db" \
    "DELETE FROM audit WHERE seq = 3;"
check "tamper: drop the triggers, rewrite record 3" sql "$S/approver.db" \
    "DROP TRIGGER audit_no_update; DROP TRIGGER audit_no_delete;
     UPDATE audit SET actor = 'mallory' WHERE seq = 3;"
"$AP" --state-dir "$S" audit verify >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'record 3' "$T/out"; then
	pass "audit verify: the rewritten record is named"
else
	fail "audit verify after tampering (rc $rc: $(cat "$T/out"))"
fi
check "tamper: delete record 2" sql "$S/approver.db" "DELETE FROM audit WHERE seq = 2;"
"$AP" --state-dir "$S" audit verify >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'record 3' "$T/out"; then
	pass "audit verify: a deleted record is noticed"
else
	fail "audit verify after deletion (rc $rc: $(cat "$T/out"))"
fi

# --- usage --------------------------------------------------------------------
"$AP" >/dev/null 2>&1
check "no command is a usage error" test $? -eq 2
"$AP" --state-dir "$S" frobnicate >/dev/null 2>&1
check "an unknown command is a usage error" test $? -eq 2
"$AP" --state-dir "$S" user list --bogus >/dev/null 2>&1
check "an unknown option is a usage error" test $? -eq 2
"$AP" --state-dir "$T/missing" user list >"$T/out" 2>&1
if [ $? -eq 1 ] && grep -q 'approver init' "$T/out"; then
	pass "a missing state folder says to run init"
else
	fail "missing state folder"
fi

# --- privileges ---------------------------------------------------------------
if [ "$(id -u)" -ne 0 ]; then
	skip "serve refuses root (not running as root)"
	skip "init --user (not running as root)"
	finish
fi
"$AP" --state-dir "$S" serve --listen 127.0.0.1:1 >"$T/out" 2>&1
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'init --user' "$T/out"; then
	pass "serve: refuses root on a root-owned state folder"
else
	fail "serve as root (rc $rc: $(cat "$T/out"))"
fi
if ! id nobody >/dev/null 2>&1; then
	skip "init --user (no account 'nobody')"
	finish
fi
N="$T/svc"
check "init --user nobody" "$AP" --state-dir "$N" init --user nobody
if [ -z "$(find "$N" ! -user nobody)" ]; then
	pass "init --user: everything belongs to nobody"
else
	fail "init --user: $(find "$N" ! -user nobody | tr '\n' ' ')"
fi
check "user add as root on nobody's folder" bash -c "printf '%s\n' '$PW' | '$AP' --state-dir '$N' user add dave --role approver"
if [ -z "$(find "$N" ! -user nobody)" ]; then
	pass "user add as root: files stay nobody's"
else
	fail "user add as root left: $(find "$N" ! -user nobody | tr '\n' ' ')"
fi
check "audit verify as root on nobody's folder" "$AP" --state-dir "$N" audit verify

# serve as the folder's owner: the ready line, then a clean stop on SIGTERM.
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AP" --state-dir "$N" serve --listen "127.0.0.1:$PORT" --attestd-socket "$T/no-attestd.sock" \
    >"$T/serve.out" 2>"$T/serve.err" &
SPID=$!
ready=0
for _ in $(seq 1 100); do
	if grep -q '^approver: serving https://' "$T/serve.out"; then ready=1; break; fi
	kill -0 "$SPID" 2>/dev/null || break
	sleep 0.1
done
if [ "$ready" -eq 1 ] && grep -q "127.0.0.1:$PORT (api: $N/api.sock)" "$T/serve.out"; then
	pass "serve: ready line"
else
	fail "serve: not ready ($(cat "$T/serve.out" "$T/serve.err"))"
fi
if [ "$ready" -eq 1 ] && [ "$(stat -c %u /proc/$SPID)" = "$(id -u nobody)" ] &&
    grep -q '^Uid:.*\b'"$(id -u nobody)"'\b' "/proc/$SPID/status"; then
	pass "serve: runs as the folder's owner"
else
	fail "serve: not running as nobody"
fi
if [ "$ready" -eq 1 ] && grep -q '^Uid:' "/proc/$SPID/status" &&
    [ "$(stat -c %U "$N/api.sock" 2>/dev/null)" = nobody ]; then
	pass "serve: the API socket is nobody's"
else
	fail "serve: API socket owner"
fi
kill -TERM "$SPID" 2>/dev/null
wait "$SPID"
rc=$?
check "serve: exits 0 on SIGTERM" test "$rc" -eq 0
finish
