#!/usr/bin/env bash
# The test guest (docs/guest-image.md): scripts/build-guest builds or reuses
# build/guest, a rebuild with unchanged inputs is a no-op, and the image
# boots under QEMU's microvm machine with TCG (never KVM here: nested KVM
# hangs), prints its marker exactly once and sees the agent's virtio port.
# A second image with a stand-in agent shows /init runs /bin/warrant-agent.
. "$(dirname "$0")/common.sh"

REPO=$(cd "$(dirname "$0")/../.." && pwd)
GUEST=$REPO/build/guest
BOOT_TIMEOUT=${GUEST_BOOT_TIMEOUT:-90}
QEMU_PID=""

cleanup_guest() {
	if [ -n "$QEMU_PID" ]; then
		kill "$QEMU_PID" 2>/dev/null
		wait "$QEMU_PID" 2>/dev/null
	fi
	cleanup
}
trap cleanup_guest EXIT

if ! command -v qemu-system-x86_64 >/dev/null 2>&1; then
	skip "guest image (qemu-system-x86_64 is not installed; scripts/install-deps)"
	finish
fi

# boot NAME KERNEL INITRD CMDLINE: boot under QEMU/TCG with the same devices
# vmhost gives a guest (virtio console, one named virtio-serial port), the
# console in $T/NAME.out; the status of the QEMU run in $T/NAME.rc (124 on
# timeout).
boot() {
	local name=$1 kernel=$2 initrd=$3 cmdline=$4
	mkdir -p "$T/$name"
	timeout --kill-after=5 "$BOOT_TIMEOUT" qemu-system-x86_64 \
		-M microvm,x-option-roms=off,rtc=off,isa-serial=off \
		-nodefaults -no-user-config -nographic -no-reboot -accel tcg -m 256 \
		-kernel "$kernel" -initrd "$initrd" -append "$cmdline" \
		-device virtio-serial-device \
		-chardev stdio,id=con0 -device virtconsole,chardev=con0 \
		-chardev "socket,id=agent,path=$T/$name/agent.sock,server=on,wait=off" \
		-device virtserialport,chardev=agent,name=org.warrant.agent.0 \
		</dev/null >"$T/$name.out" 2>"$T/$name.err" &
	QEMU_PID=$!
	wait "$QEMU_PID"
	echo $? >"$T/$name.rc"
	QEMU_PID=""
	tr -d '\r' <"$T/$name.out" >"$T/$name.console"
}

manifest_field() {
	python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))[sys.argv[2]])' "$1" "$2"
}

if "$REPO/scripts/build-guest" >>"$T/check.log" 2>&1; then
	pass "scripts/build-guest builds or reuses build/guest"
else
	fail "scripts/build-guest builds or reuses build/guest (see below)"
	tail -n 20 "$T/check.log" >&2
	finish
fi

check "vmlinuz, initrd.img and manifest.json are regular files" eval '
	for f in vmlinuz initrd.img manifest.json; do
		[ -f "$GUEST/$f" ] && [ ! -L "$GUEST/$f" ] || exit 1
	done'
check "manifest.json names the image with paths relative to its folder" python3 - "$GUEST/manifest.json" <<'EOF'
import json, sys
m = json.load(open(sys.argv[1]))
assert sorted(m) == sorted(["name", "kernel", "initrd", "cmdline", "vcpus",
                            "memory_mib", "vmm", "envelope"]), sorted(m)
assert m["name"] == "test-guest" and m["kernel"] == "vmlinuz"
assert m["initrd"] == "initrd.img" and m["vmm"] == "qemu"
assert m["vcpus"] == 1 and m["memory_mib"] == 256 and m["envelope"] == {}
assert "console=hvc0" in m["cmdline"].split() and "rdinit=/init" in m["cmdline"].split()
EOF

check "initramfs carries /init, static busybox and the virtio modules in order" eval '
	zcat "$GUEST/initrd.img" | (cd "$T" && mkdir -p unpacked && cd unpacked &&
		cpio -i -d --quiet --no-absolute-filenames) &&
	[ -x "$T/unpacked/init" ] && [ -x "$T/unpacked/bin/busybox" ] &&
	[ "$(head -c 4 "$T/unpacked/bin/busybox" | od -An -c | tr -d " ")" = "177ELF" ] &&
	for m in virtio virtio_ring virtio_mmio virtio_console; do
		[ -f "$T/unpacked/lib/modules/$m.ko" ] || exit 1
	done &&
	[ "$(grep -n -x -e virtio_ring -e virtio -e virtio_mmio -e virtio_console \
		"$T/unpacked/lib/modules/order" | cut -d: -f2 | tr "\n" " ")" = \
		"virtio_ring virtio virtio_mmio virtio_console " ]'
check "initramfs files are owned by root" eval '
	zcat "$GUEST/initrd.img" | cpio -t -v --quiet 2>/dev/null |
		awk "\$3 != \"root\" || \$4 != \"root\" { bad = 1 } END { exit bad }"'

before=$(stat -c '%Y %s' "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/manifest.json")
if "$REPO/scripts/build-guest" >"$T/rebuild.log" 2>&1 && grep -q 'up to date' "$T/rebuild.log" &&
	[ "$(stat -c '%Y %s' "$GUEST/vmlinuz" "$GUEST/initrd.img" "$GUEST/manifest.json")" = "$before" ]; then
	pass "a rebuild with unchanged inputs is a no-op"
else
	fail "a rebuild with unchanged inputs is a no-op"
fi

cmdline=$(manifest_field "$GUEST/manifest.json" cmdline)
boot guest "$GUEST/vmlinuz" "$GUEST/initrd.img" "$cmdline"
rc=$(cat "$T/guest.rc")
if [ "$rc" -eq 0 ]; then
	pass "guest boots under QEMU/TCG and powers itself off (within ${BOOT_TIMEOUT} s)"
else
	fail "guest boots under QEMU/TCG and powers itself off (qemu status $rc)"
	tail -n 20 "$T/guest.console" "$T/guest.err" >&2
fi
check "console shows the marker line exactly once" \
	eval '[ "$(grep -c -x WARRANT-GUEST-UP "$T/guest.console")" -eq 1 ]'
check "guest sees the virtio-serial port org.warrant.agent.0" \
	grep -q -x 'virtio-port vport[0-9]*p[0-9]* org.warrant.agent.0' "$T/guest.console"
check "no module failed to load" eval '! grep -q "insmod failed\|neither loaded" "$T/guest.console"'

# A stand-in agent (a shell script: the image has busybox sh) in a separate
# output folder, so that build/guest and a real agent stay untouched.
mkdir -p "$T/agent-guest"
cat >"$T/agent-guest/warrant-agent" <<'EOF'
#!/bin/sh
echo "AGENT-RAN $(cat /sys/class/virtio-ports/vport0p1/name)"
EOF
chmod 0755 "$T/agent-guest/warrant-agent"
if "$REPO/scripts/build-guest" --out "$T/agent-guest" >>"$T/check.log" 2>&1; then
	boot agent "$T/agent-guest/vmlinuz" "$T/agent-guest/initrd.img" "$cmdline"
	check "init runs /bin/warrant-agent when the image has one" \
		grep -q -x 'AGENT-RAN org.warrant.agent.0' "$T/agent.console"
	check "the guest powers off after the agent exits" eval '[ "$(cat "$T/agent.rc")" -eq 0 ]'
	check "an image with an agent has a different initrd" \
		eval '! cmp -s "$GUEST/initrd.img" "$T/agent-guest/initrd.img"'
	check "the kernel of both images is the same" cmp -s "$GUEST/vmlinuz" "$T/agent-guest/vmlinuz"
else
	fail "scripts/build-guest --out builds an image with an agent"
fi

finish
