"""Shared test helpers.

Tests that need a real offline asset call `require_asset(name)`: on a developer machine without
the asset they skip; in CI (`COURSEKIT_REQUIRE_ASSETS=1`) a missing asset is a failure, so the
real-asset tests can never pass by silently skipping.
"""

from __future__ import annotations

import os

import pytest

from coursekit.runtime.assets import asset_status


def require_asset(name: str) -> None:
    """Skip (locally) or fail (in CI) when the named course asset is not installed."""
    if asset_status(name) == "found":
        return
    msg = f"course asset {name!r} is not installed"
    if os.environ.get("COURSEKIT_REQUIRE_ASSETS") == "1":
        pytest.fail(msg + " but COURSEKIT_REQUIRE_ASSETS=1")
    pytest.skip(msg)
