"""Start-of-stage weight adjustments that keep a model's official layout (no new parameters).

VisTR's mask head reads the instance attention maps concatenated after the encoder memory
(``mask_head.lay1`` input = d memory channels + heads attention channels). The maps come from a
softmax over heads x pixels, so each value is ~1/(heads*h*w) (0.002 at the tiny preset) against
memory values of std ~1: with equal initial weights the attention channels move ``lay1``'s output
by ~0.3 % (measured on the tiny detector), and a short CPU mask stage never learns to read them:
every slot paints the same mask. DETR's long schedules grow those weights slowly;
``scale_attention_inputs`` starts them larger instead.

Measured (docs/notes/lab-notebook.md, VisTR session 6): a gain of 300 gives the maps half of ``lay1``'s
output at the start, but a 374-step mask stage on the tiny detector shrinks that share back to 6 %
and the slots still share one mask, because that detector's slot maps are not instance-specific
(the criterion's matched slot is the slot attending most to its object for 3 of 31 objects). The
gain removes the scale problem; a detector whose slots attend to distinct objects is still needed.
"""

from __future__ import annotations

import torch


def scale_attention_inputs(model: torch.nn.Module, gain: float) -> int:
    """Multiply the attention-map input columns of VisTR's ``mask_head.lay1`` by ``gain`` in place.

    Args:
        model: a ``VisTRSegm`` (its ``cfg.hidden_dim`` is the number of memory channels).
        gain: factor for ``lay1.weight[:, hidden_dim:]``.

    Returns:
        the number of attention input channels scaled.
    """
    lay1 = getattr(getattr(model, "mask_head", None), "lay1", None)
    hidden = getattr(getattr(model, "cfg", None), "hidden_dim", None)
    if lay1 is None or hidden is None or lay1.weight.shape[1] <= hidden:
        raise SystemExit(f"--attn-input-gain applies to VisTR (mask_head.lay1 reading memory + "
                         f"attention maps); {type(model).__name__} has no such layer")
    with torch.no_grad():
        lay1.weight[:, hidden:] *= gain
    return lay1.weight.shape[1] - hidden
