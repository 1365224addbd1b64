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
	[ -f "$T/outer/inner/swtpm.pid" ] && "$SWTPM_SCRIPTS/swtpm-stop" "$T/outer/inner" >/dev/null 2>&1
	[ -f "$T/outer/swtpm.pid" ] && "$SWTPM_SCRIPTS/swtpm-stop" "$T/outer" >/dev/null 2>&1
	cleanup
}
trap cleanup_swtpm EXIT

# A pid must be a positive number: kill -0 0 signals our own process group
# and would always succeed.
alive() {
	case "$1" in
	''|0|*[!0-9]*) return 1 ;;
	*) kill -0 "$1" 2>/dev/null ;;
	esac
}
# refused NAME PATTERN CMD...: PASS if CMD exits 1 and says PATTERN on
# stderr (any failure, say a syntax error, is not the refusal we test).
refused() {
	local n="$1" pat="$2" code=0
	shift 2
	"$@" >/dev/null 2>"$T/refused.err" || code=$?
	cat "$T/refused.err" >>"$T/check.log"
	if [ "$code" -eq 1 ] && grep -q -- "$pat" "$T/refused.err"; then pass "$n"; else fail "$n"; fi
}
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

refused "second start of a running dir is refused" "already running" "$SWTPM_SCRIPTS/swtpm-start" "$A"
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
refused "stop refuses a pid that is not swtpm" "is not an swtpm for" "$SWTPM_SCRIPTS/swtpm-stop" "$T/fake"
check "the foreign process was not killed" alive "$SLEEP_PID"
kill "$SLEEP_PID" 2>/dev/null; wait "$SLEEP_PID" 2>/dev/null; SLEEP_PID=""
echo "$PB" >"$T/other/swtpm.pid"
refused "stop refuses an swtpm started for another dir" "is not an swtpm for" "$SWTPM_SCRIPTS/swtpm-stop" "$T/other"
check "instance b was not killed" alive "$PB"

check "stop a" "$SWTPM_SCRIPTS/swtpm-stop" "$A"
check "a's process is gone and its pid file removed" eval '! alive "$PA" && [ ! -e "$A/swtpm.pid" ]'
check "b still runs and answers after a stopped" eval 'alive "$PB" && answers "$TB"'
refused "stopping a again fails (no pid file)" "no pid file" "$SWTPM_SCRIPTS/swtpm-stop" "$A"
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

code=0; "$SWTPM_SCRIPTS/swtpm-start" >/dev/null 2>&1 || code=$?
check "start without an argument is a usage error (exit 2)" [ "$code" -eq 2 ]
refused "a dir with a comma is refused" "commas" "$SWTPM_SCRIPTS/swtpm-start" "$T/x,y"

# An swtpm started for a folder inside DIR is not DIR's: its command line
# names files under DIR too, but stop must not take it for DIR's.
if "$SWTPM_SCRIPTS/swtpm-start" "$T/outer/inner" >>"$T/check.log" 2>&1; then
	PN=$(cat "$T/outer/inner/swtpm.pid" 2>/dev/null || echo 0)
	echo "$PN" >"$T/outer/swtpm.pid"
	refused "stop refuses the swtpm of a folder inside DIR" "is not an swtpm for" \
		"$SWTPM_SCRIPTS/swtpm-stop" "$T/outer"
	check "the inner instance was not killed" alive "$PN"
	# and start does not take it for a running instance of DIR.
	if "$SWTPM_SCRIPTS/swtpm-start" "$T/outer" >>"$T/check.log" 2>&1; then
		pass "start DIR while the swtpm of a folder inside it runs"
		check "stop DIR" "$SWTPM_SCRIPTS/swtpm-stop" "$T/outer"
	else
		fail "start DIR while the swtpm of a folder inside it runs"
	fi
	check "the inner instance still runs" alive "$PN"
	check "stop the inner instance" "$SWTPM_SCRIPTS/swtpm-stop" "$T/outer/inner"
	check "the inner instance is gone" eval '! alive "$PN"'
else
	fail "start an instance in a folder inside another"
fi

finish
