"""The explorer's label colours are readable for colour-blind viewers: every pair stays
apart, and every colour stands off the map's white background, in CIELAB after simulating
protanopia, deuteranopia and tritanopia (Machado, Oliveira & Fernandes 2009, severity 1,
applied in linear RGB). The scheme the page used before (matplotlib's tab10) fails it."""
from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest

APP = Path(__file__).resolve().parents[1] / "src" / "xae" / "explore" / "static" / "app.js"
VISION = {
    "normal": np.eye(3),
    "protanopia": np.array([[0.152286, 1.052583, -0.204868], [0.114503, 0.786281, 0.099216],
                            [-0.003882, -0.048116, 1.051998]]),
    "deuteranopia": np.array([[0.367322, 0.860646, -0.227968], [0.280085, 0.672501, 0.047413],
                              [-0.011820, 0.042940, 0.968881]]),
    "tritanopia": np.array([[1.255528, -0.076749, -0.178779], [-0.078411, 0.930809, 0.147602],
                            [0.004733, 0.691367, 0.303900]]),
}
TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
         "#7f7f7f", "#bcbd22", "#17becf"]
PAIR_MIN, BACKGROUND_MIN = 12.0, 20.0  # CIE76 ΔE; about 2.3 is a just-noticeable difference


def _palette() -> list[str]:
    found = re.search(r"const PALETTE = \[([^\]]*)\]", APP.read_text())
    assert found, "app.js has no PALETTE"
    return re.findall(r"'(#[0-9a-fA-F]{6})'", found.group(1))


def _lab(hex_colour: str, vision: np.ndarray) -> np.ndarray:
    srgb = np.array([int(hex_colour[i:i + 2], 16) for i in (1, 3, 5)]) / 255
    linear = np.where(srgb <= 0.04045, srgb / 12.92, ((srgb + 0.055) / 1.055) ** 2.4)
    seen = np.clip(vision @ linear, 0, 1)
    xyz = np.array([[0.4124, 0.3576, 0.1805], [0.2126, 0.7152, 0.0722],
                    [0.0193, 0.1192, 0.9505]]) @ seen / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > 216 / 24389, np.cbrt(xyz), (24389 / 27 * xyz + 16) / 116)
    return np.array([116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])])


def _closest(colours: list[str], vision: np.ndarray) -> tuple[float, float]:
    """(the smallest ΔE between two colours, the smallest ΔE of a colour to white)."""
    lab = [_lab(c, vision) for c in colours]
    white = _lab("#ffffff", vision)
    return (min(float(np.linalg.norm(a - b)) for a, b in itertools.combinations(lab, 2)),
            min(float(np.linalg.norm(a - white)) for a in lab))


@pytest.mark.parametrize("vision", VISION)
def test_the_label_colours_stay_apart_for_every_kind_of_vision(vision: str) -> None:
    colours = _palette()
    assert len(colours) == 10 and len(set(c.lower() for c in colours)) == 10
    pair, background = _closest(colours, VISION[vision])
    assert pair >= PAIR_MIN and background >= BACKGROUND_MIN, (pair, background)


def test_the_check_would_have_caught_the_old_palette() -> None:
    assert min(_closest(TAB10, VISION[v])[0] for v in VISION) < PAIR_MIN
