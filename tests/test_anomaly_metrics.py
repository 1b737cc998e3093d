"""The anomaly metrics against hand-computed cases and independent computations, the
discretized likelihood against its closed form, and the compressors' code lengths."""
from __future__ import annotations

import io
import math
import zlib

import numpy as np
import pytest
import torch
from PIL import Image

from xae.anomaly.complexity import code_length_bits
from xae.anomaly.metrics import auroc, average_precision, fpr_at_tpr, separation
from xae.errors import XaeError
from xae.likelihoods.discretized import DiscretizedLogistic, log_bin_probability


def test_a_hand_computed_case():
    # ranks: 0.8 (anomalous), 0.4 (normal), 0.35 (anomalous), 0.1 (normal)
    # pairs (anomalous > normal): (0.8,0.4) (0.8,0.1) (0.35,0.1) = 3 of 4 → AUROC 3/4
    # precision at the anomalies' ranks 1 and 3: 1 and 2/3 → AP = (1 + 2/3)/2 = 5/6
    # both anomalies caught first at threshold 0.35, which flags 1 of 2 normal → FPR95 = 1/2
    s, y = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    m = separation(s, y)
    assert m["auroc"] == pytest.approx(0.75)
    assert m["auprc"] == pytest.approx(5 / 6)
    assert m["fpr95"] == pytest.approx(0.5)


def test_perfect_reversed_and_tied_scores():
    y = np.array([0, 0, 0, 1, 1])
    assert separation(np.arange(5.0), y) == {"auroc": 1.0, "auprc": 1.0, "fpr95": 0.0}
    assert auroc(-np.arange(5.0), y) == 0.0
    tied = np.ones(5)
    assert auroc(tied, y) == 0.5  # one threshold: the diagonal
    assert average_precision(tied, y) == pytest.approx(2 / 5)  # the prevalence
    assert fpr_at_tpr(tied, y) == 1.0


def test_auroc_is_the_mann_whitney_probability_with_ties():
    rng = np.random.default_rng(0)
    s = rng.integers(0, 6, 300).astype(float)
    y = (rng.random(300) < 0.2 + s / 10).astype(int)
    pos, neg = s[y == 1][:, None], s[y == 0][None, :]
    u = ((pos > neg) + 0.5 * (pos == neg)).mean()
    assert auroc(s, y) == pytest.approx(u, abs=1e-12)


def test_average_precision_and_fpr95_agree_with_sklearn():
    from sklearn.metrics import average_precision_score, roc_curve

    rng = np.random.default_rng(1)
    s = np.round(rng.normal(size=500), 1)  # with ties
    y = (rng.random(500) < 1 / (1 + np.exp(-2 * s))).astype(int)
    fpr, tpr, _ = roc_curve(y, s)
    assert average_precision(s, y) == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert fpr_at_tpr(s, y) == pytest.approx(fpr[tpr >= 0.95].min(), abs=1e-12)


@pytest.mark.parametrize("labels, words", [([0, 1, 1], "shape"), ([0, 2, 1, 0], "or 1 .anomalous."),
                                           ([1, 1, 1, 1], "both normal")])
def test_bad_labels_are_refused(labels, words):
    with pytest.raises(XaeError, match=words):
        auroc(np.arange(4.0), np.array(labels))


@pytest.mark.parametrize("mu, s", [(0.3, 0.1), (0.5, 1e-3), (-3.0, 0.05), (2.0, 0.02), (0.7, 5.0)])
def test_the_discretized_logistic_sums_to_one_over_the_256_levels(mu, s):
    x = torch.arange(256, dtype=torch.float64) / 255
    logp = log_bin_probability(x, torch.tensor(mu, dtype=torch.float64),
                               torch.tensor(math.log(s), dtype=torch.float64))
    assert torch.isfinite(logp).all()
    assert float(logp.exp().sum()) == pytest.approx(1.0, abs=1e-9)


def test_the_discretized_logistic_is_the_logistic_cdf_over_a_bin():
    mu, s, k = 0.4, 0.07, 100
    x = torch.tensor([k / 255], dtype=torch.float64)

    def cdf(v: float) -> float:
        return 1 / (1 + math.exp(-(v - mu) / s))

    want = math.log(cdf((k + 0.5) / 255) - cdf((k - 0.5) / 255))
    got = log_bin_probability(x, torch.tensor(mu, dtype=torch.float64),
                              torch.tensor(math.log(s), dtype=torch.float64))
    assert float(got) == pytest.approx(want, rel=1e-12)
    edge = log_bin_probability(torch.tensor([0.0, 1.0], dtype=torch.float64),
                               torch.tensor(mu, dtype=torch.float64),
                               torch.tensor(math.log(s), dtype=torch.float64))
    assert edge.tolist() == pytest.approx([math.log(cdf(0.5 / 255)),
                                           math.log(1 - cdf(254.5 / 255))], rel=1e-12)


def test_discretized_samples_lie_on_the_grid():
    lik = DiscretizedLogistic((1, 4, 4))
    x = lik.sample(torch.full((50, 1, 4, 4), 0.5))
    assert torch.equal(x, (x * 255).round() / 255) and 0 <= float(x.min()) <= float(x.max()) <= 1
    assert 0.4 < float(x.mean()) < 0.6  # centred on μ = 0.5


def test_code_lengths_are_the_compressors_bytes():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (1, 8, 8)).astype(np.uint8)
    x = torch.from_numpy(img.astype(np.float64) / 255).unsqueeze(0)
    buf = io.BytesIO()
    Image.fromarray(img[0], "L").save(buf, format="PNG", compress_level=9)
    assert code_length_bits(x, "png")[0] == 8 * len(buf.getvalue())
    assert code_length_bits(x, "zlib")[0] == 8 * len(zlib.compress(img.tobytes(), 9))
    flat = np.zeros((1, 1, 8, 8))
    assert code_length_bits(torch.from_numpy(flat), "png")[0] < 8 * len(buf.getvalue())


def test_compressors_refuse_what_they_cannot_code():
    with pytest.raises(XaeError, match="PNG codes images"):
        code_length_bits(torch.rand(2, 10), "png")
    with pytest.raises(XaeError, match=r"needs data in \[0, 1\]"):
        code_length_bits(torch.full((1, 1, 4, 4), 2.0), "zlib")
    with pytest.raises(XaeError, match="unknown compressor"):
        code_length_bits(torch.rand(1, 1, 4, 4), "gif")
