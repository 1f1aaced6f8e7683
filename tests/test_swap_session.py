"""The per-frame swap session and its crop stages: pixel boost's sub-pixel phases, the session on real faces with
twins (native and boosted), the registry's roles and adapters as the source of choices, and the session cache's
device key."""

from __future__ import annotations

from pathlib import Path
from typing import Any, get_args

import media_factory as mf
import numpy as np
import pytest
from twins import GraphBuilder, TwinSet, build_hyperswap, build_twin_set, tensor

from faceswap.engines.base import CropSwapper, Engine
from faceswap.engines.neural import load_neural_engine
from faceswap.errors import FaceSwapError
from faceswap.faces.select import TargetSelector
from faceswap.models.registry import REGISTRY, adapter_class, names_with_role
from faceswap.models.sessions import SessionFactory
from faceswap.options import PIXEL_BOOSTS, SWAPPERS, SwapOptions, SwapperChoice
from faceswap.swap import stages
from faceswap.swap.session import SwapParams, SwapSession, still_locator

W, H, PATCH = 640, 360, 180
LAYOUT = mf.row_layout(3, PATCH, W, H)


# ------------------------------------------------------------------------------------------------ pure stages
@pytest.mark.parametrize(("factor", "channels"), [(2, 3), (3, 3), (4, None)])
def test_implode_splits_into_sub_pixel_phases_and_explode_round_trips_exactly(factor: int, channels: int | None
                                                                             ) -> None:
    rng = np.random.default_rng(factor)
    shape = (128 * factor, 128 * factor) + ((channels,) if channels else ())
    crop = rng.integers(0, 256, shape, dtype=np.uint8)
    phases = stages.implode(crop, factor)
    assert len(phases) == factor * factor
    for k, phase in enumerate(phases):
        a, b = divmod(k, factor)
        assert phase.shape == (128, 128, *shape[2:])
        np.testing.assert_array_equal(phase, crop[a::factor, b::factor])  # phases, not tiles
    np.testing.assert_array_equal(stages.explode(phases, factor), crop)


def test_boosted_swap_calls_the_model_once_per_phase_and_interleaves_its_outputs() -> None:
    crop = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    seen: list[np.ndarray] = []

    def model(phase: np.ndarray) -> np.ndarray:
        seen.append(phase.copy())
        return np.full_like(phase, len(seen))  # call k paints k

    out = stages.swap_boosted(crop, model, 4)
    assert len(seen) == 16
    for k, phase in enumerate(seen):
        a, b = divmod(k, 4)
        np.testing.assert_array_equal(phase, crop[a::4, b::4])
        assert np.all(out[a::4, b::4] == k + 1)
    np.testing.assert_array_equal(stages.swap_boosted(crop, lambda phase: phase, 4), crop)


def test_masks_combine_by_minimum() -> None:
    box = stages.box_mask(64, 0.3)
    hole = np.ones((64, 64), np.float32)
    hole[20:40, 20:40] = 0
    combined = stages.combine_masks([box, hole])
    assert combined[30, 30] == 0 and combined[32, 10] == pytest.approx(box[32, 10])
    assert combined.max() <= 1 and combined.min() >= 0


# ------------------------------------------------------------------------------------------------ the session
@pytest.fixture(scope="module")
def echo_twins(tmp_path_factory: pytest.TempPathFactory) -> TwinSet:
    """A twin set whose swapper gives back its target crop unchanged (keep_target 1)."""
    return build_twin_set(tmp_path_factory.mktemp("echo"), keep_target=1.0)


@pytest.fixture(scope="module")
def echo_engine(echo_twins: TwinSet) -> Engine:
    return load_neural_engine(echo_twins.paths, SessionFactory(("cpu",)))


@pytest.fixture(scope="module")
def frame() -> np.ndarray:
    return mf.render(mf.t1_patches(PATCH), LAYOUT, 0, W, H, mf.background(W, H))


class CountingSession:
    def __init__(self, session: Any) -> None:
        self.session, self.calls = session, 0

    def run(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        return self.session.run(*args, **kwargs)


def session_for(engine: Engine, frame: np.ndarray, **fields: Any) -> SwapSession:
    options = SwapOptions.parse(video="v.mp4", face="f.png", engine="neural", selection="per_frame", **fields)
    photo = mf.astronaut_face_photo()
    (face,) = engine.analyzer.detect(photo)
    sources = [engine.swapper.prepare_source(photo, engine.analyzer.embed(photo, face))]
    return SwapSession(params=SwapParams.from_options(options), analyzer=engine.analyzer, swapper=engine.swapper,
                       sources=sources, selector=TargetSelector(options, engine.analyzer),
                       locate=still_locator(engine.analyzer))


def face_box(index: int) -> tuple[slice, slice]:
    _, x, y = LAYOUT(0)[index]
    return slice(y + PATCH // 4, y + 3 * PATCH // 4), slice(x + PATCH // 4, x + 3 * PATCH // 4)


@pytest.mark.parametrize(("boost", "calls"), [("native", 1), ("256", 4), ("512", 16)])
def test_the_session_swaps_only_the_chosen_face_calling_the_model_t2_times(
        echo_engine: Engine, frame: np.ndarray, monkeypatch: pytest.MonkeyPatch, boost: str, calls: int) -> None:
    assert isinstance(echo_engine.swapper, CropSwapper)
    counter = CountingSession(echo_engine.swapper.session)
    monkeypatch.setattr(echo_engine.swapper, "session", counter)
    session = session_for(echo_engine, frame, target_faces=[1], pixel_boost=boost)
    before = frame.copy()
    result = session.process(frame)
    np.testing.assert_array_equal(frame, before)  # the input frame is left alone
    assert (result.faces, result.swapped, counter.calls) == (3, 1, calls)
    assert np.any(result.image[face_box(1)] != frame[face_box(1)])
    for other in (0, 2):  # the other faces: exactly as they were
        np.testing.assert_array_equal(result.image[face_box(other)], frame[face_box(other)])
    # The echo twin returns its crop, so the swapped face is the face again, up to the warps' interpolation.
    error = np.abs(result.image[face_box(1)].astype(float) - frame[face_box(1)].astype(float)).mean()
    assert error < 3, error


def test_pixel_boost_keeps_more_of_the_face_than_the_native_crop(echo_engine: Engine, frame: np.ndarray) -> None:
    """Through a 128 px crop a face loses detail; boosted to 512 the echo twin hands back a sharper face."""
    errors = {}
    for boost in ("native", "512"):
        image = session_for(echo_engine, frame, target_faces=[1], pixel_boost=boost).process(frame).image
        errors[boost] = np.abs(image[face_box(1)].astype(float) - frame[face_box(1)].astype(float)).mean()
    assert errors["512"] < errors["native"] * 0.8, errors


def test_a_flat_colour_twin_paints_the_same_colour_native_and_boosted(tmp_path: Path, frame: np.ndarray) -> None:
    twins = build_twin_set(tmp_path / "models")
    engine = load_neural_engine(twins.paths, SessionFactory(("cpu",)))
    colours = []
    for boost in ("native", "384"):
        session = session_for(engine, frame, target_faces=[0], pixel_boost=boost)
        colours.append(session.process(frame).image[face_box(0)].reshape(-1, 3).astype(float).mean(axis=0))
    expected = twins.swapper.colour_bgr(session.sources[0].latent)
    for colour in colours:
        assert np.abs(colour - expected).max() < 6, (colour, expected)


# ------------------------------------------------------------------------------------------------ options
def test_swapper_choices_come_from_the_registry() -> None:
    assert get_args(SwapperChoice) == SWAPPERS == names_with_role("swapper")
    assert "inswapper_128" in SWAPPERS and SwapOptions.parse(video="v", face="f").swapper == "inswapper_128"
    assert PIXEL_BOOSTS[0] == "native"
    assert {"hyperswap_1a_256", "hyperswap_1b_256", "hyperswap_1c_256"} <= set(SWAPPERS)
    with pytest.raises(FaceSwapError) as caught:  # 384 is no whole multiple of hyperswap's 256
        SwapOptions.parse(video="v", face="f", swapper="hyperswap_1a_256", pixel_boost="384")
    assert caught.value.code == "invalid_request" and "choose native or one of 256, 512, 768, 1024" in \
        caught.value.message
    with pytest.raises(FaceSwapError) as caught:
        SwapOptions.parse(video="v", face="f", swapper="roop_9000")
    assert caught.value.code == "invalid_request" and caught.value.field == "swapper"


@pytest.mark.parametrize(("fields", "named"), [({"pixel_boost": "512"}, "pixel_boost='512'"),
                                              ({"swapper": "hyperswap_1a_256"}, "swapper='hyperswap_1a_256'")])
def test_the_classic_engine_refuses_what_only_a_swap_model_can_do(fields: dict[str, str], named: str) -> None:
    with pytest.raises(FaceSwapError) as caught:
        SwapOptions.parse(video="v", face="f", engine="classic", **fields)
    assert caught.value.code == "invalid_request" and f"classic engine cannot honour {named}" in caught.value.message


def test_registry_gives_every_model_a_role_and_an_adapter() -> None:
    needs = {"swapper": ("prepare_source", "swap_crop"), "restorer": ("restore",), "detector": ("detect",),
             "recognizer": ("embed",), "genderage": ("classify",),
             "converter": ("convert",), "occluder": ("mask",), "parser": ("labels",),
             "landmarker": ("landmarks",)}
    for spec in REGISTRY.values():
        adapter = adapter_class(spec)
        assert all(hasattr(adapter, method) for method in needs[spec.role]), (spec.name, adapter)


def test_sessions_are_cached_per_file_providers_and_device(echo_twins: TwinSet) -> None:
    factory = SessionFactory(("cpu",))
    path = echo_twins.paths["genderage"]
    assert factory.session(path) is factory.session(path, device_id=0)
    other = factory.session(path, device_id=1)
    assert other is not factory.session(path) and other is factory.session(path, device_id=1)
    assert SessionFactory(("cpu",), device_id=1).device_id == 1


# ------------------------------------------------------------------------------------------------ hyperswap
def hyperswap_engine(twins: TwinSet, path: Path, name: str = "hyperswap_1a_256") -> Engine:
    paths = {**twins.paths, name: path}
    return load_neural_engine(paths, SessionFactory(("cpu",)), swapper=name)


def test_hyperswap_normalisation_round_trips_through_an_echo_twin(echo_twins: TwinSet, frame: np.ndarray,
                                                                  tmp_path: Path) -> None:
    """The twin hands back its `target` input: only a [-1, 1] feed undone by `x*0.5 + 0.5` gives the face back."""
    build_hyperswap(tmp_path / "hyperswap_1a_256.onnx", echo=True)
    engine = hyperswap_engine(echo_twins, tmp_path / "hyperswap_1a_256.onnx")
    assert isinstance(engine.swapper, CropSwapper) and (engine.swapper.name, engine.swapper.size) == (
        "hyperswap_1a_256", 256)
    result = session_for(engine, frame, target_faces=[1], swapper="hyperswap_1a_256").process(frame)
    assert result.swapped == 1
    error = np.abs(result.image[face_box(1)].astype(float) - frame[face_box(1)].astype(float)).mean()
    assert error < 3, error


def test_hyperswap_takes_the_normalised_embedding_as_its_source(echo_twins: TwinSet, frame: np.ndarray,
                                                                 tmp_path: Path) -> None:
    palette = build_hyperswap(tmp_path / "hyperswap_1b_256.onnx", echo=False)
    engine = hyperswap_engine(echo_twins, tmp_path / "hyperswap_1b_256.onnx", "hyperswap_1b_256")
    session = session_for(engine, frame, target_faces=[0], swapper="hyperswap_1b_256", pixel_boost="512")
    latent = session.sources[0].latent
    assert np.linalg.norm(latent) == pytest.approx(1.0, abs=1e-5)  # the embedding itself, no emap
    expected = ((np.tanh(latent @ palette * 3.0)[0] * 0.5 + 0.5) * 255)[::-1]
    _, x, y = LAYOUT(0)[0]
    cx, cy = x + PATCH // 2, y + PATCH // 2
    middle = session.process(frame).image[cy - 12:cy + 12, cx - 12:cx + 12]
    colour = middle.reshape(-1, 3).astype(float).mean(axis=0)
    assert np.abs(colour - expected).max() < 4, (colour, expected)


def test_a_file_of_another_family_or_of_no_known_family_is_refused(echo_twins: TwinSet, tmp_path: Path) -> None:
    build_hyperswap(tmp_path / "hyper.onnx")
    with pytest.raises(FaceSwapError) as caught:  # a hyperswap file where inswapper_128 is expected
        hyperswap_engine(echo_twins, tmp_path / "hyper.onnx", "inswapper_128")
    assert caught.value.code == "model_not_available" and "has the hyperswap swapper signature" in caught.value.message
    with pytest.raises(FaceSwapError) as caught:  # and the other way round
        hyperswap_engine(echo_twins, echo_twins.paths["inswapper_128"])
    assert caught.value.code == "model_not_available" and "has the inswapper swapper signature" in caught.value.message
    # simswap, ghost and hififace share one signature ([1,3,256,256] + [1,512] → one image): the entry the user
    # chose names the family, so such a file given as hyperswap is refused, and one that fits no family too.
    for names, message in ((("target", "source"), "has the embedding swapper signature"),
                           (("image", "identity"), "match no model faceswap knows")):
        g = GraphBuilder("sim")
        g.op("Add", [g.op("Mul", [names[0], g.const(1.0)]),
                     g.op("Reshape", [g.op("ReduceMean", [names[1]], axes=[1], keepdims=1),
                                      g.const(np.array([1, 1, 1, 1]), dtype=np.int64)])], output="output")
        g.save(tmp_path / "simswap.onnx", [tensor(names[0], [1, 3, 256, 256]), tensor(names[1], [1, 512])],
               [tensor("output", [1, 3, 256, 256])])
        with pytest.raises(FaceSwapError) as caught:
            hyperswap_engine(echo_twins, tmp_path / "simswap.onnx")
        assert caught.value.code == "model_not_available" and message in caught.value.message
