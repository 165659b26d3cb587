"""A missing browser tool skips locally and fails under CI=true (tests/_ci.py)."""

import pytest

from tests import _ci


def test_a_missing_tool_skips_locally(monkeypatch):
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="no Chromium"):
        _ci.unavailable("no Chromium")


@pytest.mark.parametrize("value", ["true", "1", "True"])
def test_a_missing_tool_fails_in_ci(monkeypatch, value):
    monkeypatch.setenv("CI", value)
    with pytest.raises(pytest.fail.Exception, match="no Chromium.*broken setup"):
        _ci.unavailable("no Chromium")
