import pytest

from mgctag.errors import MgctagError
from mgctag.genremap import GenreMap


def test_parse_rename_merge_drop_and_case():
    m = GenreMap.parse("# mine\nhiphop: Hip-Hop\nHip Hop : Hip-Hop\n00s: -\n'rnb': \"R&B\"\n")
    assert m.apply("HIPHOP") == "Hip-Hop" and m.apply("hip   hop") == "Hip-Hop"
    assert m.apply("00s") is None and m.apply("rnb") == "R&B"
    assert m.apply("Jazz") == "Jazz"


def test_apply_scores_merges_and_reorders():
    m = GenreMap.parse("hiphop: Hip-Hop\nrap: Hip-Hop\nnoise: -")
    got = m.apply_scores([("rock", 0.4), ("hiphop", 0.3), ("rap", 0.2), ("noise", 0.1)])
    assert got[0][0] == "Hip-Hop" and abs(got[0][1] - 0.5) < 1e-9
    assert [g for g, _ in got] == ["Hip-Hop", "rock"]


def test_bad_line_names_the_line(tmp_path):
    with pytest.raises(MgctagError, match="line 2"):
        GenreMap.parse("a: b\njust words\n")
    with pytest.raises(MgctagError, match="cannot read"):
        GenreMap.load(tmp_path / "missing.txt")
