"""SeMask's Semantic Layer: the attention in class space, its zero-initialized gate, and windowed
versus global attention (with the padding tokens of partial windows taking part)."""
import pytest
import torch
import torch.nn.functional as F

from semask.modeling.backbone import SemanticAttention, SemanticLayer


def _set_gate(layer, gamma):
    with torch.no_grad():
        for block in layer.class_injection:
            block.gamma.fill_(gamma)
            torch.nn.init.normal_(block.mlp_res.weight, std=0.3)


def test_a_new_block_passes_the_features_through_and_scores_the_classes():
    torch.manual_seed(0)
    block = SemanticAttention(dim=8, num_classes=5).eval()
    x = torch.randn(3, 10, 8)
    scores, y = block(x)
    assert scores.shape == (3, 10, 5) and y.shape == x.shape
    assert torch.equal(y, x)  # gamma and mlp_res start at zero: a pretrained Swin is unchanged
    torch.testing.assert_close(scores, block.mlp_cls_q(x))
    assert [n for n, _ in block.named_parameters()][0] == "gamma"  # the original's state-dict order


def test_the_block_mixes_tokens_by_their_class_score_affinity():
    torch.manual_seed(0)
    block = SemanticAttention(dim=4, num_classes=3).eval()
    with torch.no_grad():
        block.gamma.fill_(0.5)
        block.mlp_res.weight.copy_(torch.eye(4))
        block.mlp_v.weight.copy_(torch.eye(4))
        block.mlp_v.bias.zero_()
    x = torch.randn(2, 6, 4)
    _, y = block(x)
    q, k = block.mlp_cls_q(x), block.mlp_cls_k(x)
    affinity = torch.softmax(q @ k.transpose(1, 2), dim=-1)  # no 1/sqrt(d) scaling
    torch.testing.assert_close(y, x + 0.5 * (affinity @ x))


def test_dropout_acts_in_training_only():
    torch.manual_seed(0)
    block = SemanticAttention(dim=4, num_classes=3, dropout=0.5)
    with torch.no_grad():
        block.gamma.fill_(1.0)
        torch.nn.init.normal_(block.mlp_res.weight)
    x = torch.randn(1, 32, 4)
    assert not torch.equal(block.train()(x)[1], block.train()(x)[1])
    assert torch.equal(block.eval()(x)[1], block.eval()(x)[1])


def test_windowed_attention_is_global_attention_within_each_window():
    torch.manual_seed(0)
    windowed = SemanticLayer(dim=8, num_classes=4, window_size=4).eval()
    _set_gate(windowed, 0.7)
    global_ = SemanticLayer(dim=8, num_classes=4, window_size=None).eval()
    global_.load_state_dict(windowed.state_dict())
    x = torch.randn(2, 8 * 12, 8)
    scores, y = windowed(x, 8, 12)
    assert scores.shape == (2, 96, 4) and y.shape == (2, 96, 8)
    grid = x.view(2, 8, 12, 8)
    for top, left in [(0, 0), (4, 8)]:
        window = grid[:, top:top + 4, left:left + 4].reshape(2, 16, 8)
        s_ref, y_ref = global_(window, 4, 4)
        torch.testing.assert_close(scores.view(2, 8, 12, 4)[:, top:top + 4, left:left + 4].reshape(2, 16, 4), s_ref)
        torch.testing.assert_close(y.view(2, 8, 12, 8)[:, top:top + 4, left:left + 4].reshape(2, 16, 8), y_ref)
    # over the whole map the two differ
    assert not torch.allclose(global_(x, 8, 12)[1], y, atol=1e-4)


def test_padding_tokens_of_a_partial_window_take_part_in_its_attention():
    """A 5x6 map with 4x4 windows: the last windows hold zero tokens (after the norm) that the real
    tokens attend to, as in the original; the output is cut back to 5x6."""
    torch.manual_seed(0)
    layer = SemanticLayer(dim=8, num_classes=3, window_size=4).eval()
    _set_gate(layer, 1.0)
    x = torch.randn(1, 5 * 6, 8)
    scores, y = layer(x, 5, 6)
    assert scores.shape == (1, 30, 3) and y.shape == (1, 30, 8)
    normed = F.pad(layer.norm1(x).view(1, 5, 6, 8), (0, 0, 0, 2, 0, 3))  # to 8x8
    window = normed[:, 4:8, 4:8].reshape(1, 16, 8)  # bottom-right window: 2 real tokens, 14 zeros
    block = layer.class_injection[0]
    s_ref, y_ref = block(window)
    torch.testing.assert_close(y.view(1, 5, 6, 8)[:, 4, 4:6], y_ref.view(1, 4, 4, 8)[:, 0, :2])
    torch.testing.assert_close(scores.view(1, 5, 6, 3)[:, 4, 4:6], s_ref.view(1, 4, 4, 3)[:, 0, :2])
    _, alone = block(window[:, :2])  # the two real tokens without the padding would differ
    assert not torch.allclose(alone, y_ref[:, :2], atol=1e-4)


def test_no_residual_from_the_input_and_the_last_blocks_scores():
    """The output is the normalized tokens plus the gated attention (not the stage input plus it);
    with N_S blocks the semantic map is the last block's."""
    torch.manual_seed(0)
    layer = SemanticLayer(dim=8, num_classes=3, num_blocks=2, window_size=None).eval()
    x = 5.0 + 3.0 * torch.randn(1, 12, 8)
    scores, y = layer(x, 3, 4)
    torch.testing.assert_close(y, layer.norm1(x))  # gates at zero
    _set_gate(layer, 0.5)
    scores, y = layer(x, 3, 4)
    first_scores, first = layer.class_injection[0](layer.norm1(x))
    last_scores, last = layer.class_injection[1](first)
    torch.testing.assert_close(scores, last_scores)
    torch.testing.assert_close(y, last)
    assert not torch.allclose(scores, first_scores)


def test_invalid_settings_and_inputs_are_errors():
    with pytest.raises(ValueError, match="NUM_SEM_BLOCKS"):
        SemanticLayer(dim=8, num_classes=3, num_blocks=0)
    with pytest.raises(ValueError, match="SEM_WINDOW_SIZE"):
        SemanticLayer(dim=8, num_classes=3, window_size=0)
    with pytest.raises(ValueError, match="num_classes"):
        SemanticAttention(dim=8, num_classes=0)
    with pytest.raises(ValueError, match="12 tokens for a 4x4 map"):
        SemanticLayer(dim=8, num_classes=3)(torch.zeros(1, 12, 8), 4, 4)
