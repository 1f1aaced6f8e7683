"""The page's offer of the neural models: what they are and their licences first, the download only on request.

The download goes through the model store (`ModelStore.download`), which decides, as everywhere, whether this
server may download at all; the page only asks after the person accepted the licences shown.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

import gradio as gr

from faceswap.errors import FaceSwapError
from faceswap.ui.layout import option_updates
from faceswap.ui.status import Capabilities

if TYPE_CHECKING:
    from faceswap.runtime import Runtime

log = logging.getLogger(__name__)

DOWNLOAD_FAILED = ("The neural models could not be downloaded (is this server online?). The details are in the "
                   "server's log; the classic engine still works.")


def neural_model_names() -> tuple[str, ...]:
    from faceswap.engines.neural import NEURAL_MODELS

    return NEURAL_MODELS


def licence_text(runtime: Runtime) -> str:
    """The files the download fetches, their sizes and licences, as Markdown."""
    specs = [runtime.models.spec(name) for name in neural_model_names()]
    total = sum(spec.size or 0 for spec in specs)
    lines = [f"**The neural models** ({total / 1e6:,.0f} MB from the Hugging Face Hub, checked after download). "
             "Read their licences before you download:", ""]
    lines += [f"- `{spec.filename}` ({(spec.size or 0) / 1e6:,.0f} MB): {spec.licence}" for spec in specs]
    return "\n".join(lines)


class ModelsOffer:
    """Handlers for the "Get the neural models" button and its licence panel."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def page_state(self) -> tuple[Any, ...]:
        """On page load: the engine line and which options can work, as the models are now."""
        return option_updates(Capabilities.of(self.runtime))

    def show_offer(self) -> tuple[Any, str]:
        return gr.update(visible=True), licence_text(self.runtime)

    @staticmethod
    def hide_offer() -> Any:
        return gr.update(visible=False)

    def download(self, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        """Download the neural models the person accepted; then the page says what they now get."""
        progress(0.0, desc="Downloading the neural models")
        try:
            self.runtime.models.download(neural_model_names())
        except FaceSwapError as exc:
            log.warning("ui: model download failed: %s", exc.message)
            raise gr.Error(DOWNLOAD_FAILED, title="Download failed", print_exception=False) from None
        except Exception:
            log.exception("ui: model download failed")
            raise gr.Error(DOWNLOAD_FAILED, title="Download failed", print_exception=False) from None
        log.info("ui: the neural models were downloaded at a person's request")
        return (gr.update(visible=False), *option_updates(Capabilities.of(self.runtime)))
