#!/usr/bin/env bash
# Quotes on a real TPM (swtpm), checked by two implementations: ours
# (quote_verify, through `attestctl verify-quote`) and tpm2-tools'
# tpm2_checkquote. A quote must verify, and be refused after any event-log
# line is altered, dropped or reordered, or with a wrong nonce.
#
# Part A: lib/tpm.c's tpm_quote through the test_quote unit binary
#   (test_tpm_quote, enabled by WARRANT_TEST_TCTI), which extends a test
#   event log into PCR 15 of a fresh TPM and leaves the quote's parts.
# Part B: attestd's quote through `attestctl quote`, on another fresh TPM,
#   after measuring two launches with `attestctl measure`.
# Each part SKIPs, with the reason, what is not there to run.
. "$(dirname "$0")/common.sh"

: "${TESTBIN:=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../build/tests" && pwd)}"
CTL="$BIN/attestctl"
KEYS="$BIN/attest-keys"
NONCE_UNIT=6e6f6e63652d3132     # "nonce-12", what test_quote.c quotes with
NONCE_CTL=0011223344556677      # what part B asks attestctl quote for

# b64d STRING: unpadded base64url to bytes (basenc wants the padding).
b64d() {
	local s=$1
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	printf '%s' "$s" | basenc --base64url -d
}

# parts DIR QUOTE.json: the raw files tpm2_checkquote takes, from a quote
# document: the TPMS_ATTEST bytes, the TSS-marshalled TPMT_SIGNATURE, and
# the selected PCR values concatenated in selection order (with -l).
parts() {
	local d=$1 q=$2 sel i
	mkdir -p "$d" || return 1
	b64d "$(jq -r .attest "$q")" >"$d/attest.bin" || return 1
	b64d "$(jq -r .signature "$q")" >"$d/sig.bin" || return 1
	sel=$(jq -r .pcr_selection "$q") || return 1
	printf '%s' "$sel" >"$d/sel"
	for i in $(printf '%s' "${sel#sha256:}" | tr , ' '); do
		jq -r --arg i "$i" '.pcrs[$i]' "$q"
	done | xxd -r -p >"$d/pcrs.bin"
}

# checkquote DIR AK.pem NONCE: tpm2_checkquote on the files parts wrote.
checkquote() {
	tpm2_checkquote -u "$2" -g sha256 -m "$1/attest.bin" -s "$1/sig.bin" \
	    -f "$1/pcrs.bin" -l "$(cat "$1/sel")" -q "$3"
}

# The launch PCR's listed value recomputed from the records' digests with
# standard tools (the chain only; verify-quote also checks each digest).
log_chain_matches() {
	local q=$1 pcr=0000000000000000000000000000000000000000000000000000000000000000 d
	for d in $(jq -r .event_log "$q" | jq -r '.digests[0].digest'); do
		pcr=$(printf '%s%s' "$pcr" "$d" | xxd -r -p | sha256sum | cut -c1-64)
	done
	[ "$pcr" = "$(jq -r '.pcrs[(.launch_pcr|tostring)]' "$q")" ]
}

# mutate IN OUT MODE N: the quote document with its event log changed.
#   alter N    line N's content changed, digest left as it was
#   rewrite N  line N's content changed and its digest recomputed
#   drop N     line N removed
#   swap N     lines N and N+1 exchanged
mutate() {
	python3 - "$@" <<'PY'
import hashlib, json, sys
src, dst, mode, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
doc = json.load(open(src))
lines = doc["event_log"].split("\n")[:-1]
canon = lambda o: json.dumps(o, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
def change(line, rehash):
    rec = json.loads(line)
    c = rec["content"]
    if "size" in c:
        c["size"] += 1
    elif "cmdline" in c:
        c["cmdline"] += " x"
    else:
        c["config"]["vcpus"] = c["config"].get("vcpus", 0) + 1
    if rehash:
        rec["digests"][0]["digest"] = hashlib.sha256(canon(c).encode()).hexdigest()
    return canon(rec)
if mode == "alter":
    lines[n] = change(lines[n], False)
elif mode == "rewrite":
    lines[n] = change(lines[n], True)
elif mode == "drop":
    del lines[n]
elif mode == "swap":
    lines[n], lines[n + 1] = lines[n + 1], lines[n]
doc["event_log"] = "".join(l + "\n" for l in lines)
json.dump(doc, open(dst, "w"))
PY
}

nlines() { jq -r .event_log "$1" | grep -c .; }

# The verify-quote report names each measured VM's launch digest.
report_has_launches() {
	local vm d
	verify "$T/ak.pem" "$NONCE_USED" "$T/quote.json" >"$T/report.json" || return 1
	for vm in one two; do
		d=$(jq -r .launch_digest "$T/measure-$vm.json") || return 1
		grep -q "$d" "$T/report.json" || return 1
	done
}

# has_cmd NAME: attestctl's usage lists the command NAME.
has_cmd() { "$CTL" --help 2>&1 | grep -qE "(^|[[:space:]])$1([[:space:]]|\$)"; }

# verify AK NONCE QUOTE: attestctl verify-quote.
verify() { "$CTL" verify-quote --ak "$1" --nonce "$2" "$3"; }

# refuse_every LABEL KIND AK QUOTE: every line of the log mutated by KIND
# must be refused; one result line.
refuse_every() {
	local label=$1 kind=$2 ak=$3 q=$4 n i last bad="" what
	case "$kind" in
	alter) what="any one line altered" ;;
	drop) what="any one line dropped" ;;
	swap) what="any two neighbouring lines swapped" ;;
	*) what=$kind ;;
	esac
	n=$(nlines "$q")
	last=$n
	[ "$kind" = swap ] && last=$((n - 1))
	for ((i = 0; i < last; i++)); do
		mutate "$q" "$T/mut.json" "$kind" "$i" || { bad="$bad $i(mutate)"; continue; }
		if verify "$ak" "$NONCE_USED" "$T/mut.json" >>"$T/check.log" 2>&1; then
			bad="$bad $i"
		fi
	done
	if [ "$n" -eq 0 ]; then
		skip "$label: verify-quote refuses $what (the log is empty)"
	elif [ -z "$bad" ]; then
		pass "$label: verify-quote refuses $what ($last cases)"
	else
		fail "$label: verify-quote refuses $what (accepted at line:$bad)"
	fi
}

# check_quote LABEL AK QUOTE: the common checks on one quote document.
check_quote() {
	local label=$1 ak=$2 q=$3
	if parts "$T/$label-parts" "$q"; then
		check "$label: tpm2_checkquote accepts attest, signature and PCR values" \
		    checkquote "$T/$label-parts" "$ak" "$NONCE_USED"
		refute "$label: tpm2_checkquote refuses another nonce" \
		    checkquote "$T/$label-parts" "$ak" "$NONCE_OTHER"
		cp "$T/$label-parts/pcrs.bin" "$T/pcrs.orig"
		printf '\001' | dd of="$T/$label-parts/pcrs.bin" bs=1 seek=0 conv=notrunc 2>/dev/null
		refute "$label: tpm2_checkquote refuses an altered PCR value" \
		    checkquote "$T/$label-parts" "$ak" "$NONCE_USED"
		cp "$T/pcrs.orig" "$T/$label-parts/pcrs.bin"
	else
		fail "$label: the quote document decodes into tpm2_checkquote's files"
	fi
	check "$label: the log's digest chain gives the quoted launch PCR (sha256sum)" \
	    log_chain_matches "$q"
	if ! has_cmd verify-quote; then
		skip "$label: attestctl verify-quote (not implemented in attestctl yet)"
		return 0
	fi
	check "$label: attestctl verify-quote accepts" verify "$ak" "$NONCE_USED" "$q"
	refute "$label: attestctl verify-quote refuses another nonce" \
	    verify "$ak" "$NONCE_OTHER" "$q"
	refute "$label: attestctl verify-quote refuses another key" \
	    verify "$T/other-ak.pem" "$NONCE_USED" "$q"
	refuse_every "$label" alter "$ak" "$q"
	refuse_every "$label" drop "$ak" "$q"
	refuse_every "$label" swap "$ak" "$q"
	if [ "$(nlines "$q")" -gt 0 ]; then
		mutate "$q" "$T/mut.json" rewrite 0
		refute "$label: verify-quote refuses a record rewritten with its digest recomputed" \
		    verify "$ak" "$NONCE_USED" "$T/mut.json"
	fi
}

for tool in tpm2_checkquote jq xxd basenc python3; do
	if ! command -v "$tool" >/dev/null 2>&1; then
		skip "quotes ($tool is not installed)"
		finish
	fi
done
openssl ecparam -name prime256v1 -genkey -noout 2>/dev/null |
	openssl ec -pubout -out "$T/other-ak.pem" 2>/dev/null

# ---- part A: tpm_quote on swtpm --------------------------------------------
NONCE_USED=$NONCE_UNIT NONCE_OTHER=$NONCE_CTL
if [ ! -x "$TESTBIN/test_quote" ]; then
	skip "tpm_quote on swtpm ($TESTBIN/test_quote is not built)"
elif ! tpm_start; then
	fail "swtpm starts (part A)"
else
	mkdir -p "$T/unit"
	WARRANT_TEST_TCTI=$TCTI WARRANT_TEST_QUOTE_OUT="$T/unit" "$TESTBIN/test_quote" \
	    >"$T/unit.log" 2>&1
	if grep -q '^\[       OK \] test_tpm_quote' "$T/unit.log"; then
		pass "tpm_quote on swtpm: quote_verify accepts, refusals leave no handle (test_tpm_quote)"
		check_quote "tpm_quote" "$T/unit/ak.pem" "$T/unit/quote.json"
	else
		fail "tpm_quote on swtpm (test_tpm_quote did not pass)"
		tail -n 30 "$T/unit.log" >&2
	fi
	check "no handle leaked after part A" no_leaked_handles
	tpm_stop >/dev/null 2>&1
	rm -rf "$T/tpm"
fi

# ---- part B: attestctl quote ---------------------------------------------
NONCE_USED=$NONCE_CTL NONCE_OTHER=$NONCE_UNIT
if ! has_cmd quote; then
	skip "attestctl quote (not implemented in attestctl yet)"
	finish
fi
if ! tpm_start; then
	fail "swtpm starts (part B)"
	finish
fi
if ! provision 2>"$T/init.err"; then
	fail "attest-keys init"
	cat "$T/init.err" >&2
	finish
fi
"$KEYS" --tcti "$TCTI" --state-dir "$STATE" ak-public >"$T/ak.pem"
if ! attestd_start; then
	fail "attestd starts"
	finish
fi

# Two launches of small stand-in artifacts: measuring does not boot them.
measured=0
if has_cmd measure; then
	for vm in one two; do
		mkdir -p "$T/vm-$vm"
		head -c 4096 /dev/urandom >"$T/vm-$vm/vmlinuz"
		head -c 2048 /dev/urandom >"$T/vm-$vm/initrd.img"
		cat >"$T/vm-$vm/manifest.json" <<EOF
{"name":"vm-$vm","kernel":"vmlinuz","initrd":"initrd.img","cmdline":"console=ttyS0",
 "vcpus":1,"memory_mib":128,"vmm":"qemu","envelope":{"fs.read":"allow"}}
EOF
		if "$CTL" --socket "$SOCK" measure "$T/vm-$vm/manifest.json" \
		    >"$T/measure-$vm.json" 2>>"$T/check.log"; then
			measured=$((measured + 1))
		fi
	done
fi
if [ "$measured" -eq 2 ]; then
	pass "attestctl measure: two launches in the event log"
else
	skip "attestctl measure (unavailable or failed: the log below has $measured launches)"
fi

# <(...) as the brief's example has it: the AK straight from attest-keys.
if "$CTL" --socket "$SOCK" quote --nonce "$NONCE_USED" >"$T/quote.json" 2>>"$T/check.log"; then
	pass "attestctl quote"
	if has_cmd verify-quote; then
		check "attestctl verify-quote --ak <(attest-keys ak-public) accepts" \
		    eval '"$CTL" verify-quote --ak <("$KEYS" --tcti "$TCTI" --state-dir "$STATE" \
		        ak-public) --nonce "$NONCE_USED" "$T/quote.json"'
		if [ "$measured" -eq 2 ]; then
			check "verify-quote reports both launches with their launch digests" \
			    report_has_launches
		fi
	fi
	check_quote "attestctl" "$T/ak.pem" "$T/quote.json"
else
	fail "attestctl quote"
fi
attestd_stop
check "no handle leaked after part B" no_leaked_handles
finish
