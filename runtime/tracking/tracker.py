"""Links each window's chunk-local instances to tracks (docs/runtime.md, "Tracking").

Association per window, in numbered stages (ByteTrack-style):
  0. keep rows with score >= continue_score; suppress duplicates with mask NMS.
  1. high-score rows (>= birth_score) <-> ACTIVE tracks on the overlap frames: mask IoU is
     the main cue (gate ``min_mask_iou``), embedding cosine and class agreement are secondary.
  2. remaining low-score rows extend the remaining ACTIVE tracks the same way (never start one).
  3. remaining high-score rows <-> LOST tracks and still-unmatched ACTIVE tracks by appearance
     (embedding cosine >= ``reid_min_cosine``, plus class): re-identification after occlusion.
     A pair seen at the same time in different places on the overlap (soft IoU <=
     ``apart_max_iou``) is refused: one object is not in two places at once.
  4. remaining high-score rows start new tracks (IDs count up per tracker, never reused).
  5. unmatched ACTIVE tracks become LOST; LOST tracks older than ``max_lost_frames`` are
     removed; at most ``max_tracks`` tracks are kept (oldest LOST evicted first).
Each Hungarian stage uses scipy's linear_sum_assignment on ``1 - affinity`` with the gates.
"""

from __future__ import annotations

import logging

import numpy as np

from runtime.errors import ConfigError
from runtime.tracking.costs import (
    PackedMasks,
    binary_subsample,
    cosine_matrix,
    label_agreement,
    linear_assignment,
    mask_nms,
    packed_iou_matrix,
)
from runtime.tracking.state import Track, TrackState
from runtime.types import WindowInstances

log = logging.getLogger("runtime.tracking")


class Tracker:
    """Near-online linker of window instances into tracks with stable, never-reused IDs.

    Keyword thresholds (trade-offs):
        continue_score: lowest score that may extend a track. Lower keeps objects through
            occlusion/blur; too low lets background rows extend tracks.
        birth_score: lowest score that may start a track (and the stage-1/2 split). Higher
            gives fewer false tracks but later starts.
        min_mask_iou: overlap-frame mask IoU gate (binarised at 0.5). Lower links fast movers; higher avoids
            swaps between touching objects.
        reid_min_cosine: embedding gate for re-identification without overlap. Lower
            re-identifies more after occlusion but risks giving an old ID to a new object.
        apart_max_iou: overlap IoU at or below which two masks seen in the same frames are
            different objects, so stage 3 may not link them.
        max_lost_frames: how long a lost track waits for re-identification (memory vs re-ID).
        max_tracks: cap on ACTIVE+LOST tracks (bounded memory).
        nms_iou: duplicate suppression inside a window.
        mask_weight, embedding_weight, class_weight: affinity weights for stages 1-3.
        embedding_momentum: EMA weight of a track's old embedding.
        iou_stride: masks are binarised and sampled every ``iou_stride`` pixels before IoU
            (speed vs precision; 2 gives IoU at 1/8 of the model input, as IFC).
    """

    def __init__(self, *, continue_score: float = 0.1, birth_score: float = 0.4,
                 min_mask_iou: float = 0.2, reid_min_cosine: float = 0.75,
                 apart_max_iou: float = 0.05,
                 max_lost_frames: int = 90, max_tracks: int = 256, nms_iou: float = 0.6,
                 mask_weight: float = 1.0, embedding_weight: float = 0.5,
                 class_weight: float = 0.25, embedding_momentum: float = 0.8,
                 iou_stride: int = 2) -> None:
        if not 0 <= continue_score <= birth_score <= 1:
            raise ConfigError(f"need 0 <= continue_score <= birth_score <= 1, got "
                              f"{continue_score}, {birth_score}")
        if max_tracks < 1 or max_lost_frames < 0 or iou_stride < 1:
            raise ConfigError("max_tracks >= 1, max_lost_frames >= 0 and iou_stride >= 1 needed")
        self.continue_score, self.birth_score = continue_score, birth_score
        self.min_mask_iou, self.reid_min_cosine = min_mask_iou, reid_min_cosine
        self.apart_max_iou = apart_max_iou
        self.max_lost_frames, self.max_tracks, self.nms_iou = max_lost_frames, max_tracks, nms_iou
        self.weights = (mask_weight, embedding_weight, class_weight)
        self.embedding_momentum, self.iou_stride = embedding_momentum, iou_stride
        self.reset()

    def reset(self) -> None:
        """Forget all tracks; IDs restart at 1 (a new stream)."""
        self.tracks: dict[int, Track] = {}
        self._next_id = 1
        self._previous_frames: list[int] = []
        self.removed_ids: list[int] = []  # removed during the latest update
        self.dropped_births = 0

    @property
    def num_created(self) -> int:
        return self._next_id - 1

    def get(self, track_id: int) -> Track:
        return self.tracks[track_id]

    def update(self, instances: WindowInstances, frames: list[int]) -> np.ndarray:
        """Assign track IDs to one window's instances.

        Args: instances with T = len(frames) frames; frames = global frame indices.
        Returns ``int64 [N]``: the track ID of each row, -1 for rows dropped (low score,
        duplicate, or not linkable and below birth_score).
        """
        if instances.num_frames != len(frames):
            raise ValueError(f"instances have {instances.num_frames} frames, got {len(frames)}")
        ids = np.full(len(instances), -1, np.int64)
        self.removed_ids = []
        # binarised: background probabilities (~0.01 over many pixels) would otherwise
        # dominate soft-IoU unions; IoU is exact on the sampled grid
        masks = PackedMasks.from_bool(binary_subsample(instances.masks, self.iou_stride))
        rows = self._stage0_candidates(instances, masks)
        previous = set(self._previous_frames)
        overlap = [i for i, f in enumerate(frames) if f in previous]
        high = rows[instances.scores[rows] >= self.birth_score]
        low = rows[instances.scores[rows] < self.birth_score]
        active = [t for t in self.tracks.values() if t.state is TrackState.ACTIVE]
        lost = [t for t in self.tracks.values() if t.state is TrackState.LOST]
        frames_o = [frames[i] for i in overlap]

        m1, high, active = self._link_overlap(instances, masks, high, active, overlap, frames_o)
        m2, _, active = self._link_overlap(instances, masks, low, active, overlap, frames_o)
        m3, high = self._link_appearance(instances, masks, high, lost + active, overlap,
                                         frames_o)
        matched = m1 + m2 + m3
        matched += self._stage4_births(instances, high, frames)
        for row, track in matched:
            track.observe(embedding=instances.embeddings[row],
                          class_scores=instances.class_scores[row],
                          masks=masks.row(row), boxes=instances.boxes[row], frames=frames,
                          momentum=self.embedding_momentum)
            ids[row] = track.track_id
        self._stage5_bookkeeping({t.track_id for _, t in matched}, frames)
        return ids

    # -- stages ----------------------------------------------------------------------------
    def _stage0_candidates(self, instances: WindowInstances, masks: PackedMasks) -> np.ndarray:
        rows = np.flatnonzero(instances.scores >= self.continue_score)
        if len(rows) < 2:
            return rows
        keep = mask_nms(masks.select(rows), instances.scores[rows], iou_threshold=self.nms_iou)
        return np.sort(rows[keep])

    def _link_overlap(self, inst, masks, rows, tracks, overlap, frames_o):
        """Stages 1 and 2: Hungarian on overlap-frame mask IoU + embedding + class."""
        if not overlap or len(rows) == 0 or not tracks:
            return [], rows, tracks
        iou = self._overlap_iou(masks, rows, tracks, overlap, frames_o)
        wm, we, wc = self.weights
        affinity = (wm * iou + we * np.clip(self._cosine(inst, rows, tracks), 0, 1)
                    + wc * label_agreement(inst.labels[rows], [t.label for t in tracks]))
        cost = np.where(iou >= self.min_mask_iou, 1.0 - affinity / (wm + we + wc), np.inf)
        matches, free_rows, free_cols = linear_assignment(cost, max_cost=1.0)
        pairs = [(int(rows[r]), tracks[c]) for r, c in matches]
        return pairs, rows[free_rows], [tracks[c] for c in free_cols]

    def _link_appearance(self, inst, masks, rows, tracks, overlap, frames_o):
        """Stage 3: re-identification by embedding cosine and class, strict gate."""
        if len(rows) == 0 or not tracks:
            return [], rows
        cosine = self._cosine(inst, rows, tracks)
        _, we, wc = self.weights
        affinity = (we * cosine + wc * label_agreement(inst.labels[rows],
                                                       [t.label for t in tracks])) / (we + wc)
        feasible = cosine >= self.reid_min_cosine
        with_masks = [j for j, t in enumerate(tracks) if t.masks is not None]
        if overlap and with_masks:  # visible together but apart on the overlap: not the same
            row_masks = masks.select(rows, overlap)
            trk_masks = self._track_masks([tracks[j] for j in with_masks], frames_o)
            iou = packed_iou_matrix(row_masks, trk_masks)
            seen_row, seen_trk = row_masks.present.any(axis=1), trk_masks.present.any(axis=1)
            apart = seen_row[:, None] & seen_trk[None, :] & (iou <= self.apart_max_iou)
            feasible[:, with_masks] &= ~apart
        matches, free_rows, _ = linear_assignment(np.where(feasible, 1.0 - affinity, np.inf),
                                                  max_cost=2.0)
        return [(int(rows[r]), tracks[c]) for r, c in matches], rows[free_rows]

    def _stage4_births(self, inst: WindowInstances, rows: np.ndarray, frames: list[int]):
        born = []
        for row in rows:
            if len(self.tracks) >= self.max_tracks and not self._evict_oldest_lost():
                self.dropped_births += 1
                continue
            track = Track(track_id=self._next_id, embedding=inst.embeddings[row],
                          class_score_sum=np.zeros(inst.class_scores.shape[1], np.float32),
                          first_frame=frames[0], last_frame=frames[0], box=inst.boxes[row, 0])
            self._next_id += 1
            self.tracks[track.track_id] = track
            born.append((int(row), track))
        return born

    def _stage5_bookkeeping(self, matched_ids: set[int], frames: list[int]) -> None:
        for track in list(self.tracks.values()):
            if track.track_id in matched_ids:
                continue
            if track.state is TrackState.ACTIVE:
                track.mark_lost()
            if frames[-1] - track.last_frame > self.max_lost_frames:
                self._remove(track)
        self._previous_frames = list(frames)

    # -- helpers ---------------------------------------------------------------------------
    def _overlap_iou(self, masks, rows, tracks, overlap, frames_o) -> np.ndarray:
        """Video IoU ``[len(rows), len(tracks)]`` over the overlap frames."""
        return packed_iou_matrix(masks.select(rows, overlap), self._track_masks(tracks, frames_o))

    @staticmethod
    def _track_masks(tracks: list[Track], frames_o: list[int]) -> PackedMasks:
        """The tracks' stored masks at frames ``frames_o`` (ACTIVE tracks share their frames)."""
        first = tracks[0].mask_frames
        if all(t.mask_frames == first for t in tracks):
            positions = [first.index(f) for f in frames_o]
            return PackedMasks.concatenate([t.masks for t in tracks]).select(
                np.arange(len(tracks)), positions)
        return PackedMasks.concatenate(
            [t.masks.select([0], [t.mask_frames.index(f) for f in frames_o]) for t in tracks])

    @staticmethod
    def _cosine(inst: WindowInstances, rows, tracks) -> np.ndarray:
        return cosine_matrix(inst.embeddings[rows], np.stack([t.embedding for t in tracks]))

    def _evict_oldest_lost(self) -> bool:
        lost = [t for t in self.tracks.values() if t.state is TrackState.LOST]
        if not lost:
            return False
        self._remove(min(lost, key=lambda t: t.last_frame))
        return True

    def _remove(self, track: Track) -> None:
        track.state = TrackState.REMOVED
        track.masks = None
        del self.tracks[track.track_id]
        self.removed_ids.append(track.track_id)
