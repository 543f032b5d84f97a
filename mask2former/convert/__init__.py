"""Mask2Former weights and configs between Hugging Face transformers and this project, both ways
(``tools/convert-hf-mask2former-to-d2.py`` is the command line).

- :mod:`.hf_names`: the name rules (:class:`Rule`) of the backbones and of the heads;
- :mod:`.hf_backbones`: one adapter per supported backbone (Swin, ResNet): rules, config keys, strides;
- :mod:`.hf_config`: HF's ``Mask2FormerConfig`` as our config keys and back, HF's ``MaskFormerConfig``
  and image processors of our configs;
- :mod:`.hf`: the state dicts both ways;
- :mod:`.hf_checkpoint`: reading a folder that ``save_pretrained`` wrote;
- :mod:`.config_writer`: the written YAML config (``_BASE_`` + overrides);
- :mod:`.hf_files`: whole conversions between files, both ways;
- :mod:`.errors`: :class:`UnsupportedModelError`.

Where the two implementations differ in layout (Hugging Face name -> ours):

* Swin: ``attention.{q,k,v}_proj`` (``attention.self.{query,key,value}`` in files written by
  ``save_pretrained`` and by transformers 4.x) are the three row blocks of our fused
  ``attn.qkv``; ``hidden_states_norms.stage{i}`` is our ``norm{i-1}``; the relative position
  tables are the same tensors; our ``relative_position_index`` buffer is computed from the table
  size; HF's ``swin.layernorm`` only feeds SwinModel's pooled output, which Mask2Former does not
  use: it is dropped (and written as the identity LayerNorm on the way back).
* ResNet: ``embedder.embedder`` is our ``stem.conv1``; ``stages.{s}.layers.{b}.layer.{l}`` is
  ``res{s+2}.{b}.conv{l+1}`` and ``shortcut`` ``shortcut``; ``convolution``/``normalization``
  are the conv and its ``norm``; BatchNorm's ``num_batches_tracked`` has no counterpart in our
  FrozenBatchNorm2d (dropped; written as 0).
* Pixel decoder: ``input_projections`` = ``input_proj``; ``level_embed`` =
  ``transformer.level_embed``; encoder ``self_attn_layer_norm``/``fc1``/``fc2``/
  ``final_layer_norm`` = ``norm1``/``linear1``/``linear2``/``norm2``; ``mask_projection`` =
  ``mask_features``; ``adapter_1.{0,1}``/``layer_1.{0,1}`` (nn.Sequential of conv + GroupNorm) =
  ``adapter_1``/``layer_1`` with ``.norm``.
* Transformer decoder: self-attention ``{q,k,v}_proj`` = row blocks of our
  ``nn.MultiheadAttention`` ``in_proj_weight``/``in_proj_bias`` (both scale q by head_dim^-0.5);
  ``cross_attn`` is an ``nn.MultiheadAttention`` on both sides; ``{self_attn,cross_attn}_layer_norm``
  = the ``norm`` of our ``transformer_{self,cross}_attention_layers``; ``fc1``/``fc2``/
  ``final_layer_norm`` = ``transformer_ffn_layers.{linear1,linear2,norm}``; ``layernorm`` =
  ``decoder_norm``; ``queries_features`` = ``query_feat`` (content), ``queries_embedder`` =
  ``query_embed`` (positions); ``mask_predictor.mask_embedder.{i}.0`` = ``mask_embed.layers.{i}``;
  ``class_predictor`` = ``class_embed``; ``criterion.empty_weight`` is the same buffer.

Numeric conventions, checked to agree: both normalize with the ImageNet mean / std (HF's image
processor: x / 255 then (x - 0.485) / 0.229 ..., ours (x - 123.675) / 58.395 ...), in RGB order;
both use normalized sine position encodings (eps 1e-6, scale 2 pi) without padding masks;
boolean attention masks are True where attention is blocked, a query whose mask is empty
attends everywhere, and the per-head copies are laid out image-major in both. Neither model
masks padding. Sizes: ours pads the batch to a multiple of 32, while HF's image processor
stretches its resized image to a multiple of 32 (and does nothing with ``do_resize=False``), so
the outputs agree for images whose sides are multiples of 32.

HF -> ours refuses any Hugging Face entry it cannot map (the error names it), and any config
feature our model cannot reproduce (e.g. absolute position embeddings in Swin, another decoder
activation); it checks every converted name and shape against our model built from the written
config. Ours -> HF needs transformers; it builds the Hugging Face model from the translated
config, fills every one of its entries from our checkpoint (refusing shape mismatches and our
entries left over) and writes it with ``save_pretrained`` plus a ``preprocessor_config.json``
with our normalization.
"""
from .errors import UnsupportedModelError
from .hf import ConversionResult, convert_d2_to_hf, convert_hf_to_d2, flip_input_channels
from .hf_backbones import BACKBONES, BACKBONES_BY_OUR_NAME, backbone_for_hf_config
from .hf_checkpoint import load_hf_checkpoint
from .hf_config import (
    backbone_for_cfg,
    hf_config_from_cfg,
    hf_config_to_overrides,
    hf_image_processor,
    hf_maskformer_config_from_cfg,
)
from .hf_files import (
    DEFAULT_BASE_CONFIGS,
    D2ToHFResult,
    HFToD2Result,
    convert_d2_to_hf_folder,
    convert_hf_folder_to_d2,
)
from .hf_names import HEAD_RULES, RESNET_HF_ONLY, RESNET_RULES, SWIN_HF_ONLY, SWIN_RULES, Rule, hf_only_fill, map_hf_name

__all__ = [
    "BACKBONES", "BACKBONES_BY_OUR_NAME", "DEFAULT_BASE_CONFIGS", "HEAD_RULES", "RESNET_HF_ONLY", "RESNET_RULES",
    "SWIN_HF_ONLY", "SWIN_RULES", "ConversionResult", "D2ToHFResult", "HFToD2Result", "Rule",
    "UnsupportedModelError", "backbone_for_cfg", "backbone_for_hf_config", "convert_d2_to_hf",
    "convert_d2_to_hf_folder", "convert_hf_folder_to_d2", "convert_hf_to_d2", "flip_input_channels",
    "hf_config_from_cfg", "hf_config_to_overrides", "hf_image_processor", "hf_maskformer_config_from_cfg",
    "hf_only_fill", "load_hf_checkpoint", "map_hf_name",
]
