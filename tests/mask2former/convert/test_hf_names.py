"""mask2former.convert.hf_names: the name rules, one Hugging Face name of each kind at a time."""
import pytest
import torch

from mask2former.convert.hf_backbones import BACKBONES
from mask2former.convert.hf_names import (
    HEAD_RULES,
    RESNET_RULES,
    SWIN_HF_ONLY,
    SWIN_RULES,
    Rule,
    hf_only_fill,
    map_hf_name,
    prefixed_rules,
)


@pytest.mark.parametrize("hf,ours", [
    # transformers 5's live names and save_pretrained's (transformers 4) map alike
    ("swin.encoder.layers.1.blocks.0.attention.q_proj.weight", ("layers.1.blocks.0.attn.qkv.weight", 0, 3)),
    ("encoder.layers.1.blocks.0.attention.self.value.bias", ("layers.1.blocks.0.attn.qkv.bias", 2, 3)),
    ("encoder.layers.0.blocks.1.output.dense.weight", ("layers.0.blocks.1.mlp.fc2.weight", None, 1)),
    ("encoder.layers.0.blocks.1.attention.output.dense.weight", ("layers.0.blocks.1.attn.proj.weight", None, 1)),
    ("hidden_states_norms.stage3.bias", ("norm2.bias", None, 1)),
    ("embeddings.patch_embeddings.projection.weight", ("patch_embed.proj.weight", None, 1)),
])
def test_swin_names(hf, ours):
    assert map_hf_name(hf, SWIN_RULES) == ours


@pytest.mark.parametrize("hf,ours", [
    ("embedder.embedder.convolution.weight", "stem.conv1.weight"),
    ("encoder.stages.0.layers.0.shortcut.normalization.running_var", "res2.0.shortcut.norm.running_var"),
    ("encoder.stages.2.layers.3.layer.1.convolution.weight", "res4.3.conv2.weight"),
    ("encoder.stages.3.layers.1.layer.2.normalization.bias", "res5.1.conv3.norm.bias"),
])
def test_resnet_names(hf, ours):
    assert map_hf_name(hf, RESNET_RULES) == (ours, None, 1)


@pytest.mark.parametrize("hf,ours", [
    ("model.transformer_module.decoder.layers.2.self_attn.k_proj.bias",
     ("sem_seg_head.predictor.transformer_self_attention_layers.2.self_attn.in_proj_bias", 1, 3)),
    ("model.transformer_module.decoder.layers.0.cross_attn.out_proj.weight",
     ("sem_seg_head.predictor.transformer_cross_attention_layers.0.multihead_attn.out_proj.weight", None, 1)),
    ("model.transformer_module.decoder.mask_predictor.mask_embedder.2.0.weight",
     ("sem_seg_head.predictor.mask_embed.layers.2.weight", None, 1)),
    ("model.pixel_level_module.decoder.adapter_1.1.bias", ("sem_seg_head.pixel_decoder.adapter_1.norm.bias", None, 1)),
    ("model.pixel_level_module.decoder.encoder.layers.1.fc2.weight",
     ("sem_seg_head.pixel_decoder.transformer.encoder.layers.1.linear2.weight", None, 1)),
    ("class_predictor.bias", ("sem_seg_head.predictor.class_embed.bias", None, 1)),
])
def test_head_names(hf, ours):
    assert map_hf_name(hf, HEAD_RULES) == ours


def test_unknown_names_map_to_nothing():
    assert map_hf_name("model.transformer_module.decoder.layers.0.gate.weight", HEAD_RULES) is None
    assert map_hf_name("xencoder.layers.0.blocks.0.layernorm_before.weight", SWIN_RULES) is None  # whole names only


def test_prefixed_rules_keep_templates_and_functions():
    rules = prefixed_rules("outer.", "in.", [Rule(r"a\.(\d+)", r"b.\1"), Rule(r"c\.(\d+)", lambda m: f"d{m.group(1)}")])
    assert map_hf_name("outer.a.3", rules) == ("in.b.3", None, 1)
    assert map_hf_name("outer.c.4", rules) == ("in.d4", None, 1)
    assert map_hf_name("a.3", rules) is None
    swin = BACKBONES["swin"].rules()
    assert map_hf_name("model.pixel_level_module.encoder.hidden_states_norms.stage1.weight", swin) == (
        "backbone.norm0.weight", None, 1)


def test_entries_only_hugging_face_has():
    fill = hf_only_fill("swin.layernorm.weight", SWIN_HF_ONLY)
    assert torch.equal(fill(torch.empty(3)), torch.ones(3))
    assert hf_only_fill("swin.layernorm.bias", SWIN_HF_ONLY)(torch.empty(2)).eq(0).all()
    assert hf_only_fill("swin.embeddings.norm.weight", SWIN_HF_ONLY) is None
    resnet = BACKBONES["resnet"].hf_only()
    assert hf_only_fill("model.pixel_level_module.encoder.embedder.embedder.normalization.num_batches_tracked",
                        resnet) is not None
