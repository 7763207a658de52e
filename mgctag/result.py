"""What a scan says about one file: the value every report writer, the state and the CLI share."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

STATUSES = ("tagged", "would-tag", "kept", "unchanged", "skipped", "error")


@dataclass
class FileResult:
    path: Path
    status: str
    # top-k, best first; for "kept", the genres kept, with the model's confidence in each (None: it cannot name it)
    genres: list[tuple[str, float | None]] = field(default_factory=list)
    existing_genre: str = ""
    model: str = ""
    error: str = ""  # one-line reason when status is error
    note: str = ""  # why a file was skipped or kept
    album: str = ""  # the album it was decided with ("" when judged alone)
    decided_by: str = "track"  # track | album | album (user genre): mgctag.albums
    windows: int = 0  # windows heard (--segments auto stops when sure); 0 when none were

    @property
    def genre(self) -> str:
        return self.genres[0][0] if self.genres else ""

    @property
    def confidence(self) -> float | None:
        """The top genre's confidence (None when the model cannot name a genre that was kept)."""
        return self.genres[0][1] if self.genres else None


def printable(path: str | Path) -> str:
    """A file name as text for people, whatever its bytes: those that are not UTF-8 show as \\xNN."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")
