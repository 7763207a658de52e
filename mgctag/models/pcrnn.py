"""Yang et al.'s parallel CNN + bidirectional GRU, as modified by the Vietnamese study."""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import ConvBlock2d, RecurrentSummary, conv_stack, probe_shape


@register(
    "pcrnn",
    frontend=FrontendSpec("logstft", sample_rate=22050, n_fft=1024, hop_length=512, n_frames=128),
    citation="Yang et al. 2020, Parallel Recurrent Convolutional Neural Networks Based Music Genre "
    "Classification Method for Mobile Devices (as modified by the Vietnamese study)",
    default_segments=10,
)
class ParallelCRNN(nn.Module):
    """A CNN branch and a bidirectional-GRU branch read the same 3-s STFT side by side.

    Citation: Yang et al. (2020), "Parallel Recurrent Convolutional Neural
    Networks Based Music Genre Classification Method for Mobile Devices", IEEE Access 8.

    CNN branch: five conv blocks (our choice: 16, 32, 64, 64, 64 channels, pools (2,2) x3 and
    (4,4) x2, keeping partial windows as Keras' 'same' pooling does) turn 513 bins x 128
    frames into 64 x 5 x 1 = the paper's 320-d vector. RNN branch: a max-pool over frequency
    (our choice: 4, so 513 bins -> 128) and one BiGRU of 128 per direction -> 256-d; the
    study dropped the original embedding layer. The 576-d concatenation goes through dropout
    (our choice: 0.5) to the logits. Segments are ~3 s, so scan votes over 10 per track.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        channels=(16, 32, 64, 64, 64),
        pools=((2, 2), (2, 2), (2, 2), (4, 4), (4, 4)),
        rnn_pool: int = 4,
        gru_units: int = 128,
        dropout: float = 0.5,
    ):
        super().__init__()
        self.cnn = nn.Sequential(conv_stack(ConvBlock2d, channels, pools=pools, ceil_mode=True), nn.Flatten())
        cnn_features = probe_shape(self.cnn, (1, n_features, n_frames))[0]
        self.rnn_pool = nn.MaxPool1d(rnn_pool)
        self.rnn = RecurrentSummary(n_features // rnn_pool, [gru_units], cell="gru", bidirectional=True)
        self.out = nn.Sequential(nn.Dropout(dropout), nn.Linear(cnn_features + self.rnn.out_features, n_classes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CNN branch: (B, F, T) -> (B, C * F' * T')
        conv = self.cnn(x.unsqueeze(1))
        # RNN branch: pool frequency per frame, then a BiGRU over time -> (B, 2 * units)
        seq = self.rnn_pool(x.transpose(1, 2))  # (B, T, F // rnn_pool)
        rec = self.rnn(seq)
        # Dense: concatenate both summaries -> logits
        return self.out(torch.cat([conv, rec], dim=1))
