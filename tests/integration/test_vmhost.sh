#!/usr/bin/env bash
# vmhost end to end, through the real parts: a private swtpm, attest-keys,
# attestd with its launch socket, QEMU's microvm machine and the test guest
# from scripts/build-guest (build/guest).
#
#   - launch --foreground boots the guest; its marker reaches stdout
#   - the measured bytes are what boots: with --pause-before-boot the
#     kernel and initrd on disk are overwritten with garbage after
#     measurement, and the guest still boots (and the garbage alone does not)
#   - a launch token that is not bound to the reply is refused before QEMU
#     starts: attestd's genuine token relayed with another VM id or launch
#     digest, a tampered token, and no attestd to verify with
#   - background launch, list, a second launch of the same name refused,
#     stop; run state gone and every process ended
#   - vmm "firecracker": --dry-run stages the jail and prints the jailer
#     command; without it, "firecracker is not installed"
# Each guest boot is bounded (120 s); TCG boots the guest in about 5 s.

# A private TMPDIR of our own, removed at the end (common.sh's folder $T
# is created inside it).
MYTMP=$(mktemp -d "${TMPDIR:-/tmp}/test-vmhost.XXXXXX")
export TMPDIR="$MYTMP"
. "$(dirname "$0")/common.sh"

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
VMHOST="$BIN/vmhost"
GUEST="$ROOT/build/guest"
LSOCK="$T/attestd-launch.sock"
RUN="$T/run"
BOOT_TIMEOUT=120
MARKER=WARRANT-GUEST-UP
FAKE_PIDS=()
BG_PIDS=()      # supervisors started by background launches

my_cleanup() {
	local p
	for p in "${BG_PIDS[@]}" "${FAKE_PIDS[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${FAKE_PIDS[@]}"; do
		wait "$p" 2>/dev/null
	done
	cleanup
	rm -rf "$MYTMP"
}
trap my_cleanup EXIT

if [ ! -x "$VMHOST" ]; then
	skip "vmhost (build/bin/vmhost is not built)"
	finish
fi
if [ ! -x /usr/bin/qemu-system-x86_64 ]; then
	skip "vmhost (qemu-system-x86_64 is not installed; scripts/install-deps)"
	finish
fi
if [ ! -f "$GUEST/vmlinuz" ] || [ ! -f "$GUEST/initrd.img" ] || [ ! -f "$GUEST/manifest.json" ]; then
	"$ROOT/scripts/build-guest" >"$T/build-guest.log" 2>&1
fi
if [ ! -f "$GUEST/vmlinuz" ] || [ ! -f "$GUEST/initrd.img" ] || [ ! -f "$GUEST/manifest.json" ]; then
	skip "vmhost (no test guest in build/guest and scripts/build-guest failed: $(tail -n 1 "$T/build-guest.log"))"
	finish
fi

# One snapshot of the guest for every case (build/guest may be rebuilt
# while this runs).
mkdir -p "$T/base"
cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/manifest.json" "$T/base/"
GUEST="$T/base"

tpm_start || { fail "vmhost (swtpm did not start)"; finish; }
provision || { fail "vmhost (attest-keys init failed)"; finish; }
attestd_start || { fail "vmhost (attestd did not start)"; finish; }
for _ in $(seq 1 50); do
	[ -S "$LSOCK" ] && break
	sleep 0.1
done
if [ ! -S "$LSOCK" ]; then
	skip "vmhost (attestd has no launch socket at $LSOCK)"
	finish
fi
mkdir -m 0700 "$RUN"

# guest DIR NAME [HOLD]: a copy of the test guest in DIR with manifest
# name NAME. HOLD: append a cpio layer whose /bin/warrant-agent (which
# the guest's init runs after the marker) prints a line and sleeps, so the
# VM stays up until stopped. The kernel unpacks concatenated archives in
# order, later files replacing earlier ones; each must start 4-aligned.
guest() {
	local dir="$1" name="$2" hold="${3:-}" size
	mkdir -p "$dir"
	cp "$GUEST/vmlinuz" "$GUEST/initrd.img" "$dir/"
	python3 - "$GUEST/manifest.json" "$dir/manifest.json" "$name" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
m["name"] = sys.argv[3]
m["kernel"] = "vmlinuz"
m["initrd"] = "initrd.img"
m.pop("rootfs", None)
json.dump(m, open(sys.argv[2], "w"), indent=1)
EOF
	if [ -n "$hold" ]; then
		mkdir -p "$dir/layer/bin"
		printf '#!/bin/sh\necho WARRANT-TEST-HOLD\nexec sleep 3600\n' >"$dir/layer/bin/warrant-agent"
		chmod 0755 "$dir/layer/bin/warrant-agent"
		size=$(stat -c %s "$dir/initrd.img")
		head -c $(( (4 - size % 4) % 4 )) /dev/zero >>"$dir/initrd.img"
		(cd "$dir/layer" && find . | LC_ALL=C sort | cpio -o -H newc 2>/dev/null) >>"$dir/initrd.img"
	fi
}

# launch_fg NAME OUT_PREFIX [vmhost launch args...]: foreground launch,
# bounded; stdout in PREFIX.out, stderr in PREFIX.err, exit status in RC.
launch_fg() {
	local prefix="$1"
	shift
	timeout -k 5 "$BOOT_TIMEOUT" "$VMHOST" launch --foreground --attestd-socket "$SOCK" \
	    --run-dir "$RUN" "$@" >"$prefix.out" 2>"$prefix.err"
	RC=$?
}

# wait_for FILE PATTERN SECONDS
wait_for() {
	local i
	for i in $(seq 1 $(($3 * 10))); do
		grep -q -- "$2" "$1" 2>/dev/null && return 0
		sleep 0.1
	done
	return 1
}

# alive PID: running (a zombie waiting for a reaper is not).
alive() {
	local st
	st=$(sed -n 's/^[0-9]* (.*) \([A-Z]\) .*/\1/p' "/proc/$1/stat" 2>/dev/null)
	[ -n "$st" ] && [ "$st" != Z ] && [ "$st" != X ]
}

digest_of() { sed -n 's/.*launch digest \([0-9a-f]\{64\}\).*/\1/p' "$1" | head -n 1; }
vm_of() { sed -n 's/.*measured [^ ]*: vm \([^,]*\),.*/\1/p' "$1" | head -n 1; }
# measured VM EVENT: the sha256 attestd recorded in its event log
# (docs/event-log.md) for artifact EVENT of VM.
measured() {
	python3 - "$STATE/events" "$1" "$2" <<'EOF'
import json, os, sys
root, vm, ev = sys.argv[1:4]
for d, _, files in os.walk(root):
    for f in files:
        try:
            lines = open(os.path.join(d, f), encoding="utf-8").read().splitlines()
        except (OSError, UnicodeDecodeError):
            continue
        for line in lines:
            try:
                c = json.loads(line)["content"]
            except (ValueError, KeyError, TypeError):
                continue
            if isinstance(c, dict) and c.get("vm") == vm and c.get("event") == ev:
                print(c["sha256"])
                sys.exit(0)
sys.exit(1)
EOF
}

sha() { sha256sum "$1" | cut -d' ' -f1; }

brief() { tr '\n' ' ' <"$1" | tail -c 400; }

# --- 1. launch --foreground boots the measured guest ------------------------
guest "$T/g1" it-fg
start=$SECONDS
launch_fg "$T/fg" --launch-socket "$LSOCK" "$T/g1/manifest.json"
took=$((SECONDS - start))
if [ "$RC" -eq 0 ] && grep -q "^$MARKER" "$T/fg.out"; then
	pass "launch --foreground: $MARKER on stdout, guest powered off, exit 0 (${took} s)"
else
	fail "launch --foreground (exit $RC after ${took} s; stdout: $(brief "$T/fg.out"); stderr: $(brief "$T/fg.err"))"
fi
if grep -q "launch token verified" "$T/fg.err" && [ -n "$(digest_of "$T/fg.err")" ]; then
	pass "launch: measured by attestd, launch token verified before boot"
else
	fail "launch: no verified measurement in the log ($(brief "$T/fg.err"))"
fi
n=$(grep -c "accelerator: " "$T/fg.err")
if [ "$n" -eq 1 ] && grep -Eq "accelerator: (kvm|tcg), because .*KVM probe: [0-9]+ ms" "$T/fg.err"; then
	pass "KVM probe: one log line ($(grep -o 'accelerator: [a-z]*' "$T/fg.err"))"
else
	fail "KVM probe: expected one 'accelerator: ... because ...' line, got $n"
fi
if ! grep -q "vmhost\[" "$T/fg.out" && grep -q "vmhost\[.*booting it-fg" "$T/fg.err"; then
	pass "launch --foreground: the console on stdout, vmhost's log on stderr"
else
	fail "launch --foreground: unexpected stdout ($(brief "$T/fg.out"))"
fi
if [ ! -e "$RUN/it-fg/vm.json" ] && [ ! -e "$RUN/it-fg/pid" ]; then
	pass "launch --foreground: run state removed after the guest powered off"
else
	fail "launch --foreground: run state left behind ($(ls "$RUN/it-fg" 2>&1 | tr '\n' ' '))"
fi

# --- 2. the measured bytes boot, not the files on disk -------------------------
guest "$T/g2" it-tamper
rm -f "$T/go"
timeout -k 5 "$BOOT_TIMEOUT" "$VMHOST" launch --foreground --accel tcg --attestd-socket "$SOCK" \
    --launch-socket "$LSOCK" --run-dir "$RUN" --pause-before-boot "$T/go" \
    "$T/g2/manifest.json" >"$T/tamper.out" 2>"$T/tamper.err" &
TPID=$!
if wait_for "$T/tamper.err" "paused before boot" 60; then
	# Same inodes, same sizes, other bytes: what a writer racing the
	# launch could do.
	ksize=$(stat -c %s "$T/g2/vmlinuz")
	isize=$(stat -c %s "$T/g2/initrd.img")
	head -c "$ksize" /dev/urandom | dd of="$T/g2/vmlinuz" conv=notrunc status=none
	head -c "$isize" /dev/urandom | dd of="$T/g2/initrd.img" conv=notrunc status=none
	touch "$T/go"
	wait "$TPID"
	RC=$?
	if [ "$RC" -eq 0 ] && grep -q "^$MARKER" "$T/tamper.out"; then
		pass "kernel and initrd overwritten after measurement: the measured bytes booted ($MARKER)"
	else
		fail "tamper after measurement (exit $RC; stdout: $(brief "$T/tamper.out"); stderr: $(brief "$T/tamper.err"))"
	fi
	tvm=$(vm_of "$T/tamper.err")
	if [ -n "$tvm" ] && [ "$(measured "$tvm" kernel)" = "$(sha "$GUEST/vmlinuz")" ] &&
	    [ "$(measured "$tvm" initrd)" = "$(sha "$GUEST/initrd.img")" ]; then
		pass "tamper: attestd's event log holds the original kernel's and initrd's hashes for $tvm"
	else
		fail "tamper: the event log does not show the original artifacts for vm '$tvm'"
	fi
	# Control: the garbage itself, measured and launched, measures
	# differently and does not boot.
	launch_fg "$T/garbage" --accel tcg --launch-socket "$LSOCK" "$T/g2/manifest.json"
	gvm=$(vm_of "$T/garbage.err")
	if [ -n "$gvm" ] && [ "$(measured "$gvm" kernel)" = "$(sha "$T/g2/vmlinuz")" ] &&
	    [ "$RC" -ne 0 ] && ! grep -q "^$MARKER" "$T/garbage.out"; then
		pass "control: the overwritten files measure differently and do not boot"
	else
		fail "control: garbage artifacts (vm '$gvm', exit $RC, stdout: $(brief "$T/garbage.out"))"
	fi
else
	kill "$TPID" 2>/dev/null
	wait "$TPID" 2>/dev/null
	fail "--pause-before-boot: vmhost never paused ($(brief "$T/tamper.err"))"
fi

# --- 3. tokens not bound to the reply are refused before QEMU starts -----------
# A relay in front of the real launch socket: attestd measures and mints as
# usual, and the relay changes the reply on its way back.
cat >"$T/relay.py" <<'EOF'
import json, os, socket, struct, sys
path, mode, real = sys.argv[1:4]
def recv_request(c):
    fds, buf = [], b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        msg, anc, _, _ = c.recvmsg(65536, socket.CMSG_SPACE(16 * 4))
        if not msg:
            raise EOFError("short request")
        for level, typ, data in anc:
            if level == socket.SOL_SOCKET and typ == socket.SCM_RIGHTS:
                fds += struct.unpack("%di" % (len(data) // 4), data[:len(data) // 4 * 4])
        buf += msg
    return buf, list(fds)
srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
srv.bind(path)
srv.listen(4)
while True:
    c, _ = srv.accept()
    try:
        req, fds = recv_request(c)
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(real)
        s.sendmsg([req], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, struct.pack("%di" % len(fds), *fds))])
        s.shutdown(socket.SHUT_WR)
        out = b""
        while True:
            d = s.recv(65536)
            if not d:
                break
            out += d
        s.close()
        rep = json.loads(out[4:])
        if rep.get("status") == 200:
            if mode == "swap-vm":
                v = rep["vm"]
                rep["vm"] = v[:-1] + ("0" if v[-1] != "0" else "1")
            elif mode == "swap-digest":
                d = rep["launch_digest"]
                rep["launch_digest"] = ("0" if d[0] != "0" else "1") + d[1:]
            elif mode == "tamper":
                t = rep["token"]
                rep["token"] = t[:-3] + ("A" if t[-3] != "A" else "B") + t[-2:]
        body = json.dumps(rep).encode()
        c.sendall(struct.pack(">I", len(body)) + body)
        for fd in fds:
            os.close(fd)
    except Exception as e:
        print("relay:", e, file=sys.stderr, flush=True)
    finally:
        c.close()
EOF
guest "$T/g3" it-refused
for mode in swap-vm:wrong_vm swap-digest:wrong_launch tamper:bad_mac; do
	m=${mode%%:*}
	want=${mode#*:}
	python3 "$T/relay.py" "$T/relay-$m.sock" "$m" "$LSOCK" 2>>"$T/relay.log" &
	FAKE_PIDS+=("$!")
	for _ in $(seq 1 50); do [ -S "$T/relay-$m.sock" ] && break; sleep 0.1; done
	launch_fg "$T/ref-$m" --accel tcg --launch-socket "$T/relay-$m.sock" "$T/g3/manifest.json"
	if [ "$RC" -eq 1 ] && grep -q "refusing to boot it-refused: .*: $want\$" "$T/ref-$m.err" &&
	    ! grep -q "booting\|$MARKER" "$T/ref-$m.err" "$T/ref-$m.out"; then
		pass "genuine launch token relayed with $m: refused before boot ($want)"
	else
		fail "relay $m: wanted exit 1 and '$want', got exit $RC ($(brief "$T/ref-$m.err"))"
	fi
done
timeout -k 5 "$BOOT_TIMEOUT" "$VMHOST" launch --foreground --accel tcg --run-dir "$RUN" \
    --launch-socket "$LSOCK" --attestd-socket "$T/none.sock" "$T/g3/manifest.json" \
    >"$T/ref-noattestd.out" 2>"$T/ref-noattestd.err"
RC=$?
if [ "$RC" -eq 1 ] && grep -q "refusing to boot it-refused: .*attestd_unavailable" "$T/ref-noattestd.err" &&
    ! grep -q "booting" "$T/ref-noattestd.err"; then
	pass "no attestd to verify the launch token with: refused before boot"
else
	fail "no attestd for verification: exit $RC ($(brief "$T/ref-noattestd.err"))"
fi
if [ ! -e "$RUN/it-refused/vm.json" ]; then
	pass "refused launches leave no run state"
else
	fail "refused launches left run state in $RUN/it-refused"
fi

# --- 4. background launch, list, same name refused, stop -------------------------
guest "$T/g4" it-bg hold
"$VMHOST" launch --accel tcg --attestd-socket "$SOCK" --launch-socket "$LSOCK" --run-dir "$RUN" \
    "$T/g4/manifest.json" >"$T/bg.json" 2>"$T/bg.err"
RC=$?
BGPID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["pid"])' "$T/bg.json" 2>/dev/null)
QPID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vmm_pid"])' "$T/bg.json" 2>/dev/null)
[ -n "$BGPID" ] && BG_PIDS+=("$BGPID")
if [ "$RC" -eq 0 ] && [ -n "$BGPID" ] && alive "$BGPID" && alive "$QPID"; then
	pass "background launch: returns with the supervisor ($BGPID) and QEMU ($QPID) running"
else
	fail "background launch (exit $RC: $(brief "$T/bg.json") $(brief "$T/bg.err"))"
fi
if wait_for "$RUN/it-bg/console.log" WARRANT-TEST-HOLD "$BOOT_TIMEOUT" &&
    grep -q "^$MARKER" "$RUN/it-bg/console.log"; then
	pass "background launch: the console goes to RUNDIR/NAME/console.log ($MARKER)"
else
	fail "background launch: no marker in console.log ($(brief "$RUN/it-bg/console.log"))"
fi
"$VMHOST" list --run-dir "$RUN" >"$T/list.json" 2>"$T/list.err"
if python3 - "$T/list.json" "$T/bg.json" <<'EOF'
import json, sys
l = json.load(open(sys.argv[1])); b = json.load(open(sys.argv[2]))
assert len(l) == 1, l
v = l[0]
for k in ("name", "vm_id", "launch_digest", "pid", "vmm_pid", "accel", "started"):
    assert v[k] == b[k], k
assert v["name"] == "it-bg" and v["accel"] == "tcg" and v["vmm"] == "qemu"
EOF
then
	pass "list: the running VM with its vm id, launch digest, pids and accelerator"
else
	fail "list: $(brief "$T/list.json") $(brief "$T/list.err")"
fi
"$VMHOST" launch --accel tcg --attestd-socket "$SOCK" --launch-socket "$LSOCK" --run-dir "$RUN" \
    "$T/g4/manifest.json" >"$T/bg2.json" 2>"$T/bg2.err"
RC=$?
if [ "$RC" -eq 1 ] && grep -q "already running" "$T/bg2.err" && alive "$BGPID"; then
	pass "a second launch of a running name is refused; the first keeps running"
else
	fail "second launch of it-bg: exit $RC ($(brief "$T/bg2.err"))"
fi
"$VMHOST" stop --run-dir "$RUN" it-bg >"$T/stop.json" 2>"$T/stop.err"
RC=$?
gone=1
alive "$BGPID" && gone=0
alive "$QPID" && gone=0
if [ "$RC" -eq 0 ] && [ "$gone" -eq 1 ] && grep -q '"stopped":true' "$T/stop.json"; then
	pass "stop: supervisor and QEMU ended"
else
	fail "stop: exit $RC, processes gone: $gone ($(brief "$T/stop.err"))"
fi
if [ ! -e "$RUN/it-bg/pid" ] && [ ! -e "$RUN/it-bg/vm.json" ] && [ ! -e "$RUN/it-bg/agent.sock" ] &&
    [ "$("$VMHOST" list --run-dir "$RUN")" = "[]" ]; then
	pass "stop: run state removed, list is empty"
else
	fail "stop: state left ($(ls "$RUN/it-bg" | tr '\n' ' '))"
fi
refute "stop of a VM that is not there fails" "$VMHOST" stop --run-dir "$RUN" it-bg
refute "stop refuses a name that is a path" "$VMHOST" stop --run-dir "$RUN" ../etc

# --- 5. Firecracker: staged, not run ----------------------------------------------
guest "$T/g5" it-fc
sed -i 's/"vmm": "qemu"/"vmm": "firecracker"/' "$T/g5/manifest.json"
mkdir -m 0755 "$T/jail"
"$VMHOST" launch --dry-run --chroot-base "$T/jail" --jail-uid 4242 --jail-gid 4242 \
    --attestd-socket "$SOCK" --launch-socket "$LSOCK" "$T/g5/manifest.json" >"$T/fc.json" 2>"$T/fc.err"
RC=$?
if [ "$RC" -eq 0 ] && python3 - "$T/fc.json" <<'EOF'
import json, os, sys
j = json.load(open(sys.argv[1]))
root = j["jail"]
assert j["jailer_argv"][0] == "/usr/bin/jailer" and "--no-api" in j["jailer_argv"], j
assert j["jailer_argv"][j["jailer_argv"].index("--id") + 1] == j["vm_id"]
cfg = json.load(open(j["config"]))
assert cfg["boot-source"]["kernel_image_path"] == "/kernel"
for f in ("kernel", "initrd", "config.json"):
    assert os.path.isfile(os.path.join(root, f)), f
EOF
then
	pass "firecracker --dry-run: jail staged from the sealed bytes, jailer command printed"
else
	fail "firecracker --dry-run: exit $RC ($(brief "$T/fc.json") $(brief "$T/fc.err"))"
fi
if cmp -s "$T/g5/vmlinuz" "$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["jail"])' "$T/fc.json" 2>/dev/null)/kernel"; then
	pass "firecracker --dry-run: the jail's kernel is the measured kernel"
else
	fail "firecracker --dry-run: the jail's kernel differs from the manifest's"
fi
if [ ! -x /usr/bin/firecracker ]; then
	mkdir -m 0755 "$T/jail2"
	"$VMHOST" launch --chroot-base "$T/jail2" --jail-uid 4242 --jail-gid 4242 \
	    --attestd-socket "$SOCK" --launch-socket "$LSOCK" "$T/g5/manifest.json" >"$T/fc2.json" 2>"$T/fc2.err"
	RC=$?
	if [ "$RC" -eq 1 ] && grep -q "firecracker is not installed" "$T/fc2.err"; then
		pass "firecracker without --dry-run: 'firecracker is not installed', exit 1"
	else
		fail "firecracker without --dry-run: exit $RC ($(brief "$T/fc2.err"))"
	fi
else
	skip "firecracker without --dry-run (Firecracker is installed here; not run by this test)"
fi

# --- 6. usage and manifest errors --------------------------------------------------
printf '{"name":"x","kernel":"vmlinuz"}' >"$T/g1/bad.json"
"$VMHOST" launch --attestd-socket "$SOCK" --launch-socket "$LSOCK" --run-dir "$RUN" \
    "$T/g1/bad.json" >/dev/null 2>"$T/bad.err"
RC=$?
if [ "$RC" -eq 1 ] && [ "$(wc -l <"$T/bad.err")" -eq 1 ] && grep -q "manifest: " "$T/bad.err"; then
	pass "a bad manifest: one line naming the problem, exit 1"
else
	fail "bad manifest: exit $RC ($(brief "$T/bad.err"))"
fi
refute "launch --accel with an unknown accelerator is a usage error" \
    "$VMHOST" launch --accel hvf "$T/g1/manifest.json"
refute "launch --dry-run is refused for a QEMU manifest" \
    "$VMHOST" launch --dry-run --run-dir "$RUN" "$T/g1/manifest.json"

attestd_stop
check "no TPM handle leaked after the launches" no_leaked_handles
finish
