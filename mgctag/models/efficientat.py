"""EfficientAT's `mn` audio taggers: MobileNetV3 on log-mel, trained on AudioSet, and a head over them.

Schmid, Koutini & Widmer's EfficientAT (MIT licence) publishes MobileNetV3-Large networks at
width multipliers 0.1 ... 4.0 (mn01 ... mn40), trained on AudioSet's 527 classes by knowledge
distillation from a transformer. The modules below are laid out so that the state dict of an
official `*_as` checkpoint (`features.*`, `classifier.*`) loads unchanged: every submodule sits
where the authors' `models/mn` code (after torchvision's MobileNetV3) puts it. mgctag never
ships or downloads these weights itself: `mgctag models install` imports a checkpoint the user
fetched (mgctag/install.py), and `efficientat-head` trains a head over an installed one.
"""

from __future__ import annotations

import torch
from torch import nn

from ..frontends import FrontendSpec
from ..taxonomy import AUDIOSET_GENRE_INDICES
from . import register
from .blocks import FrozenTrunkHead

# The authors' input (models/preprocess.py, eval mode): 32 kHz, 1024-point STFT of 800-sample
# symmetric Hann windows every 320 samples (10 ms), 128 Kaldi mel bands up to 15 kHz (their
# fmax=None default: 16 kHz less half the 2 kHz augmentation range). 10 s clips: 1,000 frames.
EFFICIENTAT_FRONTEND = FrontendSpec(
    kind="kaldimel",
    sample_rate=32000,
    n_fft=1024,
    hop_length=320,
    n_frames=1000,
    n_mels=128,
    fmin=0.0,
    fmax=15000.0,
    top_db=None,
    win_length=800,
)
EFFICIENTAT_CITATION = (
    "Schmid, Koutini & Widmer 2023, Efficient large-scale audio tagging via transformer-to-CNN "
    "knowledge distillation (ICASSP); Howard et al. 2019, Searching for MobileNetV3"
)
EFFICIENTAT_SEGMENTS = 6  # ten-second windows voted per track (issue 10's measurement used six)

AUDIOSET_CLASSES = 527
BN_EPS = 1e-3  # the authors' BatchNorm2d(eps=0.001, momentum=0.01)

# MobileNetV3-Large (Howard et al. 2019, table 2), before the width multiplier:
# (kernel, expanded channels, output channels, squeeze-excitation, Hardswish, stride)
MOBILENETV3_LARGE = (
    (3, 16, 16, False, False, 1),
    (3, 64, 24, False, False, 2),
    (3, 72, 24, False, False, 1),
    (5, 72, 40, True, False, 2),
    (5, 120, 40, True, False, 1),
    (5, 120, 40, True, False, 1),
    (3, 240, 80, False, True, 2),
    (3, 200, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 184, 80, False, True, 1),
    (3, 480, 112, True, True, 1),
    (3, 672, 112, True, True, 1),
    (5, 672, 160, True, True, 2),
    (5, 960, 160, True, True, 1),
    (5, 960, 160, True, True, 1),
)
STEM_CHANNELS = 16  # the first conv's output, before the width multiplier
HEAD_CHANNELS = 1280  # the classifier's hidden layer, before the width multiplier
LAST_CONV_EXPANSION = 6  # the last 1x1 conv: 6 x the last block's channels (the embedding)
SE_REDUCTION = 4


def make_divisible(value: float, divisor: int = 8) -> int:
    """Round to the nearest multiple of `divisor`, never below it nor more than 10% down (torchvision's rule)."""
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn(
    c_in: int, c_out: int, kernel: int, *, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None
) -> nn.Sequential:
    """conv (no bias, 'same' padding for odd kernels) -> batch norm -> activation: indices 0, 1, 2 of the state dict."""
    layers = [
        nn.Conv2d(c_in, c_out, kernel, stride, (kernel - 1) // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out, eps=BN_EPS, momentum=0.01),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcitation(nn.Module):
    """Channel attention: mean over frequency and time -> fc1 -> ReLU -> fc2 -> sigmoid -> scale the channels."""

    def __init__(self, channels: int, squeezed: int):
        super().__init__()
        self.fc1 = nn.Linear(channels, squeezed)
        self.fc2 = nn.Linear(squeezed, channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scale = torch.sigmoid(self.fc2(torch.relu(self.fc1(x.mean(dim=(2, 3))))))
        return x * scale[:, :, None, None]


class ConcurrentSE(nn.Module):
    """The authors' wrapper for squeeze-excitation over several axes (`conc_se_layers`), combined by max.

    Their AudioSet models squeeze over channels only (se_dims='c'), so it holds one layer and
    the max over one output is that output; kept as a wrapper so the state dict names match.
    """

    def __init__(self, channels: int):
        super().__init__()
        self.conc_se_layers = nn.ModuleList([SqueezeExcitation(channels, make_divisible(channels // SE_REDUCTION))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [layer(x) for layer in self.conc_se_layers]
        return outs[0] if len(outs) == 1 else torch.stack(outs).amax(dim=0)


class InvertedResidual(nn.Module):
    """1x1 expand (left out when nothing expands) -> kxk depthwise (the stride) -> SE -> 1x1 project;
    residual when shapes allow."""

    def __init__(self, c_in: int, kernel: int, expanded: int, c_out: int, se: bool, hardswish: bool, stride: int):
        super().__init__()
        act = nn.Hardswish if hardswish else nn.ReLU
        layers: list[nn.Module] = []
        if expanded != c_in:
            layers.append(_conv_bn(c_in, expanded, 1, act=act))
        layers.append(_conv_bn(expanded, expanded, kernel, stride=stride, groups=expanded, act=act))
        if se:
            layers.append(ConcurrentSE(expanded))
        layers.append(_conv_bn(expanded, c_out, 1))
        self.block = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.block(x)
        return y + x if self.residual else y


def mobilenetv3_layout(width: float) -> list[tuple[int, int, int, int, bool, bool, int]]:
    """The 15 blocks at `width`: (in, kernel, expanded, out, se, hardswish, stride), channels rounded to 8."""
    blocks, c_in = [], make_divisible(STEM_CHANNELS * width)
    for kernel, expanded, c_out, se, hs, stride in MOBILENETV3_LARGE:
        c_out = make_divisible(c_out * width)
        blocks.append((c_in, kernel, make_divisible(expanded * width), c_out, se, hs, stride))
        c_in = c_out
    return blocks


# Windows per batch: on a 2-core AMD EPYC (torch 2.13, one thread) the network took 36, 30, 27,
# 35-44 and 55 ms per window at batches of 1, 4, 8, 16 and 64 (bench/stages.py): larger batches
# fall out of the caches, and each 10 s window's STFT alone is 4 MB.
EFFICIENTAT_BATCH = 8


@register(
    "efficientat",
    frontend=EFFICIENTAT_FRONTEND,
    citation=EFFICIENTAT_CITATION,
    default_segments=EFFICIENTAT_SEGMENTS,
    batch_size=EFFICIENTAT_BATCH,
    summary="EfficientAT MobileNetV3 AudioSet tagger (install with `mgctag models install`), its genre classes",
)
class EfficientAT(nn.Module):
    """EfficientAT `mn`: MobileNetV3-Large on a 1-channel log-mel, 527 multi-label AudioSet logits.

    Params: `width` (the multiplier: 0.4 for mn04, 1.0 for mn10, ...), `tag_indices` (which of
    the `n_tags` logits are the model's labels, in label order; default AudioSet's 50 music-genre
    classes), `n_tags` (the checkpoint's classes), `dropout` (before the last layer, training only).
    """

    multilabel = True  # AudioSet's classes are independent: sigmoid, not softmax
    normalises_input = True  # the front-end's fixed (x + 4.5) / 5 is the normalisation it was trained with

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        width: float = 0.4,
        tag_indices: list[int] | tuple[int, ...] = AUDIOSET_GENRE_INDICES,
        n_tags: int = AUDIOSET_CLASSES,
        dropout: float = 0.2,
    ):
        super().__init__()
        if len(tag_indices) != n_classes:
            raise ValueError(f"efficientat: {n_classes} labels but {len(tag_indices)} tag indices")
        if any(not 0 <= i < n_tags for i in tag_indices):
            raise ValueError(f"efficientat: tag indices must lie in 0..{n_tags - 1}")
        blocks = mobilenetv3_layout(width)
        stem = blocks[0][0]
        self.embed_dim = LAST_CONV_EXPANSION * blocks[-1][3]
        self.features = nn.Sequential(
            _conv_bn(1, stem, 3, stride=2, act=nn.Hardswish),
            *(InvertedResidual(*b) for b in blocks),
            _conv_bn(blocks[-1][3], self.embed_dim, 1, act=nn.Hardswish),
        )
        hidden = make_divisible(HEAD_CHANNELS * width)
        self.classifier = nn.Sequential(
            nn.AdaptiveAvgPool2d(1),
            nn.Flatten(1),  # 0, 1: the embedding
            nn.Linear(self.embed_dim, hidden),
            nn.Hardswish(),
            nn.Dropout(dropout),
            nn.Linear(hidden, n_tags),
        )
        self.register_buffer("tag_index", torch.tensor(list(tag_indices), dtype=torch.long), persistent=False)

    def tag_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, n_tags): every AudioSet logit (their sigmoid is the tagger's output)."""
        return self.classifier(self.features(x.unsqueeze(1)))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, embed_dim): the last feature map averaged over frequency and time (384-d for mn04)."""
        return self.classifier[:2](self.features(x.unsqueeze(1)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.tag_logits(x).index_select(1, self.tag_index)


@register(
    "efficientat-head",
    frontend=EFFICIENTAT_FRONTEND,
    citation=EFFICIENTAT_CITATION,
    default_segments=EFFICIENTAT_SEGMENTS,
    batch_size=EFFICIENTAT_BATCH,
    summary="frozen installed EfficientAT AudioSet trunk + a small trainable genre head",
)
class EfficientATHead(FrozenTrunkHead):
    """A frozen installed EfficientAT trunk with a trainable softmax head over its pooled embedding.

    The trunk is the installed weights named by `trunk` (`mgctag models install` puts them in
    the user data folder); it must be installed to train a head and to load a trained one. The
    head's classes are exclusive (one genre per track, as the other trained models), unlike the
    trunk's own multi-label AudioSet outputs. See FrozenTrunkHead for training.
    Params: `trunk` (installed weights name), `hidden` (0: linear head; n: one ReLU layer of n).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        trunk: str = "efficientat-mn04",
        hidden: int = 0,
        dropout: float = 0.3,
    ):
        super().__init__(*load_trunk(trunk, n_features, n_frames), n_classes, hidden=hidden, dropout=dropout)


def load_trunk(name: str, n_features: int, n_frames: int) -> tuple[EfficientAT, str]:
    """The EfficientAT backbone of installed weights `name`, checked to share EfficientAT's front-end,
    and its licence."""
    from ..errors import WeightsError
    from ..weights import installed, load

    path = installed().get(name)
    if path is None:
        raise WeightsError(
            f"efficientat-head needs the AudioSet model {name}, which is not installed: run "
            f"`mgctag models install {name}` (or add --from FILE for a checkpoint you downloaded)"
        )
    model, meta = load(path)
    if meta.arch != "efficientat" or FrontendSpec.from_dict(meta.frontend) != EFFICIENTAT_FRONTEND:
        raise WeightsError(f"efficientat-head: {path.name} is not an EfficientAT model with EfficientAT's front-end")
    if (n_features, n_frames) != (EFFICIENTAT_FRONTEND.n_features, EFFICIENTAT_FRONTEND.n_frames):
        raise WeightsError(
            f"efficientat-head: needs {EFFICIENTAT_FRONTEND.n_features} x {EFFICIENTAT_FRONTEND.n_frames} input"
        )
    return model.backbone, meta.licence
