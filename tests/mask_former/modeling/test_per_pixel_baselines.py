"""SemanticSegmentor with the per-pixel heads: PerPixelBaseline(+) (MaskFormer Sec. 4.1) and SemSegFPNHead."""
import os

import pytest
import torch
from torch.nn import functional as F

import mask_former  # noqa: F401  (registers the heads)
from segcore.engine import setup_cfg
from segcore.modeling import SemanticSegmentor, SemSegFPNHead, build_model
from tests.paths import REPO_ROOT

ROOT = REPO_ROOT
CONFIGS = {
    "PerPixelBaselineHead": "configs/ade20k-150/per_pixel_baseline_R50_bs16_160k.yaml",
    "PerPixelBaselinePlusHead": "configs/ade20k-150/per_pixel_baseline_plus_R50_bs16_160k.yaml",
}
K = 5
IGNORE = 255
DEC_LAYERS = 2

# The original configs, scaled down: ResNet-18, 32-wide pixel decoder and transformer, 2 decoder layers.
TINY = ["MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu", "MODEL.RESNETS.DEPTH", "18", "MODEL.RESNETS.RES2_OUT_CHANNELS", "64",
        "MODEL.BACKBONE.FREEZE_AT", "0", "MODEL.SEM_SEG_HEAD.NUM_CLASSES", str(K), "MODEL.SEM_SEG_HEAD.CONVS_DIM", "32",
        "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32", "MODEL.MASK_FORMER.NHEADS", "2",
        "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64", "MODEL.MASK_FORMER.DEC_LAYERS", str(DEC_LAYERS),
        "MODEL.MASK_FORMER.DROPOUT", "0.0", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", str(K)]


def tiny_model(head: str, *extra: str) -> SemanticSegmentor:
    torch.manual_seed(0)
    cfg = setup_cfg(os.path.join(ROOT, CONFIGS[head]), TINY + list(extra))
    model = build_model(cfg)
    assert type(model.sem_seg_head).__name__ == head
    return model


def batch(with_labels: bool = True):
    """Two images of different sizes (the second is padded); labels with ignored pixels."""
    g = torch.Generator().manual_seed(1)
    inputs = []
    for h, w in [(64, 64), (48, 64)]:
        x = {"image": torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8), "height": h, "width": w}
        if with_labels:
            sem = torch.randint(0, K, (h, w), generator=g)
            sem[:8, :] = IGNORE
            x["sem_seg"] = sem
        inputs.append(x)
    return inputs


def manual_ce(logits_stride4: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy by hand: upsample 4x, -log softmax at the label, mean over non-ignored pixels."""
    up = F.interpolate(logits_stride4.float(), scale_factor=4, mode="bilinear", align_corners=False)
    logp = up.log_softmax(dim=1)
    valid = labels != IGNORE
    picked = logp.gather(1, labels.clamp(max=K - 1).unsqueeze(1)).squeeze(1)
    return -(picked[valid]).sum() / valid.sum()


def padded_labels(inputs, shape):
    out = torch.full((len(inputs),) + tuple(shape), IGNORE, dtype=torch.int64)
    for i, x in enumerate(inputs):
        h, w = x["sem_seg"].shape
        out[i, :h, :w] = x["sem_seg"]
    return out


def head_logits(model, inputs):
    """(final logits, aux logits or []) at stride 4 on the padded batch, by calling the parts directly."""
    images = torch.stack([F.pad((x["image"].float() - model.pixel_mean) / model.pixel_std,
                                (0, 64 - x["image"].shape[2], 0, 64 - x["image"].shape[1])) for x in inputs])
    features = model.backbone(images)
    out = model.sem_seg_head.layers(features)
    if isinstance(out, tuple):
        x, aux = out
        return x, [a["pred_masks"] for a in (aux or [])]
    return out, []


@pytest.mark.parametrize("head", sorted(CONFIGS))
def test_train_loss_is_per_pixel_cross_entropy_with_ignore(head):
    model = tiny_model(head, "MODEL.SEM_SEG_HEAD.LOSS_WEIGHT", "2.0")
    model.train()
    inputs = batch()
    losses = model(inputs)
    with torch.no_grad():
        logits, aux = head_logits(model, inputs)
    labels = padded_labels(inputs, (64, 64))
    # the padded rows of the 48-pixel image are ignored, like the explicit 255 rows
    assert (labels[1, 48:] == IGNORE).all()
    expected = {"loss_sem_seg": 2.0 * manual_ce(logits, labels)}
    if head == "PerPixelBaselinePlusHead":
        assert len(aux) == DEC_LAYERS - 1
        expected.update({f"loss_sem_seg_{i}": 2.0 * manual_ce(a, labels) for i, a in enumerate(aux)})
    assert set(losses) == set(expected)
    for k, v in expected.items():
        assert torch.isfinite(losses[k])
        torch.testing.assert_close(losses[k], v, rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(losses[k], 2.0 * F.cross_entropy(
            F.interpolate((logits if k == "loss_sem_seg" else aux[int(k[-1])]).float(), scale_factor=4,
                          mode="bilinear", align_corners=False), labels, ignore_index=IGNORE), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("head", sorted(CONFIGS))
def test_gradients_reach_backbone_pixel_decoder_and_predictor(head):
    model = tiny_model(head)
    model.train()
    sum(model(batch()).values()).backward()
    for prefix in ["backbone.stem", "sem_seg_head.pixel_decoder.layer_1", "sem_seg_head.pixel_decoder.mask_features",
                   "sem_seg_head.predictor"]:
        grads = [p.grad for n, p in model.named_parameters() if n.startswith(prefix) and p.requires_grad]
        assert grads and all(g is not None for g in grads), prefix
        assert sum(g.abs().sum() for g in grads) > 0, prefix


@pytest.mark.parametrize("head", sorted(CONFIGS))
def test_eval_returns_logits_at_the_requested_size(head):
    model = tiny_model(head)
    model.eval()
    inputs = batch(with_labels=False)
    inputs[1]["height"], inputs[1]["width"] = 96, 128  # output size differs from the input size
    with torch.no_grad():
        out = model(inputs)
        logits, _ = head_logits(model, inputs)
    assert [r["sem_seg"].shape for r in out] == [(K, 64, 64), (K, 96, 128)]
    up = F.interpolate(logits, scale_factor=4, mode="bilinear", align_corners=False)
    torch.testing.assert_close(out[0]["sem_seg"], up[0], rtol=1e-4, atol=1e-4)
    # the second image: its 48x64 region, cropped from the padded batch, then resized to 96x128
    expected = F.interpolate(up[1:2, :, :48, :64], size=(96, 128), mode="bilinear", align_corners=False)[0]
    torch.testing.assert_close(out[1]["sem_seg"], expected, rtol=1e-4, atol=1e-4)


def test_state_dict_names_follow_the_original():
    base = set(tiny_model("PerPixelBaselineHead").state_dict())
    plus = set(tiny_model("PerPixelBaselinePlusHead").state_dict())
    for keys in (base, plus):
        assert all(k.startswith(("backbone.", "sem_seg_head.pixel_decoder.", "sem_seg_head.predictor")) for k in keys)
        assert {"sem_seg_head.pixel_decoder.adapter_1.weight", "sem_seg_head.pixel_decoder.layer_4.weight",
                "sem_seg_head.pixel_decoder.mask_features.weight"} <= keys
    assert {k for k in base if k.startswith("sem_seg_head.predictor")} == {"sem_seg_head.predictor.weight",
                                                                           "sem_seg_head.predictor.bias"}
    assert {"sem_seg_head.predictor.query_embed.weight", "sem_seg_head.predictor.input_proj.weight",
            "sem_seg_head.predictor.mask_embed.layers.2.weight",
            "sem_seg_head.predictor.transformer.decoder.norm.weight"} <= plus
    assert not any("class_embed" in k for k in plus)  # per-pixel: no mask classification


@pytest.mark.parametrize("head", sorted(CONFIGS))
def test_version1_checkpoints_are_upgraded(head):
    """Old checkpoints kept the pixel decoder's weights directly under ``sem_seg_head``."""
    src = tiny_model(head)
    old = {k.replace("sem_seg_head.pixel_decoder.", "sem_seg_head."): v for k, v in src.state_dict().items()}
    dst = tiny_model(head)
    torch.nn.init.zeros_(dst.sem_seg_head.pixel_decoder.mask_features.weight)
    result = dst.load_state_dict(old, strict=True)  # a plain dict has no version metadata
    assert not result.missing_keys and not result.unexpected_keys
    torch.testing.assert_close(dst.sem_seg_head.pixel_decoder.mask_features.weight,
                               src.sem_seg_head.pixel_decoder.mask_features.weight)


def test_plus_head_needs_one_query_per_class():
    with pytest.raises(ValueError, match="NUM_OBJECT_QUERIES=7 must equal MODEL.SEM_SEG_HEAD.NUM_CLASSES=5"):
        tiny_model("PerPixelBaselinePlusHead", "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "7")


def test_training_without_labels_is_an_error():
    model = tiny_model("PerPixelBaselineHead")
    model.train()
    with pytest.raises(ValueError, match="sem_seg"):
        model(batch(with_labels=False))


def test_sem_seg_fpn_head_under_semantic_segmentor():
    """Detectron2's Panoptic FPN semantic branch, here fed with ResNet features at strides 4..32."""
    model = tiny_model("PerPixelBaselineHead")  # only for its backbone
    torch.manual_seed(0)
    shapes = model.backbone.output_shape()
    head = SemSegFPNHead(shapes, num_classes=K, conv_dims=32, common_stride=4, norm="GN", ignore_value=IGNORE,
                         loss_weight=1.0)
    # one branch per level: log2(stride / 4) conv + upsample blocks (at least one conv)
    assert [sum(isinstance(m, torch.nn.Conv2d) for m in getattr(head, f)) for f in head.in_features] == [1, 1, 2, 3]
    seg = SemanticSegmentor(backbone=model.backbone, sem_seg_head=head, pixel_mean=[123.675, 116.28, 103.53],
                            pixel_std=[58.395, 57.12, 57.375])
    seg.train()
    inputs = batch()
    loss = seg(inputs)["loss_sem_seg"]
    with torch.no_grad():
        images = torch.stack([F.pad((x["image"].float() - seg.pixel_mean) / seg.pixel_std,
                                    (0, 64 - x["image"].shape[2], 0, 64 - x["image"].shape[1])) for x in inputs])
        logits = head.layers(seg.backbone(images))
    torch.testing.assert_close(loss, manual_ce(logits, padded_labels(inputs, (64, 64))), rtol=1e-4, atol=1e-5)
    seg.eval()
    with torch.no_grad():
        out = seg(batch(with_labels=False))
    assert [r["sem_seg"].shape for r in out] == [(K, 64, 64), (K, 48, 64)]
    with pytest.raises(ValueError, match="at least one input feature"):
        SemSegFPNHead({}, num_classes=K, conv_dims=32, common_stride=4)
