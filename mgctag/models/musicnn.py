"""musicnn in torch: the pretrained real-music tagger, and a trainable head over its embedding.

Pons & Serra's musicnn (MTG-UPF, ISC licence) was trained on the Million Song Dataset and
MagnaTagATune; `tools/convert_musicnn.py` turns the TensorFlow checkpoints of the
`musicnn==0.1.0` wheel into ``weights/musicnn-{msd,mtt}.safetensors``. Every layer below
mirrors one layer of the reference ``musicnn/models.py`` so the converted weights mean the
same thing; the comments name the TensorFlow conventions reproduced (padding, layout, order).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..frontends import FrontendSpec
from . import register
from .blocks import FrozenTrunkHead

# tf.compat.v1.layers.batch_normalization's default epsilon (torch's default is 1e-5).
TF_BN_EPS = 1e-3

# musicnn's input: librosa.feature.melspectrogram(sr=16000, n_fft=512, hop=256, n_mels=96)
# cast to float16, then log10(1 + 10000 x); 187 frames = 3 s patches.
# center=False: the reference computes one centred mel over the whole track and cuts
# patches from it, while scan feeds each patch's waveform on its own. With centred frames
# every patch would be zero-padded at both ends, so its edge frames would differ from the
# reference's; uncentred frames over (187 - 1) * 256 + 512 samples are exactly the
# reference's frames for every patch whose window lies inside the track (the parity test
# checks this against musicnn's own extractor).
MUSICNN_FRONTEND = FrontendSpec(
    kind="log10mel",
    sample_rate=16000,
    n_fft=512,
    hop_length=256,
    n_frames=187,
    n_mels=96,
    top_db=None,
    fp16_mel=True,
    center=False,
)
MUSICNN_CITATION = (
    "Pons & Serra 2019, musicnn: pre-trained convolutional neural networks for music audio "
    "tagging (ISMIR LBD); Pons et al. 2018, End-to-end learning for music audio tagging at scale"
)


def _bn(channels: int) -> nn.BatchNorm1d:
    return nn.BatchNorm1d(channels, eps=TF_BN_EPS)


def _pad_same(x: torch.Tensor, k: int) -> torch.Tensor:
    """TensorFlow 'SAME' padding of the last axis: the odd sample of an even kernel goes after."""
    return F.pad(x, ((k - 1) // 2, k // 2))


class _FrequencyMaxBlock(nn.Module):
    """conv -> ReLU -> batch norm -> max over all frequencies (the reference's timbral/tempo block).

    Input (B, 1, n_mels, T) -> (B, filters, T). `padded_time` says how the time axis is padded
    before the conv: 'valid-3' (the reference's explicit 3+3 pad then VALID, timbral filters)
    or 'same' (TF SAME, temporal filters).
    """

    def __init__(self, filters: int, freq: int, time: int, padded_time: str):
        super().__init__()
        self.time, self.padded_time = time, padded_time
        self.conv = nn.Conv2d(1, filters, (freq, time))
        self.bn = nn.BatchNorm2d(filters, eps=TF_BN_EPS)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.pad(x, (3, 3)) if self.padded_time == "valid-3" else _pad_same(x, self.time)
        if self.bn.training or self.bn.running_mean is None:  # batch statistics: the literal order
            return self.bn(F.relu(self.conv(x))).amax(dim=2)
        return self._pooled_eval(x)

    def _pooled_eval(self, x: torch.Tensor) -> torch.Tensor:
        """The same values, with ReLU and the frozen batch norm applied after the max.

        With running statistics the batch norm is a per-channel affine map whose scale has
        the sign of its weight; ReLU then that map is monotone, so the max over frequency
        comes from the conv's max (scale >= 0) or min (scale < 0). Negating a channel's conv
        weights and bias gives exactly -z, so one conv and one max cover both cases, and the
        full-size (B, filters, F, T) map is read once instead of three times.
        """
        flip = torch.where(self.bn.weight < 0, -1.0, 1.0).to(self.conv.weight.dtype)
        z = F.conv2d(x, self.conv.weight * flip[:, None, None, None], self.conv.bias * flip)
        picked = z.amax(dim=2) * flip.to(z.dtype)[:, None]
        return self.bn(F.relu(picked).unsqueeze(2)).squeeze(2)


class MusicallyMotivatedFrontend(nn.Module):
    """Vertical (timbral) and horizontal (temporal) filters over the log-mel, pooled over frequency.

    Filters per the reference '7774timbraltemporal' front-end with num_filt 1.6: two timbral
    convs 7 frames x 38 / 67 bands (204 maps each) and three temporal convs 128 / 64 / 32
    frames x 1 band (51 maps each). (B, n_mels, T) -> (B, 561, T).
    """

    def __init__(self, n_mels: int = 96, num_filt: float = 1.6):
        super().__init__()
        self.input_bn = nn.BatchNorm2d(1, eps=TF_BN_EPS)
        timbral, temporal = int(num_filt * 128), int(num_filt * 32)
        self.timbral = nn.ModuleList(_FrequencyMaxBlock(timbral, int(r * n_mels), 7, "valid-3") for r in (0.4, 0.7))
        self.temporal = nn.ModuleList(_FrequencyMaxBlock(temporal, 1, k, "same") for k in (128, 64, 32))
        self.out_channels = 2 * timbral + 3 * temporal

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.input_bn(x.unsqueeze(1))
        return torch.cat([block(x) for block in (*self.timbral, *self.temporal)], dim=1)


class DenseMidend(nn.Module):
    """Three 7-frame convs over all channels, the last two residual; outputs every stage stacked.

    The reference's conv2d with kernel [7, channels] over a (T, channels, 1) map is a 1-D conv
    over time; conv -> ReLU -> batch norm, as there. (B, C, T) -> (B, C + 3 * filters, T).
    """

    def __init__(self, in_channels: int, filters: int = 64):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv1d(c, filters, 7, padding=3) for c in (in_channels, filters, filters))
        self.bns = nn.ModuleList(_bn(filters) for _ in range(3))
        self.out_channels = in_channels + 3 * filters

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [x]
        h = self.bns[0](F.relu(self.convs[0](x)))
        outs.append(h)
        for conv, bn in zip(self.convs[1:], self.bns[1:]):
            h = bn(F.relu(conv(h))) + h
            outs.append(h)
        return torch.cat(outs, dim=1)


class PoolingBackend(nn.Module):
    """Max and mean over time -> batch norm -> dense ReLU -> batch norm -> dense tag logits."""

    def __init__(self, in_channels: int, units: int = 200, n_tags: int = 50):
        super().__init__()
        self.pool_bn = _bn(2 * in_channels)
        self.dense = nn.Linear(2 * in_channels, units)
        self.dense_bn = _bn(units)
        self.out = nn.Linear(units, n_tags)
        self.dropout = nn.Dropout(0.5)

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, T) -> (B, 2C), normalised as the dense layer sees it.

        The reference stacks max and mean as (C, 2) and flattens, so the two alternate per
        channel: [max_0, mean_0, max_1, mean_1, ...].
        """
        stats = torch.stack([x.amax(dim=2), x.mean(dim=2)], dim=2).flatten(1)
        return self.pool_bn(stats)

    def penultimate(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.dense_bn(F.relu(self.dense(self.dropout(pooled))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.dropout(self.penultimate(self.pooled(x))))


# Scan batches of 8 windows: musicnn's front-end activations are large; on 20 gtzan-mini clips
# (2-core CPU, bench/RESULTS.md) 64 windows a batch peaked at 1,460 MiB in the main process and 8 at
# 481 MiB, as fast (18.5 against 17.9 s) and with the same answers.
MUSICNN_BATCH = 8


@register(
    "musicnn",
    frontend=MUSICNN_FRONTEND,
    citation=MUSICNN_CITATION,
    batch_size=MUSICNN_BATCH,
    summary="musicnn tagger pretrained on real music (MSD / MTT), genre tags merged by a genre map",
)
class Musicnn(nn.Module):
    """musicnn: musically motivated CNN front-end, dense residual mid-end, temporal-pooling back-end.

    Params: `tags` (the tag names the back-end predicts), `genre_groups` (genre -> indices of
    its member tags, in label order; empty means the labels are the tags themselves),
    `filters_midend`, `units_backend`.
    """

    # The input batch norm is part of the pretrained model: Classifier's per-bin normalisation
    # must stay at identity (training code: do not call set_normalisation for these backbones).
    normalises_input = True

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        tags: list[str] | tuple = (),
        genre_groups: dict[str, list[int]] | None = None,
        filters_midend: int = 64,
        units_backend: int = 200,
    ):
        super().__init__()
        n_tags = len(tags) or n_classes
        self.tags = list(tags)
        self.frontend = MusicallyMotivatedFrontend(n_features)
        self.midend = DenseMidend(self.frontend.out_channels, filters_midend)
        self.backend = PoolingBackend(self.midend.out_channels, units_backend, n_tags)
        self.embed_dim = units_backend
        groups = genre_groups or {}
        if groups and len(groups) != n_classes:
            raise ValueError(f"musicnn: {len(groups)} genre groups for {n_classes} labels")
        if not groups and n_tags != n_classes:
            raise ValueError(f"musicnn: {n_classes} labels but {n_tags} tags and no genre groups")
        mask = torch.zeros(len(groups), n_tags, dtype=torch.bool)
        for row, members in enumerate(groups.values()):
            mask[row, list(members)] = True
        if groups and not mask.any(dim=1).all():
            raise ValueError("musicnn: every genre group needs at least one tag")
        self.register_buffer("genre_mask", mask, persistent=False)

    def _trunk(self, x: torch.Tensor) -> torch.Tensor:
        return self.midend(self.frontend(x))

    def tag_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, n_tags); their sigmoid is musicnn's taggram."""
        return self.backend(self._trunk(x))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """(B, n_mels, T) -> (B, embed_dim): the batch-normalised penultimate layer (200 units).

        Chosen over the 1506-d pooled statistics the dense layer reads: a linear probe on
        gtzan-mini scored the same or slightly better (10-fold CV 0.95 vs 0.93-0.94, within
        noise on 100 clips) with 7.5x fewer inputs to cache and fit; see weights/README.md.
        """
        return self.backend.penultimate(self.backend.pooled(self._trunk(x)))

    def genre_logits(self, tag_logits: torch.Tensor) -> torch.Tensor:
        """(B, n_tags) -> (B, n_genres): each genre scores as its best member tag."""
        if not len(self.genre_mask):
            return tag_logits
        masked = tag_logits.unsqueeze(1).masked_fill(~self.genre_mask, float("-inf"))
        return masked.amax(dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.genre_logits(self.tag_logits(x))


@register(
    "musicnn-head",
    frontend=MUSICNN_FRONTEND,
    citation=MUSICNN_CITATION,
    batch_size=MUSICNN_BATCH,
    summary="frozen musicnn-msd trunk + a small trainable genre head",
)
class MusicnnHead(FrozenTrunkHead):
    """A frozen pretrained musicnn trunk with a trainable head over its penultimate embedding.

    The trunk's weights come from the shipped weights file named by `trunk` when the model is
    built; a trained file stores trunk and head together. See FrozenTrunkHead for training.
    Params: `trunk` (shipped weights name), `hidden` (0: linear head; n: one ReLU layer of n).
    """

    def __init__(
        self,
        n_classes: int,
        n_features: int,
        n_frames: int,
        *,
        trunk: str = "musicnn-msd",
        hidden: int = 0,
        dropout: float = 0.3,
    ):
        super().__init__(*load_trunk(trunk, n_features, n_frames), n_classes, hidden=hidden, dropout=dropout)


def load_trunk(name: str, n_features: int, n_frames: int) -> tuple[Musicnn, str]:
    """The Musicnn backbone of a shipped weights file, checked to share musicnn's front-end, and its licence."""
    from ..errors import WeightsError
    from ..weights import SUFFIX, load, shipped_dir

    path = shipped_dir() / f"{name}{SUFFIX}"
    if not path.is_file():
        raise WeightsError(f"musicnn-head: shipped trunk weights {path.name} not found")
    model, meta = load(path)
    if meta.arch != "musicnn" or FrontendSpec.from_dict(meta.frontend) != MUSICNN_FRONTEND:
        raise WeightsError(f"musicnn-head: {path.name} is not a musicnn model with musicnn's front-end")
    if (n_features, n_frames) != (MUSICNN_FRONTEND.n_features, MUSICNN_FRONTEND.n_frames):
        raise WeightsError(f"musicnn-head: needs {MUSICNN_FRONTEND.n_features} x {MUSICNN_FRONTEND.n_frames} input")
    return model.backbone, meta.licence


def reference_patches(wave: np.ndarray, spec: FrontendSpec = MUSICNN_FRONTEND) -> np.ndarray:
    """The waveforms of the patches musicnn's own extractor tags, cut for our uncentred front-end.

    The reference takes one centred (zero-padded) mel of the whole track and cuts back-to-back
    187-frame patches; patch k's frames read samples from 187k * hop - n_fft / 2 on. Used to
    check parity (the converter and tests), not by scan. (samples,) -> (patches, segment_samples).
    """
    half = spec.n_fft // 2
    padded = np.concatenate([np.zeros(half, np.float32), np.asarray(wave, np.float32), np.zeros(half, np.float32)])
    n_frames_total = 1 + len(wave) // spec.hop_length
    starts = range(0, n_frames_total - spec.n_frames + 1, spec.n_frames)
    return np.stack([padded[s * spec.hop_length : s * spec.hop_length + spec.segment_samples] for s in starts])
