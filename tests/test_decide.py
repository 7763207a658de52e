"""mgctag.decide's readings of a result agree with what `decide` itself wrote.

The beets plugin and the reports read results through `written`, `holds` and `heard_otherwise`
instead of re-deriving the rule; these pin that a reading gives what the decision meant.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np
import pytest

from mgctag import albums, decide, tags
from mgctag.pool import Decoded

GENRES = ["Blues", "Jazz", "Rock"]
SCORES = np.array([0.1, 0.35, 0.55], np.float32)


def decoded(genres=(), confidences=(), model=None) -> Decoded:
    existing = tags.TagState(tuple(genres), tuple(confidences), model, None, "vorbis")
    return Decoded(Path("a.flac"), existing=existing, peak=0.5)


VERDICTS = {
    "alone": None,
    "album": albums.Verdict("A - B", np.array([0.2, 0.7, 0.1], np.float32), 3),
    "album, user's genre": albums.Verdict("A - B", SCORES, 3, user=("Polka",), user_tracks=2),
}
HELD = {
    "none": decoded(),
    "the model's answer": decoded(["Rock"], ["0.550"], "m"),
    "the album's answer": decoded(["Jazz"], ["0.700"], "m"),
    "the album's user genre": decoded(["Polka"], [], "m"),
    "a user's genre": decoded(["Jazz"]),
}


@pytest.mark.parametrize(
    "verdict, held, top_k, floor, keep",
    list(itertools.product(VERDICTS, HELD, (1, 2), (0.0, 0.3, 0.6), (False, True))),
)
def test_written_is_what_decide_writes(verdict, held, top_k, floor, keep):
    d = HELD[held]
    result, values = decide.decide(
        d, SCORES, GENRES, "m", top_k=top_k, keep_existing=keep, floor=floor, ours=False, verdict=VERDICTS[verdict]
    )
    if values is not None:
        assert decide.written(result, floor) == values["genres"]
    elif result.status == "unchanged":  # the file holds the values already
        assert decide.written(result, floor) == list(d.existing.genres)
    else:
        assert decide.written(result, floor) == []
    assert decide.holds(result) == (result.status != "skipped")


def test_heard_otherwise_is_the_album_outvoting_the_track():
    alone, _ = decide.decide(decoded(), SCORES, GENRES, "m", top_k=1, keep_existing=False, floor=0.0, ours=False)
    album, _ = decide.decide(
        decoded(), SCORES, GENRES, "m", top_k=1, keep_existing=False, floor=0.0, ours=False, verdict=VERDICTS["album"]
    )
    assert album.genre == "Jazz" and decide.heard_otherwise(album)
    assert alone.genre == "Rock" and not decide.heard_otherwise(alone)


def test_a_user_genre_is_kept_unless_mgctag_wrote_it_or_told_to_replace_it():
    assert decide.keeps_users(["Jazz"], keep_existing=True, ours=False)
    assert not decide.keeps_users(["Jazz"], keep_existing=True, ours=True)
    assert not decide.keeps_users(["Jazz"], keep_existing=False, ours=False)
    assert not decide.keeps_users([], keep_existing=True, ours=False)


def test_the_floor_is_the_option_else_the_models_own():
    assert decide.confidence_floor(None, 0.2) == 0.2
    assert decide.confidence_floor(0.0, 0.2) == 0.0
