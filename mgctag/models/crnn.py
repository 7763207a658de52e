"""Choi et al.'s CRNN: a 2-D CNN that collapses frequency, then a GRU over time."""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import ConvBlock2d, RecurrentSummary, conv_stack, probe_shape, to_sequence


@register(
    "crnn",
    frontend=FrontendSpec("logmel", sample_rate=12000, n_fft=512, hop_length=256, n_mels=96, n_frames=1366),
    citation="Choi, Fazekas, Sandler & Cho 2016, Convolutional Recurrent Neural Networks for Music "
    "Classification (as used by the Vietnamese traditional music study)",
    default_segments=5,
)
class ChoiCRNN(nn.Module):
    """Four conv blocks shrink a 29-s log-mel to a short sequence that a 2-layer GRU summarises.

    Citation: Choi, Fazekas, Sandler & Cho (2016), "Convolutional Recurrent Neural Networks for
    Music Classification", arXiv:1609.04243.

    The pools (2,2), (3,3), (4,4), (4,4) take 96 mel bins down to 1 (our choice, after Choi),
    leaving 1366 frames as 14 time steps of 128 features. Whatever frequency is left for other
    input sizes is folded into the features. Segments are ~29 s, so scan votes over 5 per track.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        channels=(64, 128, 128, 128),
        pools=((2, 2), (3, 3), (4, 4), (4, 4)),
        dropout: float = 0.1,
        gru_units: int = 32,
        gru_layers: int = 2,
    ):
        super().__init__()
        self.cnn = conv_stack(ConvBlock2d, channels, pools=pools, dropout=dropout)
        c, f, _ = probe_shape(self.cnn, (1, n_features, n_frames))
        self.rnn = RecurrentSummary(c * f, [gru_units] * gru_layers, cell="gru")
        self.out = nn.Linear(self.rnn.out_features, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CNN: (B, F, T) -> (B, C, F', T')
        x = self.cnn(x.unsqueeze(1))
        # RNN: time steps as a sequence, last hidden state as the summary
        x = self.rnn(to_sequence(x))
        # Dense: logits
        return self.out(x)
