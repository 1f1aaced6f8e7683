"""ModelRunner: the one way the neural adapters call an onnxruntime session.

It sits between an adapter and its session and quacks like the session (`run`, `get_inputs`, `get_outputs`,
`get_providers`), adding three things the GPU path needs, each of which runs the same code on the CPU provider:

- **dtype at the boundary**: adapters always feed and receive float32; a file whose inputs or outputs are float16
  (a half-precision export without kept I/O types) gets its feeds cast to float16 and its outputs back to float32
  here, so no adapter has to know which precision the file is.
- **IO binding** (`io_binding()`): inputs are bound as `OrtValue`s on the provider's device (`cuda` when the first
  provider is CUDA or TensorRT, else `cpu`) and outputs are bound to that device, then copied back once. Inputs that
  stay the same for a whole run (the source identity) can be made resident once with `resident()` and fed as they
  are, so they are uploaded once per run instead of once per face.
- **batch dimension**: `batch_dynamic` says whether every input and output has a free first dimension, so N faces
  can go through one call (the swap session falls back to one call per face for fixed-batch files).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

import numpy as np

Precision = Literal["fp32", "fp16"]
PrecisionSetting = Literal["auto", "fp32", "fp16"]
BindingSetting = Literal["auto", "on", "off"]

GPU_PROVIDERS = frozenset({"CUDAExecutionProvider", "TensorrtExecutionProvider"})
"""Providers that run half precision at full speed and keep OrtValues on a CUDA device."""
_NUMPY_TYPES: dict[str, type[np.floating[Any]]] = {"tensor(float16)": np.float16, "tensor(float)": np.float32,
                                                   "tensor(double)": np.float64}


def resolve_precision(setting: str, providers: Sequence[str]) -> Precision:
    """fp16 when forced, or when `auto` and the first provider is CUDA or TensorRT; fp32 otherwise (CPU)."""
    if setting not in ("auto", "fp32", "fp16"):
        raise ValueError(f"precision must be auto, fp32 or fp16, not {setting!r}")
    if setting == "auto":
        return "fp16" if providers and providers[0] in GPU_PROVIDERS else "fp32"
    return "fp16" if setting == "fp16" else "fp32"


def resolve_io_binding(setting: str, providers: Sequence[str]) -> bool:
    """On when forced, or when `auto` and the first provider is a GPU one (on CPU it only adds bookkeeping)."""
    if setting not in ("auto", "on", "off"):
        raise ValueError(f"io_binding must be auto, on or off, not {setting!r}")
    if setting == "auto":
        return bool(providers) and providers[0] in GPU_PROVIDERS
    return setting == "on"


def value_device(providers: Sequence[str]) -> str:
    """Where bound values live: `cuda` for CUDA and TensorRT sessions, `cpu` otherwise."""
    return "cuda" if providers and providers[0] in GPU_PROVIDERS else "cpu"


def _free_batch(args: Sequence[Any]) -> bool:
    return all(len(arg.shape) >= 1 and not isinstance(arg.shape[0], int) for arg in args)


class ModelRunner:
    """A session with float16 casts at the boundary, optional IO binding, and its batch dimension known."""

    def __init__(self, session: Any, *, io_binding: bool = False, device: str = "cpu", device_id: int = 0,
                 precision: Precision = "fp32") -> None:
        self.session = session
        self.io_binding = io_binding
        self.device = device
        self.device_id = device_id
        inputs, outputs = session.get_inputs(), session.get_outputs()
        self._input_types = {arg.name: _NUMPY_TYPES.get(arg.type) for arg in inputs}
        half_io = any(arg.type == "tensor(float16)" for arg in (*inputs, *outputs))
        self.precision: Precision = "fp16" if half_io else precision
        """fp16 for a half-precision file (float16 I/O, or chosen as one by the loader), else fp32."""
        self.batch_dynamic = _free_batch(inputs) and _free_batch(outputs)
        """Whether every input and output has a free first dimension (N faces in one call)."""

    # -- the session's own interface, passed through -------------------------------------------------------------
    def get_inputs(self) -> Any:
        return self.session.get_inputs()

    def get_outputs(self) -> Any:
        return self.session.get_outputs()

    def get_providers(self) -> Any:
        return self.session.get_providers()

    # -- running -------------------------------------------------------------------------------------------------
    def cast(self, name: str, array: Any) -> Any:
        """`array` in the dtype input `name` takes (only float inputs are cast; an OrtValue passes as it is)."""
        wanted = self._input_types.get(name)
        if wanted is None or not isinstance(array, np.ndarray) or array.dtype == wanted:
            return array
        if not np.issubdtype(array.dtype, np.floating):
            return array
        return np.ascontiguousarray(array, dtype=wanted)

    def resident(self, name: str, array: np.ndarray) -> Any:
        """An input value to feed many times: with IO binding an OrtValue already on the device, else the array
        cast to the input's dtype."""
        value = np.ascontiguousarray(self.cast(name, array))
        if not self.io_binding:
            return value
        import onnxruntime

        return onnxruntime.OrtValue.ortvalue_from_numpy(value, self.device, self.device_id)

    def run(self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]) -> list[np.ndarray]:
        """Like `InferenceSession.run`; float16 outputs come back as float32."""
        cast = {name: self.cast(name, value) for name, value in feeds.items()}
        if self.io_binding:
            outputs = self._run_bound(output_names, cast)
        else:
            outputs = self.session.run(list(output_names) if output_names else None, cast)
        return [np.asarray(out, dtype=np.float32) if getattr(out, "dtype", None) == np.float16 else out
                for out in outputs]

    def _run_bound(self, output_names: Sequence[str] | None, feeds: Mapping[str, Any]) -> list[np.ndarray]:
        import onnxruntime

        binding = self.session.io_binding()
        keep = []  # the arrays behind the OrtValues must outlive the run
        for name, value in feeds.items():
            if not isinstance(value, onnxruntime.OrtValue):
                array = np.ascontiguousarray(value)
                keep.append(array)
                value = onnxruntime.OrtValue.ortvalue_from_numpy(array, self.device, self.device_id)
            binding.bind_ortvalue_input(name, value)
        names = list(output_names) if output_names else [arg.name for arg in self.session.get_outputs()]
        for name in names:
            binding.bind_output(name, self.device, self.device_id)
        self.session.run_with_iobinding(binding)
        outputs: list[np.ndarray] = binding.copy_outputs_to_cpu()
        del keep
        return outputs
