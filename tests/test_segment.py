import pytest

from mgctag.segment import segment_starts, tile_starts


def test_spread_covers_start_and_end():
    s = segment_starts(240.0, 3.0, 10)
    assert len(s) == 10 and s[0] == 0.0 and s[-1] == pytest.approx(237.0)
    assert all(b > a for a, b in zip(s, s[1:]))


def test_short_tracks():
    assert segment_starts(2.0, 3.0, 10) == [0.0]
    assert len(segment_starts(7.0, 3.0, 10)) == 3  # no more segments than the track holds
    assert segment_starts(100.0, 3.0, 1) == [pytest.approx(48.5)]


def test_tiles():
    assert tile_starts(30.0, 3.0) == [3.0 * i for i in range(10)]
    assert tile_starts(1.0, 3.0) == [0.0]
