"""torchvision's ImageNet architectures, untrained, with the class count of the dataset.

Weights are never downloaded (``weights=None``): every network here is trained by the workflow.
GoogLeNet is built without its auxiliary classifiers (``aux_logits=False``) so that it returns
plain logits like the others, and with torchvision's own initialisation (``init_weights=True``).
"""

from __future__ import annotations

from torch import nn
from torchvision import models as tvm

from prunedissect.models.registry import register_model


@register_model("resnet18")
def resnet18(*, num_classes: int) -> nn.Module:
    """torchvision ResNet-18 (11.7 M parameters at 1000 classes)."""
    return tvm.resnet18(weights=None, num_classes=num_classes)


@register_model("resnet50")
def resnet50(*, num_classes: int) -> nn.Module:
    """torchvision ResNet-50, the network Frankle & Bau dissect (units of ``layer4``)."""
    return tvm.resnet50(weights=None, num_classes=num_classes)


@register_model("googlenet")
def googlenet(*, num_classes: int) -> nn.Module:
    """torchvision GoogLeNet (Inception v1) without auxiliary heads, as von Rad & Seuffert use."""
    return tvm.googlenet(weights=None, num_classes=num_classes, aux_logits=False, init_weights=True)
