"""A complete classifier: front-end -> normalisation -> backbone -> logits.

The whole module is what a weights file stores, so a loaded model needs nothing else to
turn a batch of waveforms into logits. Softmax and voting live in `vote`, outside it.
"""

from __future__ import annotations

import torch
from torch import nn

from .frontends import Frontend, FrontendSpec
from .models import get_architecture


class Classifier(nn.Module):
    def __init__(
        self, arch: str, labels: list[str], frontend: FrontendSpec | None = None, arch_params: dict | None = None
    ):
        super().__init__()
        a = get_architecture(arch)
        self.arch = arch
        self.labels = list(labels)
        self.spec = frontend or a.frontend
        self.arch_params = {**a.params, **(arch_params or {})}
        self.frontend = Frontend(self.spec)
        n_feat = self.spec.n_features
        # Per-bin statistics from the training split; identity until set.
        self.register_buffer("norm_mean", torch.zeros(n_feat))
        self.register_buffer("norm_std", torch.ones(n_feat))
        self.backbone = a.build(len(self.labels), n_feat, self.spec.n_frames, **self.arch_params)

    @property
    def multilabel(self) -> bool:
        """Whether the backbone's classes are independent (sigmoid outputs), not exclusive (softmax)."""
        return bool(getattr(self.backbone, "multilabel", False))

    def features(self, wave: torch.Tensor) -> torch.Tensor:
        """(B, samples) -> normalised (B, n_features, n_frames)."""
        return self.normalise(self.frontend(wave))

    def normalise(self, feats: torch.Tensor) -> torch.Tensor:
        return (feats - self.norm_mean[:, None]) / self.norm_std[:, None]

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        return self.backbone(self.features(wave))

    def set_normalisation(self, mean, std) -> None:
        self.norm_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.norm_std.copy_(torch.clamp(torch.as_tensor(std, dtype=torch.float32), min=1e-5))
