"""IFC's official near-online clip merging: lives in ``runtime.tracking.near_online`` (torch-free,
so the runtime's ``ifc-official`` tracker can use it); re-exported here beside the model."""

from runtime.tracking.near_online import (  # noqa: F401
    ClipInstances,
    NearOnlineMerger,
    TooManyTracksError,
    clip_schedule,
    instances_from_contract,
    match,
    merge_video,
    select_instances,
    soft_iou,
    video_instances,
)
