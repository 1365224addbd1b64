#!/usr/bin/env bash
# The Firecracker backend, as far as it can be checked without Firecracker
# (not installable here; docs/firecracker.md): the validator against
# Firecracker's own accepted and rejected sample configs and adversarial
# mutations; every config vmhost generates validated against Firecracker's
# API schema; staging copies the sealed bytes, not files changed on disk
# after sealing. Configs and jails come from the harness mode of the unit
# test binary (tests/unit/test_firecracker.c).
. "$(dirname "$0")/common.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
REF=$REPO/../shared/reference/firecracker
VALIDATE=$REPO/tests/firecracker/validate.py
: "${TESTBIN:=$REPO/build/tests}"
HARNESS=$(cd "$TESTBIN" 2>/dev/null && pwd)/test_firecracker
HARNESS_PID=""

cleanup_fc() {
	if [ -n "$HARNESS_PID" ]; then
		kill "$HARNESS_PID" 2>/dev/null
		wait "$HARNESS_PID" 2>/dev/null
	fi
	cleanup
}
trap cleanup_fc EXIT

if [ ! -f "$REF/firecracker-api.yaml" ]; then
	skip "firecracker configs (no reference data at ../shared/reference/firecracker beside the repository)"
	finish
fi
if ! python3 -c 'import yaml' 2>/dev/null; then
	skip "firecracker configs (python3-yaml is not installed; scripts/install-deps)"
	finish
fi
validate() { python3 "$VALIDATE" --schema "$REF/firecracker-api.yaml" "$@"; }

# --- The validator itself, on Firecracker's own samples.
check "validator accepts Firecracker's vm_config.json" validate "$REF/vm_config.json"
check "validator accepts Firecracker's vm_config_network.json" validate "$REF/vm_config_network.json"
refute "validator rejects vm_config_missing_mem_size_mib.json" \
	validate "$REF/vm_config_missing_mem_size_mib.json"
refute "validator rejects vm_config_missing_vcpu_count.json" \
	validate "$REF/vm_config_missing_vcpu_count.json"
check "validator names the missing field" eval '
	validate "$REF/vm_config_missing_mem_size_mib.json" | grep -q "mem_size_mib" &&
	validate "$REF/vm_config_missing_vcpu_count.json" | grep -q "vcpu_count"'

# --- The validator on mutations of a valid config: each must be refused.
mkdir -p "$T/mut"
python3 - "$T/mut" <<'EOF'
import copy, json, os, sys
out = sys.argv[1]
base = {
    "boot-source": {"kernel_image_path": "/kernel", "initrd_path": "/initrd",
                    "boot_args": "console=ttyS0"},
    "drives": [{"drive_id": "rootfs", "path_on_host": "/rootfs",
                "is_root_device": False, "is_read_only": True}],
    "machine-config": {"vcpu_count": 2, "mem_size_mib": 256, "smt": False},
    "vsock": {"guest_cid": 3, "uds_path": "/rw/agent"},
}
def mut(name, f):
    c = copy.deepcopy(base)
    f(c)
    with open(os.path.join(out, name + ".json"), "w") as fh:
        json.dump(c, fh)
def setk(sec, key, val):
    return lambda c: c[sec].__setitem__(key, val)
def delk(sec, key):
    return lambda c: c[sec].pop(key)
mut("base", lambda c: None)
mut("unknown-boot-field", setk("boot-source", "kernel_path", "/k"))
mut("unknown-section", lambda c: c.__setitem__("machine_config", {}))
mut("vcpu-33", setk("machine-config", "vcpu_count", 33))
mut("vcpu-0", setk("machine-config", "vcpu_count", 0))
mut("vcpu-string", setk("machine-config", "vcpu_count", "2"))
mut("vcpu-bool", setk("machine-config", "vcpu_count", True))
mut("vcpu-real", setk("machine-config", "vcpu_count", 2.5))
mut("smt-string", setk("machine-config", "smt", "false"))
mut("smt-odd-vcpus", lambda c: c["machine-config"].update(smt=True, vcpu_count=3))
mut("mem-zero", setk("machine-config", "mem_size_mib", 0))
mut("huge-pages-bad", setk("machine-config", "huge_pages", "1G"))
mut("no-kernel", delk("boot-source", "kernel_image_path"))
mut("null-kernel", setk("boot-source", "kernel_image_path", None))
mut("no-boot-source", lambda c: c.pop("boot-source"))
mut("cid-2", setk("vsock", "guest_cid", 2))
mut("no-uds", delk("vsock", "uds_path"))
mut("drive-ro-int", lambda c: c["drives"][0].__setitem__("is_read_only", 1))
mut("drive-no-root-flag", lambda c: c["drives"][0].pop("is_root_device"))
mut("drive-cache-bad", lambda c: c["drives"][0].__setitem__("cache_type", "None"))
mut("drives-object", lambda c: c.__setitem__("drives", c["drives"][0]))
mut("two-root-drives", lambda c: c["drives"].extend([
    dict(c["drives"][0], drive_id="a", is_root_device=True),
    dict(c["drives"][0], drive_id="b", is_root_device=True)]))
mut("duplicate-drive-id", lambda c: c["drives"].append(dict(c["drives"][0])))
mut("top-array", lambda c: c.clear())
with open(os.path.join(out, "top-array.json"), "w") as fh:
    fh.write("[]")
with open(os.path.join(out, "duplicate-key.json"), "w") as fh:
    fh.write('{"boot-source": {"kernel_image_path": "/a", "kernel_image_path": "/b"}}')
EOF
check "validator accepts the unmutated config" validate "$T/mut/base.json"
for f in "$T"/mut/*.json; do
	name=$(basename "$f" .json)
	[ "$name" = base ] && continue
	refute "validator rejects mutation: $name" validate "$f"
done

# --- Configs vmhost generates.
if [ ! -x "$HARNESS" ]; then
	fail "harness $TESTBIN/test_firecracker is not built (make build/tests/test_firecracker)"
	finish
fi
if ! "$REPO/scripts/build-guest" >>"$T/check.log" 2>&1; then
	fail "scripts/build-guest (needed for the test guest's artifacts)"
	finish
fi

GUEST=$REPO/build/guest
VMID=$(printf 'warrant-fc-test' | sha256sum | cut -c1-64)
# manifest FILE VMM KERNEL INITRD ROOTFS VCPUS MEM CMDLINE: write a manifest.
manifest() {
	python3 - "$@" <<'EOF'
import json, sys
path, vmm, kernel, initrd, rootfs, vcpus, mem, cmdline = sys.argv[1:]
m = {"name": "fc-test", "kernel": kernel, "initrd": initrd, "cmdline": cmdline,
     "vcpus": int(vcpus), "memory_mib": int(mem), "vmm": vmm, "envelope": {}}
if rootfs:
    m["rootfs"] = rootfs
json.dump(m, open(path, "w"), indent=2)
EOF
}

mkdir -p "$T/art"
head -c 65536 /dev/urandom >"$T/art/vmlinux"
head -c 32768 /dev/urandom >"$T/art/initrd.img"
head -c 1048576 /dev/urandom >"$T/art/rootfs.ext4"
cmdline=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["cmdline"])' \
	"$GUEST/manifest.json")
manifest "$T/guest-fc.json" firecracker "$GUEST/vmlinuz" "$GUEST/initrd.img" "" 1 256 "$cmdline"
manifest "$T/rootfs-fc.json" firecracker vmlinux initrd.img rootfs.ext4 2 1024 \
	'console=ttyS0 reboot=k panic=1 pci=off root=/dev/vda ro'
manifest "$T/max-fc.json" firecracker vmlinux initrd.img rootfs.ext4 32 65536 \
	'quote" backslash\ init=/bin/sh -- x'
manifest "$T/min-fc.json" firecracker vmlinux initrd.img "" 1 64 ''
mv "$T/rootfs-fc.json" "$T/max-fc.json" "$T/min-fc.json" "$T/art/"

gen() {  # gen NAME MANIFEST CID
	"$HARNESS" config "$2" "$VMID" /srv/jailer "$3" >"$T/$1.config.json" 2>>"$T/check.log"
}
check "config for the test guest manifest (vmm firecracker)" gen guest "$T/guest-fc.json" 3
check "config for a manifest with a rootfs" gen rootfs "$T/art/rootfs-fc.json" 4
check "config at the manifest maxima (32 vcpus, 64 GiB, odd cmdline)" \
	gen max "$T/art/max-fc.json" 4294967294
check "config at the manifest minima (1 vcpu, 64 MiB, empty cmdline)" gen min "$T/art/min-fc.json" 5
for n in guest rootfs max min; do
	check "generated config '$n' validates against Firecracker's schema" \
		validate "$T/$n.config.json"
done
check "configs carry the manifest's values and chroot paths" python3 - "$T" "$cmdline" <<'EOF'
import json, sys
t, cmdline = sys.argv[1:]
def load(n):
    return json.load(open("%s/%s.config.json" % (t, n)))
g, r, x, n = load("guest"), load("rootfs"), load("max"), load("min")
assert set(g) == {"boot-source", "drives", "machine-config", "vsock"}, sorted(g)
assert g["boot-source"] == {"kernel_image_path": "/kernel", "initrd_path": "/initrd",
                            "boot_args": cmdline}
assert g["drives"] == [] and n["drives"] == []
assert g["machine-config"] == {"vcpu_count": 1, "mem_size_mib": 256, "smt": False}
assert g["vsock"] == {"guest_cid": 3, "uds_path": "/rw/agent"}
assert r["drives"] == [{"drive_id": "rootfs", "path_on_host": "/rootfs",
                        "is_root_device": False, "is_read_only": True}]
assert r["machine-config"]["vcpu_count"] == 2 and r["machine-config"]["mem_size_mib"] == 1024
assert x["boot-source"]["boot_args"] == 'quote" backslash\\ init=/bin/sh -- x'
assert x["machine-config"]["vcpu_count"] == 32 and x["vsock"]["guest_cid"] == 4294967294
assert n["boot-source"]["boot_args"] == "" and n["machine-config"]["mem_size_mib"] == 64
EOF
refute "the QEMU test guest manifest is refused (its vmm was measured as qemu)" \
	"$HARNESS" config "$GUEST/manifest.json" "$VMID" /srv/jailer 3
check "the refusal says why" eval '
	"$HARNESS" config "$GUEST/manifest.json" "$VMID" /srv/jailer 3 2>&1 |
		grep -q "measured for another VMM"'
refute "a guest CID of 2 is refused" "$HARNESS" config "$T/guest-fc.json" "$VMID" /srv/jailer 2
refute "a relative chroot base is refused" "$HARNESS" config "$T/guest-fc.json" "$VMID" srv 3

# --- Staging: the jail gets the sealed bytes, not what is on disk later.
if [ "$(id -u)" -ne 0 ]; then
	skip "jail staging (needs root: jail files are chowned to root)"
	finish
fi

# stage NAME MANIFEST VMID TAMPER_FUNCTION: run the harness, call the
# function between sealing and staging, collect its output in $T/NAME.out.
stage() {
	local name=$1 man=$2 id=$3 tamper=$4 line="" out in
	coproc HARNESS_CO { "$HARNESS" stage "$man" "$id" "$T/jail" 4242 4343 7 2>"$T/$name.err"; }
	HARNESS_PID=$HARNESS_CO_PID
	exec {out}<&"${HARNESS_CO[0]}" {in}>&"${HARNESS_CO[1]}"
	read -r -t 60 line <&"$out"
	if [ "$line" != sealed ]; then
		exec {out}<&- {in}>&-
		wait "$HARNESS_PID"
		HARNESS_PID=""
		return 1
	fi
	"$tamper"
	echo go >&"$in"
	exec {in}>&-
	cat <&"$out" >"$T/$name.out"
	exec {out}<&-
	wait "$HARNESS_PID"
	local rc=$?
	HARNESS_PID=""
	return "$rc"
}

ART=$T/art
cp "$ART/vmlinux" "$T/orig.vmlinux"
cp "$ART/initrd.img" "$T/orig.initrd"
cp "$ART/rootfs.ext4" "$T/orig.rootfs"
tamper_all() {
	# In place, truncated, and replaced by another file of the same name.
	head -c 65536 /dev/zero >"$ART/vmlinux"
	: >"$ART/initrd.img"
	head -c 4096 /dev/urandom >"$ART/rootfs.new" && mv -f "$ART/rootfs.new" "$ART/rootfs.ext4"
}
ROOT=$T/jail/firecracker/$VMID/root
if stage rootfs "$ART/rootfs-fc.json" "$VMID" tamper_all; then
	pass "staging a manifest with a rootfs"
else
	fail "staging a manifest with a rootfs"
	cat "$T/rootfs.err" >&2
fi
check "the files on disk did change after sealing" eval '
	! cmp -s "$ART/vmlinux" "$T/orig.vmlinux" && [ ! -s "$ART/initrd.img" ] &&
	! cmp -s "$ART/rootfs.ext4" "$T/orig.rootfs"'
check "jail kernel is the sealed bytes" cmp "$ROOT/kernel" "$T/orig.vmlinux"
check "jail initrd is the sealed bytes" cmp "$ROOT/initrd" "$T/orig.initrd"
check "jail rootfs is the sealed bytes" cmp "$ROOT/rootfs" "$T/orig.rootfs"
check "jail artifacts and config are root's, 0444" eval '
	for f in kernel initrd rootfs config.json; do
		[ "$(stat -c "%U:%G %a %F" "$ROOT/$f")" = "root:root 444 regular file" ] || exit 1
	done'
check "jail root is root's 0755; rw/ is the VM uid's 0700" eval '
	[ "$(stat -c "%U:%G %a" "$ROOT")" = "root:root 755" ] &&
	[ "$(stat -c "%u:%g %a" "$ROOT/rw")" = "4242:4343 700" ]'
check "jail holds nothing else" eval '
	[ "$(cd "$ROOT" && ls -A | sort | tr "\n" " ")" = "config.json initrd kernel rootfs rw " ]'
check "staged config.json validates against Firecracker's schema" validate "$ROOT/config.json"
check "staged config.json uses chroot paths and the read-only rootfs" python3 - "$ROOT/config.json" <<'EOF'
import json, os, sys
c = json.load(open(sys.argv[1]))
root = os.path.dirname(sys.argv[1])
for p in (c["boot-source"]["kernel_image_path"], c["boot-source"]["initrd_path"],
          c["drives"][0]["path_on_host"]):
    assert p.startswith("/") and os.path.isfile(root + p), p
assert c["drives"][0]["is_read_only"] is True
assert os.path.isdir(root + os.path.dirname(c["vsock"]["uds_path"]))
assert c["vsock"]["guest_cid"] == 7
EOF
expected="argv /usr/bin/jailer
argv --id
argv $VMID
argv --exec-file
argv /usr/bin/firecracker
argv --uid
argv 4242
argv --gid
argv 4343
argv --chroot-base-dir
argv $T/jail
argv --
argv --no-api
argv --config-file
argv /config.json"
check "jailer argv: ids, chroot base, no API socket, the config file" \
	eval '[ "$(cat "$T/rootfs.out")" = "$expected" ]'
refute "a second staging of the same VM id is refused" stage again "$ART/rootfs-fc.json" "$VMID" true
check "the refused staging left the first jail intact" cmp "$ROOT/kernel" "$T/orig.vmlinux"
check "unstage removes the jail" eval '
	"$HARNESS" unstage "$VMID" "$T/jail" && [ ! -e "$T/jail/firecracker/$VMID" ]'

# The test guest's real kernel and initrd, staged under a short VM id.
no_tamper() { :; }
if stage guest "$T/guest-fc.json" vm-1 no_tamper; then
	pass "staging the test guest"
else
	fail "staging the test guest"
	cat "$T/guest.err" >&2
fi
check "staged test guest kernel and initrd are build/guest's" eval '
	cmp "$T/jail/firecracker/vm-1/root/kernel" "$GUEST/vmlinuz" &&
	cmp "$T/jail/firecracker/vm-1/root/initrd" "$GUEST/initrd.img" &&
	[ ! -e "$T/jail/firecracker/vm-1/root/rootfs" ]'
check "staged test guest config validates" validate "$T/jail/firecracker/vm-1/root/config.json"
check "unstage removes the test guest's jail" "$HARNESS" unstage vm-1 "$T/jail"

finish
