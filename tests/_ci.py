"""Skips that must not hide a broken CI setup.

Locally, a test whose tool (Chromium, Playwright, ``jupyter``, Node) is missing
is skipped with the reason. Under ``CI=true`` the setup script installed those
tools, so their absence is a broken setup: the test fails with the reason
instead of passing as a skip nobody reads.
"""

from __future__ import annotations

import os

import pytest


def in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() in ("true", "1", "yes")


def unavailable(reason: str, module_level: bool = False):
    """Skip for ``reason`` (fail under ``CI=true``)."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing tool is a broken setup, not a skip)", pytrace=False)
    pytest.skip(reason, allow_module_level=module_level)
