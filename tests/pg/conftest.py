"""A real PostgreSQL server for the test session (Debian's binaries), a fresh database per test.

``initdb`` into a temp dir owned by the ``postgres`` user (the server refuses root), listening
only on a Unix socket in that dir; stopped and removed afterwards.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from needs import missing


def _bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    return Path(found[-1]).parent if found else None


def _as_user(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """The socket directory of a running server (user ``postgres`` when run as root)."""
    bindir = _bindir()
    if bindir is None:
        missing("postgres", "no /usr/lib/postgresql/*/bin/pg_ctl (apt install postgresql)")
    user: str | None = None
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            missing("postgres", "running as root and there is no postgres user to run the server")
        user = "postgres"
    top = Path(tempfile.mkdtemp(prefix="mcap-pg-"))
    data = top / "data"
    if user:
        shutil.chown(top, user)
    os.chmod(top, 0o755)
    run = _as_user(user)
    subprocess.run(
        [
            *run,
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    opts = f"-c listen_addresses='' -c unix_socket_directories={top} -c fsync=off"
    subprocess.run(
        [
            *run,
            str(bindir / "pg_ctl"),
            "-D",
            str(data),
            "-w",
            "-t",
            "60",
            "-o",
            opts,
            "-l",
            str(top / "log"),
            "start",
        ],
        check=True,
        capture_output=True,
        timeout=90,
    )
    try:
        yield str(top)
    finally:
        subprocess.run(
            [
                *run,
                str(bindir / "pg_ctl"),
                "-D",
                str(data),
                "-m",
                "immediate",
                "-w",
                "-t",
                "30",
                "stop",
            ],
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(top, ignore_errors=True)


@pytest.fixture
def pg_url(pg_server: str) -> str:
    """A fresh, empty database on the session's server, as a ``[store] url``."""
    import psycopg

    name = "t_" + uuid.uuid4().hex[:12]
    with psycopg.connect(f"postgresql://postgres@/postgres?host={pg_server}", autocommit=True) as c:
        c.execute(f"CREATE DATABASE {name}")
    return f"postgresql://postgres@/{name}?host={pg_server}"
