#!/usr/bin/env bash
# The approver's benchmark (tests/bench/run calls it; it also runs alone):
# a private swtpm, attestd with approvals, a measured VM (nothing boots),
# the approver serving as nobody, and
#   1. the web form under load: 1,000 pending requests submitted through
#      the proxies' API, then wrk over HTTPS (WRK_THREADS threads,
#      WRK_CONNS connections, WRK_SECONDS s each) with a signed-in
#      session's cookie (from a curl sign-in) on the pending list, on one
#      request's page, and on the static style sheet as the baseline (same
#      server, same TLS, no database): pages/s, and every answer not a 200
#      counted as an error;
#   2. from the last approval to the token reaching the proxy:
#      tests/browser/bench-approve.mjs (alice in headless Chromium with a
#      virtual passkey; a client long-polling GET /api/v1/requests/ID?wait=30
#      and taking the token with POST .../token), LATENCY_RUNS times; p50
#      and p95 (target < 50 ms).
# Prints figures and "RESULT approver ..." lines for tests/bench/run's
# summary; never fails on timing. Cleans up everything it started.
set -u
cd "$(dirname "$0")/../.."
: "${BIN:=build/bin}" "${WRK_SECONDS:=10}" "${WRK_THREADS:=2}" "${WRK_CONNS:=2}"
: "${PENDING:=1000}" "${LATENCY_RUNS:=20}"
BIN=$(cd "$BIN" && pwd)
ROOT=$(pwd)
SCRIPTS=$ROOT/swtpm-scripts
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}

W=$(mktemp -d "${TMPDIR:-/tmp}/warrant-bench-approver.XXXXXX")
# The approver runs as nobody: it must reach its state and attestd's socket.
chmod 0755 "$W"
SOCK="$W/attestd.sock"
S="$W/approver"
PW="bench password, long enough"
ATTESTD_PID="" APPROVER_PID=""

die() { echo "bench approver: $*" >&2; exit 1; }

cleanup() {
	[ -n "$APPROVER_PID" ] && kill "$APPROVER_PID" 2>/dev/null && wait "$APPROVER_PID" 2>/dev/null
	[ -n "$ATTESTD_PID" ] && kill "$ATTESTD_PID" 2>/dev/null && wait "$ATTESTD_PID" 2>/dev/null
	[ -f "$W/tpm/swtpm.pid" ] && "$SCRIPTS/swtpm-stop" "$W/tpm" >/dev/null 2>&1
	rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for x in attestd attestctl attest-keys approver; do
	[ -x "$BIN/$x" ] || die "$BIN/$x not built"
done
command -v wrk >/dev/null || die "wrk is not installed (scripts/install-deps)"

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
BASE="https://localhost:$PORT"

mkdir -p "$W/tpm"
TCTI=$("$SCRIPTS/swtpm-start" "$W/tpm") || die "swtpm did not start"
export TPM2TOOLS_TCTI="$TCTI"
"$BIN/attest-keys" --tcti "$TCTI" --state-dir "$W/keys" init >"$W/init.json" ||
	die "attest-keys init failed"
cat >"$W/attestd.json" <<EOF
{"socket_group": "nogroup",
 "roles": {"root": ["admin", "mint", "launch", "verify:*"], "nobody": ["mint"]},
 "approvals": {"rp_id": "localhost", "origins": ["$BASE"], "quorum": {"default": 1}}}
EOF
"$BIN/attestd" --config "$W/attestd.json" --tcti "$TCTI" --state-dir "$W/keys" --socket "$SOCK" \
    >>"$W/attestd.log" 2>&1 &
ATTESTD_PID=$!
for _ in $(seq 1 100); do
	"$BIN/attestctl" --socket "$SOCK" status >/dev/null 2>&1 && break
	kill -0 "$ATTESTD_PID" 2>/dev/null || { cat "$W/attestd.log" >&2; die "attestd did not start"; }
	sleep 0.1
done

# attestd mints only for a VM it measured: a small one, its fs.write gated.
mkdir -p "$W/vm"
printf 'stand-in kernel\n' >"$W/vm/kernel"
printf 'stand-in initrd\n' >"$W/vm/initrd"
printf '{"name":"bench-approver","kernel":"kernel","initrd":"initrd","cmdline":"",
 "vcpus":1,"memory_mib":64,"vmm":"qemu","envelope":{"fs.write":"ask"}}\n' >"$W/vm/manifest.json"
"$BIN/attestctl" --socket "$SOCK" measure "$W/vm/manifest.json" >"$W/measure.json" ||
	die "attestctl measure failed"
VM=$(jq -r .vm "$W/measure.json")
LD=$(jq -r .launch_digest "$W/measure.json")

"$BIN/approver" --state-dir "$S" init --port "$PORT" --user nobody >"$W/approver.log" 2>&1 ||
	{ cat "$W/approver.log" >&2; die "approver init failed"; }
printf '%s\n' "$PW" | "$BIN/approver" --state-dir "$S" user add alice --role approver \
    >>"$W/approver.log" 2>&1 || { cat "$W/approver.log" >&2; die "approver user add failed"; }
"$BIN/approver" --state-dir "$S" serve --listen "127.0.0.1:$PORT" --attestd-socket "$SOCK" \
    >>"$W/approver.log" 2>&1 &
APPROVER_PID=$!
for _ in $(seq 1 100); do
	[ "$(curl -sk -o /dev/null -w '%{http_code}' "$BASE/login")" = 200 ] && [ -S "$S/api.sock" ] &&
		break
	kill -0 "$APPROVER_PID" 2>/dev/null || { cat "$W/approver.log" >&2; die "approver serve exited"; }
	sleep 0.1
done

echo "-- the web form under load: $PENDING pending requests, wrk $WRK_THREADS threads," \
    "$WRK_CONNS connections, ${WRK_SECONDS}s per page"
t0=$EPOCHREALTIME
python3 - "$S/api.sock" "$VM" "$LD" "$PENDING" >"$W/ids.txt" <<'EOF' || die "submitting requests failed"
import hashlib, http.client, json, os, socket, sys
path, vm, ld, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
class C(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(path)
conn = C("approver")
for i in range(n):
    args = {"path": "/bench/%05d.txt" % i, "data": "x" * 64}
    canon = json.dumps(args, sort_keys=True, separators=(",", ":")).encode()
    rid = os.urandom(16).hex()
    body = {"id": rid, "aud": "proxy", "vm": vm, "launch_digest": ld, "op": "fs.write",
            "args": args, "args_sha256": hashlib.sha256(canon).hexdigest(),
            "reason": "benchmark request %d" % i, "requested_ttl": 60}
    conn.request("POST", "/api/v1/requests", json.dumps(body),
                 {"Content-Type": "application/json"})
    r = conn.getresponse()
    data = r.read()
    if r.status != 201:
        sys.exit("request %d: HTTP %d %s" % (i, r.status, data[:200]))
    print(rid)
EOF
echo "$PENDING requests submitted through the API in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
ONE=$(sed -n '500p' "$W/ids.txt")

# A signed-in session, as a browser gets one: the login page's cookie and
# form token, then the form post.
curl -sk -c "$W/jar" -b "$W/jar" "$BASE/login" -o "$W/login.html" || die "GET /login failed"
csrf=$(sed -n 's/.*name="csrf" value="\([^"]*\)".*/\1/p' "$W/login.html" | head -n 1)
code=$(curl -sk -c "$W/jar" -b "$W/jar" -o /dev/null -w '%{http_code}' -H "Origin: $BASE" \
    --data-urlencode "csrf=$csrf" --data-urlencode "username=alice" \
    --data-urlencode "password=$PW" "$BASE/login")
cookie=$(awk '$6 == "__Host-session" { print $7 }' "$W/jar")
[ -n "$cookie" ] || die "no session cookie after signing in (HTTP $code)"
rows=$(curl -sk -H "Cookie: __Host-session=$cookie" "$BASE/requests?state=pending" |
    grep -o 'href="/requests/[0-9a-f]\{32\}"' | sort -u | wc -l)
echo "signed in as alice (HTTP $code); the pending list page shows $rows requests"

cat >"$W/count.lua" <<'EOF'
-- Every answer that is not a 200 is an error (wrk itself counts 3xx as fine).
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) non200 = 0 end
function response(status, headers, body)
	if status ~= 200 then non200 = non200 + 1 end
end
function done(summary, latency, requests)
	local n = 0
	for _, t in ipairs(threads) do n = n + t:get("non200") end
	io.write(string.format("NON200 %d\n", n))
end
EOF
# run_wrk LABEL PATH: sets RPS, ERRS, P50 (latency, ms).
run_wrk() {
	local out
	out=$(wrk -t "$WRK_THREADS" -c "$WRK_CONNS" -d "${WRK_SECONDS}s" --latency -s "$W/count.lua" \
	    -H "Cookie: __Host-session=$cookie" "$BASE$2" 2>&1) || die "wrk failed: $out"
	RPS=$(sed -n 's/^Requests\/sec: *\([0-9.]*\).*/\1/p' <<<"$out")
	ERRS=$(sed -n 's/^NON200 \([0-9]*\)/\1/p' <<<"$out")
	sock_errs=$(sed -n 's/.*Socket errors: connect \([0-9]*\), read \([0-9]*\), write \([0-9]*\), timeout \([0-9]*\).*/\1 \2 \3 \4/p' <<<"$out" |
	    awk '{ print $1 + $2 + $3 + $4 }')
	ERRS=$(( ${ERRS:-0} + ${sock_errs:-0} ))
	P50=$(awk '$1 == "50%" { print $2 }' <<<"$out")
	printf '%-34s %9s pages/s  p50 %8s  errors %s\n' "$1" "$RPS" "$P50" "$ERRS"
}
run_wrk "static /static/style.css" /static/style.css
s_rps=$RPS s_err=$ERRS
run_wrk "pending list (/requests)" "/requests?state=pending"
l_rps=$RPS l_err=$ERRS
run_wrk "one request (/requests/ID)" "/requests/$ONE"
r_rps=$RPS r_err=$ERRS
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'; }
echo "RESULT approver static_rps=$s_rps static_errors=$s_err"
echo "RESULT approver list_rps=$l_rps list_errors=$l_err list_ratio=$(ratio "$l_rps" "$s_rps") rows=$rows"
echo "RESULT approver request_rps=$r_rps request_errors=$r_err request_ratio=$(ratio "$r_rps" "$s_rps")"

echo "-- from the approving POST to the token at the proxy ($LATENCY_RUNS runs)"
if [ ! -x "$CHROMIUM" ] || [ ! -d tests/browser/node_modules/playwright-core ]; then
	echo "no Chromium or tests/browser/node_modules (scripts/install-deps): skipped"
else
	(cd tests/browser && BASE="$BASE" API_SOCK="$S/api.sock" ATTESTCTL="$BIN/attestctl" \
	    ATTESTD_SOCK="$SOCK" VM="$VM" LD="$LD" PW="$PW" WORK="$W" RUNS="$LATENCY_RUNS" \
	    CHROMIUM="$CHROMIUM" timeout -k 5 300 node bench-approve.mjs) >"$W/latency.out" 2>&1 ||
		{ tail -n 20 "$W/latency.out" >&2; die "bench-approve.mjs failed"; }
	grep -v '^RESULT' "$W/latency.out"
	sed -n 's/^RESULT approve_to_token /RESULT approver latency /p' "$W/latency.out"
fi
exit 0
