"""The semantic-prior loss: per-pixel cross-entropy with the ignore label respected, on ground
truth padded to the batch."""
import pytest
import torch
import torch.nn.functional as F

from semask.modeling import pad_semantic_targets, semantic_prior_loss


def test_targets_are_padded_with_the_ignore_label():
    a = torch.tensor([[1, 2], [3, 4]])
    b = torch.zeros(3, 1, dtype=torch.uint8)
    out = pad_semantic_targets([a, b], (3, 4), ignore_value=255)
    assert out.dtype == torch.int64 and out.shape == (2, 3, 4)
    assert out[0].tolist() == [[1, 2, 255, 255], [3, 4, 255, 255], [255, 255, 255, 255]]
    assert out[1].tolist() == [[0, 255, 255, 255]] * 3
    with pytest.raises(ValueError, match="at most 3x4"):
        pad_semantic_targets([torch.zeros(4, 4, dtype=torch.long)], (3, 4), ignore_value=255)


def test_ignored_pixels_do_not_count():
    torch.manual_seed(0)
    logits = torch.randn(2, 4, 5, 6, requires_grad=True)
    targets = torch.randint(0, 4, (2, 5, 6))
    targets[0, :2] = 255
    loss = semantic_prior_loss(logits, targets, ignore_value=255)
    keep = targets != 255
    manual = -F.log_softmax(logits, 1).gather(1, targets.clamp(max=3)[:, None])[:, 0][keep].mean()
    torch.testing.assert_close(loss, manual)
    # changing the logits of ignored pixels changes nothing
    other = logits.detach().clone()
    other[0, :, :2] += 10.0
    torch.testing.assert_close(semantic_prior_loss(other, targets, ignore_value=255), loss.detach())
    # another ignore label
    targets[targets == 255] = 7
    torch.testing.assert_close(semantic_prior_loss(logits, targets, ignore_value=7), loss)


def test_all_ignored_gives_zero_with_a_graph():
    logits = torch.randn(1, 3, 4, 4, requires_grad=True)
    loss = semantic_prior_loss(logits, torch.full((1, 4, 4), 255), ignore_value=255)
    assert loss.item() == 0.0
    loss.backward()
    assert logits.grad is not None and not logits.grad.any()


def test_size_mismatch_is_an_error():
    with pytest.raises(ValueError, match="differ"):
        semantic_prior_loss(torch.zeros(1, 3, 4, 4), torch.zeros(1, 4, 5, dtype=torch.long), ignore_value=255)
