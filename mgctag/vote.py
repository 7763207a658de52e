"""Turning segment logits into a track's genres: the one place scan, train and evaluate share."""

from __future__ import annotations

import numpy as np

METHODS = ("mean", "majority")


def softmax(logits: np.ndarray) -> np.ndarray:
    z = logits - logits.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def sigmoid(logits: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * logits))  # = 1 / (1 + exp(-x)), without overflow


def activate(logits: np.ndarray, *, multilabel: bool) -> np.ndarray:
    """Logits -> probabilities: independent sigmoids for a multi-label tagger (AudioSet), else a softmax."""
    return sigmoid(logits) if multilabel else softmax(logits)


def vote(probs: np.ndarray, method: str = "mean") -> np.ndarray:
    """Segment probabilities (S, C) -> track probabilities (C,).

    mean: the average of the segments' softmax outputs.
    majority: the share of segments whose top class is each label; ties go to the label
    with the higher mean probability (added at a scale too small to change any count).
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) == 0:
        raise ValueError("vote needs a (segments, classes) array with at least one segment")
    mean = probs.mean(axis=0)
    if method == "mean":
        return mean
    if method == "majority":
        counts = np.bincount(probs.argmax(axis=1), minlength=probs.shape[1]) / len(probs)
        return counts + mean * 1e-6
    raise ValueError(f"unknown vote method {method!r}; expected one of {METHODS}")


def top_k(track_probs: np.ndarray, labels: list[str], k: int) -> list[tuple[str, float]]:
    """The k most probable labels with their scores, best first."""
    order = np.argsort(-np.asarray(track_probs), kind="stable")[: max(1, k)]
    return [(labels[i], float(track_probs[i])) for i in order]
