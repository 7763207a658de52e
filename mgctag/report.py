"""Report writers, one class per format, looked up by the report file's extension.

A report is written to a temporary file beside its target and renamed into place only when the
run ends without an exception, so a reader never sees half a report: a failed or killed run
leaves the previous one as it was, and no temporary file.

A writer is `cls(f, settings)`, `.write(result)` per file and `.close(summary)` at the end;
`settings` (option name -> value) and `summary` (the run's one-line summary) are for formats
that show them (HTML); streaming formats ignore them.
"""

from __future__ import annotations

import csv
import json
import os
from collections.abc import Mapping
from pathlib import Path

from .errors import MgctagError
from .report_html import HtmlReport
from .result import FileResult

COLUMNS = (
    "path",
    "status",
    "genre",
    "confidence",
    "genres",
    "existing_genre",
    "model",
    "error",
    "note",
    "album",
    "decided_by",
    "windows",
)
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def row(result: FileResult) -> dict:
    """The report's fields for one file; `genres` stays a list of (genre, confidence)."""
    conf = result.confidence
    return {
        "path": os.fsdecode(result.path.absolute()),
        "status": result.status,
        "genre": result.genre,
        "confidence": None if conf is None else round(conf, 4),
        "genres": [(g, None if p is None else round(p, 4)) for g, p in result.genres],
        "existing_genre": result.existing_genre,
        "model": result.model,
        "error": result.error,
        "note": result.note,
        "album": result.album,
        "decided_by": result.decided_by,
        "windows": result.windows,
    }


def csv_safe(value) -> str:
    """Text a spreadsheet shows as text: cells that start like a formula get a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class CsvReport:
    extension = ".csv"

    def __init__(self, f, settings: Mapping[str, object]):
        self.w = csv.writer(f)
        self.w.writerow(COLUMNS)

    def write(self, result: FileResult) -> None:
        r = row(result)
        r["genres"] = "; ".join(g if p is None else f"{g}:{p:.3f}" for g, p in r["genres"])
        self.w.writerow([csv_safe(r[c]) for c in COLUMNS])

    def close(self, summary: str | None) -> None:
        pass


class JsonReport:
    """A JSON array of objects, streamed one file at a time."""

    extension = ".json"

    def __init__(self, f, settings: Mapping[str, object]):
        self.f, self.first = f, True
        f.write("[")

    def write(self, result: FileResult) -> None:
        r = row(result)
        r["genres"] = [{"genre": g, "confidence": p} for g, p in r["genres"]]
        self.f.write(("\n  " if self.first else ",\n  ") + json.dumps(r, ensure_ascii=False))
        self.first = False

    def close(self, summary: str | None) -> None:
        self.f.write("\n]\n")


WRITERS = {cls.extension: cls for cls in (CsvReport, JsonReport, HtmlReport)}


class Report:
    """Context manager: `with Report(path) as rep: rep.write(result)`; renamed into place on success.

    `settings` describes the run (option name -> value; `min_confidence` draws the HTML
    histogram's line) and `finish(summary, settings=...)` hands over the run's summary line and
    what the model decided, for the formats that show them.
    """

    def __init__(self, path: str | Path, *, settings: Mapping[str, object] | None = None):
        self.path = Path(path)
        try:
            self.cls = WRITERS[self.path.suffix.lower()]
        except KeyError:
            raise MgctagError(f"report must end in {', '.join(WRITERS)}: {self.path}") from None
        if not self.path.parent.is_dir():
            raise MgctagError(f"report folder does not exist: {self.path.parent}")
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")
        self.settings = dict(settings or {})
        self.summary: str | None = None

    def __enter__(self) -> "Report":
        try:
            # surrogateescape keeps non-UTF-8 file names byte-exact in the report
            self.f = open(self.tmp, "w", encoding="utf-8", errors="surrogateescape", newline="")
        except OSError as e:
            raise MgctagError(f"cannot write report {self.path}: {e.strerror}") from None
        self.writer = self.cls(self.f, self.settings)
        return self

    def write(self, result: FileResult) -> None:
        self.writer.write(result)

    def finish(self, summary: str, *, settings: Mapping[str, object] | None = None) -> None:
        """The run's one-line summary (counts, time, run id), for formats that have a header, and
        the settings known only once the model was loaded (its own minimum confidence, genres, ...),
        which replace those given at the start."""
        self.summary = summary
        self.settings.update(settings or {})

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:  # the run failed: the previous report stays as it was
            self._discard()
            return
        try:
            self.writer.close(self.summary)
            self.f.flush()
            os.fsync(self.f.fileno())
            self.f.close()
            os.replace(self.tmp, self.path)
        except BaseException as e:
            self._discard()
            if isinstance(e, OSError):
                raise MgctagError(f"cannot write report {self.path}: {e.strerror}") from None
            raise

    def _discard(self) -> None:
        self.f.close()
        self.tmp.unlink(missing_ok=True)
