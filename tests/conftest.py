"""Shared fixtures. No test reaches the network or real model weights: the Hub is forced offline, and every
run gets its own data and models directories."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")


@pytest.fixture(autouse=True, scope="session")
def _isolated_dirs(tmp_path_factory: pytest.TempPathFactory) -> None:
    root = tmp_path_factory.mktemp("faceswap-home")
    os.environ["FACESWAP_DATA_DIR"] = str(root / "data")
    os.environ["FACESWAP_MODELS_DIR"] = str(root / "models")
    os.environ["HF_HUB_CACHE"] = str(root / "hub-cache")  # model files are looked for there too: keep it empty
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")  # uploads of this run's apps, apart from any other run
