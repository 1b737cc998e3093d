"""The code prior (``xae prior fit``): a causal transformer that learns a known distribution
over index sequences exactly, never looks ahead, scores sequences as the sum of its per-position
log-softmax, and fits, saves and reloads a prior over a trained FSQ autoencoder's codes."""
from __future__ import annotations

import itertools
import json
import math
import shutil

import pytest
import torch

import xae
import xae.codeprior.fit as fit_mod
from xae.cli import main
from xae.codeprior import CodeTransformer, fit_code_prior, load_code_prior
from xae.codeprior.fit import code_grid, save_code_prior, train_code_transformer
from xae.codeprior.transformer import CodePriorConfig
from xae.data import load as load_data

TINY = {"layers": 1, "dim": 32, "heads": 2}


def tiny(vocab: int = 7, length: int = 6, **kw) -> CodeTransformer:
    torch.manual_seed(0)
    return CodeTransformer(CodePriorConfig(vocab=vocab, length=length, **{**TINY, **kw})).eval()


# --- the toy distribution: a Markov chain over K = 5 states, T = 4 tokens -------------------
K, T = 5, 4
INIT = torch.tensor([0.50, 0.20, 0.15, 0.10, 0.05])
TRANS = torch.tensor([[0.70, 0.15, 0.10, 0.03, 0.02],
                      [0.02, 0.60, 0.30, 0.05, 0.03],
                      [0.10, 0.05, 0.50, 0.30, 0.05],
                      [0.02, 0.10, 0.03, 0.25, 0.60],
                      [0.45, 0.02, 0.02, 0.01, 0.50]])


def chain_log_prob(seqs: torch.Tensor) -> torch.Tensor:
    logp = INIT.log()[seqs[:, 0]]
    for t in range(1, seqs.shape[1]):
        logp = logp + TRANS.log()[seqs[:, t - 1], seqs[:, t]]
    return logp


def test_the_transformer_learns_a_markov_chain():
    seqs = torch.tensor(list(itertools.product(range(K), repeat=T)))  # all K^T sequences
    true = chain_log_prob(seqs)
    p = true.exp()
    assert abs(float(p.sum()) - 1) < 1e-5
    data = seqs[torch.multinomial(p, 10_000, replacement=True,
                                  generator=torch.Generator().manual_seed(1))]
    cfg = CodePriorConfig(vocab=K, length=T, epochs=10, batch_size=500, lr=1e-2, **TINY)
    torch.manual_seed(0)
    ar = CodeTransformer(cfg)

    def kl() -> float:  # KL(true ‖ model), exact: every sequence enumerated
        with torch.no_grad():
            return float((p * (true - ar.log_prob(seqs))).sum())

    assert kl() > 0.5  # untrained: far from the chain
    steps = train_code_transformer(ar, data, log=lambda s: None)
    assert steps == 10 * 20
    assert kl() < 0.01
    with torch.no_grad():
        model = ar.log_prob(seqs)
    assert abs(float(model.exp().sum()) - 1) < 1e-4  # a normalized distribution over K^T
    likely = p > 0.01  # 26 sequences, 62% of the mass
    assert (model[likely] - true[likely]).abs().max() < 0.2
    # its samples follow the chain: per-position marginals and the whole-sequence histogram
    s = ar.sample(20_000, generator=torch.Generator().manual_seed(2))
    assert s.shape == (20_000, T) and s.dtype == torch.long
    code = (s * K ** torch.arange(T - 1, -1, -1)).sum(1)  # the index into `seqs`
    freq = torch.bincount(code, minlength=K ** T) / len(s)
    for t in range(T):
        marginal = torch.zeros(K).index_add_(0, seqs[:, t], p)
        assert (torch.bincount(s[:, t], minlength=K) / len(s) - marginal).abs().max() < 0.03
    assert 0.5 * float((freq - p).abs().sum()) < 0.08


def test_changing_a_token_changes_no_logits_at_or_before_it():
    ar = tiny()
    tokens = torch.randint(7, (3, 6), generator=torch.Generator().manual_seed(0))
    base = ar(tokens)
    assert base.shape == (3, 6, 7)
    for t in range(6):
        changed = tokens.clone()
        changed[:, t] = (changed[:, t] + 1) % 7
        out = ar(changed)
        torch.testing.assert_close(out[:, : t + 1], base[:, : t + 1])  # positions ≤ t
        if t < 5:
            assert (out[:, t + 1] - base[:, t + 1]).abs().max() > 1e-4  # t + 1 reads token t


def test_log_prob_is_the_sum_of_the_picked_log_softmax():
    ar = tiny()
    tokens = torch.randint(7, (4, 6), generator=torch.Generator().manual_seed(1))
    logits = ar(tokens)
    by_hand = torch.zeros(4)
    for b in range(4):
        for t in range(6):
            by_hand[b] += torch.log_softmax(logits[b, t], -1)[tokens[b, t]]
    torch.testing.assert_close(ar.log_prob(tokens), by_hand)
    # and the first position is predicted from the start token alone
    first = torch.log_softmax(ar.logits_of_inputs(torch.full((1, 1), ar.start)), -1)[0, 0]
    torch.testing.assert_close(torch.log_softmax(logits[:, 0], -1), first.expand(4, -1))


def test_sampling_is_reproducible_and_checks_its_arguments():
    ar = tiny()
    a = ar.sample(50, generator=torch.Generator().manual_seed(3))
    b = ar.sample(50, generator=torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == (50, 6) and 0 <= a.min() and a.max() < 7
    # a near-zero temperature picks the most likely token at each step
    greedy = ar.sample(5, temperature=1e-4, generator=torch.Generator().manual_seed(4))
    assert (greedy == greedy[0]).all()
    with pytest.raises(xae.XaeError, match="temperature"):
        ar.sample(5, temperature=0)
    with pytest.raises(xae.XaeError, match=r"tokens must lie in \[0, 7\)"):
        ar.log_prob(torch.full((2, 6), 7))
    with pytest.raises(xae.XaeError, match=r"shape \(batch, 6\)"):
        ar.log_prob(torch.zeros(2, 5, dtype=torch.long))


@pytest.mark.parametrize("overrides,match", [
    ({"dim": 30, "heads": 4}, "dim 30 must be divisible by heads 4"),
    ({"layers": 0}, "layers must be a positive integer"),
    ({"heads": -1}, "heads must be a positive integer"),
    ({"lr": 0.0}, "lr must be a positive number"),
    ({"epochs": 0}, "epochs must be a positive integer"),
    ({"vocab": 1}, "vocab must be at least 2"),
    ({"dropout": 1.0}, "dropout"),
])
def test_bad_sizes_are_rejected_by_name(overrides, match):
    with pytest.raises(xae.XaeError, match=match):
        CodePriorConfig(**{"vocab": 5, "length": 4, **overrides})


def test_the_config_round_trips_through_json():
    cfg = CodePriorConfig(vocab=9, length=3, layers=3, dim=48, heads=6, lr=2e-3, seed=7)
    assert CodePriorConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    with pytest.raises(xae.XaeError, match="unknown code-prior config keys"):
        CodePriorConfig.from_dict({**cfg.to_dict(), "width": 3})


# --- end to end on a tiny FSQ autoencoder ----------------------------------------------------
@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    base = tmp_path_factory.mktemp("code_prior")
    common = {"model.mlp.hidden": [64], "steps": 50, "progress": False, "figures": False,
              "log_every": 25}
    fsq = xae.train(xae.preset("ae", bottleneck="fsq", prior="codes", latent_dim=8,
                               **{"model.fsq.levels": [5, 5]}, **common), base / "fsq")
    ae = xae.train(xae.preset("ae", latent_dim=4, **{**common, "steps": 5}), base / "ae")
    return fsq, ae


@pytest.fixture(scope="module")
def fitted(runs):
    fsq, _ = runs
    lines: list[str] = []
    m = fit_code_prior(fsq, epochs=5, batch_size=128, lr=3e-3, seed=0, device="cpu",
                       log=lines.append, **TINY)
    return fsq, m, lines


def test_fit_writes_a_prior_that_beats_the_uniform_one(fitted):
    run, m, lines = fitted
    folder = run / "code_prior"
    assert m["path"] == str(folder)
    assert sorted(p.name for p in folder.iterdir()) == ["config.json", "metrics.json",
                                                        "model.safetensors"]
    assert not [p for p in run.iterdir() if p.name.startswith(".code_prior")]  # no temp left
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved == {k: v for k, v in m.items() if k != "path"}
    assert (m["tokens"], m["codebook_size"], m["grid"]) == (4, 25, [4])
    assert m["uniform_bits_per_image"] == pytest.approx(4 * math.log2(25))
    assert m["test_bits_per_image"] < m["uniform_bits_per_image"] - 1
    assert 0 < m["train_bits_per_image"] < m["uniform_bits_per_image"] - 1
    assert m["steps"] == 5 * math.ceil(m["train_images"] / 128)
    assert any("epoch 5/5" in line for line in lines)


def test_load_code_prior_round_trips_and_plugs_into_the_code_prior(fitted):
    run, m, _ = fitted
    model = xae.load(run)
    ar = load_code_prior(run, model=model)
    assert isinstance(ar, CodeTransformer) and not ar.training
    assert load_code_prior(run) is not None  # builds the model from config.json itself
    # the test bits per image are reproduced exactly from the reloaded weights
    data = load_data(model.config.data)
    tokens = fit_mod.encode_tokens(model, data.test_x)
    assert fit_mod.bits_per_image(ar, tokens) == pytest.approx(m["test_bits_per_image"], rel=1e-5)
    again = load_code_prior(run)
    torch.testing.assert_close(again.log_prob(tokens), ar.log_prob(tokens), rtol=0, atol=0)
    # the model's code prior samples through it and scores index grids with it
    model.prior.attach(ar)
    torch.manual_seed(0)
    assert model.sample(6).shape == (6, *model.data_shape)
    grid = model.encode(data.test_x[:5]).indices
    torch.testing.assert_close(model.prior.log_prob_indices(grid), ar.log_prob(tokens[:5]))


def test_load_code_prior_rejects_damaged_or_foreign_priors(fitted, runs, tmp_path):
    run, _, _ = fitted
    assert load_code_prior(runs[1]) is None  # a run without a prior
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    cfg_path = copy / "code_prior" / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg_path.write_text(json.dumps({**cfg, "vocab": 1000}))
    with pytest.raises(xae.XaeError, match="fitted to 4 tokens of 1000 codes"):
        load_code_prior(copy)
    cfg_path.write_text("{not json")
    with pytest.raises(xae.XaeError, match="config.json is corrupt"):
        load_code_prior(copy)
    cfg_path.write_text(json.dumps(cfg))
    weights = copy / "code_prior" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    with pytest.raises(xae.XaeError, match="corrupt or not a safetensors file"):
        load_code_prior(copy)
    weights.unlink()
    with pytest.raises(xae.XaeError, match="incomplete"):
        load_code_prior(copy)
    # refitting repairs it: the damaged folder is replaced whole
    fit_code_prior(copy, epochs=1, log=lambda s: None, **TINY)
    assert isinstance(load_code_prior(copy), CodeTransformer)
    assert not [p for p in copy.iterdir() if p.name.startswith(".code_prior")]


def test_a_failed_save_leaves_the_previous_prior_whole(fitted, monkeypatch):
    run, _, _ = fitted
    before = {p.name: p.read_bytes() for p in (run / "code_prior").iterdir()}
    model = xae.load(run)
    grid, vocab = code_grid(model)
    ar = CodeTransformer(CodePriorConfig(vocab=vocab, length=math.prod(grid), **TINY))

    def broken(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(fit_mod, "save_safetensors", broken)
    with pytest.raises(OSError, match="disk full"):
        save_code_prior(run, ar, grid, {"test_bits_per_image": 0.0})
    assert {p.name: p.read_bytes() for p in (run / "code_prior").iterdir()} == before
    assert not [p for p in run.iterdir() if p.name.startswith(".code_prior")]


def test_the_cli_fits_a_prior_and_rejects_bad_runs(runs, tmp_path, capsys):
    fsq, ae = runs
    run = tmp_path / "fsq"
    shutil.copytree(fsq, run, ignore=shutil.ignore_patterns("code_prior"))
    assert main(["prior", "fit", str(run), "--epochs", "2", "--dim", "32", "--layers", "1",
                 "--heads", "2"]) == 0
    out = capsys.readouterr().out
    assert "bits/image" in out and "uniform" in out and str(run / "code_prior") in out
    assert (run / "code_prior" / "model.safetensors").is_file()
    cases = [([str(tmp_path / "missing")], "is not a folder"),
             ([str(ae), "--epochs", "2"], "is an option of the code prior"),
             ([str(run), "--steps", "2"], "is an option of the diffusion prior"),
             ([str(run), "--dim", "30", "--heads", "4"], "dim 30 must be divisible by heads 4"),
             ([str(run), "--epochs", "0"], "epochs must be a positive integer")]
    for args, match in cases:
        assert main(["prior", "fit", *args]) == 2
        err = capsys.readouterr().err
        assert err.startswith("xae: error: ") and match in err and "Traceback" not in err
    assert not (ae / "code_prior").exists()
