#!/usr/bin/env bash
# attestd's TPM health and keys over time, on a private swtpm: a PCR change
# stops minting (fail closed), a stopped swtpm makes it unreachable and a
# restarted one is picked up by itself, rotation + SIGHUP switches to the
# new generation while the old one's keys stay served, strict mode puts a
# TPM HMAC in every token and holds no epoch key (no audience keys served,
# epoch-mode tokens refused), and no TPM handle leaks.
. "$(dirname "$0")/common.sh"
. "$(dirname "$0")/attestd_lib.sh"

for tool in swtpm curl jq tpm2_getcap tpm2_pcrextend; do
	command -v "$tool" >/dev/null 2>&1 || { skip "attestd health: $tool not installed"; finish; }
done
tpm_start || { fail "swtpm starts"; finish; }
provision || { fail "attest-keys init"; finish; }
write_config "$T/attestd.json"
attestd_start --config "$T/attestd.json" || { fail "attestd starts"; finish; }
measure_default || { fail "measure a VM"; finish; }

req POST /v1/mint "$MINT"
expect "mint before any change" 200
TOKEN1=$(field .token)
EPOCH1=$(token_kid "$TOKEN1" | jq -r .epoch)

# --- PCR policy violation -------------------------------------------------
tpm2_pcrextend "7:sha256=$(printf '1%.0s' $(seq 1 64))" >>"$T/check.log" 2>&1 ||
    fail "tpm2_pcrextend 7"
if wait_status '.policy == "violated" and .minting == false and .tpm == "ok"' 3; then
	pass "PCR 7 extended: policy violated within a health interval"
else
	fail "PCR 7 extended: policy violated ($BODY)"
fi
req POST /v1/mint "$MINT"
expect "mint with a violated policy: 503" 503 '.error == "unavailable"'
req GET "/v1/keys/proxy?gen=1&epoch=$EPOCH1"
expect "an already derived key is still served" 200
req GET "/v1/keys/vmhost?gen=1&epoch=$EPOCH1"
expect "audience keys derive from the cached epoch key" 200
req POST /v1/verify '{"token":"'"$TOKEN1"'"}'
expect "verify still works with a violated policy" 200

# --- swtpm stopped and restarted -------------------------------------------
tpm_stop >>"$T/check.log" 2>&1
if wait_status '.tpm == "unreachable" and .minting == false' 3; then
	pass "swtpm stopped: status unreachable"
else
	fail "swtpm stopped: status unreachable ($BODY)"
fi
req POST /v1/mint "$MINT"
expect "mint with the TPM unreachable: 503" 503 '.error == "unavailable"'
req GET "/v1/keys/proxy?gen=1&epoch=$EPOCH1"
expect "cached key served with the TPM unreachable" 200
# Three more health checks (one a second) fail the same way: one log line.
sleep 3
n=$(grep -c 'tpm unreachable' "$T/attestd.log")
if [ "$n" = 1 ]; then pass "an unreachable TPM is logged once"; else fail "an unreachable TPM is logged $n times"; fi
n=$(grep -c 'policy violated' "$T/attestd.log")
if [ "$n" = 1 ]; then pass "a violated policy is logged once"; else fail "a violated policy is logged $n times"; fi
# A restarted swtpm has fresh PCRs: the policy is satisfied again.
tpm_start || fail "swtpm restarts on the same folder"
if wait_status '.tpm == "ok" and .policy == "ok" and .minting == true' 4; then
	pass "swtpm restarted: attestd recovers by itself"
else
	fail "swtpm restarted: attestd recovers by itself ($BODY)"
fi
# A TPM reset starts PCR 15 and the event log again: the VMs measured
# before are forgotten (fail closed) and must be measured again.
req POST /v1/mint "$MINT"
expect "after a TPM reset the old VM is not known" 403 '.error == "not_measured"'
if measure_default; then pass "measure again after the TPM reset"; else fail "measure again after the TPM reset"; fi
req POST /v1/mint "$MINT"
expect "mint after recovery" 200

# --- rotation -------------------------------------------------------------
if "$BIN/attest-keys" --tcti "$TCTI" --state-dir "$STATE" rotate >>"$T/check.log" 2>&1; then
	pass "attest-keys rotate"
else
	fail "attest-keys rotate"
fi
kill -HUP "$ATTESTD_PID"
if wait_status '.generation == 2 and .generations == [1,2] and .minting == true' 3; then
	pass "SIGHUP reloads: generation 2"
else
	fail "SIGHUP reloads: generation 2 ($BODY)"
fi
req POST /v1/mint "$MINT"
expect "mint after rotation" 200
TOKEN2=$(field .token)
if [ "$(token_kid "$TOKEN2" | jq -r .gen)" = 2 ]; then pass "new tokens carry gen 2"; else fail "new tokens carry gen 2"; fi
req GET "/v1/keys/proxy?gen=1&epoch=$EPOCH1"
expect "keys of gen 1 still served" 200 '.gen == 1'
EPOCH2=$(token_kid "$TOKEN2" | jq -r .epoch)
req GET "/v1/keys/proxy?gen=2&epoch=$EPOCH2"
expect "keys of gen 2 served" 200 '.gen == 2'
req POST /v1/verify '{"token":"'"$TOKEN1"'"}'
expect "gen 1 token still verifies" 200
req POST /v1/verify '{"token":"'"$TOKEN2"'"}'
expect "gen 2 token verifies" 200
req POST /v1/admin/reload
expect "POST /v1/admin/reload" 200 '.generation == 2 and .generations == [1,2]'
attestd_stop

# --- strict mode ----------------------------------------------------------
attestd_start --config "$T/attestd.json" --strict || fail "attestd --strict starts"
req GET /v1/status
before=$(field .tpm_commands)
req POST /v1/mint "$MINT"
expect "strict mint" 200
STRICT=$(field .token)
req GET /v1/status
after=$(field .tpm_commands)
if [ "$(token_kid "$STRICT" | jq -r .mode)" = strict ] && [ "$after" -gt "$before" ]; then
	pass "strict token made with a TPM command ($before -> $after)"
else
	fail "strict token made with a TPM command ($before -> $after)"
fi
req GET /v1/status
expect "status shows strict mode, no epoch key held" 200 '.mode == "strict" and .epoch_keys == 0'
ES=$(field .epoch_seconds)
MT=$(field .max_ttl_seconds)
SEPOCH=$(token_kid "$STRICT" | jq -r .epoch)
SGEN=$(token_kid "$STRICT" | jq -r .gen)
req POST /v1/verify '{"token":"'"$STRICT"'"}'
# The window is GET /v1/keys's, computed from the kid: epoch * epoch_seconds.
expect "strict token verifies in attestd, with its key window" 200 \
    ".mac == \"ok\" and .not_before == $((SEPOCH * ES)) and .epoch_end == $(((SEPOCH + 1) * ES)) and .not_after == $(((SEPOCH + 1) * ES + MT))"
# Same signing input, someone else's tag.
FORGED="${STRICT%.*}.${TOKEN2##*.}"
req POST /v1/verify '{"token":"'"$FORGED"'"}'
expect "forged strict token: 422" 422 '.error == "bad_mac"'
# No audience key, for the current epoch or any other: whoever held one
# could make epoch-mode tokens that other verifiers accept.
req GET "/v1/keys/proxy"
expect "strict: GET /v1/keys is 409" 409 '.error == "strict_mode" and (has("key") | not)'
req GET "/v1/keys/proxy?gen=$SGEN&epoch=$SEPOCH"
expect "strict: no key for the strict token's epoch either" 409 '.error == "strict_mode"'
req GET "/v1/keys/proxy?gen=1&epoch=$EPOCH1"
expect "strict: no key for an epoch served before the restart" 409 '.error == "strict_mode"'
req --as 65534 GET "/v1/keys/vmhost"
expect "strict: the role is still checked first" 403 '.error == "forbidden"'
# Epoch-mode tokens cannot be genuine under a strict attestd: refused,
# even correctly made ones from before the restart.
req POST /v1/verify '{"token":"'"$TOKEN2"'"}'
expect "strict: an epoch-mode token is refused in /v1/verify" 409 '.error == "strict_mode"'
sleep 2.5   # two or more health checks
req GET /v1/status
expect "strict: still no epoch key after health checks and requests" 200 \
    '.epoch_keys == 0 and .policy == "ok" and .minting == true'
attestd_stop

check "no leaked TPM handles" no_leaked_handles
finish
