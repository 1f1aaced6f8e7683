"""Picking faces by clicking thumbnails: the pick list, and how picked thumbnails look."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from media_factory import ClipSpec, row_layout, t1_patches, write_clip

from faceswap.config import Settings
from faceswap.errors import FaceSwapError
from faceswap.report import coverage_warning
from faceswap.ui import frame_range, picks
from faceswap.ui.handlers import build_options, notices_markdown
from faceswap.ui.uploads import upload_dir, uploaded_file


def test_parse_picks_keeps_typed_order_and_ignores_noise() -> None:
    assert picks.parse_picks("2, 0") == [2, 0]
    assert picks.parse_picks(" 1,1 ,x3") == [1, 3]
    assert picks.parse_picks("") == []
    assert picks.parse_picks(None) == []


def test_clicks_toggle_and_the_order_is_the_pairing_order() -> None:
    chosen = picks.toggle_pick([], 2)
    chosen = picks.toggle_pick(chosen, 0)
    assert picks.format_picks(chosen) == "2,0"
    assert picks.toggle_pick(chosen, 2) == [0]


def test_picked_thumbnails_are_framed_and_numbered_the_rest_untouched() -> None:
    thumbs = [(np.ascontiguousarray(patch[:128, :128, ::-1]), picks.person(i))
              for i, patch in enumerate(t1_patches(128))]
    items = picks.gallery_items(thumbs, [3, 1])
    # People, counted from 1, a tick for the picked ones: short enough to show whole under a thumbnail (the
    # browser test measures it); the pick order is the number in the green disc and the summary line.
    assert [caption for _, caption in items] == ["Person 1", "Person 2 ✓", "Person 3", "Person 4 ✓", "Person 5",
                                                 "Person 6"]
    assert [caption for _, caption in picks.gallery_items(thumbs, [2])][2] == "Person 3 ✓"
    assert picks.picked_summary([3, 1]) == "Replacing Person 4, then Person 2."
    assert items[0][0] is thumbs[0][0]
    marked, original = items[3][0], thumbs[3][0]
    assert marked.shape == original.shape
    assert tuple(marked[0, 64]) == picks.PICK_COLOUR and tuple(marked[-1, 64]) == picks.PICK_COLOUR
    assert np.array_equal(marked[40:100, 40:100], original[40:100, 40:100])  # the face itself stays visible
    assert not np.array_equal(original[0, 64], picks.PICK_COLOUR)


def test_page_values_become_swap_options() -> None:
    uploads = upload_dir() / "page-values"
    uploads.mkdir(parents=True, exist_ok=True)
    clip, face = uploads / "clip.mp4", uploads / "face.png"
    options = build_options(str(clip), str(face), "", " ", "classic", "largest_first", "per_frame", "any", "any",
                            12.0, 0, 1.5, "none", 0.5, 0.8, "mp4")
    assert options.target_faces == [0] and options.source_faces == [0]
    assert options.frame_cap == 12 and options.start is None and options.end == 1.5
    assert options.order == "largest_first" and options.selection == "per_frame"


def test_notices_read_as_plain_notes() -> None:
    assert notices_markdown([]) == ""
    assert notices_markdown(["The classic engine ran."]) == "**Note:** The classic engine ran."
    long = "The classic engine ran because the neural models are missing. " * 12
    assert len(notices_markdown([long])) <= len("**Note:** ") + 200


def test_low_coverage_names_the_frames_without_a_swap() -> None:
    report = {"frames": 50, "frames_swapped": 13, "frames_missed": [[0, 20], [30, 45]]}
    warning = coverage_warning(report)
    assert "13 of 50" in warning and "0–20, 30–45" in warning and len(warning) <= 200
    assert coverage_warning({"frames": 50, "frames_swapped": 48, "frames_missed": [[3, 4]]}) == ""


def test_only_files_in_the_upload_dir_pass(tmp_path: Path) -> None:
    inside = upload_dir() / "checks" / "clip.mp4"
    inside.parent.mkdir(parents=True, exist_ok=True)
    inside.write_bytes(b"x")
    outside = tmp_path / "clip.mp4"
    outside.write_bytes(b"x")
    escape = inside.parent / "escape.mp4"
    escape.unlink(missing_ok=True)
    escape.symlink_to(outside)
    assert uploaded_file(str(inside), "video") == str(inside)
    assert uploaded_file(None, "video") is None
    messages = set()
    for forged in (str(outside), str(escape), f"{inside.parent}/../../etc/passwd", "/no/such/file.mp4",
                   "http://127.0.0.1:1/clip.mp4", str(upload_dir())):
        with pytest.raises(FaceSwapError) as refused:
            uploaded_file(forged, "video")
        assert refused.value.code == "invalid_request"
        messages.add(refused.value.message)
    assert len(messages) == 1 and "/" not in next(iter(messages)).split(":", 1)[1].replace("handle_file()", "")


def test_the_frame_slider_waits_with_a_hint_then_spans_the_loaded_video(tmp_path: Path) -> None:
    settings = Settings.from_env({"FACESWAP_DATA_DIR": str(tmp_path / "data")})
    uploads = upload_dir() / "frame-range"
    uploads.mkdir(parents=True, exist_ok=True)
    spec = ClipSpec(frames=17, audio=False)
    clip = write_clip(uploads / "clip.mp4", t1_patches(160)[:2], row_layout(2, 160, spec.width, spec.height), spec)
    photo = uploads / "face.png"
    cv2.imwrite(str(photo), t1_patches(160)[0])
    (uploads / "notes.mp4").write_bytes(b"not a video")

    empty = frame_range.for_video(None, settings)
    assert (empty["interactive"], empty["info"], empty["elem_classes"]) == (False, frame_range.NO_VIDEO_HINT,
                                                                           [frame_range.WAITING_CLASS])
    loaded = frame_range.for_video(str(clip), settings)
    assert (loaded["minimum"], loaded["maximum"], loaded["value"], loaded["interactive"]) == (0, 16, 0, True)
    assert loaded["elem_classes"] == [] and loaded["info"] == frame_range.FRAME_HELP
    assert frame_range.for_video(str(photo), settings)["info"] == frame_range.PHOTO_HINT
    assert frame_range.for_video(str(uploads / "notes.mp4"), settings)["info"] == frame_range.UNREADABLE_HINT
    assert frame_range.for_video(str(tmp_path / "outside.mp4"), settings)["interactive"] is False  # not an upload
    assert frame_range.spanning(17, value=40)["value"] == 16
