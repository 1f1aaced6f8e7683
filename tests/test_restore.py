"""Face restoration with GFPGAN, CodeFormer, GPEN-BFR and RestoreFormer++ twins: the face region changes by the
visibility given, CodeFormer receives the weight given, each enhancer's normalisation and template round-trip, the
restore blend mixes the restored face over the swapped one, nothing outside the face's region is written, and wrong
files are refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import media_factory as mf
import numpy as np
import pytest
from quality_twins import ENHANCER_TEMPLATES, ENHANCERS, build_enhancer
from twins import build_codeformer, build_gfpgan, known_faces

from faceswap.errors import FaceSwapError
from faceswap.faces.align import FFHQ_512, estimate_similarity, transform_points
from faceswap.faces.paste import crop_region
from faceswap.faces.types import Face
from faceswap.models.sessions import SessionFactory
from faceswap.restore import RESTORER_MODELS, load_restorer

SIZE = 512


@pytest.fixture(scope="module")
def restorers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, Path]]:
    root = tmp_path_factory.mktemp("restorers")
    return {variant: {"gfpgan_1.4": build_gfpgan(root / variant / "GFPGANv1.4.onnx", variant=variant),
                      "codeformer": build_codeformer(root / variant / "codeformer.onnx", variant=variant)}
            for variant in ("real", "alt")}


@pytest.fixture(scope="module")
def scene() -> tuple[np.ndarray, Face]:
    """A 640x480 frame with the astronaut's face, and a Face that has only what restoration needs (kps)."""
    face = next(f for f in known_faces() if f.name == "astronaut")
    frame = mf.background(640, 480)
    frame[100:380, 200:470] = face.photo
    kps = (face.kps + np.array([200, 100])).astype(np.float32)
    box = np.array([face.box[0] + 200, face.box[1] + 100, face.box[2] + 200, face.box[3] + 100], np.float32)
    return frame, Face(bbox=box, score=0.9, kps=kps)


def face_centre(face: Face) -> tuple[slice, slice]:
    x, y = face.kps[2].astype(int)  # the nose: deep inside the mask, where it is fully 1
    return slice(y - 6, y + 6), slice(x - 6, x + 6)


def region_outside(frame: np.ndarray, face: Face) -> np.ndarray:
    matrix = estimate_similarity(face.kps, FFHQ_512)
    x1, y1, x2, y2 = crop_region(frame.shape, (SIZE, SIZE), matrix)
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    return outside


@pytest.mark.parametrize("variant", ["real", "alt"])
def test_restoration_changes_the_face_by_the_visibility(restorers: dict[str, dict[str, Path]],
                                                        scene: tuple[np.ndarray, Face], variant: str) -> None:
    restorer = load_restorer("gfpgan", restorers[variant], SessionFactory(("cpu",)))
    assert restorer.name == "gfpgan"
    frame, face = scene
    rows, cols = face_centre(face)
    original = frame[rows, cols].astype(float)
    inverted = 255 - original  # what the GFPGAN twin returns for the face
    outside = region_outside(frame, face)
    for visibility in (0.1, 0.5, 1.0):
        out = restorer.restore(frame.copy(), face, visibility=visibility, codeformer_weight=0.5)
        expected = original + visibility * (inverted - original)
        assert np.abs(out[rows, cols].astype(float) - expected).mean() < 3, visibility
        assert np.array_equal(out[outside], frame[outside])
    assert np.array_equal(frame, scene[0])  # restore wrote into the copies only


@pytest.mark.parametrize("variant", ["real", "alt"])
def test_codeformer_receives_the_weight(restorers: dict[str, dict[str, Path]], scene: tuple[np.ndarray, Face],
                                        variant: str) -> None:
    restorer = load_restorer("codeformer", restorers[variant], SessionFactory(("cpu",)))
    frame, face = scene
    rows, cols = face_centre(face)
    outside = region_outside(frame, face)
    for weight in (0.0, 0.3, 0.95):
        out = restorer.restore(frame.copy(), face, visibility=1.0, codeformer_weight=weight)
        assert np.abs(out[rows, cols].astype(float) - 255 * weight).max() <= 1, weight  # flat grey of level w
        assert np.array_equal(out[outside], frame[outside])


def test_restoration_follows_the_face_not_the_frame(restorers: dict[str, dict[str, Path]],
                                                    scene: tuple[np.ndarray, Face]) -> None:
    # A rotated face: the restored crop goes back through the same rotation, centred on the face.
    frame, face = scene
    centre = tuple(float(v) for v in face.kps[2])
    rotation = cv2.getRotationMatrix2D(centre, 25, 1.0)
    turned = cv2.warpAffine(frame, rotation, (frame.shape[1], frame.shape[0]), borderMode=cv2.BORDER_REPLICATE)
    turned_face = Face(bbox=face.bbox, score=face.score, kps=transform_points(face.kps, rotation))
    restorer = load_restorer("codeformer", restorers["real"], SessionFactory(("cpu",)))
    out = restorer.restore(turned.copy(), turned_face, visibility=1.0, codeformer_weight=1.0)
    for point in turned_face.kps:
        x, y = point.astype(int)
        assert np.all(out[y, x] >= 250)  # every key point sits inside the restored (white) area
    assert np.array_equal(out[region_outside(turned, turned_face)], turned[region_outside(turned, turned_face)])


def test_wrong_restorer_files_are_refused(restorers: dict[str, dict[str, Path]]) -> None:
    files = restorers["real"]
    assert RESTORER_MODELS["gfpgan"] == ("gfpgan_1.4",) and RESTORER_MODELS["codeformer"] == ("codeformer",)
    with pytest.raises(FaceSwapError) as info:
        load_restorer("gfpgan", {"gfpgan_1.4": files["codeformer"]}, SessionFactory(("cpu",)))
    assert info.value.code == "model_not_available" and "fidelity weight" in info.value.message
    with pytest.raises(FaceSwapError) as info:
        load_restorer("codeformer", {"codeformer": files["gfpgan_1.4"]}, SessionFactory(("cpu",)))
    assert "codeformer.onnx" not in info.value.message and "GFPGANv1.4.onnx" in info.value.message
    with pytest.raises(FaceSwapError) as info:
        load_restorer("gpen", files, SessionFactory(("cpu",)))
    assert info.value.code == "invalid_request"


def test_restoration_works_on_faces_found_by_the_classic_engine(restorers: dict[str, dict[str, Path]],
                                                                 scene: tuple[np.ndarray, Face]) -> None:
    from faceswap.engines.classic import load_classic_engine

    frame = scene[0]
    (face,) = load_classic_engine().analyzer.detect(frame, None)
    restorer = load_restorer("codeformer", restorers["real"], SessionFactory(("cpu",)))
    out = restorer.restore(frame.copy(), face, visibility=1.0, codeformer_weight=1.0)
    rows, cols = face_centre(face)
    assert np.all(out[rows, cols] >= 250)
    assert np.array_equal(out[region_outside(frame, face)], frame[region_outside(frame, face)])


# ------------------------------------------------------------------------------------------------ more enhancers
def kind_of(name: str) -> str:
    return next(kind for kind, names in RESTORER_MODELS.items() if names == (name,))


def test_the_restore_choices_are_the_registry_restorers_with_their_terms() -> None:
    from faceswap.models.registry import REGISTRY, names_with_role
    from faceswap.options import RESTORES

    assert RESTORES[0] == "none"
    assert {name for (name,) in RESTORER_MODELS.values()} == set(names_with_role("restorer"))
    assert set(RESTORES[1:]) == set(RESTORER_MODELS)
    for name, (size, template) in ENHANCERS.items():
        spec = REGISTRY[name]
        assert (spec.role, spec.input_size, spec.template) == ("restorer", size, template), name
    for name in ("gpen_bfr_256", "gpen_bfr_512", "gpen_bfr_1024", "gpen_bfr_2048"):
        assert "non-commercial" in REGISTRY[name].licence and REGISTRY[name].checksum_note.startswith("unchecked")
        assert REGISTRY[name].url == f"https://huggingface.co/facefusion/models-3.0.0/resolve/main/{name}.onnx"
    assert "Apache-2.0" in REGISTRY["restoreformer_plus_plus"].licence


@pytest.mark.parametrize("name", [pytest.param(name, marks=pytest.mark.slow) if size > 1024 else name
                                  for name, (size, _) in ENHANCERS.items()])  # 2048 px crops: seconds on 2 cores
def test_each_enhancer_round_trips_its_normalisation_and_template(tmp_path: Path, scene: tuple[np.ndarray, Face],
                                                                  name: str) -> None:
    size, template = ENHANCERS[name]
    frame, face = scene
    rows, cols = face_centre(face)
    outside = region_outside(frame, face) if size == SIZE and template == "ffhq_512" else None
    echo = build_enhancer(tmp_path / "echo.onnx", size, template=template)
    restorer = load_restorer(kind_of(name), {name: echo}, SessionFactory(("cpu",)))
    out = restorer.restore(frame.copy(), face, visibility=1.0, codeformer_weight=0.5)
    # [-1, 1] in and back: the face comes back as it was (a [0, 1] feed, or BGR, would shift its colours)
    assert np.abs(out[rows, cols].astype(float) - frame[rows, cols].astype(float)).mean() < 2
    if outside is not None:
        assert np.array_equal(out[outside], frame[outside])

    probe = build_enhancer(tmp_path / "probe.onnx", size, template=template, probe=True)
    restorer = load_restorer(kind_of(name), {name: probe}, SessionFactory(("cpu",)))
    out = restorer.restore(frame.copy(), face, visibility=1.0, codeformer_weight=0.5)
    # where the face's key points sit on the model's template (least squares, MODELS.md §7), the crop came back
    points = np.asarray(ENHANCER_TEMPLATES[template]) * size
    for x, y in np.rint(transform_points(points, cv2.invertAffineTransform(estimate_similarity(face.kps, points)))
                        ).astype(int):
        window = (slice(y - 1, y + 2), slice(x - 1, x + 2))
        assert np.median(np.abs(out[window].astype(float) - frame[window].astype(float))) < 12, (name, x, y)
    eyes, mouth = face.kps[:2].mean(axis=0), face.kps[3:].mean(axis=0)
    x, y = np.rint(eyes + 0.5 * (eyes - mouth)).astype(int)  # the forehead: off every disc, so black
    assert frame[y - 1:y + 2, x - 1:x + 2].mean() > 60 and out[y - 1:y + 2, x - 1:x + 2].mean() < 25


def test_enhancer_files_of_another_size_or_kind_are_refused(tmp_path: Path,
                                                           restorers: dict[str, dict[str, Path]]) -> None:
    factory = SessionFactory(("cpu",))
    at_512 = build_enhancer(tmp_path / "512.onnx", 512)
    with pytest.raises(FaceSwapError) as info:
        load_restorer("gpen_bfr_256", {"gpen_bfr_256": at_512}, factory)
    assert info.value.code == "model_not_available" and "512 px" in info.value.message
    assert "256 px" in info.value.message and str(tmp_path) not in info.value.message
    with pytest.raises(FaceSwapError) as info:
        load_restorer("gpen_bfr_2048", {"gpen_bfr_2048": at_512}, factory)
    assert "2048 px" in info.value.message
    with pytest.raises(FaceSwapError) as info:  # CodeFormer's weighted file is no GPEN
        load_restorer("gpen_bfr_512", {"gpen_bfr_512": restorers["real"]["codeformer"]}, factory)
    assert "fidelity weight" in info.value.message
    unsized = build_enhancer(tmp_path / "unsized.onnx", 512, symbolic=True)
    with pytest.raises(FaceSwapError) as info:  # a restorer of unknown size: never a guess
        load_restorer("restoreformer_plus_plus", {"restoreformer_plus_plus": unsized}, factory)
    assert info.value.code == "model_not_available" and "match no model" in info.value.message


# ------------------------------------------------------------------------------------------------ restore blend
BlendSetup = tuple[Any, Any, np.ndarray, Any]
"""The neural engine, the GFPGAN restorer, a frame, the twin set."""


@pytest.fixture(scope="module")
def blend_setup(tmp_path_factory: pytest.TempPathFactory) -> BlendSetup:
    """The neural engine on twins (a flat-colour swapper), the GFPGAN twin (the inverted face) and a frame of three
    real faces."""
    from twins import build_twin_set

    from faceswap.engines.neural import load_neural_engine

    twins = build_twin_set(tmp_path_factory.mktemp("blend"))
    factory = SessionFactory(("cpu",))
    engine = load_neural_engine(twins.paths, factory)
    restorer = load_restorer("gfpgan", twins.paths, factory)
    layout = mf.row_layout(3, 180, 640, 360)
    return engine, restorer, mf.render(mf.t1_patches(180), layout, 0, 640, 360, mf.background(640, 360)), twins


def swapped_frame(blend_setup: BlendSetup, **fields: Any) -> np.ndarray:
    from faceswap.faces.select import TargetSelector
    from faceswap.options import SwapOptions
    from faceswap.swap.session import SwapParams, SwapSession, still_locator

    engine, restorer, frame, _ = blend_setup
    options = SwapOptions.parse(video="v.mp4", face="f.png", engine="neural", selection="per_frame", target_faces=[1],
                                **fields)
    photo = mf.astronaut_face_photo()
    (face,) = engine.analyzer.detect(photo)
    sources = [engine.swapper.prepare_source(photo, engine.analyzer.embed(photo, face))]
    session = SwapSession(params=SwapParams.from_options(options), analyzer=engine.analyzer, swapper=engine.swapper,
                          sources=sources, selector=TargetSelector(options, engine.analyzer),
                          locate=still_locator(engine.analyzer),
                          restorer=restorer if options.restore != "none" else None)
    result = session.process(frame)
    assert result.swapped == 1
    return result.image


def test_restore_blend_mixes_the_restored_face_over_the_swapped_one(blend_setup: BlendSetup) -> None:
    engine, restorer, frame, _ = blend_setup
    target = sorted(engine.analyzer.detect(frame), key=lambda face: face.bbox[0])[1]
    rows, cols = face_centre(target)
    swapped = swapped_frame(blend_setup)
    assert np.abs(swapped[rows, cols].astype(float) - frame[rows, cols].astype(float)).mean() > 20  # it swapped
    # blend 0: the swapped face exactly as the swapper left it (the restorer does not even run)
    np.testing.assert_array_equal(swapped_frame(blend_setup, restore="gfpgan", restore_blend=0), swapped)
    # blend 100: the restorer's output over the swapped frame, exactly
    full = swapped_frame(blend_setup, restore="gfpgan", restore_blend=100)
    expected = restorer.restore(swapped.copy(), target, visibility=1.0, codeformer_weight=0.95)
    np.testing.assert_array_equal(full, expected)
    assert np.abs(full[rows, cols].astype(float) - (255 - swapped[rows, cols].astype(float))).mean() < 3
    # in between, and on top of the visibility: a straight mix of the two
    for blend, visibility in ((50, 1.0), (80, 0.5)):
        mixed = swapped_frame(blend_setup, restore="gfpgan", restore_blend=blend, restore_visibility=visibility)
        share = blend / 100 * visibility
        wanted = swapped[rows, cols] * (1 - share) + full[rows, cols].astype(float) * share
        assert np.abs(mixed[rows, cols].astype(float) - wanted).max() <= 1.5, blend


def test_restore_blend_in_options_cli_and_rest() -> None:
    from faceswap.api import openoctopus, segmind, wavespeed
    from faceswap.api.common import QualityExtensions, build_options, quality_options
    from faceswap.cli import build_parser
    from faceswap.options import SwapOptions

    assert SwapOptions.parse(video="v", face="f").restore_blend == 100
    assert SwapOptions.parse(video="v", face="f", restore_blend="80").restore_blend == 80
    for bad in (-1, 101, 50.5, "most"):
        with pytest.raises(FaceSwapError) as info:
            SwapOptions.parse(video="v", face="f", restore_blend=bad)
        assert info.value.code == "invalid_request" and info.value.field == "restore_blend", bad
    args = build_parser().parse_args(["swap", "v.mp4", "f.png", "-o", "o.mp4", "--restore", "gpen_bfr_512",
                                      "--restore-blend", "35"])
    assert (args.restore, args.restore_blend) == ("gpen_bfr_512", 35)
    assert "Extension" in (QualityExtensions.model_fields["restore_blend"].description or "")
    bodies = [segmind.VideoFaceSwapRequest(source_img="f", video_input="v", face_restore=True,
                                           restore="restoreformer_plus_plus", restore_blend=40),
              wavespeed.FaceSwapInput(video="v", face_image="f", restore="restoreformer_plus_plus", restore_blend=40),
              openoctopus.GenerationInput(video="v", face_image="f", restore="restoreformer_plus_plus",
                                          restore_blend=40)]
    for body in bodies:
        options = build_options({"video": "v", "face": "f", **quality_options(body)}, {})
        assert (options.restore, options.restore_blend) == ("restoreformer_plus_plus", 40)


def test_the_report_says_how_much_restoration_was_blended_in(blend_setup: BlendSetup,
                                                            tmp_path: Path) -> None:
    from twins import twin_runtime

    from faceswap import pipeline
    from faceswap.options import SwapOptions

    twins = blend_setup[3]
    clip = mf.write_clip(tmp_path / "clip.mp4", mf.t1_patches(180), mf.row_layout(3, 180, 640, 360),
                         mf.ClipSpec(width=640, height=360, frames=2))
    face = tmp_path / "face.png"
    cv2.imwrite(str(face), mf.astronaut_face_photo())
    options = SwapOptions.parse(video=str(clip), face=str(face), engine="neural", restore="gfpgan", restore_blend=40)
    report = pipeline.run(options, twin_runtime(twins, tmp_path / "data"), tmp_path / "out.mp4").report
    assert (report.restore, report.restore_blend, report.frames_swapped) == ("gfpgan", 40, 2)
    assert report.to_dict()["restore_blend"] == 40
