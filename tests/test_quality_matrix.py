"""One clip through every swapper × (box only, occlusion+region) × (native, pixel boost 512) via the CLI
(`faceswap.cli.main`, in process, with a Runtime over twins): frames, fps and audio kept, the target swapped, and
with occlusion+region the green hand and the target's mouth kept.

Siblings that share a family, an adapter and a twin with a swapper run in full (inswapper_128_fp16,
hyperswap_1b/1c, ghost_2/3) take the two diagonal cases only, to keep the matrix near a minute."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import media_factory as mf
import numpy as np
import pytest
from quality_twins import with_mask_models
from swapper_twins import build_swapper
from test_masks import KEEP_MOUTH, differs, encode_clip, hand_box, mouth_window
from twins import TwinSet, build_hyperswap, build_twin_set, twin_runtime, twin_specs

from faceswap import cli
from faceswap.models.registry import REGISTRY
from faceswap.options import SWAPPERS

pytestmark = pytest.mark.slow  # forty-two CLI runs of a 3-frame clip: about 55 s

SIBLINGS = ("inswapper_128_fp16", "hyperswap_1b_256", "hyperswap_1c_256", "ghost_2_256", "ghost_3_256")
CASES = [(swapper, masked, boost) for swapper in SWAPPERS for masked in (False, True) for boost in ("native", "512")
         if swapper not in SIBLINGS or masked == (boost == "512")]

W, H, PATCH, FRAMES, FPS = 640, 360, 180, 3, 12
LAYOUT = mf.row_layout(3, PATCH, W, H)
Setup = tuple[TwinSet, Path, Path, list[np.ndarray], list[tuple[slice, slice]]]


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Setup:
    root = tmp_path_factory.mktemp("matrix")
    clip = mf.write_clip(root / "plain.mp4", mf.t1_patches(PATCH), LAYOUT,
                         mf.ClipSpec(width=W, height=H, frames=FRAMES, fps=FPS))
    frames = mf.read_frames(clip)
    for index, frame in enumerate(frames):
        frame[hand_box(index)] = (0, 255, 0)
    handed = encode_clip(root / "hand.mp4", frames, fps=FPS, audio_from=clip)
    face = root / "astronaut.png"
    cv2.imwrite(str(face), mf.astronaut_face_photo())
    twins = with_mask_models(build_twin_set(root / "models"))
    paths = dict(twins.paths)
    for name in SWAPPERS:
        if name.startswith("hyperswap"):
            paths[name] = twins.directory / REGISTRY[name].filename
            build_hyperswap(paths[name], echo=False)
        elif name != "inswapper_128":
            paths.update(build_swapper(twins.directory, name, echo=False))
    twins = TwinSet(twins.directory, paths, twins.swapper, twin_specs(paths))
    originals = mf.read_frames(handed)
    mouths = [mouth_window(frame, twins, root) for frame in originals]
    return twins, handed, face, originals, mouths


@pytest.mark.parametrize(("swapper", "masked", "boost"), CASES,
                         ids=[f"{s}-{'occlusion+region' if m else 'box'}-{b}" for s, m, b in CASES])
def test_every_swapper_mask_and_boost_through_the_cli(
        setup: Setup, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], swapper: str, masked: bool, boost: str) -> None:
    twins, clip, face, originals, mouths = setup
    monkeypatch.setattr(cli, "_runtime", lambda: twin_runtime(twins, tmp_path / "data"))
    out = tmp_path / "out.mp4"
    args = ["swap", str(clip), str(face), "-o", str(out), "--target", "1", "--engine", "neural", "--swapper", swapper,
            "--pixel-boost", boost, "--json"]
    if masked:
        args += ["--mask", "box,occlusion,region", "--mask-regions", ",".join(KEEP_MOUTH)]
    assert cli.main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["frames_swapped"] == FRAMES, report
    probe, source = mf.probe(out), mf.probe(clip)
    assert (probe.frames, probe.fps, probe.has_audio) == (FRAMES, source.fps, True)
    assert abs(probe.audio_seconds - source.audio_seconds) < 0.1
    frames = mf.read_frames(out)
    for index, (before, after) in enumerate(zip(originals, frames, strict=True)):
        mouth = mouths[index]
        hand = hand_box(index)
        hand = (slice(hand[0].start + 4, hand[0].stop - 4), slice(hand[1].start + 4, hand[1].stop - 4))
        eye_y, eye_x = mouth[0].start - 30, mouth[1].start
        assert differs(after[eye_y:eye_y + 5, eye_x:eye_x + 5], before[eye_y:eye_y + 5, eye_x:eye_x + 5]) > 20
        if masked:
            assert differs(after[hand], before[hand]) < 4 and differs(after[mouth], before[mouth]) < 4, index
        else:
            assert differs(after[hand], before[hand]) > 40 and differs(after[mouth], before[mouth]) > 20, index
