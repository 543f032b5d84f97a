"""The fast inference paths equal the plain ones (mask_former.inference.reference).

Panoptic and instance inference, the crop / resize that skips identity resizes, the shared mask
probabilities, the decoders' final-predictions-only mode, and whole models: ``model(inputs)``
against the original order of steps applied to the full head outputs. Inputs include ties
(quantized probabilities), stuff merging, thresholds that drop everything, and output sizes that
differ from the input's.
"""
import pytest
import torch
from torch.nn import functional as F

from mask_former.inference import (crop_and_resize, inference_from_low_resolution, instance_inference,
                                   panoptic_inference, semantic_inference, supports_low_resolution_inference)
from mask_former.inference.reference import (instance_inference_reference, panoptic_inference_reference,
                                             postprocess_reference)
from mask_former.modeling.transformer import final_predictions_only
from segcore.modeling import build_model, sem_seg_postprocess


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


def test_panoptic_merges_stuff_and_keeps_segments_across_argmax_blocks(monkeypatch):
    """Several stuff queries of one class, and a weighted argmax computed in many row blocks."""
    import mask_former.inference.panoptic as panoptic_module

    g = torch.Generator().manual_seed(3)
    mask_cls = torch.full((6, 4), -5.0)
    mask_cls[torch.arange(6), torch.tensor([1, 1, 3, 0, 1, 2])] = 5.0  # class 1 (stuff) three times
    mask_pred = torch.randn(6, 40, 9, generator=g) * 4
    monkeypatch.setattr(panoptic_module, "_ARGMAX_BLOCK_ELEMENTS", 6 * 9 * 3)  # 3 rows per block
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


def test_instances_in_many_query_blocks(monkeypatch):
    import mask_former.inference.instance as instance_module

    monkeypatch.setattr(instance_module, "_QUERY_BLOCK", 2)
    mask_cls, mask_pred = _random_outputs(11, queries=7, classes=3)
    _assert_instances_equal(instance_inference(mask_cls, mask_pred, topk=15),
                            instance_inference_reference(mask_cls, mask_pred, topk=15))


def test_semantic_with_shared_probabilities():
    mask_cls, mask_pred = _random_outputs(1)
    assert torch.equal(semantic_inference(mask_cls, mask_pred, mask_prob=mask_pred.sigmoid()),
                       semantic_inference(mask_cls, mask_pred))


@pytest.mark.parametrize("out_size", [(13, 19), (20, 31), (7, 5)])
def test_crop_and_resize_equals_sem_seg_postprocess(out_size):
    x = torch.randn(3, 16, 24)
    image_size = (13, 19)
    got = crop_and_resize(x, image_size, *out_size)
    assert torch.equal(got, sem_seg_postprocess(x, image_size, *out_size))
    if out_size == image_size:
        assert got.data_ptr() == x.data_ptr()  # a view: no resize pass


@pytest.mark.parametrize("block_elements", [1, 700, 1 << 20])
@pytest.mark.parametrize("low,scale,image", [((13, 9), 4, (50, 33)), ((8, 8), 4, (32, 32)), ((10, 7), 2, (19, 14)),
                                             ((6, 11), 1, (6, 10))])
@pytest.mark.parametrize("confident", [False, True])
def test_low_resolution_inference_equals_the_per_output_functions(monkeypatch, block_elements, low, scale, image,
                                                                  confident):
    """Blocks of one row up to the whole image; odd low-resolution sizes; the image smaller than
    the padded input."""
    import mask_former.inference.postprocess as postprocess_module

    monkeypatch.setattr(postprocess_module, "_BLOCK_ELEMENTS", block_elements)
    g = torch.Generator().manual_seed(sum(low) + scale)
    mask_cls = torch.randn(7, 5, generator=g) * 3
    mask_cls[:, -1] -= 3  # most queries kept
    mask_logits = torch.randn(7, *low, generator=g) * 3
    mask_logits[4] = -2.0  # an empty mask
    padded = (low[0] * scale, low[1] * scale)
    assert supports_low_resolution_inference(low, padded, image, image)
    kw = dict(thing_classes=[0, 2], object_mask_threshold=0.1, overlap_threshold=0.3,
              mask_must_be_confident=confident)
    got = inference_from_low_resolution(mask_cls, mask_logits, padded, image, semantic=True, panoptic=True,
                                        instance=True, topk=9, instance_thing_classes=[0, 2], **kw)
    masks = F.interpolate(mask_logits[None], size=padded, mode="bilinear", align_corners=False)[0]
    masks = masks[:, :image[0], :image[1]]
    torch.testing.assert_close(got["sem_seg"], semantic_inference(mask_cls, masks), rtol=1e-6, atol=1e-6)
    seg, info = panoptic_inference_reference(mask_cls, masks, **kw)
    assert info and torch.equal(got["panoptic_seg"][0], seg) and got["panoptic_seg"][1] == info
    _assert_instances_equal(got["instances"],
                            instance_inference_reference(mask_cls, masks, topk=9, thing_classes=[0, 2]))


def test_low_resolution_inference_only_where_it_is_exact():
    assert supports_low_resolution_inference((16, 25), (64, 100), (60, 97), (60, 97))
    assert not supports_low_resolution_inference((16, 25), (64, 100), (60, 97), (120, 194))  # a resize after
    assert not supports_low_resolution_inference((16, 25), (48, 75), (48, 75), (48, 75))  # scale 3
    assert not supports_low_resolution_inference((16, 25), (64, 50), (64, 50), (64, 50))  # different scales
    with pytest.raises(ValueError, match="power-of-two"):
        inference_from_low_resolution(torch.zeros(2, 3), torch.zeros(2, 16, 25), (48, 75), (48, 75), semantic=True,
                                      panoptic=False, instance=False)


# ---------------------------------------------------------------------------- decoders and models
TINY = ["MODEL.SEM_SEG_HEAD.CONVS_DIM", "32", "MODEL.SEM_SEG_HEAD.MASK_DIM", "32", "MODEL.MASK_FORMER.HIDDEN_DIM", "32",
        "MODEL.MASK_FORMER.NUM_OBJECT_QUERIES", "10", "MODEL.MASK_FORMER.DIM_FEEDFORWARD", "64",
        "MODEL.MASK_FORMER.NHEADS", "4", "MODEL.SEM_SEG_HEAD.TRANSFORMER_ENC_LAYERS", "1",
        "MODEL.WEIGHTS", "", "MODEL.DEVICE", "cpu"]
CONFIGS = {
    "maskformer": "configs/quickstart/maskformer_R18_quickstart.yaml",
    "maskformer_panoptic": "configs/quickstart/maskformer_panoptic_R18_quickstart.yaml",
    "mask2former": "configs/quickstart/mask2former_R18_quickstart.yaml",
    "mask2former_panoptic": "configs/quickstart/mask2former_panoptic_R18_quickstart.yaml",
}
ALL_OUTPUTS = ["MODEL.MASK_FORMER.TEST.INSTANCE_ON", "True", "MODEL.MASK_FORMER.TEST.OBJECT_MASK_THRESHOLD", "0.0",
               "MODEL.MASK_FORMER.TEST.OVERLAP_THRESHOLD", "0.3"]


def _model(name, *opts, seed=0):
    from segcore.engine import setup_cfg
    from tests.paths import REPO_ROOT

    import os

    cfg = setup_cfg(os.path.join(REPO_ROOT, CONFIGS[name]), TINY + list(opts))
    torch.manual_seed(seed)
    model = build_model(cfg).eval()
    with torch.no_grad():  # decisive masks of both signs, and queries that are rarely "no object"
        predictor = model.sem_seg_head.predictor
        predictor.mask_embed.layers[-1].weight.mul_(5.0)
        predictor.mask_embed.layers[-1].bias.normal_()
        predictor.class_embed.bias[-1] = -5.0
    return model


def _reference_outputs(model, inputs):
    """The original pipeline on the full head outputs (decoders not in final-predictions mode)."""
    with torch.no_grad():
        images = model.preprocess_image(inputs)
        head = model.sem_seg_head(model.backbone(images.tensor))
        masks = F.interpolate(head["pred_masks"], size=images.tensor.shape[-2:], mode="bilinear", align_corners=False)
        out = []
        for i, x in enumerate(inputs):
            size = images.image_sizes[i]
            out.append(postprocess_reference(
                head["pred_logits"][i], masks[i], size, x.get("height", size[0]), x.get("width", size[1]),
                semantic_on=model.semantic_on, panoptic_on=model.panoptic_on, instance_on=model.instance_on,
                resize_before_inference=model.sem_seg_postprocess_before_inference,
                thing_classes=model.thing_classes, object_mask_threshold=model.object_mask_threshold,
                overlap_threshold=model.overlap_threshold,
                mask_must_be_confident=model.panoptic_mask_must_be_confident, topk=model.test_topk_per_image))
    return head, out


def _inputs(sizes, out_sizes=None, seed=0):
    g = torch.Generator().manual_seed(seed)
    inputs = []
    for i, (h, w) in enumerate(sizes):
        x = {"image": torch.randint(0, 256, (3, h, w), dtype=torch.uint8, generator=g)}
        if out_sizes is not None:
            x["height"], x["width"] = out_sizes[i]
        inputs.append(x)
    return inputs


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
    model = _model(name, *opts)
    inputs = _inputs([(64, 96), (50, 64)], out_sizes)
    _, expected = _reference_outputs(model, inputs)
    with torch.no_grad():
        got = model(inputs)
    if "panoptic_seg" in expected[0]:  # the comparison is not vacuous
        assert all(len(e["panoptic_seg"][1]) and len(e["instances"]) for e in expected)
    for g, e in zip(got, expected):
        assert set(g) == set(e)
        torch.testing.assert_close(g["sem_seg"], e["sem_seg"], rtol=1e-5, atol=1e-5)
        if "panoptic_seg" in e:
            assert torch.equal(g["panoptic_seg"][0], e["panoptic_seg"][0])
            assert g["panoptic_seg"][1] == e["panoptic_seg"][1]
        if "instances" in e:
            _assert_instances_equal(g["instances"], e["instances"])


@pytest.mark.parametrize("name", ["maskformer", "mask2former"])
def test_final_predictions_only_returns_the_last_prediction(name):
    model = _model(name, "MODEL.MASK_FORMER.DEEP_SUPERVISION", "True")
    inputs = _inputs([(64, 96)])
    head, _ = _reference_outputs(model, inputs)
    assert head["aux_outputs"]  # called directly: everything, as the original
    with torch.no_grad():
        features = model.backbone(model.preprocess_image(inputs).tensor)
        with final_predictions_only(model.sem_seg_head):
            fast = model.sem_seg_head(features)
    assert set(fast) == {"pred_logits", "pred_masks"}
    torch.testing.assert_close(fast["pred_logits"], head["pred_logits"], rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast["pred_masks"], head["pred_masks"], rtol=1e-5, atol=1e-4)
    decoders = [m for m in model.modules() if hasattr(type(m), "final_predictions_only")]
    assert decoders and not any(m.final_predictions_only for m in decoders)  # restored


def test_final_predictions_only_restores_the_flag_on_errors():
    model = _model("mask2former")
    with pytest.raises(RuntimeError, match="boom"):
        with final_predictions_only(model):
            raise RuntimeError("boom")
    assert not model.sem_seg_head.predictor.final_predictions_only


def test_mask2former_attention_masks_from_low_resolution_masks_equal_the_resized_masks():
    """Masked attention reads the intermediate masks at its level's size: resizing the per-pixel
    embeddings before the dot product gives the masks that resizing afterwards gives."""
    import mask2former.modeling.transformer_decoder.masked_attention_decoder as decoder_module

    model = _model("mask2former")
    inputs = _inputs([(64, 96)])
    seen = {False: [], True: []}
    original = decoder_module.masked_attention_mask

    def recording(mask_logits, size, num_heads):
        resized = F.interpolate(mask_logits, size=tuple(size), mode="bilinear", align_corners=False)
        seen[recording.fast].append(resized)
        return original(mask_logits, size, num_heads)

    decoder_module.masked_attention_mask = recording
    try:
        with torch.no_grad():
            features = model.backbone(model.preprocess_image(inputs).tensor)
            recording.fast = False
            model.sem_seg_head(features)
            recording.fast = True
            with final_predictions_only(model.sem_seg_head):
                model.sem_seg_head(features)
    finally:
        decoder_module.masked_attention_mask = original
    # the full path also makes a mask after the last layer, which nothing reads
    assert len(seen[True]) == len(seen[False]) - 1
    for fast, full in zip(seen[True], seen[False]):
        torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
