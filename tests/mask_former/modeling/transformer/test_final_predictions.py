"""final_predictions_only: the decoders return the last prediction only, computed as the full run computes it."""
import pytest
import torch
from torch.nn import functional as F

from mask_former.modeling.transformer import final_predictions_only
from tests.mask_former.tiny_models import random_inputs, reference_outputs, tiny_model


@pytest.mark.parametrize("name", ["maskformer", "mask2former"])
def test_final_predictions_only_returns_the_last_prediction(name):
    model = tiny_model(name, "MODEL.MASK_FORMER.DEEP_SUPERVISION", "True")
    inputs = random_inputs([(64, 96)])
    head, _ = reference_outputs(model, inputs)
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
    model = tiny_model("mask2former")
    with pytest.raises(RuntimeError, match="boom"):
        with final_predictions_only(model):
            raise RuntimeError("boom")
    assert not model.sem_seg_head.predictor.final_predictions_only


def test_mask2former_attention_masks_from_low_resolution_masks_equal_the_resized_masks():
    """Masked attention reads the intermediate masks at its level's size: resizing the per-pixel
    embeddings before the dot product gives the masks that resizing afterwards gives."""
    import mask2former.modeling.transformer_decoder.masked_attention_decoder as decoder_module

    model = tiny_model("mask2former")
    inputs = random_inputs([(64, 96)])
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
    assert len(seen[True]) == len(seen[False]) == model.sem_seg_head.predictor.num_layers
    for fast, full in zip(seen[True], seen[False]):
        torch.testing.assert_close(fast, full, rtol=1e-5, atol=1e-5)
