"""Bad input through the CLI: exit 2, the catalog code, a sentence a person understands, nothing left behind."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_factory import ClipSpec, astronaut_face_photo, row_layout, t1_patches, write_clip

pytestmark = pytest.mark.slow  # each case starts the CLI in a subprocess: the full run only


def run_cli(*args: str | Path, as_json: bool = True) -> subprocess.CompletedProcess:
    extra = ["--json"] if as_json else []
    return subprocess.run([sys.executable, "-m", "faceswap", *map(str, args), *extra], capture_output=True,
                          text=True, timeout=300)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bad-input")
    good = write_clip(root / "good.mp4", t1_patches(180), row_layout(3, 180, 640, 360), ClipSpec(frames=12))
    data = good.read_bytes()
    face = root / "face.png"
    cv2.imwrite(str(face), astronaut_face_photo())
    truncated = root / "truncated.mp4"
    truncated.write_bytes(data[: len(data) // 2])
    text = root / "notes.mp4"
    text.write_text("this is not a video, just some text\n" * 20)
    empty = root / "empty.mp4"
    empty.write_bytes(b"")
    faceless_photo = root / "coffee.png"
    from skimage import data as skdata

    cv2.imwrite(str(faceless_photo), np.ascontiguousarray(skdata.coffee()[:, :, ::-1]))
    faceless_video = write_clip(root / "faceless.mp4", [], lambda i: [], ClipSpec(frames=12))
    return {"root": root, "good": good, "face": face, "truncated": truncated, "text": text, "empty": empty,
            "faceless_photo": faceless_photo, "faceless_video": faceless_video}


CASES = {
    "truncated": ("truncated", "face", "unsupported_media"),
    "text named .mp4": ("text", "face", "unsupported_media"),
    "zero bytes": ("empty", "face", "unsupported_media"),
    "photo with no face": ("good", "faceless_photo", "source_face_not_found"),
    "video with no face": ("faceless_video", "face", "target_face_not_found"),
    "missing file": ("root", "face", "invalid_request"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_exits_2_with_its_code_and_leaves_nothing(files, case):
    video_key, face_key, code = CASES[case]
    video = files[video_key] / "nope.mp4" if video_key == "root" else files[video_key]
    output = files["root"] / f"out-{case.replace(' ', '_')}.mp4"
    before = set(files["root"].iterdir())
    completed = run_cli("swap", video, files[face_key], "-o", output)
    assert completed.returncode == 2, completed.stderr
    error = json.loads(completed.stdout)["error"]
    assert error["code"] == code
    assert error["retryable"] is False
    assert len(error["message"]) > 20 and "Traceback" not in completed.stdout + completed.stderr
    assert set(files["root"].iterdir()) == before  # no output, no partial file


def test_plain_mode_prints_a_sentence_not_a_traceback(files):
    completed = run_cli("swap", files["text"], files["face"], "-o", files["root"] / "x.mp4", as_json=False)
    assert completed.returncode == 2
    assert completed.stderr.strip().startswith("error [unsupported_media]:")
    assert "Traceback" not in completed.stderr


def test_target_index_beyond_the_faces_says_how_many_there_are(files):
    completed = run_cli("swap", files["good"], files["face"], "-o", files["root"] / "x.mp4", "--target", "5")
    assert completed.returncode == 2
    error = json.loads(completed.stdout)["error"]
    assert error["code"] == "target_face_not_found" and "3 face" in error["message"]


def test_bad_arguments_are_invalid_request(files):
    for args in (["--target", "first"], ["--restore-visibility", "3"], ["--source", "0,1", "--target", "0"],
                 ["--engine", "classic", "--target-gender", "male"]):
        completed = run_cli("swap", files["good"], files["face"], "-o", files["root"] / "x.mp4", *args)
        assert completed.returncode == 2, args
        assert json.loads(completed.stdout)["error"]["code"] == "invalid_request", args


def test_output_name_must_match_the_format(files):
    completed = run_cli("swap", files["good"], files["face"], "-o", files["root"] / "x.gif")
    assert completed.returncode == 2
    assert "mp4" in json.loads(completed.stdout)["error"]["message"]
    assert not (files["root"] / "x.gif").exists()


def test_neural_without_models_or_network_fails_fast_and_auto_runs_classic(files, tmp_path):
    import os
    import time

    env = {**os.environ, "FACESWAP_MODELS_DIR": str(tmp_path / "no-models"), "HF_ENDPOINT": "http://127.0.0.1:9"}
    env.pop("HF_HUB_OFFLINE", None)  # downloads allowed, but the Hub cannot be reached
    output = tmp_path / "neural.mp4"
    started = time.monotonic()
    completed = subprocess.run([sys.executable, "-m", "faceswap", "swap", str(files["good"]), str(files["face"]),
                                "-o", str(output), "--engine", "neural", "--json"], capture_output=True, text=True,
                               timeout=120, env=env)
    assert time.monotonic() - started < 30
    assert completed.returncode == 2
    error = json.loads(completed.stdout)["error"]
    assert error["code"] == "model_not_available"
    assert "python -m faceswap models download" in error["message"] and "inswapper_128.onnx" in error["message"]
    assert not output.exists()

    completed = subprocess.run([sys.executable, "-m", "faceswap", "swap", str(files["good"]), str(files["face"]),
                                "-o", str(output), "--frame-cap", "3", "--json"], capture_output=True, text=True,
                               timeout=120, env=env)
    assert completed.returncode == 0, completed.stdout
    result = json.loads(completed.stdout)
    assert result["engine"] == "classic" and any("classic engine ran" in n for n in result["notices"])
