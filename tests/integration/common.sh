# Shared by the integration scripts: a private work folder, a private
# swtpm, result lines for tests/run, and cleanup of everything started.
# Source it; then call tpm_start, provision, attestd_start as needed.
set -u

: "${BIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build/bin" && pwd)}"
SWTPM_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../swtpm-scripts" && pwd)
T=$(mktemp -d "${TMPDIR:-/tmp}/warrant-it.XXXXXX")
chmod 0755 "$T"
TCTI=""
ATTESTD_PID=""
SOCK="$T/attestd.sock"
STATE="$T/keys"
failures=0

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }
skip() { echo "SKIP: $*"; }
# check NAME CMD...: PASS if CMD succeeds.
check() { local n="$1"; shift; if "$@" >>"$T/check.log" 2>&1; then pass "$n"; else fail "$n"; fi; }
# refute NAME CMD...: PASS if CMD fails.
refute() { local n="$1"; shift; if "$@" >>"$T/check.log" 2>&1; then fail "$n"; else pass "$n"; fi; }

cleanup() {
	if [ -n "$ATTESTD_PID" ]; then
		kill "$ATTESTD_PID" 2>/dev/null
		wait "$ATTESTD_PID" 2>/dev/null
	fi
	[ -f "$T/tpm/swtpm.pid" ] && "$SWTPM_SCRIPTS/swtpm-stop" "$T/tpm" >/dev/null 2>&1
	if [ "${KEEP_TEST_DIR:-}" = "" ]; then rm -rf "$T"; fi
}
trap cleanup EXIT

tpm_start() {
	mkdir -p "$T/tpm"
	TCTI=$("$SWTPM_SCRIPTS/swtpm-start" "$T/tpm") || return 1
	export TPM2TOOLS_TCTI="$TCTI"
}

tpm_stop() { "$SWTPM_SCRIPTS/swtpm-stop" "$T/tpm"; }

provision() {
	"$BIN/attest-keys" --tcti "$TCTI" --state-dir "$STATE" init "$@" >"$T/init.json"
}

# attestd_start [extra args]: starts attestd in the background and waits
# for its socket to answer.
attestd_start() {
	"$BIN/attestd" --tcti "$TCTI" --state-dir "$STATE" --socket "$SOCK" "$@" \
	    >>"$T/attestd.log" 2>&1 &
	ATTESTD_PID=$!
	local i
	for i in $(seq 1 100); do
		if "$BIN/attestctl" --socket "$SOCK" status >/dev/null 2>&1; then
			return 0
		fi
		kill -0 "$ATTESTD_PID" 2>/dev/null || { cat "$T/attestd.log" >&2; return 1; }
		sleep 0.1
	done
	return 1
}

# measure_vm [ENVELOPE_JSON]: have attestd measure a small VM through
# `attestctl measure` (stand-in kernel and initrd files; nothing boots).
# Minting needs a measured VM, its launch digest and an op its envelope
# allows. Sets VM and VM_LD; attestd's reply is in $T/measure.json.
measure_vm() {
	local env=${1:-'{"fs.write":"allow","fs.read":"allow","fs.list":"allow"}'}
	local d
	d=$(mktemp -d "$T/vm.XXXXXX") || return 1
	printf 'stand-in kernel %s\n' "$d" >"$d/kernel"
	printf 'stand-in initrd\n' >"$d/initrd"
	printf '{"name":"test-vm","kernel":"kernel","initrd":"initrd","cmdline":"console=ttyS0",
 "vcpus":1,"memory_mib":128,"vmm":"qemu","envelope":%s}\n' "$env" >"$d/manifest.json"
	"$BIN/attestctl" --socket "$SOCK" measure "$d/manifest.json" >"$T/measure.json" \
	    2>>"$T/check.log" || return 1
	VM=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["vm"])' \
	    "$T/measure.json") || return 1
	VM_LD=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["launch_digest"])' \
	    "$T/measure.json") || return 1
}

attestd_stop() {
	[ -n "$ATTESTD_PID" ] || return 0
	kill "$ATTESTD_PID" 2>/dev/null
	wait "$ATTESTD_PID" 2>/dev/null
	ATTESTD_PID=""
}

# No transient object or session may be left loaded in the TPM. A failing
# tpm2_getcap (TPM unreachable) is a failure, not "nothing listed".
# handles-loaded-session lists HMAC (0x02...) and policy (0x03...) sessions.
no_leaked_handles() {
	local out
	out=$( { tpm2_getcap handles-transient && tpm2_getcap handles-loaded-session; } 2>/dev/null) ||
		return 1
	! printf '%s\n' "$out" | grep -q '^- '
}

# Exit status for tests/run: the script itself worked; results are lines.
finish() { exit 0; }

# --- approvals (docs/approvals.md) ------------------------------------------
# A software passkey (tests/tools/soft-passkey) stands in for the people
# who approve "ask" operations; attestd checks its assertions as it would a
# browser's.
TOOLBIN=$(cd "${TOOLBIN:-$(dirname "${BASH_SOURCE[0]}")/../../build/tools}" 2>/dev/null && pwd)
SOFT_PASSKEY="${TOOLBIN:-/nonexistent}/soft-passkey"
APPROVALS_RP_ID=localhost
APPROVALS_ORIGIN="https://localhost:8443"
# A configuration member for write_config and the like.
APPROVALS_CONFIG='"approvals":{"rp_id":"localhost","origins":["https://localhost:8443"]}'

# passkey_new NAME KEYFILE [ALG]: a passkey for NAME; its enrolment record
# goes to KEYFILE.enrol.
passkey_new() {
	"$SOFT_PASSKEY" new --approver "$1" --rp-id "$APPROVALS_RP_ID" ${3:+--alg "$3"} \
	    --out "$2" >"$2.enrol"
}

# approval_digest AUD VM LAUNCH_DIGEST OP ARGS_JSON TTL REQUEST: the hex
# digest of the canonical approval request, computed independently of
# lib/approval.c.
approval_digest() {
	python3 - "$@" <<'PYEOF'
import hashlib, json, sys
aud, vm, ld, op, args, ttl, rid = sys.argv[1:8]
def canon(o):
    return json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
a = hashlib.sha256(canon(json.loads(args))).hexdigest()
print(hashlib.sha256(canon({"args_sha256": a, "aud": aud, "launch_digest": ld, "op": op,
                            "request": rid, "ttl": int(ttl), "v": 1, "vm": vm})).hexdigest())
PYEOF
}

# approval_sign KEYFILE DIGEST [soft-passkey assert options]: one approval
# object (its counter moves forward unless --counter says otherwise).
approval_sign() {
	local k="$1" d="$2"
	shift 2
	"$SOFT_PASSKEY" assert "$k" --challenge "$d" --origin "$APPROVALS_ORIGIN" "$@"
}
