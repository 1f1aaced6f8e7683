"""faces.align and faces.paste: templates, similarity estimates, warps, and ROI-only feathered paste-back."""

from __future__ import annotations

import warnings

import cv2
import media_factory as mf
import numpy as np
import pytest
from twins import known_faces

from faceswap.faces.align import (
    ARCFACE_112,
    FFHQ_512,
    INSWAPPER_128,
    arcface_template,
    estimate_similarity,
    transform_points,
    warp_bbox_centered,
    warp_to_template,
)
from faceswap.faces.paste import crop_region, feathered_box_mask, paste_back


def test_templates_are_the_published_points() -> None:
    # MODELS.md §7: inswapper's 128 template is arcface_dst shifted 8 px right; FFHQ from facexlib.
    assert INSWAPPER_128[0] == pytest.approx([46.2946, 51.6963])
    assert INSWAPPER_128[4] == pytest.approx([78.7299, 92.2041])
    assert np.allclose(arcface_template(128), INSWAPPER_128)
    assert np.allclose(arcface_template(224), ARCFACE_112 * 2)
    assert FFHQ_512[2] == pytest.approx([256.63416, 314.01935])
    with pytest.raises(ValueError, match="multiple of 112 or 128"):
        arcface_template(100)


def test_similarity_recovers_a_known_transform() -> None:
    angle, scale, shift = np.deg2rad(17), 1.7, np.array([12.5, -4.0])
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    src = ARCFACE_112
    dst = src @ rotation.T + shift
    matrix = estimate_similarity(src, dst)
    assert np.allclose(matrix[:, :2], rotation, atol=1e-9)
    assert np.allclose(matrix[:, 2], shift, atol=1e-9)
    with pytest.raises(ValueError, match="degenerate"):
        estimate_similarity(np.zeros((5, 2)), ARCFACE_112)


def test_alignment_matches_insightface() -> None:
    from insightface.utils import face_align

    for face in known_faces():
        for size in (112, 128):
            with warnings.catch_warnings():  # insightface calls scikit-image's deprecated estimate()
                warnings.simplefilter("ignore", FutureWarning)
                reference, reference_matrix = face_align.norm_crop2(face.photo, face.kps, size)
            crop, matrix = warp_to_template(face.photo, face.kps, arcface_template(size), size)
            assert np.abs(matrix - reference_matrix).max() < 1e-4
            assert np.abs(crop.astype(int) - reference.astype(int)).max() <= 1


def test_warp_puts_the_key_points_on_the_template() -> None:
    # Key points that are an exact similarity image of the template land exactly on it.
    angle = np.deg2rad(-12)
    rotation = 0.4 * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    kps = (FFHQ_512 @ rotation.T + [300, 200]).astype(np.float32)
    frame = mf.background(640, 480)
    crop, matrix = warp_to_template(frame, kps, FFHQ_512, 512, border=cv2.BORDER_REPLICATE)
    assert crop.shape == (512, 512, 3)
    assert np.abs(transform_points(kps, matrix) - FFHQ_512).max() < 1e-3
    # Real points fit in the least-squares sense: their centroid lands on the template's centroid.
    face = known_faces()[2]
    _, matrix = warp_to_template(face.photo, face.kps, FFHQ_512, 512)
    moved = transform_points(face.kps, matrix)
    assert np.abs(moved.mean(axis=0) - FFHQ_512.mean(axis=0)).max() < 1e-3


def test_bbox_crop_matches_insightface_attribute_crop() -> None:
    from insightface.utils import face_align

    face = known_faces()[0]
    box = np.array(face.box, np.float32)
    w, h = box[2] - box[0], box[3] - box[1]
    centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
    reference, reference_matrix = face_align.transform(face.photo, centre, 96, 96 / (max(w, h) * 1.5), 0)
    crop, matrix = warp_bbox_centered(face.photo, box, 96)
    assert np.abs(matrix - reference_matrix).max() < 1e-4  # the box is float32
    assert np.abs(crop.astype(int) - reference.astype(int)).max() <= 1


def test_feathered_mask_shape() -> None:
    mask = feathered_box_mask(128)
    assert mask.dtype == np.float32 and mask.shape == (128, 128)
    assert mask[64, 64] == pytest.approx(1.0, abs=1e-3)
    assert mask[0, 0] < 0.02 and mask[0, 64] < 0.1
    row = mask[64, :64]
    assert np.all(np.diff(row) >= -1e-6)  # rises from the edge towards the middle
    assert np.allclose(mask, mask.T, atol=1e-6)


def _frame_and_crop() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    frame = mf.background(320, 240)
    frame[80:160, 120:200] = (40, 90, 200)
    crop = np.full((64, 64, 3), 255, np.uint8)
    matrix = estimate_similarity(np.array([[130, 90], [190, 90], [160, 150]]),
                                 np.array([[4, 4], [60, 4], [32, 60]]))
    return frame, crop, matrix


def test_paste_changes_only_the_crop_footprint() -> None:
    frame, crop, matrix = _frame_and_crop()
    before = frame.copy()
    out = paste_back(frame, crop, matrix, feathered_box_mask(64))
    assert out is frame
    x1, y1, x2, y2 = crop_region(frame.shape, (64, 64), matrix)
    changed = np.argwhere(np.any(out != before, axis=2))
    assert changed.size
    assert changed[:, 0].min() >= y1 and changed[:, 0].max() < y2
    assert changed[:, 1].min() >= x1 and changed[:, 1].max() < x2
    outside = np.ones(frame.shape[:2], bool)
    outside[y1:y2, x1:x2] = False
    assert np.array_equal(out[outside], before[outside])
    centre = transform_points(np.array([[32, 32]]), cv2.invertAffineTransform(matrix))[0].astype(int)
    assert np.all(out[centre[1], centre[0]] >= 250)  # the middle of the mask takes the crop


def test_paste_opacity_blends_linearly() -> None:
    frame, crop, matrix = _frame_and_crop()
    centre = transform_points(np.array([[32, 32]]), cv2.invertAffineTransform(matrix))[0].astype(int)
    original = frame[centre[1], centre[0]].astype(float)
    half = paste_back(frame.copy(), crop, matrix, feathered_box_mask(64), opacity=0.5)
    expected = original + 0.5 * (255 - original)
    assert np.abs(half[centre[1], centre[0]] - expected).max() <= 2
    untouched = paste_back(frame.copy(), crop, matrix, feathered_box_mask(64), opacity=0.0)
    assert np.array_equal(untouched, frame)


def test_paste_at_the_frame_edge_and_outside() -> None:
    frame = mf.background(160, 120)
    crop = np.zeros((64, 64, 3), np.uint8)
    hanging = estimate_similarity(np.array([[-20, -20], [20, -20], [0, 20]]), np.array([[4, 4], [60, 4], [32, 60]]))
    before = frame.copy()
    paste_back(frame, crop, hanging, feathered_box_mask(64))
    assert not np.array_equal(frame, before)
    assert np.array_equal(frame[60:, 60:], before[60:, 60:])
    away = estimate_similarity(np.array([[500, 500], [540, 500], [520, 540]]), np.array([[4, 4], [60, 4], [32, 60]]))
    assert np.array_equal(paste_back(frame.copy(), crop, away, feathered_box_mask(64)), frame)
