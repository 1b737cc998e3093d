"""The commands' text side, for runs on sentences: ``xae sample`` and ``xae reconstruct`` print
sentences (greedy or sampled decoding), and ``xae interpolate`` walks the straight line
between two codes (Bowman et al. 2016's homotopies, their Table 8), for sentences or images.

    xae sample runs/sentence-vae-ptb -n 10 --decode sample
    xae reconstruct runs/sentence-vae-ptb -n 5
    xae interpolate runs/sentence-vae-ptb "i want to talk to you" "she did n't want to be with him"
    xae interpolate runs/vae-mnist 0 1 -o line.png      # images: two test-set indices
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from xae.errors import XaeError, positive_int
from xae.fileio import output_file, write_text
from xae.tokens import EOS, PAD, UNK

DECODINGS = ("greedy", "sample")


def add_parser(sub: Any) -> None:
    """Add the ``interpolate`` command to the ``xae`` parser's ``sub``."""
    from xae.cli import seed_arg

    s = sub.add_parser("interpolate", help="decode the line between two codes (homotopy)",
                       description="Encode A and B to their posterior means and decode "
                       "--steps evenly spaced points of the straight line between them. "
                       "Sentences (a run on ptb or text): A and B are sentences, the output "
                       "is printed, one line per point. Images: A and B are indices of "
                       "the test set, the output a PNG row.")
    s.add_argument("run", help="a run folder")
    s.add_argument("a", help="a sentence (text runs) or a test-set index (image runs)")
    s.add_argument("b", help="the other end, likewise")
    s.add_argument("--steps", type=int, default=8, help="points on the line, ends included")
    s.add_argument("--decode", default="greedy", choices=DECODINGS,
                   help="sentences: the most likely word at each step, or a draw")
    s.add_argument("-o", "--output", help="write the lines (.txt) or the row (.png) here")
    s.add_argument("--seed", type=seed_arg, default=0, help="seed of sampled decoding")
    s.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    s.set_defaults(fn=cmd_interpolate)


def _vocab(model: Any) -> Any:
    from xae.data import load

    data = load(model.config.data)
    return data, data.info["vocab"]


def _lines(model: Any, z: torch.Tensor, decode: str | None, seed: int,
           vocab: Any) -> list[str]:
    decode = decode or "greedy"
    generator = torch.Generator(z.device).manual_seed(seed)
    ids = model.decode(z, greedy=decode == "greedy", generator=generator).cpu()
    return [vocab.decode(row) for row in ids]


def _emit(lines: list[str], output: str | None) -> None:
    if output is not None:
        path = output_file(output, ".txt", "-o")
        write_text(path, "\n".join(lines) + "\n")
        print(f"wrote {path}")
    else:
        print("\n".join(lines))


def sample(args: argparse.Namespace, model: Any) -> int:
    """``xae sample`` on a text run: ``-n`` sentences from z ~ p(z)."""
    _, vocab = _vocab(model)
    torch.manual_seed(args.seed)
    z = model.sample_z(args.n, args.temperature)
    _emit(_lines(model, z, args.decode, args.seed, vocab), args.output)
    return 0


def reconstruct(args: argparse.Namespace, model: Any) -> int:
    """``xae reconstruct`` on a text run: each of the first ``-n`` test sentences above the
    sentence decoded from its posterior mean."""
    data, vocab = _vocab(model)
    x = data.test_x[:args.n].to(next(model.parameters()).device)
    with torch.no_grad():
        out = _lines(model, model.latent_mean(x), args.decode, args.seed, vocab)
    lines = []
    for row, rec in zip(x.cpu(), out):
        lines += [f"x: {vocab.decode(row)}", f"x̂: {rec}", ""]
    _emit(lines, args.output)
    return 0


def encode_sentence(text: str, vocab: Any, length: int) -> tuple[torch.Tensor, list[str]]:
    """One sentence as a row of ids ``(1, length)``, and the words it had to write as
    ``<unk>``; a sentence longer than the run's ``max_len`` words is an error."""
    words = text.split()
    if not words:
        raise XaeError("a sentence to interpolate is empty")
    if len(words) > length - 1:
        raise XaeError(f"the sentence has {len(words)} words; this run reads at most "
                       f"{length - 1} (data.max_len)")
    index = vocab.ids
    row = torch.full((1, length), PAD, dtype=torch.int64)
    row[0, :len(words)] = torch.tensor([index.get(w, UNK) for w in words])
    row[0, len(words)] = EOS
    return row, [w for w in words if w not in index]


def cmd_interpolate(args: argparse.Namespace) -> int:
    import xae

    steps = positive_int(args.steps, "--steps")
    if steps < 2:
        raise XaeError(f"--steps counts the points on the line, both ends included: at least "
                       f"2, got {steps}")
    model = xae.load(args.run, device=args.device)
    if model.conditional:
        _, vocab = _vocab(model)
        rows, unknown = zip(*(encode_sentence(s, vocab, model.data_shape[0])
                              for s in (args.a, args.b)))
        missing = sorted({w for words in unknown for w in words})
        if missing:
            print(f"(not in the vocabulary, read as <unk>: {' '.join(missing)})")
        device = next(model.parameters()).device
        with torch.no_grad():
            z0, z1 = (model.latent_mean(r.to(device)) for r in rows)
            t = torch.linspace(0, 1, steps, device=device).unsqueeze(1)
            z = (1 - t) * z0 + t * z1
            lines = _lines(model, z, args.decode, args.seed, vocab)
        _emit([f"{float(ti):.2f}  {line}" for ti, line in zip(t[:, 0], lines)], args.output)
        return 0
    return _interpolate_images(args, model, steps)


def _interpolate_images(args: argparse.Namespace, model: Any, steps: int) -> int:
    from xae.data import load
    from xae.viz import save_grid

    if args.decode != "greedy":
        raise XaeError("--decode sample writes sentences; this run's data are not text")
    data = load(model.config.data)
    n = data.test_x.shape[0]
    ends = []
    for text in (args.a, args.b):
        if not text.isdigit() or int(text) >= n:
            raise XaeError(f"on an image run A and B are indices of the test set (0 … "
                           f"{n - 1}), got {text!r}")
        ends.append(data.test_x[int(text):int(text) + 1].to(next(model.parameters()).device))
    output = output_file(args.output or "interpolation.png", ".png", "-o")
    row = model.interpolate(ends[0], ends[1], steps)[0].cpu()
    path = save_grid(row, Path(output), nrow=steps,
                     title=f"test {args.a} → test {args.b}, {steps} points")
    print(f"wrote {path}")
    return 0
