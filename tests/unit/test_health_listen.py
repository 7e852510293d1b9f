"""``[health] listen`` is checked when the config is validated, not when ``run`` binds it."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from monitor.settings import HealthConfig


@pytest.mark.parametrize("listen", ["127.0.0.1:9464", "localhost:9464", "[::1]:9464", "0.0.0.0:1"])
def test_addresses_run_can_bind_are_accepted(listen: str) -> None:
    assert HealthConfig(listen=listen).listen == listen


@pytest.mark.parametrize(
    "listen", ["999.1.1.1:80", "1.2.3:80", "[::zz]:9464", "bad_host!:80", "nonsense"]
)
def test_addresses_that_cannot_be_bound_are_config_errors(listen: str) -> None:
    with pytest.raises(ValidationError, match="listen"):
        HealthConfig(listen=listen)
