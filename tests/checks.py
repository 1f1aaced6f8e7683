"""Small assertions the test modules share."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from faceswap.errors import FaceSwapError


def expect(code: str, call: Callable[[], object], *words: str) -> FaceSwapError:
    """`call()` fails with the catalog `code`, and its message mentions each of `words` (case-insensitive)."""
    with pytest.raises(FaceSwapError) as caught:
        call()
    assert caught.value.code == code, caught.value.message
    for word in words:
        assert word.lower() in caught.value.message.lower(), caught.value.message
    return caught.value


def figure(text: str) -> None:
    """A measured figure an issue asks for, shown with `pytest -s`."""
    print(f"FIGURE {text}")
