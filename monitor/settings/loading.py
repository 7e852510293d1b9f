"""Loading the configuration: which file, its TOML, and errors that name the key and line.

Lookup order for the file: ``--config``, ``$MCAP_CONFIG``, ``./config/mcap-monitor.toml``, then
the copy of that default shipped inside the package.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_settings import SettingsError

from monitor.errors import ConfigError
from monitor.settings.models import Settings

DEFAULT_CONFIG = Path("config") / "mcap-monitor.toml"
PACKAGED_CONFIG = Path(__file__).parent.parent / "data" / "mcap-monitor.toml"


def resolve_config_path(explicit: Path | None) -> Path:
    """Which config file is used, by the documented lookup order."""
    if explicit is not None:
        return explicit
    env = os.environ.get("MCAP_CONFIG")
    if env:
        return Path(env)
    if DEFAULT_CONFIG.is_file():
        return DEFAULT_CONFIG
    return PACKAGED_CONFIG


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file, turning every failure into a ``ConfigError`` that names the file."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(
            "config file not found", str(path), "pass --config FILE or set MCAP_CONFIG"
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot read config file: {exc.strerror}", str(path)) from None
    except UnicodeDecodeError as exc:
        line = text_line(path, exc.start)
        raise ConfigError(
            "config file is not UTF-8 text", f"{path}:{line}", "is this the right file?"
        ) from None
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise ConfigError(
            "config file contains NUL bytes", f"{path}:{line}", "is this the right file?"
        )
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        text = str(exc)
        where = str(path)
        m = re.search(r"\s*\(at line (\d+), column (\d+)\)$", text)
        if m:
            text, where = text[: m.start()], f"{path}:{m.group(1)}:{m.group(2)}"
        raise ConfigError(f"invalid TOML: {text}", where, "fix the syntax") from None


def text_line(path: Path, offset: int) -> int:
    """The 1-based line of byte ``offset`` in the file at ``path``."""
    try:
        return path.read_bytes()[:offset].count(b"\n") + 1
    except OSError:
        return 1


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _named_key(msg: str) -> str | None:
    """The key a table-level error is about, when its message names one first
    (``threshold must be positive``, ``secret: ...``, ``slack sink URL ...``)."""
    if " sink URL " in msg:
        return "url"
    m = re.match(r"^([a-z_]+)\b", msg)
    return m.group(1) if m else None


def _key_position(lines: list[str], loc: tuple[int | str, ...], msg: str = "") -> str:
    """``:line:column`` of the key an error points at: in ``[[table]]`` N or in ``[table]``."""
    if not loc or not isinstance(loc[0], str):
        return ""
    if len(loc) >= 2 and isinstance(loc[1], int):
        header, nth, key = f"[[{loc[0]}]]", loc[1], loc[2] if len(loc) > 2 else None
    else:
        header, nth, key = f"[{loc[0]}]", 0, loc[1] if len(loc) > 1 else None
    if key is None:
        key = _named_key(msg)
    seen = -1
    for number, line in enumerate(lines, 1):
        if line.strip() != header:
            continue
        seen += 1
        if seen != nth:
            continue
        if isinstance(key, str):
            for sub in range(number, len(lines)):
                text = lines[sub]
                if text.strip().startswith("["):
                    break
                if text.split("=", 1)[0].strip() == key:
                    return f":{sub + 1}:{text.index(key) + 1}"
        return f":{number}:1"
    return ""


def _value_position(lines: list[str], msg: str) -> str:
    """``:line:column`` of the value a cross-check error quotes (unknown symbol, duplicate id)."""
    quoted = re.findall(r"'([^']+)'", msg)
    if not quoted:
        return ""
    value = quoted[-1]
    hits = []
    for number, line in enumerate(lines, 1):
        rhs = line.split("=", 1)[1] if "=" in line else ""
        for form in (f'"{value}"', f"'{value}'"):
            if rhs.strip().startswith(form) or f"[{form}" in rhs or f", {form}" in rhs:
                hits.append(f":{number}:{line.index(form) + 1}")
                break
    if not hits:
        return ""
    return hits[-1] if msg.startswith("duplicate") else hits[0]


def _where(path: Path, loc: tuple[int | str, ...], msg: str) -> str:
    """Where an error is: the environment variable that set the key, else file:line:column."""
    names = [str(p).upper() for p in loc]
    for end in range(len(names), 0, -1):
        name = "MCAP_" + "__".join(names[:end])
        if name in os.environ:
            return f"environment variable {name}"
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        return str(path)
    return f"{path}{_key_position(lines, loc, msg) or _value_position(lines, msg)}"


def load_settings(path: Path | None = None) -> tuple[Settings, Path]:
    """Load and validate the configuration; raise ``ConfigError`` naming the key and file."""
    resolved = resolve_config_path(path)
    data = read_toml(resolved)
    try:
        return Settings(**data), resolved
    except SettingsError as exc:
        m = re.search(r'field "(\w+)"', str(exc))
        name = "MCAP_" + (m.group(1).upper() if m else "*")
        raise ConfigError(
            f"{name} is not valid JSON",
            f"environment variable {name}",
            "complex values (lists, tables) are JSON, e.g. "
            'MCAP_SYMBOLS=\'[{"symbol": "1810.HK", "shares": 1}]\'',
        ) from None
    except ValidationError as exc:
        errors = exc.errors(include_url=False, include_input=False)
        err = errors[0]
        loc = tuple(err.get("loc", ()))
        key = _loc(loc)
        # a cross-check reports all its problems at once, one a line (settings.checks)
        problems = [
            str(e.get("msg", "invalid value")).removeprefix("Value error, ").count("\n") + 1
            for e in errors
        ]
        msg = str(err.get("msg", "invalid value")).removeprefix("Value error, ").split("\n")[0]
        if err.get("type") == "extra_forbidden":
            msg = "unknown key"
            hint = "remove it or check its spelling against the configuration reference in README"
        else:
            hint = "fix the value"
        what = f"invalid config: {key}: {msg}" if key else f"invalid config: {msg}"
        more = sum(problems) - 1
        if more:
            what += f" (and {more} more error{'s' if more > 1 else ''})"
        raise ConfigError(what, _where(resolved, loc, msg), hint) from None
