"""mask2former.ops.flop_count: the FLOP count of mask2former::ms_deform_attn against a hand-computed one."""
import pytest
import torch
from torch import nn

import mask2former.ops.flop_count as fc
from mask2former.ops.example_inputs import encoder_inputs
from segcore.analysis import FlopCountAnalysis, flop_handle_table


class _Op(nn.Module):
    def forward(self, *inputs):
        return torch.ops.mask2former.ms_deform_attn(*inputs)


def test_ms_deform_attn_flops_by_hand():
    # N=2, S=21, M=8 heads, D=32; Lq=21 queries, L=3 levels, P=4 points:
    # 4 multiply-adds per channel for the bilinear sample + 1 for the attention weight
    assert fc.ms_deform_attn_flops([2, 21, 8, 32], [2, 21, 8, 3, 4]) == 2 * 21 * 8 * 3 * 4 * 32 * (4 + 1)
    with pytest.raises(ValueError, match=r"\(N, S, M, D\)"):
        fc.ms_deform_attn_flops([2, 21, 256], [2, 21, 8, 3, 4])
    with pytest.raises(ValueError, match="batch size or number of heads"):
        fc.ms_deform_attn_flops([2, 21, 4, 32], [2, 21, 8, 3, 4])


def test_registered_and_counted_in_a_trace():
    assert flop_handle_table()[fc.MS_DEFORM_ATTN_OP] is fc.ms_deform_attn_flop_jit
    inputs = encoder_inputs(batch=1, image_size=64, channels=64)  # levels 8x8, 4x4, 2x2: Lq = S = 84; D = 8
    value, _, _, _, weights = inputs
    assert tuple(value.shape) == (1, 84, 8, 8) and tuple(weights.shape) == (1, 84, 8, 3, 4)
    analysis = FlopCountAnalysis(_Op(), tuple(inputs))
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    assert analysis.by_operator() == {"ms_deform_attn": 1 * 84 * 8 * 3 * 4 * 8 * 5}
    assert not analysis.unsupported_ops()
