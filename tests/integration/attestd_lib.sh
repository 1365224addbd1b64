# Helpers for the attestd integration scripts (sourced after common.sh):
# raw HTTP over the unix socket with curl, as any uid, and JSON fields.

# req [--as UID] METHOD PATH [BODY]: sets CODE and BODY. --as runs curl
# with that uid and gid 65534 (the socket's group in these tests).
req() {
	local pre=() out
	if [ "$1" = --as ]; then
		pre=(setpriv --reuid="$2" --regid=65534 --clear-groups)
		shift 2
	fi
	local m="$1" p="$2"
	shift 2
	if [ $# -gt 0 ]; then
		out=$("${pre[@]}" curl -s --max-time 20 --unix-socket "$SOCK" -X "$m" \
		    -H 'Content-Type: application/json' --data-binary "$1" \
		    -w '\n%{http_code}' "http://attestd$p")
	else
		out=$("${pre[@]}" curl -s --max-time 20 --unix-socket "$SOCK" -X "$m" \
		    -w '\n%{http_code}' "http://attestd$p")
	fi
	CODE=${out##*$'\n'}
	BODY=${out%$'\n'*}
}

# expect NAME CODE [JQ_FILTER]: PASS if the last req returned CODE (and
# the filter holds on its body).
expect() {
	local n="$1" c="$2" f="${3:-}"
	if [ "$CODE" != "$c" ]; then
		fail "$n (HTTP $CODE, wanted $c: $BODY)"
	elif [ -n "$f" ] && ! jq -e "$f" >/dev/null 2>&1 <<<"$BODY"; then
		fail "$n (body does not satisfy $f: $BODY)"
	else
		pass "$n"
	fi
}

field() { jq -r "$1" <<<"$BODY"; }

# wait_status JQ_FILTER SECONDS: poll GET /v1/status until the filter holds.
wait_status() {
	local f="$1" i
	for i in $(seq 1 $(($2 * 10))); do
		req GET /v1/status
		if [ "$CODE" = 200 ] && jq -e "$f" >/dev/null 2>&1 <<<"$BODY"; then
			return 0
		fi
		sleep 0.1
	done
	return 1
}

# The kid of a token, decoded: {"aud","epoch","gen","mode"}.
token_kid() {
	local s
	s=$(cut -d. -f2 <<<"$1" | tr '_-' '/+')
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	base64 -d <<<"$s"
}

b64url_hex() {
	local s
	s=$(tr '_-' '/+' <<<"$1")
	while [ $((${#s} % 4)) -ne 0 ]; do s="$s="; done
	base64 -d <<<"$s" | od -An -v -tx1 | tr -d ' \n'
}

# Until measure_default runs: a VM attestd never measured.
VM=vm-1
LD=$(printf 'a%.0s' $(seq 1 64))
MINT='{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.write","args":{"path":"/notes.txt","data":"hi"}}'

# measure_default: measure a small VM (measure_vm) and point VM, LD and
# MINT at it.
measure_default() {
	measure_vm "$@" || return 1
	LD=$VM_LD
	MINT='{"aud":"proxy","vm":"'$VM'","launch_digest":"'$LD'","op":"fs.write","args":{"path":"/notes.txt","data":"hi"}}'
}

# write_config FILE [EXTRA_JSON_MEMBERS]: roles for root (or the current
# uid) and two unprivileged uids, and health checks every second.
write_config() {
	local me group=""
	me=$(id -u)
	[ "$me" = 0 ] && group='"socket_group":"nogroup",'
	cat >"$1" <<EOF
{"health_interval_seconds":1,$group${2:+$2,}
 "roles":{"$me":["admin","mint","launch","verify:*"],"65534":["verify:proxy"],"65533":[]}}
EOF
}
