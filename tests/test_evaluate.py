"""Precision against coverage: what --min-confidence trades."""

from __future__ import annotations

import numpy as np
import pytest

from mgctag.evaluate import coverage_curve, report


def test_coverage_curve_sorts_by_confidence_and_counts_hits():
    curve = coverage_curve(np.array([0.9, 0.5, 0.7, 0.6]), [True, False, False, True])
    assert [c["threshold"] for c in curve] == [0.9, 0.7, 0.6, 0.5]
    assert [c["coverage"] for c in curve] == [0.25, 0.5, 0.75, 1.0]
    assert [c["precision"] for c in curve] == pytest.approx([1.0, 0.5, 2 / 3, 0.5])


def test_report_precision_at_a_minimum_confidence():
    labels = ["A", "B"]
    track_probs = np.array([[0.9, 0.1], [0.4, 0.6], [0.55, 0.45], [0.2, 0.8]])
    truth = [0, 0, 0, 1]
    rep = report(labels, track_probs, np.arange(4), truth, track_probs=track_probs, paths=list("wxyz"))
    assert rep.track_accuracy == 0.75
    assert rep.precision_at(0.7) == (0.5, 1.0)  # the two most confident files are both right
    assert rep.precision_at(0.58) == (0.75, 2 / 3)  # 0.6 (wrong) comes in
    assert rep.coverage[-1]["precision"] == 0.75


def test_in_sample_is_what_the_provenance_says_the_model_learnt():
    from mgctag.evaluate import in_sample
    from mgctag.splits import described
    from mgctag.weights import WeightsMeta

    def meta(name, **provenance):
        return WeightsMeta(arch="cnn", labels=["Jazz"], frontend={}, provenance={"id": name, **provenance})

    every = meta("every", data="folders:gtzan", split="all tracks after 10-fold CV, 10% held out for early stopping")
    listed = meta("listed", data="folders:gtzan", split=described("/lab/gtzan-splits"))
    other = meta("other", data="folders:fma")
    assert in_sample([every, listed, other], "folders:gtzan") == ["every", "listed"]
    assert in_sample([other], "manifest:gtzan.csv") == []
    # the test list of the split files it was trained with is held out; its train list is not
    assert in_sample([every, listed], "folders:gtzan", split_dir="/home/gtzan-splits", split="test") == ["every"]
    assert in_sample([listed], "folders:gtzan", split_dir="/home/gtzan-splits", split="train") == ["listed"]
    assert in_sample([listed], "folders:gtzan", split_dir="/home/other-splits", split="test") == ["listed"]
