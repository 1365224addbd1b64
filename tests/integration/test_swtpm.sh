#!/usr/bin/env bash
# swtpm-scripts: two instances at once, each stopped exactly, state kept
# across a restart, refusals (already running, foreign pid).
. "$(dirname "$0")/common.sh"

A="$T/a"
B="$T/b"
SLEEP_PID=""

cleanup_swtpm() {
	[ -n "$SLEEP_PID" ] && kill "$SLEEP_PID" 2>/dev/null
	[ -f "$A/swtpm.pid" ] && "$SWTPM_SCRIPTS/swtpm-stop" "$A" >/dev/null 2>&1
	[ -f "$B/swtpm.pid" ] && "$SWTPM_SCRIPTS/swtpm-stop" "$B" >/dev/null 2>&1
	cleanup
}
trap cleanup_swtpm EXIT

alive() { kill -0 "$1" 2>/dev/null; }
answers() { TPM2TOOLS_TCTI="$1" tpm2_getcap properties-fixed >/dev/null 2>&1; }
leak_free() { local TPM2TOOLS_TCTI="$1"; export TPM2TOOLS_TCTI; no_leaked_handles; }

if TA=$("$SWTPM_SCRIPTS/swtpm-start" "$A" 2>>"$T/check.log"); then pass "start instance a"; else fail "start instance a"; fi
if TB=$("$SWTPM_SCRIPTS/swtpm-start" "$B" 2>>"$T/check.log"); then pass "start instance b"; else fail "start instance b"; fi
TA=${TA:-} TB=${TB:-}
check "tcti string a is swtpm:path=<abs dir>/tpm.sock" [ "$TA" = "swtpm:path=$A/tpm.sock" ]
check "tcti string b is swtpm:path=<abs dir>/tpm.sock" [ "$TB" = "swtpm:path=$B/tpm.sock" ]
check "instance a answers" answers "$TA"
check "instance b answers" answers "$TB"
PA=$(cat "$A/swtpm.pid" 2>/dev/null || echo 0)
PB=$(cat "$B/swtpm.pid" 2>/dev/null || echo 0)
check "two distinct live pids" eval '[ "$PA" != "$PB" ] && alive "$PA" && alive "$PB"'
check "dir, state, sockets, pid file and log are private" eval '
	[ "$(stat -c %a "$A")" = 700 ] && [ "$(stat -c %a "$A/state")" = 700 ] &&
	[ -S "$A/tpm.sock" ] && [ -S "$A/tpm.sock.ctrl" ] && [ -f "$A/swtpm.pid" ] && [ -f "$A/swtpm.log" ]'

refute "second start of a running dir is refused" "$SWTPM_SCRIPTS/swtpm-start" "$A"
check "instance a still runs after the refused start" eval 'alive "$PA" && answers "$TA"'

# Something persistent in a, to see it survive a restart.
if TPM2TOOLS_TCTI="$TA" tpm2_createprimary -C o -G ecc -c "$T/p.ctx" >>"$T/check.log" 2>&1 &&
   TPM2TOOLS_TCTI="$TA" tpm2_evictcontrol -C o -c "$T/p.ctx" 0x81000002 >>"$T/check.log" 2>&1 &&
   TPM2TOOLS_TCTI="$TA" tpm2_flushcontext -t >>"$T/check.log" 2>&1; then
	pass "persist an object in a"
else
	fail "persist an object in a"
fi
check "no handle leaked in a" leak_free "$TA"

# A pid file that names another process, or another dir's swtpm, is refused.
mkdir -p "$T/fake" "$T/other"
sleep 60 &
SLEEP_PID=$!
echo "$SLEEP_PID" >"$T/fake/swtpm.pid"
refute "stop refuses a pid that is not swtpm" "$SWTPM_SCRIPTS/swtpm-stop" "$T/fake"
check "the foreign process was not killed" alive "$SLEEP_PID"
kill "$SLEEP_PID" 2>/dev/null; wait "$SLEEP_PID" 2>/dev/null; SLEEP_PID=""
echo "$PB" >"$T/other/swtpm.pid"
refute "stop refuses an swtpm started for another dir" "$SWTPM_SCRIPTS/swtpm-stop" "$T/other"
check "instance b was not killed" alive "$PB"

check "stop a" "$SWTPM_SCRIPTS/swtpm-stop" "$A"
check "a's process is gone and its pid file removed" eval '! alive "$PA" && [ ! -e "$A/swtpm.pid" ]'
check "b still runs and answers after a stopped" eval 'alive "$PB" && answers "$TB"'
refute "stopping a again fails (no pid file)" "$SWTPM_SCRIPTS/swtpm-stop" "$A"
check "no handle leaked in b" leak_free "$TB"

# Relative DIR: same absolute TCTI string, same state.
if TA2=$(cd "$T" && "$SWTPM_SCRIPTS/swtpm-start" a 2>>"$T/check.log"); then pass "restart a (relative path)"; else fail "restart a (relative path)"; fi
check "restart prints the absolute tcti string" [ "${TA2:-}" = "swtpm:path=$A/tpm.sock" ]
check "restarted a kept its persistent object" env TPM2TOOLS_TCTI="$TA" tpm2_readpublic -c 0x81000002

check "stop a again" "$SWTPM_SCRIPTS/swtpm-stop" "$A"
check "stop b" "$SWTPM_SCRIPTS/swtpm-stop" "$B"
check "b's process is gone" eval '! alive "$PB"'
check "a stopped instance does not answer" eval '! answers "$TB"'

# A stale pid file (the process is gone) does not block a start.
echo 999999 >"$A/swtpm.pid"
if "$SWTPM_SCRIPTS/swtpm-start" "$A" >>"$T/check.log" 2>&1; then pass "start over a stale pid file"; else fail "start over a stale pid file"; fi
check "stop after the stale start" "$SWTPM_SCRIPTS/swtpm-stop" "$A"

refute "start without an argument is refused" "$SWTPM_SCRIPTS/swtpm-start"
refute "a dir with a comma is refused" "$SWTPM_SCRIPTS/swtpm-start" "$T/x,y"

finish
