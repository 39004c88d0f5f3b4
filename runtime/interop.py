"""Hand-off to other libraries: ``FrameResult`` -> ``supervision.Detections``.

supervision (``pip install 'visdeploy[interop]'``) brings annotators, polygon zones and line
counters; with ``to_supervision`` a visdeploy stream feeds them directly::

    for result in pipeline.run("street.mp4"):
        detections = result.to_supervision()
        inside = zone.trigger(detections)
"""

from __future__ import annotations

import numpy as np

from runtime import rle as rle_codec

INSTALL_HINT = "pip install 'visdeploy[interop]' (or pip install supervision)"


def to_supervision(result):
    """``supervision.Detections`` of ``result``'s N tracks.

    ``xyxy`` float32 [N, 4] (source pixels), ``mask`` bool [N, H, W] (RLE masks are decoded),
    ``confidence`` float32 [N] (track score), ``class_id`` int [N] (class index),
    ``tracker_id`` int [N] (the pipeline's track IDs), ``data["class_name"]`` [N] str;
    ``metadata`` holds the frame ``index`` and ``timestamp_s``.
    """
    try:
        import supervision as sv
    except ImportError as err:
        raise ImportError(f"to_supervision needs supervision: {INSTALL_HINT}") from err
    n = len(result)
    if result.masks is not None:
        masks = np.asarray(result.masks, bool)
    elif n:
        masks = np.stack([rle_codec.decode(r) for r in result.rles]).astype(bool)
    else:
        masks = np.zeros((0, *result.size), bool)
    names = np.array([result.class_names[int(c)] for c in result.labels], dtype=object)
    return sv.Detections(
        xyxy=np.asarray(result.boxes, np.float32).reshape(n, 4), mask=masks,
        confidence=np.asarray(result.scores, np.float32), class_id=np.asarray(result.labels, int),
        tracker_id=np.asarray(result.track_ids, int), data={"class_name": names},
        metadata={"index": result.index, "timestamp_s": result.timestamp_s})
