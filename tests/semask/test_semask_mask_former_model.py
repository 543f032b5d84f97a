"""SeMaskMaskFormer end to end on tiny models of both decoder families: the semantic-prior loss
added to MaskFormer's / Mask2Former's losses, its weight, the ignore label and padding, the errors,
and inference as the decoder family provides."""
import pytest
import torch

from mask2former.modeling import PointSampledSetCriterion
from mask_former import MaskFormer
from mask_former.modeling import SetCriterion
from segcore.modeling import build_model
from segcore.structures import Instances
from semask import SeMaskMaskFormer
from semask.modeling import pad_semantic_targets, semantic_prior_loss
from tests.semask.tiny import NUM_CLASSES, tiny_cfg

FAMILIES = ["maskformer", "mask2former"]


def _model(family, *overrides):
    torch.manual_seed(0)
    return build_model(tiny_cfg(family, *overrides))


def _batch(height=64, width=96, sem_seg=True):
    """Two images; the ground truth: class 1 on the left half, class 3 on the right, 255 on row 0."""
    torch.manual_seed(1)
    batch = []
    for _ in range(2):
        label = torch.ones(height, width, dtype=torch.long)
        label[:, width // 2:] = 3
        label[0] = 255
        inst = Instances((height, width))
        inst.gt_classes = torch.tensor([1, 3])
        inst.gt_masks = torch.stack([label == 1, label == 3])
        item = {"image": torch.randint(0, 256, (3, height, width), dtype=torch.uint8), "instances": inst,
                "height": height, "width": width}
        if sem_seg:
            item["sem_seg"] = label
        batch.append(item)
    return batch


def _expected_cate_loss(model, batch, weight):
    """cate weight x the cross-entropy of the head's semantic prior against the padded ground truth."""
    with torch.no_grad():
        images = model.preprocess_image(batch)
        prior = model.sem_seg_head.semantic_prior(model.backbone(images.tensor))
        targets = pad_semantic_targets([x["sem_seg"] for x in batch], images.tensor.shape[-2:], 255)
        return weight * semantic_prior_loss(prior, targets, 255)


@pytest.mark.parametrize("family", FAMILIES)
def test_training_adds_the_weighted_semantic_prior_loss(family):
    model = _model(family)
    assert isinstance(model, SeMaskMaskFormer) and isinstance(model, MaskFormer)
    criterion = {"maskformer": SetCriterion, "mask2former": PointSampledSetCriterion}[family]
    assert type(model.criterion) is criterion  # the decoder the config names decides, as for MaskFormer
    assert model.cate_weight == 0.4
    model.train()
    batch = _batch()
    losses = model(batch)
    aux = {"maskformer": 1, "mask2former": 3}[family]
    base = {"loss_ce", "loss_mask", "loss_dice"}
    assert set(losses) == base | {f"{k}_{i}" for k in base for i in range(aux)} | {"loss_cate"}
    torch.testing.assert_close(losses["loss_cate"], _expected_cate_loss(model, batch, 0.4))
    assert losses["loss_cate"].item() > 0

    # the loss trains the Semantic Layers and the backbone below them
    model.zero_grad()
    losses["loss_cate"].backward()
    semantic = model.backbone.layers[2].semantic_layer.class_injection[0].mlp_cls_q.weight
    assert semantic.grad is not None and semantic.grad.abs().sum() > 0
    assert model.backbone.patch_embed.proj.weight.grad.abs().sum() > 0


def test_the_weight_comes_from_cate_weight():
    batch = _batch()
    losses = {}
    for weight in ["0.0", "1.0"]:
        model = _model("maskformer", "MODEL.MASK_FORMER.CATE_WEIGHT", weight).train()
        losses[weight] = model(batch)["loss_cate"]
        torch.testing.assert_close(losses[weight], _expected_cate_loss(model, batch, float(weight)))
    assert losses["0.0"].item() == 0.0 and losses["1.0"].item() > 0


def test_ground_truth_smaller_than_the_padded_batch_is_padded_with_the_ignore_label():
    """60x90 images are padded to 64x96; the 4 rows and 6 columns of padding are ignored."""
    model = _model("mask2former").train()
    batch = _batch(height=60, width=90)
    loss = model(batch)["loss_cate"]
    with torch.no_grad():
        images = model.preprocess_image(batch)
        assert tuple(images.tensor.shape[-2:]) == (64, 96)
        prior = model.sem_seg_head.semantic_prior(model.backbone(images.tensor))[..., :60, :90]
        cropped = torch.stack([x["sem_seg"] for x in batch])
    torch.testing.assert_close(loss, 0.4 * semantic_prior_loss(prior, cropped, 255))


def test_training_without_the_semantic_ground_truth_is_an_error():
    model = _model("maskformer").train()
    with pytest.raises(ValueError, match="'sem_seg'.*mask_former_semantic"):
        model(_batch(sem_seg=False))


def test_a_head_without_the_semantic_branch_is_an_error_in_training():
    model = _model("maskformer", "MODEL.SEM_SEG_HEAD.NAME", "MaskFormerHead").train()
    with pytest.raises(ValueError, match="BranchMaskFormerHead"):
        model(_batch())


def test_a_backbone_without_semantic_layers_is_an_error():
    """The released SeMask R50 files are bases of the Swin ones: they build, and say why they cannot run."""
    from segcore.engine import setup_cfg
    from tests.paths import CONFIGS
    from tests.semask.tiny import TINY, TINY_BY_FAMILY

    path = f"{CONFIGS}/ade20k/semantic-segmentation/semask_swin/semask_maskformer2_R50_bs16_160k.yaml"
    cfg = setup_cfg(path, [*TINY, *TINY_BY_FAMILY["mask2former"], "MODEL.RESNETS.DEPTH", "18",
                           "MODEL.RESNETS.RES2_OUT_CHANNELS", "64"])
    model = build_model(cfg).eval()
    with pytest.raises(ValueError, match="D2SeMaskSwinTransformer"):
        model(_batch())


@pytest.mark.parametrize("family", FAMILIES)
def test_inference_is_the_decoder_familys(family):
    """Eval mode returns MaskFormer's semantic output at each input's size; the semantic prior is
    not computed (a training-time branch, not used at test time, as in the original)."""
    model = _model(family).eval()
    batch = _batch(height=60, width=90)
    for x in batch:
        x["height"], x["width"] = 30, 45
    with torch.no_grad():
        out = model(batch)
        images = model.preprocess_image(batch)
        head = model.sem_seg_head(model.backbone(images.tensor))
        expected = MaskFormer.inference(model, head, batch, images)
    assert "semantic_prior" not in head and len(head["semantic_stage_maps"]) == 4
    assert [set(r) for r in out] == [{"sem_seg"}] * 2
    assert out[0]["sem_seg"].shape == (NUM_CLASSES, 30, 45)
    torch.testing.assert_close(out[0]["sem_seg"], expected[0]["sem_seg"])


def test_panoptic_inference_can_be_switched_on():
    model = _model("mask2former", "MODEL.MASK_FORMER.TEST.PANOPTIC_ON", "True").eval()
    with torch.no_grad():
        out = model(_batch())
    assert set(out[0]) == {"sem_seg", "panoptic_seg"}
    assert SeMaskMaskFormer.output_tasks(tiny_cfg("mask2former", "MODEL.MASK_FORMER.TEST.PANOPTIC_ON", "True")) == \
        ("sem_seg", "panoptic_seg")
