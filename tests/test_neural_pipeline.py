"""Whole videos through `faceswap.pipeline.run` with the neural engine built from twins in a models directory, for
both independent twin sets; and the Runtime's engine choice with and without the neural files."""

from __future__ import annotations

from pathlib import Path

import cv2
import media_factory as mf
import numpy as np
import pytest
from twins import build_gfpgan, build_inswapper, build_twin_set, twin_runtime

from faceswap import pipeline
from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.models.store import ModelStore
from faceswap.options import SwapOptions
from faceswap.runtime import Runtime

pytestmark = pytest.mark.slow  # real swaps through subprocesses, servers or clients: the full run only

W, H, PATCH, FRAMES = 640, 360, 180, 12
LAYOUT = mf.row_layout(3, PATCH, W, H)


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, list[np.ndarray]]:
    root = tmp_path_factory.mktemp("neural-media")
    patches = mf.t1_patches(PATCH)
    clip = mf.write_clip(root / "three.mp4", patches, LAYOUT, mf.ClipSpec(width=W, height=H, frames=FRAMES))
    face = root / "astronaut.png"
    cv2.imwrite(str(face), mf.astronaut_face_photo())
    return clip, face, mf.read_frames(clip)


def face_window(index: int, slot: int, half: int = 10) -> tuple[slice, slice]:
    """A small window at the face centre of `slot` in frame `index` (the patch centre)."""
    _, x, y = LAYOUT(index)[slot]
    cx, cy = x + PATCH // 2, y + PATCH // 2
    return slice(cy - half, cy + half), slice(cx - half, cx + half)


@pytest.mark.parametrize(("variant", "restore"), [("real", "none"), ("alt", "codeformer")])
def test_the_chosen_face_is_swapped_in_every_frame(tmp_path: Path, media: tuple[Path, Path, list[np.ndarray]],
                                                   variant: str, restore: str) -> None:
    clip, face_path, originals = media
    twins = build_twin_set(tmp_path / "models", variant=variant)
    runtime = twin_runtime(twins, tmp_path / "data")
    options = SwapOptions.parse(video=str(clip), face=str(face_path), target_faces=[1], engine="neural",
                                restore=restore, codeformer_weight=0.3)
    result = pipeline.run(options, runtime, tmp_path / "out.mp4")

    report = result.report
    assert (report.engine, report.provider, report.restore) == ("neural", "cpu", restore)
    assert report.frames == FRAMES and report.frames_swapped == FRAMES
    frames = mf.read_frames(result.output)
    assert len(frames) == FRAMES

    engine = runtime.engine("neural")
    photo = cv2.imread(str(face_path))
    (source_face,) = engine.analyzer.detect(photo)
    expected = (twins.swapper.colour_bgr(engine.swapper.prepare_source(photo, source_face).latent)
                if restore == "none" else np.full(3, 255 * 0.3))  # CodeFormer's twin paints a grey of level w
    for index, frame in enumerate(frames):
        assert mf.read_stamp(frame) == index
        middle = frame[face_window(index, 1)].reshape(-1, 3).astype(float)
        assert np.abs(middle.mean(axis=0) - expected).max() < 8, index  # the chosen face: replaced
        for slot in (0, 2):  # the others: as they were, up to one more pass through the codec
            window = face_window(index, slot, half=40)
            assert np.abs(frame[window].astype(float) - originals[index][window].astype(float)).mean() < 4


def test_runtime_chooses_neural_when_present_and_says_when_not(tmp_path: Path) -> None:
    twins = build_twin_set(tmp_path / "models")
    runtime = twin_runtime(twins, tmp_path / "data")
    assert runtime.engine("auto").name == "neural"
    assert runtime.engine("auto") is runtime.engine("neural")  # loaded once
    assert runtime.restorer("codeformer").name == "codeformer"

    empty = Runtime(Settings(data_dir=tmp_path / "d2", models_dir=tmp_path / "none", allow_model_download=False))
    with pytest.raises(FaceSwapError) as info:
        empty.engine("neural")
    assert info.value.code == "model_not_available"
    assert "python -m faceswap models download det_10g w600k_r50 genderage inswapper_128" in info.value.message
    fallback = empty.engine("auto")
    assert fallback.name == "classic"
    assert any("models download" in notice for notice in fallback.notices)


def test_an_unverified_model_runs_only_when_allowed_and_every_report_says_so(
        tmp_path: Path, media: tuple[Path, Path, list[np.ndarray]]) -> None:
    clip, face_path, _ = media
    twins = build_twin_set(tmp_path / "models")
    # Other builds with the same interface (think FaceFusion's inswapper, an fp16 GFPGAN): other bytes, so their
    # sha256 is not the registry's.
    build_inswapper(twins.paths["inswapper_128"], keep_target=0.25)
    build_gfpgan(twins.paths["gfpgan_1.4"], variant="alt")

    def runtime(allow: bool) -> Runtime:
        settings = Settings(data_dir=tmp_path / "data", models_dir=twins.directory, allow_model_download=False,
                            allow_unverified_models=allow)
        return Runtime(settings, models=ModelStore(settings, specs=twins.specs))

    strict = runtime(False)
    with pytest.raises(FaceSwapError) as info:
        strict.engine("neural")
    assert info.value.code == "model_not_available" and "inswapper_128.onnx" in info.value.message
    assert strict.engine("auto").name == "classic"

    lenient = runtime(True)
    options = SwapOptions.parse(video=str(clip), face=str(face_path), target_faces=[1], engine="neural",
                                restore="gfpgan")
    report = pipeline.run(options, lenient, tmp_path / "out.mp4").report
    assert (report.engine, report.frames_swapped) == ("neural", FRAMES)
    unverified = [notice for notice in report.notices if "FACESWAP_ALLOW_UNVERIFIED_MODELS" in notice]
    assert len(unverified) == 2, report.notices
    assert "inswapper_128.onnx" in unverified[0] and "GFPGANv1.4.onnx" in unverified[1]


def test_gender_filters_pick_the_right_faces(tmp_path: Path, media: tuple[Path, Path, list[np.ndarray]]) -> None:
    """With a genderage twin that calls one face of the clip male, `target_gender='male'` index 0 is that face —
    wherever it sits — and 'female' index 0 is the leftmost of the others."""
    clip, face_path, originals = media
    for split in np.linspace(0.2, 0.8, 25):  # find a split that makes exactly one of the three faces male
        twins = build_twin_set(tmp_path / f"models-{split:.3f}", male_above=float(split))
        runtime = twin_runtime(twins, tmp_path / "data")
        analyzer = runtime.engine("neural").analyzer
        faces = sorted(analyzer.detect(originals[0]), key=lambda f: f.center[0])
        genders = [analyzer.classify_gender(originals[0], f).gender for f in faces]
        if genders.count("male") == 1:
            break
    else:
        pytest.fail("no split of the genderage twin gives one male face among three")
    male_slot = genders.index("male")
    first_female = genders.index("female")
    for wanted, slot in (("male", male_slot), ("female", first_female)):
        options = SwapOptions.parse(video=str(clip), face=str(face_path), target_faces=[0], engine="neural",
                                    target_gender=wanted, frame_cap=4)
        frames = mf.read_frames(pipeline.run(options, runtime, tmp_path / f"{wanted}.mp4").output)
        changed = [np.abs(frames[1][face_window(1, s, 40)].astype(float)
                          - originals[1][face_window(1, s, 40)].astype(float)).mean() for s in range(3)]
        assert [c > 10 for c in changed] == [s == slot for s in range(3)], (wanted, genders, changed)

    photo = cv2.imread(str(face_path))
    photo_gender = analyzer.classify_gender(photo, analyzer.detect(photo)[0]).gender
    other = "male" if photo_gender == "female" else "female"
    options = SwapOptions.parse(video=str(clip), face=str(face_path), engine="neural", source_gender=other,
                                frame_cap=2)
    with pytest.raises(FaceSwapError) as caught:
        pipeline.run(options, runtime, tmp_path / "no-source.mp4")
    assert caught.value.code == "source_face_not_found" and other in caught.value.message
    assert not (tmp_path / "no-source.mp4").exists()
