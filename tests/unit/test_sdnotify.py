"""sd_notify over a real datagram socket, path and abstract namespace."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from monitor.daemon.sdnotify import SystemdNotifier, socket_address, watchdog_interval


@pytest.fixture
def path_socket(tmp_path: Path) -> Iterator[tuple[str, socket.socket]]:
    where = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(where)
    sock.settimeout(5)
    yield where, sock
    sock.close()


@pytest.fixture
def abstract_socket() -> Iterator[tuple[str, socket.socket]]:
    name = f"mcap-test-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(5)
    yield "@" + name, sock
    sock.close()


def test_abstract_addresses_start_with_a_nul_byte() -> None:
    assert socket_address("@sd-notify") == "\0sd-notify"
    assert socket_address("/run/systemd/notify") == "/run/systemd/notify"
    assert socket_address("vsock:2:1234") is None
    assert socket_address("@") is None


def test_ready_and_status_arrive_in_one_datagram(path_socket: tuple[str, socket.socket]) -> None:
    where, sock = path_socket
    notifier = SystemdNotifier(where)
    assert notifier.ready("1810.HK HK$1.081T, 3 rules, 0 pending")
    assert sock.recv(4096) == b"READY=1\nSTATUS=1810.HK HK$1.081T, 3 rules, 0 pending"
    notifier.close()


def test_abstract_namespace_socket_receives_watchdog_and_stopping(
    abstract_socket: tuple[str, socket.socket],
) -> None:
    where, sock = abstract_socket
    notifier = SystemdNotifier(where)
    assert notifier.watchdog()
    assert sock.recv(4096) == b"WATCHDOG=1"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    notifier.close()


def test_reloading_carries_the_monotonic_time(path_socket: tuple[str, socket.socket]) -> None:
    where, sock = path_socket
    notifier = SystemdNotifier(where)
    notifier.reloading()
    notifier.close()
    fields = sock.recv(4096).decode().split("\n")
    assert fields[0] == "RELOADING=1"
    assert fields[1].startswith("MONOTONIC_USEC=") and int(fields[1].split("=")[1]) > 0


def test_a_newline_in_a_status_cannot_inject_another_field(
    path_socket: tuple[str, socket.socket],
) -> None:
    where, sock = path_socket
    notifier = SystemdNotifier(where)
    notifier.status("line one\nREADY=1")
    notifier.close()
    assert sock.recv(4096) == b"STATUS=line one READY=1"


def test_without_notify_socket_everything_is_a_silent_no_op(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    notifier = SystemdNotifier()
    assert not notifier.enabled
    assert notifier.ready() is False
    assert notifier.watchdog() is False


def test_a_vanished_manager_socket_is_not_an_error(tmp_path: Path) -> None:
    notifier = SystemdNotifier(str(tmp_path / "gone.sock"))
    assert notifier.watchdog() is False


def test_watchdog_interval_is_half_of_watchdog_usec() -> None:
    assert watchdog_interval({"WATCHDOG_USEC": "20000000"}) == 10.0
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "42"}, pid=42) == 10.0


def test_watchdog_for_another_process_or_garbage_is_ignored() -> None:
    assert watchdog_interval({}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "20000000", "WATCHDOG_PID": "1"}, pid=42) is None
    assert watchdog_interval({"WATCHDOG_USEC": "soon"}) is None
    assert watchdog_interval({"WATCHDOG_USEC": "0"}) is None
