#!/usr/bin/env bash
# Measured launch through attestd's launch socket, on a private swtpm:
# `attestctl measure` seals a manifest's artifacts and attestd records them
# in the event log and PCR 15; the PCR is the log's replay; the launch
# token verifies for audience vmhost; bad manifests and callers are
# refused; the raw socket refuses unsealed or miscounted descriptors; a
# restart keeps the VMs; a log edited on disk or a PCR extended behind
# attestd's back stops measuring until the two agree again; a crash
# between fsync and extend is finished at start.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/attestd_lib.sh"

for tool in swtpm curl jq python3 tpm2_getcap tpm2_pcrread tpm2_pcrextend tpm2_readclock sha256sum xxd; do
	command -v "$tool" >/dev/null 2>&1 || { skip "measure: $tool not installed"; finish; }
done
CTL="$BIN/attestctl"
LSOCK="$T/attestd-launch.sock"
ZERO=$(printf '0%.0s' $(seq 64))

tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
write_config "$T/attestd.json"
attestd_start --config "$T/attestd.json" || { fail "attestd starts"; finish; }

# mkvm DIR [EXTRA_MEMBERS]: small stand-in artifacts and a manifest naming
# them (readable by every uid, for the role test).
mkvm() {
	local d=$1
	mkdir -p "$d" && chmod 0755 "$d"
	printf 'kernel bytes of %s\n' "$d" >"$d/vmlinuz"
	printf 'initrd bytes\n' >"$d/initrd.img"
	cat >"$d/manifest.json" <<EOF
{"name":"m1","kernel":"vmlinuz","initrd":"initrd.img","cmdline":"console=ttyS0 quiet",
 "vcpus":2,"memory_mib":256,"vmm":"qemu",${2:+$2,}
 "envelope":{"fs.write":"allow","fs.read":{"level":"ask","paths":["/data/"]},"exec":"never"}}
EOF
	chmod 0644 "$d"/*
}

# wait_for SECONDS CMD...: poll CMD every 0.1 s until it succeeds.
wait_for() {
	local n=$(($1 * 10)) i
	shift
	for i in $(seq 1 "$n"); do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.1
	done
	return 1
}

log_file() { ls "$STATE"/events/launch-*.jsonl 2>/dev/null | tail -n 1; }

# replay FILE: the PCR value the log's digests chain to (standard tools).
replay() {
	local pcr=$ZERO d
	for d in $(jq -r '.digests[0].digest' "$1"); do
		pcr=$(printf '%s%s' "$pcr" "$d" | xxd -r -p | sha256sum | cut -c1-64)
	done
	echo "$pcr"
}

pcr15() { tpm2_pcrread sha256:15 | awk '/15:/ {print tolower($2)}' | sed 's/^0x//'; }

# measure_ok NAME MANIFEST OUT: attestctl measure succeeds with status 200.
measure_ok() {
	if "$CTL" --socket "$SOCK" measure "$2" >"$3" 2>>"$T/check.log" &&
	    jq -e '.status == 200' "$3" >/dev/null; then
		pass "$1"
	else
		fail "$1 ($(head -c 300 "$3"))"
	fi
}

# measure_refused NAME MANIFEST PATTERN: attestctl measure fails, saying PATTERN.
measure_refused() {
	local rc
	"$CTL" --socket "$SOCK" measure "$2" >"$T/refused.json" 2>"$T/refused.err"
	rc=$?
	if [ "$rc" = 1 ] && grep -q -- "$3" "$T/refused.err"; then
		pass "$1"
	else
		fail "$1 (exit $rc: $(cat "$T/refused.err"))"
	fi
}

# --- measure ----------------------------------------------------------------
mkvm "$T/a"
measure_ok "attestctl measure" "$T/a/manifest.json" "$T/a.json"
VM=$(jq -r .vm "$T/a.json")
LD=$(jq -r .launch_digest "$T/a.json")
if [[ "$VM" =~ ^vm-[0-9a-f]{16}$ ]] && [[ "$LD" =~ ^[0-9a-f]{64}$ ]] &&
    jq -e '(.events | length) == 4 and (.token | startswith("w1."))' "$T/a.json" >/dev/null; then
	pass "reply: vm-<16 hex>, launch digest, token, 4 records"
else
	fail "reply: $(head -c 300 "$T/a.json")"
fi
if [ "$(stat -c %a "$LSOCK")" = 660 ]; then pass "launch socket mode 0660"; else fail "launch socket mode $(stat -c %a "$LSOCK")"; fi

LOG=$(log_file)
if [ -n "$LOG" ] && [ "$(wc -l <"$LOG")" = 4 ] &&
    [ "$(jq -r .content.event "$LOG" | tr '\n' ' ')" = "kernel initrd cmdline config " ] &&
    [ "$(jq -r .content.vm "$LOG" | sort -u)" = "$VM" ] &&
    jq -s -e '[.[].recnum] == [0,1,2,3] and all(.[]; .pcr == 15)' "$LOG" >/dev/null; then
	pass "event log: kernel, initrd, cmdline, config for the VM, numbered, PCR 15"
else
	fail "event log $LOG: $(head -c 400 "$LOG")"
fi
if [ "$(jq -r 'select(.content.event == "kernel") | .content.sha256' "$LOG")" = \
    "$(sha256sum "$T/a/vmlinuz" | cut -c1-64)" ] &&
    [ "$(jq -r 'select(.content.event == "kernel") | .content.size' "$LOG")" = "$(stat -c %s "$T/a/vmlinuz")" ] &&
    [ "$(jq -r 'select(.content.event == "cmdline") | .content.cmdline' "$LOG")" = "console=ttyS0 quiet" ]; then
	pass "the kernel record carries sha256sum's digest and the size; the cmdline record the command line"
else
	fail "kernel/cmdline records"
fi
if [ "$(jq -c 'select(.content.event == "config") | .content.config' "$LOG")" = \
    '{"cmdline":"console=ttyS0 quiet","envelope":{"exec":"never","fs.read":{"level":"ask","paths":["/data/"]},"fs.write":"allow"},"memory_mib":256,"name":"m1","vcpus":2,"vmm":"qemu"}' ]; then
	pass "the config record is the canonical config, envelope included, no paths"
else
	fail "config record: $(jq -c 'select(.content.event == "config")' "$LOG")"
fi
# Each record's digest is SHA-256 of its content's canonical JSON, and the
# launch digest SHA-256 over the records' digests.
if python3 - "$LOG" "$LD" <<'PY'
import hashlib, json, sys
lines = open(sys.argv[1]).read().splitlines()
ds = []
for l in lines:
    r = json.loads(l)
    c = json.dumps(r["content"], sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(c.encode()).hexdigest() == r["digests"][0]["digest"], l
    ds.append(bytes.fromhex(r["digests"][0]["digest"]))
assert hashlib.sha256(b"".join(ds)).hexdigest() == sys.argv[2]
PY
then
	pass "record digests and the launch digest recompute independently"
else
	fail "record digests and the launch digest recompute independently"
fi
if [ "$(pcr15)" = "$(replay "$LOG")" ] && [ "$(pcr15)" != "$ZERO" ]; then
	pass "PCR 15 (tpm2_pcrread) equals the log's replay"
else
	fail "PCR 15 $(pcr15) vs replay $(replay "$LOG")"
fi

# The launch token: audience vmhost, this VM and launch digest, op
# vm.launch, and the canonical config as its arguments.
jq -c 'select(.content.event == "config") | .content.config' "$LOG" >"$T/config.json"
TOKEN=$(jq -r .token "$T/a.json")
if "$CTL" --socket "$SOCK" verify --aud vmhost --vm "$VM" --launch-digest "$LD" --op vm.launch \
    --args-file "$T/config.json" "$TOKEN" >"$T/verify.json" 2>>"$T/check.log" &&
    jq -e '.valid and .grant.uses == 1 and .claims.exp - .claims.iat == 120' "$T/verify.json" >/dev/null; then
	pass "the launch token verifies with attestctl verify --aud vmhost (single use, 120 s)"
else
	fail "launch token: $(cat "$T/verify.json")"
fi
refute "the launch token does not verify for another VM" \
    "$CTL" --socket "$SOCK" verify --aud vmhost --vm vm-0000000000000000 --launch-digest "$LD" \
    --op vm.launch "$TOKEN"
refute "the launch token does not verify for another launch digest" \
    "$CTL" --socket "$SOCK" verify --aud vmhost --vm "$VM" --launch-digest "$ZERO" --op vm.launch "$TOKEN"

# A rootfs makes five records; each launch gets its own VM id.
mkvm "$T/b" '"rootfs":"rootfs.img"'
head -c 100000 /dev/urandom >"$T/b/rootfs.img"
measure_ok "measure with a rootfs" "$T/b/manifest.json" "$T/b.json"
if jq -e '(.events | length) == 5 and .events[2].content.event == "rootfs" and
    .events[2].content.size == 100000' "$T/b.json" >/dev/null &&
    [ "$(jq -r .vm "$T/b.json")" != "$VM" ] && [ "$(wc -l <"$LOG")" = 9 ] &&
    [ "$(pcr15)" = "$(replay "$LOG")" ]; then
	pass "rootfs record, a new VM id, PCR still the replay (9 records)"
else
	fail "rootfs launch: $(jq -c '.events | map(.content.event)' "$T/b.json")"
fi

# --- refused manifests --------------------------------------------------------
before=$(wc -l <"$LOG")
mkvm "$T/sym"
mv "$T/sym/vmlinuz" "$T/sym/real-vmlinuz"
ln -s real-vmlinuz "$T/sym/vmlinuz"
measure_refused "a symlinked kernel is refused, naming the field" "$T/sym/manifest.json" \
    'field "kernel".*symbolic link'
mkvm "$T/esc"
sed -i 's|"kernel":"vmlinuz"|"kernel":"../a/vmlinuz"|' "$T/esc/manifest.json"
measure_refused "a kernel path escaping the manifest's folder is refused" "$T/esc/manifest.json" \
    'field "kernel".*escapes'
mkvm "$T/big"
sed -i 's|"vcpus":2|"vcpus":33|' "$T/big/manifest.json"
measure_refused "vcpus 33 is refused" "$T/big/manifest.json" 'field "vcpus": must be an integer in 1..32'
mkvm "$T/cmd"
python3 - "$T/cmd/manifest.json" <<'PY'
import json, sys
m = json.load(open(sys.argv[1])); m["cmdline"] = "x" * 2049
open(sys.argv[1], "w").write(json.dumps(m))
PY
measure_refused "a command line over 2048 characters is refused" "$T/cmd/manifest.json" 'field "cmdline"'
mkvm "$T/unk"
sed -i 's|"vcpus":2|"vcpus":2,"gpu":true|' "$T/unk/manifest.json"
measure_refused "an unknown field is refused" "$T/unk/manifest.json" 'field "gpu": unknown field'
if [ "$(wc -l <"$LOG")" = "$before" ]; then pass "refused manifests add nothing to the log"; else fail "refused manifests changed the log"; fi

# --- the raw launch socket ---------------------------------------------------
# raw MODE: speak the protocol directly; prints attestd's reply.
raw() {
	python3 - "$LSOCK" "$1" "$T/a" <<'PY'
import fcntl, json, os, socket, struct, sys
path, mode, d = sys.argv[1], sys.argv[2], sys.argv[3]
cfg = {"cmdline": "", "envelope": {}, "memory_mib": 64, "name": "raw", "vcpus": 1, "vmm": "qemu"}
def sealed(data):
    fd = os.memfd_create("raw", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    os.write(fd, data)
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SEAL | fcntl.F_SEAL_WRITE |
                fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK)
    return fd
body = json.dumps({"artifacts": ["kernel", "initrd"], "config": cfg}).encode()
fds = [sealed(b"k"), sealed(b"i")]
if mode == "unsealed":
    fds[1] = os.open(d + "/initrd.img", os.O_RDONLY)
elif mode == "partly-sealed":
    fd = os.memfd_create("raw", os.MFD_ALLOW_SEALING)
    os.write(fd, b"i")
    fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_GROW | fcntl.F_SEAL_SHRINK)
    fds[1] = fd
elif mode == "one-fd":
    fds = fds[:1]
elif mode == "four-fds":
    fds = fds + [sealed(b"x"), sealed(b"y")]
elif mode == "no-rootfs-fd":
    body = json.dumps({"artifacts": ["kernel", "initrd", "rootfs"], "config": cfg}).encode()
elif mode == "bad-json":
    body = b'{"artifacts":["kernel","initrd"],"config":{},"config":{}}'
elif mode == "bad-config":
    cfg["vcpus"] = 0
    body = json.dumps({"artifacts": ["kernel", "initrd"], "config": cfg}).encode()
elif mode == "order":
    body = json.dumps({"artifacts": ["initrd", "kernel"], "config": cfg}).encode()
s = socket.socket(socket.AF_UNIX)
s.connect(path)
if mode == "huge":
    s.sendall(struct.pack(">I", 65537))
else:
    socket.send_fds(s, [struct.pack(">I", len(body)) + body], fds)
s.shutdown(socket.SHUT_WR)
n = struct.unpack(">I", s.recv(4, socket.MSG_WAITALL))[0]
print(s.recv(n, socket.MSG_WAITALL).decode())
PY
}
rawcheck() {
	local out
	out=$(raw "$1" 2>>"$T/check.log")
	if jq -e "$2" >/dev/null 2>&1 <<<"$out"; then pass "$3"; else fail "$3 ($out)"; fi
}
rawcheck ok '.status == 200 and (.vm | startswith("vm-"))' "raw protocol: sealed memfds are measured"
rawcheck unsealed '.status == 400 and .error == "not_sealed"' "raw protocol: a plain file descriptor is refused"
rawcheck partly-sealed '.status == 400 and .error == "not_sealed"' "raw protocol: a memfd without every seal is refused"
rawcheck one-fd '.status == 400 and .error == "bad_descriptors"' "raw protocol: fewer descriptors than artifacts named"
rawcheck four-fds '.status == 400 and .error == "bad_descriptors"' "raw protocol: more descriptors than artifacts named"
rawcheck no-rootfs-fd '.status == 400 and .error == "bad_descriptors"' "raw protocol: a named rootfs without its descriptor"
rawcheck bad-json '.status == 400 and .error == "bad_request"' "raw protocol: duplicate keys are refused"
rawcheck bad-config '.status == 400 and (.detail | contains("vcpus"))' "raw protocol: a bad config names the field"
rawcheck order '.status == 400 and (.detail | contains("artifacts"))' "raw protocol: artifacts out of order"
rawcheck huge '.status == 413 and .error == "too_large"' "raw protocol: a length over 65536 is refused"
if [ "$(pcr15)" = "$(replay "$LOG")" ]; then pass "PCR still the replay after the refusals"; else fail "PCR after the refusals"; fi

# --- roles --------------------------------------------------------------------
if [ "$(id -u)" != 0 ] || ! command -v setpriv >/dev/null; then
	skip "launch role (needs root and setpriv)"
elif ! setpriv --reuid=65534 --regid=65534 --clear-groups test -r "$T/a/manifest.json"; then
	skip "launch role (uid 65534 cannot reach $T: is TMPDIR searchable by others?)"
else
	setpriv --reuid=65534 --regid=65534 --clear-groups "$CTL" --socket "$SOCK" \
	    measure "$T/a/manifest.json" >"$T/norole.json" 2>"$T/norole.err"
	if [ $? = 1 ] && jq -e '.status == 403 and .error == "forbidden"' "$T/norole.json" >/dev/null &&
	    grep -q 'role launch' "$T/norole.err"; then
		pass "a caller without the launch role is refused (403)"
	else
		fail "a caller without the launch role ($(cat "$T/norole.json" "$T/norole.err"))"
	fi
	req --as 65534 POST /v1/quote '{"nonce":"00ff"}'
	expect "any role may quote" 200 '.launch_pcr == 15'
	req --as 65533 POST /v1/quote '{"nonce":"00ff"}'
	expect "no role: quote 403" 403
fi

# --- quotes -------------------------------------------------------------------
req POST /v1/quote '{"nonce":"'$(printf 'ab%.0s' $(seq 65))'"}'
expect "quote nonce over 64 bytes: 400" 400
req POST /v1/quote '{"nonce":"ABCD"}'
expect "quote nonce in upper case: 400" 400
"$BIN/attest-keys" --tcti "$TCTI" --state-dir "$STATE" ak-public >"$T/ak.pem" 2>>"$T/check.log"
if "$CTL" --socket "$SOCK" quote --nonce 0123456789abcdef >"$T/quote.json" 2>>"$T/check.log" &&
    "$CTL" verify-quote --ak "$T/ak.pem" --nonce 0123456789abcdef "$T/quote.json" >"$T/vq.json" 2>>"$T/check.log" &&
    jq -e --arg vm "$VM" --arg ld "$LD" '.valid and any(.launches[]; .vm == $vm and .launch_digest == $ld)' \
    "$T/vq.json" >/dev/null; then
	pass "attestctl quote + verify-quote: valid, with this VM's launch digest"
else
	fail "quote/verify-quote: $(head -c 300 "$T/vq.json")"
fi
refute "verify-quote with another nonce fails" \
    "$CTL" verify-quote --ak "$T/ak.pem" --nonce 0123456789abcdee "$T/quote.json"

# --- restart keeps the registry ----------------------------------------------
req GET /v1/status
VMS=$(field .vms)
attestd_stop
attestd_start --config "$T/attestd.json" || fail "attestd restarts"
req GET /v1/status
expect "after a restart: event log ok, same VMs" 200 ".event_log == \"ok\" and .vms == $VMS"
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.write","args":1}'
expect "after a restart the VM is still known: mint 200" 200
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"exec","args":1}'
expect "after a restart its envelope still applies" 403 '.error == "not_in_envelope"'

# --- a write cut short (attestd stopped inside it) ---------------------------
# Appended while attestd runs, as a torn write would leave them: a last line
# without its newline, then whole lines of an unfinished launch. Neither
# was ever extended: attestd cuts them off and stays consistent.
lines=$(wc -l <"$LOG")
printf '{"content":{"event":"kernel","sha' >>"$LOG"
if wait_for 4 grep -q 'torn last line' "$T/attestd.log" &&
    wait_status '.event_log == "ok"' 4 && [ "$(wc -l <"$LOG")" = "$lines" ] &&
    [ "$(tail -c 1 "$LOG" | xxd -p)" = 0a ] && grep -q 'torn last line' "$T/attestd.log"; then
	pass "a torn last line is cut off"
else
	fail "a torn last line ($BODY)"
fi
python3 - "$LOG" "$lines" <<'PY'
import hashlib, json, sys
path, n = sys.argv[1], int(sys.argv[2])
canon = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
out = []
for i, ev in enumerate(("kernel", "initrd")):
    c = {"event": ev, "sha256": "00" * 32, "size": 1, "vm": "vm-unfinished"}
    d = hashlib.sha256(canon(c).encode()).hexdigest()
    out.append(canon({"content": c, "content_type": "warrant",
                      "digests": [{"digest": d, "hashAlg": "sha256"}], "pcr": 15, "recnum": n + i}))
open(path, "a").write("\n".join(out) + "\n")
PY
if wait_for 4 grep -q 'cut off an incomplete last launch' "$T/attestd.log" &&
    wait_status '.event_log == "ok"' 4 && [ "$(wc -l <"$LOG")" = "$lines" ] &&
    grep -q 'cut off an incomplete last launch' "$T/attestd.log" &&
    [ "$(pcr15)" = "$(replay "$LOG")" ]; then
	pass "an unfinished last launch, never extended, is cut off"
else
	fail "an unfinished last launch ($BODY)"
fi

# --- the log edited on disk -----------------------------------------------------
cp -p "$LOG" "$T/log.orig"
python3 - "$LOG" <<'PY'
import sys
p = sys.argv[1]
lines = open(p).read().splitlines(True)
lines[0] = lines[0].replace('"size":', '"size":1', 1)   # digest left as it was
open(p, "w").write("".join(lines))
PY
if wait_status '.event_log == "inconsistent"' 4; then
	pass "a log edited on disk: status inconsistent"
else
	fail "a log edited on disk: status ($BODY)"
fi
"$CTL" --socket "$SOCK" measure "$T/a/manifest.json" >"$T/inc.json" 2>>"$T/check.log"
rc=$?
if [ "$rc" = 1 ] && jq -e '.status == 503 and .error == "event_log_inconsistent"' "$T/inc.json" >/dev/null; then
	pass "measuring refused while the log is inconsistent (503)"
else
	fail "measuring while inconsistent (exit $rc: $(cat "$T/inc.json"))"
fi
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.write","args":1}'
expect "VMs verified before the edit can still get tokens" 200
attestd_stop
attestd_start --config "$T/attestd.json" || fail "attestd starts with an inconsistent log"
req GET /v1/status
expect "restart with an edited log: still inconsistent, no VMs" 200 \
    '.event_log == "inconsistent" and .vms == 0 and (.event_log_detail | contains("digest_mismatch"))'
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.write","args":1}'
expect "restart with an edited log: its VMs are not trusted (403)" 403 '.error == "not_measured"'
cp -p "$T/log.orig" "$LOG.restore" && mv "$LOG.restore" "$LOG"
if wait_status '.event_log == "ok"' 4; then
	pass "the right log put back: ok again without a restart"
else
	fail "the right log put back ($BODY)"
fi
measure_ok "measuring works again" "$T/a/manifest.json" "$T/c.json"

# --- the PCR extended behind attestd's back -------------------------------------
tpm2_pcrextend "15:sha256=$(printf '5%.0s' $(seq 64))" >>"$T/check.log" 2>&1
if wait_status '.event_log == "inconsistent"' 4; then
	pass "PCR 15 extended outside attestd: inconsistent"
else
	fail "PCR 15 extended outside attestd ($BODY)"
fi
measure_refused "and measuring is refused" "$T/a/manifest.json" 'event_log_inconsistent'

# --- a launch written but not extended (attestd stopped in between) ------------
# A fresh TPM boot starts PCR 15 at zero; the log of the earlier boot put in
# the new boot's place is then a log whose records were never extended:
# attestd extends them all at start.
attestd_stop
cp "$T/log.orig" "$T/log.first"
tpm_stop >>"$T/check.log" 2>&1
tpm_start || fail "swtpm restarts"
RC=$(tpm2_readclock | awk '/reset_count/ {print $2}')
cp "$T/log.first" "$STATE/events/launch-$RC.jsonl"
attestd_start --config "$T/attestd.json" || fail "attestd starts on the new boot"
req GET /v1/status
expect "records written but not extended are extended at start" 200 '.event_log == "ok"'
if [ "$(pcr15)" = "$(replay "$STATE/events/launch-$RC.jsonl")" ] &&
    grep -q 'which attestd had written but not extended' "$T/attestd.log"; then
	pass "PCR 15 equals the replay again, and attestd said so"
else
	fail "PCR 15 after finishing the extends"
fi
req POST /v1/mint '{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.write","args":1}'
expect "and its VMs are known" 200

# --- configuration ------------------------------------------------------------
attestd_stop
echo '{"launch_pcr":7}' >"$T/pcr7.json"
if timeout 10 "$BIN/attestd" --tcti "$TCTI" --state-dir "$STATE" --socket "$T/x.sock" \
    --config "$T/pcr7.json" >"$T/pcr7.log" 2>&1; then
	fail "launch_pcr 7 (a policy PCR) is refused (it started)"
elif grep -q "launch_pcr 7 is one of the root key's policy PCRs" "$T/pcr7.log"; then
	pass "launch_pcr in the root key's policy: attestd refuses to start"
else
	fail "launch_pcr 7 ($(tail -n 1 "$T/pcr7.log"))"
fi
echo '{"launch_pcr":24}' >"$T/pcr24.json"
if "$BIN/attestd" --config "$T/pcr24.json" 2>&1 | grep -q "launch_pcr"; then
	pass "launch_pcr 24 is refused by name"
else
	fail "launch_pcr 24 is refused by name"
fi

check "no leaked TPM handles" no_leaked_handles
finish
