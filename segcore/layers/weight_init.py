"""Caffe2-style weight initializations used by Detectron2 heads."""
from torch import nn

__all__ = ["c2_xavier_fill", "c2_msra_fill"]


def c2_xavier_fill(module: nn.Module) -> None:
    """Kaiming-uniform with a=1 (Caffe2's XavierFill) for the weight, zeros for the bias."""
    nn.init.kaiming_uniform_(module.weight, a=1)
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)


def c2_msra_fill(module: nn.Module) -> None:
    """Kaiming-normal, fan_out, ReLU gain (Caffe2's MSRAFill) for the weight, zeros for the bias."""
    nn.init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
    if module.bias is not None:
        nn.init.constant_(module.bias, 0)
