"""Renaming and merging genre labels (`--genre-map`), for scan output and for training labels.

The file is plain text, one mapping a line, `source: Target`; `#` starts a comment. Several
sources may map to one target (a merge). A target of `-` drops the label. Sources match any
spelling of the same genre (`mgctag.taxonomy`): `Hip Hop`, `hiphop`, `Hip-Hop` and AudioSet's
`Hip hop music` are one, so a map written for one model or data set works for the others.

    hiphop: Hip-Hop
    rnb: R&B
    00s: -
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import taxonomy
from .errors import MgctagError

DROP = "-"


@dataclass(frozen=True)
class GenreMap:
    table: dict[str, str | None] = field(default_factory=dict)  # key(source) -> target (None: drop)
    keep_unlisted: bool = True  # False: a label the table does not name is dropped (a preset)

    @staticmethod
    def key(label: str) -> str:
        return taxonomy.key(taxonomy.canonical(label))

    @classmethod
    def preset(cls, name: str, labels: list[str]) -> "GenreMap":
        """The `--genres` preset `name` (see taxonomy.PRESETS) for a model with these labels, or a
        comma-separated list of genres to keep (any the model has, non-genre classes included)."""
        if name in taxonomy.PRESETS:
            targets = taxonomy.preset_targets(name, labels)
        else:
            wanted = {cls.key(g): taxonomy.canonical(g) for g in name.split(",") if g.strip()}
            if not wanted:
                raise MgctagError(
                    f"--genres {name!r}: expected a preset ({', '.join(taxonomy.PRESETS)}) "
                    "or a comma-separated list of genres"
                )
            have = {cls.key(label) for label in labels}
            missing = [g for k, g in wanted.items() if k not in have]
            if missing:
                raise MgctagError(
                    f"--genres: the model cannot name {', '.join(missing)}"
                    + _suggest(missing, [taxonomy.canonical(label) for label in labels])
                )
            targets = {label: wanted.get(cls.key(label)) for label in labels}
        return cls({cls.key(label): target for label, target in targets.items()}, keep_unlisted=False)

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
        """The mapped label; an unlisted one in its canonical name (None for a preset); None when dropped."""
        k = self.key(label)
        if k in self.table:
            return self.table[k]
        return taxonomy.canonical(label) if self.keep_unlisted else None


def _suggest(missing: list[str], names: list[str]) -> str:
    """ "(did you mean Jazz?)" for names that look like a misspelling of ones the model has."""
    import difflib

    by_key = {taxonomy.key(n): n for n in names}
    near = [
        by_key[k] for g in missing for k in difflib.get_close_matches(taxonomy.key(g), list(by_key), n=2, cutoff=0.6)
    ]
    near = list(dict.fromkeys(near)) + [p for g in missing for p in difflib.get_close_matches(g, taxonomy.PRESETS, n=1)]
    return f" (did you mean {' or '.join(near)}?)" if near else f" (it names: {', '.join(names)})"
