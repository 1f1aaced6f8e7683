"""The error catalog: every failure anywhere maps to one of these codes.

The first block is the hosted gateway's table (seed 000), kept verbatim as the source of truth; the second block
adds the codes this product needs, in the same shape. REST dialects, the CLI and the UI all render a
`FaceSwapError` from this one table, so a code means the same thing at every door.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class ErrorCode:
    code: str
    http_status: int
    retryable: bool
    category: str
    message: str


def _table(*rows: tuple[str, int, bool, str, str]) -> dict[str, ErrorCode]:
    return {row[0]: ErrorCode(*row) for row in rows}


_UNAVAILABLE = "The service is temporarily unavailable for this model. Please retry later."
_MODEL_UNAVAILABLE = "The selected model is temporarily unavailable. Please retry later."
_INCOMPLETE = "The generation provider returned an incomplete result. Please retry shortly."

_SEED = _table(
    ("invalid_request", 400, False, "validation",
     "The request payload is invalid. Check the required fields and try again."),
    ("unauthorized", 401, False, "auth", "Authentication is required for this request."),
    ("invalid_api_key", 401, False, "auth", "The API key is invalid or inactive."),
    ("insufficient_balance", 402, False, "billing",
     "Your wallet balance is insufficient. Please top up and try again."),
    ("model_not_available", 404, False, "routing", "The requested model is currently unavailable."),
    ("task_not_found", 404, False, "task", "The requested task could not be found."),
    ("file_not_found", 404, False, "asset", "The requested generated file is not available."),
    ("provider_offline", 503, True, "upstream", _MODEL_UNAVAILABLE),
    ("provider_model_inactive", 503, True, "routing", _MODEL_UNAVAILABLE),
    ("provider_credential_missing", 503, True, "system", _UNAVAILABLE),
    ("provider_credential_incomplete", 503, True, "system", _UNAVAILABLE),
    ("provider_credential_unusable", 503, True, "system", _UNAVAILABLE),
    ("provider_credential_legacy", 503, True, "system", _UNAVAILABLE),
    ("provider_credential_unavailable", 503, True, "system", _UNAVAILABLE),
    ("provider_credential_decrypt_failed", 503, True, "system", _UNAVAILABLE),
    ("model_billing_not_configured", 503, False, "system", _MODEL_UNAVAILABLE),
    ("provider_pricing_not_configured", 503, False, "system", _MODEL_UNAVAILABLE),
    ("database_operation_failed", 503, True, "system",
     "The service could not access required internal records. Please retry later."),
    ("billing_resolution_failed", 503, True, "system",
     "The selected model pricing could not be evaluated. Please retry later."),
    ("request_record_write_failed", 503, True, "system",
     "The request could not be recorded internally. Please retry later."),
    ("api_key_touch_failed", 503, True, "system",
     "The request was accepted but internal key tracking failed. Please retry later."),
    ("queue_unavailable", 503, True, "system",
     "The internal job queue is temporarily unavailable. Please retry later."),
    ("provider_submit_failed", 502, True, "upstream",
     "The generation provider could not accept the request. Please retry shortly."),
    ("provider_poll_failed", 502, True, "upstream",
     "The generation provider could not complete the request. Please retry shortly."),
    ("upstream_failed", 502, True, "upstream",
     "The generation provider failed to complete the request. Please retry shortly."),
    ("content_policy_violation", 400, False, "safety",
     "The prompt or image was rejected by the provider safety policy. Please adjust the content and try again."),
    ("upstream_timeout", 504, True, "upstream", "The generation request timed out. Please retry shortly."),
    ("upstream_result_missing", 502, True, "upstream", _INCOMPLETE),
    ("video_output_missing", 502, True, "upstream", _INCOMPLETE),
    ("service_unavailable", 503, True, "system", "The service is temporarily unavailable. Please retry later."),
    ("internal_error", 500, True, "system", "The service encountered an unexpected error. Please retry later."),
)

_OURS = _table(
    ("source_face_not_found", 400, False, "validation", "No face was found in the face image."),
    ("target_face_not_found", 422, False, "validation", "The chosen face was not found in any frame of the video."),
    ("unsupported_media", 415, False, "validation", "The file is not a video or image this service can read."),
    ("media_too_large", 413, False, "validation", "The file is larger than this service accepts."),
    ("timeout", 504, False, "task", "The job ran longer than this server allows for one job."),
    ("rate_limited", 429, True, "quota", "Too many requests. Please slow down and retry shortly."),
    ("task_cancelled", 409, False, "task", "The task was cancelled."),
)

CATALOG: MappingProxyType[str, ErrorCode] = MappingProxyType({**_SEED, **_OURS})


class FaceSwapError(Exception):
    """A failure with a catalog code and a sentence a person understands.

    `message` defaults to the catalog's message; give a specific one whenever you know more (which field, which
    file, what to do). `field` names the offending input when there is one.
    """

    def __init__(self, code: str, message: str | None = None, *, field: str | None = None) -> None:
        if code not in CATALOG:
            raise KeyError(f"unknown error code {code!r}")
        self.entry = CATALOG[code]
        self.code = code
        self.message = message or self.entry.message
        self.field = field
        super().__init__(self.message)

    @property
    def http_status(self) -> int:
        return self.entry.http_status

    @property
    def retryable(self) -> bool:
        return self.entry.retryable

    @property
    def caller_fault(self) -> bool:
        """True when the request itself was wrong (a 4xx), so a retry of the same request cannot help."""
        return 400 <= self.entry.http_status < 500

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}

    def __reduce__(self):  # keep the code when the error crosses a process or thread boundary
        return (_rebuild, (self.code, self.message, self.field))


def _rebuild(code: str, message: str, field: str | None) -> FaceSwapError:
    return FaceSwapError(code, message, field=field)


def as_faceswap_error(exc: BaseException) -> FaceSwapError:
    """Map any exception to a catalog error; unknown ones become `internal_error` (the log keeps the trace)."""
    if isinstance(exc, FaceSwapError):
        return exc
    if isinstance(exc, MemoryError):
        return FaceSwapError("service_unavailable", "The server ran out of memory for this request.")
    return FaceSwapError("internal_error")
