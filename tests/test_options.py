"""SwapOptions: every field's validation, the pairing rule, and catalog errors that name the field."""

from __future__ import annotations

import pytest

from faceswap.errors import CATALOG, FaceSwapError
from faceswap.options import SwapOptions


def build(**fields):
    return SwapOptions.parse(video="v.mp4", face="f.jpg", **fields)


def test_defaults_follow_the_design_table():
    options = build()
    assert options.target_faces == [0] and options.source_faces == [0]
    assert (options.selection, options.engine, options.restore, options.output_format) == ("track", "auto", "none",
                                                                                            "same")
    assert options.codeformer_weight == 0.95 and options.restore_visibility == 1.0 and options.frame_cap == 0


@pytest.mark.parametrize(("given", "expected"), [
    ("0", [0]), ("0,2", [0, 2]), (" 1 , 3 ", [1, 3]), (2, [2]), ([0, 1], [0, 1]), ("all", "all"), ("ALL", "all"),
])
def test_target_indices_accept_the_dialects_spellings(given, expected):
    assert build(target_faces=given).target_faces == expected


@pytest.mark.parametrize(("fields", "field_name"), [
    ({"target_faces": "0,x"}, "target_faces"),
    ({"target_faces": "-1"}, "target_faces"),
    ({"target_faces": "0,0"}, "target_faces"),
    ({"source_faces": "all"}, "source_faces"),
    ({"frame_cap": -1}, "frame_cap"),
    ({"codeformer_weight": 1.5}, "codeformer_weight"),
    ({"restore_visibility": 0.05}, "restore_visibility"),
    ({"order": "random"}, "order"),
    ({"engine": "magic"}, "engine"),
    ({"restore": "gpen"}, "restore"),
    ({"colour": "red"}, "colour"),
])
def test_bad_fields_are_invalid_request_naming_the_field(fields, field_name):
    with pytest.raises(FaceSwapError) as caught:
        build(**fields)
    assert caught.value.code == "invalid_request" and caught.value.http_status == 400
    assert caught.value.field == field_name
    assert field_name in caught.value.message


def test_missing_video_is_named():
    with pytest.raises(FaceSwapError) as caught:
        SwapOptions.parse(face="f.jpg")
    assert caught.value.field == "video" and "required" in caught.value.message


def test_pairing_rule():
    assert build(target_faces="0,2", source_faces="0").pairs(3) == [(0, 0), (2, 0)]
    assert build(target_faces="0,2", source_faces="1,0").pairs(3) == [(0, 1), (2, 0)]
    assert build(target_faces="all").pairs(3) == [(0, 0), (1, 0), (2, 0)]
    for bad in ({"target_faces": "0", "source_faces": "0,1"}, {"target_faces": "all", "source_faces": "0,1"}):
        with pytest.raises(FaceSwapError, match="source"):
            build(**bad)


def test_end_must_follow_start():
    assert build(start=1.0, end=2.5).end == 2.5
    with pytest.raises(FaceSwapError, match="after start"):
        build(start=2.0, end=1.0)


def test_gender_filter_with_classic_engine_is_refused_up_front():
    with pytest.raises(FaceSwapError, match="gender model"):
        build(engine="classic", target_gender="female")
    assert build(engine="auto", target_gender="female").target_gender == "female"


def test_catalog_has_seed_table_and_our_codes():
    assert CATALOG["invalid_request"].http_status == 400 and not CATALOG["invalid_request"].retryable
    assert CATALOG["internal_error"].http_status == 500 and CATALOG["internal_error"].retryable
    ours = {"source_face_not_found": 400, "target_face_not_found": 422, "unsupported_media": 415,
            "media_too_large": 413, "rate_limited": 429, "task_cancelled": 409}
    assert {code: CATALOG[code].http_status for code in ours} == ours
    assert CATALOG["rate_limited"].retryable and not CATALOG["task_cancelled"].retryable
    error = FaceSwapError("target_face_not_found")
    assert error.to_dict() == {"code": "target_face_not_found", "message": CATALOG["target_face_not_found"].message,
                               "retryable": False}
    with pytest.raises(KeyError):
        FaceSwapError("no_such_code")
