#!/usr/bin/env bash
# The GPU benchmark in one command (benchmarks/gpu.py): install what is missing, build the cost twins, print
# 1080p one-face frames/s swap-only and with GFPGAN, per stage, and libx264 encode frames/s; within 6 minutes.
#
#   benchmarks/gpu.sh                              # on the GPU machine
#   benchmarks/gpu.sh --providers tensorrt,cuda    # TensorRT first (engine cache next to the models)
#   benchmarks/gpu.sh --precision fp32             # fp32 instead of auto's fp16 (also: --io-binding off)
#   benchmarks/gpu.sh --dry-run                    # anywhere: CPU provider, tiny twins, installs nothing; forces
#                                                  # fp16 + IO binding, the path `auto` takes on a GPU
#
# Installing: onnxruntime-gpu must be the only onnxruntime (DESIGN §10), so wheels go into $FACESWAP_GPU_SITE
# (default /tmp/faceswap-gpu-site), put first on PYTHONPATH: a CPU onnxruntime in the image is shadowed, never
# touched. Offline (a lent device reaches no index): wheels carried in .whl/ are installed from there, and the
# /tmp/gpusite that ../shared/tools/gpu-wheels.sh's steps fill is used as is, e.g. before this script:
#   ../shared/tools/gpu-wheels.sh onnxruntime-gpu==1.31.1 av==18.1.0 pydantic==2.14.4 pydantic-core==2.50.5 \
#     annotated-types typing-inspection
# Online, pip fetches what is still missing. Everything else comes from the image (numpy, opencv, onnx, scipy,
# scikit-image, huggingface_hub).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
dry=0
for arg in "$@"; do [ "$arg" = --dry-run ] && dry=1; done

if [ "$dry" = 0 ]; then
  site=${FACESWAP_GPU_SITE:-/tmp/faceswap-gpu-site}
  mkdir -p "$site"
  [ -d /tmp/gpusite ] && export PYTHONPATH="/tmp/gpusite:$PYTHONPATH"
  if compgen -G ".whl/*.whl" >/dev/null; then
    "$PY" -m pip install -q --no-index --no-deps --no-compile --upgrade --target "$site" .whl/*.whl
  fi
  export PYTHONPATH="$site:$PYTHONPATH"
  # module -> the wheels it needs (no dependency resolution: the image's numpy & co. stay the ones in use)
  missing=$("$PY" - <<'PYEOF'
import importlib.util
needs = {"av": "av", "pydantic": "pydantic pydantic-core annotated-types typing-inspection",
         "cv2": "opencv-python-headless", "onnx": "onnx", "skimage": "scikit-image", "scipy": "scipy",
         "huggingface_hub": "huggingface_hub", "PIL": "pillow", "yaml": "pyyaml"}
wanted = [wheels for module, wheels in needs.items() if importlib.util.find_spec(module) is None]
try:
    import onnxruntime
    if "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        wanted.insert(0, "onnxruntime-gpu")
except ImportError:
    wanted.insert(0, "onnxruntime-gpu")
print(" ".join(wanted))
PYEOF
)
  if [ -n "$missing" ]; then
    echo "installing into $site: $missing"
    "$PY" -m pip install -q --no-deps --no-compile --upgrade --target "$site" $missing
  fi
fi
exec "$PY" -m benchmarks.gpu "$@"
