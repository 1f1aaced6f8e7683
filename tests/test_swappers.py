"""FaceFusion's other swappers on real faces with twins (MODELS.md §17.1/§17.2): each normalisation checked by a
twin that echoes its target, each identity path by a twin whose output depends on the source, routing by the
registry entry chosen, and `swapper_weight`."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import media_factory as mf
import numpy as np
import pytest
from swapper_twins import build_crossface, build_swapper
from twins import TwinSet, build_twin_set

from faceswap.engines.base import Engine
from faceswap.engines.neural import load_neural_engine, neural_models
from faceswap.engines.neural.swappers import IMAGENET, TEMPLATES, EmbeddingSwapper, ImageSourceSwapper
from faceswap.errors import FaceSwapError
from faceswap.faces.align import warp_to_template
from faceswap.faces.types import normalized
from faceswap.models.registry import REGISTRY
from faceswap.models.sessions import SessionFactory
from faceswap.options import SwapOptions

NEW = ("ghost_1_256", "ghost_2_256", "ghost_3_256", "simswap_256", "simswap_unofficial_512",
       "hififace_unofficial_256", "blendswap_256", "uniface_256")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> TwinSet:
    return build_twin_set(tmp_path_factory.mktemp("swappers"))


@pytest.fixture(scope="module")
def photo() -> np.ndarray:
    return mf.astronaut_face_photo()


def engine_for(base: TwinSet, directory: Path, name: str, *, echo: bool) -> Engine:
    paths = {**base.paths, **build_swapper(directory, name, echo=echo)}
    needed = {model: paths[model] for model in neural_models(name)}  # only what the runtime would hand over
    return load_neural_engine(needed, SessionFactory(("cpu",)), swapper=name)


def crop_of(engine: Engine, photo: np.ndarray) -> tuple[np.ndarray, Any]:
    (face,) = engine.analyzer.detect(photo)
    face = engine.analyzer.embed(photo, face)
    swapper: Any = engine.swapper
    crop, _ = warp_to_template(photo, face.kps, swapper.template, swapper.size)
    return crop, face


@pytest.mark.parametrize("name", NEW)
def test_each_swapper_feeds_its_target_normalised_as_section_17_says(base: TwinSet, photo: np.ndarray,
                                                                     tmp_path: Path, name: str) -> None:
    """The echo twin hands back its normalised `target`: [-1, 1] types come back as the crop after `x*.5+.5`;
    [0, 1] types as the crop; simswap_256 (ImageNet in, [0, 1] out, no de-normalisation) as its ImageNet blob."""
    engine = engine_for(base, tmp_path, name, echo=True)
    swapper: Any = engine.swapper
    spec = REGISTRY[name]
    assert (swapper.name, swapper.size) == (name, spec.input_size)
    np.testing.assert_allclose(swapper.template, TEMPLATES[spec.template] * spec.input_size)
    crop, face = crop_of(engine, photo)
    out = swapper.swap_crop(crop, swapper.prepare_source(photo, face)).astype(float)
    expected = crop.astype(float)
    if name == "simswap_256":
        mean, std = (np.asarray(v)[::-1] for v in IMAGENET)  # BGR order
        expected = np.rint(np.clip((crop / 255.0 - mean) / std, 0, 1) * 255)
        assert np.abs(out - crop).mean() > 20  # really not the plain crop
    assert np.abs(out - expected).max() <= 1, name


@pytest.mark.parametrize("name", ["ghost_2_256", "simswap_unofficial_512", "hififace_unofficial_256"])
def test_embedding_swappers_take_the_crossface_identity(base: TwinSet, photo: np.ndarray, tmp_path: Path,
                                                         name: str) -> None:
    """Source = CrossFace(ArcFace embedding): L2-normalised for simswap/hififace, as it comes for ghost; the
    twin paints a colour from it, so the swapped crop shows the identity path."""
    matrix = build_crossface(tmp_path / REGISTRY[REGISTRY[name].converter or ""].filename)
    engine = engine_for(base, tmp_path, name, echo=False)
    swapper = engine.swapper
    assert isinstance(swapper, EmbeddingSwapper)
    crop, face = crop_of(engine, photo)
    source = swapper.prepare_source(photo, face)
    converted = normalized(face.embedding) @ matrix
    if name != "ghost_2_256":
        converted = normalized(converted)
    np.testing.assert_allclose(source.latent[0], converted, atol=1e-4)
    assert (np.linalg.norm(source.latent) > 2) == (name == "ghost_2_256")  # the twin's scale 4 survives for ghost
    squash = np.tanh if name != "simswap_unofficial_512" else (lambda x: 1 / (1 + np.exp(-x)))
    palette = np.random.default_rng(5).standard_normal((512, 3)).astype(np.float32)
    colour = squash(source.latent @ palette * 3.0)[0]
    if name != "simswap_unofficial_512":
        colour = colour * 0.5 + 0.5
    out = swapper.swap_crop(crop, source).reshape(-1, 3).mean(axis=0)
    np.testing.assert_allclose(out, (colour * 255)[::-1], atol=1)


@pytest.mark.parametrize(("name", "template", "size"), [("blendswap_256", "arcface_112_v2", 112),
                                                        ("uniface_256", "ffhq_512", 256)])
def test_image_source_swappers_take_a_crop_of_the_source_face(base: TwinSet, photo: np.ndarray, tmp_path: Path,
                                                               name: str, template: str, size: int) -> None:
    """The twin paints the source input's mean colour: the source crop is the face on its template, RGB [0, 1]."""
    engine = engine_for(base, tmp_path, name, echo=False)
    swapper = engine.swapper
    assert isinstance(swapper, ImageSourceSwapper) and not swapper.weighted
    crop, face = crop_of(engine, photo)
    source_crop, _ = warp_to_template(photo, face.kps, TEMPLATES[template] * size, size)
    out = swapper.swap_crop(crop, swapper.prepare_source(photo, face)).reshape(-1, 3).astype(float).mean(axis=0)
    np.testing.assert_allclose(out, source_crop.reshape(-1, 3).mean(axis=0), atol=1.5)
    moved = face.replace(kps=face.kps + np.array([40.0, 30.0]))  # another source face: another crop, colour
    moved_out = swapper.swap_crop(crop, swapper.prepare_source(photo, moved)).reshape(-1, 3).astype(float)
    assert np.abs(moved_out.mean(axis=0) - out).max() > 3


def test_the_chosen_entry_routes_a_shared_signature_and_a_wrong_family_is_refused(base: TwinSet,
                                                                                 tmp_path: Path) -> None:
    assert neural_models("ghost_1_256")[-2:] == ("ghost_1_256", "crossface_ghost")
    assert neural_models("blendswap_256")[-1] == "blendswap_256"
    paths = {**base.paths, **build_swapper(tmp_path, "ghost_1_256")}
    # The very same file as simswap_256: accepted (same family), and normalised as simswap, not as ghost.
    paths["simswap_256"] = paths["ghost_1_256"]
    paths["crossface_simswap"] = paths["crossface_ghost"]
    engine = load_neural_engine(paths, SessionFactory(("cpu",)), swapper="simswap_256")
    assert engine.swapper.name == "simswap_256" and engine.swapper.norm == IMAGENET  # type: ignore[attr-defined]
    # A 256 embedding file as the 512 model, an image-source file as an embedding swapper, and the other way.
    paths["simswap_unofficial_512"] = paths["ghost_1_256"]
    paths.update(build_swapper(tmp_path, "uniface_256"))
    for name, file, message in (("simswap_unofficial_512", "ghost_1_256", "swaps at 256 px"),
                                ("hififace_unofficial_256", "uniface_256", "has the image swapper signature"),
                                ("blendswap_256", "ghost_1_256", "has the embedding swapper signature"),
                                ("blendswap_256", "uniface_256", "takes a 256 px source face")):
        paths[name] = paths[file]
        paths.setdefault("crossface_hififace", paths["crossface_ghost"])
        with pytest.raises(FaceSwapError) as caught:
            load_neural_engine(paths, SessionFactory(("cpu",)), swapper=name)
        assert caught.value.code == "model_not_available" and message in caught.value.message, name
    # A converter file that is not a converter (a swapper) is refused too.
    paths["crossface_ghost"] = paths["uniface_256"]
    with pytest.raises(FaceSwapError) as caught:
        load_neural_engine(paths, SessionFactory(("cpu",)), swapper="ghost_1_256")
    assert caught.value.code == "model_not_available" and "crossface_ghost" in caught.value.message


# ------------------------------------------------------------------------------------------------ swapper_weight
def test_swapper_weight_is_validated_and_refused_where_it_cannot_be_honoured() -> None:
    assert SwapOptions.parse(video="v", face="f").swapper_weight == 0.5
    assert SwapOptions.parse(video="v", face="f", swapper="ghost_1_256", swapper_weight=0.8).swapper_weight == 0.8
    for fields, text in (({"swapper": "blendswap_256", "swapper_weight": 0.7}, "cannot be honoured by blendswap"),
                         ({"swapper": "uniface_256", "swapper_weight": 0.0}, "cannot be honoured by uniface"),
                         ({"engine": "classic", "swapper_weight": 0.7}, "classic engine cannot honour"),
                         ({"swapper_weight": 1.5}, "swapper_weight")):
        with pytest.raises(FaceSwapError) as caught:
            SwapOptions.parse(video="v", face="f", **fields)
        assert caught.value.code == "invalid_request" and text in caught.value.message, fields


@pytest.mark.parametrize("name", ["ghost_1_256", "inswapper_128"])
def test_swapper_weight_moves_the_identity_towards_the_target_as_facefusion_balances_it(
        base: TwinSet, tmp_path: Path, name: str) -> None:
    """The twin paints a colour from its identity input: at 0.5 the source's own, at 1 and 0 the balanced one
    `src*(1-w) + target*w` with w = interp(weight, [0,1], [.35,-.35]) and the target's unit embedding."""
    from test_swap_session import LAYOUT, PATCH, session_for

    frame = mf.render(mf.t1_patches(PATCH), LAYOUT, 0, 640, 360, mf.background(640, 360))
    engine = (engine_for(base, tmp_path, name, echo=False) if name != "inswapper_128"
              else load_neural_engine(base.paths, SessionFactory(("cpu",))))
    _, x, y = LAYOUT(0)[0]
    cx, cy = x + PATCH // 2, y + PATCH // 2
    nearest = min(engine.analyzer.detect(frame), key=lambda f: abs(f.kps[:, 0].mean() - cx))
    target = engine.analyzer.embed(frame, nearest)
    colours = {}
    for weight in (0.5, 1.0, 0.0):
        session = session_for(engine, frame, target_faces=[0], swapper=name, swapper_weight=weight)
        latent = session.sources[0].latent
        w = 0.35 - 0.7 * weight
        balanced = latent * (1 - w) + normalized(target.embedding) * w
        if name == "inswapper_128":
            expected = base.swapper.colour_bgr(balanced)
        else:
            expected = ((np.tanh(balanced @ np.random.default_rng(5).standard_normal((512, 3)).astype(np.float32)
                                 * 3.0)[0] * 0.5 + 0.5) * 255)[::-1]
        middle = session.process(frame).image[cy - 10:cy + 10, cx - 10:cx + 10].reshape(-1, 3).astype(float)
        colours[weight] = middle.mean(axis=0)
        assert np.abs(colours[weight] - expected).max() < 5, (weight, colours[weight], expected)
    assert np.abs(colours[1.0] - colours[0.5]).max() > 3 and np.abs(colours[0.0] - colours[0.5]).max() > 3


def test_swapper_weight_reaches_the_options_from_every_rest_dialect_and_the_cli() -> None:
    from faceswap import cli
    from faceswap.api import openoctopus, segmind, wavespeed
    from faceswap.api.common import build_options, quality_options

    for body in (segmind.VideoFaceSwapRequest(source_img="f", video_input="v", swapper="ghost_3_256",
                                              swapper_weight=0.75),
                 wavespeed.FaceSwapInput(video="v", face_image="f", swapper="ghost_3_256", swapper_weight=0.75),
                 openoctopus.GenerationInput(video="v", face_image="f", swapper="ghost_3_256", swapper_weight=0.75)):
        options = build_options({"video": "v", "face": "f", **quality_options(body)}, {})
        assert (options.swapper, options.swapper_weight) == ("ghost_3_256", 0.75)
    with pytest.raises(FaceSwapError) as caught:
        build_options({"video": "v", "face": "f", **quality_options(wavespeed.FaceSwapInput(
            video="v", face_image="f", swapper="uniface_256", swapper_weight=0.2))}, {})
    assert caught.value.code == "invalid_request" and "uniface_256" in caught.value.message
    parsed = cli.build_parser().parse_args(["swap", "v.mp4", "f.png", "-o", "o.mp4", "--swapper", "ghost_1_256",
                                           "--swapper-weight", "0.9"])
    assert (parsed.swapper, parsed.swapper_weight) == ("ghost_1_256", 0.9)


def test_inswapper_fp16_is_its_own_entry_with_float32_io_and_its_own_emap(base: TwinSet, photo: np.ndarray,
                                                                          tmp_path: Path) -> None:
    from swapper_twins import build_inswapper_fp16

    from faceswap.engines.neural import Inswapper
    from faceswap.engines.neural.inswapper import source_latent

    path = tmp_path / "inswapper_128_fp16.onnx"
    emap, palette = build_inswapper_fp16(path)
    engine = load_neural_engine({**base.paths, "inswapper_128_fp16": path}, SessionFactory(("cpu",)),
                                swapper="inswapper_128_fp16")
    swapper = engine.swapper
    assert isinstance(swapper, Inswapper) and (swapper.name, swapper.size) == ("inswapper_128_fp16", 128)
    np.testing.assert_array_equal(swapper.emap, emap)  # read from this file, not the fp32 one
    crop, face = crop_of(engine, photo)
    source = swapper.prepare_source(photo, face)
    np.testing.assert_allclose(source.latent, source_latent(face.embedding, emap), atol=1e-6)
    colour = 1 / (1 + np.exp(-(source.latent @ palette * 3.0)))[0]
    out = swapper.swap_crop(crop, source).reshape(-1, 3).astype(float).mean(axis=0)
    np.testing.assert_allclose(out, (colour * 255)[::-1], atol=2)  # fp16 inside


def test_a_session_refuses_a_weight_its_swapper_cannot_honour(base: TwinSet, tmp_path: Path) -> None:
    from faceswap.swap.session import CropFaceStep, SwapParams

    engine = engine_for(base, tmp_path, "blendswap_256", echo=True)
    assert isinstance(engine.swapper, ImageSourceSwapper)
    CropFaceStep(engine.swapper, SwapParams())  # the default 0.5 is no request at all
    with pytest.raises(FaceSwapError) as caught:
        CropFaceStep(engine.swapper, SwapParams(swapper_weight=0.7))
    assert caught.value.code == "invalid_request" and caught.value.field == "swapper_weight"
