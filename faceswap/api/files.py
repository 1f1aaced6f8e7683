"""`GET /v1/files/{id}`: outputs and uploads by their unguessable id, until retention ends.

No API key (the id is the capability, like the hosted services' output URLs). Only image and video types are served
inline; anything else goes out as a download, and every file carries `nosniff` and a sandbox policy, so an upload
cannot become a page on this origin.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from faceswap.api.common import context

router = APIRouter(tags=["Files"])

_INLINE_PREFIXES = ("video/", "image/", "audio/")
_UNSAFE_INLINE = ("image/svg+xml",)


@router.head("/v1/files/{file_id}", include_in_schema=False)
@router.get("/v1/files/{file_id}", summary="Download a file (no key needed)",
            responses={200: {"content": {"video/mp4": {}, "image/gif": {}, "application/octet-stream": {}}}})
async def get_file(file_id: str, request: Request) -> FileResponse:
    service = context(request).service
    info = await run_in_threadpool(service.file_info, file_id)
    path = await run_in_threadpool(service.file_path, file_id)
    media_type = info.content_type.lower()
    inline = media_type.startswith(_INLINE_PREFIXES) and media_type not in _UNSAFE_INLINE
    return FileResponse(
        path, media_type=media_type if inline else "application/octet-stream", filename=info.filename,
        content_disposition_type="inline" if inline else "attachment",
        headers={"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                 "Cache-Control": "private, max-age=3600"})
