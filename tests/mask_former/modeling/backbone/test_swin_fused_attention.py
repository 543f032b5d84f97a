"""Swin's WindowAttention with F.scaled_dot_product_attention equals the written-out attention."""
import pytest
import torch

from mask_former.modeling.backbone.swin import WindowAttention, shifted_window_attention_mask


def _attention(**kw):
    torch.manual_seed(0)
    m = WindowAttention(dim=24, window_size=(4, 4), num_heads=3, **kw)
    with torch.no_grad():
        m.relative_position_bias_table.normal_()
    return m


@pytest.mark.parametrize("batch", [1, 2])
@pytest.mark.parametrize("shifted", [False, True])
@pytest.mark.parametrize("qk_scale", [None, 0.3])
def test_fused_equals_written_out(batch, shifted, qk_scale):
    m = _attention(qk_scale=qk_scale).eval()
    mask = shifted_window_attention_mask(8, 12, 4, 2) if shifted else None  # 6 windows
    x = torch.randn(batch * 6, 16, 24, generator=torch.Generator().manual_seed(1))
    m.use_fused_attention = False
    expected = m(x, mask)
    m.use_fused_attention = True
    torch.testing.assert_close(m(x, mask), expected, rtol=1e-5, atol=1e-5)


def test_gradients_equal():
    m = _attention().train()
    mask = shifted_window_attention_mask(8, 8, 4, 2)
    x = torch.randn(4, 16, 24, generator=torch.Generator().manual_seed(1), requires_grad=True)
    grads = {}
    for fused in (False, True):
        m.use_fused_attention = fused
        out = m(x, mask)
        grads[fused] = torch.autograd.grad(out.square().sum(), [x, m.relative_position_bias_table, m.qkv.weight])
    for a, b in zip(grads[True], grads[False]):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_attention_dropout_in_training_uses_the_written_out_path():
    m = _attention(attn_drop=0.5).train()
    x = torch.randn(2, 16, 24, generator=torch.Generator().manual_seed(1))
    m.use_fused_attention = False
    torch.manual_seed(3)
    expected = m(x)
    m.use_fused_attention = True
    torch.manual_seed(3)
    assert torch.equal(m(x), expected)
