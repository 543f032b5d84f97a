"""Weight conversion shared by every family's converters (``tools/convert-*-to-d2.py``).

- :mod:`.d2_checkpoint`: writing converted weights as a Detectron2 ``.pkl`` or a ``.pth`` file;
- :mod:`.model_check`: building the model of a config and requiring converted weights to have
  exactly its names and shapes;
- :mod:`.torchvision_resnet`: torchvision ResNet names -> this project's ResNet
  (``tools/convert-torchvision-to-d2.py``).

The families' converters live with the families (``mask_former.convert``, ``mask2former.convert``,
``semask.convert``); this package imports no family.
"""
from .d2_checkpoint import d2_checkpoint_content, write_d2_checkpoint
from .model_check import build_model_of_config, check_names_and_shapes
from .torchvision_resnet import convert_torchvision_name, convert_torchvision_state_dict, load_torchvision_state_dict

__all__ = ["build_model_of_config", "check_names_and_shapes", "convert_torchvision_name",
           "convert_torchvision_state_dict", "d2_checkpoint_content", "load_torchvision_state_dict",
           "write_d2_checkpoint"]
