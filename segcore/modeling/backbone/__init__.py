from .backbone import Backbone
from .build import BACKBONE_REGISTRY, build_backbone
from .resnet import (BasicBlock, BasicStem, BottleneckBlock, DeepLabStem, ResNet, build_resnet_backbone,
                     build_resnet_deeplab_backbone)

__all__ = ["BACKBONE_REGISTRY", "Backbone", "BasicBlock", "BasicStem", "BottleneckBlock", "DeepLabStem",
           "ResNet", "build_backbone", "build_resnet_backbone", "build_resnet_deeplab_backbone"]
