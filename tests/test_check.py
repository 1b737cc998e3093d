"""``xae check``: closed-form pPCA (Tipping & Bishop 1999), principal angles, the exact marginal
of a linear-Gaussian decoder against its importance-weighted estimates (Burda et al. 2016), and
the reparameterization and score-function gradient estimators (Mohamed et al. 2020)."""
from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch
from conftest import TINY, run_xae
from torch.distributions import MultivariateNormal

import xae
from xae.check import gradients, ppca
from xae.cli import main
from xae.data import load as load_data

SIGMA = 0.5


def _covariance_data(evals: list[float], n: int = 500, seed: int = 0):
    """Data whose ML sample covariance is exactly U diag(evals) Uᵀ, with its mean and U."""
    g = torch.Generator().manual_seed(seed)
    d = len(evals)
    u, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    z = torch.randn(n, d, generator=g, dtype=torch.float64)
    z = z - z.mean(0)
    z = z @ torch.linalg.inv(torch.linalg.cholesky(z.T @ z / n)).T  # sample covariance = I
    mu = torch.randn(d, generator=g, dtype=torch.float64)
    return z @ (u * torch.tensor(evals, dtype=torch.float64).sqrt()).T + mu, mu, u


def test_ml_ppca_recovers_a_known_eigen_structure() -> None:
    evals = [9.0, 4.0, 1.0, 1.0, 1.0, 1.0, 1.0]
    x, mu, u = _covariance_data(evals)
    fit = ppca.fit_ppca(x, 2)
    assert torch.allclose(fit.eigenvalues, torch.tensor(evals, dtype=torch.float64), atol=1e-9)
    assert fit.sigma2 == pytest.approx(1.0)  # the mean of the discarded eigenvalues (eq. 8)
    assert torch.allclose(fit.mu, mu, atol=1e-12)
    cov = u @ torch.diag(torch.tensor(evals, dtype=torch.float64)) @ u.T
    assert torch.allclose(fit.w @ fit.w.T + fit.sigma2 * torch.eye(7, dtype=torch.float64), cov,
                          atol=1e-9)  # W_ML = U_k (Λ_k − σ² I)^{1/2} (eq. 7)
    assert torch.allclose(torch.linalg.svdvals(fit.w), torch.tensor([8.0, 3.0]).double().sqrt())
    assert ppca.principal_angles(fit.w, u[:, :2]).max() < 1e-5
    exact = MultivariateNormal(mu, covariance_matrix=cov).log_prob(x)
    assert torch.allclose(fit.log_likelihood(x), exact, atol=1e-8)
    # unequal noise eigenvalues: σ² is their mean, the model covariance no longer exact
    assert ppca.fit_ppca(_covariance_data([9.0, 4.0, 2.0, 1.0])[0], 2).sigma2 == pytest.approx(1.5)
    with pytest.raises(xae.XaeError, match="latent dim < data dim"):
        ppca.fit_ppca(x, 7)


def test_principal_angles() -> None:
    g = torch.Generator().manual_seed(0)
    a = torch.randn(6, 2, generator=g, dtype=torch.float64)
    mix = torch.tensor([[2.0, 1.0], [0.5, -3.0]], dtype=torch.float64)
    assert ppca.principal_angles(a, a @ mix).max() < 1e-5  # the same span: 0°
    e = torch.eye(6, dtype=torch.float64)
    assert torch.allclose(ppca.principal_angles(e[:, :2], e[:, 2:4]),
                          torch.full((2,), 90.0, dtype=torch.float64))
    theta = math.radians(30.0)
    tilted = torch.stack([e[:, 0], math.cos(theta) * e[:, 1] + math.sin(theta) * e[:, 2]], 1)
    assert ppca.principal_angles(e[:, :2], tilted).tolist() == pytest.approx([0.0, 30.0],
                                                                            abs=1e-6)
    collapsed = torch.stack([e[:, 0], torch.zeros(6, dtype=torch.float64)], 1)
    assert ppca.principal_angles(e[:, :2], collapsed).tolist() == pytest.approx([0.0, 90.0])


def _linear_model(shrink: float = 1.0, var_scale: float = 1.0, d: int = 6):
    """A hand-set linear VAE: W with orthogonal columns, so that the exact posterior
    N(M⁻¹Wᵀ(x−b), σ² M⁻¹), M = WᵀW + σ²I (Tipping & Bishop, eq. 6), is diagonal. The encoder
    gives that posterior with its mean scaled by ``shrink`` and its variance by ``var_scale``."""
    model = xae.build(xae.preset("linear-vae", **{"data.dim": d, "model.latent_dim": 2}))
    g = torch.Generator().manual_seed(1)
    w = torch.linalg.qr(torch.randn(d, 2, generator=g))[0] * torch.tensor([3.0, 1.5])
    b = torch.randn(d, generator=g)
    m = (w * w).sum(0) + SIGMA**2  # diag(M)
    proj = model.bottleneck.proj
    with torch.no_grad():
        model.decoder.net[0].weight.copy_(w)
        model.decoder.net[0].bias.copy_(b)
        model.likelihood.log_scale.fill_(math.log(SIGMA))
        proj.weight.zero_()
        proj.weight[:2] = shrink * w.T / m[:, None]
        proj.bias[:2] = -shrink * (w.T / m[:, None]) @ b
        proj.bias[2:] = torch.log(var_scale * SIGMA**2 / m)
    x = torch.randn(300, 2, generator=g) @ w.T + b + SIGMA * torch.randn(300, d, generator=g)
    return model, w, b, x


def test_exact_marginal_of_a_hand_set_decoder() -> None:
    model, w, b, x = _linear_model()
    lg = ppca.linear_gaussian(model)
    assert lg.sigma2 == pytest.approx(SIGMA**2)
    cov = w.double() @ w.double().T + SIGMA**2 * torch.eye(6, dtype=torch.float64)
    expected = MultivariateNormal(b.double(), covariance_matrix=cov).log_prob(x.double())
    assert torch.allclose(lg.log_likelihood(x), expected, atol=1e-6)
    with pytest.raises(xae.XaeError, match="one Linear layer"):
        ppca.linear_gaussian(xae.build(xae.preset("vae", **{"model.mlp.hidden": [8]})))


def test_iw_estimate_is_below_the_exact_value_and_converges() -> None:
    model, _, _, x = _linear_model(shrink=0.6, var_scale=3.0)
    exact = ppca.linear_gaussian(model).log_likelihood(x)
    gaps, ses = [], []
    for k in (1, 10, 100, 1000):
        gap = exact - xae.log_likelihood(model, x, k=k, seed=k).double()
        gaps.append(float(gap.mean()))
        ses.append(float(gap.std() / math.sqrt(gap.numel())))
    assert all(g > -3 * se for g, se in zip(gaps, ses)), (gaps, ses)  # IW ≤ exact (in mean)
    assert gaps[0] > 0.2 and gaps[0] > gaps[1] > gaps[2] > gaps[3], gaps  # a real gap, closing
    assert gaps[3] < 0.1 * gaps[0]
    model, *_ = _linear_model()  # the exact posterior: every importance weight is p(x)
    exact = ppca.linear_gaussian(model).log_likelihood(x)
    for k in (1, 50):
        assert (xae.log_likelihood(model, x, k=k).double() - exact).abs().max() < 1e-3


def _expected_recon_gradient(model, x) -> torch.Tensor:
    """∇_φ of the closed form of (1/B) Σ_b E_q[log N(x_b; W z + b, σ² I)]."""
    lg = ppca.linear_gaussian(model)
    q = model.encode(x).posterior
    w, b = lg.w.float(), lg.b.float()
    sq = ((x - q.mean @ w.T - b) ** 2).sum(-1) + (q.var * (w * w).sum(0)).sum(-1)
    f = -sq / (2 * lg.sigma2) - x.shape[1] * math.log(2 * math.pi * lg.sigma2) / 2
    params = [p for _, p in gradients.encoder_parameters(model)]
    return torch.cat([g.reshape(-1) for g in torch.autograd.grad(f.mean(), params)])


def test_gradient_estimators_agree_in_mean_and_reparameterization_varies_least() -> None:
    model, _, _, x = _linear_model(shrink=0.6, var_scale=3.0)
    result = gradients.gradient_check(model, x[:50], samples=300, seed=0)
    exact_norm = float(_expected_recon_gradient(model, x[:50]).norm())
    est = result.estimators
    assert result.agree, result.agreement
    assert est["reparameterization"].grad_norm == pytest.approx(exact_norm, rel=0.02)
    assert est["score+baseline"].grad_norm == pytest.approx(exact_norm, rel=0.1)
    assert est["reparameterization"].mean_variance < est["score+baseline"].mean_variance \
        < est["score"].mean_variance
    assert result.parameters == sum(p.numel() for p in model.bottleneck.parameters())
    with pytest.raises(xae.XaeError, match="at least 2 samples"):
        gradients.gradient_check(model, x, samples=1)


def test_check_ppca_cli_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "ppca"
    proc = run_xae("check", "ppca", "--out", str(out), "--epochs", "400", "--n", "500",
                   "--k", "1,10,100", "--set", "train.figures=false")
    assert proc.returncode == 0, proc.stderr
    assert "max_principal_angle_deg" in proc.stdout and "iw_k100_minus_exact" in proc.stdout
    result = json.loads((out / "ppca.json").read_text())
    assert (out / "ppca.png").stat().st_size > 0 and (out / "run" / "model.safetensors").is_file()
    assert set(result["iw"]) == {"1", "10", "100"}
    assert result["summary"]["max_principal_angle_deg"] < 5
    assert result["summary"]["sigma2_rel_error"] < 0.1
    assert "check ppca: PASS (3 of 3 within tolerance)" in proc.stdout
    assert [v["passed"] for v in result["verdicts"]] == [True] * 3


@pytest.fixture(scope="module")
def ppca_run(tmp_path_factory) -> Path:
    """A linear VAE trained briefly by the pPCA check's recipe (400 full-batch steps)."""
    cfg = ppca.check_config({"train.epochs": 400, "data.n": 500, "train.figures": False})
    return xae.train(cfg, tmp_path_factory.mktemp("ppca") / "run")


def _verdict_rows(out: str) -> dict[str, list[str]]:
    """The verdict lines printed after the table: quantity -> [value, bound, PASS/FAIL]."""
    rows = re.findall(r"^  (.+?)\s{2,}(\S+)  ([≤≥] \S+)\s+(PASS|FAIL)$", out, re.M)
    return {q: [v, b, verdict] for q, v, b, verdict in rows}


def test_check_ppca_prints_each_tolerance_and_a_verdict(ppca_run, tmp_path, capsys) -> None:
    assert main(["check", "ppca", "--run", str(ppca_run), "--k", "1,100",
                 "--out", str(tmp_path / "pass")]) == 0
    out = capsys.readouterr().out
    rows = _verdict_rows(out)
    result = json.loads((tmp_path / "pass" / "ppca.json").read_text())["summary"]
    measured = {"max principal angle (deg)": result["max_principal_angle_deg"],
                "σ² relative error": result["sigma2_rel_error"],
                "|IW(K=100) − exact| (nat)": abs(result["iw_k100_minus_exact"])}
    limits = dict(zip(measured, ppca.TOLERANCES.values()))
    assert set(rows) == set(measured), out
    for name, (value, bound, verdict) in rows.items():
        assert float(value) == pytest.approx(measured[name], rel=1e-3)
        assert bound == f"≤ {limits[name]:g}" and verdict == "PASS"
    assert out.rstrip().endswith("check ppca: PASS (3 of 3 within tolerance)")


def test_check_ppca_fails_with_status_1_past_a_tolerance(ppca_run, tmp_path, capsys,
                                                         monkeypatch) -> None:
    angle = ppca.check_ppca(xae.load(ppca_run), load_data(xae.load(ppca_run).config.data),
                            ks=(1,)).max_angle_deg
    monkeypatch.setitem(ppca.TOLERANCES, "max_principal_angle_deg", angle / 2)
    assert main(["check", "ppca", "--run", str(ppca_run), "--k", "1,100",
                 "--out", str(tmp_path / "fail")]) == 1
    out = capsys.readouterr().out
    value, bound, verdict = _verdict_rows(out)["max principal angle (deg)"]
    assert verdict == "FAIL" and bound == f"≤ {angle / 2:g}"
    assert _verdict_rows(out)["σ² relative error"][2] == "PASS"
    assert out.rstrip().endswith("check ppca: FAIL (2 of 3 within tolerance)")
    verdicts = json.loads((tmp_path / "fail" / "ppca.json").read_text())["verdicts"]
    assert [v["passed"] for v in verdicts] == [False, True, True]


def test_check_gradients_cli_end_to_end(tmp_path: Path, capsys) -> None:
    run = tmp_path / "vae"
    assert main(["train", "--preset", "vae", "--steps", "30", "--no-progress", "--set", *TINY,
                 "train.figures=false", "--out", str(run)]) == 0
    proc = run_xae("check", "gradients", str(run), "--samples", "100", "--batch", "16")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "means_agree" in proc.stdout
    saved = json.loads((run / "checks" / "gradients.json").read_text())
    summary = saved["summary"]
    assert summary["samples"] == 100 and summary["batch"] == 16
    rows = _verdict_rows(proc.stdout)
    assert len(rows) == 4 and all(r[2] == "PASS" for r in rows.values()), proc.stdout
    assert rows["variance ratio score+baseline / reparameterization"][1] == "≥ 1"
    assert float(rows["variance ratio score+baseline / score"][0]) == pytest.approx(
        summary["score+baseline.mean_variance"] / summary["score.mean_variance"], rel=1e-3)
    assert "check gradients: PASS (4 of 4 within tolerance)" in proc.stdout
    # an impossible tolerance: the agreement verdicts fail and the status is 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(gradients, "AGREE_FRACTION", 1.01)
        assert main(["check", "gradients", str(run), "--samples", "20", "--batch", "16",
                     "--out", str(tmp_path / "fail")]) == 1
    out = capsys.readouterr().out
    assert [r[2] for r in _verdict_rows(out).values()] == ["FAIL", "FAIL", "PASS", "PASS"]
    assert "check gradients: FAIL (2 of 4 within tolerance)" in out
    assert (run / "checks" / "gradients.png").stat().st_size > 0
    # bad input: exit 2, one line, nothing written
    for argv, needle in [(["check", "ppca", "--run", str(run)], "linear-Gaussian"),
                         (["check", "gradients", str(tmp_path / "nope")], "not a folder"),
                         (["check", "gradients", str(run), "--samples", "1"], "--samples"),
                         (["check", "ppca", "--k", "0,10"], "--k takes"),
                         (["check", "ppca", "--run", str(run), "--epochs", "3"], "--epochs")]:
        assert main([*argv, "--out", str(tmp_path / "bad")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xae: error: ") and needle in err, err
    assert not (tmp_path / "bad").exists()


def test_check_gradients_rejects_a_deterministic_model(tmp_path: Path, capsys) -> None:
    run = xae.train(xae.preset("ae", steps=2, progress=False, figures=False,
                               **{"model.mlp.hidden": [8]}), tmp_path / "ae")
    assert main(["check", "gradients", str(run)]) == 2
    assert "deterministic" in capsys.readouterr().err
    assert not (run / "checks").exists()
