"""Building blocks shared by the from-scratch architectures.

Each paper's model is composed from these, so that "conv + BN + ReLU + pool" means one
thing everywhere and the papers differ only where they really differ. Sizes that depend
on the input (flattened features, sequence widths) are measured with `probe_shape`
rather than written down, so any front-end shape builds.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "elu": nn.ELU}
CELLS = {"gru": nn.GRU, "lstm": nn.LSTM}


def _pair(x) -> tuple[int, int]:
    return (x, x) if isinstance(x, int) else tuple(x)


class ConvBlock2d(nn.Sequential):
    """Conv2d (same padding) -> BatchNorm -> activation -> max-pool -> dropout.

    Parameters
    ----------
    pool : int or (int, int)
        Max-pool size over (frequency, time); 1 means no pooling.
    pool_stride : int or (int, int), optional
        Defaults to `pool` (non-overlapping). An overlapping pool (kernel 3, stride 2) is
        padded to behave like Keras' ``padding='same'``: output = ceil(input / stride).
    ceil_mode : bool
        Keep the partial last window (Keras' 'same' pooling) instead of dropping it.

    Shapes: (B, in_ch, F, T) -> (B, out_ch, F', T').
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel=3,
        pool=2,
        pool_stride=None,
        ceil_mode: bool = False,
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        kernel, pool = _pair(kernel), _pair(pool)
        stride = _pair(pool_stride) if pool_stride is not None else pool
        layers = [nn.Conv2d(in_ch, out_ch, kernel, padding="same"), nn.BatchNorm2d(out_ch), ACTIVATIONS[activation]()]
        if pool != (1, 1):
            # Overlapping windows get a half-kernel of padding, which is Keras' 'same' size.
            padding = tuple(k // 2 if s < k else 0 for k, s in zip(pool, stride))
            layers.append(nn.MaxPool2d(pool, stride, padding=padding, ceil_mode=ceil_mode))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


class ConvBlock1d(nn.Sequential):
    """Conv1d (same padding) -> [BatchNorm] -> activation -> max-pool -> dropout.

    The 1-D variant convolves over time with the feature bins as channels.
    Shapes: (B, in_ch, T) -> (B, out_ch, T // pool).
    """

    def __init__(
        self,
        in_ch: int,
        out_ch: int,
        *,
        kernel: int = 3,
        pool: int = 1,
        batch_norm: bool = True,
        activation: str = "relu",
        dropout: float = 0.0,
    ):
        layers = [nn.Conv1d(in_ch, out_ch, kernel, padding="same")]
        if batch_norm:
            layers.append(nn.BatchNorm1d(out_ch))
        layers.append(ACTIVATIONS[activation]())
        if pool > 1:
            layers.append(nn.MaxPool1d(pool))
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        super().__init__(*layers)


def conv_stack(
    block: type[nn.Module], channels: Sequence[int], *, pools: Sequence, in_ch: int = 1, **options
) -> nn.Sequential:
    """One `block` (ConvBlock2d or ConvBlock1d) per (channels, pool) pair, chained from `in_ch`."""
    ins = [in_ch, *channels[:-1]]
    return nn.Sequential(*(block(i, o, pool=p, **options) for i, o, p in zip(ins, channels, pools, strict=True)))


class RecurrentSummary(nn.Module):
    """A stack of recurrent layers whose last hidden state summarises a sequence.

    Parameters
    ----------
    hidden : sequence of int
        Units per layer, bottom first; layers may differ in size (Liang: LSTM 256 -> 128).
    cell : {'gru', 'lstm'}
    bidirectional : bool
        The summary concatenates the forward and backward final states.

    Shapes: (B, T, input_size) -> (B, hidden[-1] * (2 if bidirectional else 1)).
    """

    def __init__(self, input_size: int, hidden: Sequence[int], *, cell: str = "gru", bidirectional: bool = False):
        super().__init__()
        dirs = 2 if bidirectional else 1
        sizes = [input_size] + [h * dirs for h in hidden[:-1]]
        self.layers = nn.ModuleList(
            CELLS[cell](i, h, batch_first=True, bidirectional=bidirectional) for i, h in zip(sizes, hidden)
        )
        self.out_features = hidden[-1] * dirs

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in self.layers:
            x, state = layer(x)
        h_n = state[0] if isinstance(state, tuple) else state  # LSTM returns (h_n, c_n)
        return h_n.transpose(0, 1).flatten(1)  # (dirs, B, H) -> (B, dirs * H)


def dense_head(in_features: int, n_classes: int, *, hidden: Sequence[int] = (), dropout: float = 0.0) -> nn.Sequential:
    """(Linear -> ReLU -> Dropout) per hidden width, then a Linear to the logits."""
    layers, width = [], in_features
    for h in hidden:
        layers += [nn.Linear(width, h), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout > 0 else [])
        width = h
    return nn.Sequential(*layers, nn.Linear(width, n_classes))


def to_sequence(x: torch.Tensor) -> torch.Tensor:
    """Feature maps (B, C, F, T) -> a time sequence (B, T, C * F) for a recurrent layer."""
    return x.permute(0, 3, 1, 2).flatten(2)


@torch.no_grad()
def probe_shape(module: nn.Module, shape: Sequence[int]) -> torch.Size:
    """Output shape of `module` for one zero input of `shape` (batch dim excluded).

    Runs in eval mode so BatchNorm statistics are left untouched.
    """
    was_training = module.training
    module.eval()
    try:
        return module(torch.zeros(1, *shape)).shape[1:]
    finally:
        module.train(was_training)


class FrozenTrunkHead(nn.Module):
    """A frozen pretrained trunk with a trainable head over its embedding (musicnn-head, efficientat-head).

    Subclasses load the trunk (a backbone with `embed` and `embed_dim`) and its licence, which a
    trained file carries. Train `head` only: `embed()` runs without gradients, so training caches
    embeddings once (train.Net). The trunk stays in eval mode (frozen batch-norm statistics)
    whatever `train()` says. `hidden` 0: a linear head; n: one ReLU layer of n units.
    The trunk normalises its own input, so Classifier's per-bin normalisation stays at identity.
    """

    normalises_input = True

    def __init__(self, trunk: nn.Module, licence: str, n_classes: int, *, hidden: int = 0, dropout: float = 0.3):
        super().__init__()
        self.trunk, self.licence = trunk, licence
        self.trunk.requires_grad_(False)
        dim = trunk.embed_dim
        if hidden:
            self.head = nn.Sequential(
                nn.Dropout(dropout),
                nn.Linear(dim, hidden),
                nn.ReLU(),
                nn.Dropout(dropout),
                nn.Linear(hidden, n_classes),
            )
        else:
            self.head = nn.Sequential(nn.Dropout(dropout), nn.Linear(dim, n_classes))
        self.trunk.eval()

    def train(self, mode: bool = True) -> "FrozenTrunkHead":
        super().train(mode)
        self.trunk.eval()
        return self

    @torch.no_grad()
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_features, T) -> (B, embed_dim), without gradients."""
        return self.trunk.embed(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """In place, for inference: each conv directly followed by a frozen batch norm in a Sequential
    becomes one conv with the norm's scale and shift in its weights (the norm an Identity).

    The same function up to float rounding (about 1e-6), one pass over each feature map fewer:
    EfficientAT mn04 ran 8% faster per window on a 2-core CPU. Only for eval mode: the state dict
    changes, so fold a copy, never a model that will be trained or saved.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    for child in module.children():
        fold_batchnorm(child)
    if isinstance(module, nn.Sequential):
        for i in range(len(module) - 1):
            conv, bn = module[i], module[i + 1]
            if (
                isinstance(conv, (nn.Conv1d, nn.Conv2d))
                and isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d))
                and bn.running_mean is not None
                and not conv.training
                and not bn.training
            ):
                module[i], module[i + 1] = fuse_conv_bn_eval(conv, bn), nn.Identity()
    return module
