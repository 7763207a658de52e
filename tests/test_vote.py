import numpy as np
import pytest

from mgctag.vote import softmax, top_k, vote


def test_softmax_rows_sum_to_one_and_keep_order():
    p = softmax(np.array([[1.0, 2.0, 3.0], [1000.0, 0.0, -1000.0]]))
    assert np.allclose(p.sum(axis=1), 1.0)
    assert list(p[0].argsort()) == [0, 1, 2] and p[1, 0] > 0.99


def test_mean_and_majority_can_disagree():
    # two segments mildly for class 0, one strongly for class 1
    probs = np.array([[0.55, 0.45], [0.55, 0.45], [0.0, 1.0]])
    assert vote(probs, "mean").argmax() == 1
    assert vote(probs, "majority").argmax() == 0
    assert np.isclose(vote(probs, "majority")[0], 2 / 3, atol=1e-5)


def test_majority_tie_goes_to_higher_mean():
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    assert vote(probs, "majority").argmax() == 0


def test_bad_input_and_method():
    with pytest.raises(ValueError):
        vote(np.zeros((0, 3)))
    with pytest.raises(ValueError):
        vote(np.ones((2, 2)) / 2, "median")


def test_top_k_order():
    assert top_k(np.array([0.1, 0.7, 0.2]), ["a", "b", "c"], 2) == [("b", 0.7), ("c", 0.2)]
