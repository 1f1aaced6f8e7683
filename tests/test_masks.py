"""Masks (MODELS.md §11, §17.4): box padding, area masks that follow the landmarks, region masks, occluder and
parser twins routed by exact signature, and whole videos through `pipeline.run` in which an occluded hand and the
target's mouth are kept."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import cv2
import media_factory as mf
import numpy as np
import pytest
from quality_twins import build_bisenet, build_xseg, twin_landmarks_68, with_landmarker, with_mask_models
from twins import HANKS_KPS, TwinSet, build_twin_set, twin_runtime

from faceswap import pipeline
from faceswap.engines.neural.maskers import BisenetParser, XsegOccluder, load_masker
from faceswap.errors import FaceSwapError
from faceswap.faces.align import arcface_template, estimate_similarity, transform_points
from faceswap.faces.types import Face
from faceswap.models.sessions import SessionFactory
from faceswap.options import SwapOptions
from faceswap.swap import masks

W, H, PATCH, FRAMES = 640, 360, 180, 4
LAYOUT = mf.row_layout(3, PATCH, W, H)
KEEP_MOUTH = [region for region in masks.REGION_CLASSES if region not in ("mouth", "upper-lip", "lower-lip")]


# ------------------------------------------------------------------------------------------------ pure masks
def test_box_mask_padding_clears_each_side_by_its_percentage() -> None:
    plain = masks.box_mask(128, 0.0)
    padded = masks.box_mask(128, 0.0, (10, 0, 25, 50))
    assert plain[1:-1, 1:-1].min() == 1 and plain[0].max() == 0
    assert padded[:12].max() == 0 and padded[13:96, 64:127].min() == 1  # top 12 rows, bottom 32, left 64
    assert padded[96:].max() == 0 and padded[:, :64].max() == 0
    np.testing.assert_array_equal(masks.box_mask(128, 0.3), masks.box_mask(128, 0.3, (0, 0, 0, 0)))


def test_area_masks_follow_the_landmarks() -> None:
    kps = np.array(HANKS_KPS, np.float32)
    points = masks.estimate_68(kps)
    tolerance = 0.2 * float(np.linalg.norm(kps[1] - kps[0]))  # an estimate: a fifth of the eye distance
    assert np.abs(points[48] - kps[3]).max() < tolerance and np.abs(points[54] - kps[4]).max() < tolerance
    assert np.abs(points[36:42].mean(axis=0) - kps[0]).max() < tolerance  # left eye
    move = np.float32([17, -9])
    np.testing.assert_allclose(masks.estimate_68(kps + move), points + move, atol=1e-3)  # moves with them

    dense = Face(bbox=np.zeros(4, np.float32), score=1.0, kps=kps, landmarks=points + 5)
    np.testing.assert_array_equal(masks.landmarks_68(dense), points + 5)  # the analyzer's own landmarks win

    matrix = estimate_similarity(kps, arcface_template(256))  # σ 5 px is a lot for a mouth at 128: crop at 256
    in_crop = transform_points(points, matrix)
    mouth = masks.area_mask(in_crop, ["mouth"], 256)
    ys, xs = np.nonzero(mouth > 0.5)
    centre = transform_points(kps[3:5].mean(axis=0, keepdims=True), matrix)[0]
    assert abs(xs.mean() - centre[0]) < 6 and abs(ys.mean() - centre[1]) < 8
    upper = masks.area_mask(in_crop, ["upper-face"], 256)
    assert upper[int(centre[1]), int(centre[0])] == 0 and mouth[int(centre[1]), int(centre[0])] > 0.75
    eyes = transform_points(kps[:2].mean(axis=0, keepdims=True), matrix)[0].astype(int)
    assert upper[eyes[1], eyes[0]] > 0.99 and mouth[eyes[1], eyes[0]] == 0
    shifted = masks.area_mask(in_crop + np.float32([10, 0]), ["mouth"], 256)
    assert abs(np.nonzero(shifted > 0.5)[1].mean() - xs.mean() - 10) < 1


def test_region_mask_keeps_only_the_chosen_classes() -> None:
    labels = np.full((512, 512), 1)
    labels[300:420, 150:360] = 11  # mouth
    labels[:40] = 17  # hair: never kept
    everything = masks.region_mask(labels, list(masks.REGION_CLASSES), 128)
    no_mouth = masks.region_mask(labels, KEEP_MOUTH, 128)
    assert everything[90, 64] == 1 and no_mouth[90, 64] == 0 and no_mouth[50, 64] == 1
    assert everything[2, 64] == 0


# ------------------------------------------------------------------------------------------------ adapters
def test_occluder_and_parser_twins_route_by_signature_and_a_wrong_file_is_a_catalog_error(tmp_path: Path) -> None:
    factory = SessionFactory(("cpu",))
    xseg = build_xseg(tmp_path / "xseg_1.onnx")
    parser = build_bisenet(tmp_path / "bisenet_resnet_18.onnx", aux_heads=True)
    occluder = load_masker("xseg_1", "occluder", xseg, factory.session(xseg))
    assert isinstance(occluder, XsegOccluder)
    crop = np.full((128, 128, 3), 120, np.uint8)
    crop[40:80, 40:80] = (0, 255, 0)  # a green hand
    keep = occluder.mask(crop)
    assert keep.shape == (128, 128) and keep.dtype == np.float32
    assert keep[60, 60] == 0 and keep[10, 10] == 1
    labels = load_masker("bisenet_resnet_18", "parser", parser, factory.session(parser))
    assert isinstance(labels, BisenetParser) and labels.labels(crop)[370, 256] == 11
    for name, role, path in (("xseg_1", "occluder", parser), ("bisenet_resnet_18", "parser", xseg)):
        with pytest.raises(FaceSwapError) as info:
            load_masker(name, role, path, factory.session(path))
        assert info.value.code == "model_not_available" and path.name in info.value.message


def test_mask_options_parse_and_the_classic_engine_refuses_them() -> None:
    options = SwapOptions.parse(video="v.mp4", face="f.png", mask="box, occlusion,box", mask_padding="5",
                                mask_regions="skin,nose", mask_areas=["upper-face"])
    assert options.mask == ["box", "occlusion"] and options.mask_padding == (5, 5, 5, 5)
    assert options.mask_regions == ["skin", "nose"] and options.mask_areas == ["upper-face"]
    for bad in ({"mask": "hat"}, {"mask": ""}, {"mask_padding": "0,0,101,0"}, {"mask_areas": "chin"},
                {"mask": "occlusion", "engine": "classic"}, {"mask_occluder": "xseg_9"}):
        with pytest.raises(FaceSwapError) as info:
            SwapOptions.parse(video="v.mp4", face="f.png", **bad)
        assert info.value.code == "invalid_request", bad


# ------------------------------------------------------------------------------------------------ whole videos
def hand_box(index: int) -> tuple[slice, slice]:
    """A 20-pixel green square on the cheek of the middle face (frame coordinates in frame `index`)."""
    _, x, y = LAYOUT(index)[1]
    return slice(y + 88, y + 108), slice(x + 52, x + 72)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> tuple[TwinSet, Path, Path, list[np.ndarray]]:
    root = tmp_path_factory.mktemp("masks")
    patches = mf.t1_patches(PATCH)
    clip = mf.write_clip(root / "three.mp4", patches, LAYOUT, mf.ClipSpec(width=W, height=H, frames=FRAMES))
    frames = mf.read_frames(clip)
    for index, frame in enumerate(frames):  # paint the hand on the decoded frames, then encode them again
        frame[hand_box(index)] = (0, 255, 0)
    handed = encode_clip(root / "hand.mp4", frames)
    face = root / "astronaut.png"
    cv2.imwrite(str(face), mf.astronaut_face_photo())
    twins = with_mask_models(build_twin_set(root / "models"))
    return twins, handed, face, mf.read_frames(handed)


def encode_clip(path: Path, frames: list[np.ndarray], *, fps: int = 12, audio_from: Path | None = None) -> Path:
    """Encode decoded (and painted-on) frames again at high quality, with the audio of `audio_from` copied in."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = W, H, "yuv420p"
        stream.options = {"crf": "12"}
        audio = None
        if audio_from is not None:
            source = av.open(str(audio_from))
            audio = container.add_stream("aac", rate=48000)
            audio.layout = "mono"
        for frame in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
        if audio is not None:
            with source:
                for decoded in source.decode(audio=0):
                    decoded.pts = None
                    for packet in audio.encode(decoded):
                        container.mux(packet)
            for packet in audio.encode():
                container.mux(packet)
    return path


def run(setup: tuple[TwinSet, Path, Path, list[np.ndarray]], tmp_path: Path, **fields: object) -> list[np.ndarray]:
    twins, clip, face, _ = setup
    options = SwapOptions.parse(video=str(clip), face=str(face), target_faces=[1], engine="neural", **fields)
    tmp_path.mkdir(parents=True, exist_ok=True)
    result = pipeline.run(options, twin_runtime(twins, tmp_path / "data"), tmp_path / "out.mp4")
    assert result.report.frames_swapped == FRAMES
    return mf.read_frames(result.output)


def mouth_window(runtime_frame: np.ndarray, twins: TwinSet, tmp_path: Path) -> tuple[slice, slice]:
    engine = twin_runtime(twins, tmp_path / "probe").engine("neural")
    faces = sorted(engine.analyzer.detect(runtime_frame), key=lambda face: face.bbox[0])
    x, y = faces[1].kps[3:5].mean(axis=0).astype(int)
    return slice(y - 2, y + 3), slice(x - 2, x + 3)


def differs(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(float) - b.astype(float)).mean())


@pytest.mark.slow
def test_occluded_hand_and_parsed_mouth_keep_the_target_pixels(
        setup: tuple[TwinSet, Path, Path, list[np.ndarray]], tmp_path: Path) -> None:
    twins, _, _, originals = setup
    mouths = [mouth_window(frame, twins, tmp_path) for frame in originals]
    hands = [(hand_box(i)[0].start + 4, hand_box(i)[0].stop - 4, hand_box(i)[1].start + 4, hand_box(i)[1].stop - 4)
             for i in range(FRAMES)]
    plain = run(setup, tmp_path / "plain")
    masked = run(setup, tmp_path / "masked", mask="box,occlusion,region", mask_regions=KEEP_MOUTH)
    for index, (before, swapped, kept) in enumerate(zip(originals, plain, masked, strict=True)):
        y1, y2, x1, x2 = hands[index]
        hand = (slice(y1, y2), slice(x1, x2))
        assert differs(swapped[hand], before[hand]) > 40, index  # box only: the hand is painted over
        assert differs(kept[hand], before[hand]) < 4, index  # occlusion: the hand stays
        mouth = mouths[index]
        assert differs(swapped[mouth], before[mouth]) > 40, index
        assert differs(kept[mouth], before[mouth]) < 4, index  # region without the mouth: the target's mouth
        eye_x, eye_y = mouth[1].start, mouth[0].start - 30  # above the mouth, on the face: still swapped
        assert differs(kept[eye_y:eye_y + 5, eye_x:eye_x + 5], swapped[eye_y:eye_y + 5, eye_x:eye_x + 5]) < 6


@pytest.mark.slow
def test_upper_face_area_mask_keeps_the_mouth_and_swaps_the_eyes(
        setup: tuple[TwinSet, Path, Path, list[np.ndarray]], tmp_path: Path) -> None:
    twins, _, _, originals = setup
    plain = run(setup, tmp_path / "plain")
    area = run(setup, tmp_path / "area", mask="box,area", mask_areas="upper-face")
    for index, (before, swapped, kept) in enumerate(zip(originals, plain, area, strict=True)):
        mouth = mouth_window(before, twins, tmp_path)
        assert differs(kept[mouth], before[mouth]) < 4, index
        assert differs(swapped[mouth], before[mouth]) > 40, index
        eye_x, eye_y = mouth[1].start, mouth[0].start - 30
        assert differs(kept[eye_y:eye_y + 5, eye_x:eye_x + 5], swapped[eye_y:eye_y + 5, eye_x:eye_x + 5]) < 6


def test_every_rest_dialect_takes_the_quality_extensions() -> None:
    from faceswap.api import openoctopus, segmind, wavespeed
    from faceswap.api.common import build_options, quality_options

    bodies = [segmind.VideoFaceSwapRequest(source_img="f", video_input="v", mask="box,occlusion", pixel_boost=512,
                                           mask_regions="skin,nose"),
              wavespeed.FaceSwapInput(video="v", face_image="f", mask=["box", "occlusion"], pixel_boost="512",
                                      mask_regions=["skin", "nose"]),
              openoctopus.GenerationInput(video="v", face_image="f", mask="box,occlusion", pixel_boost="512",
                                          mask_regions="skin, nose")]
    for body in bodies:
        options = build_options({"video": "v", "face": "f", **quality_options(body)}, {})
        assert (options.mask, options.pixel_boost, options.mask_regions) == (["box", "occlusion"], "512",
                                                                             ["skin", "nose"])
        assert "Extension" in type(body).model_fields["mask"].description
    plain = build_options({"video": "v", "face": "f", **quality_options(bodies[0].model_copy())}, {})
    assert plain.mask_areas == list(masks.AREA_POINTS)  # unsent fields keep their defaults
    with pytest.raises(FaceSwapError) as info:
        build_options({"video": "v", "face": "f", **quality_options(
            wavespeed.FaceSwapInput(video="v", face_image="f", mask="hat"))}, {})
    assert info.value.code == "invalid_request" and info.value.field and "mask" in info.value.field


# ------------------------------------------------------------------------------------------------ 68 landmarks
def landmark_crop_to_frame(points: np.ndarray, bbox: np.ndarray) -> np.ndarray:
    """MODELS.md §6 by hand: a 192 crop centred on the box, its longer side at 192/1.5; `(p + 1) * 96` in it."""
    x1, y1, x2, y2 = (float(v) for v in bbox[:4])
    scale = 192 / (max(x2 - x1, y2 - y1) * 1.5)
    return ((points + 1) * 96 - 96) / scale + np.array([(x1 + x2) / 2, (y1 + y2) / 2])


@pytest.fixture(scope="module")
def area_engine(tmp_path_factory: pytest.TempPathFactory) -> tuple[TwinSet, object, np.ndarray]:
    from faceswap.engines.neural import load_neural_engine

    twins = with_landmarker(build_twin_set(tmp_path_factory.mktemp("area")))
    engine = load_neural_engine(twins.paths, SessionFactory(("cpu",)))
    frame = mf.render(mf.t1_patches(PATCH), LAYOUT, 0, W, H, mf.background(W, H))
    return twins, engine, frame


def test_the_1k3d68_twin_is_routed_as_a_landmarker_and_gives_frame_points(
        area_engine: tuple[TwinSet, object, np.ndarray]) -> None:
    from faceswap.engines.neural.landmarker import load_landmarker
    from faceswap.models.signature import Signature

    twins, engine, frame = area_engine
    path = twins.paths["1k3d68"]
    session = SessionFactory(("cpu",)).session(path)
    assert Signature.from_session(session).kind() == "landmarker"  # not the ArcFace recognizer its 192 input suggests
    landmarker = load_landmarker("1k3d68", path, session)
    assert landmarker.mean == 0.0 and landmarker.std == 1.0  # the graph normalises itself: raw pixels
    face = sorted(engine.analyzer.detect(frame), key=lambda f: f.bbox[0])[1]
    points = landmarker.landmarks(frame, face)
    assert points.shape == (68, 2)
    np.testing.assert_allclose(points, landmark_crop_to_frame(twin_landmarks_68(), face.bbox), atol=0.05)
    with pytest.raises(FaceSwapError) as info:
        load_landmarker("1k3d68", twins.paths["w600k_r50"], SessionFactory(("cpu",)).session(twins.paths["w600k_r50"]))
    assert info.value.code == "model_not_available" and "1k3d68" in info.value.message


def test_the_area_mask_follows_the_landmarker_when_present(area_engine: tuple[TwinSet, object, np.ndarray],
                                                           tmp_path: Path) -> None:
    from faceswap.faces.select import TargetSelector
    from faceswap.swap.session import Maskers, SwapParams, SwapSession, still_locator

    twins, engine, frame = area_engine
    options = SwapOptions.parse(video="v", face="f", engine="neural", selection="per_frame", target_faces=[1],
                                mask="box,area", mask_areas="mouth", pixel_boost="256")
    runtime = twin_runtime(twins, tmp_path / "data")
    present = runtime.maskers(options)
    assert present.landmarker is not None and runtime.masker_notices(options) == []
    photo = mf.astronaut_face_photo()
    (source,) = engine.analyzer.detect(photo)
    sources = [engine.swapper.prepare_source(photo, engine.analyzer.embed(photo, source))]

    def swap(maskers: Maskers) -> np.ndarray:
        return SwapSession(params=SwapParams.from_options(options), analyzer=engine.analyzer, swapper=engine.swapper,
                           sources=sources, selector=TargetSelector(options, engine.analyzer),
                           locate=still_locator(engine.analyzer), maskers=maskers).process(frame).image

    face = sorted(engine.analyzer.detect(frame), key=lambda f: f.bbox[0])[1]
    ring = landmark_crop_to_frame(twin_landmarks_68()[48:], face.bbox).mean(axis=0).astype(int)
    mouth = face.kps[3:5].mean(axis=0).astype(int)

    def window(image: np.ndarray, point: np.ndarray) -> np.ndarray:
        return image[point[1] - 2:point[1] + 3, point[0] - 2:point[0] + 3]

    measured, estimated = swap(present), swap(Maskers())
    # with the landmarker: its "mouth" (on the forehead) is swapped and the real mouth kept
    assert differs(window(measured, ring), window(frame, ring)) > 40
    assert differs(window(measured, mouth), window(frame, mouth)) < 2
    # without it: the mouth estimated from the five key points is swapped, the forehead kept
    assert differs(window(estimated, mouth), window(frame, mouth)) > 40
    assert differs(window(estimated, ring), window(frame, ring)) < 2

    bare = twin_runtime(replace(twins, specs={**twins.specs, "1k3d68": replace(twins.specs["1k3d68"],
                                                                                 filename="absent.onnx")}),
                        tmp_path / "bare")
    assert bare.maskers(options).landmarker is None
    (notice,) = bare.masker_notices(options)
    assert "estimated from 5 key points" in notice and "models download 1k3d68" in notice
