"""MSDeformAttnPixelDecoder: the original state-dict names and shapes, the original initialization,
construction from keywords and from a config, output shapes and order, float32 under autocast,
and argument checks."""
import pytest
import torch

from mask_former.modeling import build_pixel_decoder
from mask2former.config import add_maskformer2_config
from mask2former.modeling.pixel_decoder import MSDeformAttnPixelDecoder, MSDeformAttnTransformerEncoder
from mask2former.ops import MSDeformAttn
from segcore.config import get_cfg
from segcore.layers import ShapeSpec
from segcore.modeling import SEM_SEG_HEADS_REGISTRY
from tests.reference_utils import reference_keys


def feature_shapes(channels):
    """res2..res5 at strides 4..32 with the given channels."""
    return {f"res{i}": ShapeSpec(channels=c, stride=2 ** i) for i, c in zip(range(2, 6), channels)}


def original_pixel_decoder_keys(name):
    """[(key without the prefix, shape)] of the ``sem_seg_head.pixel_decoder.`` entries of the
    original model ``name`` (``tests/fixtures/<name>_keys.txt``), in state-dict order."""
    prefix = "sem_seg_head.pixel_decoder."
    return [(k[len(prefix):], shape) for k, shape in reference_keys(name) if k.startswith(prefix)]


def original_size(channels):
    """The original configs' pixel decoder for a backbone with res2..res5 ``channels``."""
    return MSDeformAttnPixelDecoder(feature_shapes(channels), transformer_dropout=0.0, transformer_nheads=8,
                                    transformer_dim_feedforward=1024, transformer_enc_layers=6, conv_dim=256,
                                    mask_dim=256, norm="GN", transformer_in_features=["res3", "res4", "res5"],
                                    common_stride=4)


def tiny(**kw):
    torch.manual_seed(0)
    args = dict(transformer_dropout=0.0, transformer_nheads=2, transformer_dim_feedforward=48,
                transformer_enc_layers=2, conv_dim=32, mask_dim=16, norm="GN",
                transformer_in_features=["res3", "res4", "res5"], common_stride=4, transformer_n_points=2)
    args.update(kw)
    shapes = args.pop("input_shape", feature_shapes([8, 16, 24, 40]))
    return MSDeformAttnPixelDecoder(shapes, **args)


def features(shapes, height, width, batch=2, seed=0, dtype=torch.float32):
    """Backbone-like features: a stride-s map of an H x W image is ceil(H / s) x ceil(W / s)."""
    g = torch.Generator().manual_seed(seed)
    return {k: torch.randn(batch, v.channels, -(-height // v.stride), -(-width // v.stride), generator=g).to(dtype)
            for k, v in shapes.items()}


@pytest.mark.parametrize("name,channels", [("m2f_ade20k_sem_R50", [256, 512, 1024, 2048]),   # R50
                                           ("m2f_coco_pan_SwinT", [96, 192, 384, 768])])     # Swin-T
def test_state_dict_equals_original(name, channels):
    decoder = original_size(channels)
    ours = [(k, tuple(v.shape)) for k, v in decoder.state_dict().items()]
    expected = original_pixel_decoder_keys(name)
    assert len(expected) == 117
    assert ours == expected
    assert all(v.dtype == torch.float32 for v in decoder.state_dict().values())


def test_original_initialization():
    decoder = tiny(transformer_enc_layers=3)
    for proj in decoder.input_proj:
        assert torch.equal(proj[0].bias, torch.zeros_like(proj[0].bias))
        assert isinstance(proj[1], torch.nn.GroupNorm) and proj[1].num_groups == 32
    # the encoder's Xavier pass must not overwrite the deformable attention's own initialization
    attns = [m for m in decoder.modules() if isinstance(m, MSDeformAttn)]
    assert len(attns) == 3
    for attn in attns:
        assert torch.equal(attn.sampling_offsets.weight, torch.zeros_like(attn.sampling_offsets.weight))
        torch.testing.assert_close(attn.sampling_offsets.bias, attn.initial_offsets())
        assert torch.equal(attn.attention_weights.weight, torch.zeros_like(attn.attention_weights.weight))
    # feed-forward matrices are Xavier-uniform; the level embedding N(0, 1) (larger than Xavier's bound)
    linear1 = decoder.transformer.encoder.layers[0].linear1.weight
    assert linear1.abs().max() <= (6 / sum(linear1.shape)) ** 0.5
    level_embed = decoder.transformer.level_embed
    assert level_embed.shape == (3, 32) and 0.7 < level_embed.std() < 1.3
    # c2_xavier_fill: zero bias for the mask projection
    assert torch.equal(decoder.mask_features.bias, torch.zeros_like(decoder.mask_features.bias))


def test_outputs_for_a_size_not_divisible_by_32():
    decoder = tiny().eval()
    shapes = feature_shapes([8, 16, 24, 40])
    with torch.no_grad():
        out = decoder.forward_features(features(shapes, 100, 140))
    assert out.mask_features.shape == (2, 16, 25, 35)
    assert out.transformer_encoder_features.shape == (2, 32, 4, 5)
    # coarsest first: the encoder's 1/32, 1/16 and 1/8 maps
    assert [tuple(f.shape) for f in out.multi_scale_features] == [(2, 32, 4, 5), (2, 32, 7, 9), (2, 32, 13, 18)]
    assert torch.equal(out.multi_scale_features[0], out.transformer_encoder_features)


def test_multi_scale_features_are_the_encoder_levels():
    decoder = tiny().eval()
    feats = features(feature_shapes([8, 16, 24, 40]), 64, 96, batch=1)
    with torch.no_grad():
        out = decoder.forward_features(feats)
        srcs = [proj(feats[f]) for proj, f in zip(decoder.input_proj, ["res5", "res4", "res3"])]
        memory = decoder.transformer(srcs, [decoder.pe_layer(s) for s in srcs])
    sizes = [2 * 3, 4 * 6, 8 * 12]
    for level, (z, f) in enumerate(zip(memory.split(sizes, dim=1), out.multi_scale_features)):
        torch.testing.assert_close(f, z.transpose(1, 2).reshape(f.shape), msg=f"level {level}")


def test_fpn_step_upsamples_bilinearly():
    # unlike MaskFormer's FPN (nearest), the step below the encoder upsamples bilinearly
    decoder = tiny().eval()
    feats = features(feature_shapes([8, 16, 24, 40]), 100, 140)
    with torch.no_grad():
        out = decoder.forward_features(feats)
        lateral = decoder.adapter_1(feats["res2"])
        up = torch.nn.functional.interpolate(out.multi_scale_features[-1], size=lateral.shape[-2:], mode="bilinear",
                                             align_corners=False)
        expected = decoder.mask_features(decoder.layer_1(lateral + up))
    torch.testing.assert_close(out.mask_features, expected)


def test_encoder_reference_points_are_pixel_centres():
    points = MSDeformAttnTransformerEncoder.reference_points([(2, 3), (1, 2)], 2, torch.device("cpu"))
    assert points.shape == (2, 8, 2, 2) and points.dtype == torch.float32
    xy = [(1 / 6, 1 / 4), (3 / 6, 1 / 4), (5 / 6, 1 / 4), (1 / 6, 3 / 4), (3 / 6, 3 / 4), (5 / 6, 3 / 4),
          (1 / 4, 1 / 2), (3 / 4, 1 / 2)]  # (x, y), row-major, level after level
    expected = torch.tensor(xy)[None, :, None, :].expand(2, 8, 2, 2)
    torch.testing.assert_close(points, expected)


def test_batch_elements_are_independent():
    decoder = tiny().eval()
    feats = features(feature_shapes([8, 16, 24, 40]), 64, 64, batch=3, seed=4)
    with torch.no_grad():
        together = decoder.forward_features(feats).mask_features
        alone = decoder.forward_features({k: v[1:2] for k, v in feats.items()}).mask_features
    torch.testing.assert_close(together[1:2], alone, atol=1e-5, rtol=1e-5)


def test_float32_under_bfloat16_autocast():
    decoder = tiny().eval()
    feats = features(feature_shapes([8, 16, 24, 40]), 64, 96, dtype=torch.bfloat16)
    with torch.no_grad():
        reference = decoder.forward_features({k: v.float() for k, v in feats.items()})
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = decoder.forward_features(feats)
    for got, want in zip([out.mask_features, out.transformer_encoder_features, *out.multi_scale_features],
                         [reference.mask_features, reference.transformer_encoder_features,
                          *reference.multi_scale_features]):
        assert got.dtype == torch.float32
        assert torch.equal(got, want)  # computed exactly as without autocast


def test_gradients_reach_every_parameter():
    decoder = tiny(transformer_dropout=0.1).train()
    with torch.no_grad():
        # at initialization the offset and attention-weight matrices are zero, so the queries
        # (and with them the level embedding) do not influence the output yet: move away from it
        for p in decoder.parameters():
            p.add_(0.01 * torch.randn_like(p))
    out = decoder.forward_features(features(feature_shapes([8, 16, 24, 40]), 64, 64))
    (out.mask_features.square().mean() + sum(f.mean() for f in out.multi_scale_features)).backward()
    no_grad = [n for n, p in decoder.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert no_grad == []


def test_built_from_config():
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    head = cfg.MODEL.SEM_SEG_HEAD
    head.PIXEL_DECODER_NAME = "MSDeformAttnPixelDecoder"
    head.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    head.CONVS_DIM, head.MASK_DIM, head.NORM, head.COMMON_STRIDE = 64, 24, "GN", 4
    head.TRANSFORMER_ENC_LAYERS = 2
    head.DEFORMABLE_TRANSFORMER_ENCODER_DIM_FEEDFORWARD = 40
    head.DEFORMABLE_TRANSFORMER_ENCODER_N_POINTS = 3
    head.DEFORMABLE_TRANSFORMER_ENCODER_N_HEADS = 2
    head.DEFORMABLE_TRANSFORMER_ENCODER_IN_FEATURES = ["res4", "res5"]
    cfg.MODEL.MASK_FORMER.DROPOUT = 0.25
    cfg.MODEL.MASK_FORMER.NHEADS = 4  # not the encoder's: its heads have their own key
    shapes = dict(feature_shapes([8, 16, 24, 40]), res6=ShapeSpec(channels=8, stride=64))
    decoder = build_pixel_decoder(cfg, shapes)
    assert type(decoder) is MSDeformAttnPixelDecoder
    assert SEM_SEG_HEADS_REGISTRY.get("MSDeformAttnPixelDecoder") is MSDeformAttnPixelDecoder
    assert decoder.in_features == ["res2", "res3", "res4", "res5"]  # res6 is not in IN_FEATURES
    assert decoder.transformer_in_features == ["res4", "res5"]
    layers = decoder.transformer.encoder.layers
    assert len(layers) == 2 and layers[0].dropout1.p == 0.25
    attn = layers[0].self_attn
    assert (attn.n_heads, attn.n_levels, attn.n_points) == (2, 2, 3)
    assert layers[0].linear1.weight.shape == (40, 64)
    # stride 16 down to 4: two FPN levels, on res2 (adapter_1) and res3 (adapter_2)
    assert decoder.adapter_1.weight.shape == (64, 8, 1, 1) and decoder.adapter_2.weight.shape == (64, 16, 1, 1)
    with torch.no_grad():
        out = decoder.eval().forward_features(features(shapes, 64, 64, batch=1))
    assert out.mask_features.shape == (1, 24, 16, 16)
    assert [tuple(f.shape[-2:]) for f in out.multi_scale_features] == [(2, 2), (4, 4), (8, 8)]


def test_default_config_gives_the_original_encoder():
    cfg = get_cfg()
    add_maskformer2_config(cfg)
    cfg.MODEL.SEM_SEG_HEAD.IN_FEATURES = ["res2", "res3", "res4", "res5"]
    cfg.MODEL.SEM_SEG_HEAD.CONVS_DIM = 32
    cfg.MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS = 1
    args = MSDeformAttnPixelDecoder.from_config(cfg, feature_shapes([8, 16, 24, 40]))
    encoder = (args["transformer_dim_feedforward"], args["transformer_n_points"], args["transformer_nheads"])
    assert encoder == (1024, 4, 8)
    assert args["transformer_in_features"] == ["res3", "res4", "res5"] and args["common_stride"] == 4


def test_one_encoder_level():
    shapes = {k: v for k, v in feature_shapes([8, 16, 24, 40]).items() if k != "res2"}
    decoder = tiny(input_shape=shapes, transformer_in_features=["res5"], common_stride=8).eval()
    assert decoder.num_fpn_levels == 2 and decoder.fpn_in_features == ["res3", "res4"]
    with torch.no_grad():
        out = decoder.forward_features(features(shapes, 64, 64))
    assert out.mask_features.shape == (2, 16, 8, 8)  # stride 8
    assert [tuple(f.shape[-2:]) for f in out.multi_scale_features] == [(2, 2), (4, 4), (8, 8)]


@pytest.mark.parametrize("change,match", [
    (dict(transformer_in_features=["res3", "res6"]), r"missing: \['res6'\]"),
    (dict(transformer_in_features=[]), r"non-empty subset"),
    (dict(conv_dim=48), r"conv_dim \(48\) must be a multiple of 32"),
    (dict(common_stride=3), r"common_stride \(3\) must divide the finest encoder stride \(8\) by a power of 2"),
    (dict(common_stride=16), r"common_stride \(16\) must divide"),
    (dict(input_shape={k: v for k, v in feature_shapes([8, 16, 24, 40]).items() if k != "res2"}),
     r"needs the 1 finest input feature\(s\) at strides \[4\]"),
    (dict(transformer_in_features=["res5"], common_stride=8), r"at strides \[8, 16\]; the inputs are"),
    (dict(transformer_nheads=3), r"d_model \(32\) must be divisible by n_heads \(3\)"),
])
def test_constructor_checks(change, match):
    with pytest.raises(ValueError, match=match):
        tiny(**change)


def test_forward_checks():
    decoder = tiny()
    feats = features(feature_shapes([8, 16, 24, 40]), 64, 64)
    del feats["res2"]
    with pytest.raises(KeyError, match=r"features lack \['res2'\]"):
        decoder.forward_features(feats)
    with pytest.raises(RuntimeError, match=r"forward_features"):
        decoder(feats)


def test_in_place_relu_gives_the_values_and_gradients_of_the_plain_one():
    """The encoder layer applies F.relu in place on linear1's output; any other callable runs as given."""
    from torch.nn import functional as F

    from mask2former.modeling.pixel_decoder.msdeformattn_encoder import MSDeformAttnTransformerEncoderLayer

    torch.manual_seed(0)
    layer = MSDeformAttnTransformerEncoderLayer(d_model=32, d_ffn=64, dropout=0.0, n_levels=2, n_heads=4, n_points=2)
    shapes = torch.tensor([[4, 6], [2, 3]])
    start = torch.tensor([0, 24])
    src = torch.randn(2, 30, 32, requires_grad=True)
    ref = torch.rand(2, 30, 2, 2)

    def run():
        out = layer(src, None, ref, shapes, start)
        grads = torch.autograd.grad(out.square().sum(), [src, layer.linear1.weight, layer.linear2.weight])
        return out.detach(), grads

    assert layer.activation is F.relu
    out, grads = run()
    layer.activation = lambda x: F.relu(x)  # not F.relu itself: the out-of-place path
    plain_out, plain_grads = run()
    assert torch.equal(out, plain_out)
    for a, b in zip(grads, plain_grads):
        assert torch.equal(a, b)
