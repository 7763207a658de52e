"""Report writers, one class per format, looked up by the report file's extension.

A report is written to a temporary file beside its target and renamed into place when the
run ends, so a reader never sees half a report (and a killed run leaves the old one).
"""
from __future__ import annotations

import csv
import json
import os
from pathlib import Path

from .errors import MgctagError
from .result import FileResult

COLUMNS = ("path", "status", "genre", "confidence", "genres", "existing_genre", "model", "error", "note")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def row(result: FileResult) -> dict:
    """The report's fields for one file; `genres` stays a list of (genre, confidence)."""
    conf = result.confidence
    return {
        "path": os.fsdecode(result.path.absolute()),
        "status": result.status,
        "genre": result.genre,
        "confidence": None if conf is None else round(conf, 4),
        "genres": [(g, round(p, 4)) for g, p in result.genres],
        "existing_genre": result.existing_genre,
        "model": result.model,
        "error": result.error,
        "note": result.note,
    }


def csv_safe(value) -> str:
    """Text a spreadsheet shows as text: cells that start like a formula get a leading quote."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(FORMULA_START) else text


class CsvReport:
    extension = ".csv"

    def __init__(self, f):
        self.w = csv.writer(f)
        self.w.writerow(COLUMNS)

    def write(self, result: FileResult) -> None:
        r = row(result)
        r["genres"] = "; ".join(f"{g}:{p:.3f}" for g, p in r["genres"])
        self.w.writerow([csv_safe(r[c]) for c in COLUMNS])

    def close(self) -> None:
        pass


class JsonReport:
    """A JSON array of objects, streamed one file at a time."""
    extension = ".json"

    def __init__(self, f):
        self.f, self.first = f, True
        f.write("[")

    def write(self, result: FileResult) -> None:
        r = row(result)
        r["genres"] = [{"genre": g, "confidence": p} for g, p in r["genres"]]
        self.f.write(("\n  " if self.first else ",\n  ") + json.dumps(r, ensure_ascii=False))
        self.first = False

    def close(self) -> None:
        self.f.write("\n]\n")


WRITERS = {cls.extension: cls for cls in (CsvReport, JsonReport)}


class Report:
    """Context manager: `with Report(path) as rep: rep.write(result)`; renamed into place on exit."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        try:
            self.cls = WRITERS[self.path.suffix.lower()]
        except KeyError:
            raise MgctagError(f"report must end in {' or '.join(WRITERS)}: {self.path}") from None
        if not self.path.parent.is_dir():
            raise MgctagError(f"report folder does not exist: {self.path.parent}")
        self.tmp = self.path.with_name(f".{self.path.name}.tmp")

    def __enter__(self) -> "Report":
        # surrogateescape keeps non-UTF-8 file names byte-exact in the report
        self.f = open(self.tmp, "w", encoding="utf-8", errors="surrogateescape", newline="")
        self.writer = self.cls(self.f)
        return self

    def write(self, result: FileResult) -> None:
        self.writer.write(result)

    def __exit__(self, *exc) -> None:
        self.writer.close()
        self.f.flush()
        os.fsync(self.f.fileno())
        self.f.close()
        os.replace(self.tmp, self.path)
