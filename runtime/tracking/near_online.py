"""IFC's official near-online clip merging, as a torch-free numpy reference.

Official code: ``projects/IFC/ifc/ifc.py`` (clip schedule, ``inference_clip``, ``inference_video``)
and ``ifc/structures/clip_output.py: Videos`` (sukjunhwang/IFC @880d646). Rules reproduced:

1. Schedule: clips [s, s+T) for s = 0, S, 2S, …; the first clip reaching the end is replaced by
   the last full window [max(0, V-T), V) and the loop stops.
2. Per clip: p = softmax over C+1 columns; keep queries whose argmax is not no-object; keep their
   full p and mask logits (stride 8).
3. Matching: for every track s and new instance n, soft IoU Σ s·n / (Σ (s + n - s·n) + 1e-6) over
   the overlap frames (frames already covered by earlier clips) on which s was written, per earlier
   clip among the last T; averaged over the clips where s wrote any overlap frame (+1e-6). Values
   <= 0.05 are zeroed, Hungarian (maximise); pairs > 0.05 extend tracks; every other instance
   starts a new track (in instance order); at most 50 tracks (the official code then fails).
4. Result: per (track, frame) mean of mask logits over the clips that wrote it (never written: NaN,
   i.e. empty); per track, the mean of p over the clips it appeared in; output every
   (track, class) with mean p > 0.01 (``MULTI_CLS_ON``), mask = logit > 0.

Memory here is per-track running sums plus the last T clips' probabilities (the official store is
dense [V, 50, V, h, w]); results are identical (tested against a dense transliteration).
The official code upsamples the averaged logits to the video size before thresholding; this
reference returns them at the clip outputs' own resolution.

From engine-contract outputs (what the runtime receives): windows T=5, stride 1, each window's
rows through ``instances_from_contract`` (group rows by ``query_index``, keep score > 0, mask
logit = logit(prob)), then ``NearOnlineMerger(window=5, match_threshold=0.05, max_tracks=50)``
and ``video_instances`` give the official tracks and classes; the logits are the official ones
upsampled ×2 (bilinear averaging commutes), up to the fp32 logit round trip. Exact whenever K
covers every kept (query, class) pair with p > 0 that matters (pairs below the top K count as 0).
For stride S > 1 the official last clip is shifted back to end at the last frame.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np


class TooManyTracksError(RuntimeError):
    """More tracks than ``max_tracks`` (the official store has 50 slots and fails there)."""


def clip_schedule(num_frames: int, window: int, stride: int) -> list[tuple[int, int]]:
    """Official clip list [(start, end)] for a video of ``num_frames`` frames."""
    if num_frames < 1 or window < 1 or stride < 1:
        raise ValueError(f"need num_frames, window, stride >= 1, got {num_frames}, {window}, {stride}")
    clips = []
    for start in range(0, num_frames, stride):
        end = start + window
        if end >= num_frames:
            clips.append((max(0, num_frames - window), num_frames))
            break
        clips.append((start, end))
    return clips


@dataclass(frozen=True)
class ClipInstances:
    """Kept instances of one clip: ``cls_probs`` [N, C+1] (incl. no-object), ``mask_logits``
    [N, T, h, w], ``frame_idx`` [T] video frame numbers."""

    frame_idx: np.ndarray
    cls_probs: np.ndarray
    mask_logits: np.ndarray

    @property
    def mask_probs(self) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-self.mask_logits))


def select_instances(pred_logits: np.ndarray, pred_masks: np.ndarray,
                     frame_idx: np.ndarray) -> ClipInstances:
    """Official ``inference_clip``: logits [Q, C+1], mask logits [Q, T, h, w] -> kept instances."""
    z = pred_logits - pred_logits.max(axis=1, keepdims=True)
    prob = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    keep = prob.argmax(axis=1) < prob.shape[1] - 1
    return ClipInstances(np.asarray(frame_idx), prob[keep], pred_masks[keep])


def soft_iou(saved: np.ndarray, valid: np.ndarray, new: np.ndarray) -> np.ndarray:
    """Official ``get_siou``: saved [C, S, F, P], valid [C, S, F] bool, new [N, F, P] -> [S, N].

    Per earlier clip c: Σ_{valid f, p} s·n / (Σ_{valid f, p} (s + n − s·n) + 1e-6); then summed
    over c and divided by the number of clips where track s is valid on any overlap frame.
    """
    sv = saved * valid[..., None]  # zero where the track was not written
    inter = np.einsum("csfp,nfp->csn", sv, new)
    union = sv.sum(axis=(2, 3))[..., None] + np.einsum("csf,nf->csn", valid, new.sum(-1)) - inter
    siou = inter / (union + 1e-6)  # [C, S, N]
    num_valid_clips = valid.any(axis=2).sum(axis=0)  # [S]
    return siou.sum(axis=0) / (num_valid_clips[:, None] + 1e-6)


def match(scores: np.ndarray, *, threshold: float) -> tuple[list[tuple[int, int]], list[int]]:
    """[S, N] sIoU -> (matched (track, instance) pairs above ``threshold``, unmatched instances)."""
    n = scores.shape[1]
    if scores.size == 0:
        return [], list(range(n))
    gated = np.where(scores > threshold, scores, 0.0)
    from scipy.optimize import linear_sum_assignment  # lazy: ~0.5 s import

    rows, cols = linear_sum_assignment(gated, maximize=True)
    pairs = [(int(r), int(c)) for r, c in zip(rows, cols, strict=True) if scores[r, c] > threshold]
    taken = {c for _, c in pairs}
    return pairs, [i for i in range(n) if i not in taken]


@dataclass
class _Track:
    """Running sums of one track: logits per frame, class probs per clip."""

    logit_sum: dict[int, np.ndarray] = field(default_factory=dict)
    logit_count: dict[int, int] = field(default_factory=dict)
    cls_sum: np.ndarray | None = None
    clips: int = 0

    def add(self, frame_idx: np.ndarray, logits: np.ndarray, cls_probs: np.ndarray) -> None:
        for f, lg in zip(frame_idx.tolist(), logits, strict=True):
            self.logit_sum[f] = self.logit_sum.get(f, 0.0) + lg
            self.logit_count[f] = self.logit_count.get(f, 0) + 1
        self.cls_sum = cls_probs.copy() if self.cls_sum is None else self.cls_sum + cls_probs
        self.clips += 1


class NearOnlineMerger:
    """Streaming equivalent of the official ``Videos`` store. Feed clips in schedule order."""

    def __init__(self, *, window: int, match_threshold: float = 0.05, max_tracks: int = 50):
        self.window = window
        self.match_threshold = match_threshold
        self.max_tracks = max_tracks
        self.reset()

    def reset(self) -> None:
        self.tracks: list[_Track] = []
        self.covered: set[int] = set()
        # Last `window` clips: {track: (frame_idx [T], mask probs [T, h, w])}.
        self.recent: deque[dict[int, tuple[np.ndarray, np.ndarray]]] = deque(maxlen=self.window)

    def _scores(self, clip: ClipInstances) -> tuple[np.ndarray, np.ndarray]:
        """sIoU [tracks, instances] on the overlap frames, and the overlap positions in the clip."""
        overlap = [i for i, f in enumerate(clip.frame_idx.tolist()) if f in self.covered]
        n, s = len(clip.cls_probs), len(self.tracks)
        if not overlap or s == 0 or n == 0:
            return np.zeros((s, n)), np.asarray(overlap, dtype=int)
        frames = clip.frame_idx[overlap]
        new = clip.mask_probs[:, overlap].reshape(n, len(overlap), -1)
        past = list(self.recent)[-len(clip.frame_idx):]
        saved = np.zeros((len(past), s, len(overlap), new.shape[-1]))
        valid = np.zeros((len(past), s, len(overlap)), dtype=bool)
        for c, record in enumerate(past):
            for track, (fidx, probs) in record.items():
                pos = {f: i for i, f in enumerate(fidx.tolist())}
                for j, f in enumerate(frames.tolist()):
                    if f in pos:
                        saved[c, track, j] = probs[pos[f]].reshape(-1)
                        valid[c, track, j] = True
        return soft_iou(saved, valid, new), np.asarray(overlap, dtype=int)

    def update(self, clip: ClipInstances) -> list[int]:
        """Link the clip's instances to tracks; return the track index of every instance."""
        pairs, unmatched = match(self._scores(clip)[0], threshold=self.match_threshold)
        if len(self.tracks) + len(unmatched) > self.max_tracks:
            raise TooManyTracksError(
                f"{len(self.tracks) + len(unmatched)} tracks exceed max_tracks={self.max_tracks}; "
                "raise max_tracks or filter instances before merging"
            )
        assigned = dict((inst, track) for track, inst in pairs)
        for inst in unmatched:
            assigned[inst] = len(self.tracks)
            self.tracks.append(_Track())
        record, probs = {}, clip.mask_probs
        for inst in range(len(clip.cls_probs)):
            track = assigned[inst]
            self.tracks[track].add(clip.frame_idx, clip.mask_logits[inst], clip.cls_probs[inst])
            record[track] = (clip.frame_idx, probs[inst])
        self.recent.append(record)
        self.covered.update(clip.frame_idx.tolist())
        return [assigned[i] for i in range(len(clip.cls_probs))]

    def result(self, num_frames: int) -> tuple[np.ndarray, np.ndarray]:
        """(mean class probs [tracks, C+1], mean mask logits [tracks, V, h, w], NaN = never written)."""
        if not self.tracks:
            return np.zeros((0, 0)), np.zeros((0, num_frames, 0, 0))
        shape = next(iter(self.tracks[0].logit_sum.values())).shape
        logits = np.full((len(self.tracks), num_frames, *shape), np.nan)
        for t, track in enumerate(self.tracks):
            for f, total in track.logit_sum.items():
                logits[t, f] = total / track.logit_count[f]
        cls = np.stack([t.cls_sum / t.clips for t in self.tracks])
        return cls, logits


def video_instances(cls: np.ndarray, logits: np.ndarray, *, cls_threshold: float = 0.01,
                    multi_cls: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Official ``inference_video``: (scores [N], labels [N], track index [N]); masks = logits > 0."""
    real = cls[:, :-1]
    if multi_cls:
        tracks, labels = np.nonzero(real > cls_threshold)  # row-major, like torch.where
        return real[tracks, labels], labels, tracks
    labels = real.argmax(axis=1)
    return real[np.arange(len(real)), labels], labels, np.arange(len(real))


def instances_from_contract(outputs: dict[str, np.ndarray], frame_idx: np.ndarray, *,
                            num_classes: int, eps: float = 1e-6) -> ClipInstances:
    """One clip's engine-contract rows (no batch axis) -> ``ClipInstances`` for the merger.

    Rows with score > 0 are the (query, class) pairs of kept queries; rows of one query are
    grouped (ascending query index, the official instance order) into a class vector holding the
    exported probabilities (pairs outside the top K and the no-object column are 0). Mask logits
    are recovered as logit(p) with p clipped to [eps, 1 − eps]; they keep the contract's stride 4.
    """
    kept = outputs["scores"] > 0
    query = outputs["query_index"][kept]
    queries = np.unique(query)
    cls = np.zeros((len(queries), num_classes + 1))
    rows = np.searchsorted(queries, query)
    cls[rows, outputs["labels"][kept]] = outputs["scores"][kept]
    first = np.array([np.flatnonzero(query == q)[0] for q in queries], dtype=int)
    p = np.clip(outputs["masks"][kept][first].astype(np.float64), eps, 1.0 - eps)
    return ClipInstances(np.asarray(frame_idx), cls, np.log(p) - np.log1p(-p))


def merge_video(clips: list[ClipInstances], *, window: int, num_frames: int,
                match_threshold: float = 0.05, max_tracks: int = 50):
    """Run the merger over ``clips`` (schedule order); return ``result(num_frames)``."""
    merger = NearOnlineMerger(window=window, match_threshold=match_threshold, max_tracks=max_tracks)
    for clip in clips:
        merger.update(clip)
    return merger.result(num_frames)
