#!/usr/bin/env bash
# attest-keys against a real TPM (swtpm): provisioning, the policy and SRK
# cross-checked with tpm2-tools (an independent implementation), status,
# rotation, PCR changes, refused state, and no leaked TPM handle after any
# step.
. "$(dirname "$0")/common.sh"

KEYS="$BIN/attest-keys"

# jget FILE PATH: a value from a JSON file; PATH like srk.name or
# generations.0.retired. Strings print bare, other values as JSON.
jget() {
	python3 - "$1" "$2" <<'PY'
import json, sys
v = json.load(open(sys.argv[1]))
for k in sys.argv[2].split("."):
    v = v[int(k)] if isinstance(v, list) else v[k]
print(v if isinstance(v, str) else json.dumps(v))
PY
}
hexof() { od -An -v -tx1 "$1" | tr -d ' \n'; }
RAW_PID=""
cleanup_keys() {
	[ -n "$RAW_PID" ] && kill "$RAW_PID" 2>/dev/null
	cleanup
}
trap cleanup_keys EXIT
ak() { "$KEYS" --tcti "$TCTI" --state-dir "$STATE" "$@"; }
status() { ak status >"$T/status.json" 2>"$T/status.err"; }
leaks() { check "no handle leaked after $1" no_leaked_handles; }
extend() { tpm2_pcrextend "$1:sha256=$(printf '%s' "$2" | sha256sum | cut -c1-64)"; }

if ! tpm_start; then
	fail "swtpm starts"
	finish
fi
pass "swtpm starts"

# ---- usage ----
check "--help exits 0" "$KEYS" --help
code=0; "$KEYS" --state-dir "$STATE" >/dev/null 2>&1 || code=$?
check "no command is a usage error (exit 2)" [ "$code" -eq 2 ]
code=0; "$KEYS" --tcti "$TCTI" --state-dir "$STATE" init --pcrs sha256:0,0 >/dev/null 2>&1 || code=$?
check "a bad --pcrs is a usage error (exit 2)" [ "$code" -eq 2 ]
code=0; "$KEYS" --tcti "$TCTI" --state-dir "$STATE" status >/dev/null 2>"$T/err" || code=$?
check "status before init fails (exit 1) saying not provisioned" eval \
	'[ "$code" -eq 1 ] && grep -q "not provisioned" "$T/err"'

# ---- init ----
if provision 2>"$T/init.err"; then pass "init succeeds"; else fail "init succeeds"; cat "$T/init.err" >&2; finish; fi
leaks "init"
check "init created the SRK" [ "$(jget "$T/init.json" srk.created)" = true ]

# The persistent SRK as tpm2-tools sees it: an ECC P-256 restricted
# decryption key whose name is the one attest-keys recorded.
tpm2_readpublic -c 0x81000001 >"$T/srk.txt" 2>>"$T/check.log"
srk_name=$(sed -n 's/^name: //p' "$T/srk.txt")
check "SRK exists at 0x81000001 (tpm2_readpublic)" [ -n "$srk_name" ]
check "SRK is ECC NIST P-256, the storage attributes, AES-128-CFB" eval '
	grep -A1 "^type:" "$T/srk.txt" | grep -q "value: ecc" &&
	grep -A2 "^curve-id:" "$T/srk.txt" | grep -q "raw: 0x3" &&
	grep -q "^  value: fixedtpm|fixedparent|sensitivedataorigin|userwithauth|noda|restricted|decrypt\$" "$T/srk.txt" &&
	grep -A1 "^sym-alg:" "$T/srk.txt" | grep -q "value: aes" &&
	grep -A1 "^sym-mode:" "$T/srk.txt" | grep -q "value: cfb" &&
	grep -q "^sym-keybits: 128" "$T/srk.txt"'
status
check "status succeeds" [ -s "$T/status.json" ]
check "SRK name in status equals tpm2_readpublic's" [ "$(jget "$T/status.json" srk.name)" = "$srk_name" ]
check "status: srk present and matching" eval \
	'[ "$(jget "$T/status.json" srk.present)" = true ] && [ "$(jget "$T/status.json" srk.matches)" = true ]'
check "status: srk handle 0x81000001" [ "$(jget "$T/status.json" srk.handle)" = 0x81000001 ]
leaks "status"

# The policy digest, computed independently by tpm2-tools. tpm2_createpolicy
# leaves its trial session loaded on a TPM without a resource manager, so
# flush it before the next leak check.
tpm2_createpolicy --policy-pcr -l sha256:0,2,4,7 -L "$T/policy.bin" >>"$T/check.log" 2>&1
tpm2_flushcontext -l >>"$T/check.log" 2>&1
check "policy digest equals tpm2_createpolicy --policy-pcr -l sha256:0,2,4,7" \
	[ "$(hexof "$T/policy.bin")" = "$(jget "$T/init.json" policy_digest)" ]
check "status policy_digest equals init's" \
	[ "$(jget "$T/status.json" policy_digest)" = "$(jget "$T/init.json" policy_digest)" ]

# status fields
for f in tpm.manufacturer tpm.vendor tpm.firmware tpm.spec_revision pcrs policy_digest \
	policy_satisfied root_key_usable generations ak.name current_generation; do
	check "status has $f" jget "$T/status.json" "$f"
done
check "status: pcrs sha256:0,2,4,7" [ "$(jget "$T/status.json" pcrs)" = sha256:0,2,4,7 ]
check "status: manufacturer IBM (swtpm)" [ "$(jget "$T/status.json" tpm.manufacturer)" = IBM ]
check "status: policy_satisfied true" [ "$(jget "$T/status.json" policy_satisfied)" = true ]
check "status: root_key_usable true (a real TPM HMAC)" [ "$(jget "$T/status.json" root_key_usable)" = true ]
check "status: one generation, gen 1 current" eval \
	'[ "$(jget "$T/status.json" generations.0.gen)" = 1 ] && [ "$(jget "$T/status.json" generations.0.retired)" = 0 ]'

# ---- files ----
check "state dir is 0700" [ "$(stat -c %a "$STATE")" = 700 ]
for f in keys.json root-1.pub root-1.priv ak.pub ak.priv; do
	check "$f is 0600" [ "$(stat -c %a "$STATE/$f")" = 600 ]
done

# ---- the root key as the TPM holds it ----
# adminWithPolicy: admin-role commands (ObjectChangeAuth here) are refused
# both with the key's empty password and with the PCR policy session (it
# has no PolicyCommandCode). tpm2-tools leaves objects loaded: flush them.
tpm2_print -t TPM2B_PUBLIC "$STATE/root-1.pub" >"$T/root1.txt" 2>>"$T/check.log"
check "root key attributes: fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|sign" \
	grep -q "^  value: fixedtpm|fixedparent|sensitivedataorigin|adminwithpolicy|sign\$" "$T/root1.txt"
root_load() {
	tpm2_flushcontext -t >>"$T/check.log" 2>&1
	tpm2_load -C 0x81000001 -u "$STATE/root-1.pub" -r "$STATE/root-1.priv" -c "$T/root.ctx" \
		>>"$T/check.log" 2>&1
}
pcr_session() {
	tpm2_startauthsession --policy-session -S "$T/sess.ctx" >>"$T/check.log" 2>&1 &&
		tpm2_policypcr -S "$T/sess.ctx" -l sha256:0,2,4,7 >>"$T/check.log" 2>&1
}
tools_flush() {
	tpm2_flushcontext -t >>"$T/check.log" 2>&1
	tpm2_flushcontext -l >>"$T/check.log" 2>&1
}
if root_load; then
	refute "ObjectChangeAuth on the root key with its empty password is refused" \
		tpm2_changeauth -c "$T/root.ctx" -C 0x81000001 -r "$T/chg.priv" newpass
	root_load
	if pcr_session; then
		refute "ObjectChangeAuth on the root key with the PCR policy session is refused" \
			tpm2_changeauth -c "$T/root.ctx" -C 0x81000001 -p session:"$T/sess.ctx" \
			-r "$T/chg.priv" newpass
	else
		fail "a PCR policy session with tpm2-tools"
	fi
	tools_flush
	# The HMAC attest-keys computes (status probes with this message),
	# here through an unencrypted session: what must never be on the wire.
	printf '%s' "warrant/attest-keys/probe" >"$T/probe.msg"
	root_load
	if pcr_session && TCTI_PCAP_FILE="$T/tools.pcap" TPM2TOOLS_TCTI="pcap:$TCTI" \
		tpm2_hmac -c "$T/root.ctx" -p session:"$T/sess.ctx" -g sha256 -o "$T/probe.hmac" \
		"$T/probe.msg" >>"$T/check.log" 2>&1; then
		pass "tpm2_hmac with the root key through a PCR policy session"
	else
		fail "tpm2_hmac with the root key through a PCR policy session"
	fi
	tools_flush
	TCTI_PCAP_FILE="$T/keys.pcap" "$KEYS" --tcti "pcap:$TCTI" --state-dir "$STATE" status \
		>"$T/pcap-status.json" 2>>"$T/check.log"
	in_capture() { python3 -c 'import sys; sys.exit(0 if open(sys.argv[1], "rb").read() in open(sys.argv[2], "rb").read() else 1)' "$1" "$2"; }
	check "the capture method sees an unencrypted HMAC (tpm2_hmac's own capture)" \
		eval '[ -s "$T/probe.hmac" ] && in_capture "$T/probe.hmac" "$T/tools.pcap"'
	check "attest-keys' HMAC crossed the wire encrypted (not in its capture)" eval '
		[ "$(jget "$T/pcap-status.json" root_key_usable)" = true ] && [ -s "$T/probe.hmac" ] &&
		! in_capture "$T/probe.hmac" "$T/keys.pcap"'
else
	fail "tpm2_load of the root key blobs under the SRK"
fi
tools_flush
leaks "the root key checks"

# A forged TPM2_ReadPublic answer for 0x81000001: the provisioned SRK's name
# with another public key (the P-256 generator, whose private key is 1).
# The SRK must be refused before any salt is encrypted to that key, that is
# before TPM2_StartAuthSession (0x176). The forger sits in a cmd: TCTI.
cat >"$T/forge.py" <<'PY'
import socket, struct, sys
sock_path, mode, log = sys.argv[1], sys.argv[2], open(sys.argv[3], "a")
G = bytes.fromhex("6b17d1f2e12c4247f8bce6e563a440f277037d812deb33a0f4a13945d898c296"
                  "4fe342e2fe1a7f9b8ee7eb4a7c0f9e162bce33576b315ececbb6406837bf51f5")
def read(f, n):
    b = f.read(n)
    if len(b) != n:
        sys.exit(0)
    return b
inp, out = sys.stdin.buffer, sys.stdout.buffer
while True:
    hdr = read(inp, 10)
    cmd = hdr + read(inp, struct.unpack(">I", hdr[2:6])[0] - 10)
    cc = struct.unpack(">I", cmd[6:10])[0]
    log.write("%x\n" % cc); log.flush()
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    s.sendall(cmd)
    f = s.makefile("rb")
    rh = f.read(10)
    rsp = bytearray(rh + f.read(struct.unpack(">I", rh[2:6])[0] - 10))
    s.close()
    if (mode == "forge" and cc == 0x173 and cmd[10:14] == b"\x81\x00\x00\x01" and
            struct.unpack(">I", rsp[6:10])[0] == 0):
        end = 12 + struct.unpack(">H", rsp[10:12])[0]
        if rsp[end - 68:end - 66] == b"\x00\x20" and rsp[end - 34:end - 32] == b"\x00\x20":
            rsp[end - 66:end - 34] = G[:32]
            rsp[end - 32:end] = G[32:]
    out.write(rsp); out.flush()
PY
forged_status() { # MODE: status through the forger; its command log in $T/forge-MODE.log
	: >"$T/forge-$1.log"
	"$KEYS" --tcti "cmd:python3 $T/forge.py ${TCTI#swtpm:path=} $1 $T/forge-$1.log" \
		--state-dir "$STATE" status >"$T/forge-$1.json" 2>>"$T/check.log"
}
forged_status pass
check "through the pass-through cmd: TCTI the root key works" eval '
	[ "$(jget "$T/forge-pass.json" root_key_usable)" = true ] && grep -qx 176 "$T/forge-pass.log"'
forged_status forge
check "a forged ReadPublic (SRK name, other key) is refused before StartAuthSession" eval '
	[ "$(jget "$T/forge-forge.json" root_key_usable)" = false ] &&
	jget "$T/forge-forge.json" root_key_error | grep -q "not the sha256 name of the public area" &&
	grep -qx 173 "$T/forge-forge.log" && ! grep -qx 176 "$T/forge-forge.log"'
leaks "the forged ReadPublic"

# ---- refuse to overwrite ----
sum=$(sha256sum "$STATE/keys.json")
code=0; ak init >/dev/null 2>"$T/err" || code=$?
check "init refuses to overwrite without --force (exit 1)" eval \
	'[ "$code" -eq 1 ] && grep -q "keys.json exists" "$T/err"'
check "keys.json untouched by the refused init" [ "$(sha256sum "$STATE/keys.json")" = "$sum" ]

# A second state dir with other PCRs reuses the SRK.
S2="$T/keys2"
"$KEYS" --tcti "$TCTI" --state-dir "$S2" init --pcrs sha256:1,3,5 >"$T/init2.json" 2>>"$T/check.log"
check "second init reuses the SRK" eval \
	'[ "$(jget "$T/init2.json" srk.created)" = false ] && [ "$(jget "$T/init2.json" srk.name)" = "$srk_name" ]'
tpm2_createpolicy --policy-pcr -l sha256:1,3,5 -L "$T/policy2.bin" >>"$T/check.log" 2>&1
tpm2_flushcontext -l >>"$T/check.log" 2>&1
check "policy for sha256:1,3,5 equals tpm2_createpolicy's" \
	[ "$(hexof "$T/policy2.bin")" = "$(jget "$T/init2.json" policy_digest)" ]
leaks "a second init"

# All 24 PCRs: PCR_Read returns at most 8 values per call. tpm2_createpolicy
# takes at most 8 PCRs, so the expected digest is computed here from
# tpm2_pcrread's values (PolicyPCR: H(0^32 || CC || TPML_PCR_SELECTION || H(values))).
ALL=sha256:0,1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23
"$KEYS" --tcti "$TCTI" --state-dir "$T/keys24" init --pcrs "$ALL" >"$T/init24.json" 2>>"$T/check.log"
tpm2_pcrread "$ALL" -o "$T/pcrs24.bin" >>"$T/check.log" 2>&1
want24=$(python3 - "$T/pcrs24.bin" <<'PY'
import hashlib, sys
vals = open(sys.argv[1], "rb").read()
assert len(vals) == 24 * 32
sel = bytes.fromhex("00000001" "000b" "03" "ffffff")
print(hashlib.sha256(bytes(32) + bytes.fromhex("0000017f") + sel + hashlib.sha256(vals).digest()).hexdigest())
PY
)
check "policy over all 24 PCRs equals one computed from tpm2_pcrread's values" \
	[ "${want24:-x}" = "$(jget "$T/init24.json" policy_digest)" ]
leaks "init over 24 PCRs"

# ---- AK ----
ak ak-public >"$T/ak.pem" 2>>"$T/check.log"
check "ak-public prints a PEM public key" grep -q "BEGIN PUBLIC KEY" "$T/ak.pem"
if tpm2_load -C 0x81000001 -u "$STATE/ak.pub" -r "$STATE/ak.priv" -c "$T/ak.ctx" >>"$T/check.log" 2>&1 &&
   tpm2_readpublic -c "$T/ak.ctx" -f pem -o "$T/ak-tools.pem" >"$T/ak.txt" 2>>"$T/check.log"; then
	check "AK PEM equals tpm2_readpublic's" cmp -s "$T/ak.pem" "$T/ak-tools.pem"
	check "AK name equals tpm2_readpublic's" \
		[ "$(sed -n 's/^name: //p' "$T/ak.txt")" = "$(jget "$T/status.json" ak.name)" ]
	check "AK is restricted|sign, ecdsa sha256" eval \
		'grep -q restricted "$T/ak.txt" && grep -q sign "$T/ak.txt" && grep -qi ecdsa "$T/ak.txt"'
else
	fail "tpm2_load of the AK blobs under the SRK"
fi
tpm2_flushcontext -t >>"$T/check.log" 2>&1
leaks "the AK checks"

# ---- rotate ----
ak rotate >"$T/rotate.json" 2>>"$T/check.log"
check "rotate prints generation 2" [ "$(jget "$T/rotate.json" generation)" = 2 ]
status
check "after rotate: gen 1 retired, gen 2 current" eval '
	[ "$(jget "$T/status.json" generations.0.gen)" = 1 ] &&
	[ "$(jget "$T/status.json" generations.0.retired)" -gt 0 ] &&
	[ "$(jget "$T/status.json" generations.1.gen)" = 2 ] &&
	[ "$(jget "$T/status.json" generations.1.retired)" = 0 ] &&
	[ "$(jget "$T/status.json" current_generation)" = 2 ]'
check "after rotate: root-2 blobs 0600" eval \
	'[ "$(stat -c %a "$STATE/root-2.pub")" = 600 ] && [ "$(stat -c %a "$STATE/root-2.priv")" = 600 ]'
check "after rotate: root key usable" [ "$(jget "$T/status.json" root_key_usable)" = true ]
leaks "rotate"

# ---- a PCR changes: fail closed ----
extend 7 "warrant test: a new Secure Boot state" >>"$T/check.log" 2>&1
code=0; status || code=$?
check "status still exits 0 after a PCR change" [ "$code" -eq 0 ]
check "after extending PCR 7: policy_satisfied false" [ "$(jget "$T/status.json" policy_satisfied)" = false ]
check "after extending PCR 7: root_key_usable false" [ "$(jget "$T/status.json" root_key_usable)" = false ]
check "the error says why (0x99d mapped to a policy failure)" eval '
	jget "$T/status.json" root_key_error | grep -q "PCR policy is not satisfied" &&
	jget "$T/status.json" root_key_error | grep -q "0x99d"'
leaks "a refused HMAC (policy failure)"
ak rotate >"$T/rotate3.json" 2>>"$T/check.log"
status
check "rotate after the change seals generation 3 to the new values" eval '
	[ "$(jget "$T/rotate3.json" generation)" = 3 ] &&
	[ "$(jget "$T/status.json" root_key_usable)" = true ] &&
	[ "$(jget "$T/status.json" policy_satisfied)" = true ]'
tpm2_createpolicy --policy-pcr -l sha256:0,2,4,7 -L "$T/policy3.bin" >>"$T/check.log" 2>&1
tpm2_flushcontext -l >>"$T/check.log" 2>&1
check "generation 3's policy equals tpm2_createpolicy's over the new PCR 7" \
	[ "$(hexof "$T/policy3.bin")" = "$(jget "$T/rotate3.json" policy_digest)" ]
leaks "rotate after a PCR change"

# ---- refused state ----
# broken copies of the state dir; each must fail with a message naming
# what is wrong.
refused() { # NAME PATTERN: status on $T/bad must exit 1 and stderr match
	local code=0
	"$KEYS" --tcti "$TCTI" --state-dir "$T/bad" status >/dev/null 2>"$T/bad.err" || code=$?
	if [ "$code" -eq 1 ] && grep -q -- "$2" "$T/bad.err"; then
		pass "$1"
	else
		fail "$1"
		{ echo "--- $1: exit $code"; cat "$T/bad.err"; } >>"$T/check.log"
	fi
}
fresh() { rm -rf "$T/bad"; cp -a "$STATE" "$T/bad"; }

fresh; head -c 100 "$STATE/keys.json" >"$T/bad/keys.json"
refused "truncated keys.json is refused" "keys.json: not valid JSON"
fresh; sed -i 's/"version": 1,/"version": 1, "version": 1,/' "$T/bad/keys.json"
refused "duplicate keys in keys.json are refused" "keys.json: not valid JSON"
fresh; sed -i 's/"retired": 0,/"retired": 0, "extra": true,/' "$T/bad/keys.json"
refused "an unknown field is refused" 'unknown field "extra"'
fresh; sed -i 's#"root-2.pub"#"../root-2.pub"#' "$T/bad/keys.json"
refused "a blob path with a directory is refused" 'must be "root-2.pub"'
fresh; cp "$STATE/root-3.pub" "$T/bad/root-2.pub"
refused "a swapped public blob is refused (name mismatch)" "root-2.pub: its name does not match"
fresh; head -c 5000 /dev/urandom >"$T/bad/root-3.priv"
refused "an oversized blob is refused" "root-3.priv: File too large"
fresh; printf 'x' >>"$T/bad/root-3.pub"
refused "trailing bytes in a public blob are refused" "root-3.pub"
fresh; rm "$T/bad/ak.priv"
refused "a missing blob is refused" "ak.priv: No such file"
fresh; python3 - "$T/bad/keys.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["policy_digest"] = "%064x" % (int(d["policy_digest"], 16) ^ 1)
open(p, "w").write(json.dumps(d, indent=2) + "\n")
PY
refused "a policy_digest that is not the key's authPolicy is refused" "authPolicy"
fresh; chmod 0770 "$T/bad"
refused "a group-writable state dir is refused" "writable by group or others"
fresh; chmod 0666 "$T/bad/keys.json"
refused "a group-writable keys.json is refused" "writable by group or others"
fresh; mv "$T/bad" "$T/bad.real"; ln -s "$T/bad.real" "$T/bad"
refused "a symlinked state dir is refused" "symlink"
rm -f "$T/bad"; rm -rf "$T/bad.real"
fresh; rm "$T/bad/root-3.pub"; ln -s "$STATE/root-3.pub" "$T/bad/root-3.pub"
refused "a symlinked blob is refused" "root-3.pub: a symlink"
# A FIFO must be refused, not block the reader in open(2) (timeout: 124).
fifo_refused() { # NAME FILE PATTERN
	local code=0
	fresh; rm "$T/bad/$2"; mkfifo "$T/bad/$2"
	timeout 10 "$KEYS" --tcti "$TCTI" --state-dir "$T/bad" status >/dev/null 2>"$T/bad.err" || code=$?
	if [ "$code" -eq 1 ] && grep -q -- "$3" "$T/bad.err"; then
		pass "$1"
	else
		fail "$1"
		{ echo "--- $1: exit $code"; cat "$T/bad.err"; } >>"$T/check.log"
	fi
}
fifo_refused "a FIFO as keys.json is refused at once" keys.json "keys.json: not a regular file"
fifo_refused "a FIFO as a blob is refused at once" ak.pub "ak.pub: not a regular file"
# A root key generation with the earlier template (adminWithPolicy clear),
# with keys.json naming it correctly: the blob-attribute check refuses it.
tpm2_create -C 0x81000001 -G hmac -a 'fixedtpm|fixedparent|sensitivedataorigin|sign' \
	-L "$T/policy3.bin" -u "$T/old.pub" -r "$T/old.priv" >>"$T/check.log" 2>&1
tpm2_flushcontext -t >>"$T/check.log" 2>&1
fresh; cp "$T/old.pub" "$T/bad/root-3.pub"; cp "$T/old.priv" "$T/bad/root-3.priv"
python3 - "$T/bad/keys.json" "$T/old.pub" <<'PY'
import hashlib, json, sys
p = sys.argv[1]
d = json.load(open(p))
pub = open(sys.argv[2], "rb").read()
d["generations"][-1]["name"] = "000b" + hashlib.sha256(pub[2:]).hexdigest()
open(p, "w").write(json.dumps(d, indent=2) + "\n")
PY
"$KEYS" --tcti "$TCTI" --state-dir "$T/bad" status >"$T/bad.json" 2>>"$T/check.log"
check "a root key without adminWithPolicy is refused before use" eval '
	[ "$(jget "$T/bad.json" root_key_usable)" = false ] &&
	jget "$T/bad.json" root_key_error | grep -q "not a policy-only HMAC-SHA256 key"'
# A damaged private blob passes the framing check; the TPM refuses it.
fresh; python3 -c 'import sys; p=sys.argv[1]; b=bytearray(open(p,"rb").read()); b[len(b)//2]^=1; open(p,"wb").write(b)' "$T/bad/root-3.priv"
"$KEYS" --tcti "$TCTI" --state-dir "$T/bad" status >"$T/bad.json" 2>>"$T/check.log"
check "a damaged private blob makes the root key unusable (TPM2_Load integrity)" eval '
	[ "$(jget "$T/bad.json" root_key_usable)" = false ] &&
	jget "$T/bad.json" root_key_error | grep -q "TPM2_Load"'
leaks "the refused states"

# ---- a swapped SRK ----
tpm2_evictcontrol -C o -c 0x81000001 >>"$T/check.log" 2>&1
tpm2_createprimary -C o -G ecc -a 'restricted|decrypt|fixedtpm|fixedparent|sensitivedataorigin|userwithauth' \
	-c "$T/other.ctx" >>"$T/check.log" 2>&1
tpm2_evictcontrol -C o -c "$T/other.ctx" 0x81000001 >>"$T/check.log" 2>&1
tpm2_flushcontext -t >>"$T/check.log" 2>&1
status
check "a different SRK at 0x81000001: srk.matches false" [ "$(jget "$T/status.json" srk.matches)" = false ]
check "a different SRK at 0x81000001: root key refused" eval '
	[ "$(jget "$T/status.json" root_key_usable)" = false ] &&
	jget "$T/status.json" root_key_error | grep -q "not the provisioned one"'
code=0; ak rotate >/dev/null 2>"$T/err" || code=$?
check "rotate refuses a different SRK" eval '[ "$code" -eq 1 ] && grep -q "SRK" "$T/err"'
leaks "the swapped SRK checks"
# The SRK is a primary key: the same template in the same owner hierarchy
# gives the same key again.
tpm2_evictcontrol -C o -c 0x81000001 >>"$T/check.log" 2>&1
"$KEYS" --tcti "$TCTI" --state-dir "$T/keys3" init >"$T/init3.json" 2>>"$T/check.log"
status
check "a recreated SRK has the same name and the root key works again" eval '
	[ "$(jget "$T/init3.json" srk.created)" = true ] &&
	[ "$(jget "$T/init3.json" srk.name)" = "$srk_name" ] &&
	[ "$(jget "$T/status.json" root_key_usable)" = true ]'
leaks "recreating the SRK"

# ---- a persistent handle that is not a storage key ----
tpm2_evictcontrol -C o -c 0x81000001 >>"$T/check.log" 2>&1
tpm2_createprimary -C o -G rsa -c "$T/rsa.ctx" >>"$T/check.log" 2>&1
tpm2_evictcontrol -C o -c "$T/rsa.ctx" 0x81000001 >>"$T/check.log" 2>&1
tpm2_flushcontext -t >>"$T/check.log" 2>&1
code=0; "$KEYS" --tcti "$TCTI" --state-dir "$T/keys4" init >/dev/null 2>"$T/err" || code=$?
check "init refuses an RSA key at 0x81000001" eval \
	'[ "$code" -eq 1 ] && grep -q "not an ECC P-256 storage key" "$T/err"'
tpm2_evictcontrol -C o -c 0x81000001 >>"$T/check.log" 2>&1
"$KEYS" --tcti "$TCTI" --state-dir "$T/keys4" init >/dev/null 2>>"$T/check.log"
leaks "the refused SRK"

# ---- generation limit ----
# Fill up to KEYSTORE_MAX_GENS (16); the next rotation would drop gen 1,
# retired less than 24 h ago: refused.
for i in $(seq 4 16); do ak rotate >/dev/null 2>>"$T/check.log"; done
status
check "16 generations kept" [ "$(jget "$T/status.json" current_generation)" = 16 ]
code=0; ak rotate >/dev/null 2>"$T/err" || code=$?
check "a 17th generation is refused while the oldest retired < 24 h ago" eval \
	'[ "$code" -eq 1 ] && grep -q "less than 24 h ago" "$T/err"'
# A retirement time in the far future (keys.json is only checked to be an
# integer): still refused, and the "retry after" time must not overflow.
python3 - "$STATE/keys.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["generations"][0]["retired"] = 2**63 - 1
open(p, "w").write(json.dumps(d, indent=2) + "\n")
PY
code=0; ak rotate >/dev/null 2>"$T/err" || code=$?
check "a retirement time of INT64_MAX is refused too" eval \
	'[ "$code" -eq 1 ] && grep -q "less than 24 h ago" "$T/err"'
# Age generation 1's retirement; then the oldest is dropped, blobs too.
python3 - "$STATE/keys.json" <<'PY'
import json, sys
p = sys.argv[1]
d = json.load(open(p))
d["generations"][0]["retired"] = 1000
open(p, "w").write(json.dumps(d, indent=2) + "\n")
PY
ak rotate >"$T/rotate17.json" 2>>"$T/check.log"
status
check "with gen 1 retired > 24 h ago, rotate drops it" eval '
	[ "$(jget "$T/rotate17.json" dropped)" = 1 ] &&
	[ "$(jget "$T/status.json" generations.0.gen)" = 2 ] &&
	[ "$(jget "$T/status.json" current_generation)" = 17 ] &&
	[ ! -e "$STATE/root-1.pub" ] && [ ! -e "$STATE/root-1.priv" ]'
leaks "17 rotations"

# ---- WARRANT_TCTI and an unreachable TPM ----
check "WARRANT_TCTI is the default TCTI" env WARRANT_TCTI="$TCTI" "$KEYS" --state-dir "$STATE" status
tpm_stop >>"$T/check.log" 2>&1
code=0; ak status >/dev/null 2>"$T/err" || code=$?
check "status with the TPM gone fails (exit 1) saying unreachable" eval \
	'[ "$code" -eq 1 ] && grep -q "could not be reached" "$T/err"'
tpm_start
status
check "after an swtpm restart the same SRK is there" eval \
	'[ "$(jget "$T/status.json" srk.matches)" = true ]'
# PCR 7 was extended before the current generation was sealed; a restart
# resets it, like a reboot into a changed boot chain.
check "after the restart PCR 7 is reset: the root key refuses (fail closed)" eval '
	[ "$(jget "$T/status.json" policy_satisfied)" = false ] &&
	[ "$(jget "$T/status.json" root_key_usable)" = false ]'
leaks "the restart"

# ---- a TPM nobody sent Startup to ----
# (firmware does it on real hardware, swtpm-start asks swtpm to do it;
# attest-keys issues Startup(CLEAR) once when the TPM answers INITIALIZE)
mkdir -p "$T/raw"
chmod 0700 "$T/raw"
if swtpm socket --tpm2 --server "type=unixio,path=$T/raw/tpm.sock" \
	--ctrl "type=unixio,path=$T/raw/tpm.sock.ctrl" --tpmstate "dir=$T/raw" \
	--flags not-need-init --pid "file=$T/raw/pid" --daemon >>"$T/check.log" 2>&1; then
	for _ in $(seq 1 50); do [ -s "$T/raw/pid" ] && break; sleep 0.1; done
	RAW_PID=$(cat "$T/raw/pid" 2>/dev/null || true)
	check "init on a TPM without Startup issues Startup(CLEAR) and succeeds" \
		"$KEYS" --tcti "swtpm:path=$T/raw/tpm.sock" --state-dir "$T/rawkeys" init
	check "no handle leaked on the TPM without Startup" \
		env TPM2TOOLS_TCTI="swtpm:path=$T/raw/tpm.sock" bash -c "$(declare -f no_leaked_handles); no_leaked_handles"
	[ -n "$RAW_PID" ] && kill "$RAW_PID" 2>/dev/null
	RAW_PID=""
else
	fail "start a swtpm without startup-clear"
fi

finish
