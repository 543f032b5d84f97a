"""mask_former.inference equals the original order of work (tests/mask_former/inference/reference.py).

The outputs built block by block (semantic scores, panoptic segments, instances), the full-resolution
functions, the post-processor's two sources of blocks (from the low-resolution masks, or from the
resized masks) and whole models. Inputs include ties (quantized probabilities), stuff merging,
thresholds that drop everything, blocks of one row up to the whole image, and output sizes that
differ from the input's.
"""
import pytest
import torch
from torch.nn import functional as F

from mask_former.inference import (MaskFormerPostProcessor, crop_and_resize, instance_inference, panoptic_inference,
                                   semantic_inference)
from mask_former.inference import blocks as blocks_module
from mask_former.inference.blocks import low_resolution_blocks, supports_low_resolution_blocks
from segcore.modeling import sem_seg_postprocess
from tests.mask_former.inference.reference import (instance_inference_reference, panoptic_inference_reference,
                                                   postprocess_reference, semantic_inference_reference)
from tests.mask_former.tiny_models import ALL_OUTPUTS, random_inputs, reference_outputs, tiny_model


def _random_outputs(seed, queries=12, classes=5, size=(17, 23), quantize=False, confident=4.0):
    g = torch.Generator().manual_seed(seed)
    mask_cls = torch.randn(queries, classes + 1, generator=g) * confident
    mask_pred = torch.randn(queries, *size, generator=g) * 3
    if quantize:  # many exact ties between queries' probabilities and scores
        mask_pred = mask_pred.round()
        mask_cls = mask_cls.round()
    return mask_cls, mask_pred


def _assert_instances_equal(a, b):
    assert len(a) == len(b)
    assert torch.equal(a.pred_classes, b.pred_classes)
    torch.testing.assert_close(a.scores, b.scores, rtol=1e-6, atol=1e-7)
    assert torch.equal(a.pred_masks, b.pred_masks)
    assert torch.equal(a.pred_boxes.tensor, b.pred_boxes.tensor)


@pytest.fixture(params=[None, 1, 700], ids=["one-block", "row-blocks", "some-rows"])
def block_elements(request, monkeypatch):
    """The outputs are the same whether the masks come whole, one row at a time or in between."""
    if request.param is not None:
        monkeypatch.setattr(blocks_module, "BLOCK_ELEMENTS", request.param)
    return request.param


# ---------------------------------------------------------------------------- the three outputs
@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("confident", [False, True])
@pytest.mark.parametrize("quantize", [False, True])
@pytest.mark.parametrize("thresholds", [(0.0, 0.0), (0.3, 0.5), (0.0, 0.8)])
def test_panoptic_equals_the_loop(seed, confident, quantize, thresholds):
    mask_cls, mask_pred = _random_outputs(seed, quantize=quantize)
    kw = dict(thing_classes=[0, 2], object_mask_threshold=thresholds[0], overlap_threshold=thresholds[1],
              mask_must_be_confident=confident)
    seg_ref, info_ref = panoptic_inference_reference(mask_cls, mask_pred, **kw)
    for mask_prob in (None, mask_pred.sigmoid()):
        seg, info = panoptic_inference(mask_cls, mask_pred, mask_prob=mask_prob, **kw)
        assert seg.dtype == torch.int32 and torch.equal(seg, seg_ref)
        assert info == info_ref


def test_panoptic_merges_stuff_across_row_blocks(block_elements):
    g = torch.Generator().manual_seed(3)
    mask_cls = torch.full((6, 4), -5.0)
    mask_cls[torch.arange(6), torch.tensor([1, 1, 3, 0, 1, 2])] = 5.0  # class 1 (stuff) three times
    mask_pred = torch.randn(6, 40, 9, generator=g) * 4
    kw = dict(thing_classes=[0], object_mask_threshold=0.0, overlap_threshold=0.0)
    seg, info = panoptic_inference(mask_cls, mask_pred, **kw)
    seg_ref, info_ref = panoptic_inference_reference(mask_cls, mask_pred, **kw)
    assert torch.equal(seg, seg_ref) and info == info_ref
    assert sum(1 for s in info if s["category_id"] == 1) == 1  # merged into one segment


def test_panoptic_with_nothing_kept():
    mask_cls, mask_pred = _random_outputs(0)
    mask_cls[:, -1] = 100.0  # every query is "no object"
    seg, info = panoptic_inference(mask_cls, mask_pred, thing_classes=[0], object_mask_threshold=0.0,
                                   overlap_threshold=0.0)
    assert info == [] and not seg.any() and seg.shape == mask_pred.shape[1:]


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("topk", [1, 7, 30, 1000])
@pytest.mark.parametrize("things", [None, [1, 3]])
def test_instances_equal_the_reference(seed, topk, things):
    mask_cls, mask_pred = _random_outputs(seed, queries=9, classes=6)
    mask_pred[2] = -1.0  # an empty mask
    ref = instance_inference_reference(mask_cls, mask_pred, topk=topk, thing_classes=things)
    for mask_prob in (None, mask_pred.sigmoid()):
        _assert_instances_equal(instance_inference(mask_cls, mask_pred, topk=topk, thing_classes=things,
                                                   mask_prob=mask_prob), ref)


def test_instances_in_row_blocks(block_elements):
    mask_cls, mask_pred = _random_outputs(11, queries=7, classes=3)
    _assert_instances_equal(instance_inference(mask_cls, mask_pred, topk=15),
                            instance_inference_reference(mask_cls, mask_pred, topk=15))


def test_instance_inference_errors():
    mask_cls, mask_pred = _random_outputs(0)
    with pytest.raises(ValueError, match="topk"):
        instance_inference(mask_cls, mask_pred, topk=0)
    with pytest.raises(ValueError, match="12 class predictions but 11 masks"):
        instance_inference(mask_cls, mask_pred[:11], topk=5)


def test_semantic_equals_the_einsum(block_elements):
    mask_cls, mask_pred = _random_outputs(1)
    expected = semantic_inference_reference(mask_cls, mask_pred)
    torch.testing.assert_close(semantic_inference(mask_cls, mask_pred), expected, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(semantic_inference(mask_cls, mask_pred, mask_prob=mask_pred.sigmoid()), expected,
                               rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("out_size", [(13, 19), (20, 31), (7, 5)])
def test_crop_and_resize_equals_sem_seg_postprocess(out_size):
    x = torch.randn(3, 16, 24)
    image_size = (13, 19)
    got = crop_and_resize(x, image_size, *out_size)
    assert torch.equal(got, sem_seg_postprocess(x, image_size, *out_size))
    if out_size == image_size:
        assert got.data_ptr() == x.data_ptr()  # a view: no resize pass


# ---------------------------------------------------------------------------- the post-processor
def _postprocessor(**kw):
    settings = dict(semantic_on=True, panoptic_on=True, instance_on=True, masks_at_output_size=True,
                    thing_classes=[0, 2], object_mask_threshold=0.1, overlap_threshold=0.3, topk=9)
    settings.update(kw)
    return MaskFormerPostProcessor(**settings)


def _reference(post, mask_cls, mask_logits, padded, image, output):
    masks = F.interpolate(mask_logits[None], size=padded, mode="bilinear", align_corners=False)[0]
    return postprocess_reference(
        mask_cls, masks, image, *output, semantic_on=post.semantic_on, panoptic_on=post.panoptic_on,
        instance_on=post.instance_on, resize_before_inference=post.masks_at_output_size,
        thing_classes=post.thing_classes, object_mask_threshold=post.object_mask_threshold,
        overlap_threshold=post.overlap_threshold, mask_must_be_confident=post.panoptic_mask_must_be_confident,
        topk=post.topk)


def _assert_outputs_equal(got, expected):
    assert set(got) == set(expected)
    if "sem_seg" in expected:
        torch.testing.assert_close(got["sem_seg"], expected["sem_seg"], rtol=1e-5, atol=1e-5)
    if "panoptic_seg" in expected:
        assert torch.equal(got["panoptic_seg"][0], expected["panoptic_seg"][0])
        assert got["panoptic_seg"][1] == expected["panoptic_seg"][1]
    if "instances" in expected:
        _assert_instances_equal(got["instances"], expected["instances"])


@pytest.mark.parametrize("low,scale,image,output", [
    ((13, 9), 4, (50, 33), (50, 33)),  # low-resolution blocks: odd sizes, the image inside the padding
    ((8, 8), 4, (32, 32), (32, 32)),
    ((10, 7), 2, (19, 14), (19, 14)),
    ((6, 11), 1, (6, 10), (6, 10)),
    ((13, 9), 4, (50, 33), (61, 40)),  # resized after the crop: from the resized masks
    ((16, 25), 3, (48, 75), (48, 75)),  # scale 3: from the resized masks
])
@pytest.mark.parametrize("confident", [False, True])
def test_postprocessor_equals_the_original_steps(block_elements, low, scale, image, output, confident):
    g = torch.Generator().manual_seed(sum(low) + scale)
    mask_cls = torch.randn(7, 5, generator=g) * 3
    mask_cls[:, -1] -= 3  # most queries kept
    mask_logits = torch.randn(7, *low, generator=g) * 3
    mask_logits[4] = -2.0  # an empty mask
    padded = (low[0] * scale, low[1] * scale)
    assert supports_low_resolution_blocks(low, padded, image, output) == (scale in (1, 2, 4) and image == output)
    post = _postprocessor(panoptic_mask_must_be_confident=confident)
    expected = _reference(post, mask_cls, mask_logits, padded, image, output)
    assert expected["panoptic_seg"][1] and len(expected["instances"])  # the comparison is not vacuous
    _assert_outputs_equal(post(mask_cls, mask_logits, padded, image, output), expected)


@pytest.mark.parametrize("output", [(50, 33), (61, 40)])
def test_semantic_only_scores_are_resized_after_inference(output):
    """``masks_at_output_size`` False: the scores are computed at the image size, then resized."""
    g = torch.Generator().manual_seed(5)
    mask_cls, mask_logits = torch.randn(7, 5, generator=g), torch.randn(7, 13, 9, generator=g) * 3
    post = _postprocessor(panoptic_on=False, instance_on=False, masks_at_output_size=False)
    _assert_outputs_equal(post(mask_cls, mask_logits, (52, 36), (50, 33), output),
                          _reference(post, mask_cls, mask_logits, (52, 36), (50, 33), output))


def test_low_resolution_blocks_only_where_they_are_exact():
    assert supports_low_resolution_blocks((16, 25), (64, 100), (60, 97), (60, 97))
    assert not supports_low_resolution_blocks((16, 25), (64, 100), (60, 97), (120, 194))  # a resize after
    assert not supports_low_resolution_blocks((16, 25), (48, 75), (48, 75), (48, 75))  # scale 3
    assert not supports_low_resolution_blocks((16, 25), (64, 50), (64, 50), (64, 50))  # different scales
    with pytest.raises(ValueError, match="power-of-two"):
        list(low_resolution_blocks(torch.zeros(2, 16, 25), (48, 75), (48, 75)))


def test_postprocessor_settings_are_checked():
    with pytest.raises(ValueError, match="no output enabled"):
        MaskFormerPostProcessor(semantic_on=False)
    with pytest.raises(ValueError, match="need the masks at the output size"):
        MaskFormerPostProcessor(panoptic_on=True, masks_at_output_size=False)


# ---------------------------------------------------------------------------- whole models
@pytest.mark.parametrize("name,opts", [
    ("maskformer", []),
    ("mask2former", []),
    ("maskformer_panoptic", ALL_OUTPUTS),
    ("mask2former_panoptic", ALL_OUTPUTS),
    ("mask2former", ["MODEL.MASK_FORMER.TEST.SEM_SEG_POSTPROCESSING_BEFORE_INFERENCE", "True"]),
])
@pytest.mark.parametrize("out_sizes", [None, [(90, 70), (50, 64)]])
def test_model_outputs_equal_the_original_pipeline(name, opts, out_sizes):
    """Two images of different sizes (padding), output at the image size or resized."""
    model = tiny_model(name, *opts)
    inputs = random_inputs([(64, 96), (50, 64)], out_sizes)
    _, expected = reference_outputs(model, inputs)
    with torch.no_grad():
        got = model(inputs)
    if "panoptic_seg" in expected[0]:  # the comparison is not vacuous
        assert all(len(e["panoptic_seg"][1]) and len(e["instances"]) for e in expected)
    for g, e in zip(got, expected):
        _assert_outputs_equal(g, e)
