"""Khamees et al.'s three GTZAN models on 3-s MFCC segments: a CNN, an LSTM and an MLP.

One paper, one front-end: 13 MFCC at 22.05 kHz (n_fft 2048, hop 512), 130 frames per
3-s segment, i.e. ten segments per 30-s clip. Segments are short, so scan votes over 10.
"""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import ConvBlock2d, RecurrentSummary, conv_stack, dense_head, probe_shape

MFCC_13 = FrontendSpec("mfcc", sample_rate=22050, n_fft=2048, hop_length=512, n_mels=128, n_mfcc=13, n_frames=130)
CITATION = "Khamees et al. 2021, classifying audio music genres with CNN, RNN-LSTM and MLP on MFCC (GTZAN)"


@register("cnn", frontend=MFCC_13, citation=CITATION, default_segments=10)
class KhameesCNN(nn.Module):
    """Three 32-filter 3x3 conv blocks with overlapping max-pools and BN on 3 s of MFCC, dense 64.

    Citation: Khamees et al. (2021), music genre classification with CNN, RNN-LSTM and MLP
    models on MFCC; GTZAN, 74.0% segment-level test accuracy.

    Each block is the shared conv -> BN -> ReLU -> pool (our choice of order; the paper pools
    before BN). The pools are padded like Keras' 'same' so 13 x 130 becomes 2 x 17, and
    convolutions keep their size (our choice: 'valid' 3x3 convs would run out of MFCC rows).
    Dropout 0.3 after the dense layer (our choice).

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        channels=(32, 32, 32),
        dense: int = 64,
        dropout: float = 0.3,
    ):
        super().__init__()
        pools = [3] * len(channels)
        self.cnn = nn.Sequential(conv_stack(ConvBlock2d, channels, pools=pools, pool_stride=2), nn.Flatten())
        flat = probe_shape(self.cnn, (1, n_features, n_frames))[0]
        self.head = dense_head(flat, n_classes, hidden=[dense], dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # CNN: (B, F, T) -> (B, C * F' * T')
        x = self.cnn(x.unsqueeze(1))
        # Dense: 64 ReLU -> dropout -> logits
        return self.head(x)


@register("lstm", frontend=MFCC_13, citation=CITATION, default_segments=10)
class KhameesLSTM(nn.Module):
    """Two 64-unit LSTM layers over 3 s of MFCC frames, last step -> dense 64.

    Citation: Khamees et al. (2021), music genre classification with CNN, RNN-LSTM and MLP
    models on MFCC; GTZAN, 63.4% test accuracy.

    Units 64 per layer and dropout 0.3 are our choices.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        lstm_units=(64, 64),
        dense: int = 64,
        dropout: float = 0.3,
    ):
        super().__init__()
        self.rnn = RecurrentSummary(n_features, lstm_units, cell="lstm")
        self.head = dense_head(self.rnn.out_features, n_classes, hidden=[dense], dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # RNN: frames as the sequence, coefficients as the features
        x = self.rnn(x.transpose(1, 2))
        # Dense: 64 ReLU -> dropout -> logits
        return self.head(x)


@register("mlp", frontend=MFCC_13, citation=CITATION, default_segments=10)
class KhameesMLP(nn.Module):
    """Dense 512-256-64 with ReLU, dropout and an L2 penalty on a flattened 3-s MFCC segment.

    Citation: Khamees et al. (2021), music genre classification with CNN, RNN-LSTM and MLP
    models on MFCC; GTZAN, 58.9% (60.6% regularised).

    This is the regularised variant: dropout 0.3 after each hidden layer and an L2 penalty
    on the dense weights (our choices of width and rates). The penalty is Keras' kernel
    regulariser, ``l2 * sum(W ** 2)``; the training loop adds `penalty()` to the loss.

    Shapes: (B, n_features, n_frames) -> logits (B, n_classes).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        hidden=(512, 256, 64),
        dropout: float = 0.3,
        l2: float = 1e-3,
    ):
        super().__init__()
        self.l2 = l2
        self.head = dense_head(n_features * n_frames, n_classes, hidden=hidden, dropout=dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # Dense: flatten (B, F, T) -> hidden layers -> logits
        return self.head(x.flatten(1))

    def penalty(self) -> torch.Tensor:
        """The L2 term to add to the training loss (kernels only, not biases)."""
        return self.l2 * sum(m.weight.square().sum() for m in self.head if isinstance(m, nn.Linear))
