import pytest

from mgctag.errors import MgctagError
from mgctag.genremap import GenreMap


def test_parse_rename_merge_drop_and_case():
    m = GenreMap.parse("# mine\nhiphop: Hip-Hop\nHip Hop : Hip-Hop\n00s: -\n'rnb': \"R&B\"\n")
    assert m.apply("HIPHOP") == "Hip-Hop" and m.apply("hip   hop") == "Hip-Hop"
    assert m.apply("00s") is None and m.apply("rnb") == "R&B"
    assert m.apply("Jazz") == "Jazz"


def test_sources_match_every_spelling_of_a_genre():
    """GTZAN's folder names, canonical names and AudioSet's names are one key."""
    m = GenreMap.parse("hiphop: Rap\nRhythm and blues: Soul-ish\n")
    for spelling in ("hiphop", "Hip-Hop", "hip hop", "Hip hop music", "HIP_HOP"):
        assert m.apply(spelling) == "Rap", spelling
    assert m.apply("R&B") == "Soul-ish" and m.apply("rnb") == "Soul-ish"
    assert m.apply("Hip-Hopera") == "Hip-Hopera"  # a different genre is not a spelling


def test_preset_keeps_only_what_it_names():
    labels = ["Rock music", "Grunge", "Vocal music", "Jazz", "Synthwave"]
    common = GenreMap.preset("common", labels)
    assert [common.apply(x) for x in labels] == ["Rock", "Rock", None, "Jazz", None]
    every = GenreMap.preset("all", labels)
    assert [every.apply(x) for x in labels] == ["Rock", "Grunge", None, "Jazz", "Synthwave"]
    listed = GenreMap.preset("vocal,jazz", labels)  # a list may name what presets leave out
    assert [listed.apply(x) for x in labels] == [None, None, "Vocal", "Jazz", None]
    with pytest.raises(MgctagError, match="cannot name Disco"):
        GenreMap.preset("Jazz,Disco", labels)


def test_bad_line_names_the_line(tmp_path):
    with pytest.raises(MgctagError, match="line 2"):
        GenreMap.parse("a: b\njust words\n")
    with pytest.raises(MgctagError, match="cannot read"):
        GenreMap.load(tmp_path / "missing.txt")
