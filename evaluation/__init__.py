"""visdeploy evaluation: synthetic VIS videos, the YouTube-VIS scorer and tracking metrics.

Modules (import what you need; this package imports nothing heavy on its own):

- ``evaluation.synthetic``: moving textured shapes with scripted events and exact YouTube-VIS
  ground truth (``generate_dataset``, ``generate_video``, ``read_video``; CLI
  ``python -m evaluation.synthetic``).
- ``evaluation.ytvis``: the official YouTube-VIS arithmetic (``evaluate``; CLI
  ``python -m evaluation.ytvis``), built from ``ytvis_io`` (loading, validation), ``ytvis_iou``
  (video IoU), ``ytvis_match`` (greedy matching), ``ytvis_accumulate`` (precision/recall and
  summary); ``ytvis_reference`` is the slow plain version used to cross-check it.
- ``evaluation.tracking`` (CLEAR, IDF1, re-identification), ``evaluation.chunks`` (window
  geometry, boundary switches, link precision/recall, chunked oracle) and
  ``evaluation.track_eval`` (all of them per video; CLI ``python -m evaluation.track_eval``),
  on per-frame tracks in the format of ``evaluation.tracking_input``.
"""
