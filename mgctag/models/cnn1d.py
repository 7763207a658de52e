"""Hoang's 1-D CNN: mel bins as channels, frames as the sequence (after Bian et al.)."""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import ConvBlock1d, conv_stack, probe_shape


@register(
    "cnn1d",
    frontend=FrontendSpec("logmel", sample_rate=22050, n_fft=2048, hop_length=1024, n_mels=128, n_frames=646),
    citation="Hoang, 1-D CNN over log-mel frames for music genre classification (after Bian et al.), FMA-medium",
    default_segments=5,
)
class Conv1dNet(nn.Module):
    """Five kernel-3 Conv1D layers over 30 s of log-mel frames, mel bins as channels.

    Citation: Hoang, 1-D convolutional network for music genre classification after Bian et
    al.; FMA-medium, 8 genres, 35%.

    The 128 mel bins are the input channels and the 646 frames of a 30-s clip (hop 1024;
    our choice of n_fft 2048) the sequence. Filters grow 128 -> 512 (our choice: 128, 256,
    256, 512, 512), convolutions keep the length ('same'), no BN or dropout, as described.
    646 frames pool to 5 steps, so 2560 features reach the linear layer. Segments are 30 s,
    so scan votes over 5 per track.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        channels=(128, 256, 256, 512, 512),
        pools=(4, 4, 4, 2, 1),
    ):
        super().__init__()
        self.cnn = nn.Sequential(
            conv_stack(ConvBlock1d, channels, pools=pools, in_ch=n_features, batch_norm=False), nn.Flatten()
        )
        self.out = nn.Linear(probe_shape(self.cnn, (n_features, n_frames))[0], n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CNN: mel bins as channels, convolved over frames -> (B, C * T')
        x = self.cnn(x)
        # Dense: logits
        return self.out(x)
