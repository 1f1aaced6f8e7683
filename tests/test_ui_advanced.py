"""The page's Advanced panel (#13): swapper, pixel boost and masks, offered only where they can work here.

The panel's rules are checked on `Capabilities` (which files are here) directly; the API through `gradio_client`
against the real app serving twin models (tests/twins.py, swapper_twins.py, quality_twins.py): the quality options
reach the swap and come back in its report, and the classic engine refuses them with a readable message.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import cv2
import pytest
from media_factory import astronaut_face_photo, read_frames, t1_patches, write_clip
from quality_twins import with_mask_models
from swapper_twins import with_swappers
from test_ui_app import CLIP, LAYOUT, PATCH, LiveApp, serve_app
from twins import TwinSet, build_twin_set

from faceswap.config import Settings
from faceswap.engines.neural import ANALYSIS_MODELS
from faceswap.models.store import ModelStore
from faceswap.options import MASK_TYPES, OCCLUDERS, PARSERS, PIXEL_BOOSTS, QUALITY_FIELDS, SWAPPERS
from faceswap.runtime import Runtime
from faceswap.ui.advanced import (
    CLASSIC_REASON,
    NO_MODELS_REASON,
    Advanced,
    boost_choices,
    boost_info,
    option_descriptions,
    panel_updates,
)
from faceswap.ui.status import Capabilities

SWAPPER_TWIN = "ghost_1_256"
"""The optional swapper the twin app has (with its converter crossface_ghost), beside inswapper_128."""


def caps(*names: str) -> Capabilities:
    return Capabilities(neural=True, restorers={"gfpgan": False, "codeformer": False}, can_download=False,
                        present=frozenset(names))


def updates(capabilities: Capabilities, engine: str = "auto", swapper: str = "inswapper_128",
            boost: str = "native") -> dict[str, dict[str, Any]]:
    """`panel_updates` by component name."""
    names = [*QUALITY_FIELDS, "note"]
    assert [name for name in Advanced.__dataclass_fields__] == names
    return {name: update if isinstance(update, dict) else {"value": update}
            for name, update in zip(names, panel_updates(capabilities, engine, swapper, boost), strict=True)}


HERE = (*ANALYSIS_MODELS, "inswapper_128", SWAPPER_TWIN, "crossface_ghost", "blendswap_256", "xseg_1")


def test_only_installed_swappers_are_offered_and_the_others_are_named_with_the_reason() -> None:
    panel = updates(caps(*HERE))
    offered = [value for _, value in panel["swapper"]["choices"]]
    assert offered == ["inswapper_128", SWAPPER_TWIN, "blendswap_256"]
    assert panel["swapper"]["interactive"] is True and panel["swapper"]["value"] == "inswapper_128"
    note = panel["note"]["value"]
    assert "Swappers not installed here: " in note and "models download NAME" in note
    assert all(name in note for name in SWAPPERS if name not in offered)
    # ghost without its converter cannot run: not offered
    assert SWAPPER_TWIN not in [value for _, value in updates(caps(*ANALYSIS_MODELS, "inswapper_128",
                                                                    SWAPPER_TWIN))["swapper"]["choices"]]


def test_pixel_boost_offers_whole_multiples_and_says_what_it_costs() -> None:
    assert [value for _, value in boost_choices("inswapper_128")] == list(PIXEL_BOOSTS)
    assert [value for _, value in boost_choices(SWAPPER_TWIN)] == ["native", "256", "512", "768", "1024"]
    assert [value for _, value in boost_choices("simswap_unofficial_512")] == ["native", "512", "1024"]
    assert "boost 512 = 16 swapper calls per face" in boost_info("inswapper_128", "native")
    assert boost_info("inswapper_128", "512").startswith("boost 512 = 16 swapper calls per face")
    assert boost_info(SWAPPER_TWIN, "512").startswith("boost 512 = 4 swapper calls per face")
    assert ("512 (16 calls)", "512") in boost_choices("inswapper_128")
    # a boost the new swapper cannot honour goes back to native
    panel = updates(caps(*HERE), swapper=SWAPPER_TWIN, boost="384")
    assert panel["pixel_boost"]["value"] == "native"
    assert "384" not in [value for _, value in panel["pixel_boost"]["choices"]]


def test_identity_strength_only_where_the_swapper_has_an_identity() -> None:
    assert updates(caps(*HERE), swapper=SWAPPER_TWIN)["swapper_weight"]["interactive"] is True
    blend = updates(caps(*HERE), swapper="blendswap_256")["swapper_weight"]
    assert blend["interactive"] is False and blend["value"] == 0.5 and "Not for blendswap_256" in blend["info"]


def test_masks_need_their_models() -> None:
    panel = updates(caps(*HERE))
    assert panel["mask"]["choices"] == ["box", "occlusion", "area"]  # no parser here: no region mask
    assert panel["mask_occluder"]["choices"] == ["xseg_1"] and panel["mask_occluder"]["interactive"] is True
    assert panel["mask_parser"]["interactive"] is False
    assert "No parser model is installed here" in panel["mask_parser"]["info"]
    assert "Masks not available here: region" in panel["note"]["value"]


@pytest.mark.parametrize(("present", "engine", "reason"), [(HERE, "classic", CLASSIC_REASON),
                                                           ((), "auto", NO_MODELS_REASON),
                                                           ((), "neural", NO_MODELS_REASON)])
def test_the_panel_is_disabled_with_the_reason_where_the_engine_cannot_honour_it(
        present: tuple[str, ...], engine: str, reason: str) -> None:
    panel = updates(caps(*present), engine=engine, swapper=SWAPPER_TWIN, boost="512")
    assert all(panel[name]["interactive"] is False for name in QUALITY_FIELDS)
    assert reason in panel["note"]["value"].replace("**", "")
    # back to the defaults, which the classic engine accepts
    assert (panel["swapper"]["value"], panel["pixel_boost"]["value"], panel["mask"]["value"]) == \
        ("inswapper_128", "native", ["box"])


def test_every_choice_comes_from_swap_options() -> None:
    descriptions = option_descriptions()
    assert list(descriptions) == list(QUALITY_FIELDS) and all(len(text) > 20 for text in descriptions.values())
    everything = caps(*ANALYSIS_MODELS, *SWAPPERS, "crossface_ghost", "crossface_simswap", "crossface_hififace",
                      *OCCLUDERS, *PARSERS)
    panel = updates(everything)
    assert [value for _, value in panel["swapper"]["choices"]] == list(SWAPPERS)
    assert panel["mask"]["choices"] == list(MASK_TYPES)
    assert panel["mask_occluder"]["choices"] == list(OCCLUDERS) and panel["mask_parser"]["choices"] == list(PARSERS)


# -- the API, on the real app with twin models -------------------------------------------------------------------

@contextmanager
def serve_twin_app(root: Path) -> Iterator[tuple[LiveApp, TwinSet]]:
    """The real app whose models dir holds the twins: the neural engine, ghost_1_256 and the occluder/parser."""
    twins = with_mask_models(with_swappers(build_twin_set(root / "models"), (SWAPPER_TWIN,)))

    def runtime(settings: Settings) -> Runtime:
        return Runtime(settings, models=ModelStore(settings, specs=twins.specs))

    with serve_app(root, models_dir=twins.directory, runtime=runtime) as app:
        yield app, twins


@pytest.fixture(scope="module")
def twin_media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("advanced-media")
    face = root / "astronaut.png"
    cv2.imwrite(str(face), astronaut_face_photo())
    return {"clip": write_clip(root / "three.mp4", t1_patches(PATCH)[:3], LAYOUT, CLIP), "face": face}


@pytest.mark.slow  # a real server and a neural swap of 24 frames on twins
def test_the_client_passes_quality_options_and_the_report_shows_them(
        tmp_path_factory: pytest.TempPathFactory, twin_media: dict[str, Path]) -> None:
    from gradio_client import Client, handle_file
    from gradio_client.exceptions import AppError

    with serve_twin_app(tmp_path_factory.mktemp("advanced-app")) as (live, _):
        client = Client(live.url, verbose=False, download_files=str(tmp_path_factory.mktemp("advanced-downloads")))
        try:
            endpoints = client.view_api(print_info=False, return_format="dict")["named_endpoints"]
            for endpoint in ("/swap", "/preview"):
                described = {param["parameter_name"]: param["description"]
                             for param in endpoints[endpoint]["parameters"]}
                assert all(described[name] == option_descriptions()[name] for name in QUALITY_FIELDS)
            asked = {"swapper": SWAPPER_TWIN, "pixel_boost": "512", "swapper_weight": 0.7,
                     "mask": ["box", "occlusion"], "mask_blur": 0.5, "mask_padding": "5,0,10,0",
                     "mask_regions": ["skin", "nose"], "mask_areas": ["upper-face"], "mask_occluder": "xseg_1",
                     "mask_parser": "bisenet_resnet_34"}
            video, report = client.predict(handle_file(str(twin_media["clip"])), handle_file(str(twin_media["face"])),
                                           target_faces="1", engine="neural", **asked, api_name="/swap")
            assert report["status"] == "succeeded" and report["engine"] == "neural"
            assert report["frames_swapped"] == CLIP.frames
            assert report["quality"] == {**asked, "mask_padding": [5, 0, 10, 0]}
            before, after = read_frames(twin_media["clip"]), read_frames(Path(video))
            assert len(after) == CLIP.frames
            assert cv2.absdiff(before[5], after[5]).mean() > 1  # the middle face was swapped

            _, info = client.predict(handle_file(str(twin_media["clip"])), handle_file(str(twin_media["face"])),
                                     target_faces="1", engine="neural", frame=3, **asked, api_name="/preview")
            assert info["faces_swapped"] == 1

            with pytest.raises(AppError) as refused:
                client.predict(handle_file(str(twin_media["clip"])), handle_file(str(twin_media["face"])),
                               engine="classic", mask=["box", "occlusion"], api_name="/swap")
            assert "classic engine cannot honour mask=['box', 'occlusion']" in str(refused.value)
            with pytest.raises(AppError) as wrong_boost:
                client.predict(handle_file(str(twin_media["clip"])), handle_file(str(twin_media["face"])),
                               engine="neural", swapper=SWAPPER_TWIN, pixel_boost="384", api_name="/swap")
            assert "pixel_boost 384 is not a whole multiple of ghost_1_256's 256 px" in str(wrong_boost.value)
        finally:
            client.close()
