"""The matmul + grid_sample deformable convolution equals torchvision.ops.deform_conv2d."""

from __future__ import annotations

from functools import partial

import pytest
import torch
import torch.nn.functional as F
from torchvision.ops import deform_conv2d as tv_deform_conv2d

from models.vistr.deform_conv import DeformConv2d, deform_conv2d, taps_per_call_for

# Both sides sum C·k² products in a different order (project per tap, then interpolate and sum
# the taps, vs interpolate, then one im2col GEMM) and
# our sample positions pass through the normalised grid (rounding ~W·eps px), so the error bound
# is a number of ulp of the absolute sum Σ|w|·|x| per output, at either dtype. Measured:
# ≤ 31 ulp (fp64, 1x1 kernel over 3 channels: the position rounding dominates the few terms)
# and ≤ 3 ulp at fp32 (≤ 20 when the samples were interpolated before the projection); a wrong
# layout or interpolation gives errors of the order of the sum.
ULPS = 64
CASES = [  # (N, C, O, H, W, kernel, stride, padding, dilation, offset scale in px)
    (2, 48, 24, 13, 17, 3, 1, 1, 1, 3.0),  # the VisTR mask head's DCN (48 -> 24, 3x3, pad 1)
    (1, 5, 4, 10, 7, 3, 2, 1, 1, 2.0),
    (3, 4, 6, 9, 9, 3, 1, 2, 2, 5.0),
    (1, 3, 2, 6, 11, 1, 1, 0, 1, 1.5),
    (2, 4, 3, 1, 1, 3, 1, 1, 1, 0.7),  # 1-pixel map: every tap but the centre samples padding
    (1, 6, 5, 8, 12, 3, 1, 1, 1, 40.0),  # offsets far outside the map -> zeros
]


@pytest.mark.parametrize("taps_per_call", [1, 2, 9])  # one tap a call, uneven groups, one call
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES)
def test_equals_torchvision(case, dtype, taps_per_call):
    n, c, o, h, w, k, stride, padding, dilation, scale = case
    g = torch.Generator().manual_seed(sum(case[:6]))
    x = torch.randn(n, c, h, w, generator=g, dtype=dtype)
    weight = torch.randn(o, c, k, k, generator=g, dtype=dtype)
    ho = (h + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    wo = (w + 2 * padding - dilation * (k - 1) - 1) // stride + 1
    offset = torch.randn(n, 2 * k * k, ho, wo, generator=g, dtype=dtype) * scale
    ours = deform_conv2d(x, offset, weight, stride=stride, padding=padding, dilation=dilation,
                         taps_per_call=min(taps_per_call, k * k))
    ref = tv_deform_conv2d(x, offset, weight, stride=stride, padding=padding, dilation=dilation)
    magnitude = tv_deform_conv2d(
        x.abs(), offset, weight.abs(), stride=stride, padding=padding, dilation=dilation
    )
    error = (ours - ref).abs()
    assert (error <= ULPS * torch.finfo(dtype).eps * magnitude + 1e-30).all(), error.max()


def test_integer_offsets_shift_the_taps_exactly():
    """Offset (dy, dx) = (1, 0) on every tap is a 3x3 conv of the map shifted up by one row."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 2, 6, 5, generator=g, dtype=torch.float64)
    weight = torch.randn(3, 2, 3, 3, generator=g, dtype=torch.float64)
    offset = torch.zeros(1, 18, 6, 5, dtype=torch.float64)
    offset[:, 0::2] = 1.0  # channel 2k is the y offset of tap k
    # tap (i, j) of output (r, col) reads input (r + i, col + j - 1): zero-pad 0 rows above, 2 below
    expected = F.conv2d(F.pad(x, (1, 1, 0, 2)), weight)
    torch.testing.assert_close(
        deform_conv2d(x, offset, weight, padding=1), expected, atol=1e-12, rtol=0
    )


def test_module_has_the_official_layout_and_zero_offsets_give_a_plain_conv():
    dcn = DeformConv2d(8, 4, 3, padding=1)
    assert list(dict(dcn.named_parameters())) == ["weight"] and dcn.weight.shape == (4, 8, 3, 3)
    x = torch.randn(2, 8, 7, 9)
    out = dcn(x, torch.zeros(2, 18, 7, 9))
    torch.testing.assert_close(out, F.conv2d(x, dcn.weight, padding=1), atol=2e-5, rtol=1e-5)


def test_wrong_offset_shape_is_refused_with_the_expected_form():
    with pytest.raises(ValueError, match=r"offset must be \[N, 18, 7, 9\]"):
        deform_conv2d(
            torch.zeros(1, 8, 7, 9), torch.zeros(1, 36, 7, 9), torch.zeros(4, 8, 3, 3), padding=1
        )


def test_gradients_equal_torchvision_so_training_can_use_the_standard_ops_form():
    """Training runs the standard-ops form (much faster backward on CPU); its gradients for the
    input, offsets and weight match torchvision's kernel. fp64, offsets kept away from integer
    sample positions (the bilinear kinks, where the two sides may pick different one-sided slopes)."""
    g = torch.Generator().manual_seed(3)
    x = torch.randn(2, 6, 9, 11, generator=g, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 6, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    whole = torch.randint(-2, 3, (2, 18, 9, 11), generator=g).double()
    frac = 0.2 + 0.6 * torch.rand(2, 18, 9, 11, generator=g, dtype=torch.float64)
    offset = (whole + frac).requires_grad_()
    upstream = torch.randn(2, 4, 9, 11, generator=g, dtype=torch.float64)
    grads = []
    for fn in (deform_conv2d, tv_deform_conv2d, partial(deform_conv2d, taps_per_call=9)):
        out = fn(x, offset, weight, padding=1)
        grads.append(torch.autograd.grad((out * upstream).sum(), (x, offset, weight)))
    for ref_index in (0, 2):
        for ours, ref in zip(grads[ref_index], grads[1]):
            torch.testing.assert_close(ours, ref, atol=1e-9, rtol=1e-9)


def test_taps_per_call_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"taps_per_call must be in \[1, 9\], got 10"):
        deform_conv2d(torch.zeros(1, 2, 4, 4), torch.zeros(1, 18, 4, 4), torch.zeros(3, 2, 3, 3),
                      padding=1, taps_per_call=10)


def test_taps_per_call_keeps_one_clip_of_samples_within_the_budget():
    """All nine taps in one grid_sample for the tiny preset (60 items, 6 output channels of
    48 x 80: 50 MB), one tap a call for the official R-50 at 320x544 (360 items of 24 x 80 x 136:
    376 MB a tap)."""
    assert taps_per_call_for(60, 6, (48, 80)) == 9
    assert taps_per_call_for(360, 24, (80, 136)) == 1
    per_tap = 60 * 6 * 48 * 80 * 4
    assert taps_per_call_for(60, 6, (48, 80), budget_bytes=4 * per_tap + 1) == 4


@pytest.mark.parametrize(("preset", "expected"), [("tiny", 9), ("r50", 1)])
def test_vistr_sets_the_group_size_from_its_clip(preset, expected):
    from models.vistr.model import build

    assert build(preset).mask_head.dcn.taps_per_call == expected


def test_module_uses_the_standard_ops_form_in_training_mode():
    dcn = DeformConv2d(3, 2, 3, padding=1).train()
    x, offset = torch.randn(1, 3, 5, 6), torch.randn(1, 18, 5, 6)
    torch.testing.assert_close(dcn(x, offset), deform_conv2d(x, offset, dcn.weight, padding=1),
                               atol=0, rtol=0)
