"""The CIFAR-style ResNet-20 (He et al. 2016, section 4.2), as the lottery-ticket work uses it.

Three stages of three basic blocks with ``width``, ``2 * width`` and ``4 * width`` channels
(16/32/64 for the standard network, ~0.27 M weights; ``widths`` sets the three freely, for the
reduced networks of :mod:`prunedissect.models.reduced`), global average pooling and a linear
classifier. Shortcuts that change shape are a 1x1 strided convolution plus BatchNorm (He et al.'s
option B), as in facebookresearch/open_lth's ``cifar_resnet``; identity shortcuts otherwise.
Initialisation follows open_lth's defaults for this network: Kaiming-normal conv and linear
weights, BatchNorm scales uniform in [0, 1) and shifts zero.

Module names mirror torchvision's ResNets (``conv1``, ``bn1``, ``layer1`` .. ``layer3``, ``fc``),
so dissection addresses a stage as ``layer3`` for either family.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from prunedissect.models.registry import register_model


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with BatchNorm and a residual connection."""

    def __init__(self, in_channels: int, out_channels: int, *, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.shortcut: nn.Module
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Sequential(
                nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                nn.BatchNorm2d(out_channels),
            )
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """A CIFAR ResNet of depth ``6 * blocks_per_stage + 2`` (20 for three blocks per stage)."""

    def __init__(
        self,
        *,
        num_classes: int,
        width: int = 16,
        blocks_per_stage: int = 3,
        widths: Sequence[int] | None = None,
    ) -> None:
        super().__init__()
        stage_widths = (width, 2 * width, 4 * width) if widths is None else tuple(widths)
        if len(stage_widths) != 3 or min(stage_widths) < 1 or blocks_per_stage < 1:
            raise ValueError(
                f"widths must be three channel counts >= 1 and blocks_per_stage >= 1, got "
                f"{stage_widths} and {blocks_per_stage}"
            )
        self.conv1 = nn.Conv2d(3, stage_widths[0], 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(stage_widths[0])
        channels = stage_widths[0]
        stages = []
        for index, stage_width in enumerate(stage_widths):
            blocks = []
            for block in range(blocks_per_stage):
                stride = 2 if index > 0 and block == 0 else 1
                blocks.append(BasicBlock(channels, stage_width, stride=stride))
                channels = stage_width
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.fc = nn.Linear(channels, num_classes)
        self._initialise()

    def _initialise(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.kaiming_normal_(module.weight)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.uniform_(module.weight, 0.0, 1.0)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.layer3(self.layer2(self.layer1(out)))
        out = F.adaptive_avg_pool2d(out, 1).flatten(1)
        return self.fc(out)


@register_model("resnet20")
def resnet20(
    *, num_classes: int, width: int = 16, widths: Sequence[int] | None = None
) -> CifarResNet:
    """ResNet-20 for small inputs (any side >= 8 px); ``width`` = channels of the first stage
    (stages ``width``, ``2 * width``, ``4 * width``), or ``widths`` = the three stages' channels
    (a reduced network, :func:`prunedissect.models.reduced.reduced_kwargs`; overrides ``width``).
    """
    return CifarResNet(num_classes=num_classes, width=width, blocks_per_stage=3, widths=widths)
