"""The analyser: labels -> written genres (canonical names, presets, the user's map), merges, ensembles."""

from __future__ import annotations

import audiogen
import numpy as np
import pytest
from conftest import make_band_model

from mgctag import taxonomy
from mgctag.analyser import Analyser, resolve
from mgctag.errors import MgctagError
from mgctag.genremap import GenreMap
from mgctag.pool import DecodeJob

LOW, HIGH = 150.0, 5000.0


def _windows(analyser: Analyser, path) -> tuple:
    d = analyser.job()(path)
    assert not d.error, d.error
    return d.windows


def test_labels_become_canonical_genres_and_presets_fold_subgenres(tmp_path):
    m = make_band_model(
        tmp_path / "m.safetensors", ["rock", "Grunge", "hiphop", "Vocal music", "jazz"], low=(0.1, 0.05, -0.05, 0, 0)
    )
    assert Analyser.load(str(m)).genres == ["Rock", "Grunge", "Hip-Hop", "Vocal", "Jazz"]
    a = Analyser.load(str(m), genres="common")
    assert a.genres == ["Rock", "Hip-Hop", "Jazz"]
    # Grunge is left out of `common`: a softmax model's Grunge probability counts for its parent, Rock
    assert [list(g) for g in a.members[0].groups] == [[0, 1], [2], [4]]
    merged = Analyser.load(str(m), genre_map=GenreMap.parse("grunge: Rock\nvocal music: -"))
    assert merged.genres == ["Rock", "Hip-Hop", "Jazz"] and [list(g) for g in merged.members[0].groups][0] == [0, 1]
    renamed = Analyser.load(str(m), genres="common", genre_map=GenreMap.parse("rock: Guitar Music\nJazz: -"))
    assert renamed.genres == ["Guitar Music", "Hip-Hop"]
    with pytest.raises(MgctagError, match="nothing could be written"):
        Analyser.load(
            str(m),
            genre_map=GenreMap.parse("\n".join(f"{g}: -" for g in ("rock", "grunge", "hiphop", "vocal", "jazz"))),
        )


def test_merged_labels_add_up_for_a_softmax_model_and_take_the_max_for_a_tagger(tmp_path):
    probs = np.array([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]])
    merge = GenreMap.parse("grunge: Rock")
    for arch, expect in (("test-band", [[0.8, 0.2], [0.2, 0.8]]), ("test-band-tagger", [[0.5, 0.2], [0.1, 0.8]])):
        m = make_band_model(tmp_path / f"{arch}.safetensors", ["Rock", "Grunge", "Jazz"], arch=arch, low=(1, 1, -1))
        member = Analyser.load(str(m), genre_map=merge).members[0]
        np.testing.assert_allclose(member.genre_probs(probs), expect)


def test_confidence_is_the_share_of_belief_among_the_genres_that_may_be_written(tmp_path):
    """A tagger's sigmoids are independent; its confidence is each one's share of their sum, over
    the genres left after --genres / --genre-map, so it can be thresholded like a softmax's."""
    m = make_band_model(
        tmp_path / "t.safetensors", ["Low", "High", "Mid"], arch="test-band-tagger", low=(0.05, -0.05, 0.02)
    )
    f = audiogen.make(tmp_path / "low.wav", seconds=2.5, freq=LOW)
    a = Analyser.load(str(m))
    [(_, scores)] = list(a.feed("k", _windows(a, f))) + list(a.flush())
    net = a.members[0].model
    import torch

    from mgctag.vote import sigmoid

    with torch.inference_mode():
        sig = sigmoid(net(torch.from_numpy(_windows(a, f)[0])).numpy()).mean(axis=0)
    assert sig[0] > 0.5 and sig[1] < 0.5 and sig.sum() > 1.2  # the raw outputs do not sum to 1
    np.testing.assert_allclose(scores, sig / sig.sum(), rtol=1e-5)
    two = Analyser.load(str(m), genres="Low,High")
    [(_, s2)] = list(two.feed("k", _windows(two, f))) + list(two.flush())
    np.testing.assert_allclose(s2, sig[:2] / sig[:2].sum(), rtol=1e-5)


def test_ensemble_averages_distributions_over_shared_genres_in_order(tmp_path):
    a_path = make_band_model(tmp_path / "a.safetensors", ["Low", "High"])
    b_path = make_band_model(
        tmp_path / "b.safetensors", ["High", "Other", "Low"], arch="test-band-tagger", low=(-0.05, 0.0, 0.05)
    )
    assert resolve(f"{a_path}+{b_path}") == [a_path, b_path]
    ens = Analyser.load(f"{a_path}+{b_path}", batch_size=4)
    assert ens.genres == ["Low", "High"] and ens.model_id == "a+b" and ens.min_confidence == 0.0
    single = [Analyser.load(str(p)) for p in (a_path, b_path)]
    files = [audiogen.make(tmp_path / f"{i}.wav", seconds=2.5 + i, freq=LOW if i % 2 else HIGH) for i in range(5)]
    got = []
    for f in files:
        got += ens.feed(f, _windows(ens, f))
    got += ens.flush()
    assert [k for k, _ in got] == files  # feeding order, whatever batch each model's windows fell in
    for f, scores in got:
        parts = []
        for s in single:
            [(_, v)] = list(s.feed(f, _windows(s, f))) + list(s.flush())
            v = v[[s.genres.index(g) for g in ens.genres]]
            parts.append(v / v.sum())
        np.testing.assert_allclose(scores, np.mean(parts, axis=0), atol=1e-6)
        assert abs(scores.sum() - 1) < 1e-6


def test_model_defaults_apply_unless_overridden(tmp_path):
    m = make_band_model(
        tmp_path / "d.safetensors",
        ["Rock", "Grunge", "Vocal"],
        arch="test-band-tagger",
        defaults={"genres": "common", "min_confidence": 0.4, "segments": 2},
    )
    a = Analyser.load(str(m))
    assert a.genres == ["Rock"] and a.min_confidence == 0.4 and a.segments == [2]
    b = Analyser.load(str(m), genres="all", segments=5)
    assert b.genres == ["Rock", "Grunge"] and b.segments == [5]
    assert isinstance(a.job(), DecodeJob)


def test_a_dropped_subgenre_counts_for_its_nearest_written_ancestor(tmp_path):
    """The genre tree (taxonomy.PARENT): under --genres gtzan a softmax model's Punk and Swing
    probabilities go to Rock and Jazz instead of being lost; a tagger's own Rock output already
    hears punk, so its Punk sigmoid is not merged in; a tagger without a Rock output moves it up."""
    labels = ["Rock", "Punk", "Jazz", "Swing", "Techno"]
    soft = Analyser.load(
        str(make_band_model(tmp_path / "s.safetensors", labels, low=(0.1, 0.05, 0, -0.05, 0))), genres="gtzan"
    )
    assert soft.genres == ["Rock", "Jazz"] and [list(g) for g in soft.members[0].groups] == [[0, 1], [2, 3]]
    probs = np.array([[0.2, 0.3, 0.1, 0.3, 0.1]])
    np.testing.assert_allclose(soft.members[0].genre_probs(probs), [[0.5, 0.4]])  # Techno has no written ancestor

    tagger = Analyser.load(
        str(make_band_model(tmp_path / "t.safetensors", labels, arch="test-band-tagger", low=(0.1, 0.05, 0, -0.05, 0))),
        genres="gtzan",
    )
    assert [list(g) for g in tagger.members[0].groups] == [[0], [2]]
    no_rock = make_band_model(tmp_path / "n.safetensors", ["Punk", "Jazz"], arch="test-band-tagger", low=(0.1, -0.1))
    moved = Analyser.load(str(no_rock), genre_map=GenreMap.parse("punk: -"))
    assert moved.genres == ["Rock", "Jazz"]
    assert taxonomy.ancestors("Punk rock") == ["Rock"] and taxonomy.ancestors("Rock") == []
