"""STREAMS_SWITCH_INTERVAL is bounded (the worker's command puts it in force with
sys.setswitchinterval before it runs Faust)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import WorkerSettings


@pytest.mark.parametrize("bad", ["0", "-0.001", "0.5", "soon"])
def test_a_switch_interval_out_of_bounds_is_refused_naming_the_setting(
    bad: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STREAMS_SWITCH_INTERVAL", bad)
    with pytest.raises(ValidationError, match="switch_interval"):
        WorkerSettings()
