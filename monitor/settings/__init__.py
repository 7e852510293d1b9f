"""Configuration: TOML file, then ``MCAP_`` environment variables, validated once and frozen.

Lookup order for the file: ``--config``, ``$MCAP_CONFIG``, ``./config/mcap-monitor.toml``, then
the copy of that default shipped inside the package. The models live in ``models``, finding,
reading and error reporting in ``loading``; every name is importable from here.
"""

from __future__ import annotations

from monitor.settings.loading import (
    DEFAULT_CONFIG,
    PACKAGED_CONFIG,
    load_settings,
    read_toml,
    resolve_config_path,
)
from monitor.settings.models import (
    MESSAGE_KINDS,
    Currency,
    DaemonConfig,
    FxConfig,
    HealthConfig,
    Num,
    RankingConfig,
    RuleConfig,
    Settings,
    SharesChange,
    SinkConfig,
    SinkType,
    SourceConfig,
    SymbolConfig,
)
from monitor.settings.store import StoreConfig

__all__ = [
    "DEFAULT_CONFIG",
    "MESSAGE_KINDS",
    "PACKAGED_CONFIG",
    "Currency",
    "DaemonConfig",
    "FxConfig",
    "HealthConfig",
    "Num",
    "RankingConfig",
    "RuleConfig",
    "Settings",
    "SharesChange",
    "SinkConfig",
    "SinkType",
    "SourceConfig",
    "StoreConfig",
    "SymbolConfig",
    "load_settings",
    "read_toml",
    "resolve_config_path",
]
