"""Converting released weights for MaskFormer's backbones: :mod:`.swin_imagenet` reads the official
Swin Transformer ImageNet checkpoints (``tools/convert-pretrained-swin-model-to-d2.py``)."""
from .swin_imagenet import AUTHOR, load_swin_imagenet_state_dict

__all__ = ["AUTHOR", "load_swin_imagenet_state_dict"]
