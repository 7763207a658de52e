"""Liang's CRNN: three conv blocks on a long MFCC sequence, then two stacked LSTMs."""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import ConvBlock2d, RecurrentSummary, conv_stack, dense_head, probe_shape, to_sequence


@register(
    "crnn-lstm",
    frontend=FrontendSpec("mfcc", sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128, n_mfcc=40, n_frames=1000),
    citation="Liang 2024, music genre classification with a CRNN (CNN + LSTM) on MFCC",
    default_segments=6,
)
class LiangCRNN(nn.Module):
    """Three conv blocks on 23 s of MFCC, then LSTM 256 -> LSTM 128 -> dense 64.

    Citation: Liang (2024), music genre classification with a convolutional recurrent neural
    network (CNN + LSTM) on MFCC features (GTZAN, ~72%).

    Input is 40 MFCC x 1000 frames (~23 s; our choice of 40 coefficients), standardised per
    coefficient by the Classifier. Three 2x2 pools leave 125 time steps of 256 x 5 features;
    the first LSTM returns all steps, the second its last one. Segments are ~23 s, so scan
    votes over 6 per track.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        channels=(64, 128, 256),
        lstm_units=(256, 128),
        dense: int = 64,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.cnn = conv_stack(ConvBlock2d, channels, pools=[2] * len(channels))
        c, f, _ = probe_shape(self.cnn, (1, n_features, n_frames))
        self.rnn = RecurrentSummary(c * f, lstm_units, cell="lstm")
        self.head = dense_head(self.rnn.out_features, n_classes, hidden=[dense], dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CNN: (B, F, T) -> (B, C, F / 8, T / 8)
        x = self.cnn(x.unsqueeze(1))
        # RNN: LSTM over all steps -> LSTM last step
        x = self.rnn(to_sequence(x))
        # Dense: 64 ReLU -> dropout -> logits
        return self.head(x)
