"""Cheng et al.'s small CRNN on 3-s log-mel patches."""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import ConvBlock2d, RecurrentSummary, conv_stack, probe_shape, to_sequence


@register(
    "crnn-mfcc",
    frontend=FrontendSpec("logmel", sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128, n_frames=128),
    citation="Cheng et al. 2021, CRNN music genre classification on mel-spectrogram/MFCC input",
    default_segments=10,
)
class ChengCRNN(nn.Module):
    """Four 3x3 conv blocks (BN, LeakyReLU, 2x2 pool, dropout) on a 3-s log-mel, then one GRU.

    Citation: Cheng et al. (2021), convolutional recurrent network for music genre
    classification on mel-spectrogram / MFCC input (GTZAN, 43%).

    Four 2x2 pools take 128 mel bins x 128 frames to 8 x 8; the 8 time steps of 256 x 8
    features feed one recurrent layer of 128 units (our choice: GRU, dropout 0.25), whose
    last state gives the logits. Segments are ~3 s, so scan votes over 10 per track.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        channels=(32, 64, 128, 256),
        dropout: float = 0.25,
        rnn_units: int = 128,
        cell: str = "gru",
    ):
        super().__init__()
        self.cnn = conv_stack(
            ConvBlock2d, channels, pools=[2] * len(channels), activation="leaky_relu", dropout=dropout
        )
        c, f, _ = probe_shape(self.cnn, (1, n_features, n_frames))
        self.rnn = RecurrentSummary(c * f, [rnn_units], cell=cell)
        self.out = nn.Linear(self.rnn.out_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CNN: (B, F, T) -> (B, C, F / 16, T / 16)
        x = self.cnn(x.unsqueeze(1))
        # RNN: last state over the remaining time steps
        x = self.rnn(to_sequence(x))
        # Dense: logits
        return self.out(x)
