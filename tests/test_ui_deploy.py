"""Deployment files, checked statically (no Docker engine here): the Dockerfile's guarantees, its onnxruntime build
check run against fake environments, the Hugging Face Space settings, and the Space's requirements.txt."""

from __future__ import annotations

import ast
import importlib.machinery
import re
import shlex
import subprocess
import sys
import types
from pathlib import Path

import pytest
import yaml

from faceswap.models.registry import GROUPS, REGISTRY
from faceswap.ui import zerogpu

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]


def dockerfile_instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, with line continuations joined and comments dropped, as Docker reads them."""
    instructions: list[tuple[str, str]] = []
    pending = ""
    for line in text.splitlines():
        if line.lstrip().startswith("#") or (not line.strip() and not pending):
            continue
        if line.endswith("\\"):
            pending += line[:-1]
            continue
        full = (pending + line).strip()
        pending = ""
        keyword, _, arguments = full.partition(" ")
        instructions.append((keyword.upper(), arguments.strip()))
    return instructions


@pytest.fixture(scope="module")
def docker() -> list[tuple[str, str]]:
    return dockerfile_instructions((ROOT / "Dockerfile").read_text())


def _runs(docker: list[tuple[str, str]]) -> list[str]:
    return [arguments for keyword, arguments in docker if keyword == "RUN"]


def test_dockerfile_builds_on_cuda13_cudnn_runtime(docker: list[tuple[str, str]]) -> None:
    args = dict(arguments.split("=", 1) for keyword, arguments in docker if keyword == "ARG" and "=" in arguments)
    base = [arguments for keyword, arguments in docker if keyword == "FROM"]
    assert base == ["${CUDA_IMAGE}"]
    assert re.fullmatch(r"nvidia/cuda:13\.\d+\.\d+-cudnn-runtime-ubuntu\d\d\.\d\d", args["CUDA_IMAGE"])


def test_dockerfile_installs_opencv_system_libraries(docker: list[tuple[str, str]]) -> None:
    apt = [run for run in _runs(docker) if "apt-get install" in run]
    assert apt and {"libgl1", "libglib2.0-0"} <= set(apt[0].split())


def test_dockerfile_ends_with_onnxruntime_gpu_alone(docker: list[tuple[str, str]]) -> None:
    runs = _runs(docker)
    project = max(i for i, run in enumerate(runs) if re.search(r"pip install (--no-deps )?\.", run))
    onnx = [i for i, run in enumerate(runs) if "pip uninstall -y onnxruntime onnxruntime-gpu" in run]
    assert len(onnx) == 1 and onnx[0] > project, "onnxruntime-gpu must be installed after the project"
    step = runs[onnx[0]]
    assert step.index("pip uninstall -y onnxruntime onnxruntime-gpu") < step.index('pip install "${ONNXRUNTIME_GPU}"')
    args = dict(arguments.split("=", 1) for keyword, arguments in docker if keyword == "ARG" and "=" in arguments)
    assert args["ONNXRUNTIME_GPU"].strip('"').startswith("onnxruntime-gpu")
    assert not any("pip install" in run for run in runs[onnx[0] + 1:]), "nothing may be installed after it"
    assert len(_build_checks(docker)) == 2


def _build_checks(docker: list[tuple[str, str]]) -> list[str]:
    step = next(run for run in _runs(docker) if "pip uninstall -y onnxruntime onnxruntime-gpu" in run)
    words = shlex.split(step)
    return [words[i + 2] for i, word in enumerate(words[:-2]) if word == "python" and words[i + 1] == "-c"]


def _fake_site(root: Path, *, distributions: list[str], providers: list[str] | None) -> Path:
    for name in distributions:
        info = root / f"{name.replace('-', '_')}-1.31.1.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 1.31.1\n")
    if providers is not None:
        (root / "onnxruntime").mkdir()
        (root / "onnxruntime" / "__init__.py").write_text(f"def get_available_providers():\n    return {providers!r}\n")
    return root


@pytest.mark.parametrize(("distributions", "providers", "passes", "says"), [
    (["onnxruntime-gpu"], ["CUDAExecutionProvider", "CPUExecutionProvider"], True, ""),
    (["onnxruntime-gpu", "onnxruntime"], ["CUDAExecutionProvider", "CPUExecutionProvider"], False, "beside"),
    (["onnxruntime-gpu"], ["CPUExecutionProvider"], False, "no CUDAExecutionProvider"),
    (["onnxruntime"], ["CPUExecutionProvider"], False, ""),
])
def test_dockerfile_build_check_refuses_a_lost_gpu(docker: list[tuple[str, str]], tmp_path: Path,
                                                   distributions: list[str], providers: list[str], passes: bool,
                                                   says: str) -> None:
    site = _fake_site(tmp_path, distributions=distributions, providers=providers)
    outcomes = []
    for check in _build_checks(docker):
        # -S: only the fake site is on the path, so the check sees exactly these distributions.
        done = subprocess.run([sys.executable, "-S", "-c", check], cwd=site, env={"PYTHONPATH": str(site)},
                              capture_output=True, text=True, timeout=60)
        outcomes.append(done)
        if done.returncode:
            break
    assert all(done.returncode == 0 for done in outcomes) is passes, [done.stderr for done in outcomes]
    if says:
        assert says in outcomes[-1].stderr


def test_dockerfile_serves_the_app_with_a_data_volume(docker: list[tuple[str, str]]) -> None:
    env = " ".join(arguments for keyword, arguments in docker if keyword == "ENV")
    settings = dict(re.findall(r"(\w+)=(\S+)", env))
    volumes = [arguments for keyword, arguments in docker if keyword == "VOLUME"]
    assert volumes == ['["/data"]']
    assert settings["FACESWAP_MODELS_DIR"].startswith("/data/") and settings["FACESWAP_DATA_DIR"].startswith("/data/")
    assert settings["GRADIO_SERVER_NAME"] == "0.0.0.0"
    assert ("EXPOSE", "7860") in docker
    assert docker[-1] == ("CMD", '["python", "app.py"]')


def test_dockerfile_copies_only_what_exists_and_is_not_ignored(docker: list[tuple[str, str]]) -> None:
    ignored = {line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")}
    for keyword, arguments in docker:
        if keyword != "COPY":
            continue
        *sources, _ = arguments.split()
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: missing from the repository"
            assert source not in ignored, f"COPY {source}: excluded by .dockerignore"


@pytest.fixture(scope="module")
def space() -> dict[str, object]:
    return yaml.safe_load((ROOT / "spaces.yaml").read_text())


def test_space_settings_run_this_app_on_gradio(space: dict[str, object]) -> None:
    import gradio

    assert space["sdk"] == "gradio"
    assert re.fullmatch(r"6\.\d+\.\d+", str(space["sdk_version"]))
    assert str(space["sdk_version"]).split(".")[0] == gradio.__version__.split(".")[0]
    assert (ROOT / str(space["app_file"])).is_file()
    assert space["suggested_hardware"] in {"t4-small", "t4-medium", "l4x1", "a10g-small", "a10g-large"}
    assert len(str(space["short_description"])) <= 60
    assert str(space["python_version"]).startswith("3.")


def test_space_preloads_the_registry_model_files(space: dict[str, object]) -> None:
    preloaded: dict[str, set[str]] = {}
    for entry in space["preload_from_hub"]:
        repo, files = str(entry).split()[:2]
        preloaded.setdefault(repo, set()).update(files.split(","))
    wanted = [REGISTRY[name] for name in (*GROUPS["neural"], "codeformer")]
    expected: dict[str, set[str]] = {}
    for spec in wanted:
        if spec.repo_type == "model":  # preload_from_hub fetches model repositories
            expected.setdefault(spec.repo_id, set()).add(spec.repo_path)
    assert preloaded == expected


def test_readme_front_matter_matches_spaces_yaml(space: dict[str, object]) -> None:
    readme = ROOT / "README.md"
    text = readme.read_text() if readme.is_file() else ""
    match = re.match(r"---\n(.*?)\n---\n", text, re.DOTALL)
    if match is None:
        pytest.skip("README.md has no Space front matter yet: paste spaces.yaml's keys between --- lines at its top")
    assert yaml.safe_load(match.group(1)) == space


def _requirement_names(lines: list[str]) -> dict[str, str]:
    names = {}
    for line in lines:
        line = line.split("#")[0].strip()
        if line:
            name = re.split(r"[<>=!~\[ ;]", line, maxsplit=1)[0]
            names[name.lower().replace("_", "-")] = line
    return names


def test_space_requirements_are_the_project_dependencies_with_onnxruntime_gpu() -> None:
    project = _requirement_names(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"])
    space = _requirement_names((ROOT / "requirements.txt").read_text().splitlines())
    expected = set(project) - {"gradio", "gradio-client", "insightface", "onnxruntime"} | {"onnxruntime-gpu"}
    assert set(space) == expected
    assert "onnxruntime" not in space


def test_faceswap_never_imports_insightface() -> None:
    """requirements.txt leaves insightface out (it would pull in plain onnxruntime); the package must not need it."""
    for path in (ROOT / "faceswap").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
            assert not any(name.split(".")[0] == "insightface" for name in names), path


def test_on_gpu_leaves_functions_alone_without_the_spaces_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delitem(sys.modules, "spaces", raising=False)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry])  # no stray ./spaces

    def detect() -> str:
        return "found"

    if importlib.util.find_spec("spaces") is not None:
        pytest.fail("the `spaces` package is installed here; this test needs it absent")
    assert zerogpu.on_gpu(detect) is detect


def test_on_gpu_wraps_with_spaces_gpu_when_installed(monkeypatch: pytest.MonkeyPatch) -> None:
    wrapped: list[object] = []
    fake = types.ModuleType("spaces")
    fake.__spec__ = importlib.machinery.ModuleSpec("spaces", None)

    def gpu(fn: object) -> object:
        wrapped.append(fn)
        return lambda *args, **kwargs: ("on gpu", fn(*args, **kwargs))

    fake.GPU = gpu
    monkeypatch.setitem(sys.modules, "spaces", fake)

    def detect(x: int) -> int:
        return x + 1

    assert zerogpu.on_gpu(detect)(1) == ("on gpu", 2)
    assert wrapped == [detect]
