"""Distillation (`train --teacher`, `--unlabelled`): the teacher's knowledge really reaches the student.

The task is made so that only the teacher carries the signal: the labelled training tracks are
plain noise (their labels say nothing a network could hear), while unlabelled tracks are tones
in a low or a high band, which a hand-set teacher in the real weights format (conftest's band
model) names. A student trained with the teacher must then classify labelled tones it never saw;
without the teacher, or with the teacher's targets ignored, put on the wrong genres or the
unlabelled tracks left out, it cannot. (A target mixed in the wrong proportions is caught where it
is made: the loss at T = 1 must equal the cross-entropy against the mixed target.)
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import audiogen
import numpy as np
import pytest
import torch
from conftest import BAND_SPEC, make_band_model
from typer.testing import CliRunner

from mgctag import cache, dataset, loop, train, weights
from mgctag.cli import app
from mgctag.dataset import Track
from mgctag.errors import DataError, MgctagError
from mgctag.evaluate import evaluate
from mgctag.teacher import Teacher, temper, window_starts

SR = 16000
SECONDS = 2.0  # two ~1 s segments of the band front-end per clip
# Tones anywhere in a low (below the band model's 1.7 kHz split) or a high range: a student that has
# not learnt the rule answers each tone by whichever mel bands it happens to fall in, i.e. by chance.
LOW, HIGH = (150.0, 1300.0), (2300.0, 7000.0)
UNLABELLED = 10


def clip(path: Path, tone: float | None, seed: int) -> Path:
    """A tone (None: none) with noise; each clip its own level and noise."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(SECONDS * SR)) / SR
    y = rng.uniform(0.03, 0.08) * rng.standard_normal(len(t))
    if tone is not None:
        y += rng.uniform(0.2, 0.4) * np.sin(2 * np.pi * tone * t)
    return audiogen.write_audio(path, y.astype(np.float32), SR)


@pytest.fixture(scope="module")
def task(tmp_path_factory):
    root = tmp_path_factory.mktemp("distil")
    made: dict = {"train": [], "valid": [], "test": [], "unlabelled": []}
    seed = 0
    for label, (lo, hi) in (("Low", LOW), ("High", HIGH)):
        heard = np.geomspace(lo, hi, UNLABELLED)  # what the teacher labels
        between = np.sqrt(heard[:-1] * heard[1:])  # other pitches, in between
        tones = {"unlabelled": heard, "test": between, "valid": np.geomspace(lo, hi, 2)}
        for i in range(4):  # what the labels teach: nothing audible (noise whatever the label)
            made["train"].append(Track(clip(root / "train" / label / f"{i}.wav", None, seed := seed + 1), label))
        for split, freqs in tones.items():
            for i, f in enumerate(freqs):
                path = clip(
                    root / split / (label if split != "unlabelled" else "") / f"{label}{i}.wav", f, seed := seed + 1
                )
                made[split].append(Track(path, None if split == "unlabelled" else label))
    made["root"] = root
    made["teacher"] = make_band_model(root / "band-teacher.safetensors")
    return made


def options(cache: Path, **kw) -> train.TrainOptions:
    return train.TrainOptions(
        **{
            "max_epochs": 12,
            "patience": 12,
            "batch_size": 8,
            "lr": 0.05,
            "seed": 0,
            "device": "cpu",
            "cache_dir": cache,
            **kw,
        }
    )


def student_accuracy(task, cache: Path, *, taught: bool, **kw) -> float:
    """Track accuracy on the labelled test tones of a test-band student trained on the task."""
    t = Teacher.load(str(task["teacher"]), **kw) if taught else None
    result = train.train(
        task["train"],
        "test-band",
        options(cache),
        valid=task["valid"],
        teacher=t,
        unlabelled=task["unlabelled"] if taught else (),
    )
    return evaluate((result.model, result.meta), task["test"]).track_accuracy


def test_the_teacher_itself_knows_the_task(task):
    model, meta = weights.load(task["teacher"])
    assert evaluate((model, meta), task["test"]).track_accuracy == 1.0


def test_a_student_learns_from_the_teacher_what_its_labels_cannot_teach(task, tmp_path):
    assert student_accuracy(task, tmp_path, taught=False) <= 0.75  # the labelled tracks alone cannot
    assert student_accuracy(task, tmp_path, taught=True) >= 0.9


def _targets_ignored(monkeypatch):
    real = train.distillation_loss
    monkeypatch.setattr(loop, "distillation_loss", lambda z, y, soft, **kw: real(z, y, torch.zeros_like(soft), **kw))


def _targets_on_the_wrong_genres(monkeypatch):
    real = train.distillation_loss
    monkeypatch.setattr(loop, "distillation_loss", lambda z, y, soft, **kw: real(z, y, soft.flip(1), **kw))


def _unlabelled_tracks_dropped(monkeypatch):
    monkeypatch.setattr(cache.FeatureSet, "plus", lambda self, other: self)


@pytest.mark.parametrize(
    "bug",
    [_targets_ignored, _targets_on_the_wrong_genres, _unlabelled_tracks_dropped],
    ids=["teacher-ignored", "wrong-genres", "unlabelled-dropped"],
)
def test_a_broken_distillation_does_not_reach_the_bar(bug, monkeypatch, task, tmp_path):
    bug(monkeypatch)
    assert student_accuracy(task, tmp_path, taught=True) < 0.9


def test_a_multilabel_teacher_teaches_too(task, tmp_path):
    tagger = make_band_model(tmp_path / "tagger.safetensors", arch="test-band-tagger")
    t = Teacher.load(str(tagger), temperature=0.5)
    result = train.train(
        task["train"], "test-band", options(tmp_path), valid=task["valid"], teacher=t, unlabelled=task["unlabelled"]
    )
    assert evaluate((result.model, result.meta), task["test"]).track_accuracy >= 0.9


# --- the loss and the targets themselves --------------------------------------------------------


def test_at_temperature_one_the_loss_is_the_cross_entropy_against_the_mixed_target():
    gen = torch.Generator().manual_seed(0)
    z = torch.randn(6, 4, generator=gen)
    y = torch.tensor([0, 3, 1, -1, 2, -1])
    q = torch.softmax(torch.randn(6, 4, generator=gen), dim=1)
    target = torch.where((y >= 0)[:, None], 0.3 * torch.nn.functional.one_hot(y.clamp(min=0), 4) + 0.7 * q, q)
    expected = -(target * torch.log_softmax(z, dim=1)).sum(1).mean()
    assert float(train.distillation_loss(z, y, q, weight=0.7)) == pytest.approx(float(expected), rel=1e-6)
    # weight 0 and every segment labelled: the plain cross-entropy of training without a teacher
    assert float(train.distillation_loss(z, y.clamp(min=0), q, weight=0.0)) == pytest.approx(
        float(torch.nn.functional.cross_entropy(z, y.clamp(min=0))), rel=1e-6
    )


def test_temperature_scales_the_soft_term_as_hinton():
    z, q = torch.tensor([[2.0, 0.0, -1.0]]), torch.tensor([[0.5, 0.3, 0.2]])
    y = torch.tensor([-1])
    expected = -(q * torch.log_softmax(z / 3, dim=1)).sum() * 9
    assert float(train.distillation_loss(z, y, q, weight=0.5, temperature=3.0)) == pytest.approx(float(expected))


def test_temper_is_hintons_softmax_for_a_softmax_teacher_and_flattens_shares():
    v = np.array([[3.0, 1.0, -2.0, 0.5]])
    p = np.exp(v) / np.exp(v).sum()
    for T in (0.5, 2.0, 4.0):
        expected = np.exp(v / T) / np.exp(v / T).sum()
        np.testing.assert_allclose(temper(p, T), expected, rtol=1e-9)
    shares = np.array([[0.6, 0.3, 0.1]])
    flat, sharp = temper(shares, 2.0), temper(shares, 0.5)
    assert flat[0, 0] < 0.6 < sharp[0, 0] and flat.sum() == pytest.approx(1) and sharp.sum() == pytest.approx(1)
    np.testing.assert_allclose(temper(shares, 1.0), shares)


def test_a_multilabel_teachers_targets_are_its_genre_shares(task, tmp_path):
    tagger = make_band_model(tmp_path / "tagger.safetensors", arch="test-band-tagger")
    t = Teacher.load(str(tagger))
    got = t.targets(task["test"][:1], ["High", "Low"], BAND_SPEC, cache_dir=tmp_path).per_track[0]
    model, _ = weights.load(tagger)
    from mgctag import decode

    windows = decode.read_windows(
        task["test"][0].path,
        sample_rate=SR,
        starts=[0.0, BAND_SPEC.segment_seconds],
        n_samples=BAND_SPEC.segment_samples,
    )
    with torch.no_grad():
        sig = torch.sigmoid(model(torch.from_numpy(windows))).numpy()[:, [1, 0]]  # labels (Low, High) -> (High, Low)
    np.testing.assert_allclose(got, sig / sig.sum(1, keepdims=True), rtol=1e-5)


def test_teacher_windows_centre_short_segments_and_cover_long_ones():
    assert window_starts(10.0, 3.0, 10.0, 30.0) == [6.5]  # centred on the 3 s segment
    assert window_starts(0.0, 3.0, 10.0, 30.0) == [0.0]  # moved inside the track
    assert window_starts(27.0, 3.0, 10.0, 30.0) == [20.0]
    assert window_starts(0.0, 3.0, 10.0, 6.0) == [0.0]  # a track shorter than the window
    assert window_starts(0.0, 29.0, 10.0, 30.0) == pytest.approx([0.0, 9.5, 19.0])  # three cover 29 s


# --- the cache, errors, and where unlabelled tracks may go ---------------------------------------


def test_the_teacher_runs_once_per_segment_then_comes_from_the_cache(task, tmp_path, monkeypatch):
    t = Teacher.load(str(task["teacher"]))
    tracks = task["unlabelled"][:4]
    first = t.targets(tracks, ["High", "Low"], BAND_SPEC, cache_dir=tmp_path)
    assert (first.computed, first.reused) == (4, 0)

    def deaf(*a, **kw):
        raise AssertionError("the teacher ran again")

    monkeypatch.setattr(Teacher, "_run", deaf)
    again = Teacher.load(str(task["teacher"]))  # a new run: same weights, same segments
    second = again.targets(tracks, ["High", "Low"], BAND_SPEC, cache_dir=tmp_path)
    assert (second.computed, second.reused) == (0, 4)
    for a, b in zip(first.per_track, second.per_track):
        np.testing.assert_allclose(a, b)
    # another student with the same segments starts at once too; other weights must miss
    other = make_band_model(tmp_path / "other.safetensors", low=(0.04, -0.04))
    with pytest.raises(AssertionError, match="ran again"):
        Teacher.load(str(other)).targets(tracks, ["High", "Low"], BAND_SPEC, cache_dir=tmp_path)


def test_a_second_training_run_does_not_run_the_teacher(task, tmp_path, monkeypatch):
    t = Teacher.load(str(task["teacher"]))
    train.train(
        task["train"],
        "test-band",
        options(tmp_path, max_epochs=1),
        valid=task["valid"],
        teacher=t,
        unlabelled=task["unlabelled"],
    )
    monkeypatch.setattr(Teacher, "_run", lambda *a, **kw: pytest.fail("the teacher ran again"))
    result = train.train(
        task["train"],
        "test-band",
        options(tmp_path, max_epochs=1),
        valid=task["valid"],
        teacher=Teacher.load(str(task["teacher"])),
        unlabelled=task["unlabelled"],
    )
    assert result.meta.provenance["tracks"] == {"train": 8, "valid": 4, "unlabelled": 2 * UNLABELLED}
    assert result.meta.provenance["teacher"]["model"] == "band-teacher"
    assert result.meta.provenance["teacher"]["sha256"] == [hashlib.sha256(task["teacher"].read_bytes()).hexdigest()]


def test_a_genre_the_teacher_cannot_name_is_a_clear_error(task, tmp_path):
    t = Teacher.load(str(task["teacher"]))
    with pytest.raises(DataError, match=r"^the teacher band-teacher cannot name Jazz: ") as e:
        t.columns(["High", "Jazz", "Low"])
    assert "\n" not in str(e.value)
    jazz = [Track(task["train"][0].path, "Jazz"), *task["train"][4:]]
    with pytest.raises(DataError, match="cannot name Jazz"):
        train.train(jazz, "test-band", options(tmp_path), valid=[], teacher=t)


def test_the_teacher_names_a_genre_through_the_taxonomy_and_the_genre_map(tmp_path):
    from mgctag.genremap import GenreMap

    path = make_band_model(tmp_path / "t.safetensors", labels=("Hip hop music", "Heavy metal"))
    assert Teacher.load(str(path)).columns(["metal", "hiphop"]) == [1, 0]  # canonical names meet
    merged = Teacher.load(str(path), genre_map=GenreMap.parse("heavy metal: Loud\nhip hop music: Loud"))
    assert merged.columns(["Loud"]) == [0]
    with pytest.raises(DataError, match="cannot name Jazz"):
        merged.columns(["Loud", "Jazz"])


def test_bad_teacher_settings_are_clear_errors(task):
    with pytest.raises(MgctagError, match="--teacher-weight 1.5"):
        Teacher.load(str(task["teacher"]), weight=1.5)
    with pytest.raises(MgctagError, match="--temperature 0"):
        Teacher.load(str(task["teacher"]), temperature=0.0)
    with pytest.raises(DataError, match="give a teacher"):
        train.train(task["train"], "test-band", valid=task["valid"], unlabelled=task["unlabelled"])


def test_unlabelled_tracks_only_ever_train(task, tmp_path, monkeypatch):
    """Through fit with cross-validation: never in a validation part, a test fold or the final validation."""
    unlabelled = {t.path for t in task["unlabelled"]}
    judged, trained = [], []
    real_validate, real_fit = train.validate, loop._fit
    monkeypatch.setattr(
        loop,
        "validate",
        lambda net, fs, *a, **kw: (judged.append([t.path for t in fs.tracks]), real_validate(net, fs, *a, **kw))[1],
    )
    monkeypatch.setattr(
        loop,
        "_fit",
        lambda net, tr, va, *a, **kw: (trained.append([t.path for t in tr.tracks]), real_fit(net, tr, va, *a, **kw))[1],
    )
    labelled = task["train"] + task["test"]
    data = dataset.TrackSet(tuple(labelled), "folders:distil")
    extra = dataset.TrackSet(tuple(task["unlabelled"]), "unlabelled:unlabelled")
    result = train.fit(
        data,
        "test-band",
        options(tmp_path, max_epochs=2),
        folds=2,
        teacher=Teacher.load(str(task["teacher"])),
        unlabelled=extra,
    )
    assert len(trained) == 3 and all(unlabelled <= set(paths) for paths in trained)  # 2 folds + the final model
    assert judged and not any(unlabelled & set(paths) for paths in judged)
    assert result.cv["unlabelled_tracks"] == 2 * UNLABELLED and result.cv["tracks"] == len(labelled)
    assert result.meta.provenance["unlabelled"] == "unlabelled:unlabelled"


def test_a_labelled_file_is_never_also_unlabelled(task, tmp_path):
    link = tmp_path / "lib"
    link.mkdir()
    os.symlink(task["test"][0].path, link / "same.wav")  # a labelled test track, reached another way
    audiogen.write_audio(link / "new.wav", np.zeros(SR, np.float32), SR)
    got = dataset.unlabelled([link], exclude=task["test"])
    assert [t.path.name for t in got.tracks] == ["new.wav"] and all(t.label is None for t in got.tracks)
    assert any("labelled tracks too" in w for w in got.warnings)


def test_provenance_names_the_data_set_never_its_path(tmp_path):
    root = tmp_path / "my-set"
    for g in ("a", "b"):
        (root / g).mkdir(parents=True)
        audiogen.write_audio(root / g / "x.wav", np.zeros(SR, np.float32), SR)
    assert dataset.from_folders(root).source == "folders:my-set"
    assert dataset.load_tracks(root / "a" / "..").source == "folders:my-set"


# --- the command ---------------------------------------------------------------------------------

runner = CliRunner()


def test_train_teacher_and_unlabelled_from_the_command_line(task, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "student.safetensors"
    r = runner.invoke(
        app,
        [
            str(a)
            for a in (
                "train",
                task["root"] / "train",
                "--arch",
                "test-band",
                "--teacher",
                task["teacher"],
                "--teacher-weight",
                0.5,
                "--temperature",
                2,
                "--unlabelled",
                task["root"] / "unlabelled",
                "--epochs",
                3,
                "--batch-size",
                8,
                "--valid-fraction",
                0.25,
                "--test-fraction",
                0.25,
                "--out",
                out,
                "--cache-dir",
                tmp_path / "cache",
                "--device",
                "cpu",
            )
        ],
    )
    assert r.exit_code == 0, r.output
    assert f"{2 * UNLABELLED} unlabelled tracks, taught by band-teacher alone" in r.output
    meta = weights.read_meta(out)
    prov = meta.provenance
    assert prov["teacher"]["weight"] == 0.5 and prov["teacher"]["temperature"] == 2.0
    assert prov["data"] == "folders:train" and prov["unlabelled"] == "unlabelled:unlabelled"
    assert "taught by band-teacher" in meta.description


def test_the_recorded_command_carries_no_absolute_path(tmp_path, monkeypatch):
    from mgctag.cli.train import portable_command

    monkeypatch.chdir(tmp_path)
    got = portable_command(
        [
            "mgctag",
            "train",
            "/srv/music/gtzan-mini",
            "--out",
            str(tmp_path / "w" / "x.safetensors"),
            "--cache-dir=/var/cache/mgctag/",
            "--arch",
            "crnn",
            "../data",
        ]
    )
    assert got == "mgctag train gtzan-mini --out w/x.safetensors --cache-dir=mgctag --arch crnn ../data"


def test_the_command_names_what_the_teacher_cannot(task, tmp_path):
    root = tmp_path / "data"
    for g in ("Low", "Jazz"):
        (root / g).mkdir(parents=True)
        for i in range(2):
            clip(root / g / f"{i}.wav", None, i)
    r = runner.invoke(
        app,
        [
            "train",
            str(root),
            "--arch",
            "test-band",
            "--teacher",
            str(task["teacher"]),
            "--out",
            str(tmp_path / "x.safetensors"),
            "--cache-dir",
            str(tmp_path / "c"),
        ],
    )
    assert r.exit_code == 2
    assert "the teacher band-teacher cannot name Jazz" in r.output
    r = runner.invoke(
        app,
        [
            "train",
            str(root),
            "--arch",
            "test-band",
            "--unlabelled",
            str(root),
            "--out",
            str(tmp_path / "x.safetensors"),
        ],
    )
    assert r.exit_code == 2 and "--unlabelled needs --teacher" in r.output
