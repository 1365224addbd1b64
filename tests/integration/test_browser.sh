#!/usr/bin/env bash
# The approver end to end, in a real browser: a private swtpm, attestd with
# an "approvals" section and roles, the approver (approver init, user add,
# serve; people alice, bob and carol approve, dave owns the VM), and ONE
# real guest launched with `vmhost launch --approver S/api.sock --owner dave`
# whose /etc/warrant/run makes gated calls one after another, each waiting
# for its decision and printing "CALLn ok ..." or "CALLn refused: ..." on
# the console. Headless Chromium with virtual passkeys (playwright-core,
# tests/browser/) then plays the people: tests/browser/approver.test.mjs
# has the scenarios, one result line each:
#   enrolment through the page and `attestctl approvers add`; the guest's
#   request in the pending list; (h) its owner cannot decide it; (a) an
#   approval completes the guest's call and the token names the approver;
#   (b) a denial's reason reaches the guest; (c) a 2-of-3 quorum; (i) two
#   passkeys of one person count once (web and attestd); (k) a Chromium
#   assertion replayed for another request, one with an older counter, and
#   one by a removed credential are each refused by attestd; (e) markup renders
#   as text; (d) a form posted from another site or origin is refused; (f)
#   an expired request cannot be approved; (j) another origin or host name
#   is refused by the approver, an assertion made on another origin by
#   attestd, and a passkey attestd was never given fails the request with
#   attestd's reason on the page; (g) after a wrong password the next
#   attempt is refused at once (429, Retry-After) until a wait that grows
#   with each failure ends, then the account is locked.
# Then the guest's call lines, the proxy's accepted tokens against the
# approver's mint records, `approver audit verify` and `vmhost audit
# verify`. Without Chromium or tests/browser/node_modules every case is SKIP.

MYTMP=$(mktemp -d "${TMPDIR:-/tmp}/test-browser.XXXXXX")
# The approver runs as nobody: it must reach its state folder and
# attestd's socket inside this folder.
chmod 0755 "$MYTMP"
export TMPDIR="$MYTMP"
. "$(dirname "$0")/common.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMHOST="$BIN/vmhost"
APPROVER="$BIN/approver"
ATTESTCTL="$BIN/attestctl"
GUEST="$ROOT/build/guest"
BROWSER_DIR="$ROOT/tests/browser"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
LSOCK="$T/attestd-launch.sock"
RUN="$T/run"
WS="$T/ws"
S="$T/approver"
PW="correct horse battery staple"
BOOT_TIMEOUT=300
APPROVER_PID="" LPID="" SERVER_PIDS=()

my_cleanup() {
	local p
	for p in "$LPID" "$APPROVER_PID" "${SERVER_PIDS[@]}"; do
		[ -n "$p" ] && kill "$p" 2>/dev/null
	done
	for p in "$LPID" "$APPROVER_PID" "${SERVER_PIDS[@]}"; do
		[ -n "$p" ] && wait "$p" 2>/dev/null
	done
	cleanup
	if [ "${KEEP_TEST_DIR:-}" = "" ]; then rm -rf "$MYTMP"; fi
}
trap my_cleanup EXIT

# --- what this needs ---------------------------------------------------------
why=""
if [ ! -x "$CHROMIUM" ]; then
	why="no Chromium at $CHROMIUM (scripts/install-deps)"
elif ! command -v node >/dev/null 2>&1; then
	why="node is not installed (scripts/install-deps)"
elif [ ! -d "$BROWSER_DIR/node_modules/playwright-core" ]; then
	why="tests/browser/node_modules is missing (scripts/install-deps runs npm ci)"
elif [ ! -x "$APPROVER" ] || [ ! -x "$VMHOST" ] || [ ! -x "$ATTESTCTL" ]; then
	why="build/bin/approver, vmhost or attestctl is not built"
elif [ ! -x /usr/bin/qemu-system-x86_64 ]; then
	why="qemu-system-x86_64 is not installed (scripts/install-deps)"
elif ! "$VMHOST" launch --help 2>&1 | grep -q -- '--approver'; then
	why="vmhost launch has no --approver yet"
elif ! id nobody >/dev/null 2>&1; then
	why="no user nobody to run the approver as"
fi
if [ -z "$why" ]; then
	if [ ! -x "$GUEST/warrant-agent" ] && [ -f "$ROOT/vmhost/agent/main.c" ]; then
		make -C "$ROOT" build/guest/warrant-agent >"$T/build-agent.log" 2>&1
	fi
	if [ ! -f "$GUEST/vmlinuz" ] || [ ! -f "$GUEST/initrd.img" ]; then
		"$ROOT/scripts/build-guest" >"$T/build-guest.log" 2>&1
	fi
	if [ ! -f "$GUEST/vmlinuz" ] || [ ! -f "$GUEST/initrd.img" ] ||
	    [ ! -x "$GUEST/warrant-agent" ] || [ ! -f "$GUEST/manifest.json" ]; then
		why="no test guest or guest agent in build/guest (make guest)"
	fi
fi
if [ -n "$why" ]; then
	for c in "enrolment" "(a) approve" "(b) deny" "(c) quorum 2 of 3" "(d) cross-site post" \
	    "(e) markup as text" "(f) expired" "(g) brute force" "(h) owner" \
	    "(i) two passkeys" "(j) other origin"; do
		skip "browser: $c ($why)"
	done
	finish
fi
mkdir -p "$T/base"
cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/warrant-agent" "$GUEST/manifest.json" "$T/base/"
GUEST="$T/base"

free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
PORT=$(free_port)
ALT_PORT=$(free_port)
EVIL_PORT=$(free_port)
EVIL_TLS_PORT=$(free_port)

# --- attestd: approvals (quorum 2 for fs.read) and roles -----------------------
# root: everything the test does by hand and vmhost does; nobody (the
# approver): mint only. The socket's group lets nobody connect.
cat >"$T/attestd.json" <<EOF
{"socket_group": "nogroup",
 "roles": {"root": ["admin", "mint", "launch", "verify:*"], "nobody": ["mint"]},
 "approvals": {"rp_id": "localhost", "origins": ["https://localhost:$PORT"],
               "quorum": {"default": 1, "ops": {"fs.read": 2}}}}
EOF
tpm_start || { fail "browser (swtpm did not start)"; finish; }
provision || { fail "browser (attest-keys init failed)"; finish; }
attestd_start --config "$T/attestd.json" || { fail "browser (attestd did not start)"; finish; }
for _ in $(seq 1 50); do
	[ -S "$LSOCK" ] && break
	sleep 0.1
done

# --- the approver ----------------------------------------------------------------
if ! "$APPROVER" --state-dir "$S" init --port "$PORT" --user nobody >"$T/approver-init.log" 2>&1; then
	fail "approver init ($(tail -n 3 "$T/approver-init.log" | tr '\n' ' '))"
	finish
fi
# The approver's own quorum matches attestd's; short enough lifetimes for
# the expiry case come from the request's own deadline.
if ! jq '.quorum = {"default": 1, "ops": {"fs.read": 2}}' "$S/approver.json" >"$T/approver.json" ||
    ! cat "$T/approver.json" >"$S/approver.json"; then
	fail "approver settings (jq on $S/approver.json)"
	finish
fi
users_ok=1
for u in alice bob carol dave erin frank; do
	printf '%s\n' "$PW" | "$APPROVER" --state-dir "$S" user add "$u" --role approver \
	    >>"$T/approver-init.log" 2>&1 || users_ok=0
done
if [ "$users_ok" -eq 1 ]; then
	pass "approver: init --user nobody, user add alice bob carol dave erin frank"
else
	fail "approver user add ($(tail -n 3 "$T/approver-init.log" | tr '\n' ' '))"
	finish
fi
"$APPROVER" --state-dir "$S" serve --listen "127.0.0.1:$PORT" --attestd-socket "$SOCK" \
    >>"$T/approver.log" 2>&1 &
APPROVER_PID=$!
up=""
for _ in $(seq 1 100); do
	if curl -sk -o /dev/null -w '%{http_code}' "https://localhost:$PORT/login" 2>/dev/null |
	    grep -q '^200$' && [ -S "$S/api.sock" ]; then
		up=1
		break
	fi
	kill -0 "$APPROVER_PID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$up" ]; then
	fail "approver serve did not come up ($(tail -n 5 "$T/approver.log" | tr '\n' ' '))"
	finish
fi
owner=$(ps -o user= -p "$APPROVER_PID" | tr -d ' ')
if [ "$owner" = nobody ]; then
	pass "approver serve: pages on https://localhost:$PORT, API on $S/api.sock, running as nobody"
else
	fail "approver serve runs as '$owner', not nobody"
fi

# --- other origins: a TCP relay to the approver, and pages of other sites ----------
mkdir -p "$T/evil"
cat >"$T/servers.py" <<'EOF'
import asyncio, http.server, ssl, sys, threading

def serve_files(directory, port, cert=None, key=None):
    class H(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a, **k):
            super().__init__(*a, directory=directory, **k)
        def log_message(self, *a):
            pass
    s = http.server.ThreadingHTTPServer(("127.0.0.1", port), H)
    if cert:
        c = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        c.load_cert_chain(cert, key)
        s.socket = c.wrap_socket(s.socket, server_side=True)
    s.serve_forever()

async def relay(port, target):
    async def pipe(r, w):
        try:
            while True:
                b = await r.read(65536)
                if not b:
                    break
                w.write(b)
                await w.drain()
        except Exception:
            pass
        finally:
            w.close()
    async def conn(r, w):
        try:
            tr, tw = await asyncio.open_connection("127.0.0.1", target)
        except OSError:
            w.close()
            return
        await asyncio.gather(pipe(r, tw), pipe(tr, w))
    srv = await asyncio.start_server(conn, "127.0.0.1", port)
    async with srv:
        await srv.serve_forever()

mode = sys.argv[1]
if mode == "relay":
    asyncio.run(relay(int(sys.argv[2]), int(sys.argv[3])))
elif mode == "http":
    serve_files(sys.argv[2], int(sys.argv[3]))
else:
    serve_files(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5])
EOF
python3 "$T/servers.py" relay "$ALT_PORT" "$PORT" 2>>"$T/servers.log" &
SERVER_PIDS+=($!)
python3 "$T/servers.py" http "$T/evil" "$EVIL_PORT" 2>>"$T/servers.log" &
SERVER_PIDS+=($!)
EVIL_HTTPS=""
if [ -r "$S/tls/cert.pem" ] && [ -r "$S/tls/key.pem" ]; then
	python3 "$T/servers.py" https "$T/evil" "$EVIL_TLS_PORT" "$S/tls/cert.pem" "$S/tls/key.pem" \
	    2>>"$T/servers.log" &
	SERVER_PIDS+=($!)
	EVIL_HTTPS="https://localhost:$EVIL_TLS_PORT"
fi

# --- the guest: gated calls, one after another ----------------------------------------
mkdir -p "$WS/gated" "$RUN"
chmod 0700 "$RUN"
echo "notes from the host" >"$WS/notes.txt"
ENVELOPE='{"fs.read":"ask","fs.write":{"level":"ask","paths":["/gated/"]}}'
g="$T/g"
mkdir -p "$g/layer/etc/warrant" "$g/layer/bin"
cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$g/"
cp "$GUEST/warrant-agent" "$g/layer/bin/warrant-agent"
cat >"$g/layer/etc/warrant/run" <<'EOF'
#!/bin/sh
# One console line per gated call: "NAME ok OUTPUT" or "NAME refused: OUTPUT".
c() {
	n=$1
	shift
	out=$(/bin/warrant-agent --timeout 280 "$@" 2>&1)
	if [ $? -eq 0 ]; then
		echo "$n ok $(printf "%s" "$out" | tr "\n" " " | cut -c1-400)"
	else
		echo "$n refused: $(printf "%s" "$out" | tr "\n" " " | cut -c1-400)"
	fi
}
c CALL1 call fs.write --reason "write the first file" path=/gated/one.txt data=first
c CALL2 call fs.write --reason "write the second file" path=/gated/two.txt data=second
c CALL3 call fs.read --reason "read the host's notes" path=/notes.txt
echo WARRANT-TEST-CALLS-DONE
EOF
chmod 0755 "$g/layer/etc/warrant/run" "$g/layer/bin/warrant-agent"
size=$(stat -c %s "$g/initrd.img")
head -c $(( (4 - size % 4) % 4 )) /dev/zero >>"$g/initrd.img"
(cd "$g/layer" && find . | LC_ALL=C sort | cpio -o -H newc 2>/dev/null) >>"$g/initrd.img"
python3 - "$GUEST/manifest.json" "$g/manifest.json" "$WS" "$ENVELOPE" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["name"] = "it-browser"
m["kernel"] = "vmlinuz"
m["initrd"] = "initrd.img"
m.pop("rootfs", None)
m["workspace"] = sys.argv[3]
m["envelope"] = json.loads(sys.argv[4])
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
timeout -k 5 "$BOOT_TIMEOUT" "$VMHOST" launch --foreground --attestd-socket "$SOCK" \
    --launch-socket "$LSOCK" --run-dir "$RUN" --approver "$S/api.sock" --owner dave \
    --approval-timeout 280 "$g/manifest.json" >"$T/guest.out" 2>"$T/guest.err" &
LPID=$!
VM="" LD=""
for _ in $(seq 1 600); do
	VM=$(sed -n 's/.*measured it-browser: vm \([^,]*\), launch digest \([0-9a-f]*\);.*/\1/p' "$T/guest.err" | head -n 1)
	LD=$(sed -n 's/.*measured it-browser: vm \([^,]*\), launch digest \([0-9a-f]*\);.*/\2/p' "$T/guest.err" | head -n 1)
	[ -n "$VM" ] && [ -n "$LD" ] && break
	kill -0 "$LPID" 2>/dev/null || break
	sleep 0.1
done
if [ -z "$VM" ] || [ -z "$LD" ]; then
	fail "browser: the guest was not measured ($(tail -n 5 "$T/guest.err" | tr '\n' ' '))"
	finish
fi
pass "guest it-browser measured and launched with --approver $S/api.sock --owner dave (vm $VM)"

# --- the people, in Chromium ------------------------------------------------------------
start=$SECONDS
(cd "$BROWSER_DIR" && BASE="https://localhost:$PORT" ALT_BASE="https://localhost:$ALT_PORT" \
    IP_BASE="https://127.0.0.1:$PORT" EVIL_HTTP="http://127.0.0.1:$EVIL_PORT" \
    EVIL_HTTPS="$EVIL_HTTPS" EVIL_DIR="$T/evil" API_SOCK="$S/api.sock" ATTESTD_SOCK="$SOCK" \
    ATTESTCTL="$ATTESTCTL" CONSOLE="$T/guest.out" VM="$VM" LD="$LD" PW="$PW" BRUTE_USER=erin UNENROLLED_USER=frank \
    WORK="$T" CHROMIUM="$CHROMIUM" timeout -k 5 240 node approver.test.mjs) >"$T/node.out" 2>"$T/node.err"
rc=$?
grep -E '^(PASS|FAIL|SKIP): ' "$T/node.out"
grep -vE '^(PASS|FAIL|SKIP): ' "$T/node.out" >&2
if [ "$rc" -ne 0 ]; then
	fail "browser scenarios: node exited $rc after $((SECONDS - start)) s ($(tail -n 5 "$T/node.err" | tr '\n' ' '))"
fi
echo "browser scenarios took $((SECONDS - start)) s" >&2

# --- the guest's end, the audit trails ------------------------------------------------------
for _ in $(seq 1 300); do
	grep -q "WARRANT-TEST-CALLS-DONE" "$T/guest.out" && break
	kill -0 "$LPID" 2>/dev/null || break
	sleep 0.1
done
if grep -q '^CALL1 ok' "$T/guest.out" && grep -q '^CALL2 refused' "$T/guest.out" &&
    grep -q '^CALL3 ok' "$T/guest.out" && [ "$(cat "$WS/gated/one.txt" 2>/dev/null)" = first ] &&
    [ ! -e "$WS/gated/two.txt" ]; then
	pass "guest: CALL1 ran (gated/one.txt written), CALL2 refused (no two.txt), CALL3 ran"
else
	fail "guest: $(grep -a '^CALL' "$T/guest.out" | tr '\n' ' ' | cut -c1-500)"
fi
# The tokens the proxy accepted are the ones attestd minted for the people
# who approved: the approver's mint records (its database, read-only) and
# the proxy's approved records name the same token ids.
if out=$(python3 - "$S/approver.db" "$RUN/it-browser/audit.log" 2>&1 <<'EOF'
import json, sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
proxy = [json.loads(l) for l in open(sys.argv[2])]
accepted = {r["request"]: r["jti"] for r in proxy if r["event"] == "approved"}
assert len(accepted) == 2, accepted
got = []
for rid, jti in accepted.items():
    rows = db.execute("SELECT detail FROM audit WHERE request = ? AND event = 'mint'",
                      (rid,)).fetchall()
    assert len(rows) == 1, (rid, rows)
    m = json.loads(rows[0][0])
    assert m["jti"] == jti, (rid, m, jti)
    got.append(sorted(m["approvers"]))
assert sorted(got) == [["alice"], ["alice", "carol"]], got
print("CALL1 by alice, CALL3 by alice and carol")
EOF
); then
	pass "the proxy used the tokens minted for the approvers: $out"
else
	fail "mint records vs the proxy's approved records: $(tail -n 2 <<<"$out" | tr '\n' ' ')"
fi
out=$("$APPROVER" --state-dir "$S" audit verify 2>&1)
rc=$?
if [ "$rc" -eq 0 ]; then
	pass "approver audit verify: $(tr '\n' ' ' <<<"$out" | cut -c1-200)"
else
	fail "approver audit verify: exit $rc: $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
fi
# A guest still waiting for a decision nobody will make is stopped.
grep -q "WARRANT-TEST-CALLS-DONE" "$T/guest.out" || kill "$LPID" 2>/dev/null
wait "$LPID"
LPID=""
out=$("$VMHOST" audit verify "$RUN/it-browser/audit.log" 2>&1)
rc=$?
if [ "$rc" -eq 0 ] && grep -q '"valid":true' <<<"$out"; then
	pass "vmhost audit verify: $out"
else
	fail "vmhost audit verify: exit $rc: $out"
fi
kill "$APPROVER_PID" 2>/dev/null
wait "$APPROVER_PID" 2>/dev/null
APPROVER_PID=""
attestd_stop
check "no TPM handle leaked" no_leaked_handles
finish
