"""Shared fixtures: the real archive files in ../shared/data (never copied into the project)."""

from __future__ import annotations

from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CEF = SHARED_DATA / "cluster" / "cef"
CEF_HEADERS = [CEF / "headers" / sub for sub in ("irfu", "irfu/fgm", "caa", "caa/aux2", "caa/cis")]


def shared(*parts: str) -> Path:
    """A path under ../shared/data, or skip the test with the reason when the folder is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"the real archive files are not here: {SHARED_DATA} is absent (see tests/README.md)")
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} is absent from ../shared/data")
    return path


@pytest.fixture
def cef_headers() -> list[str]:
    """The folders holding the CEF header (.ceh) files the real CEF files include."""
    shared("cluster", "cef", "headers")
    return [str(p) for p in CEF_HEADERS]
