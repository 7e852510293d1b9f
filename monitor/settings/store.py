"""``[store]``: where the state lives (a SQLite file, or a PostgreSQL database shared by several
hosts) and, on PostgreSQL, how fast a follower takes over from a leader that went silent."""

from __future__ import annotations

import re
from pathlib import Path
from urllib.parse import unquote, urlsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

_CREDENTIAL = re.compile(r"^[A-Za-z0-9_.@-]{1,128}$")


def redact_url(url: str) -> str:
    """``url`` with any password replaced by ``***`` (for messages, logs and listings)."""
    url = re.sub(r"(://[^:/@?#]*:)[^@/?#]*@", r"\1***@", url)
    return re.sub(r"(?i)(password=)[^&\s]*", r"\1***", url)


class StoreConfig(BaseModel):
    """``url``: ``sqlite:///path`` or ``postgresql://user@host/db`` (a secret: it may hold a
    password); unset, the SQLite file of ``state_db``/the state directory."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: SecretStr | None = None
    # the file in $CREDENTIALS_DIRECTORY (systemd LoadCredential=) holding the password
    password_credential: str | None = None
    # seconds without a sign of life from the leader before a follower takes over;
    # unset: 2 poll intervals
    failover_after: float | None = Field(default=None, gt=0, le=3600)

    @field_validator("url")
    @classmethod
    def _scheme(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None:
            return None
        url = value.get_secret_value().strip()
        scheme = urlsplit(url).scheme.lower()
        if scheme == "sqlite":
            if not url.lower().startswith("sqlite:///") or len(url) <= len("sqlite:///"):
                raise ValueError('a SQLite url is "sqlite:///absolute/path/to/state.db"')
        elif scheme not in ("postgresql", "postgres"):
            shown = redact_url(url)[:60]
            raise ValueError(f"{shown!r} is not sqlite:///path or postgresql://user@host/db")
        return SecretStr(url)

    @field_validator("password_credential")
    @classmethod
    def _credential_name(cls, value: str | None) -> str | None:
        if value is not None and not _CREDENTIAL.match(value):
            raise ValueError("a credential is a plain file name in $CREDENTIALS_DIRECTORY")
        return value

    @property
    def postgres_url(self) -> str | None:
        """The PostgreSQL url, or ``None`` for SQLite."""
        if self.url is None:
            return None
        url = self.url.get_secret_value()
        return None if url.lower().startswith("sqlite:") else url

    @property
    def sqlite_path(self) -> Path | None:
        """The file of a ``sqlite:///`` url (``None`` when unset or PostgreSQL)."""
        if self.url is None or self.postgres_url is not None:
            return None
        return Path(unquote(self.url.get_secret_value()[len("sqlite://") :]))
