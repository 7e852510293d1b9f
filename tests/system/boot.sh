#!/usr/bin/env bash
# boot.sh: run by tests/system/conftest.py inside `unshare --mount --propagation private`.
# Adapted from the systemd-check recipe (run.sh/boot.sh) the issue #13 investigation used.
#
# Builds the container's root as a copy-on-write overlay of the host's / (the lower layer, never
# written) with a tmpfs upper layer (every write lands in RAM), adds the webhook receiver unit
# and a minimal boot target, then exec()s systemd-nspawn, which boots the host's own systemd as
# PID 1 of the container. The project is NOT installed here: the test runs systemd/install.sh
# inside the booted container, as a user would. Every mount made here lives in this private
# mount namespace only: the kernel drops them all when the last process in it (nspawn) exits.
#
# Exit codes before the exec: 2 = this machine cannot do it (mounts). After the exec the exit
# code is nspawn's (0 after a clean poweroff).
set -euo pipefail
for v in ST_TMP ST_NSPAWN ST_HERE ST_MACHINE ST_HOOK_PORT; do
  [ -n "${!v:-}" ] || { echo "boot.sh: $v is not set (run by tests/system/conftest.py)"; exit 2; }
done
ROOT=$ST_TMP/root
die() { echo "boot.sh: $2"; exit "$1"; }

echo "== overlay root"
mkdir -p "$ST_TMP/rw" "$ROOT"
mount -t tmpfs -o size=4g,mode=0755 mcap-system-rw "$ST_TMP/rw" || die 2 "cannot mount a tmpfs"
mkdir "$ST_TMP/rw/upper" "$ST_TMP/rw/work"
mount -t overlay mcap-system-root \
      -o "lowerdir=/,upperdir=$ST_TMP/rw/upper,workdir=$ST_TMP/rw/work" "$ROOT" \
  || die 2 "cannot mount an overlay with / as its lower layer"

echo "== a receiver unit and a boot target"
# A host that already runs the project must not leak its install into the container.
rm -rf "$ROOT/opt/mcap-monitor" "$ROOT/etc/mcap-monitor" "$ROOT/etc/systemd/system/mcap-monitor.service"* \
       "$ROOT/var/lib/mcap-monitor" "$ROOT/var/lib/private/mcap-monitor"
install -d "$ROOT/usr/local/lib/mcap-system-test"
install -m 0644 "$ST_HERE/receiver.py" "$ROOT/usr/local/lib/mcap-system-test/receiver.py"
cat > "$ROOT/etc/systemd/system/mcap-test-receiver.service" <<UNIT
[Unit]
Description=mcap-monitor system test: webhook receiver
[Service]
ExecStart=/usr/bin/python3 /usr/local/lib/mcap-system-test/receiver.py $ST_HOOK_PORT /var/tmp/mcap-capture/captured.jsonl
UNIT
# Boot only what the test needs (basic.target and the receiver): faster than multi-user.target
# and free of units that fail in a container (gettys, network managers, the host's services).
cat > "$ROOT/etc/systemd/system/mcap-test.target" <<UNIT
[Unit]
Description=mcap-monitor system test: boot target
Requires=basic.target
Wants=mcap-test-receiver.service
After=basic.target mcap-test-receiver.service
AllowIsolate=yes
UNIT
# An empty machine-id: systemd makes a transient one, so the container never shares the
# host's identity (nor, through it, a journal directory).
rm -f "$ROOT/etc/machine-id"
: > "$ROOT/etc/machine-id"

echo "== booting systemd-nspawn"
# nspawn keeps bookkeeping under /run/systemd/nspawn; a private /run keeps it off the host's.
mount -t tmpfs -o mode=0755 mcap-system-run /run
# --register=no / --keep-unit: no machined or host systemd needed, no scope unit made.
# --private-network: only a loopback device; the daemon and the receiver meet on it, and
#   nothing the container does reaches the host's network or ports.
# --link-journal=no: the container's journal stays in the overlay, never under the host's
#   /var/log/journal.
# The binds: the project's source (install.sh runs from it), its wheelhouse, the test's
# config and secrets (read only), and the receiver's capture file (written).
exec "$ST_NSPAWN" --register=no --keep-unit --private-network --link-journal=no \
     --console=pipe --machine="$ST_MACHINE" --directory="$ROOT" \
     --bind-ro="$ST_TMP/src:/var/tmp/mcap-src" \
     --bind-ro="$ST_TMP/wheels:/var/tmp/mcap-wheels" \
     --bind-ro="$ST_TMP/inputs:/var/tmp/mcap-inputs" \
     --bind="$ST_TMP/capture:/var/tmp/mcap-capture" \
     --boot systemd.unit=mcap-test.target systemd.log_level=info < /dev/null
