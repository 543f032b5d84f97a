"""MultiScaleMaskedTransformerDecoder (Mask2Former Sec. 3.2): construction from keyword arguments and
from a config, the original's state-dict names, the output structure, masked attention (Sec. 3.2.1),
the round-robin feature levels (Sec. 3.2.2) and the errors for bad input."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mask2former.config import add_maskformer2_config
from mask2former.modeling.transformer_decoder import (CrossAttentionLayer, FFNLayer, MultiScaleMaskedTransformerDecoder,
                                                      masked_attention_mask)
from mask_former.modeling import TRANSFORMER_DECODER_REGISTRY, build_transformer_decoder
from segcore.layers import set_fused_attention
from segcore.config import get_cfg
from tests.reference_utils import reference_keys

HIDDEN, HEADS, QUERIES, CLASSES, MASK_DIM = 16, 2, 4, 3, 2
LEVEL_SIZES = [(4, 4), (8, 8), (16, 16)]  # coarsest first, as the pixel decoder returns them
MASK_SIZE = (32, 32)  # the mask features (stride 4); level 0 is 8x coarser
BLOCK = MASK_SIZE[0] // LEVEL_SIZES[0][0]


def _decoder(**kw) -> MultiScaleMaskedTransformerDecoder:
    args = dict(in_channels=HIDDEN, mask_classification=True, num_classes=CLASSES, hidden_dim=HIDDEN,
                num_queries=QUERIES, nheads=HEADS, dim_feedforward=32, dec_layers=4, pre_norm=False,
                mask_dim=MASK_DIM, enforce_input_project=False)
    args.update(kw)
    torch.manual_seed(0)
    return MultiScaleMaskedTransformerDecoder(**args).eval()


def _inputs(batch: int = 2, in_channels: int = HIDDEN, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = [torch.randn(batch, in_channels, h, w, generator=g) for h, w in LEVEL_SIZES]
    return x, torch.randn(batch, MASK_DIM, *MASK_SIZE, generator=g)


def _tiny_cfg(**overrides):
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    values = {"MODEL.MASK_FORMER.TRANSFORMER_DECODER_NAME": "MultiScaleMaskedTransformerDecoder",
              "MODEL.SEM_SEG_HEAD.NUM_CLASSES": CLASSES, "MODEL.MASK_FORMER.HIDDEN_DIM": HIDDEN,
              "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES": QUERIES, "MODEL.MASK_FORMER.NHEADS": HEADS,
              "MODEL.MASK_FORMER.DIM_FEEDFORWARD": 32, "MODEL.MASK_FORMER.DEC_LAYERS": 4,
              "MODEL.MASK_FORMER.PRE_NORM": True, "MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ": False,
              "MODEL.SEM_SEG_HEAD.MASK_DIM": MASK_DIM}
    values.update(overrides)
    cfg.merge_from_list([item for kv in values.items() for item in kv])
    return cfg


PREDICTOR = "sem_seg_head.predictor."


@pytest.mark.parametrize("reference,num_classes", [("m2f_ade20k_sem_R50", 150), ("m2f_coco_pan_R50", 133)])
def test_state_dict_names_and_shapes_equal_the_original(reference, num_classes):
    """The original's predictor (hidden 256, 100 queries, DIM_FEEDFORWARD 2048, DEC_LAYERS 10 = 9 layers,
    no input_proj since the pixel decoder is 256 wide): same names, shapes and order."""
    expected = [(k[len(PREDICTOR):], shape) for k, shape in reference_keys(reference) if k.startswith(PREDICTOR)]
    decoder = MultiScaleMaskedTransformerDecoder(256, True, num_classes=num_classes, hidden_dim=256, num_queries=100,
                                                 nheads=8, dim_feedforward=2048, dec_layers=9, pre_norm=False,
                                                 mask_dim=256, enforce_input_project=False)
    state = decoder.state_dict()
    assert len(expected) == 175
    assert [(k, tuple(v.shape)) for k, v in state.items()] == expected
    assert all(v.dtype == torch.float32 for v in state.values())


def test_registered_with_the_criterion_and_panoptic_convention():
    cls = TRANSFORMER_DECODER_REGISTRY.get("MultiScaleMaskedTransformerDecoder")
    assert cls is MultiScaleMaskedTransformerDecoder
    assert cls.criterion_name == "PointSampledSetCriterion"
    assert cls.panoptic_mask_must_be_confident is True


def test_build_from_config_subtracts_the_query_prediction_from_dec_layers():
    decoder = build_transformer_decoder(_tiny_cfg(**{"MODEL.MASK_FORMER.ENFORCE_INPUT_PROJ": True}), 8, True)
    assert isinstance(decoder, MultiScaleMaskedTransformerDecoder)
    assert decoder.num_layers == 3 and decoder.num_heads == HEADS
    assert len(decoder.transformer_cross_attention_layers) == len(decoder.transformer_ffn_layers) == 3
    assert all(layer.normalize_before for layer in decoder.transformer_self_attention_layers)
    assert decoder.query_feat.weight.shape == (QUERIES, HIDDEN)
    assert decoder.class_embed.out_features == CLASSES + 1
    assert decoder.mask_embed.layers[-1].out_features == MASK_DIM
    assert [tuple(p.weight.shape) for p in decoder.input_proj] == [(HIDDEN, 8, 1, 1)] * 3
    decoder.eval()
    x, mask_features = _inputs(in_channels=8)
    out = decoder(x, mask_features)
    assert len(out["aux_outputs"]) == 4 - 1


def test_input_projection_only_when_widths_differ_or_enforced():
    assert not any(k.startswith("input_proj") for k in _decoder().state_dict())
    for decoder in (_decoder(in_channels=8), _decoder(enforce_input_project=True)):
        for proj in decoder.input_proj:
            assert proj.weight.shape == (HIDDEN, decoder.in_channels, 1, 1)
            assert torch.count_nonzero(proj.bias) == 0  # c2_xavier_fill: zero bias


def test_outputs_and_aux_predictions_in_order():
    decoder = _decoder(dec_layers=4)
    x, mask_features = _inputs()
    ffn_outputs = []
    for layer in decoder.transformer_ffn_layers:
        layer.register_forward_hook(lambda m, args, out: ffn_outputs.append(out))
    with torch.no_grad():
        out = decoder(x, mask_features)

        def heads(queries):  # queries (B, N, C)
            normed = decoder.decoder_norm(queries)
            masks = torch.einsum("bqc,bchw->bqhw", decoder.mask_embed(normed), mask_features)
            return decoder.class_embed(normed), masks

        # predictions before the first layer (learnable queries), then after layers 1..L
        queries = [decoder.query_feat.weight.expand(2, -1, -1)] + [o.transpose(0, 1) for o in ffn_outputs]
        expected = [heads(q) for q in queries]
    assert out["pred_logits"].shape == (2, QUERIES, CLASSES + 1)
    assert out["pred_masks"].shape == (2, QUERIES, *MASK_SIZE)
    assert len(out["aux_outputs"]) == 4
    got = [(a["pred_logits"], a["pred_masks"]) for a in out["aux_outputs"]] + [(out["pred_logits"], out["pred_masks"])]
    assert len(got) == len(expected) == 5
    for (logits, masks), (exp_logits, exp_masks) in zip(got, expected):
        torch.testing.assert_close(logits, exp_logits)
        torch.testing.assert_close(masks, exp_masks)
    # the layers do change the predictions (the comparison above is not trivially of equal things)
    assert not torch.allclose(got[0][0], got[-1][0])


def test_zero_layers_gives_the_query_prediction_only():
    decoder = _decoder(dec_layers=0)
    x, mask_features = _inputs()
    with torch.no_grad():
        out = decoder(x, mask_features)
        normed = decoder.decoder_norm(decoder.query_feat.weight)
    assert out["aux_outputs"] == []
    torch.testing.assert_close(out["pred_logits"], decoder.class_embed(normed).expand(2, -1, -1))


# ---------------------------------------------------------------------------------------------
# masked attention


def test_attention_mask_threshold_empty_rows_and_head_layout():
    logits = torch.tensor([[[[1.0, -1.0], [0.0, -2.0]], [[-1.0, -1.0], [-3.0, -0.5]]],
                           [[[-1.0, 2.0], [-1.0, -1.0]], [[4.0, 4.0], [4.0, 4.0]]]])  # (B=2, Q=2, 2, 2)
    mask = masked_attention_mask(logits, (2, 2), num_heads=3)
    assert mask.dtype == torch.bool and mask.shape == (6, 2, 4)
    expected = torch.tensor([[[False, True, False, True],    # sigmoid(0) = 0.5 is foreground
                              [False, False, False, False]],  # empty mask: attend everywhere
                             [[True, False, True, True],
                              [False, False, False, False]]])
    for b in range(2):
        for h in range(3):
            assert torch.equal(mask[b * 3 + h], expected[b])  # entry b * heads + h, nn.MultiheadAttention's layout
    # bilinear resizing (align_corners=False): a 2x2 block constant map halves exactly
    coarse = masked_attention_mask(logits.repeat_interleave(2, 2).repeat_interleave(2, 3), (2, 2), num_heads=1)
    assert torch.equal(coarse, masked_attention_mask(logits, (2, 2), num_heads=1))
    with pytest.raises(ValueError, match="mask_logits"):
        masked_attention_mask(logits[0], (2, 2), 1)


# Queries of the designed first prediction (mask embeddings against mask features [s, 1], s = +-1):
# 0 -> the region R, 1 -> empty everywhere, 2 -> everywhere, 3 -> outside R.
DESIGNED_EMBEDDINGS = torch.tensor([[1.0, 0.0], [0.0, -1.0], [0.0, 1.0], [-1.0, 0.0]])


def _regions():
    """Per image, a bool (4, 4) region at level 0's resolution (different in the two images)."""
    r0 = torch.zeros(4, 4, dtype=torch.bool)
    r0[:2, 1:3] = True
    r1 = torch.zeros(4, 4, dtype=torch.bool)
    r1[2:, :] = True
    r1[0, 0] = True
    return torch.stack([r0, r1])


def _run_first_layer(decoder, x, mask_features):
    """Cross-attention outputs (N, B, C) and attention weights (B, N, HW) of layer 0, the first prediction's
    mask embeddings replaced by DESIGNED_EMBEDDINGS."""
    captured = {}

    def design(module, args, out):
        if "designed" in captured:
            return None
        captured["designed"] = True
        return DESIGNED_EMBEDDINGS.expand(out.shape[0], -1, -1).to(out.dtype)

    def keep_output(module, args, out):
        captured["out"] = out

    def keep_weights(module, args, out):
        captured["weights"] = out[1]  # (B, N, HW), averaged over heads

    layer = decoder.transformer_cross_attention_layers[0]
    hooks = [decoder.mask_embed.register_forward_hook(design), layer.register_forward_hook(keep_output),
             layer.multihead_attn.register_forward_hook(keep_weights)]
    try:
        # the module's own forward (not the fused kernel), so that its hook sees the weights
        set_fused_attention(decoder, False)
        with torch.no_grad():
            decoder(x, mask_features)
    finally:
        for h in hooks:
            h.remove()
    return captured["out"], captured["weights"]


def test_masked_cross_attention_reads_only_the_predicted_region():
    """Layer 0 (attending level 0, 4x4) after a designed first prediction; one batch holds, for both images
    (different regions), the unperturbed input and the input perturbed at each of the 16 positions."""
    decoder = _decoder(dec_layers=1)
    regions = _regions()
    x, _ = _inputs()
    samples = [(b, None) for b in range(2)] + [(b, pos) for b in range(2) for pos in range(16)]
    index = torch.tensor([b for b, _ in samples])
    batch_x = [t[index].clone() for t in x]
    for i, (_, pos) in enumerate(samples):
        if pos is not None:
            batch_x[0][i, :, pos // 4, pos % 4] += 3.0
    s = regions[index].float().repeat_interleave(BLOCK, 1).repeat_interleave(BLOCK, 2) * 2 - 1  # +-1
    out, weights = _run_first_layer(decoder, batch_x, torch.stack([s, torch.ones_like(s)], dim=1))

    flat = regions.flatten(1)  # (2, 16)
    for b in range(2):
        assert torch.all(weights[b, 0][~flat[b]] == 0) and torch.all(weights[b, 0][flat[b]] > 0)
        assert torch.all(weights[b, 3][flat[b]] == 0) and torch.all(weights[b, 3][~flat[b]] > 0)
        assert torch.all(weights[b, 1] > 0) and torch.all(weights[b, 2] > 0)  # empty and full masks

    for i, (b, pos) in enumerate(samples[2:], start=2):
        changed = (out[:, i] - out[:, b]).abs().amax(dim=-1) > 1e-6  # (N,) against the unperturbed image b
        inside = bool(flat[b, pos])
        assert changed[0].item() == inside, (b, pos)  # query of R: only positions in R matter
        assert changed[3].item() == (not inside), (b, pos)  # query of the complement
        assert changed[1].item() and changed[2].item(), (b, pos)  # empty mask attends everywhere; full mask


# ---------------------------------------------------------------------------------------------
# round-robin levels


def test_layers_cycle_over_the_levels_coarsest_first():
    decoder = _decoder(dec_layers=4)
    x, mask_features = _inputs()
    keys, outputs = [], []
    for layer in decoder.transformer_cross_attention_layers:
        layer.multihead_attn.register_forward_hook(lambda m, a, out: keys.append(out[1].shape[-1]))
        layer.register_forward_hook(lambda m, a, out: outputs.append(out))
    set_fused_attention(decoder, False)
    with torch.no_grad():
        decoder(x, mask_features)
        assert keys == [h * w for h, w in LEVEL_SIZES] + [LEVEL_SIZES[0][0] * LEVEL_SIZES[0][1]]
        base = list(outputs)
        for level in range(3):
            perturbed = [t.clone() for t in x]
            perturbed[level] += 1.0
            outputs.clear()
            decoder(perturbed, mask_features)
            changed = [not torch.allclose(o, b, atol=1e-6, rtol=0) for o, b in zip(outputs, base)]
            # layer i reads level i: layers before it do not see the perturbation
            assert changed[:level + 1] == [False] * level + [True], level


# ---------------------------------------------------------------------------------------------
# the sub-layers: residual + LayerNorm after (default) or before the branch


def test_ffn_post_and_pre_norm():
    x = torch.randn(5, 2, HIDDEN, generator=torch.Generator().manual_seed(0))
    for pre in (False, True):
        torch.manual_seed(0)
        layer = FFNLayer(HIDDEN, 32, normalize_before=pre)
        with torch.no_grad():
            nn.init.normal_(layer.norm.weight)
            if pre:
                expected = x + layer.linear2(F.relu(layer.linear1(layer.norm(x))))
            else:
                expected = layer.norm(x + layer.linear2(F.relu(layer.linear1(x))))
            torch.testing.assert_close(layer(x), expected)


def test_cross_attention_adds_positions_to_keys_not_values():
    g = torch.Generator().manual_seed(0)
    tgt, query_pos = torch.randn(3, 2, HIDDEN, generator=g), torch.randn(3, 2, HIDDEN, generator=g)
    memory, pos = torch.randn(7, 2, HIDDEN, generator=g), torch.randn(7, 2, HIDDEN, generator=g)
    for pre in (False, True):
        torch.manual_seed(0)
        layer = CrossAttentionLayer(HIDDEN, HEADS, normalize_before=pre)
        with torch.no_grad():
            q_in = layer.norm(tgt) if pre else tgt
            attended = layer.multihead_attn(q_in + query_pos, memory + pos, memory)[0]
            expected = tgt + attended if pre else layer.norm(tgt + attended)
            torch.testing.assert_close(layer(tgt, memory, pos=pos, query_pos=query_pos), expected)


# ---------------------------------------------------------------------------------------------
# checkpoints and errors


def test_loads_the_old_static_query_name():
    source, target = _decoder(), _decoder(dec_layers=4)
    with torch.no_grad():
        source.query_feat.weight.add_(1.0)
    old = {("static_query.weight" if k == "query_feat.weight" else k): v for k, v in source.state_dict().items()}
    target.load_state_dict(old)  # a plain dict has no version: the original's version-1 rename applies
    assert torch.equal(target.query_feat.weight, source.query_feat.weight)
    current = source.state_dict()  # version 2: a static_query key is unexpected
    current["static_query.weight"] = current.pop("query_feat.weight")
    with pytest.raises(RuntimeError, match="static_query"):
        target.load_state_dict(current)


@pytest.mark.parametrize("levels", [2, 4])
def test_wrong_number_of_levels_is_an_error(levels):
    decoder = _decoder()
    x, mask_features = _inputs()
    x = (x + x)[:levels]
    with pytest.raises(ValueError, match="3 multi-scale features"):
        decoder(x, mask_features)


def test_wrong_shapes_are_errors():
    decoder = _decoder()
    x, mask_features = _inputs()
    with pytest.raises(ValueError, match=r"x\[1\]"):
        decoder([x[0], x[1][:, :5], x[2]], mask_features)
    with pytest.raises(ValueError, match="mask_features"):
        decoder(x, mask_features[:, :1])


def test_dec_layers_below_one_is_an_error():
    with pytest.raises(ValueError, match="DEC_LAYERS"):
        build_transformer_decoder(_tiny_cfg(**{"MODEL.MASK_FORMER.DEC_LAYERS": 0}), HIDDEN, True)
    with pytest.raises(ValueError, match="dec_layers"):
        _decoder(dec_layers=-1)


def test_masks_only_is_not_supported():
    with pytest.raises(ValueError, match="mask_classification"):
        _decoder(mask_classification=False)
    with pytest.raises(ValueError, match="mask_classification"):
        build_transformer_decoder(_tiny_cfg(), HIDDEN, mask_classification=False)


@pytest.mark.parametrize("bad", [{"hidden_dim": 15, "nheads": 1}, {"hidden_dim": 16, "nheads": 3}, {"num_queries": 0}])
def test_inconsistent_sizes_are_errors(bad):
    with pytest.raises(ValueError, match="hidden_dim|num_queries"):
        _decoder(**bad)
