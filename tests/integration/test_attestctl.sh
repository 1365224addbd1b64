#!/usr/bin/env bash
# attestctl against a real attestd on a private swtpm: mint, verify,
# attenuate, tampering, binding, single use, strict mode (strict tokens
# verify through attestd, epoch tokens are refused), usage errors.
. "$(dirname "$0")/common.sh"

CTL="$BIN/attestctl"
LAUNCH=$(printf 'a%.0s' $(seq 64))

# json FILE EXPR: print a field of a JSON document (python3 is a test
# dependency already, see scripts/install-deps).
json() {
	python3 -c 'import json,sys
d=json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    d=d[int(k)] if isinstance(d,list) else d[k]
print(json.dumps(d) if isinstance(d,(dict,list,bool)) else d)' "$1" "$2"
}

# tamper TOKEN INDEX: flip one character in the middle of segment INDEX.
tamper() {
	local -a seg
	local s mid c
	IFS=. read -ra seg <<<"$1"
	s=${seg[$2]}
	mid=$(( ${#s} / 2 ))
	c=${s:$mid:1}
	if [ "$c" = "A" ]; then c=B; else c=A; fi
	seg[$2]="${s:0:$mid}$c${s:$((mid + 1))}"
	(IFS=.; echo "${seg[*]}")
}

# verify_reason NAME WANT TOKEN [verify options]: the token must be refused
# with reason WANT (exit 1); WANT "*" accepts any reason.
verify_reason() {
	local name="$1" want="$2" tok="$3" rc got
	shift 3
	"$CTL" --socket "$SOCK" verify "$@" "$tok" >"$T/out.json" 2>"$T/err.txt"
	rc=$?
	got=$(json "$T/out.json" reason 2>/dev/null || echo "?")
	if [ "$rc" -eq 1 ] && [ "$(json "$T/out.json" valid 2>/dev/null)" = "false" ] &&
	    { [ "$want" = "*" ] || [ "$got" = "$want" ]; } && [ -n "$got" ]; then
		pass "$name ($got)"
	else
		fail "$name (exit $rc, reason '$got', wanted '$want')"
	fi
}

# verify_ok NAME TOKEN [options]: exit 0 and valid:true; output in $T/ok.json.
verify_ok() {
	local name="$1" tok="$2" rc
	shift 2
	"$CTL" --socket "$SOCK" verify "$@" "$tok" >"$T/ok.json" 2>"$T/err.txt"
	rc=$?
	if [ "$rc" -eq 0 ] && [ "$(json "$T/ok.json" valid)" = "true" ]; then
		pass "$name"
	else
		fail "$name (exit $rc: $(cat "$T/ok.json" "$T/err.txt" | head -c 300))"
	fi
}

# usage NAME CMD...: exit status 2
usage_exit() {
	local name="$1" rc
	shift
	"$@" >/dev/null 2>"$T/err.txt"
	rc=$?
	if [ "$rc" -eq 2 ] && [ -s "$T/err.txt" ]; then pass "$name"; else fail "$name (exit $rc)"; fi
}

for tool in python3 swtpm tpm2_getcap; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		skip "attestctl integration ($tool not installed)"
		finish
	fi
done
if [ ! -x "$BIN/attestd" ] || [ ! -x "$BIN/attest-keys" ] || [ ! -x "$CTL" ]; then
	skip "attestctl integration (build attestd, attest-keys and attestctl first)"
	finish
fi

tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
attestd_start || { fail "attestd starts"; finish; }
pass "attestd up on a private swtpm"
# Minting needs a VM attestd measured (stand-in artifacts; nothing boots).
if measure_vm; then pass "measure a VM"; else fail "measure a VM"; finish; fi
LAUNCH=$VM_LD

printf '{"path":"/notes.txt","data":"hi"}' >"$T/args.json"
printf '{"path":"/etc/passwd","data":"hi"}' >"$T/other.json"
BIND=(--aud proxy --vm "$VM" --launch-digest "$LAUNCH" --op fs.write --args-file "$T/args.json")

# --- status -----------------------------------------------------------------
if "$CTL" --socket "$SOCK" status >"$T/status.json" && [ "$(json "$T/status.json" tpm)" = ok ] &&
    [ "$(json "$T/status.json" mode)" = epoch ]; then
	pass "status prints attestd's JSON"
else
	fail "status"
fi
if WARRANT_ATTESTD_SOCKET="$SOCK" "$CTL" status >/dev/null 2>&1; then
	pass "socket from \$WARRANT_ATTESTD_SOCKET"
else
	fail "socket from \$WARRANT_ATTESTD_SOCKET"
fi

# --- mint and verify --------------------------------------------------------
if "$CTL" --socket "$SOCK" mint "${BIND[@]}" --ttl 600 --uses 3 --request req-1 >"$T/mint.json"; then
	pass "mint"
else
	fail "mint"; finish
fi
TOK=$(json "$T/mint.json" token)
verify_ok "verify with the full binding" "$TOK" "${BIND[@]}"
if [ "$(json "$T/ok.json" claims.vm)" = "$VM" ] && [ "$(json "$T/ok.json" grant.uses)" = 3 ] &&
    [ "$(json "$T/ok.json" grant.exp)" = "$(json "$T/mint.json" exp)" ] &&
    [ "$(json "$T/ok.json" caveats)" = "[]" ] && [ "$(json "$T/ok.json" claims.request)" = req-1 ]; then
	pass "verify prints claims, caveats and grant"
else
	fail "verify output: $(cat "$T/ok.json")"
fi
verify_ok "verify with only --aud" "$TOK" --aud proxy
if echo "$TOK" | "$CTL" --socket "$SOCK" verify --aud proxy - >/dev/null 2>&1; then
	pass "verify reads TOKEN from stdin"
else
	fail "verify reads TOKEN from stdin"
fi
if printf '%s\r\n' "$TOK" | "$CTL" --socket "$SOCK" verify --aud proxy - >/dev/null 2>&1; then
	pass "verify reads a CRLF-terminated TOKEN from stdin"
else
	fail "verify reads a CRLF-terminated TOKEN from stdin"
fi
# A NUL would cut the token short; whatever follows it must not be ignored.
printf '%s\0junk' "$TOK" | "$CTL" --socket "$SOCK" verify --aud proxy - >/dev/null 2>"$T/err.txt"
rc=$?
if [ "$rc" -eq 1 ]; then pass "verify refuses a NUL in TOKEN on stdin"; else fail "NUL on stdin (exit $rc)"; fi
# A FIFO as --args-file is refused at once, not waited on for a writer.
mkfifo "$T/fifo.json"
timeout 5 "$CTL" --socket "$SOCK" verify --aud proxy --args-file "$T/fifo.json" "$TOK" \
    >/dev/null 2>"$T/err.txt"
rc=$?
if [ "$rc" -eq 1 ] && grep -q 'not a regular file' "$T/err.txt"; then
	pass "--args-file refuses a FIFO without blocking"
else
	fail "--args-file FIFO (exit $rc)"
fi

# --- attenuation ------------------------------------------------------------
now=$(date +%s)
EXP=$((now + 120))
T1=$("$CTL" token attenuate "$TOK" "{\"type\":\"exp\",\"exp\":$EXP}") &&
T2=$("$CTL" token attenuate "$T1" '{"type":"ops","ops":["fs.write","fs.read"]}') &&
T3=$("$CTL" token attenuate "$T2" '{"type":"arg_prefix","arg":"path","prefix":"/notes"}') &&
T4=$("$CTL" token attenuate "$T3" '{"type":"uses","uses":2}')
if [ $? -eq 0 ] && [ -n "$T4" ]; then pass "attenuate exp, ops, arg_prefix, uses"; else fail "attenuate"; fi
verify_ok "attenuated token verifies" "$T4" "${BIND[@]}"
if [ "$(json "$T/ok.json" grant.exp)" = "$EXP" ] && [ "$(json "$T/ok.json" grant.uses)" = 2 ] &&
    [ "$(json "$T/ok.json" caveats.3.type)" = uses ]; then
	pass "verify shows the narrower grant (exp $EXP, uses 2, 4 caveats)"
else
	fail "narrower grant: $(cat "$T/ok.json")"
fi
"$CTL" token inspect "$T4" >"$T/inspect.json"
if [ "$(json "$T/inspect.json" caveats.1.ops)" = '["fs.write", "fs.read"]' ] &&
    [ "$(json "$T/inspect.json" kid.aud)" = proxy ]; then
	pass "token inspect decodes kid, claims and caveats"
else
	fail "token inspect: $(cat "$T/inspect.json")"
fi
"$CTL" --socket "$SOCK" mint --aud proxy --vm "$VM" --launch-digest "$LAUNCH" --op fs.write \
    --args-file "$T/other.json" >"$T/mint2.json"
TP=$("$CTL" token attenuate "$(json "$T/mint2.json" token)" \
    '{"type":"arg_prefix","arg":"path","prefix":"/notes"}')
verify_reason "arg_prefix caveat refuses an argument outside the prefix" caveat_argument "$TP" \
    --aud proxy --args-file "$T/other.json"
verify_reason "arg_prefix caveat needs the arguments" missing_arguments "$T4" --aud proxy
T5=$("$CTL" token attenuate "$TOK" '{"type":"ops","ops":["fs.read"]}')
verify_reason "ops caveat refuses the operation" caveat_operation "$T5" --aud proxy
T6=$("$CTL" token attenuate "$TOK" "{\"type\":\"exp\",\"exp\":$((now - 1))}")
verify_reason "exp caveat in the past" expired "$T6" --aud proxy

# --- tampering --------------------------------------------------------------
verify_reason "flipped version" "*" "$(tamper "$T4" 0)" --aud proxy
verify_reason "flipped kid" "*" "$(tamper "$T4" 1)" --aud proxy
verify_reason "flipped payload" "*" "$(tamper "$T4" 2)" --aud proxy
verify_reason "flipped caveat" "*" "$(tamper "$T4" 3)" --aud proxy
verify_reason "flipped tag" bad_mac "$(tamper "$T4" 7)" --aud proxy
IFS=. read -ra S <<<"$T4"
verify_reason "dropped caveat" bad_mac \
    "$(IFS=.; echo "${S[0]}.${S[1]}.${S[2]}.${S[3]}.${S[4]}.${S[6]}.${S[7]}")" --aud proxy
verify_reason "dropped last caveat" bad_mac \
    "$(IFS=.; echo "${S[0]}.${S[1]}.${S[2]}.${S[3]}.${S[4]}.${S[5]}.${S[7]}")" --aud proxy
verify_reason "swapped caveats" bad_mac \
    "$(IFS=.; echo "${S[0]}.${S[1]}.${S[2]}.${S[4]}.${S[3]}.${S[5]}.${S[6]}.${S[7]}")" --aud proxy
verify_reason "caveats without a tag" "*" \
    "$(IFS=.; echo "${S[0]}.${S[1]}.${S[2]}.${S[3]}")" --aud proxy
verify_reason "garbage" malformed "not-a-token" --aud proxy
verify_reason "other version" unsupported_version "w9.${S[1]}.${S[2]}.${S[7]}" --aud proxy

# --- binding ----------------------------------------------------------------
verify_reason "wrong --vm" wrong_vm "$TOK" --aud proxy --vm vm-2
verify_reason "wrong --op" wrong_operation "$TOK" --aud proxy --op fs.delete
verify_reason "wrong --args-file" wrong_arguments "$TOK" --aud proxy --args-file "$T/other.json"
verify_reason "wrong --launch-digest" wrong_launch "$TOK" --aud proxy \
    --launch-digest "$(printf 'b%.0s' $(seq 64))"
verify_reason "wrong --aud" wrong_audience "$TOK" --aud vmhost

# --- single use -------------------------------------------------------------
"$CTL" --socket "$SOCK" mint "${BIND[@]}" >"$T/once.json"
ONCE=$(json "$T/once.json" token)
DB="$T/used.db"
verify_ok "consume-db first use" "$ONCE" "${BIND[@]}" --consume-db "$DB"
verify_reason "consume-db second use" already_used "$ONCE" "${BIND[@]}" --consume-db "$DB"
verify_reason "a refused token uses nothing up" wrong_vm "$T4" --aud proxy --vm vm-9 --consume-db "$DB"
verify_ok "uses=2 caveat: first" "$T4" "${BIND[@]}" --consume-db "$DB"
verify_ok "uses=2 caveat: second" "$T4" "${BIND[@]}" --consume-db "$DB"
verify_reason "uses=2 caveat: third" already_used "$T4" "${BIND[@]}" --consume-db "$DB"
# The original (uses 3) shares the id's count with its narrower copy.
verify_ok "original token: third use" "$TOK" "${BIND[@]}" --consume-db "$DB"
verify_reason "original token: fourth use" already_used "$TOK" "${BIND[@]}" --consume-db "$DB"
if [ "$(stat -c %a "$DB")" = 600 ]; then pass "consume-db is created 0600"; else fail "consume-db mode"; fi
ln -s "$DB" "$T/link.db"
if "$CTL" --socket "$SOCK" verify "${BIND[@]}" --consume-db "$T/link.db" "$TOK" >/dev/null 2>&1; then
	fail "consume-db through a symlink is refused"
else
	pass "consume-db through a symlink is refused"
fi

# --- input errors -----------------------------------------------------------
usage_exit "no command" "$CTL"
usage_exit "unknown command" "$CTL" frobnicate
usage_exit "verify without --aud" "$CTL" --socket "$SOCK" verify "$TOK"
usage_exit "verify without TOKEN" "$CTL" --socket "$SOCK" verify --aud proxy
usage_exit "unknown option" "$CTL" --socket "$SOCK" verify --aud proxy --vmm x "$TOK"
usage_exit "abbreviated option" "$CTL" --socket "$SOCK" verify --au proxy "$TOK"
usage_exit "option given twice" "$CTL" --socket "$SOCK" verify --aud proxy --aud proxy "$TOK"
usage_exit "bad --launch-digest" "$CTL" --socket "$SOCK" verify --aud proxy --launch-digest XYZ "$TOK"
usage_exit "bad --vm" "$CTL" --socket "$SOCK" verify --aud proxy --vm 'a b' "$TOK"
usage_exit "mint without --op" "$CTL" --socket "$SOCK" mint --aud proxy --vm "$VM" \
    --launch-digest "$LAUNCH" --args-file "$T/args.json"
usage_exit "mint --ttl not a number" "$CTL" --socket "$SOCK" mint "${BIND[@]}" --ttl 10s
usage_exit "mint --uses 0" "$CTL" --socket "$SOCK" mint "${BIND[@]}" --uses 0
usage_exit "mint with --args-file and --args-sha256" "$CTL" --socket "$SOCK" mint "${BIND[@]}" \
    --args-sha256 "$LAUNCH"
usage_exit "token without subcommand" "$CTL" token
usage_exit "approvers without subcommand" "$CTL" --socket "$SOCK" approvers
usage_exit "approvers add without FILE" "$CTL" --socket "$SOCK" approvers add
usage_exit "approvers remove with a bad --credential" "$CTL" --socket "$SOCK" approvers remove \
    alice --credential 'not base64url!'
usage_exit "approvers remove with a bad name" "$CTL" --socket "$SOCK" approvers remove 'a b'
printf '{"approver":"alice"}' >"$T/not-array.json"
"$CTL" --socket "$SOCK" mint "${BIND[@]}" --approvals "$T/not-array.json" >/dev/null 2>"$T/err.txt"
if [ $? -eq 1 ] && grep -q 'JSON array' "$T/err.txt"; then
	pass "mint --approvals that is not an array: exit 1"
else
	fail "mint --approvals that is not an array"
fi
if "$CTL" --help | grep -q 'attenuate'; then pass "--help"; else fail "--help"; fi

"$CTL" --socket "$SOCK" mint "${BIND[@]}" --ttl 999999 >"$T/err.json" 2>"$T/err.txt"
rc=$?
if [ "$rc" -eq 1 ] && [ "$(json "$T/err.json" error)" = bad_request ] && grep -q 400 "$T/err.txt"; then
	pass "mint over max_ttl: error JSON on stdout, message on stderr, exit 1"
else
	fail "mint over max_ttl (exit $rc)"
fi
printf '{"a":1,"a":2}' >"$T/dup.json"
refute "mint refuses an args file with duplicate keys" \
    "$CTL" --socket "$SOCK" mint --aud proxy --vm "$VM" --launch-digest "$LAUNCH" --op fs.list --args-file "$T/dup.json"
head -c 70000 /dev/zero | tr '\0' ' ' >"$T/big.json"
refute "mint refuses an args file over 64 KiB" \
    "$CTL" --socket "$SOCK" mint --aud proxy --vm "$VM" --launch-digest "$LAUNCH" --op fs.list --args-file "$T/big.json"
refute "mint refuses a missing args file" \
    "$CTL" --socket "$SOCK" mint --aud proxy --vm "$VM" --launch-digest "$LAUNCH" --op fs.list --args-file "$T/nope.json"
refute "token inspect refuses garbage" "$CTL" token inspect "w1.x.y.z"
refute "token attenuate refuses an unknown caveat" "$CTL" token attenuate "$TOK" '{"type":"anything"}'
refute "token attenuate refuses a bad caveat" "$CTL" token attenuate "$TOK" '{"type":"uses","uses":0}'

# --- attestd unreachable ----------------------------------------------------
"$CTL" --socket "$T/none.sock" verify --aud proxy "$TOK" >"$T/out.json" 2>"$T/err.txt"
rc=$?
if [ "$rc" -eq 1 ] && [ "$(json "$T/out.json" reason)" = attestd_unavailable ] &&
    grep -q 'attestd' "$T/err.txt"; then
	pass "verify without attestd: attestd_unavailable"
else
	fail "verify without attestd (exit $rc)"
fi
refute "status without attestd fails" "$CTL" --socket "$T/none.sock" status

# --- strict mode ------------------------------------------------------------
attestd_stop
if attestd_start --strict; then
	"$CTL" --socket "$SOCK" mint "${BIND[@]}" >"$T/strict.json"
	ST=$(json "$T/strict.json" token 2>/dev/null)
	"$CTL" token inspect "$ST" >"$T/sinspect.json" 2>/dev/null
	if [ "$(json "$T/sinspect.json" kid.mode 2>/dev/null)" = strict ]; then
		pass "strict mode mints strict tokens"
	else
		fail "strict mode mint"
	fi
	verify_ok "strict token verifies (attestd checks the MAC)" "$ST" "${BIND[@]}"
	STA=$("$CTL" token attenuate "$ST" '{"type":"uses","uses":1}')
	verify_ok "attenuated strict token verifies" "$STA" "${BIND[@]}"
	verify_reason "strict token with a flipped tag" bad_mac "$(tamper "$STA" 4)" --aud proxy
	verify_reason "strict token with a flipped payload" "*" "$(tamper "$ST" 2)" --aud proxy
	# A strict attestd holds no epoch key and serves no audience key, so
	# an epoch-mode token cannot be genuine, even one it minted before the
	# restart: refused, with its own reason.
	verify_reason "epoch token refused under a strict attestd" strict_mode "$TOK" "${BIND[@]}"
	verify_reason "attenuated epoch token refused under a strict attestd" strict_mode \
	    "$("$CTL" token attenuate "$TOK" '{"type":"uses","uses":1}')" --aud proxy
else
	fail "attestd --strict starts"
fi

attestd_stop
if no_leaked_handles; then pass "no TPM handle leaked"; else fail "TPM handles leaked"; fi
finish
