"""Shared test helpers: paths and small networks with known answers."""

from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MODELS = ROOT / "models"


@pytest.fixture
def models_dir() -> Path:
    return MODELS
