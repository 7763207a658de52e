"""The README's "What gets written where" table, made from the format table, the tag handlers
and the write checks (a test keeps the README equal to it).

It sits above all three: mgctag.formats stays plain data that the tag handlers (mgctag.tags) and
the audio checks (mgctag.decode.compare) import, and only this joins them, so nothing reaches
back into them at call time. `python -m mgctag.formats_readme` (or `python -m mgctag.formats`)
prints it.
"""

from __future__ import annotations

from mgctag.decode.compare import CHECKS
from mgctag.formats import FORMATS, NO_TAG_CONTAINER
from mgctag.tags import BY_KEY

DECODER_NAMES = {"soundfile": "libsndfile", "pyav": "FFmpeg"}


def readme_table() -> str:
    """The README's "What gets written where" table (markdown), from the format table and the tag handlers."""
    rows = [
        "| format | extensions | decoder | genre goes into | mgctag's own fields | a write's audio check "
        "| byte-exact undo keeps |",
        "|---|---|---|---|---|---|---|",
    ]
    for f in FORMATS:
        if f.tags is None:
            genre, own = f"nothing: {NO_TAG_CONTAINER} (analysed and reported; `--write-tags` skips it)", "—"
            check = kept = "—"
        else:
            handler = BY_KEY[f.tags]
            genre = f"{f.where}, {handler.genre_words}" if f.where else handler.genre_words
            own = ", ".join(f"`{key}`" for key in handler.own_keys())
            check = CHECKS[f.check].words
            kept = f.kept
        decoder = DECODER_NAMES[f.decoder] + (f"; {f.remark}" if f.remark else "")
        rows.append(f"| {f.name} | {' '.join(f.extensions)} | {decoder} | {genre} | {own} | {check} | {kept} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":  # python -m mgctag.formats_readme: print the README table
    print(readme_table(), end="")
