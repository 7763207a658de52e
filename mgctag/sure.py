"""When a scan has heard enough of a track: the test that ends its rounds (`--segments auto`).

A track's score per genre is the mean over its windows of what each window says (mgctag.vote:
its probabilities, or for a majority vote its top genre), and the genres written depend on that
mean only through the signs of a few margins, each itself a mean over the windows of a linear
function of what they say: the order of the genres written (score(Rock) - score(Blues)), each
one's share against --min-confidence (score(Rock) - 0.35 x the sum of all scores), and every
other genre staying out (score of the last written, or --min-confidence's share, minus its score).

After k of the plan's N windows, a margin whose heard windows average m would flip only if the
N - k unheard ones averaged below -k m / (N - k). Taking the windows as draws from one track,
the unheard mean is predicted with variance s^2 (1/k + 1/(N - k)), so the flip lies
z = (m / s) sqrt(N k / (N - k)) standard deviations away. The scan stops listening when every
margin has z >= LEVEL (2: the unheard windows would have to be a two-sigma surprise, about 1 in
44 per margin were they normal), and never hears more than the N windows of `--segments N`.
Two windows say little about a spread, so s^2 is shrunk toward a prior of PRIOR_SPREAD times the
margin's own scale (the mean of its terms' absolute sizes), worth PRIOR_WEIGHT windows.

The values were chosen with tools/sure_table.py on half of a library of four-minute tracks joined
from different gtzan-mini clips of one genre, each window a different song (the AudioSet model at
its --min-confidence 0.35), and checked on the other half: 4.0 and 4.1 windows of 6 heard, the
written genres of all six kept on 49 of 50 and 50 of 50 tracks. A three-sigma level kept 50 of 50
at 4.6 windows; a prior a fifth as wide heard 2.9 and kept 46 of 50 (bench/RESULTS.md).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

LEVEL = 2.0
PRIOR_SPREAD = 0.5
PRIOR_WEIGHT = 1.0
FIRST_ROUND = 2  # windows heard before the first test: one says nothing about how windows differ


@dataclass(frozen=True)
class Rule:
    """What the written genres depend on (--top-k, --min-confidence, --vote) and the level."""

    top_k: int
    floor: float
    vote: str = "mean"
    level: float = LEVEL


def next_round(heard: int, planned: int) -> tuple[int, int] | None:
    """The windows (a, b) of the spread order to hear next: FIRST_ROUND, then one more at a time
    (so the test may stop at any count; opening the file again costs little beside decoding a
    window), up to the plan's `planned`; None once all are heard."""
    if heard >= planned > 0:
        return None
    return heard, (FIRST_ROUND if heard == 0 else heard + 1)


def settled(window_scores: np.ndarray, planned: int, rule: Rule) -> bool:
    """Whether the unheard windows could still change the written genres (see the module doc).

    `window_scores`: (heard windows, genres) scores of the genres that may be written."""
    k = len(window_scores)
    if k >= planned:
        return True
    x = contributions(np.asarray(window_scores, np.float64), rule.vote)
    c = margins(x.mean(axis=0), rule.top_k, rule.floor)
    values = x @ c.T  # (windows, margins)
    m = values.mean(axis=0)
    scale = (x @ np.abs(c).T).mean(axis=0)
    var = (((values - m) ** 2).sum(axis=0) + PRIOR_WEIGHT * (PRIOR_SPREAD * scale) ** 2) / (k - 1 + PRIOR_WEIGHT)
    z = m / np.sqrt(np.maximum(var, 1e-24)) * np.sqrt(planned * k / (planned - k))
    return bool(np.all(z >= rule.level))


def contributions(scores: np.ndarray, vote: str) -> np.ndarray:
    """What each window adds to the track's mean (mgctag.vote.vote): its scores, or for a majority
    vote its top genre (one-hot) with the mean's tie-break."""
    if vote == "majority":
        return np.eye(scores.shape[1])[scores.argmax(axis=1)] + scores * 1e-6
    return scores


def written(mean: np.ndarray, top_k: int, floor: float) -> list[int]:
    """The genres (indices, best first) a track whose windows average `mean` is given, as
    mgctag.decide chooses them: the top `top_k` whose share reaches `floor`."""
    share = mean / max(mean.sum(), 1e-12)
    return [int(g) for g in np.argsort(-mean, kind="stable")[:top_k] if share[g] >= floor]


def margins(mean: np.ndarray, top_k: int, floor: float) -> np.ndarray:
    """(margins, genres): rows r with r @ mean > 0 while the written genres stay as `mean` gives them."""
    n = len(mean)
    eye, ones = np.eye(n), np.ones(n)
    ranked = np.argsort(-mean, kind="stable")
    written_ = written(mean, top_k, floor)
    rows = [eye[a] - eye[b] for a, b in zip(written_, written_[1:])]
    if floor > 0:
        rows += [eye[g] - floor * ones for g in written_]
    for j in ranked:
        if j in written_:
            continue
        rows.append(eye[written_[-1]] - eye[j] if len(written_) == top_k else floor * ones - eye[j])
    return np.array(rows) if rows else np.zeros((0, n))
