#!/usr/bin/env bash
# The enforcing tool proxy end to end, through the real parts: a private
# swtpm, attest-keys, attestd (launch socket, minting, audience keys),
# vmhost launch --foreground of the real test guest with a workspace and an
# envelope, and warrant-agent calls made from inside the guest by a script
# (/etc/warrant/run) in a cpio layer appended to its initrd. A host-side
# approver answers the gated calls through the approval spool with tokens
# from attestd (attestctl mint, carrying the assertion of an enrolled
# software passkey, as attestd requires for "ask" operations), or with
# tokens crafted with the proxy's
# real audience key where attestd would refuse to mint (another launch
# digest for this VM; an already used token id for the second boot).
#
# Boot 1: allowed calls execute; never, path escapes and symbolic links are
#         refused; gated calls wait and run with a valid token, and are
#         refused with a token for other arguments, another VM, another
#         launch digest, an expired one, a denial, no decision, and a token
#         used once already, also after the proxy was killed and restarted;
#         drop narrows, widening is impossible.
# Boot 2: the same VM name and used-token store: a token id consumed in
#         boot 1 is refused; a guest sending malformed frames is cut off,
#         the VM keeps running and powers off normally.
# Then: vmhost audit verify passes over both boots, and fails after an edit.
# Boot 3 (another name): a guest calling fs.list in a loop is refused once
#         the host narrows its envelope by policy (vmhost narrow); asking
#         for more afterwards widens nothing.

MYTMP=$(mktemp -d "${TMPDIR:-/tmp}/test-proxy.XXXXXX")
export TMPDIR="$MYTMP"
. "$(dirname "$0")/common.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMHOST="$BIN/vmhost"
ATTESTCTL="$BIN/attestctl"
GUEST="$ROOT/build/guest"
LSOCK="$T/attestd-launch.sock"
RUN="$T/run"
WS="$T/ws"
SPOOL="$T/spool"
BOOT_TIMEOUT=240
APPROVER_PID=""

my_cleanup() {
	if [ -n "$APPROVER_PID" ]; then
		kill "$APPROVER_PID" 2>/dev/null
		wait "$APPROVER_PID" 2>/dev/null
	fi
	cleanup
	if [ "${KEEP_TEST_DIR:-}" = "" ]; then rm -rf "$MYTMP"; fi
}
trap my_cleanup EXIT

if [ ! -x "$VMHOST" ] || [ ! -x "$ATTESTCTL" ]; then
	skip "proxy (build/bin/vmhost or attestctl is not built)"
	finish
fi
if [ ! -x /usr/bin/qemu-system-x86_64 ]; then
	skip "proxy (qemu-system-x86_64 is not installed; scripts/install-deps)"
	finish
fi
if [ ! -x "$GUEST/warrant-agent" ] && [ -f "$ROOT/vmhost/agent/main.c" ]; then
	make -C "$ROOT" build/guest/warrant-agent >"$T/build-agent.log" 2>&1
fi
if [ ! -f "$GUEST/vmlinuz" ] || [ ! -f "$GUEST/initrd.img" ]; then
	"$ROOT/scripts/build-guest" >"$T/build-guest.log" 2>&1
fi
if [ ! -f "$GUEST/vmlinuz" ] || [ ! -f "$GUEST/initrd.img" ] || [ ! -x "$GUEST/warrant-agent" ]; then
	skip "proxy (no test guest or guest agent in build/guest: make guest)"
	finish
fi
if [ ! -x "$SOFT_PASSKEY" ]; then
	skip "proxy ($SOFT_PASSKEY is not built: make build/tools/soft-passkey)"
	finish
fi
if ! grep -q 'etc/warrant/run' "$ROOT/guest/init"; then
	skip "proxy (guest/init has no /etc/warrant/run hook yet)"
	finish
fi
mkdir -p "$T/base"
cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/warrant-agent" "$T/base/"
GUEST="$T/base"

tpm_start || { fail "proxy (swtpm did not start)"; finish; }
provision || { fail "proxy (attest-keys init failed)"; finish; }
# fs.write is "ask": attestd mints it only with an enrolled person's
# approval (docs/approvals.md).
printf '{%s}\n' "$APPROVALS_CONFIG" >"$T/attestd.json"
attestd_start --config "$T/attestd.json" || { fail "proxy (attestd did not start)"; finish; }
passkey_new approver-1 "$T/passkey.key" ES256 &&
    "$ATTESTCTL" --socket "$SOCK" approvers add --yes "$T/passkey.key.enrol" >>"$T/check.log" 2>&1 ||
    { fail "proxy (enrolling the approver's passkey failed)"; finish; }
for _ in $(seq 1 50); do
	[ -S "$LSOCK" ] && break
	sleep 0.1
done
if [ ! -S "$LSOCK" ]; then
	skip "proxy (attestd has no launch socket at $LSOCK)"
	finish
fi
mkdir -m 0700 "$RUN"

# --- the workspace, as the host prepares it ----------------------------------
mkdir -p "$WS/gated" "$T/outside"
echo "hello from the host" >"$WS/hello.txt"
echo "outside secret" >"$T/outside/secret.txt"
ln -s /etc "$WS/etc-link"
ln -s ../outside "$WS/up"

ENVELOPE='{"fs.read":"allow","fs.write":{"level":"ask","paths":["/gated/"]},"exec":{"level":"allow","argv":[["touch","allowed.txt"],["echo"]],"timeout_ms":5000}}'

# A second VM, measured (not booted), so that attestd mints a genuine token
# bound to another VM.
measure_vm '{"fs.write":"allow"}' || { fail "proxy (measuring a second VM failed)"; finish; }
VM2=$VM
LD2=$VM_LD

# guest DIR NAME RUN_SCRIPT: the test guest with a workspace, the envelope
# above, and a layer holding /etc/warrant/run and the agent.
guest() {
	local dir="$1" name="$2" script="$3" size
	mkdir -p "$dir/layer/etc/warrant" "$dir/layer/bin"
	cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$dir/"
	cp "$script" "$dir/layer/etc/warrant/run"
	cp "$GUEST/warrant-agent" "$dir/layer/bin/warrant-agent"
	chmod 0755 "$dir/layer/etc/warrant/run" "$dir/layer/bin/warrant-agent"
	size=$(stat -c %s "$dir/initrd.img")
	head -c $(( (4 - size % 4) % 4 )) /dev/zero >>"$dir/initrd.img"
	(cd "$dir/layer" && find . | LC_ALL=C sort | cpio -o -H newc 2>/dev/null) >>"$dir/initrd.img"
	python3 - "$ROOT/build/guest/manifest.json" "$dir/manifest.json" "$name" "$WS" "$ENVELOPE" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["name"] = sys.argv[3]
m["kernel"] = "vmlinuz"
m["initrd"] = "initrd.img"
m.pop("rootfs", None)
m["workspace"] = sys.argv[4]
m["envelope"] = json.loads(sys.argv[5])
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
}

# The guest side: one line per call on the console, "R NAME STATUS OUTPUT".
COMMON='#!/bin/sh
A=/bin/warrant-agent
t() {
	n=$1
	shift
	out=$("$A" --timeout 90 "$@" 2>&1)
	rc=$?
	echo "R $n $rc $(printf "%s" "$out" | tr "\n" " " | cut -c1-600)"
}
'
cat >"$T/run1" <<EOF
$COMMON
t read-allowed call fs.read path=/hello.txt
t exec-allowed call exec 'argv:=["touch","allowed.txt"]'
t list-never call fs.list path=/
t escape-dotdot call fs.read path=/../../etc/passwd
t escape-abs-link call fs.read path=/etc-link/passwd
t escape-rel-link call fs.read path=/up/secret.txt
t exec-not-allowed call exec 'argv:=["rm","-rf","/"]'
t write-outside-bound call fs.write path=/elsewhere.txt data=x
t gated-ok call fs.write --reason "save the result" path=/gated/ok.txt data=approved
t gated-other-args call fs.write path=/gated/other-args.txt data=mine
t gated-other-vm call fs.write path=/gated/other-vm.txt data=x
t gated-other-launch call fs.write path=/gated/other-launch.txt data=x
t gated-expired call fs.write path=/gated/expired.txt data=x
t gated-denied call fs.write path=/gated/denied.txt data=x
t gated-timeout call fs.write path=/gated/ignored.txt data=x
t gated-replay-1 call fs.write path=/gated/replay.txt data=once
echo WARRANT-TEST-KILL-PROXY
sleep 6
t gated-replay-2 call fs.write path=/gated/replay.txt data=once
t envelope-before envelope
t drop drop '{"fs.read":"allow","fs.write":{"level":"ask","paths":["/gated/"]}}'
t exec-after-drop call exec 'argv:=["echo","hi"]'
t widen drop '{"fs.read":"allow","fs.write":"allow","exec":{"level":"allow","argv":[["echo"]]}}'
t exec-after-widen call exec 'argv:=["echo","hi"]'
t envelope-after envelope
EOF
cat >"$T/run2" <<EOF
$COMMON
t replay-boot2 call fs.write path=/gated/replay-boot2.txt data=twice
port=""
for p in /sys/class/virtio-ports/*; do
	[ "\$(cat "\$p/name" 2>/dev/null)" = org.warrant.agent.0 ] && port=/dev/\${p##*/}
done
echo "WARRANT-TEST-FLOOD \$port"
# 64 malformed frames: the proxy answers each, then closes the channel.
# Writes to a port whose host end is gone may block: everything that
# writes runs in the background and is killed if it has not ended.
(
	i=0
	while [ "\$i" -lt 64 ]; do
		printf '\\000\\000\\000\\005{{{{{' >"\$port"
		i=\$((i + 1))
	done
) &
flood=\$!
sleep 4
kill -9 "\$flood" 2>/dev/null
( "\$A" --timeout 5 call fs.read path=/hello.txt >/dev/null 2>&1; echo "R after-cut \$? -" ) &
after=\$!
sleep 8
kill -9 "\$after" 2>/dev/null
echo "R after-cut-done 0 -"
EOF

# --- the approver: answers requests by the path they write -------------------
cat >"$T/approver.py" <<'EOF'
import base64, hashlib, hmac, json, os, subprocess, sys, time
spool, attestctl, sock, vm2, ld2, log, passkey, keyfile, origin = sys.argv[1:10]
seen, saved = set(), {}
def say(*a):
    print(*a, file=open(log, "a"), flush=True)
def canon(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()
def unb64(s):
    return base64.urlsafe_b64decode(s + "=" * (-len(s) % 4))
def drop(sub, rid, text, settle=0):
    tmp = os.path.join(spool, ".%s.%s" % (rid, sub))
    with open(tmp, "w") as f:
        f.write(text + "\n")
    if settle:
        time.sleep(settle)
    os.rename(tmp, os.path.join(spool, sub, rid))
def approve(rq, args, vm, ld, ttl):
    # The person's passkey signs the digest of exactly what is minted.
    d = hashlib.sha256(canon({"args_sha256": hashlib.sha256(canon(args)).hexdigest(),
                              "aud": "proxy", "launch_digest": ld, "op": rq["op"],
                              "request": rq["id"], "ttl": ttl, "v": 1, "vm": vm})).hexdigest()
    out = subprocess.run([passkey, "assert", keyfile, "--challenge", d, "--origin", origin],
                         capture_output=True, text=True)
    if out.returncode != 0:
        say("soft-passkey failed:", out.stderr)
        return None
    return [json.loads(out.stdout)]
def mint(rq, args, vm=None, ld=None, ttl=None):
    vm, ld, ttl = vm or rq["vm"], ld or rq["launch_digest"], ttl or 300
    af = os.path.join(spool, ".args-" + rq["id"])
    pf = os.path.join(spool, ".approvals-" + rq["id"])
    open(af, "wb").write(canon(args))
    open(pf, "w").write(json.dumps(approve(rq, args, vm, ld, ttl)))
    cmd = [attestctl, "--socket", sock, "mint", "--aud", "proxy", "--vm", vm,
           "--launch-digest", ld, "--op", rq["op"], "--args-file", af,
           "--request", rq["id"], "--ttl", str(ttl), "--approvals", pf]
    out = subprocess.run(cmd, capture_output=True, text=True)
    os.unlink(af)
    os.unlink(pf)
    if out.returncode != 0:
        say("mint failed:", out.stderr)
        return None
    return json.loads(out.stdout)["token"]
def forge(rq, launch=None, jti=None):
    # A token with valid MACs under the proxy's real audience key, for
    # what attestd itself would refuse to mint.
    out = subprocess.run(["curl", "-s", "--unix-socket", sock, "http://attestd/v1/keys/proxy"],
                         capture_output=True, text=True)
    k = json.loads(out.stdout)
    now = int(time.time())
    kid = {"aud": "proxy", "epoch": k["epoch"], "gen": k["gen"], "mode": "epoch"}
    claims = {"approvers": ["alice"], "args": rq["args_sha256"], "aud": "proxy",
              "exp": min(now + 120, k["not_after"]), "iat": max(now, k["not_before"]),
              "jti": jti or b64(os.urandom(16)), "launch": launch or rq["launch_digest"],
              "op": rq["op"], "request": rq["id"], "uses": 1, "vm": rq["vm"]}
    signed = "w1." + b64(canon(kid)) + "." + b64(canon(claims))
    tag = hmac.new(unb64(k["key"]), signed.encode(), hashlib.sha256).digest()
    return signed + "." + b64(tag)
while True:
    try:
        names = sorted(os.listdir(os.path.join(spool, "requests")))
    except FileNotFoundError:   # vmhost creates the folders
        names = []
    for name in names:
        if not name.endswith(".json") or name in seen:
            continue
        seen.add(name)
        rq = json.load(open(os.path.join(spool, "requests", name)))
        json.dump(rq, open(os.path.join(spool, "..", "last-request-" + os.path.basename(rq["args"]["path"]) + ".json"), "w"))
        path = rq["args"]["path"]
        say("request", rq["id"], path, rq["reason"])
        tok = None
        if path == "/gated/ok.txt":
            tok = mint(rq, rq["args"])
        elif path == "/gated/other-args.txt":
            tok = mint(rq, dict(rq["args"], data="something else"))
        elif path == "/gated/other-vm.txt":
            tok = mint(rq, rq["args"], vm=vm2, ld=ld2)
        elif path == "/gated/other-launch.txt":
            tok = forge(rq, launch="ab" * 32)
        elif path == "/gated/expired.txt":
            tok = mint(rq, rq["args"], ttl=1)
            time.sleep(2.5)
        elif path == "/gated/replay.txt":
            # The second call is a new request: the used token's id comes
            # back in a token for it, so only the used-id store refuses it.
            if "replay" not in saved:
                saved["replay"] = mint(rq, rq["args"])
                tok = saved["replay"]
            else:
                jti = json.loads(unb64(saved["replay"].split(".")[2]))["jti"]
                tok = forge(rq, jti=jti)
        elif path == "/gated/replay-boot2.txt":
            jti = json.loads(unb64(saved["replay"].split(".")[2]))["jti"]
            tok = forge(rq, jti=jti)
        elif path == "/gated/denied.txt":
            drop("denied", rq["id"], "no, not this one")
            say("denied", rq["id"])
            continue
        else:
            say("ignored", rq["id"])
            continue
        if tok:
            drop("tokens", rq["id"], tok)
            say("token", rq["id"], path)
    time.sleep(0.1)
EOF
mkdir -m 0700 "$SPOOL"
python3 "$T/approver.py" "$SPOOL" "$ATTESTCTL" "$SOCK" "$VM2" "$LD2" "$T/approver.log" \
    "$SOFT_PASSKEY" "$T/passkey.key" "$APPROVALS_ORIGIN" \
    2>>"$T/approver.log" &
APPROVER_PID=$!

# launch_fg PREFIX MANIFEST: foreground launch in the background of this
# script; sets LPID.
launch_bg() {
	timeout -k 5 "$BOOT_TIMEOUT" "$VMHOST" launch --foreground --accel tcg \
	    --attestd-socket "$SOCK" --launch-socket "$LSOCK" --run-dir "$RUN" \
	    --approval-spool "$SPOOL" --approval-timeout 6 "$2" >"$1.out" 2>"$1.err" &
	LPID=$!
}

wait_for() {
	local i
	for i in $(seq 1 $(($3 * 10))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

brief() { tr '\n' ' ' <"$1" | tail -c 600; }

# expect_r OUT NAME STATUS [PATTERN...]: the guest's line for NAME.
expect_r() {
	local out="$1" name="$2" want="$3" line p
	shift 3
	line=$(grep -a "^R $name " "$out" | head -n 1)
	if [ -z "$line" ]; then
		fail "$name: no result line on the console"
		return
	fi
	set -- "$@"
	if [ "$(cut -d' ' -f3 <<<"$line")" != "$want" ]; then
		fail "$name: status $(cut -d' ' -f3 <<<"$line"), wanted $want (${line:0:300})"
		return
	fi
	for p in "$@"; do
		if ! grep -q -- "$p" <<<"$line"; then
			fail "$name: '$p' not in the result (${line:0:300})"
			return
		fi
	done
	pass "$name: exit $want${1:+ ($*)}"
}

# --- boot 1 ---------------------------------------------------------------------
guest "$T/g1" it-proxy "$T/run1"
launch_bg "$T/b1" "$T/g1/manifest.json"
if wait_for "$T/b1.out" WARRANT-TEST-KILL-PROXY "$BOOT_TIMEOUT"; then
	ppid=$(sed -n 's/.*tool proxy for it-proxy (vm [^,]*, pid \([0-9]*\)) serving.*/\1/p' "$T/b1.err" | tail -n 1)
	if [ -n "$ppid" ] && kill -KILL "$ppid" 2>/dev/null; then
		pass "proxy process $ppid killed while the guest runs"
	else
		fail "no proxy process to kill ($(brief "$T/b1.err"))"
	fi
fi
wait "$LPID"
RC=$?
if [ "$RC" -eq 0 ] && grep -q "^WARRANT-RUN-EXIT" "$T/b1.out"; then
	pass "boot 1: the guest ran its calls and powered off (exit 0)"
else
	fail "boot 1: exit $RC ($(brief "$T/b1.out") / $(brief "$T/b1.err"))"
fi
O="$T/b1.out"
expect_r "$O" read-allowed 0 "hello from the host"
expect_r "$O" exec-allowed 0 '"status":0'
if [ -f "$WS/allowed.txt" ]; then
	pass "allowed exec: allowed.txt appeared in the workspace"
else
	fail "allowed exec: no allowed.txt in the workspace"
fi
expect_r "$O" list-never 1 denied "fs.list"
expect_r "$O" escape-dotdot 1 denied "leaves the workspace"
expect_r "$O" escape-abs-link 1 denied "symbolic link"
expect_r "$O" escape-rel-link 1 denied "symbolic link"
expect_r "$O" exec-not-allowed 1 denied "argv not allowed"
expect_r "$O" write-outside-bound 1 denied "outside /gated/"
expect_r "$O" gated-ok 0 "waiting for approval, request" '"size":8'
if [ "$(cat "$WS/gated/ok.txt" 2>/dev/null)" = approved ]; then
	pass "gated call ran after the approver's token: gated/ok.txt written"
else
	fail "gated call: gated/ok.txt not written"
fi
expect_r "$O" gated-other-args 1 token_invalid wrong_arguments
expect_r "$O" gated-other-vm 1 token_invalid wrong_vm
expect_r "$O" gated-other-launch 1 token_invalid wrong_launch
expect_r "$O" gated-expired 1 token_invalid expired
expect_r "$O" gated-denied 1 approval_denied "no, not this one"
expect_r "$O" gated-timeout 1 approval_timeout
expect_r "$O" gated-replay-1 0
expect_r "$O" gated-replay-2 1 token_invalid already_used
refused=0
for f in other-args other-vm other-launch expired denied ignored; do
	[ -e "$WS/gated/$f.txt" ] && refused=1
done
if [ "$refused" -eq 0 ]; then
	pass "no refused gated call left a file in the workspace"
else
	fail "a refused gated call wrote its file: $(ls "$WS/gated" | tr '\n' ' ')"
fi
if grep -q "tool proxy (pid $ppid) died of signal 9; restarting it" "$T/b1.err" &&
    [ "$(grep -c 'tool proxy for it-proxy (vm' "$T/b1.err")" -eq 2 ]; then
	pass "the killed proxy was restarted by its monitor"
else
	fail "proxy restart: $(grep -a 'proxy' "$T/b1.err" | tail -n 5 | tr '\n' ' ')"
fi
# The replayed token: consumed before the restart, refused after it.
if python3 - "$RUN/it-proxy/audit.log" <<'EOF'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
ev = [r["event"] for r in recs]
approved = [r for r in recs if r["event"] == "approved"]
refused = [r for r in recs if r["event"] == "token_refused" and r["reason"] == "already_used"]
assert len(refused) == 1, refused
jti = refused[0]["jti"]
first = next(i for i, r in enumerate(recs) if r["event"] == "approved" and r["jti"] == jti)
starts = [i for i, r in enumerate(recs) if r["event"] == "proxy_started"]
later = recs.index(refused[0])
assert len(starts) == 2 and first < starts[1] < later, (first, starts, later)
for e in ("allowed", "executed", "denied", "gated", "approved", "token_refused",
          "approval_denied", "approval_timeout", "dropped"):
    assert e in ev, e
EOF
then
	pass "audit: the token consumed before the proxy restart is refused after it (already_used)"
else
	fail "audit log order for the replayed token"
fi
expect_r "$O" drop 0 '"fs.read":"allow"'
if grep -a "^R drop " "$O" | grep -q '"exec"'; then
	fail "drop: exec is still in the envelope"
else
	pass "drop: exec is gone from the envelope"
fi
expect_r "$O" exec-after-drop 1 denied
expect_r "$O" widen 0
expect_r "$O" exec-after-widen 1 denied
a=$(grep -a "^R drop " "$O" | cut -d' ' -f4-)
b=$(grep -a "^R envelope-after " "$O" | cut -d' ' -f4-)
if [ -n "$a" ] && [ "$a" = "$b" ] && ! grep -q '"fs.write":"allow"' <<<"$b"; then
	pass "widening is impossible: the envelope after asking for more is the narrowed one"
else
	fail "widening: after drop '$a', after widen '$b'"
fi
req=$(ls "$T"/last-request-ok.txt.json 2>/dev/null)
if [ -n "$req" ] && python3 - "$req" <<'EOF'
import hashlib, json, sys
r = json.load(open(sys.argv[1]))
assert set(r) == {"id", "vm", "launch_digest", "op", "args", "args_sha256", "reason",
                  "requested_ttl", "created", "expires"}, r
canon = json.dumps(r["args"], sort_keys=True, separators=(",", ":")).encode()
assert hashlib.sha256(canon).hexdigest() == r["args_sha256"]
assert r["reason"] == "save the result" and r["op"] == "fs.write"
assert r["args"] == {"data": "approved", "path": "/gated/ok.txt"}
EOF
then
	pass "approval request: VM, launch digest, op, canonical args and their digest, reason"
else
	fail "approval request file ($req)"
fi
if [ -z "$(find "$SPOOL" -type f)" ]; then
	pass "spool: request, token and denial files removed once decided"
else
	fail "spool left files: $(find "$SPOOL" -type f | tr '\n' ' ')"
fi

# --- boot 2: same name, same used-token store ---------------------------------
guest "$T/g2" it-proxy "$T/run2"
launch_bg "$T/b2" "$T/g2/manifest.json"
wait "$LPID"
RC=$?
if [ "$RC" -eq 0 ] && grep -q "^WARRANT-RUN-EXIT" "$T/b2.out"; then
	pass "boot 2: powered off normally after the cut-off (exit 0)"
else
	fail "boot 2: exit $RC ($(brief "$T/b2.out") / $(brief "$T/b2.err"))"
fi
expect_r "$T/b2.out" replay-boot2 1 token_invalid already_used
expect_r "$T/b2.out" after-cut 2
if grep -q "cut off: too many malformed frames" "$T/b2.err" &&
    ! grep -q "restarting it" "$T/b2.err"; then
	pass "a flooding guest is cut off (logged), not restarted; the VM keeps running"
else
	fail "cut-off: $(grep -a proxy "$T/b2.err" | tail -n 4 | tr '\n' ' ')"
fi

# --- the audit log ----------------------------------------------------------------
AUDIT="$RUN/it-proxy/audit.log"
out=$("$VMHOST" audit verify "$AUDIT")
rc=$?
n=$(wc -l <"$AUDIT")
if [ "$rc" -eq 0 ] && [ "$(jq -c -S . <<<"$out")" = "{\"records\":$n,\"valid\":true}" ]; then
	pass "vmhost audit verify: $out over both boots"
else
	fail "audit verify: exit $rc: $out"
fi
cp "$AUDIT" "$T/edited.log"
sed -i '5s/"event":"[a-z_]*"/"event":"allowed"/; 5s/"rule":"[^"]*"/"rule":"fs.read: allow"/' "$T/edited.log"
if cmp -s "$AUDIT" "$T/edited.log"; then
	sed -i '5s/.$/ /' "$T/edited.log"
fi
out=$("$VMHOST" audit verify "$T/edited.log")
rc=$?
if [ "$rc" -eq 1 ] && grep -q '"valid":false' <<<"$out" && grep -q '"line":5' <<<"$out"; then
	pass "vmhost audit verify: an edited line 5 is found ($out)"
else
	fail "audit verify after an edit: exit $rc: $out"
fi
head -n 3 "$AUDIT" >"$T/cut.log"
tail -n +5 "$AUDIT" >>"$T/cut.log"
refute "vmhost audit verify: a dropped line is found" "$VMHOST" audit verify "$T/cut.log"
if python3 - "$RUN/it-proxy/used-tokens.db" <<'EOF'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
n = sum(r[0] for r in db.execute("select count(*) from sqlite_master where type='table'"))
assert n >= 1
EOF
then
	pass "used-tokens.db kept in the run folder across boots"
else
	fail "used-tokens.db"
fi

# --- boot 3: narrowing by policy from the host ----------------------------------
cat >"$T/run3" <<'EOF'
#!/bin/sh
A=/bin/warrant-agent
i=0
while [ $i -lt 90 ]; do
	out=$("$A" --timeout 30 call fs.list path=/ 2>&1)
	rc=$?
	if [ $rc -ne 0 ]; then
		echo "R list-narrowed $rc $(printf "%s" "$out" | tr "\n" " " | cut -c1-600)"
		break
	fi
	[ $i -eq 0 ] && echo "R list-before 0 $(printf "%s" "$out" | tr "\n" " " | cut -c1-200)"
	i=$((i + 1))
	sleep 1
done
# Time for the host to kill the proxy and check its successor.
sleep 15
EOF
ENVELOPE='{"fs.read":"allow","fs.list":"allow"}'
guest "$T/g3" it-narrow "$T/run3"
launch_bg "$T/b3" "$T/g3/manifest.json"
if wait_for "$T/b3.out" "^R list-before 0" "$BOOT_TIMEOUT"; then
	pass "narrow: the guest lists / before the narrowing"
	sock="$RUN/it-narrow/control.sock"
	if [ -S "$sock" ] && [ "$(stat -c %a "$sock")" = 600 ]; then
		pass "control socket $sock is 0600"
	else
		fail "control socket: $(ls -l "$sock" 2>&1)"
	fi
	out=$("$VMHOST" narrow --run-dir "$RUN" it-narrow '{"fs.read":"allow","fs.list":"never"}')
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$(jq -r '.ok' <<<"$out")" = true ] &&
	    [ "$(jq -r '.envelope["fs.list"] // "never"' <<<"$out")" = never ] &&
	    [ "$(jq -c '.envelope["fs.read"]' <<<"$out")" = '"allow"' ]; then
		pass "vmhost narrow: fs.list is never now ($out)"
	else
		fail "vmhost narrow: exit $rc: $out"
	fi
	out=$(echo '{"fs.read":"allow","fs.list":"allow","fs.write":"allow"}' |
	    "$VMHOST" narrow --run-dir "$RUN" it-narrow -)
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$(jq -r '.envelope["fs.list"] // "never"' <<<"$out")" = never ] &&
	    [ "$(jq -r '.envelope["fs.write"] // "never"' <<<"$out")" = never ]; then
		pass "vmhost narrow: asking for more from stdin widens nothing"
	else
		fail "vmhost narrow (wider): exit $rc: $out"
	fi
	out=$("$VMHOST" narrow --run-dir "$RUN" it-narrow '{"fs.read":"maybe"}')
	rc=$?
	if [ "$rc" -eq 1 ] && grep -q '"ok":false' <<<"$out"; then
		pass "vmhost narrow: a bad envelope is refused (exit 1)"
	else
		fail "vmhost narrow (bad envelope): exit $rc: $out"
	fi
	# A restarted proxy applies the policy again (policy-envelope.json).
	ppid=$(sed -n 's/.*tool proxy for it-narrow (vm [^,]*, pid \([0-9]*\)) serving.*/\1/p' "$T/b3.err" | tail -n 1)
	if [ -n "$ppid" ] && kill -KILL "$ppid" 2>/dev/null &&
	    wait_for "$T/b3.err" "tool proxy (pid $ppid) died of signal 9; restarting it" 10 &&
	    for _ in $(seq 1 50); do
		[ "$(grep -c 'tool proxy for it-narrow (vm' "$T/b3.err")" -ge 2 ] && break
		sleep 0.1
	    done &&
	    out=$("$VMHOST" narrow --run-dir "$RUN" it-narrow '{"fs.read":"allow","fs.list":"allow"}') &&
	    [ "$(jq -r '.envelope["fs.list"] // "never"' <<<"$out")" = never ]; then
		pass "vmhost narrow: a restarted proxy keeps the narrowing ($out)"
	else
		fail "vmhost narrow after a proxy restart: $out ($(grep -a proxy "$T/b3.err" | tail -n 3 | tr '\n' ' '))"
	fi
	"$VMHOST" narrow --run-dir "$RUN" no-such-vm '{}' >/dev/null 2>&1
	rc=$?
	if [ "$rc" -eq 2 ]; then
		pass "vmhost narrow: no such VM is exit 2"
	else
		fail "vmhost narrow (no such VM): exit $rc"
	fi
else
	fail "narrow: the guest never listed / ($(brief "$T/b3.out") / $(brief "$T/b3.err"))"
fi
wait "$LPID"
expect_r "$T/b3.out" list-narrowed 1 denied fs.list
if grep -q '"event":"narrowed"' "$RUN/it-narrow/audit.log" 2>/dev/null; then
	pass "audit: the narrowing by policy is recorded (narrowed)"
else
	fail "audit: no narrowed record"
fi


attestd_stop
check "no TPM handle leaked" no_leaked_handles
finish
