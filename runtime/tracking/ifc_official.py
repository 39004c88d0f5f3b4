"""``ifc-official``: IFC's near-online track linking as a runtime tracker (sukjunhwang/IFC projects/IFC/ifc/structures/clip_output.py).

Use with windows of T = 5 and stride 1 (IFC's official clip schedule; the pipeline's end-aligned
final window is the official last clip) and ``overlap="average"``:

    Pipeline(artifacts, window=5, stride=1, tracker="ifc-official")   # CLI: --tracker ifc-official

Per window, as ``ifc/structures/clip_output.py: Videos.update``:
- instances = the window's kept queries (contract rows with score > 0, one per query, in
  ascending query order — the official instance order);
- for every live track and instance: soft mask IoU Σ s·n / Σ (s + n − s·n) over the overlap
  frames, per earlier window among the last T in which the track was written, averaged over
  those windows; values ≤ ``match_threshold`` (0.05) are zeroed; Hungarian maximising sIoU;
- matched instances extend their track, every other instance starts one (no score threshold,
  no re-identification after a gap: a track not written in the last T windows is finished).
Track class scores are the mean over the windows the track appeared in (the official per-clip
probability averaging); masks of a frame are averaged over the covering windows by the
assembler's ``average`` policy (the official code averages logits: thresholds agree except
where the windows disagree near 0.5).

Differences, both deliberate: there is no 50-track limit (the official dense store fails
beyond it; here finished tracks are dropped, so memory stays bounded on endless streams),
and IDs start at 1.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from runtime.errors import ConfigError
from runtime.tracking.near_online import match, soft_iou
from runtime.types import WindowInstances

OFFICIAL_WINDOW = 5
OFFICIAL_MATCH_THRESHOLD = 0.05


@dataclass(eq=False)
class MergedTrack:
    """One IFC track: ``class_score_sum`` ``float32 [C]`` over ``windows`` windows."""

    track_id: int
    class_score_sum: np.ndarray
    windows: int = 0

    @property
    def class_scores(self) -> np.ndarray:
        return self.class_score_sum / max(self.windows, 1)

    @property
    def label(self) -> int:
        return int(np.argmax(self.class_score_sum))

    @property
    def score(self) -> float:
        return float(self.class_scores[self.label])


class NearOnlineTracker:
    """IFC's official near-online linker behind the runtime ``Tracker`` interface.

    Args:
        window: how many recent windows keep a track alive and enter the sIoU (official T = 5).
        match_threshold: sIoU at or below which a pair is not linked (official 0.05).
        continue_score: lowest contract score that counts as a kept instance (the contract
            gives 0 to dropped queries, so any tiny positive value reproduces the official rule).
    """

    def __init__(self, *, window: int = OFFICIAL_WINDOW, match_threshold: float = OFFICIAL_MATCH_THRESHOLD,
                 continue_score: float = 1e-6) -> None:
        if window < 1 or not 0 <= match_threshold < 1 or continue_score < 0:
            raise ConfigError("ifc-official tracker needs window >= 1, 0 <= match_threshold < 1 "
                              f"and continue_score >= 0; got {window}, {match_threshold}, {continue_score}")
        self.window, self.match_threshold = window, match_threshold
        self.continue_score = self.birth_score = continue_score
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; IDs restart at 1."""
        self.tracks: dict[int, MergedTrack] = {}
        # last `window` windows: {track_id: (frame indices, mask probabilities [T, h, w])}
        self.recent: deque[dict[int, tuple[tuple[int, ...], np.ndarray]]] = deque(maxlen=self.window)
        self._next_id = 1
        self.removed_ids: list[int] = []

    @property
    def num_created(self) -> int:
        return self._next_id - 1

    def get(self, track_id: int) -> MergedTrack:
        return self.tracks[track_id]

    def _siou(self, probs: np.ndarray, frames: list[int]) -> tuple[np.ndarray, list[int]]:
        """sIoU [live tracks, instances] on the overlap frames, and the live track IDs."""
        live = sorted({tid for record in self.recent for tid in record})
        covered = {f for record in self.recent for fr, _ in record.values() for f in fr}
        overlap = [i for i, f in enumerate(frames) if f in covered]
        n = len(probs)
        if not overlap or not live or n == 0:
            return np.zeros((len(live), n)), live
        new = probs[:, overlap].reshape(n, len(overlap), -1).astype(np.float64)
        past = list(self.recent)[-len(frames):]
        row = {tid: i for i, tid in enumerate(live)}
        saved = np.zeros((len(past), len(live), len(overlap), new.shape[-1]))
        valid = np.zeros((len(past), len(live), len(overlap)), dtype=bool)
        for c, record in enumerate(past):
            for tid, (fr, track_probs) in record.items():
                pos = {f: i for i, f in enumerate(fr)}
                for j, i in enumerate(overlap):
                    if frames[i] in pos:
                        saved[c, row[tid], j] = track_probs[pos[frames[i]]].reshape(-1)
                        valid[c, row[tid], j] = True
        return soft_iou(saved, valid, new), live

    def update(self, instances: WindowInstances, frames: list[int]) -> np.ndarray:
        """Track ID of every row of ``instances`` (``int64 [N]``; -1 for rows below ``continue_score``)."""
        if instances.num_frames != len(frames):
            raise ValueError(f"instances have {instances.num_frames} frames, got {len(frames)}")
        ids = np.full(len(instances), -1, np.int64)
        rows = np.flatnonzero(instances.scores >= self.continue_score)
        rows = rows[np.argsort(instances.query_index[rows], kind="stable")]  # official instance order
        probs = instances.masks[rows]
        siou, live = self._siou(probs, list(frames))
        pairs, unmatched = match(siou, threshold=self.match_threshold)
        for track_row, inst in pairs:
            ids[rows[inst]] = live[track_row]
        for inst in unmatched:
            ids[rows[inst]] = self._next_id
            self.tracks[self._next_id] = MergedTrack(
                self._next_id, np.zeros(instances.class_scores.shape[1], np.float32))
            self._next_id += 1
        record = {}
        for inst, row in enumerate(rows):
            track = self.tracks[int(ids[row])]
            track.class_score_sum = track.class_score_sum + instances.class_scores[row]
            track.windows += 1
            record[track.track_id] = (tuple(frames), probs[inst])
        self.recent.append(record)
        alive = {tid for rec in self.recent for tid in rec}
        self.removed_ids = [tid for tid in self.tracks if tid not in alive]
        for tid in self.removed_ids:  # finished: can never be linked again
            del self.tracks[tid]
        return ids
