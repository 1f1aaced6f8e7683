"""Smoke test of the benchmark scripts (benchmarks are not tests: this only proves they run and print their
tables). Everything runs on tiny inputs: cost twins at --scale 0.05 (exact interfaces, tiny widths), clips of
well under a second, two frames per configuration."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pytest

pytestmark = pytest.mark.slow  # real swaps through subprocesses, servers or clients: the full run only

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str, timeout: int = 300) -> str:
    done = subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def _header(output: str, first_column: str) -> list[str]:
    line = next(line for line in output.splitlines() if line.startswith(first_column + " "))
    return [cell.strip() for cell in line.split("  ") if cell.strip()]


@pytest.fixture(scope="module")
def tiny_twins(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    out = tmp_path_factory.mktemp("cost-twins")
    printed = _run("benchmarks.cost_twins", "--scale", "0.05", "--out", str(out))
    return out, printed


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("bench-work")


def test_cost_twins_print_their_cost_next_to_the_targets(tiny_twins: tuple[Path, str]) -> None:
    out, printed = tiny_twins
    assert _header(printed, "model") == ["model", "params", "target", "Δ", "MACs", "target", "Δ", "file MB",
                                         "target source"]
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) == {"w600k_r50", "genderage", "inswapper_128", "gfpgan_1.4", "codeformer"}
    assert set(manifest["detectors"]) == {"1", "3"}
    for entry in [*manifest["files"].values(), *manifest["detectors"].values()]:
        assert entry["params"] > 0 and entry["macs"] > 0
        assert Path(entry["path"]).stat().st_size == entry["size"]
    for name in manifest["files"]:
        assert f"\n{name} " in printed


def _session(path: Path) -> onnxruntime.InferenceSession:
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _signature(path: Path) -> tuple[list[tuple[str, list, str]], list[tuple[str, list, str]]]:
    session = _session(path)
    return ([(a.name, list(a.shape), a.type) for a in session.get_inputs()],
            [(a.name, list(a.shape), a.type) for a in session.get_outputs()])


def test_cost_twins_have_the_real_interfaces(tiny_twins: tuple[Path, str]) -> None:
    models = tiny_twins[0] / "faces-3"
    inputs, outputs = _signature(models / "inswapper_128.onnx")
    assert inputs == [("target", [1, 3, 128, 128], "tensor(float)"), ("source", [1, 512], "tensor(float)")]
    assert outputs == [("output", [1, 3, 128, 128], "tensor(float)")]
    graph = onnx.load(str(models / "inswapper_128.onnx")).graph
    emap = graph.initializer[-1]
    assert (emap.name, list(emap.dims), emap.data_type) == ("buff2fs", [512, 512], onnx.TensorProto.FLOAT)
    assert all(emap.name not in node.input for node in graph.node)

    inputs, outputs = _signature(models / "det_10g.onnx")
    assert inputs == [("input.1", [1, 3, "?", "?"], "tensor(float)")]
    assert [name for name, _, _ in outputs] == ["448", "471", "494", "451", "474", "497", "454", "477", "500"]
    assert [shape[1] for _, shape, _ in outputs] == [1, 1, 1, 4, 4, 4, 10, 10, 10]

    assert _signature(models / "w600k_r50.onnx") == ([("input.1", ["None", 3, 112, 112], "tensor(float)")],
                                                     [("683", ["None", 512], "tensor(float)")])
    assert _signature(models / "genderage.onnx") == ([("data", ["None", 3, 96, 96], "tensor(float)")],
                                                     [("fc1", ["None", 3], "tensor(float)")])
    assert _signature(models / "GFPGANv1.4.onnx") == ([("input", [1, 3, 512, 512], "tensor(float)")],
                                                      [("output", [1, 3, 512, 512], "tensor(float)")])
    inputs, outputs = _signature(models / "codeformer.onnx")
    assert inputs == [("input", [1, 3, 512, 512], "tensor(float)"), ("weight", [1], "tensor(double)")]
    assert outputs == [("output", [1, 3, 512, 512], "tensor(float)")]


def test_insightface_routes_the_cost_twins_like_the_real_files(tiny_twins: tuple[Path, str]) -> None:
    from insightface.model_zoo import get_model

    models = tiny_twins[0] / "faces-1"
    routed = {name: get_model(str(models / f"{name}.onnx"), providers=["CPUExecutionProvider"])
              for name in ("det_10g", "w600k_r50", "genderage", "inswapper_128")}
    assert routed["det_10g"].taskname == "detection"
    assert (routed["w600k_r50"].taskname, routed["w600k_r50"].input_mean) == ("recognition", 127.5)
    assert (routed["genderage"].taskname, routed["genderage"].input_std) == ("genderage", 1.0)  # raw pixels
    assert type(routed["inswapper_128"]).__name__ == "INSwapper"


@pytest.mark.parametrize("faces", [1, 3])
def test_detector_twin_finds_exactly_the_clip_faces(tiny_twins: tuple[Path, str], workdir: Path, faces: int) -> None:
    """insightface's own SCRFD decoder, on a frame of a benchmark clip, finds the layout's faces and no others."""
    from insightface.model_zoo import get_model

    from benchmarks import clips
    from benchmarks.run import clip_path

    clip = clip_path(workdir, "720p", faces, 0.2)
    frame = clips.media_factory().read_frames(clip)[0]
    detector = get_model(str(tiny_twins[0] / f"faces-{faces}" / "det_10g.onnx"), providers=["CPUExecutionProvider"])
    detector.prepare(0, input_size=(640, 640), det_thresh=0.5)
    boxes, points = detector.detect(frame, input_size=(640, 640))
    assert len(boxes) == faces
    scale = frame.shape[1] / clips.CANVAS
    expected = sorted((slot.x * scale, slot.y * scale) for slot in clips.face_slots(faces))
    centres = sorted(((box[0] + box[2]) / 2, (box[1] + box[3]) / 2) for box in boxes)
    np.testing.assert_allclose(centres, expected, atol=8 * scale)
    assert points.shape == (faces, 5, 2)


def test_pipeline_benchmark_prints_its_tables(tiny_twins: tuple[Path, str], workdir: Path) -> None:
    printed = _run("benchmarks.run", "--engine", "both", "--seconds", "0.4", "--frames", "2", "--warmup", "0",
                   "--models", str(tiny_twins[0]), "--workdir", str(workdir))
    assert printed.startswith("machine: ")
    assert _header(printed, "engine") == ["engine", "size", "faces", "restore", "frames", "frames/s", "ms/frame",
                                          "CPU ms/frame", "end-to-end s", "model %", "glue %", "cores", "load s",
                                          "peak RSS MB"]
    summary_block = printed.split("\n\n")[0]
    summary = [line.split() for line in summary_block.splitlines() if line.startswith(("classic ", "neural "))]
    assert [row[:5] for row in summary] == [["classic", "640x480", "1", "none", "2"],
                                            ["neural", "640x480", "1", "none", "2"]]
    assert _header(printed, "stage") == ["stage", "thread", "calls", "seconds", "ms/frame", "CPU ms/frame",
                                         "% of end-to-end"]
    stages = {line.split()[0] for line in printed.splitlines() if line[:1].isalpha()}
    assert {"decode", "detect", "detect.model", "swap", "swap.model", "paste", "encode", "end-to-end"} <= stages
    assert "glue" in printed


def test_pipeline_benchmark_json_with_restorer(tiny_twins: tuple[Path, str], workdir: Path) -> None:
    printed = _run("benchmarks.run", "--engine", "neural", "--restore", "gfpgan", "--seconds", "0.4", "--frames",
                   "1", "--warmup", "0", "--models", str(tiny_twins[0]), "--workdir", str(workdir), "--json")
    (result,) = json.loads(printed)
    assert (result["engine"], result["restore"], result["frames"], result["frames_swapped"]) == ("neural", "gfpgan",
                                                                                                  1, 1)
    assert result["stages"]["restore.model"]["calls"] == 1
    assert result["stages"]["swap.model"]["calls"] == 1
    assert 0 < result["model_s"] < result["e2e_s"]
    assert result["peak_rss_mb"] >= result["rss_loaded_mb"] > 0


def test_memory_benchmark_prints_the_ratio(workdir: Path) -> None:
    printed = _run("benchmarks.memory", "--short", "0.2", "--long", "0.4", "--workdir", str(workdir))
    assert _header(printed, "clip") == ["clip s", "frames", "frames/s", "RSS after load MB", "peak RSS MB",
                                        "peak - loaded MB", "RSS after run MB"]
    rows = [line.split() for line in printed.splitlines() if line[:1].isdigit()]
    assert [row[:2] for row in rows] == [["0.2", "5"], ["0.4", "10"]]
    assert "peak RSS 0.4 s / 0.2 s = " in printed


@pytest.mark.slow  # a child process loads the neural engine and runs 3 frames: ~10 s on 2 shared cores
def test_neural_memory_profile_prints_each_loading_step(tiny_twins: tuple[Path, str], workdir: Path) -> None:
    printed = _run("benchmarks.memory", "--engine", "neural", "--size", "640x480", "--frames", "1",
                   "--models", str(tiny_twins[0]), "--workdir", str(workdir))
    assert _header(printed, "step") == ["step", "RSS after MB", "Δ RSS MB", "peak so far MB"]
    steps = [line.split("  ")[0] for line in printed.splitlines() if line.startswith(("session ", "engine ", "warm"))]
    sessions = [step.removeprefix("session ") for step in steps if step.startswith("session ")]
    from benchmarks.cost_twins import faces_dir

    models = faces_dir(tiny_twins[0], 1)
    # the product builds the largest session first, while the least else is resident
    assert sessions == sorted(["det_10g.onnx", "w600k_r50.onnx", "genderage.onnx", "inswapper_128.onnx"],
                              key=lambda name: (models / name).stat().st_size, reverse=True)
    assert steps[len(sessions):] == ["engine ready", "warm-up run"]
    assert "vs roop 3,035 MiB (recorded) = " in printed


@pytest.mark.slow  # builds tiny twins, two pipeline runs in child processes, encodes: ~15 s
def test_gpu_benchmark_dry_run_on_the_cpu_provider(tmp_path: Path) -> None:
    started = time.monotonic()
    printed = _run("benchmarks.gpu", "--dry-run", "--out", str(tmp_path), timeout=120)
    assert time.monotonic() - started < 120
    summary = [line.split() for line in printed.splitlines() if line.startswith("neural ")]
    assert [row[:5] for row in summary[:2]] == [["neural", "640x480", "1", "none", "2"],
                                                ["neural", "640x480", "1", "gfpgan", "2"]]
    assert "restore.model" in printed and "swap.model" in printed
    # the dry run forces what `auto` turns on for a GPU: fp16 swapper and restorer, IO binding
    assert "inference: provider cpu; swapper inswapper_128 in fp16; IO binding on" in printed
    assert "swapper inswapper_128 in fp16, restorer fp16; IO binding on" in printed
    assert _header(printed, "encoder")[:5] == ["encoder", "size", "threads", "frames", "frames/s"]
    assert "the 300 frames/s target" in printed
    assert "SKIPPED" not in printed and "dry run: CPU provider" in printed
