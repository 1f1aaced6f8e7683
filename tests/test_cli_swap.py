"""Issue 2's acceptance: the CLI swaps a chosen face in real clips, offline, with the classic engine.

Every check reads the real output file back with PyAV (independent of the product's media code) and compares it
with the input clip, frame by frame, region by region.
"""

from __future__ import annotations

import functools
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from media_factory import (
    ClipSpec,
    astronaut_face_photo,
    permuted_layout,
    probe,
    read_frames,
    read_stamp,
    row_layout,
    slot_boxes,
    t1_patches,
    write_clip,
)

pytestmark = pytest.mark.slow  # real swaps through subprocesses, servers or clients: the full run only

PATCH = 180
SPEC = ClipSpec(width=640, height=360, fps=12, frames=24)
LAYOUT = row_layout(3, PATCH, SPEC.width, SPEC.height)
REORDER_AT = 12
REORDERED = permuted_layout(LAYOUT, REORDER_AT, [2, 0, 1])  # from frame 12: slot 0 shows C, slot 1 A, slot 2 B


def cli(*args: str | Path, check_json: bool = True) -> tuple[int, dict]:
    completed = subprocess.run([sys.executable, "-m", "faceswap", *map(str, args), "--json"], capture_output=True,
                               text=True, timeout=300)
    lines = completed.stdout.strip().splitlines()
    assert len(lines) == 1, f"stdout must be exactly one JSON object:\n{completed.stdout}\n{completed.stderr}"
    return completed.returncode, json.loads(lines[0])


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("cli-media")
    patches = t1_patches(PATCH)
    face = root / "astronaut.png"
    cv2.imwrite(str(face), astronaut_face_photo())
    return {
        "face": face,
        "three": write_clip(root / "three.mp4", patches, LAYOUT, SPEC),
        "reorder": write_clip(root / "reorder.mp4", patches, REORDERED, SPEC),
        "gif": write_clip(root / "three.gif", patches, LAYOUT, ClipSpec(fps=10, frames=12, audio=False)),
        "root": root,
    }


def region_change(before: list[np.ndarray], after: list[np.ndarray], boxes_of, frames: range) -> np.ndarray:
    """Mean absolute difference per slot, averaged over `frames`: shape (slots,)."""
    per_frame = []
    for index in frames:
        per_frame.append([np.abs(before[index][y1:y2, x1:x2].astype(np.int16)
                                 - after[index][y1:y2, x1:x2].astype(np.int16)).mean()
                          for x1, y1, x2, y2 in boxes_of(index)])
    return np.array(per_frame).mean(axis=0)


CODEC_NOISE = 3.0   # mean |difference| of a region re-encoded once more by H.264 at CRF 18 is about 1
SWAPPED = 8.0       # a replaced face differs by far more than that


@pytest.fixture(scope="module")
def swapped_slot0(media: dict[str, Path]) -> tuple[Path, dict]:
    output = media["root"] / "slot0.mp4"
    code, result = cli("swap", media["three"], media["face"], "-o", output, "--engine", "classic")
    assert code == 0, result
    return output, result


def test_only_the_chosen_face_changes(media, swapped_slot0):
    output, result = swapped_slot0
    before, after = read_frames(media["three"]), read_frames(output)
    change = region_change(before, after, lambda i: slot_boxes(LAYOUT, i, PATCH), range(len(before)))
    assert change[0] > SWAPPED, change
    assert change[1] < CODEC_NOISE and change[2] < CODEC_NOISE, change
    background = [(0, 0, SPEC.width, 40)]  # a strip above the faces
    assert region_change(before, after, lambda i: background, range(len(before)))[0] < CODEC_NOISE
    assert result["engine"] == "classic" and result["frames"] == SPEC.frames
    assert result["frames_swapped"] == SPEC.frames


def test_frames_fps_audio_and_marking_survive(media, swapped_slot0):
    output, _ = swapped_slot0
    source, made = probe(media["three"]), probe(output)
    assert made.frames == source.frames and made.fps == pytest.approx(source.fps)
    assert made.has_audio and made.audio_seconds == pytest.approx(source.audio_seconds, abs=0.05)
    assert [read_stamp(f) for f in read_frames(output)] == list(range(SPEC.frames))
    marks = " ".join(made.metadata.values()).lower()
    assert "faceswap" in marks and "ai-generated" in marks


@functools.cache
def _dlib_models() -> tuple:
    """dlib's own detector, landmark predictor and face encoder, loaded once for the module (~130 MB of weights)."""
    import dlib
    import face_recognition_models as frm

    return (dlib.get_frontal_face_detector(), dlib.shape_predictor(frm.pose_predictor_model_location()),
            dlib.face_recognition_model_v1(frm.face_recognition_model_location()))


def identity_distance(image: np.ndarray, box: tuple[int, int, int, int], reference: np.ndarray) -> float:
    """dlib's 128-d face descriptor distance (the measure dlib documents: < 0.6 means the same person).

    Independent of the swap: the classic engine warps pixels by landmarks and never optimises this network."""
    detector, predictor, encoder = _dlib_models()

    def descriptor(img: np.ndarray, region: tuple[int, int, int, int] | None) -> np.ndarray:
        if region is not None:  # look around the region only (its own size each side): the same face, less work
            x1, y1, x2, y2 = region
            margin = x2 - x1
            img = img[max(y1 - margin, 0):y2 + margin, max(x1 - margin, 0):x2 + margin]
        rgb = np.ascontiguousarray(img[:, :, ::-1])
        found = detector(rgb, 1)
        if region is not None:
            cx, cy = rgb.shape[1] / 2, rgb.shape[0] / 2
            found = [d for d in found if d.left() < cx < d.right() and d.top() < cy < d.bottom()]
        assert found, "no face where one was expected"
        return np.array(encoder.compute_face_descriptor(rgb, predictor(rgb, found[0])))

    return float(np.linalg.norm(descriptor(image, box) - descriptor(reference, None)))


def test_swapped_face_moves_toward_the_source_identity(media, swapped_slot0):
    output, _ = swapped_slot0
    before, after = read_frames(media["three"]), read_frames(output)
    source = astronaut_face_photo()
    for index in (0, 8, 16, 23):
        box = slot_boxes(LAYOUT, index, PATCH)[0]
        x1, y1, x2, y2 = box
        original = before[index][max(y1 - 60, 0):y2 + 60, max(x1 - 60, 0):x2 + 60]
        later = (index + 5) % SPEC.frames
        # the same person on another frame stays well inside dlib's same-person line (about 0.05)...
        assert identity_distance(before[later], slot_boxes(LAYOUT, later, PATCH)[0], original) < 0.2
        # ...while the swapped face is no longer taken for the person it replaced,
        assert identity_distance(after[index], box, original) > 0.45
        # and it is nearer the source person than the original face was.
        assert identity_distance(after[index], box, source) < identity_distance(before[index], box, source) - 0.04


@pytest.mark.parametrize(("target", "changed"), [("all", [True, True, True]), ("0,2", [True, False, True]),
                                                 ("1", [False, True, False])])
def test_target_lists_and_all(media, target, changed):
    output = media["root"] / f"target-{target.replace(',', '-')}.mp4"
    code, result = cli("swap", media["three"], media["face"], "-o", output, "--target", target, "--frame-cap", "6")
    assert code == 0, result
    before, after = read_frames(media["three"]), read_frames(output)
    change = region_change(before, after, lambda i: slot_boxes(LAYOUT, i, PATCH), range(6))
    assert [bool(c > SWAPPED) for c in change] == changed, change
    assert all(c < CODEC_NOISE for c, wanted in zip(change, changed, strict=True) if not wanted), change


def reorder_changes(media: dict[str, Path], output: Path) -> tuple[np.ndarray, np.ndarray]:
    """Per-slot change of the reordering clip before its cut and after it."""
    before, after = read_frames(media["reorder"]), read_frames(output)

    def boxes(i):
        return slot_boxes(REORDERED, i, PATCH)

    return (region_change(before, after, boxes, range(0, REORDER_AT)),
            region_change(before, after, boxes, range(REORDER_AT + 1, SPEC.frames)))


@pytest.mark.parametrize("selection", ["track", "per_frame"])
def test_track_follows_the_person_when_the_order_changes_and_per_frame_does_not(media, selection):
    output = media["root"] / f"reorder-{selection}.mp4"
    code, result = cli("swap", media["reorder"], media["face"], "-o", output, "--selection", selection)
    assert code == 0, result
    first, second = reorder_changes(media, output)
    assert first[0] > SWAPPED and first[1] < CODEC_NOISE, first  # person A sits in slot 0 at first
    if selection == "track":
        assert second[1] > SWAPPED and second[0] < CODEC_NOISE, second  # A moved to slot 1: followed
    else:
        assert second[0] > SWAPPED and second[1] < CODEC_NOISE, second  # index 0 is now person C


def test_reference_frame_counts_indices_where_the_user_picked_them(media):
    output = media["root"] / "reference.mp4"
    # on frame 15, index 0 (leftmost) is person C, who sits in slot 2 before the cut and slot 0 after it
    code, result = cli("swap", media["reorder"], media["face"], "-o", output, "--reference-frame", "15")
    assert code == 0, result
    first, second = reorder_changes(media, output)
    assert first[2] > SWAPPED and first[0] < CODEC_NOISE and first[1] < CODEC_NOISE, first
    assert second[0] > SWAPPED and second[1] < CODEC_NOISE and second[2] < CODEC_NOISE, second
    assert result["frames_swapped"] == SPEC.frames


def test_gif_in_gives_gif_out(media):
    output = media["root"] / "out.gif"
    code, result = cli("swap", media["gif"], media["face"], "-o", output)
    assert code == 0, result
    made, source = probe(output), probe(media["gif"])
    assert made.codec == "gif" and made.frames == source.frames and made.fps == pytest.approx(source.fps)
    assert result["output_format"] == "gif"


def test_frame_cap_and_trim(media):
    capped = media["root"] / "capped.mp4"
    code, result = cli("swap", media["three"], media["face"], "-o", capped, "--frame-cap", "10")
    assert code == 0 and result["frames"] == 10
    assert [read_stamp(f) for f in read_frames(capped)] == list(range(10))
    assert probe(capped).audio_seconds == pytest.approx(10 / SPEC.fps, abs=0.05)

    trimmed = media["root"] / "trimmed.mp4"
    code, result = cli("swap", media["three"], media["face"], "-o", trimmed, "--start", "0.5", "--end", "1.5")
    assert code == 0, result
    assert [read_stamp(f) for f in read_frames(trimmed)] == list(range(6, 18))  # frames at 0.5 s ≤ t < 1.5 s
    assert probe(trimmed).audio_seconds == pytest.approx(1.0, abs=0.05)


def test_faces_lists_the_faces_in_order_with_thumbnails(media):
    thumbs = media["root"] / "thumbs"
    code, listing = cli("faces", media["three"], "--frame", "3", "--thumbs", thumbs)
    assert code == 0, listing
    faces = listing["faces"]
    assert [f["index"] for f in faces] == [0, 1, 2] and listing["frame"] == 3
    centres = [(f["box"][0] + f["box"][2]) / 2 for f in faces]
    assert centres == sorted(centres)
    for face, (x1, y1, x2, y2) in zip(faces, slot_boxes(LAYOUT, 3, PATCH), strict=True):
        cx, cy = (face["box"][0] + face["box"][2]) / 2, (face["box"][1] + face["box"][3]) / 2
        assert x1 < cx < x2 and y1 < cy < y2
        assert face["gender"] is None and face["score"] > 0
    assert sorted(p.name for p in thumbs.iterdir()) == ["face_0.png", "face_1.png", "face_2.png"]
    assert cv2.imread(str(thumbs / "face_0.png")).shape[2] == 3
