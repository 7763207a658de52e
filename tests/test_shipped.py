"""Every shipped weights file loads, tags a file through scan, and carries what the model card claims."""

from __future__ import annotations

import audiogen
import pytest

from mgctag import weights
from mgctag.models import architecture_names
from mgctag.scanner import ScanOptions, scan

SHIPPED = sorted(p.name[: -len(weights.SUFFIX)] for p in weights.shipped_dir().glob(f"*{weights.SUFFIX}"))
PAPERS = ["cnn", "cnn1d", "crnn", "crnn-lstm", "crnn-mfcc", "lstm", "mlp", "pcrnn", "musicnn-head"]
GTZAN = ["Blues", "Classical", "Country", "Disco", "Hip-Hop", "Jazz", "Metal", "Pop", "Reggae", "Rock"]


def test_every_paper_architecture_ships_gtzan_mini_weights():
    trained = {
        weights.read_meta(weights.shipped_dir() / f"{n}{weights.SUFFIX}").arch
        for n in SHIPPED
        if n.endswith("-gtzan-mini")
    }
    missing = set(PAPERS) - trained
    assert set(PAPERS) <= set(architecture_names())
    assert not missing, f"no shipped gtzan-mini weights for {sorted(missing)}"


@pytest.mark.parametrize("name", [n for n in SHIPPED if n.endswith("-gtzan-mini")])
def test_gtzan_mini_weights_carry_10_fold_cv_and_provenance(name):
    meta = weights.read_meta(weights.shipped_dir() / f"{name}{weights.SUFFIX}")
    assert meta.labels == GTZAN
    m = meta.metrics
    assert m["cv_folds"] == 10 and 0.0 <= m["cv_track_accuracy_mean"] <= 1.0 and m["cv_track_accuracy_std"] >= 0.0
    for key in ("command", "date", "machine", "epochs", "seed"):
        assert key in meta.provenance, key
    assert meta.provenance["command"].startswith("mgctag train")


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_weights_name_no_path_of_the_training_machine(name):
    raw = weights.shipped_dir() / f"{name}{weights.SUFFIX}"
    meta = weights.read_meta(raw)
    text = f"{meta.description} {meta.provenance}"
    assert "/work/" not in text and ":/" not in text, text


@pytest.mark.parametrize("name", SHIPPED)
def test_scan_tags_a_file_with_each_shipped_model(name, tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir()
    song = audiogen.write_audio(lib / "song.flac", audiogen.tone(4.0, 22050, 330.0), 22050)
    opts = ScanOptions(model=name, write_tags=True, workers=0, state=tmp_path / "state.sqlite", top_k=2)
    [result] = list(scan([lib], opts))
    assert result.status == "tagged", (result.status, result.note)
    labels = weights.read_meta(weights.resolve(name)).labels
    assert result.genre in labels and len(result.genres) == 2
    assert 0.0 < result.genres[0][1] <= 1.0 and song.is_file()
