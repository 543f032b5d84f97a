"""multi_head_attention (fused scaled_dot_product_attention) equals nn.MultiheadAttention's forward."""
import os

import pytest
import torch
from torch import nn

from mask_former.modeling.transformer import multi_head_attention
from mask_former.modeling.transformer.attention import supports_fused_attention
from segcore.layers import set_fused_attention

E, HEADS = 32, 4


def _mha(dropout=0.0, bias=True):
    torch.manual_seed(0)
    m = nn.MultiheadAttention(E, HEADS, dropout=dropout, bias=bias)
    with torch.no_grad():
        if bias:
            m.in_proj_bias.normal_()
            m.out_proj.bias.normal_()
    return m


def _seq(length, batch=3, seed=0):
    return torch.randn(length, batch, E, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("mask_kind", [None, "bool3d", "bool2d", "float3d", "padding", "bool3d+padding",
                                       "float3d+padding"])
def test_equals_the_module(bias, mask_kind):
    m = _mha(bias=bias).eval()
    q, k, v = _seq(7, seed=1), _seq(11, seed=2), _seq(11, seed=3)
    g = torch.Generator().manual_seed(4)
    attn_mask = key_padding_mask = None
    if mask_kind and mask_kind.startswith("bool3d"):
        attn_mask = torch.rand(3 * HEADS, 7, 11, generator=g) < 0.4
        attn_mask[..., 0] = False  # no fully masked row
    elif mask_kind == "bool2d":
        attn_mask = torch.rand(7, 11, generator=g) < 0.4
        attn_mask[..., 0] = False
    elif mask_kind and mask_kind.startswith("float3d"):
        attn_mask = torch.randn(3 * HEADS, 7, 11, generator=g)
    if mask_kind and mask_kind.endswith("padding"):
        key_padding_mask = torch.zeros(3, 11, dtype=torch.bool)
        key_padding_mask[1, 6:] = True
    expected = m(q, k, v, attn_mask=attn_mask, key_padding_mask=key_padding_mask)[0]
    got = multi_head_attention(m, q, k, v, attn_mask=attn_mask, key_padding_mask=key_padding_mask)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_gradients_equal_the_module():
    m = _mha().train()  # no dropout: the fused path is used in training too
    assert supports_fused_attention(m)
    q = _seq(5, seed=1).requires_grad_()
    kv = _seq(9, seed=2).requires_grad_()
    mask = torch.rand(3 * HEADS, 5, 9, generator=torch.Generator().manual_seed(0)) < 0.3
    mask[..., 0] = False
    out_ref = m(q, kv, kv, attn_mask=mask)[0]
    grads_ref = torch.autograd.grad(out_ref.square().sum(), [q, kv, m.in_proj_weight, m.out_proj.weight])
    out = multi_head_attention(m, q, kv, kv, attn_mask=mask)
    grads = torch.autograd.grad(out.square().sum(), [q, kv, m.in_proj_weight, m.out_proj.weight])
    for a, b in zip(grads, grads_ref):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


def test_training_with_dropout_runs_the_module_itself():
    """Its random numbers stay those of the original code (the fused kernel would draw others)."""
    m = _mha(dropout=0.5).train()
    assert not supports_fused_attention(m)
    q, kv = _seq(5, seed=1), _seq(9, seed=2)
    torch.manual_seed(7)
    expected = m(q, kv, kv)[0]
    torch.manual_seed(7)
    assert torch.equal(multi_head_attention(m, q, kv, kv), expected)
    m.eval()
    assert supports_fused_attention(m)


def test_rows_next_to_a_fully_masked_query_are_unaffected():
    """A query with every key masked is undefined (the module gives NaN; the fused kernel may give
    another value): callers never mask every key (masked_attention_mask unmasks such rows). The
    other queries are unaffected."""
    m = _mha().eval()
    q, kv = _seq(2, batch=1), _seq(4, batch=1)
    mask = torch.zeros(HEADS, 2, 4, dtype=torch.bool)
    mask[:, 0] = True
    mask[:, 1, 1] = True
    expected = m(q, kv, kv, attn_mask=mask)[0]
    assert torch.isnan(expected[0]).all()
    torch.testing.assert_close(multi_head_attention(m, q, kv, kv, attn_mask=mask)[1], expected[1],
                               rtol=1e-5, atol=1e-5)


def test_fused_false_runs_the_module_forward():
    m = _mha().eval()
    q, kv = _seq(5, seed=1), _seq(9, seed=2)
    seen = []
    m.register_forward_hook(lambda module, args, out: seen.append(out[1]))
    multi_head_attention(m, q, kv, kv)
    assert seen == []  # the fused kernel bypasses the module's forward
    got = multi_head_attention(m, q, kv, kv, fused=False)
    assert len(seen) == 1 and seen[0].shape == (3, 5, 9)  # the head-averaged attention weights
    torch.testing.assert_close(got, multi_head_attention(m, q, kv, kv), rtol=1e-5, atol=1e-5)


def _decoder_layers():
    from mask2former.modeling.transformer_decoder.attention_layers import CrossAttentionLayer, SelfAttentionLayer
    from mask_former.modeling.transformer.transformer import TransformerDecoderLayer

    torch.manual_seed(0)
    return (nn.ModuleList([TransformerDecoderLayer(E, HEADS, dropout=0.0)]).eval(),
            nn.ModuleList([SelfAttentionLayer(E, HEADS), CrossAttentionLayer(E, HEADS)]).eval())


def _attention_calls(model, run):
    seen = []
    hooks = [m.register_forward_hook(lambda module, args, out: seen.append(module))
             for m in model.modules() if isinstance(m, nn.MultiheadAttention)]
    try:
        run()
    finally:
        for h in hooks:
            h.remove()
    return len(seen)


def test_set_fused_attention_is_per_model():
    """Two models in one process: switching one to the plain path leaves the other fused, and the
    plain path runs the modules' own forward (hooks see it) with the same result."""
    detr, m2f = _decoder_layers()
    other_detr, other_m2f = _decoder_layers()
    assert set_fused_attention(detr, False) == 1 and set_fused_attention(m2f, False) == 2
    tgt, memory = _seq(5, seed=1), _seq(9, seed=2)

    def run_detr(model):
        return lambda: model[0](tgt, memory)

    def run_m2f(model):
        return lambda: model[1](model[0](tgt), memory)

    assert _attention_calls(detr, run_detr(detr)) == 2 and _attention_calls(m2f, run_m2f(m2f)) == 2
    assert _attention_calls(other_detr, run_detr(other_detr)) == 0  # still fused: no module forward
    assert _attention_calls(other_m2f, run_m2f(other_m2f)) == 0
    with torch.no_grad():
        torch.testing.assert_close(detr[0](tgt, memory), other_detr[0](tgt, memory), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(m2f[1](m2f[0](tgt), memory), other_m2f[1](other_m2f[0](tgt), memory),
                                   rtol=1e-5, atol=1e-5)
    assert set_fused_attention(detr, True) == 1 and _attention_calls(detr, run_detr(detr)) == 0


def test_fused_attention_from_the_config():
    from segcore.engine import setup_cfg
    from segcore.modeling import build_model
    from tests.paths import CONFIGS

    for enabled in (False, True):
        cfg = setup_cfg(os.path.join(CONFIGS, "quickstart", "mask2former_R18_quickstart.yaml"),
                        ["MODEL.DEVICE", "cpu", "MODEL.FUSED_ATTENTION", str(enabled)])
        flags = [m.use_fused_attention for m in build_model(cfg).modules() if hasattr(m, "use_fused_attention")]
        assert len(flags) >= 2 and set(flags) == {enabled}
