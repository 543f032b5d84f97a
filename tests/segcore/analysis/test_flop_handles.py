"""segcore.analysis.flop_handles: each handle against a hand-computed count, traced as fvcore traces models.

One fused multiply-add is one FLOP: an (n, k) @ (k, m) product is n * k * m.
"""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from segcore.analysis import FlopCountAnalysis, register_flop_handle
import segcore.analysis.flop_handles as fh


class _Fn(nn.Module):
    """A module running ``fn(*inputs)`` (what FlopCountAnalysis traces)."""

    def __init__(self, fn, *modules: nn.Module):
        super().__init__()
        self.fn = fn
        self.parts = nn.ModuleList(modules)  # their parameters are traced as parameters

    def forward(self, *inputs):
        return self.fn(*inputs)


def _count(fn, *inputs, modules=()):
    analysis = FlopCountAnalysis(_Fn(fn, *modules), inputs)
    analysis.unsupported_ops_warnings(False).uncalled_modules_warnings(False)
    return analysis.by_operator(), analysis.unsupported_ops()


def test_matrix_product_flops_by_hand():
    # the semantic post-processing's product of the issue: (K, N) @ (N, rows * W)
    assert fh.matrix_product_flops([150, 100], [100, 10240]) == 150 * 100 * 10240
    assert fh.matrix_product_flops([7], [7, 3]) == 7 * 3  # 1-D left operand: a row
    assert fh.matrix_product_flops([4, 7], [7]) == 4 * 7  # 1-D right operand: a column
    assert fh.matrix_product_flops([2, 1, 3, 4], [5, 4, 6]) == 2 * 5 * 3 * 4 * 6  # broadcast batch
    with pytest.raises(ValueError, match="inner dimensions 4 and 5"):
        fh.matrix_product_flops([3, 4], [5, 6])
    with pytest.raises(ValueError, match="do not broadcast"):
        fh.matrix_product_flops([2, 3, 4], [3, 4, 6])
    with pytest.raises(ValueError, match="at least one dimension"):
        fh.matrix_product_flops([], [3])


def test_mm_and_bmm_with_out_argument():
    a, b = torch.randn(4, 5), torch.randn(5, 6)

    def fn(a, b):
        c = torch.empty(4, 6)
        torch.mm(a, b, out=c)  # traced as aten::mm(a, b, c): the third operand broke fvcore's handle
        d = torch.empty(3, 4, 6)
        torch.bmm(a.expand(3, 4, 5), b.expand(3, 5, 6), out=d)
        return c, d

    ops, unsupported = _count(fn, a, b)
    assert ops == {"mm": 4 * 5 * 6, "bmm": 3 * 4 * 5 * 6}
    assert not unsupported


def test_matmul_broadcasts_the_right_operand():
    # fvcore's handle counted prod(a.shape) * m, missing the right operand's batch of 2
    ops, _ = _count(lambda a, b: torch.matmul(a, b), torch.randn(4, 5), torch.randn(2, 5, 6))
    assert ops == {"matmul": 2 * 4 * 5 * 6}


def test_products_with_an_added_operand():
    a, b = torch.randn(4, 5), torch.randn(5, 6)

    def fn(a, b):
        a3, b3 = a.expand(3, 4, 5), b.expand(3, 5, 6)
        return (torch.addmm(torch.zeros(4, 6), a, b), torch.baddbmm(torch.zeros(3, 4, 6), a3, b3),
                torch.addbmm(torch.zeros(4, 6), a3, b3))

    ops, _ = _count(fn, a, b)
    assert ops == {"addmm": 4 * 5 * 6, "baddbmm": 3 * 4 * 5 * 6, "addbmm": 3 * 4 * 5 * 6}


def test_scaled_dot_product_attention_by_hand_and_as_written_out():
    batch, heads, length, source, embed, value_embed = 2, 3, 7, 11, 8, 5
    q = torch.randn(batch, heads, length, embed)
    k = torch.randn(batch, heads, source, embed)
    v = torch.randn(batch, heads, source, value_embed)
    mask = torch.rand(length, source) > 0.3
    mask[:, 0] = True
    ops, unsupported = _count(lambda q, k, v: F.scaled_dot_product_attention(q, k, v, attn_mask=mask), q, k, v)
    expected = batch * heads * length * source * (embed + value_embed)
    assert ops == {"scaled_dot_product_attention": expected}
    assert not unsupported

    def written_out(q, k, v):
        logits = (q @ k.transpose(-2, -1)) * embed ** -0.5
        return logits.masked_fill(~mask, float("-inf")).softmax(-1) @ v

    plain, _ = _count(written_out, q, k, v)
    assert sum(plain.values()) == expected  # the fused and the written-out attention count alike


def test_sdpa_and_multihead_attention_module_count_alike():
    """nn.MultiheadAttention's own path (in_proj, baddbmm with the mask, bmm, out_proj) against the
    fused path the decoders take (mask_former.modeling.transformer.attention)."""
    torch.manual_seed(0)
    module = nn.MultiheadAttention(16, 4).eval()
    query, memory = torch.randn(5, 2, 16), torch.randn(9, 2, 16)
    mask = torch.zeros(2 * 4, 5, 9, dtype=torch.bool)

    def plain(query, memory):
        return module(query, memory, memory, attn_mask=mask, need_weights=True)[0]

    def fused(query, memory):
        w_q, w_k, w_v = module.in_proj_weight.chunk(3)
        b_q, b_k, b_v = module.in_proj_bias.chunk(3)
        q = F.linear(query, w_q, b_q).view(5, 2, 4, 4).permute(1, 2, 0, 3)
        k = F.linear(memory, w_k, b_k).view(9, 2, 4, 4).permute(1, 2, 0, 3)
        v = F.linear(memory, w_v, b_v).view(9, 2, 4, 4).permute(1, 2, 0, 3)
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=~mask.view(2, 4, 5, 9))
        return F.linear(out.permute(2, 0, 1, 3).reshape(5, 2, 16), module.out_proj.weight, module.out_proj.bias)

    with torch.no_grad():
        plain_ops, plain_unsupported = _count(plain, query, memory, modules=[module])
        fused_ops, _ = _count(fused, query, memory, modules=[module])
    assert "baddbmm" in plain_ops
    assert set(plain_unsupported) <= {"aten::masked_fill_", "aten::unflatten"}  # a mask fill and a view
    attention = 2 * 4 * 5 * 9 * (4 + 4)
    projections = 5 * 2 * 16 * 16 * 2 + 9 * 2 * 16 * 16 * 2  # q and output; k and v
    assert sum(plain_ops.values()) == sum(fused_ops.values()) == attention + projections


def test_batch_norm_counts_nothing_in_eval_mode():
    bn = nn.BatchNorm2d(3)
    x = torch.randn(2, 3, 4, 5)
    ops, unsupported = _count(bn.eval(), x)
    assert sum(ops.values()) == 0 and not unsupported
    ops, _ = _count(bn.train(), x)
    assert ops == {"batch_norm": 2 * 3 * 4 * 5 * 5}  # fvcore's training-mode count, with affine parameters


def test_ignored_and_unsupported_operators():
    ops, unsupported = _count(lambda x: (x.softmax(-1) * 2 + 1, x.cumsum(0)), torch.randn(3, 4))
    assert sum(ops.values()) == 0
    assert dict(unsupported) == {"aten::cumsum": 1}  # no formula: reported; softmax, mul, add: ignored


def test_register_flop_handle(monkeypatch):
    monkeypatch.setattr(fh, "_registered", {})

    def handle(inputs, outputs):
        return 7

    assert register_flop_handle("segcore_test::op", handle) is handle
    register_flop_handle("segcore_test::op", handle)  # the same handle again: no-op
    assert fh.flop_handle_table()["segcore_test::op"] is handle
    with pytest.raises(ValueError, match="already has a FLOP handle"):
        register_flop_handle("segcore_test::op", lambda i, o: 1)
    with pytest.raises(ValueError, match="already has a FLOP handle"):
        register_flop_handle("aten::mm", handle)
    with pytest.raises(ValueError, match="namespace::name"):
        register_flop_handle("op", handle)
