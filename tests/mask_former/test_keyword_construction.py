"""MaskFormer's modules built from keyword arguments alone (no config), end to end on tiny inputs,
empty and odd-sized ones included; the per-task inference switches and the loss hook."""
import pytest
import torch
from torch import nn
from torch.nn import functional as F

from mask_former import MaskFormer
from mask_former.modeling import (BasePixelDecoder, HungarianMatcher, MaskFormerHead, SetCriterion,
                                  TransformerEncoderPixelDecoder, TransformerPredictor)
from segcore.layers import ShapeSpec
from segcore.modeling import Backbone
from segcore.structures import Instances

NUM_CLASSES, QUERIES, DIM = 3, 5, 32
SHAPES = {f"res{i}": ShapeSpec(channels=8 * 2 ** (i - 2), stride=2 ** i) for i in range(2, 6)}


class TinyBackbone(Backbone):
    """Four strided convs: res2..res5 at strides 4..32 with 8..64 channels."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 4, stride=4)
        self.res3 = nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.res4 = nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.res5 = nn.Conv2d(32, 64, 3, stride=2, padding=1)

    def forward(self, x):
        r2 = self.stem(x)
        r3 = self.res3(r2)
        r4 = self.res4(r3)
        return {"res2": r2, "res3": r3, "res4": r4, "res5": self.res5(r4)}

    def output_shape(self):
        return dict(SHAPES)

    @property
    def size_divisibility(self):
        return 32


def _predictor(in_channels=64, **kw):
    args = dict(in_channels=in_channels, mask_classification=True, num_classes=NUM_CLASSES, hidden_dim=DIM,
                num_queries=QUERIES, nheads=2, dropout=0.0, dim_feedforward=32, enc_layers=0, dec_layers=2,
                pre_norm=False, deep_supervision=True, mask_dim=DIM, enforce_input_project=False)
    args.update(kw)
    return TransformerPredictor(**args)


def _model(**kw):
    torch.manual_seed(0)
    head = MaskFormerHead(SHAPES, num_classes=NUM_CLASSES,
                          pixel_decoder=BasePixelDecoder(SHAPES, conv_dim=DIM, mask_dim=DIM, norm=""),
                          transformer_predictor=_predictor(), transformer_in_feature="res5")
    weights = {"loss_ce": 1.0, "loss_mask": 20.0, "loss_dice": 1.0}
    weights.update({f"{k}_0": v for k, v in list(weights.items())})
    criterion = SetCriterion(num_classes=NUM_CLASSES, matcher=HungarianMatcher(cost_class=1, cost_mask=20, cost_dice=1),
                             weight_dict=weights, eos_coef=0.1, losses=["labels", "masks"])
    args = dict(backbone=TinyBackbone(), sem_seg_head=head, criterion=criterion, num_queries=QUERIES,
                object_mask_threshold=0.0, overlap_threshold=0.0, metadata=None, size_divisibility=-1,
                sem_seg_postprocess_before_inference=False, pixel_mean=[128.0] * 3, pixel_std=[64.0] * 3)
    args.update(kw)
    return MaskFormer(**args)


def _image(h, w, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (3, h, w), generator=g, dtype=torch.uint8)


def test_pixel_decoders_from_keywords():
    feats = TinyBackbone()(torch.zeros(2, 3, 64, 96))
    out = BasePixelDecoder(SHAPES, conv_dim=DIM, mask_dim=8, norm="GN").forward_features(feats)
    assert out.mask_features.shape == (2, 8, 16, 24) and out.transformer_encoder_features is None
    assert [tuple(f.shape) for f in out.multi_scale_features] == [(2, DIM, 2, 3), (2, DIM, 4, 6), (2, DIM, 8, 12)]
    enc = TransformerEncoderPixelDecoder(SHAPES, transformer_dropout=0.0, transformer_nheads=2,
                                         transformer_dim_feedforward=32, transformer_enc_layers=1,
                                         transformer_pre_norm=False, conv_dim=DIM, mask_dim=8, norm="GN")
    out = enc.forward_features(feats)
    assert out.mask_features.shape == (2, 8, 16, 24) and out.transformer_encoder_features.shape == (2, DIM, 2, 3)


def test_transformer_decoder_from_keywords():
    out = _predictor(in_channels=32)(torch.randn(2, 32, 3, 4), torch.randn(2, DIM, 12, 16))
    assert out["pred_logits"].shape == (2, QUERIES, NUM_CLASSES + 1)
    assert out["pred_masks"].shape == (2, QUERIES, 12, 16) and len(out["aux_outputs"]) == 1
    masks_only = _predictor(in_channels=32, mask_classification=False, deep_supervision=False)
    out = masks_only(torch.randn(1, 32, 3, 4), torch.randn(1, DIM, 12, 16))
    assert set(out) == {"pred_masks"}


@pytest.mark.parametrize("in_feature", ["res5", "pixel_embedding", "transformer_encoder"])
def test_head_routes_the_decoder_input(in_feature):
    in_channels = {"res5": 64, "pixel_embedding": DIM, "transformer_encoder": DIM}[in_feature]
    decoder = (TransformerEncoderPixelDecoder(SHAPES, transformer_dropout=0.0, transformer_nheads=2,
                                              transformer_dim_feedforward=32, transformer_enc_layers=1,
                                              transformer_pre_norm=False, conv_dim=DIM, mask_dim=DIM, norm="GN")
               if in_feature == "transformer_encoder" else BasePixelDecoder(SHAPES, conv_dim=DIM, mask_dim=DIM))
    head = MaskFormerHead(SHAPES, num_classes=NUM_CLASSES, pixel_decoder=decoder,
                          transformer_predictor=_predictor(in_channels=in_channels), transformer_in_feature=in_feature)
    out = head(TinyBackbone()(torch.zeros(1, 3, 64, 64)))
    assert out["pred_masks"].shape == (1, QUERIES, 16, 16)


def test_head_without_the_input_it_names_is_a_clear_error():
    head = MaskFormerHead(SHAPES, num_classes=NUM_CLASSES, pixel_decoder=BasePixelDecoder(SHAPES, conv_dim=DIM,
                                                                                          mask_dim=DIM),
                          transformer_predictor=_predictor(in_channels=DIM), transformer_in_feature="transformer_encoder")
    with pytest.raises(ValueError, match="TransformerEncoderPixelDecoder"):
        head(TinyBackbone()(torch.zeros(1, 3, 64, 64)))


def test_model_trains_on_a_batch_with_an_empty_image_and_evaluates_odd_sizes():
    model = _model()
    inst = Instances((64, 64))
    inst.gt_classes = torch.tensor([0, 2])
    inst.gt_masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    inst.gt_masks[0, :32], inst.gt_masks[1, 32:] = True, True
    empty = Instances((48, 64))
    empty.gt_classes = torch.zeros(0, dtype=torch.int64)
    empty.gt_masks = torch.zeros(0, 48, 64, dtype=torch.bool)
    losses = model([{"image": _image(64, 64), "instances": inst}, {"image": _image(48, 64, 1), "instances": empty}])
    assert set(losses) == {"loss_ce", "loss_mask", "loss_dice", "loss_ce_0", "loss_mask_0", "loss_dice_0"}
    total = sum(losses.values())
    assert torch.isfinite(total)
    total.backward()
    assert model.sem_seg_head.predictor.query_embed.weight.grad.abs().sum() > 0

    model.eval()
    with torch.no_grad():
        out = model([{"image": _image(37, 53)}, {"image": _image(64, 40, 2), "height": 128, "width": 80}])
    assert out[0]["sem_seg"].shape == (NUM_CLASSES, 37, 53) and out[1]["sem_seg"].shape == (NUM_CLASSES, 128, 80)
    assert set(out[0]) == {"sem_seg"}


def test_training_without_instances_names_the_mapper():
    with pytest.raises(ValueError, match="instances"):
        _model()([{"image": _image(32, 32)}])


def test_the_task_switches_choose_the_outputs():
    from segcore.data import MetadataCatalog

    meta = MetadataCatalog.get("_keyword_construction_things")
    meta.set(thing_dataset_id_to_contiguous_id={1: 0, 2: 1, 3: 2})
    model = _model(semantic_on=False, panoptic_on=True, instance_on=True, test_topk_per_image=4,
                   sem_seg_postprocess_before_inference=True, metadata=meta).eval()
    with torch.no_grad():
        [out] = model([{"image": _image(40, 56), "height": 20, "width": 28}])
    assert set(out) == {"panoptic_seg", "instances"}
    seg, info = out["panoptic_seg"]
    assert seg.shape == (20, 28) and seg.dtype == torch.int32
    inst = out["instances"]
    assert len(inst) == 4 and inst.image_size == (20, 28) and inst.pred_masks.shape == (4, 20, 28)
    assert inst.pred_boxes.tensor.shape == (4, 4) and inst.pred_masks.dtype == torch.bool
    assert torch.all((inst.scores >= 0) & (inst.scores <= 1))
    assert torch.all((inst.pred_classes >= 0) & (inst.pred_classes < NUM_CLASSES))


def test_inconsistent_switches_are_refused():
    with pytest.raises(ValueError, match="no output"):
        _model(semantic_on=False)
    with pytest.raises(ValueError, match="output size"):
        _model(semantic_on=False, panoptic_on=True)
    with pytest.raises(ValueError, match="PIXEL_STD"):
        _model(pixel_std=[1.0, 1.0])


def test_a_subclass_adds_a_loss_from_the_backbone_features_without_copying_forward():
    class WithFeatureLoss(MaskFormer):
        def losses(self, outputs, batched_inputs, images, features):
            losses = super().losses(outputs, batched_inputs, images, features)
            losses["loss_res5_energy"] = features["res5"].pow(2).mean()
            return losses

    model = _model()
    model.__class__ = WithFeatureLoss
    inst = Instances((32, 32))
    inst.gt_classes = torch.tensor([1])
    inst.gt_masks = torch.ones(1, 32, 32, dtype=torch.bool)
    losses = model([{"image": _image(32, 32), "instances": inst}])
    assert "loss_res5_energy" in losses and "loss_ce" in losses
    losses["loss_res5_energy"].backward()
    assert model.backbone.res5.weight.grad.abs().sum() > 0
