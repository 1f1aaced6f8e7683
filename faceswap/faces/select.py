"""Which faces to swap on each frame, and with which source face (DESIGN §2).

- `per_frame`: on every frame, filter by gender, order, and take the chosen indices.
- `track` (default): on the first frame that shows enough faces, pick the chosen indices, remember who they are
  (identity embeddings), and from then on swap the face most like each remembered person — so the same person is
  swapped when people move, change places or leave the picture. Tracks make this cheap: an embedding is computed
  only when the tracker says a face's identity may have changed.
- `all` targets: every face (that passes the gender filter) on every frame.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from faceswap.engines.base import FaceAnalyzer
from faceswap.faces.order import matches_gender, order_faces
from faceswap.faces.track import TrackedFace
from faceswap.faces.types import Face, Frame
from faceswap.options import SwapOptions

GALLERY_SIZE = 6
"""Embeddings remembered per person (the first, then varied confirmed looks: poses, light)."""


@dataclass(frozen=True)
class Assignment:
    face: Face
    source: int
    """Position in `options.source_faces` of the source face that replaces this face."""
    track_id: int


@dataclass
class _Identity:
    source: int
    gallery: list[np.ndarray]
    track_id: int | None

    def similarity(self, embedding: np.ndarray) -> float:
        return max(float(np.dot(known, embedding)) for known in self.gallery)

    def remember(self, embedding: np.ndarray, similarity: float) -> None:
        if similarity < 0.9 and len(self.gallery) < GALLERY_SIZE:
            self.gallery.append(embedding)


@dataclass
class _TrackFacts:
    embedding: np.ndarray | None = None
    gender: str | None = None


@dataclass
class TargetSelector:
    """Stateful per run: call `select` once per frame with that frame's tracked faces."""

    options: SwapOptions
    analyzer: FaceAnalyzer
    identities: list[_Identity] = field(default_factory=list)
    embeddings_computed: int = 0
    _facts: dict[int, _TrackFacts] = field(default_factory=dict)

    def select(self, frame: Frame, tracked: list[TrackedFace]) -> list[Assignment]:
        live = {item.track_id for item in tracked}
        self._facts = {track_id: facts for track_id, facts in self._facts.items() if track_id in live}
        for item in tracked:
            facts = self._facts.setdefault(item.track_id, _TrackFacts())
            if item.uncertain:
                facts.embedding = None
                if self.options.target_gender != "any":
                    facts.gender = None
        candidates = [item for item in tracked if self._passes_gender(frame, item)]

        if self.options.target_faces == "all":
            return [Assignment(item.face, 0, item.track_id) for item in candidates]
        if self.options.selection == "per_frame":
            ordered = order_faces(candidates, self.options.order, lambda item: item.face)
            return [Assignment(ordered[target].face, source, ordered[target].track_id)
                    for target, source in self.options.pairs(len(ordered)) if target < len(ordered)]
        if not self.identities:
            return self._pick_identities(frame, candidates)
        return self._follow_identities(frame, candidates)

    @property
    def started(self) -> bool:
        """True once the chosen faces have been seen (track mode) — before that no frame can be swapped."""
        return bool(self.identities)

    def _passes_gender(self, frame: Frame, item: TrackedFace) -> bool:
        wanted = self.options.target_gender
        if wanted == "any":
            return True
        facts = self._facts[item.track_id]
        if facts.gender is None:
            facts.gender = self.analyzer.classify_gender(frame, item.face).gender
        return matches_gender(item.face.replace(gender=facts.gender), wanted)

    def _embedding(self, frame: Frame, item: TrackedFace) -> np.ndarray:
        facts = self._facts[item.track_id]
        if facts.embedding is None:
            embedded = self.analyzer.embed(frame, item.face)
            facts.embedding = np.asarray(embedded.embedding, dtype=np.float32)
            self.embeddings_computed += 1
        return facts.embedding

    def seed(self, frame: Frame, faces: list[Face]) -> bool:
        """Pick the people to follow on a reference frame (track mode) before the run starts; False when that
        frame does not show enough faces. The picked people are then found on every frame by identity."""
        candidates = [TrackedFace(-1 - i, face, uncertain=True) for i, face in enumerate(faces)]
        self._facts = {item.track_id: _TrackFacts() for item in candidates}
        candidates = [item for item in candidates if self._passes_gender(frame, item)]
        picked = self._pick_identities(frame, candidates)
        for identity in self.identities:
            identity.track_id = None
        self._facts = {}
        return bool(picked)

    def identity_seeds(self) -> list[dict[str, object]]:
        """The chosen people as plain data (source position and remembered embeddings), for another process to
        follow the same people (`follow_seeds`) on another part of the same video."""
        return [{"source": identity.source, "gallery": [[float(x) for x in known] for known in identity.gallery]}
                for identity in self.identities]

    def follow_seeds(self, seeds: list[dict[str, object]]) -> None:
        """Follow the people `identity_seeds` exported, found on every frame by identity (no track known yet)."""
        self.identities = [_Identity(int(seed["source"]),  # type: ignore[call-overload]
                                     [np.asarray(known, dtype=np.float32) for known in seed["gallery"]],  # type: ignore[attr-defined]
                                     None)
                           for seed in seeds]

    def _pick_identities(self, frame: Frame, candidates: list[TrackedFace]) -> list[Assignment]:
        if len(candidates) < self.options.needed_target_count:
            return []
        ordered = order_faces(candidates, self.options.order, lambda item: item.face)
        assignments = []
        for target, source in self.options.pairs(len(ordered)):
            item = ordered[target]
            self.identities.append(_Identity(source, [self._embedding(frame, item)], item.track_id))
            assignments.append(Assignment(item.face, source, item.track_id))
        return assignments

    def _follow_identities(self, frame: Frame, candidates: list[TrackedFace]) -> list[Assignment]:
        threshold = self.analyzer.match_threshold
        by_track = {item.track_id: item for item in candidates}
        claimed: set[int] = set()
        resolved: dict[int, TrackedFace] = {}

        # 1. People whose track continues undisturbed keep it, with no embedding at all.
        for number, identity in enumerate(self.identities):
            item = by_track.get(identity.track_id) if identity.track_id is not None else None
            if item is not None and not item.uncertain and self._facts[item.track_id].embedding is not None:
                resolved[number] = item
                claimed.add(item.track_id)

        # 2. Everyone else: compare with the faces not yet claimed, best match first.
        open_identities = [n for n in range(len(self.identities)) if n not in resolved]
        scored = []
        for number in open_identities:
            for item in candidates:
                if item.track_id not in claimed:
                    embedding = self._embedding(frame, item)
                    scored.append((self.identities[number].similarity(embedding), number, item, embedding))
        scored.sort(key=lambda entry: entry[0], reverse=True)
        for similarity, number, item, embedding in scored:
            if similarity < threshold:
                break
            if number in resolved or item.track_id in claimed:
                continue
            resolved[number] = item
            claimed.add(item.track_id)
            self.identities[number].remember(embedding, similarity)

        for number, identity in enumerate(self.identities):
            identity.track_id = resolved[number].track_id if number in resolved else None
        return [Assignment(resolved[n].face, self.identities[n].source, resolved[n].track_id)
                for n in sorted(resolved)]
