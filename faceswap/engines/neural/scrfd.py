"""SCRFD face detection (det_10g), decoded exactly as insightface decodes it (MODELS.md §3.3).

The frame is letterboxed top-left into the detector's canvas, fed as RGB `(x - 127.5) / 128`, and the outputs are
read by **order** (scores, boxes, key points per stride), never by name; rank-2 (`[N, C]`) and rank-3 (`[1, N, C]`)
outputs both work. Candidates scoring at least 0.5 are kept, mapped back to frame pixels and thinned by NMS at
IoU 0.4.

Canvas: a static-input file's own size. For a dynamic-input file (det_10g), the frame's longer side becomes 640 as
with insightface 0.7's `det_size=(640, 640)`, but the shorter side is only padded up to a multiple of the largest
stride instead of to 640: faces come out at the same scale and the same boxes, and a 16:9 frame costs the detector
about 40% less (measured in benchmarks/RESULTS.md).
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
from numpy.typing import NDArray

from faceswap.errors import FaceSwapError
from faceswap.faces.types import Face, Frame
from faceswap.models.signature import Signature

DETECT_SIZE = 640
"""The longer side of the canvas for detectors with a dynamic input: insightface 0.7's `det_size=(640, 640)`."""
SCORE_THRESHOLD = 0.5
NMS_THRESHOLD = 0.4
MEAN, STD = 127.5, 128.0


def letterbox(frame: Frame, canvas: tuple[int, int]) -> tuple[Frame, float]:
    """The frame resized into the top-left of a black `canvas` (width, height) keeping its aspect ratio, and the
    scale applied (canvas pixels per frame pixel)."""
    width, height = canvas
    frame_h, frame_w = frame.shape[:2]
    if frame_h / frame_w > height / width:
        new_h = height
        new_w = max(int(new_h / (frame_h / frame_w)), 1)
    else:
        new_w = width
        new_h = max(int(new_w * (frame_h / frame_w)), 1)
    scale = new_h / frame_h
    out = np.zeros((height, width, 3), dtype=np.uint8)
    out[:new_h, :new_w] = cv2.resize(frame, (new_w, new_h))
    return out, scale


def anchor_centers(rows: int, cols: int, stride: int, anchors: int) -> NDArray[np.float32]:
    """(rows*cols*anchors, 2) x,y centres: row-major cells at their top-left corner, `anchors` copies each."""
    grid = np.stack(np.mgrid[:rows, :cols][::-1], axis=-1).astype(np.float32) * stride
    grid = grid.reshape(-1, 2)
    return np.repeat(grid, anchors, axis=0) if anchors > 1 else grid


def nms(boxes: NDArray[np.float32], scores: NDArray[np.float32], threshold: float) -> list[int]:
    """Greedy NMS (areas counted with +1 pixel, as insightface does); indices of the kept boxes, best first."""
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1 + 1) * (y2 - y1 + 1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size:
        best = int(order[0])
        keep.append(best)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]) + 1)
        overlap = w * h / (areas[best] + areas[rest] - w * h)
        order = rest[overlap <= threshold]
    return keep


class ScrfdDetector:
    """Wraps an injected SCRFD session (9 outputs: 3 strides × score/box/kps, or 15: 5 strides)."""

    def __init__(self, session: Any, signature: Signature, *, score_threshold: float = SCORE_THRESHOLD,
                 nms_threshold: float = NMS_THRESHOLD) -> None:
        self.session = session
        image = signature.inputs[0]
        self.input_name = image.name
        height, width = image.shape[2], image.shape[3]
        self.fixed_canvas = (width, height) if isinstance(height, int) and isinstance(width, int) else None
        self.output_names = [tensor.name for tensor in signature.outputs]
        count = len(self.output_names)
        if count not in (9, 15):
            raise FaceSwapError("model_not_available", f"the face detector has {count} outputs; faceswap needs an "
                                "SCRFD model with key points (9 or 15 outputs), such as det_10g.onnx")
        self.strides = (8, 16, 32) if count == 9 else (8, 16, 32, 64, 128)
        self.anchors = 2 if count == 9 else 1
        self.score_threshold = score_threshold
        self.nms_threshold = nms_threshold
        self._centers: dict[tuple[int, int, int], NDArray[np.float32]] = {}

    def canvas_for(self, frame: Frame) -> tuple[int, int]:
        """(width, height) of the detector input for this frame."""
        if self.fixed_canvas is not None:
            return self.fixed_canvas
        frame_h, frame_w = frame.shape[:2]
        step = max(self.strides)
        short = DETECT_SIZE * min(frame_h, frame_w) / max(frame_h, frame_w)
        short = max(int(np.ceil(short / step)) * step, step)
        return (DETECT_SIZE, short) if frame_w >= frame_h else (short, DETECT_SIZE)

    def detect(self, frame: Frame) -> list[Face]:
        size = self.canvas_for(frame)
        canvas, scale = letterbox(frame, size)
        blob = cv2.dnn.blobFromImage(canvas, 1.0 / STD, size, (MEAN, MEAN, MEAN), swapRB=True)
        outputs = self.session.run(self.output_names, {self.input_name: blob})
        boxes, scores, kpss = self._decode(outputs, blob.shape[2], blob.shape[3])
        if not len(scores):
            return []
        boxes /= scale
        kpss /= scale
        keep = nms(boxes, scores, self.nms_threshold)
        frame_h, frame_w = frame.shape[:2]
        faces = []
        for index in keep:
            box = boxes[index].copy()
            box[[0, 2]] = np.clip(box[[0, 2]], 0, frame_w)
            box[[1, 3]] = np.clip(box[[1, 3]], 0, frame_h)
            faces.append(Face(bbox=box.astype(np.float32), score=float(scores[index]),
                              kps=kpss[index].astype(np.float32)))
        return faces

    def _decode(self, outputs: list[NDArray[np.float32]], height: int, width: int
                ) -> tuple[NDArray[np.float32], NDArray[np.float32], NDArray[np.float32]]:
        fmc = len(self.strides)
        all_boxes, all_scores, all_kps = [], [], []
        for level, stride in enumerate(self.strides):
            scores = _unbatch(outputs[level]).reshape(-1)
            distances = _unbatch(outputs[level + fmc]).reshape(-1, 4) * stride
            offsets = _unbatch(outputs[level + 2 * fmc]).reshape(-1, 10) * stride
            key = (height // stride, width // stride, stride)
            if key not in self._centers:
                self._centers[key] = anchor_centers(*key, self.anchors)
            centers = self._centers[key]
            if len(centers) != len(scores):
                raise FaceSwapError("model_not_available",
                                    f"the face detector gave {len(scores)} scores for {len(centers)} anchors at "
                                    f"stride {stride}; it does not follow SCRFD's output layout")
            picked = np.where(scores >= self.score_threshold)[0]
            if not picked.size:
                continue
            c = centers[picked]
            d = distances[picked]
            all_boxes.append(np.stack([c[:, 0] - d[:, 0], c[:, 1] - d[:, 1], c[:, 0] + d[:, 2], c[:, 1] + d[:, 3]],
                                      axis=-1))
            all_scores.append(scores[picked])
            all_kps.append(c[:, None, :] + offsets[picked].reshape(-1, 5, 2))
        if not all_scores:
            empty = np.empty((0,), dtype=np.float32)
            return np.empty((0, 4), np.float32), empty, np.empty((0, 5, 2), np.float32)
        return (np.concatenate(all_boxes).astype(np.float32), np.concatenate(all_scores).astype(np.float32),
                np.concatenate(all_kps).astype(np.float32))


def _unbatch(output: NDArray[np.float32]) -> NDArray[np.float32]:
    return output[0] if output.ndim == 3 else output
