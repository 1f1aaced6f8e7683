# faceswap for an NVIDIA GPU host: CUDA 13 + cuDNN 9 runtime, onnxruntime-gpu, the web app on port 7860.
#
#   docker build -t faceswap .
#   docker run --gpus all -p 7860:7860 -v faceswap-data:/data faceswap
#
# Models are downloaded on first use into /data/models (or copy them there); jobs and files live in /data/data.
# Set FACESWAP_UI_AUTH=user:password and FACESWAP_API_KEYS=key1,key2 before exposing the port beyond your machine.

ARG CUDA_IMAGE=nvidia/cuda:13.0.2-cudnn-runtime-ubuntu24.04
FROM ${CUDA_IMAGE}

ARG ONNXRUNTIME_GPU="onnxruntime-gpu>=1.31,<2"
# Optional extras of the project to install too: `distributed` (Celery, Redis, boto3) for docker-compose.yml.
ARG EXTRAS=""

ENV DEBIAN_FRONTEND=noninteractive \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH

# Python, and the two libraries opencv-python's GUI build loads (libGL, GLib).
RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libgl1 libglib2.0-0 ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv "$VIRTUAL_ENV"

WORKDIR /app

# Dependencies first (cached while only the code changes): install the project's requirements from
# pyproject.toml, at the versions the test suite passed with (requirements.lock), with a placeholder package, then
# the code itself without dependencies.
COPY pyproject.toml README.md requirements.lock ./
RUN mkdir -p faceswap && touch faceswap/__init__.py \
    && pip install -c requirements.lock ".${EXTRAS:+[$EXTRAS]}" \
    && pip uninstall -y faceswap

COPY faceswap ./faceswap
COPY assets ./assets
COPY app.py ./
RUN pip install --no-deps .

# insightface depends on plain `onnxruntime`, which owns the same `onnxruntime` module as onnxruntime-gpu: with
# both installed, whichever came last wins and the GPU silently disappears. End with onnxruntime-gpu alone, and
# fail the build if that is not what we have.
RUN pip uninstall -y onnxruntime onnxruntime-gpu \
    && pip install "${ONNXRUNTIME_GPU}" \
    && python -c "import importlib.metadata as md, sys; \
names = {(d.metadata['Name'] or '').lower() for d in md.distributions()}; \
sys.exit('build check: plain onnxruntime is installed beside onnxruntime-gpu' if 'onnxruntime' in names else 0); "\
    && python -c "import importlib.metadata as md, sys; md.distribution('onnxruntime-gpu'); \
import onnxruntime as ort; providers = ort.get_available_providers(); print('onnxruntime providers:', providers); \
sys.exit(0 if 'CUDAExecutionProvider' in providers else 'build check: onnxruntime has no CUDAExecutionProvider')"

ENV FACESWAP_MODELS_DIR=/data/models \
    FACESWAP_DATA_DIR=/data/data \
    GRADIO_SERVER_NAME=0.0.0.0 \
    GRADIO_SERVER_PORT=7860
VOLUME ["/data"]
EXPOSE 7860

HEALTHCHECK --interval=30s --timeout=5s --start-period=60s \
    CMD python -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:7860/health', timeout=4)"

CMD ["python", "app.py"]
