"""Renaming and merging genre labels (`--genre-map`), for scan output and for training labels.

The file is plain text, one mapping a line, `source: Target`; `#` starts a comment. Several
sources may map to one target (a merge). A target of `-` drops the label. Keys match
case-insensitively and ignore surrounding spaces, so `Hip Hop`, `hip hop` and `HIP HOP` are one.

    hiphop: Hip-Hop
    rnb: R&B
    00s: -
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from .errors import MgctagError

DROP = "-"


@dataclass(frozen=True)
class GenreMap:
    table: dict[str, str | None] = field(default_factory=dict)  # normalised source -> target (None: drop)

    @staticmethod
    def key(label: str) -> str:
        return " ".join(label.split()).casefold()

    @classmethod
    def parse(cls, text: str, *, source: str = "genre map") -> "GenreMap":
        table: dict[str, str | None] = {}
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            src, sep, dst = line.partition(":")
            src, dst = src.strip().strip("\"'"), dst.strip().strip("\"'")
            if not sep or not src or not dst:
                raise MgctagError(f"{source}, line {n}: expected 'source: Target', got {line!r}")
            table[cls.key(src)] = None if dst == DROP else dst
        return cls(table)

    @classmethod
    def load(cls, path: str | Path) -> "GenreMap":
        try:
            text = Path(path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            raise MgctagError(f"cannot read genre map {path}: {e}") from None
        return cls.parse(text, source=str(path))

    def apply(self, label: str) -> str | None:
        """The mapped label, the label itself when unmapped, or None when it is dropped."""
        return self.table.get(self.key(label), label)

    def apply_scores(self, scored: list[tuple[str, float]]) -> list[tuple[str, float]]:
        """Map (label, score) pairs best first; merged labels add their scores, dropped ones vanish."""
        merged: dict[str, float] = {}
        for label, score in scored:
            target = self.apply(label)
            if target is not None:
                merged[target] = merged.get(target, 0.0) + score
        return sorted(merged.items(), key=lambda kv: -kv[1])
