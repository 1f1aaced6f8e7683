"""The Gradio web app: layout (`layout.py`), wiring (`app.py`) and handlers (`handlers.py`); logic lives in the
core modules."""

from faceswap.ui.app import PAGE_CSS, build_ui

__all__ = ["PAGE_CSS", "build_ui"]
