"""A real systemd (PID 1 in a throw-away systemd-nspawn container) for tests/system/.

Adapted from the systemd-check recipe of issue #13. How, and why each step is needed:

- systemd-nspawn comes from Debian's systemd-container package at exactly the installed
  systemd's version (it links against that package's libsystemd-shared), fetched with
  ``apt-get download`` and unpacked with ``dpkg -x`` (no package on the host changes), cached in
  ~/.cache/mcap-monitor-tests/ by version. The container boots the host's own systemd.
- Wheels are built by a venv of Debian's /usr/bin/python3: the service's venv must use that
  interpreter (the unit's sandbox cannot reach one under /root), and dependency resolution
  depends on the interpreter. pip's cache lives in ~/.cache/mcap-monitor-tests/pip.
- boot.sh makes the root an overlay of / with a tmpfs upper layer inside ``unshare --mount``:
  the host's / is never written, and the kernel drops every mount with the namespace.
- nspawn runs in a cgroup of this test's own (nspawn puts payload/ and supervisor/ under it),
  removed at teardown; SIGKILL through ``cgroup.kill`` is the last resort. Only processes this
  fixture started are signalled.
- Inside, ``systemd/install.sh`` (the README's install steps) installs the wheel, the test's
  config (tape mode, a signed webhook to a receiver unit on the container's private loopback)
  and its secret (LoadCredential=), then ``systemctl enable --now``.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from needs import missing

REPO = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
CACHE = Path.home() / ".cache" / "mcap-monitor-tests"
UNIT = "mcap-monitor.service"
CONF = "/etc/mcap-monitor/mcap-monitor.toml"
HOOK_PORT = 18080
# The test shortens the watchdog (the unit's 60 s would make the freeze check take minutes);
# the unit file itself is installed byte for byte by install.sh.
WATCHDOG_SEC = 10
ENV_IN = ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LANG=C.UTF-8"]
ENV_IN += ["HOME=/root", "SYSTEMD_COLORS=0", "PIP_CONFIG_FILE=/dev/null"]
ENV_IN += ["PIP_DISABLE_PIP_VERSION_CHECK=1"]


def _run(args: list[str], timeout: float, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, check=False, **kw)  # type: ignore[call-overload, no-any-return]


def wait_for(cond: Callable[[], bool], timeout: float, step: float = 0.5) -> bool:
    """Poll ``cond`` until it holds or ``timeout`` seconds pass."""
    until = time.monotonic() + timeout
    while True:
        if cond():
            return True
        if time.monotonic() >= until:
            return False
        time.sleep(step)


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(") ")[2].split()[0] != "Z"


def _preflight() -> str:
    """The systemd version, or skip (fail on CI) saying what this machine lacks."""
    if os.geteuid() != 0:
        missing("systemd", "needs root (mount namespaces, overlayfs, systemd-nspawn)")
    for cmd in ("unshare", "nsenter", "mount", "apt-get", "dpkg", "dpkg-query", "pgrep", "jq"):
        if shutil.which(cmd) is None:
            missing("systemd", f"missing command {cmd!r} (apt-get install {cmd})")
    if not Path("/lib/systemd/systemd").exists():
        missing("systemd", "no /lib/systemd/systemd to boot in the container")
    found = _run(["dpkg-query", "-W", "-f=${Version}", "systemd"], 30)
    if found.returncode != 0 or not found.stdout:
        missing("systemd", "systemd is not installed as a Debian package (dpkg-query -W systemd)")
    probe = _run(["/usr/bin/python3", "-c", "import ensurepip, tomllib, venv"], 30)
    if probe.returncode != 0:
        missing("systemd", "needs Debian's /usr/bin/python3 >= 3.11 with venv (python3-venv)")
    return found.stdout.strip()


def _nspawn(version: str, tmp: Path) -> Path:
    """systemd-nspawn at exactly ``version``: the installed one, else unpacked (cached)."""
    have = _run(["dpkg-query", "-W", "-f=${Version}", "systemd-container"], 30)
    if have.stdout.strip() == version and Path("/usr/bin/systemd-nspawn").exists():
        return Path("/usr/bin/systemd-nspawn")
    root = CACHE / f"systemd-container_{version}"
    binary = root / "usr" / "bin" / "systemd-nspawn"
    if not binary.exists():
        debs = tmp / "debs"
        debs.mkdir()
        apt = ["apt-get", "-q", "-o", "APT::Sandbox::User=root", "-o", "Dir::Cache::pkgcache="]
        apt += ["-o", "Dir::Cache::srcpkgcache="]
        got = _run([*apt, "download", f"systemd-container={version}"], 180, cwd=debs)
        if got.returncode != 0:
            _run([*apt, "update"], 240)
            got = _run([*apt, "download", f"systemd-container={version}"], 180, cwd=debs)
        if got.returncode != 0:
            missing("systemd", f"apt-get download systemd-container={version}: {got.stderr[-300:]}")
        CACHE.mkdir(parents=True, exist_ok=True)
        part = Path(f"{root}.part{os.getpid()}")
        shutil.rmtree(part, ignore_errors=True)
        (deb,) = debs.glob("systemd-container_*.deb")
        unpacked = _run(["dpkg", "-x", str(deb), str(part)], 120)
        assert unpacked.returncode == 0, unpacked.stderr
        part.rename(root)
    works = _run([str(binary), "--version"], 30)
    if works.returncode != 0:
        missing("systemd", f"{binary} does not run here: {works.stderr.strip()[:200]}")
    return binary


def _overlay_possible(tmp: Path) -> None:
    probe = tmp / "probe"
    probe.mkdir()
    script = (
        'mount -t tmpfs probe "$1" && mkdir "$1/u" "$1/w" "$1/m" && '
        'mount -t overlay probe -o "lowerdir=/,upperdir=$1/u,workdir=$1/w" "$1/m"'
    )
    done = _run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh", str(probe)], 60
    )
    if done.returncode != 0:
        missing("systemd", f"cannot mount an overlay of / in a mount namespace: {done.stderr}")
    probe.rmdir()


def _make_cgroups(tag: str) -> list[Path]:
    """A cgroup of our own in each hierarchy nspawn writes to (cgroup2, name=systemd)."""
    made: list[Path] = []
    own = Path("/proc/self/cgroup").read_text().splitlines()
    for line in Path("/proc/self/mounts").read_text().splitlines():
        _, mnt, kind, opts, *_ = line.split()
        if kind == "cgroup2":
            rel = next((c[3:] for c in own if c.startswith("0::")), None)
        elif kind == "cgroup" and "name=systemd" in opts.split(","):
            rel = next((c.split(":", 2)[2] for c in own if ":name=systemd:" in c), None)
        else:
            continue
        if rel is None:
            continue
        d = Path(mnt + rel.rstrip("/")) / tag
        try:
            d.mkdir()
        except OSError as exc:
            for done in made:
                done.rmdir()
            missing("systemd", f"cannot create the cgroup {d}: {exc.strerror}")
        made.append(d)
    if not made:
        missing("systemd", "no cgroup2 or name=systemd cgroup hierarchy mounted")
    return made


def _wheels(tmp: Path) -> None:
    """The project (tracked and untracked files, never ignored ones) and its dependencies."""
    files = _run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], 60, cwd=REPO
    )
    assert files.returncode == 0, files.stderr
    for name in filter(None, files.stdout.split("\0")):
        src = REPO / name
        if src.is_file():
            dst = tmp / "src" / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    made = _run(["/usr/bin/python3", "-m", "venv", str(tmp / "builder")], 120)
    assert made.returncode == 0, made.stderr
    env = {**os.environ, "PIP_CACHE_DIR": str(CACHE / "pip"), "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    built = _run(
        [str(tmp / "builder/bin/pip"), "wheel", "-q", "-w", str(tmp / "wheels"), str(tmp / "src")],
        420,
        env=env,
    )
    assert built.returncode == 0, f"pip wheel of the project failed: {built.stderr[-2000:]}"


def _inputs(tmp: Path, tape: str) -> str:
    """The test's config (the project's default, with a tape source and a signed webhook whose
    secret is a credential), a broken one, and the secret. Returns the secret."""
    replaced = {"sinks", "source", "daemon"}
    kept, keep = [], True
    for line in (REPO / "config" / "mcap-monitor.toml").read_text(encoding="utf-8").splitlines():
        head = line.strip()
        if head.startswith("["):
            keep = head.strip("[]").split(".")[0].strip() not in replaced
        if keep:
            kept.append(line)
    text = "\n".join(kept).rstrip() + (
        "\n\n# --- added by tests/system ---\n"
        f'[[sinks]]\nid = "hook"\ntype = "webhook"\nurl = "http://127.0.0.1:{HOOK_PORT}/hook"\n'
        'secret_credential = "webhook-secret"\n\n'
        f'[source]\nkind = "tape"\npath = "{tape}"\n\n[daemon]\npoll_interval = 5\njitter = 0\n'
    )
    tomllib.loads(text)
    inputs = tmp / "inputs"
    (inputs / "credentials").mkdir(parents=True)
    (inputs / "mcap-monitor.toml").write_text(text, encoding="utf-8")
    (inputs / "broken.toml").write_text(
        text.replace("poll_interval = 5", "poll_interval = -5"), encoding="utf-8"
    )
    secret = "whsec_" + base64.b64encode(os.urandom(24)).decode()
    (inputs / "credentials" / "webhook-secret").write_text(secret + "\n", encoding="utf-8")
    (inputs / "watchdog.conf").write_text(f"[Service]\nWatchdogSec={WATCHDOG_SEC}\n")
    return secret


@dataclass
class Container:
    """A booted container: commands in it, the unit's properties, and its teardown."""

    tmp: Path
    cgroups: list[Path]
    nspawn: subprocess.Popen[bytes]
    pid1: int = 0
    secret: str = ""
    install: subprocess.CompletedProcess[str] | None = None
    left: dict[str, int] = field(default_factory=dict)
    torn: str = ""

    def run(self, *args: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        """A command inside the container (its namespaces, a clean environment)."""
        ns = ["nsenter", "-t", str(self.pid1), "-m", "-u", "-i", "-n", "-p", "-C", "--"]
        return _run([*ns, "/usr/bin/env", "-i", *ENV_IN, *args], timeout)

    def sh(self, script: str, timeout: float = 30) -> subprocess.CompletedProcess[str]:
        return self.run("/bin/bash", "-o", "pipefail", "-c", script, timeout=timeout)

    def prop(self, name: str, unit: str = UNIT) -> str:
        return self.run("systemctl", "show", "--timestamp=us+utc", "-P", name, unit).stdout.strip()

    def unit_output(self) -> list[str]:
        """What the unit's own processes wrote to the journal (not systemd's lines about it)."""
        got = self.run("journalctl", f"_SYSTEMD_UNIT={UNIT}", "-o", "cat", "--no-pager")
        return [line for line in got.stdout.splitlines() if line.strip()]

    def cgroup_pids(self) -> list[int]:
        pids: set[int] = set()
        for d in self.cgroups:
            for procs in d.rglob("cgroup.procs") if d.exists() else ():
                with contextlib.suppress(OSError):
                    pids |= {int(p) for p in procs.read_text().split()}
        return sorted(pids)

    def teardown(self) -> None:
        """Power off, then SIGTERM nspawn, then SIGKILL the cgroup; remove the cgroups and
        record what was left (idempotent)."""
        if self.torn:
            return
        how = []
        if self.nspawn.poll() is None and self.pid1 and _alive(self.pid1):
            # the container's journal dies with its overlay: keep a copy for a failure's reader
            with contextlib.suppress(subprocess.TimeoutExpired):
                journal = self.run("journalctl", "-b", "-o", "short-precise", timeout=30)
                (self.tmp / "logs" / "journal.txt").write_text(journal.stdout)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.run("systemctl", "poweroff", "--no-block", timeout=10)
            how.append("powered off")
            wait_for(lambda: self.nspawn.poll() is not None, 40)
        if self.nspawn.poll() is None:
            how.append("SIGTERM to nspawn")
            self.nspawn.send_signal(signal.SIGTERM)
            wait_for(lambda: self.nspawn.poll() is not None, 15)
        if self.cgroup_pids():
            how.append("SIGKILL to its cgroup")
            for d in self.cgroups:
                if (d / "cgroup.kill").exists():
                    (d / "cgroup.kill").write_text("1")
            if not wait_for(lambda: not self.cgroup_pids(), 10):
                for pid in self.cgroup_pids():
                    os.kill(pid, signal.SIGKILL)
                wait_for(lambda: not self.cgroup_pids(), 10)
        if self.nspawn.poll() is None:
            self.nspawn.kill()
        rc = self.nspawn.wait(timeout=30)
        for d in self.cgroups:
            for sub in [*sorted((p for p in d.rglob("*") if p.is_dir()), reverse=True), d]:
                with contextlib.suppress(OSError):
                    sub.rmdir()
        mounts = [
            m
            for m in Path("/proc/self/mountinfo").read_text().splitlines()
            if m.split()[4].startswith(str(self.tmp))
        ]
        self.left = {
            "processes": len(self.cgroup_pids()),
            "cgroups": sum(d.exists() for d in self.cgroups),
            "mounts": len(mounts),
        }
        self.torn = f"{', then '.join(how) or 'already gone'} (nspawn exit {rc})"


@pytest.fixture(scope="module")
def container(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Container]:
    """Boot the container and run systemd/install.sh in it; power it off afterwards."""
    version = _preflight()
    tmp = tmp_path_factory.mktemp("systemd")
    for sub in ("logs", "wheels", "src", "capture"):
        (tmp / sub).mkdir()
    _overlay_possible(tmp)
    nspawn = _nspawn(version, tmp)
    _wheels(tmp)
    host_py = _run(
        ["/usr/bin/python3", "-c", "import sys; print(*sys.version_info[:2], sep='.')"], 30
    ).stdout.strip()
    py = f"python{host_py}"
    (tape,) = (REPO / "monitor" / "data").glob("*.csv")
    site = f"/opt/mcap-monitor/venv/lib/{py}/site-packages"
    secret = _inputs(tmp, f"{site}/monitor/data/{tape.name}")
    cgroups = _make_cgroups(f"mcap-systemd-test.{os.getpid()}")
    env = {
        "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"),
        "LANG": "C.UTF-8",
        "ST_TMP": str(tmp),
        "ST_NSPAWN": str(nspawn),
        "ST_HERE": str(HERE),
        "ST_MACHINE": "mcap-system-test",
        "ST_HOOK_PORT": str(HOOK_PORT),
    }
    enter = 'for d in "$@"; do echo $$ > "$d/cgroup.procs" || exit 2; done; '
    enter += 'exec unshare --mount --propagation private bash "$ST_HERE/boot.sh"'
    with (tmp / "logs" / "boot.log").open("wb") as log:
        proc = subprocess.Popen(
            ["bash", "-c", enter, "bash", *map(str, cgroups)],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    box = Container(tmp=tmp, cgroups=cgroups, nspawn=proc, secret=secret)
    try:
        yield _boot_and_install(box)
    finally:
        box.teardown()


def _boot_and_install(box: Container) -> Container:
    def pid1() -> bool:
        got = _run(["pgrep", "-P", str(box.nspawn.pid), "-x", "systemd"], 10)
        box.pid1 = int(got.stdout.split()[0]) if got.stdout.split() else 0
        return box.pid1 != 0 or box.nspawn.poll() is not None

    wait_for(pid1, 120)
    boot_log = (box.tmp / "logs" / "boot.log").read_text(errors="replace")
    if box.nspawn.poll() == 2:
        missing("systemd", (boot_log.strip().splitlines() or ["boot.sh: exit 2"])[-1])
    assert box.pid1, f"no container PID 1: {boot_log[-2000:]}"

    def booted() -> bool:
        state = box.run("systemctl", "is-system-running", timeout=10).stdout.strip()
        return state in ("running", "degraded")

    assert wait_for(booted, 90), "systemd in the container did not finish booting"
    receiver = f"exec 3<>/dev/tcp/127.0.0.1/{HOOK_PORT}"
    assert wait_for(lambda: box.sh(receiver, 10).returncode == 0, 30), "no webhook receiver"
    dropins = "/etc/systemd/system/mcap-monitor.service.d"
    box.sh(f"install -d {dropins} && cp /var/tmp/mcap-inputs/watchdog.conf {dropins}/test.conf")
    box.install = box.run(
        "MCAP_PACKAGE=mcap-monitor",
        "MCAP_PIP_OPTIONS=--no-index --find-links /var/tmp/mcap-wheels",
        "MCAP_CONFIG=/var/tmp/mcap-inputs/mcap-monitor.toml",
        "MCAP_CREDENTIALS=/var/tmp/mcap-inputs/credentials",
        "/var/tmp/mcap-src/systemd/install.sh",
        timeout=240,
    )
    (box.tmp / "logs" / "install.log").write_text(box.install.stdout + box.install.stderr)
    return box
