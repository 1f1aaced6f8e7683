"""Half-precision copies of float32 model files, for providers that run fp16 at full speed (CUDA).

Published fp16 files are preferred where the registry has one (inswapper_128_fp16); for the others (GFPGAN,
CodeFormer, hyperswap's siblings) a copy is converted once with onnxruntime's own converter
(`onnxruntime.transformers.float16`, shipped in every onnxruntime wheel) with the I/O types kept float32, and cached
beside the models under `.fp16/`, named by the source file's size and modification time so a replaced file is
converted again. TensorRT does not need the copy: it builds fp16 engines from the float32 file itself
(`trt_fp16_enable`, set by the session factory).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path

from faceswap.errors import FaceSwapError

log = logging.getLogger(__name__)

CACHE_DIR = ".fp16"
KEEP_FLOAT32 = ("Resize", "Range", "RandomNormalLike", "TopK", "NonMaxSuppression")
"""Ops left in float32 (onnxruntime's converter default list plus Resize, whose scales must stay float32)."""


def half_copy_path(path: Path) -> Path:
    """Where the converted copy of `path` lives: `<dir>/.fp16/<stem>-<size>-<mtime>.onnx`."""
    stat = path.stat()
    return path.parent / CACHE_DIR / f"{path.stem}-{stat.st_size}-{int(stat.st_mtime)}.onnx"


def half_copy(path: Path | str) -> Path:
    """A float16 copy of `path` (float32 inputs and outputs kept), converted on first use and cached."""
    source = Path(path)
    target = half_copy_path(source)
    if target.exists():
        return target
    import onnx
    from onnxruntime.transformers.float16 import DEFAULT_OP_BLOCK_LIST, convert_float_to_float16

    log.info("converting %s to float16 (once; cached in %s)", source.name, CACHE_DIR)
    try:
        model = onnx.load(str(source))
        converted = convert_float_to_float16(model, keep_io_types=True,
                                             op_block_list=sorted({*DEFAULT_OP_BLOCK_LIST, *KEEP_FLOAT32}))
    except Exception as exc:  # onnx and the converter raise their own types
        raise FaceSwapError("model_not_available", f"{source.name} could not be converted to half precision "
                            f"({type(exc).__name__}: {exc}); set FACESWAP_PRECISION=fp32.") from exc
    target.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=target.parent, suffix=".part")
    os.close(handle)
    try:
        onnx.save(converted, temporary)
        os.replace(temporary, target)  # never a half-written copy under the final name
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
    return target
