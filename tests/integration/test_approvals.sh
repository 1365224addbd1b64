#!/usr/bin/env bash
# attestd mints "ask" operations only on verified passkey approvals
# (docs/approvals.md), through the real parts: a private swtpm, attest-keys,
# attestd with an "approvals" section, approvers enrolled with attestctl,
# and assertions made by a software passkey (tests/tools/soft-passkey).
# Every refusal is checked by its error code; enrolled approvers and their
# counters survive a restart; no TPM handle is leaked.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/attestd_lib.sh"

for tool in swtpm curl jq python3 tpm2_getcap; do
	command -v "$tool" >/dev/null 2>&1 || { skip "approvals: $tool not installed"; finish; }
done
if [ ! -x "$SOFT_PASSKEY" ]; then
	skip "approvals: $SOFT_PASSKEY is not built (make build/tools/soft-passkey)"
	finish
fi
CTL="$BIN/attestctl"
tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
write_config "$T/attestd.json" '"approvals":{"rp_id":"localhost","origins":["https://localhost:8443"],"quorum":{"default":1,"ops":{"exec":2}}}'
attestd_start --config "$T/attestd.json" || { fail "attestd starts"; finish; }
measure_default '{"fs.write":"ask","exec":{"level":"ask","argv":[["echo"]]},"fs.read":"allow"}' || { fail "measure a VM"; finish; }

ARGS='{"path":"/gated/x.txt","data":"hi"}'
printf '%s' "$ARGS" >"$T/args.json"

# sign KEYFILE OP REQUEST [soft-passkey options]: one approval of this
# request (aud proxy, this VM, ARGS, ttl 300).
sign() {
	local k="$1" op="$2" rid="$3" d
	shift 3
	d=$(approval_digest proxy "$VM" "$LD" "$op" "$ARGS" 300 "$rid") || return 1
	approval_sign "$k" "$d" "$@"
}

# mint OP REQUEST APPROVALS_JSON [EXTRA_JSON]: POST /v1/mint; sets CODE, BODY.
mint() {
	local body extra="${4:-}"
	[ -n "$extra" ] || extra='{}'
	body=$(jq -cn --arg vm "$VM" --arg ld "$LD" --arg op "$1" --arg rid "$2" \
	    --argjson args "$ARGS" --argjson ap "$3" --argjson extra "$extra" \
	    '{aud:"proxy",vm:$vm,launch_digest:$ld,op:$op,args:$args,ttl:300,request:$rid}
	     + (if $ap == null then {} else {approvals:$ap} end) + $extra')
	req POST /v1/mint "$body"
}

# --- enrolment -----------------------------------------------------------------
passkey_new alice "$T/alice.key" ES256 &&
passkey_new alice "$T/alice2.key" EdDSA &&
passkey_new bob "$T/bob.key" EdDSA &&
passkey_new carol "$T/carol.key" ES256 &&
passkey_new dave "$T/dave-other-rp.key" ES256 ||
    { fail "soft-passkey makes credentials"; finish; }
ok=1
for k in alice alice2 bob carol; do
	"$CTL" --socket "$SOCK" approvers add --yes "$T/$k.key.enrol" >>"$T/check.log" 2>&1 || ok=0
done
if [ "$ok" = 1 ]; then pass "attestctl approvers add (alice twice, bob, carol)"; else fail "attestctl approvers add"; fi
if "$CTL" --socket "$SOCK" approvers add --yes - <"$T/alice.key.enrol" >"$T/dup.out" 2>>"$T/check.log"; then
	fail "enrolling a credential twice is refused"
elif jq -e '.error == "credential_exists"' >/dev/null <"$T/dup.out"; then
	pass "enrolling a credential twice is refused (409 credential_exists)"
else
	fail "enrolling a credential twice: $(cat "$T/dup.out")"
fi
req POST /v1/approvers "$(jq -c '.approver = "mallory"' "$T/alice.key.enrol")"
expect "the same credential id for another person: 409" 409 '.error == "credential_exists"'
req POST /v1/approvers "$(jq -c '.rp_id = "evil.example"' "$T/dave-other-rp.key.enrol")"
expect "an enrolment record for another rp id: 400" 400 '.error == "bad_request" and (.detail | contains("rp_id"))'
req POST /v1/approvers "$(jq -c '.extra = 1' "$T/dave-other-rp.key.enrol")"
expect "an enrolment record with an unknown field: 400" 400 '(.detail | contains("extra"))'
req POST /v1/approvers "$(jq -c '.approver = "Alice"' "$T/dave-other-rp.key.enrol")"
expect "a new person whose name differs from alice's only in case: 409" 409 '.error == "name_conflict"'
req --as 65534 POST /v1/approvers "$(cat "$T/dave-other-rp.key.enrol")"
expect "a non-admin uid cannot add approvers: 403" 403 '.error == "forbidden"'
req --as 65534 GET /v1/approvers
expect "a non-admin uid cannot list approvers: 403" 403 '.error == "forbidden"'
req GET /v1/approvers
expect "GET /v1/approvers: people, credentials, quorum" 200 '.configured == true and
    .rp_id == "localhost" and .quorum == {"default":1,"ops":{"exec":2}} and
    ([.approvers[].name] | sort) == ["alice","bob","carol"] and
    ([.approvers[] | select(.name == "alice") | .credentials[].alg] | sort) == ["ES256","EdDSA"] and
    ([.approvers[].credentials[].sign_count] | add) == 0'
if "$CTL" --socket "$SOCK" approvers list >"$T/list.txt" 2>>"$T/check.log" &&
    grep -q '^alice .*ES256' "$T/list.txt" && grep -q 'quorum: default 1, exec 2' "$T/list.txt"; then
	pass "attestctl approvers list (table)"
else
	fail "attestctl approvers list: $(cat "$T/list.txt")"
fi

# The fingerprint root compares with the person's: SHA-256 of the raw key,
# computed here independently of attestd and attestctl.
want=$(jq -r .public_key "$T/alice.key.enrol" | tr '_-' '/+' | base64 -d 2>/dev/null |
    openssl dgst -sha256 -binary | openssl base64 -A | tr -d '=')
req GET /v1/approvers
expect "GET /v1/approvers: each credential's fingerprint" 200 \
    "[.approvers[].credentials[].fingerprint] | index(\"SHA256:$want\") != null"
if "$CTL" --socket "$SOCK" approvers add --yes "$T/alice.key.enrol" 2>"$T/summary.txt" >/dev/null;
    grep -q "SHA256:$want" "$T/summary.txt"; then
	pass "approvers add prints the fingerprint before it enrols"
else
	fail "approvers add summary: $(cat "$T/summary.txt")"
fi
"$CTL" --socket "$SOCK" approvers add "$T/bob.key.enrol" </dev/null >"$T/noyes.out" 2>&1
rc=$?
if [ "$rc" = 2 ] && grep -q -- "--yes" "$T/noyes.out"; then
	pass "approvers add without a terminal and without --yes refuses (exit 2)"
else
	fail "approvers add without --yes: exit $rc, $(cat "$T/noyes.out")"
fi

# --- ask operations ------------------------------------------------------------
mint fs.write r-1 null
expect "an ask op without approvals: 403 approvals_required" 403 '.error == "approvals_required"'
A=$(sign "$T/alice.key" fs.write r-1)
mint fs.write r-1 "[$A]" '{"uses":2}'
expect "an ask op with uses 2: 400" 400 '.error == "bad_request"'
req POST /v1/mint "$(jq -cn --arg vm "$VM" --arg ld "$LD" --argjson a "$A" \
    '{aud:"proxy",vm:$vm,launch_digest:$ld,op:"fs.write",args:{"path":"/gated/x.txt","data":"hi"},ttl:300,approvals:[$a]}')"
expect "an ask op without a request id: 403 approvals_required" 403 '.error == "approvals_required"'

printf '[%s]\n' "$A" >"$T/approvals.json"
if "$CTL" --socket "$SOCK" mint --aud proxy --vm "$VM" --launch-digest "$LD" --op fs.write \
    --args-file "$T/args.json" --ttl 300 --request r-1 --approvals "$T/approvals.json" \
    >"$T/mint.json" 2>>"$T/check.log"; then
	TOK=$(jq -r .token "$T/mint.json")
	if "$CTL" token inspect "$TOK" | jq -e '.claims.approvers == ["alice"] and .claims.request == "r-1" and
	    .claims.uses == 1' >/dev/null; then
		pass "alice's assertion mints; the token's approvers are [\"alice\"]"
	else
		fail "token approvers: $("$CTL" token inspect "$TOK")"
	fi
else
	fail "attestctl mint --approvals with alice's assertion"
fi
A=$(sign "$T/alice.key" fs.write r-1)
mint fs.write r-1 "[$A]"
expect "the same request id again: 409 already_minted" 409 '.error == "already_minted"'

A=$(sign "$T/alice.key" fs.write r-2)
mint fs.write r-3 "[$A]"
expect "an assertion for another request: 403 approval_refused" 403 '.error == "approval_refused" and
    (.detail | contains("approvals[0] (alice)")) and (.detail | contains("another request"))'

A=$(sign "$T/alice.key" exec r-4)
A2=$(sign "$T/alice2.key" exec r-4)
mint exec r-4 "[$A,$A2]"
expect "alice's two credentials on a quorum-2 op: 403 quorum_not_met" 403 '.error == "quorum_not_met" and
    .detail == "1 of 2 distinct approvers"'
A=$(sign "$T/alice.key" exec r-4)
B=$(sign "$T/bob.key" exec r-4)
mint exec r-4 "[$B,$A]"
if [ "$CODE" = 200 ] && "$CTL" token inspect "$(field .token)" |
    jq -e '.claims.approvers == ["alice","bob"]' >/dev/null; then
	pass "alice and bob on the quorum-2 op: minted with both"
else
	fail "alice and bob on the quorum-2 op (HTTP $CODE: $BODY)"
fi
A=$(sign "$T/alice.key" fs.write r-5)
B=$(sign "$T/bob.key" fs.write r-5 --no-uv)
mint fs.write r-5 "[$A,$B]"
expect "one good and one bad assertion: the mint is refused, naming the bad one" 403 \
    '.error == "approval_refused" and (.detail | contains("approvals[1] (bob)"))'

C=$(sign "$T/carol.key" fs.write r-6)
CID=$(jq -r .credential_id <<<"$C")
if "$CTL" --socket "$SOCK" approvers remove carol --credential "$CID" >>"$T/check.log" 2>&1; then
	mint fs.write r-6 "[$C]"
	expect "a removed credential is refused" 403 '.error == "approval_refused" and
	    (.detail | contains("not enrolled"))'
else
	fail "attestctl approvers remove carol --credential"
fi
req DELETE "/v1/approvers/carol/$CID"
expect "removing it again: 404" 404 '.error == "not_found"'
req DELETE /v1/approvers/nobody
expect "removing an unknown person: 404" 404 '.error == "not_found"'

A=$(sign "$T/alice.key" fs.write r-7 --counter 1)
mint fs.write r-7 "[$A]"
expect "a counter that went backwards is refused" 403 '.error == "approval_refused" and
    (.detail | contains("counter"))'
"$SOFT_PASSKEY" assert "$T/alice.key" --origin https://evil.example \
    --challenge "$(approval_digest proxy "$VM" "$LD" fs.write "$ARGS" 300 r-8)" >"$T/evil.json"
mint fs.write r-8 "[$(cat "$T/evil.json")]"
expect "a wrong origin is refused" 403 '.error == "approval_refused" and (.detail | contains("origin"))'
A=$(sign "$T/alice.key" fs.write r-8 --rp-id evil.example)
mint fs.write r-8 "[$A]"
expect "a wrong rp id is refused" 403 '.error == "approval_refused" and (.detail | contains("relying party"))'
A=$(sign "$T/alice.key" fs.write r-8 --no-uv)
mint fs.write r-8 "[$A]"
expect "the UV flag missing is refused" 403 '.error == "approval_refused" and (.detail | contains("UV"))'
A=$(sign "$T/alice.key" fs.write r-8)
A=$(jq -c '.approver = "bob"' <<<"$A")
mint fs.write r-8 "[$A]"
expect "alice's credential named as bob's is refused" 403 '.error == "approval_refused" and
    (.detail | contains("another person"))'
mint fs.write r-8 '[{"approver":"alice"}]'
expect "a malformed approval: 400 naming it" 400 '.error == "bad_request" and (.detail | contains("approvals[0]"))'

# --- allow operations ------------------------------------------------------------
req POST /v1/mint "$(jq -cn --arg vm "$VM" --arg ld "$LD" '{aud:"proxy",vm:$vm,launch_digest:$ld,op:"fs.read",args:1}')"
expect "an allow op needs no approvals" 200 '(.token | startswith("w1."))'
A=$(sign "$T/alice.key" fs.read r-9 --no-uv)
mint fs.read r-9 "[$A]"
expect "an allow op's approvals are checked, not ignored" 403 '.error == "approval_refused"'
A=$(sign "$T/alice.key" fs.read r-9)
mint fs.read r-9 "[$A]" '{"uses":3}'
expect "an allow op's approved token is for one use too: uses 3 is 400" 400 \
    '.error == "bad_request" and (.detail | contains("one use"))'
mint fs.read r-9 "[$A]"
if [ "$CODE" = 200 ] && "$CTL" token inspect "$(field .token)" | jq -e '.claims.approvers == ["alice"]' >/dev/null; then
	pass "an allow op with a valid approval names the approver"
else
	fail "an allow op with a valid approval (HTTP $CODE: $BODY)"
fi

# --- persistence -----------------------------------------------------------------
req GET /v1/approvers
BEFORE=$(jq -c '[.approvers[] | {name, c: [.credentials[] | {id, sign_count}]}]' <<<"$BODY")
if [ "$(stat -c %a "$STATE/approvers.json")" = 600 ] && [ -f "$STATE/approved-requests.db" ]; then
	pass "approvers.json is 0600; approved-requests.db exists"
else
	fail "state files: $(ls -l "$STATE")"
fi
attestd_stop
attestd_start --config "$T/attestd.json" || { fail "attestd restarts"; finish; }
req GET /v1/approvers
AFTER=$(jq -c '[.approvers[] | {name, c: [.credentials[] | {id, sign_count}]}]' <<<"$BODY")
if [ "$BEFORE" = "$AFTER" ] && jq -e '[.[].c[].sign_count] | max > 0' >/dev/null <<<"$AFTER"; then
	pass "approvers.json survives a restart (counters kept)"
else
	fail "approvers after a restart: $BEFORE vs $AFTER"
fi
A=$(sign "$T/alice.key" fs.write r-1)
mint fs.write r-1 "[$A]"
expect "a request id minted before the restart is still refused" 409 '.error == "already_minted"'
A=$(sign "$T/bob.key" fs.write r-10 --counter 1)
mint fs.write r-10 "[$A]"
expect "a counter from before the restart is still enforced" 403 '.error == "approval_refused"'

# A corrupt store stops attestd with a message naming the file.
attestd_stop
cp "$STATE/approvers.json" "$T/approvers.good"
printf '{"v":1,"approvers":[{"name":"x"}]}' >"$STATE/approvers.json"
if attestd_start --config "$T/attestd.json" 2>/dev/null; then
	fail "a corrupt approvers.json stops attestd"
	attestd_stop
elif grep -q 'approvers.json' "$T/attestd.log"; then
	pass "a corrupt approvers.json stops attestd, naming the file"
else
	fail "a corrupt approvers.json: no message naming it"
fi
cp "$T/approvers.good" "$STATE/approvers.json"

# Without an "approvals" section nothing "ask" is minted.
write_config "$T/plain.json"
attestd_start --config "$T/plain.json" || { fail "attestd restarts without approvals"; finish; }
A=$(sign "$T/alice.key" fs.write r-11)
mint fs.write r-11 "[$A]"
expect "approvals without an approvals section: 403 approvals_not_configured" 403 \
    '.error == "approvals_not_configured"'
req POST /v1/approvers "$(cat "$T/dave-other-rp.key.enrol")"
expect "enrolment without an approvals section: 403" 403 '.error == "approvals_not_configured"'
attestd_stop

if no_leaked_handles; then pass "no leaked TPM handles"; else fail "leaked TPM handles"; fi
finish
