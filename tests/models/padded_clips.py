"""Letterboxed test clips: random content at the top-left, the runtime's fill everywhere else.

The fill is the model's mean colour rounded to uint8 (``runtime.pipeline``), which normalises to
~0, like the zeros official ``ImageList`` / ``nested_tensor_from_tensor_list`` pad with.
"""

from __future__ import annotations

import numpy as np
import torch

# Real-image sizes inside the tiny presets' 192x320 input: a 4:3 source, a 16:9 source and a
# small one whose stride-32 rows and columns are both cut mid-cell (ceil(120/32) = 4, ceil(200/32) = 7).
TINY_CONTENTS = ((192, 256), (180, 320), (120, 200))


def letterboxed(
    model, contents: tuple[tuple[int, int], ...], t: int, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """uint8 frames Tensor[B, T, H, W, 3] (B = len(contents)) and their int32 content_hw [B, 2]."""
    h, w = model.spec.input_hw
    rng = np.random.default_rng(seed)
    fill = np.clip(np.round(model.spec.mean), 0, 255).astype(np.uint8)
    frames = np.empty((len(contents), t, h, w, 3), np.uint8)
    frames[...] = fill
    for i, (ch, cw) in enumerate(contents):
        frames[i, :, :ch, :cw] = rng.integers(0, 256, (t, ch, cw, 3), dtype=np.uint8)
    return torch.from_numpy(frames), torch.tensor(contents, dtype=torch.int32)
