"""The run figures of a model of sentences, as text: its reconstructions (each test sentence
above the sentence the decoder writes, greedily, from its posterior mean) and sentences
written from prior draws, greedily and sampled. Images of token ids would say nothing."""
from __future__ import annotations

from pathlib import Path

import torch

from xae import runfiles as RF
from xae.data.text import Vocabulary
from xae.fileio import write_text
from xae.model import Autoencoder, inference


def reconstructions(model: Autoencoder, x: torch.Tensor, vocab: Vocabulary) -> list[str]:
    """Pairs of lines: ``x:`` a sentence, ``x̂:`` the greedy decoding of its posterior mean."""
    with inference(model) as device:
        out = model.decode(model.latent_mean(x.to(device))).cpu()
    lines = []
    for a, b in zip(x, out):
        lines += [f"x: {vocab.decode(a)}", f"x̂: {vocab.decode(b)}", ""]
    return lines


def samples(model: Autoencoder, n: int, vocab: Vocabulary, seed: int = 0) -> list[str]:
    """``n`` sentences from z ~ p(z), each decoded greedily and by sampling (seeded)."""
    with inference(model) as device:
        z = model.sample_z(n)
        greedy = model.decode(z).cpu()
        drawn = model.decode(z, greedy=False,
                             generator=torch.Generator(device).manual_seed(seed)).cpu()
    lines = []
    for a, b in zip(greedy, drawn):
        lines += [f"greedy:  {vocab.decode(a)}", f"sampled: {vocab.decode(b)}", ""]
    return lines


def text_figures(run_dir: Path, model: Autoencoder, x: torch.Tensor, vocab: Vocabulary,
                 n: int = 16) -> list[Path]:
    """Write ``figures/reconstructions.txt`` (the first ``n`` test sentences) and
    ``figures/samples.txt`` (``n`` prior draws); return their paths."""
    out = Path(run_dir) / RF.FIGURES
    texts = {out / RF.RECONSTRUCTIONS_TXT: reconstructions(model, x[:n], vocab),
             out / RF.SAMPLES_TXT: samples(model, n, vocab)}
    for path, lines in texts.items():
        write_text(path, "\n".join(lines) + "\n")
    return list(texts)
