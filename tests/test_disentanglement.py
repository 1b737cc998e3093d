"""The disentanglement metrics (BetaVAE, FactorVAE, MIG, DCI, SAP) on synthetic codes of a tiny
factor grid: the identity on the factors scores near 1 on each, a rotation that mixes every
factor into every dimension scores near chance; closed forms of MIG and DCI; the bad input."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import sklearn
import torch

from xae.errors import XaeError
from xae.evaluate.disentanglement import (PREFIX, dci_of, dci_score, disentanglement_report,
                                          disentanglement_scores, factor_vae_score, mig_of,
                                          mig_score, sap_score)
from xae.evaluate.disentanglement.mig import histogram_discretize
from xae.evaluate.report import HIGHER_IS_BETTER

SMALL = dict(batch_size=16, num_train=300, num_eval=200, num_variance_estimate=300)
# a rotation of R⁴ whose every entry is ±1/2: each code dimension carries every factor equally
HADAMARD = np.array([[1, 1, 1, 1], [1, -1, 1, -1], [1, 1, -1, -1], [1, -1, -1, 1]]) / 2


class Grid:
    """Four discrete factors; the "image" of a point is its factor values scaled to [−1, 1]."""

    names = ("a", "b", "c", "d")

    def __init__(self, sizes: tuple[int, ...] = (3, 4, 5, 6)) -> None:
        self.sizes = sizes
        self.names = Grid.names[:len(sizes)]

    def sample_factors(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([rng.integers(s, size=n) for s in self.sizes], axis=1)

    def images(self, factors: np.ndarray) -> torch.Tensor:
        half = (np.array(self.sizes) - 1) / 2
        return torch.tensor((factors - half) / half, dtype=torch.float32)


def linear(matrix: np.ndarray, noise: float = 0.01, seed: int = 1):
    """The representation x ↦ x·matrix + small Gaussian noise (its own seeded stream)."""
    rng = np.random.default_rng(seed)
    return lambda x: x.numpy().astype(np.float64) @ matrix \
        + noise * rng.standard_normal((len(x), matrix.shape[1]))


def scores(matrix: np.ndarray, seed: int = 0) -> dict[str, float]:
    out = disentanglement_scores(Grid(), linear(matrix), seed=seed, **SMALL)["metrics"]
    return {k.removeprefix(PREFIX): v for k, v in out.items()}


def mixing_rotation(seed: int) -> np.ndarray:
    """A random signed permutation of the rows of HADAMARD: still a rotation mixing all four."""
    rng = np.random.default_rng(seed)
    return np.eye(4)[rng.permutation(4)] * rng.choice([-1, 1], 4) @ HADAMARD


def test_the_identity_on_the_factors_scores_near_one_on_every_metric() -> None:
    s = scores(np.eye(4))
    assert s["beta_vae"] > 0.95 and s["factor_vae"] > 0.95
    assert s["factor_vae_active_dims"] == 4
    assert s["mig"] > 0.9
    assert s["dci_disentanglement"] > 0.9 and s["dci_completeness"] > 0.9
    assert s["dci_informativeness_test"] > 0.95
    assert s["sap"] > 0.2  # a 1-D linear SVM cannot separate a factor's middle values


@pytest.mark.parametrize("seed", [0, 1])
def test_a_rotation_mixing_every_factor_into_every_dimension_scores_near_chance(seed) -> None:
    ident, rot = scores(np.eye(4), seed), scores(mixing_rotation(seed), seed)
    # every dimension carries every factor alike: no gap, no alignment (chance is 1/4)
    assert rot["mig"] < 0.1 and ident["mig"] - rot["mig"] > 0.7
    assert rot["dci_disentanglement"] < 0.1 and rot["dci_completeness"] < 0.1
    assert rot["sap"] < 0.06 and ident["sap"] - rot["sap"] > 0.15
    assert rot["beta_vae"] < 0.5 and rot["factor_vae"] < 0.5
    # … but the information is all still there: a rotation is invertible
    assert rot["dci_informativeness_train"] > 0.95


def test_a_generic_random_rotation_scores_lower_than_the_identity() -> None:
    q, _ = np.linalg.qr(np.random.default_rng(3).standard_normal((4, 4)))
    ident, rot = scores(np.eye(4)), scores(q)
    for metric in ("mig", "dci_disentanglement", "dci_completeness"):
        assert ident[metric] - rot[metric] > 0.4, metric


def full_grid(sizes: tuple[int, ...]) -> np.ndarray:
    """Every point of the grid once: the factors are exactly independent in the sample."""
    return np.stack(np.meshgrid(*map(np.arange, sizes), indexing="ij"), -1).reshape(-1, len(sizes))


def test_mig_closed_forms_on_the_full_grid() -> None:
    y = full_grid((3, 4, 5))
    assert mig_of(y.astype(float), y)["mig"] == pytest.approx(1.0, abs=1e-12)
    # factor a in two dimensions: its gap is 0, the others' 1
    twice = np.column_stack([y[:, 0], y[:, 0], y[:, 1], y[:, 2]]).astype(float)
    out = mig_of(twice, y)
    assert out["mig"] == pytest.approx(2 / 3, abs=1e-12)
    assert np.allclose(out["normalized_mi"], [[1, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
                       atol=1e-12)


def test_the_histogram_has_twenty_equal_width_bins_per_dimension() -> None:
    z = np.column_stack([np.linspace(0, 1, 200), np.linspace(-5, 5, 200) ** 3])
    bins = histogram_discretize(z)
    assert bins.min() == 1 and bins.max() == 20
    assert np.array_equal(np.bincount(bins[:, 0])[1:], np.full(20, 10))


def test_dci_closed_forms() -> None:
    assert dci_of(np.eye(3)[[2, 0, 1]]) == pytest.approx(
        {"disentanglement": 1.0, "completeness": 1.0}, abs=1e-8)
    assert dci_of(np.ones((3, 3))) == pytest.approx(
        {"disentanglement": 0.0, "completeness": 0.0}, abs=1e-8)
    # one code explains both factors (D = 0), each factor lives in that one code (C = 1)
    assert dci_of(np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(
        {"disentanglement": 0.0, "completeness": 1.0}, abs=1e-8)


def test_the_scores_are_deterministic_given_the_seed() -> None:
    rng = lambda: np.random.default_rng(7)  # noqa: E731
    a = mig_score(Grid(), linear(np.eye(4), seed=2), rng(), num_train=200)
    b = mig_score(Grid(), linear(np.eye(4), seed=2), rng(), num_train=200)
    assert a == b


@pytest.mark.parametrize("call, needles", [
    (lambda g, r, rng: mig_score(g, r, rng, num_train=19), ["MIG", "at least 20", "19"]),
    (lambda g, r, rng: dci_score(g, r, rng, num_train=5), ["DCI", "at least 6", "5"]),
    (lambda g, r, rng: sap_score(g, r, rng, num_train=3), ["SAP", "at least 6", "3"]),
    (lambda g, r, rng: factor_vae_score(g, r, rng, batch_size=1), ["batch size",
                                                                    "at least 2"]),
])
def test_too_few_samples_name_the_count_and_the_minimum(call, needles) -> None:
    with pytest.raises(XaeError) as e:
        call(Grid(), linear(np.eye(4)), np.random.default_rng(0))
    assert all(n in str(e.value) for n in needles), str(e.value)


def test_a_factor_with_one_value_in_the_sample_is_an_error() -> None:
    # 20 points of a 6-value factor (and of the others) sampled only from value 0 of 'c'
    class Stuck(Grid):
        def sample_factors(self, n, rng):
            f = super().sample_factors(n, rng)
            f[:, 2] = 0
            return f

    with pytest.raises(XaeError, match="factor 'c' takes a single value"):
        mig_score(Stuck(), linear(np.eye(4)), np.random.default_rng(0), num_train=50)


def test_a_constant_factor_and_a_one_dimensional_code_are_errors() -> None:
    with pytest.raises(XaeError, match="leaves factor 'b' constant"):
        disentanglement_scores(Grid((3, 1, 4)), linear(np.eye(3)), **SMALL)
    with pytest.raises(XaeError, match="latent of 2 dimensions"):
        mig_score(Grid(), linear(np.ones((4, 1))), np.random.default_rng(0), num_train=50)


class Bars:
    """8×8 images: a bright row (8 positions) of one of 3 intensities — for a real model."""

    names, sizes = ("row", "intensity"), (8, 3)

    def sample_factors(self, n, rng):
        return np.stack([rng.integers(s, size=n) for s in self.sizes], axis=1)

    def images(self, factors):
        x = torch.zeros(len(factors), 1, 8, 8)
        x[torch.arange(len(factors)), 0, torch.as_tensor(factors[:, 0])] = \
            torch.as_tensor(factors[:, 1] + 1, dtype=torch.float32)[:, None] * 5
        return x


def test_the_report_scores_a_trained_model_on_its_posterior_means(trained) -> None:
    import xae
    from xae.data import load

    model = xae.load(trained)
    data = load(model.config.data)
    with pytest.raises(XaeError, match="needs data with known factors"):
        disentanglement_report(model, data, seed=0, **SMALL)
    data = dataclasses.replace(data, info={**data.info, "factors": Bars()})
    a = disentanglement_report(model, data, seed=0, **SMALL)
    assert a == disentanglement_report(model, data, seed=0, **SMALL)
    assert a["sklearn_version"] == sklearn.__version__
    assert a["factor_names"] == ["row", "intensity"]
    assert np.array(a["normalized_mi"]).shape == (2, 2)  # 2 latents × 2 factors
    assert all(0 <= v <= 1 for k, v in a["metrics"].items() if "active_dims" not in k)
    # every score but the count of active dimensions ranks sweeps as more-is-better
    assert {k for k in HIGHER_IS_BETTER if k.startswith(PREFIX)} \
        == set(a["metrics"]) - {PREFIX + "factor_vae_active_dims"}


def test_eval_disentanglement_on_data_without_factors_exits_2(trained, capsys) -> None:
    from xae.cli import main

    before = (trained / "eval.json").read_bytes() if (trained / "eval.json").exists() else None
    assert main(["eval", str(trained), "--disentanglement", "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "--disentanglement needs data with known factors" in err
    after = (trained / "eval.json").read_bytes() if (trained / "eval.json").exists() else None
    assert before == after
