"""Our Swin Transformer against an independent implementation: Hugging Face ``SwinBackbone``.

With the same weights (our state dict mapped onto HF's names by the converter's Swin rules,
``mask2former.convert.hf_names``) and the same real photograph,
the four stage outputs must agree within 1e-4.

Correspondence: HF ``SwinBackbone`` runs ``SwinModel`` with ``output_hidden_states_before_downsampling``
and applies ``hidden_states_norms.stage{i+1}`` to the output of stage i before its patch merging;
that is exactly our ``norm{i}`` applied to the output of ``layers[i]`` (``res{i+2}``). HF's final
``swin.layernorm`` is not part of the backbone output (it only feeds ``pooler_output``).

Padding: both pad the image at the right / bottom to the patch size, pad the normalized tokens
at the right / bottom to the window size inside every block, and pad odd sizes before patch
merging, so they agree at sizes that are not multiples of the window or of 32. Where they differ:
HF's ``SwinModel`` (without ``always_partition``) turns off the shift and shrinks the window when a
stage is not larger than the window (``SwinLayer.set_shift_and_window_size``; the change stays on
the module for later calls), while the original dense-prediction Swin keeps the shifted windows
(with the attention mask) at every stage: at 200x247 their last stages differ by about 1.7.
``SwinBackbone`` passes ``always_partition=True``, which keeps the original semantics; the
comparison is made on ``SwinBackbone`` at 200x247 (stage sizes 50x62, 25x31, 13x16, 7x8: all are
padded, and the last one is not larger than the window). A second size, 288x328, where every
stage is larger than the window, is compared too. Odd sizes down to a few pixels are tested in
``test_swin.py``.
"""
from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from mask2former.convert.hf_names import SWIN_HF_ONLY, SWIN_RULES, hf_only_fill, map_hf_name
from mask_former.modeling.backbone.swin import SwinTransformer
from tests.reference_utils import fill_name_seeded

transformers = pytest.importorskip("transformers")
skimage_data = pytest.importorskip("skimage.data")

EMBED_DIM = 32
DEPTHS = [2, 2, 2, 2]
NUM_HEADS = [1, 2, 4, 8]
WINDOW = 7

# The HF Swin -> our Swin name mapping (both the transformers 4.x names and the 5.x ones) is the
# Mask2Former converter's (mask2former.convert.hf_names), so the two cannot drift apart; its Swin
# rules are relative to the backbone, i.e. they are SwinBackbone's own state-dict names.


def _ours_for(hf_name: str):
    """(our name, row block of our fused qkv or None) for an HF SwinBackbone entry; (None, None) if unmapped."""
    mapped = map_hf_name(hf_name, SWIN_RULES)
    if mapped is None:
        return None, None
    name, part, _ = mapped
    return name, part


def _hf_state_dict_from(ours: dict, hf_state: dict) -> dict:
    out, used = {}, set()
    for hf_name, hf_tensor in hf_state.items():
        name, part = _ours_for(hf_name)
        if name is None:
            # HF entries with no counterpart in the backbone output (the pooled-output LayerNorm)
            assert hf_only_fill(hf_name, SWIN_HF_ONLY), f"no mapping for the HF entry {hf_name}"
            out[hf_name] = hf_tensor
            continue
        value = ours[name]
        if part is not None:
            value = value.chunk(3, dim=0)[part]
        assert value.shape == hf_tensor.shape, f"{hf_name} {tuple(hf_tensor.shape)} <- {name} {tuple(value.shape)}"
        out[hf_name] = value.clone()
        used.add(name)
    unused = [k for k, v in ours.items() if k not in used and v.is_floating_point()]
    assert not unused, f"our entries not mapped onto HF: {unused}"
    return out


def _models():
    ours = SwinTransformer(
        embed_dim=EMBED_DIM, depths=DEPTHS, num_heads=NUM_HEADS, window_size=WINDOW, drop_path_rate=0.0
    ).eval()
    fill_name_seeded(ours)
    config = transformers.SwinConfig(
        image_size=224,
        patch_size=4,
        embed_dim=EMBED_DIM,
        depths=DEPTHS,
        num_heads=NUM_HEADS,
        window_size=WINDOW,
        mlp_ratio=4.0,
        qkv_bias=True,
        hidden_act="gelu",
        layer_norm_eps=1e-5,
        use_absolute_embeddings=False,
        drop_path_rate=0.0,
        out_features=["stage1", "stage2", "stage3", "stage4"],
    )
    hf = transformers.SwinBackbone(config).eval()
    hf.load_state_dict(_hf_state_dict_from(ours.state_dict(), hf.state_dict()), strict=True)
    return ours, hf


def _astronaut(height: int, width: int) -> torch.Tensor:
    img = cv2.resize(skimage_data.astronaut(), (width, height), interpolation=cv2.INTER_LINEAR)
    mean = np.array([123.675, 116.28, 103.53], np.float32)
    std = np.array([58.395, 57.12, 57.375], np.float32)
    return torch.from_numpy((img.astype(np.float32) - mean) / std).permute(2, 0, 1)[None].contiguous()


@pytest.fixture(scope="module")
def models():
    return _models()


@pytest.mark.parametrize("height,width", [(200, 247), (288, 328)])
@torch.no_grad()
def test_stage_outputs_match_hf_swin_backbone(models, height, width):
    ours, hf = models
    x = _astronaut(height, width)
    mine = ours(x)
    theirs = hf(pixel_values=x).feature_maps
    size = (-(-height // 4), -(-width // 4))
    assert len(theirs) == 4
    for i in range(4):
        assert mine[i].shape == (1, EMBED_DIM * 2**i, *size), (i, mine[i].shape)
        assert theirs[i].shape == mine[i].shape, (i, theirs[i].shape, mine[i].shape)
        torch.testing.assert_close(mine[i], theirs[i], atol=1e-4, rtol=0, msg=f"stage {i} at {height}x{width}")
        size = ((size[0] + 1) // 2, (size[1] + 1) // 2)


@torch.no_grad()
def test_hf_parity_is_sensitive_to_the_shift(models):
    """The comparison can fail: undoing the shift in one of our blocks breaks the agreement."""
    ours, hf = models
    x = _astronaut(200, 247)
    theirs = hf(pixel_values=x).feature_maps
    block = ours.layers[0].blocks[1]
    shift = block.shift_size
    block.shift_size = 0
    try:
        mine = ours(x)
    finally:
        block.shift_size = shift
    assert (mine[0] - theirs[0]).abs().max() > 1e-2
