"""Serve faceswap: the Gradio web app at "/", the REST dialects, OpenAPI docs at /docs.

Environment: PORT or GRADIO_SERVER_PORT (default 7860), GRADIO_SERVER_NAME (default 127.0.0.1; Hugging Face Spaces
and containers set 0.0.0.0), FACESWAP_DATA_DIR, FACESWAP_MODELS_DIR, FACESWAP_API_KEYS, FACESWAP_UI_AUTH and the
other FACESWAP_* settings in faceswap/config.py. Models load on first use, so the server answers within seconds.
"""

from __future__ import annotations

import logging
import os

import uvicorn

from faceswap.config import Settings
from faceswap.server import create_app, exposure_warnings

log = logging.getLogger("faceswap.app")


def main() -> None:
    logging.basicConfig(level=os.environ.get("FACESWAP_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = Settings.from_env()
    host = os.environ.get("GRADIO_SERVER_NAME") or "127.0.0.1"
    port = int(os.environ.get("PORT") or os.environ.get("GRADIO_SERVER_PORT") or 7860)
    for warning in exposure_warnings(host, settings):
        log.warning("%s", warning)
    # X-Forwarded-For is believed only from FACESWAP_TRUSTED_PROXIES, by the app itself (uvicorn's own proxy
    # handling would trust every loopback peer)
    uvicorn.run(create_app(settings), host=host, port=port, proxy_headers=False, timeout_graceful_shutdown=20,
                log_config=None)


if __name__ == "__main__":
    main()
