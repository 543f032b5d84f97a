"""SeMask-FPN's losses: mmseg 0.x's cross-entropy (upsampled logits, mean over every pixel) and its
online hard-pixel mining."""
import pytest
import torch
import torch.nn.functional as F

from semask.modeling.fpn_losses import ohem_pixel_weights, per_pixel_cross_entropy_map, upsampled_cross_entropy


def test_the_mean_runs_over_all_pixels_ignored_ones_included():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 3, 5, requires_grad=True)
    targets = torch.randint(0, 4, (2, 6, 10))
    targets[0, :3] = 255
    loss = upsampled_cross_entropy(logits, targets, ignore_value=255)
    up = F.interpolate(logits, size=(6, 10), mode="bilinear", align_corners=False)
    labeled = F.cross_entropy(up, targets, ignore_index=255, reduction="sum")
    torch.testing.assert_close(loss, labeled / targets.numel())
    assert loss < F.cross_entropy(up, targets, ignore_index=255)  # not the labeled-pixel mean
    loss.backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_no_labeled_pixel_gives_zero():
    logits = torch.randn(1, 3, 2, 2, requires_grad=True)
    loss = upsampled_cross_entropy(logits, torch.full((1, 4, 4), 255), ignore_value=255)
    assert loss.item() == 0.0 and loss.requires_grad


def test_ohem_keeps_the_hardest_labeled_pixels_per_batch():
    losses = torch.tensor([[[5.0, 1.0, 3.0], [9.0, 2.0, 4.0]]])
    targets = torch.tensor([[[0, 0, 0], [255, 0, 0]]])
    weights = ohem_pixel_weights(losses, targets, ignore_value=255, min_kept=2)
    assert weights.tolist() == [[[1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]  # 9.0 is ignored
    # min_kept per image: two images keep twice as many
    two = ohem_pixel_weights(torch.cat([losses, losses]), torch.cat([targets, targets]), 255, min_kept=1)
    assert two.sum() == 2
    # more than the labeled pixels: all of them
    assert ohem_pixel_weights(losses, targets, 255, min_kept=100).tolist() == [[[1.0, 1.0, 1.0], [0.0, 1.0, 1.0]]]
    with pytest.raises(ValueError, match="min_kept"):
        ohem_pixel_weights(losses, targets, 255, min_kept=0)


def test_ohem_loss_sums_the_kept_pixels_over_all_pixels():
    torch.manual_seed(0)
    logits = torch.randn(1, 3, 4, 4)
    targets = torch.randint(0, 3, (1, 4, 4))
    pixel = per_pixel_cross_entropy_map(logits, targets, 255)
    loss = upsampled_cross_entropy(logits, targets, 255, ohem_min_kept=3)
    torch.testing.assert_close(loss, pixel.flatten().topk(3).values.sum() / 16)
    with pytest.raises(ValueError, match="do not agree"):
        per_pixel_cross_entropy_map(logits, targets[0], 255)
