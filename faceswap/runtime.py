"""Runtime: the one object that owns loaded models. The app creates it once and passes it down.

It resolves the engine choice ('auto' picks neural when its models are present, else classic and says so in one
line; models download by themselves only with FACESWAP_AUTO_DOWNLOAD=1), caches loaded engines and restorers per
process, and reports which inference provider ran.
Nothing here is module-level state: two Runtimes with different settings can live side by side (tests do).
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models.store import fallback_notice, may_download_unasked

if TYPE_CHECKING:
    from faceswap.engines.base import Engine, FaceRestorer
    from faceswap.models.sessions import SessionFactory
    from faceswap.models.store import ModelStore
    from faceswap.options import EngineChoice, Restore, SwapOptions
    from faceswap.swap.session import Maskers

log = logging.getLogger(__name__)


class Runtime:
    def __init__(self, settings: Settings | None = None, *, models: ModelStore | None = None) -> None:
        """`models` replaces the registry-backed store (tests pass one that knows their twins' hashes)."""
        from faceswap.models.sessions import SessionFactory
        from faceswap.models.store import ModelStore

        self.settings = settings or Settings.from_env()
        self.models: ModelStore = models or ModelStore(self.settings)
        self.sessions: SessionFactory = SessionFactory(
            self.settings.providers, device_id=self.settings.device_id, precision=self.settings.precision,
            io_binding=self.settings.io_binding, trt_cache=self.settings.trt_cache_dir)
        self._lock = threading.RLock()
        self._engines: dict[str, Engine] = {}
        self._restorers: dict[str, FaceRestorer] = {}
        self._maskers: dict[str, object] = {}

    def engine(self, choice: EngineChoice, *, swapper: str = "inswapper_128") -> Engine:
        """The engine to run for `choice` (with `swapper` for neural); 'auto' never fails for lack of neural models,
        it falls back to classic."""
        with self._lock:
            if choice == "classic":
                return self._classic()
            if choice == "neural":
                return self._neural(swapper)
            try:
                return self._neural(swapper)
            except FaceSwapError as exc:
                if exc.code != "model_not_available":
                    raise
                log.info("engine auto: neural models unavailable (%s); using classic", exc.message)
                return self._classic().with_notice(fallback_notice(exc))

    def restorer(self, kind: Restore) -> FaceRestorer:
        from faceswap.restore import RESTORER_MODELS, load_restorer

        with self._lock:
            if kind not in self._restorers:
                paths = self.models.ensure(RESTORER_MODELS[kind], download=may_download_unasked(self.settings))
                self._restorers[kind] = load_restorer(kind, paths, self.sessions)
            return self._restorers[kind]

    def restorer_notices(self, kind: Restore) -> list[str]:
        """What a run's report should say about the restorer's model files (an unverified file in use)."""
        from faceswap.restore import RESTORER_MODELS

        return self.models.notices(RESTORER_MODELS[kind]) if kind != "none" else []

    def maskers(self, options: SwapOptions) -> Maskers:
        """The occluder and parser the options' masks need (loaded once per process), None for those not asked."""
        from faceswap.swap.session import Maskers

        return Maskers(occluder=self._masker(options.mask_occluder, "occluder") if "occlusion" in options.mask
                       else None,
                       parser=self._masker(options.mask_parser, "parser") if "region" in options.mask else None)

    def masker_notices(self, options: SwapOptions) -> list[str]:
        """What a run's report should say about the mask models' files (an unverified file in use)."""
        names = [name for kind, name in (("occlusion", options.mask_occluder), ("region", options.mask_parser))
                 if kind in options.mask]
        return self.models.notices(names) if names else []

    def _masker(self, name: str, role: str) -> object:
        from faceswap.engines.neural.maskers import load_masker

        with self._lock:
            if name not in self._maskers:
                paths = self.models.ensure((name,), download=may_download_unasked(self.settings))
                self._maskers[name] = load_masker(name, role, paths[name], self.sessions.runner(paths[name]))
            return self._maskers[name]

    def _classic(self) -> Engine:
        if "classic" not in self._engines:
            from faceswap.engines.classic import load_classic_engine

            self._engines["classic"] = load_classic_engine()
        return self._engines["classic"]

    def _swapper_file(self, swapper: str) -> str:
        """The registry entry to swap with: the published fp16 export of `swapper` when this run is half precision
        and that file is here (or may be downloaded), else `swapper` itself (converted to fp16 if needed)."""
        from faceswap.models.registry import half_sibling

        sibling = half_sibling(swapper, self.models.specs) if self.sessions.precision == "fp16" else None
        if sibling is None:
            return swapper
        try:
            self.models.ensure((sibling,), download=may_download_unasked(self.settings))
        except FaceSwapError as exc:
            if exc.code != "model_not_available":
                raise
            log.info("no %s here (%s); converting %s to fp16 instead", sibling, exc.message, swapper)
            return swapper
        return sibling

    def _neural(self, swapper: str) -> Engine:
        key = f"neural:{swapper}"  # the engine family and its swapper model
        if key not in self._engines:
            from faceswap.engines.neural import load_neural_engine, neural_models

            chosen = self._swapper_file(swapper)
            names = neural_models(chosen)
            paths = self.models.ensure(names, download=may_download_unasked(self.settings))
            engine = load_neural_engine(paths, self.sessions, swapper=chosen)
            for notice in self.models.notices(names):  # files used unverified, by the user's choice
                engine = engine.with_notice(notice)
            self._engines[key] = engine
        return self._engines[key]
