"""Attribute directions and the pixel measures: thickness and slant against synthetic strokes of
known width and shear, the skeleton's length against hand-counted lines, the directions against
their closed forms, Spearman's ρ on toy cases, labels from CSV files."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import xae
from xae.edits import from_latents, slant, spearman, thickness
from xae.edits.labels import attribute_labels, csv_labels
from xae.edits.measures import skeleton, skeleton_length

SUPER = 8  # subpixels per pixel side when drawing antialiased strokes


def _draw(inside, size: int = 28) -> np.ndarray:
    """An antialiased image: each pixel's share of its SUPER×SUPER subpixel centres (x, y),
    in pixel units with y down, for which ``inside(x, y)`` holds."""
    yy, xx = (np.mgrid[0:size * SUPER, 0:size * SUPER] + 0.5) / SUPER
    return inside(xx, yy).reshape(size, SUPER, size, SUPER).mean((1, 3))


def stroke(width: float, length: float, angle: float) -> np.ndarray:
    """A straight stroke of ``width`` × ``length`` pixels through the centre of a pixel, at
    ``angle`` degrees from the horizontal."""
    t = math.radians(angle)
    c = 14.5

    def inside(x, y):
        along = (x - c) * math.cos(t) - (y - c) * math.sin(t)
        across = (x - c) * math.sin(t) + (y - c) * math.cos(t)
        return (np.abs(along) <= length / 2) & (np.abs(across) <= width / 2)
    return _draw(inside)


def sheared_bar(shear: float, width: float = 3.0, height: float = 20.0) -> np.ndarray:
    """A vertical bar whose centre line moves ``shear`` pixels right per pixel up."""
    c = 14.0
    return _draw(lambda x, y: (np.abs(x - (c + shear * (c - y))) <= width / 2)
                 & (np.abs(y - c) <= height / 2))


@pytest.mark.parametrize("angle", [0, 30, 45, 60, 90, 135])
def test_thickness_reads_the_width_of_straight_strokes(angle):
    widths = [1.0, 1.5, 2.0, 3.0, 4.0, 5.0]
    got = thickness(np.stack([stroke(w, 18, angle) for w in widths]))
    assert np.all(np.abs(got - widths) <= 0.5), got  # within half a pixel
    assert np.all(np.diff(got) > 0), got


def test_thickness_takes_tensors_and_reads_zero_for_an_empty_image():
    batch = torch.from_numpy(np.stack([stroke(3, 18, 0), np.zeros((28, 28))])).float()
    got = thickness(batch.unsqueeze(1))
    assert got[1] == 0.0 and abs(got[0] - 3) < 0.45


def test_the_skeleton_is_one_pixel_wide_and_its_length_counts_diagonals_as_root_two():
    bar = np.zeros((1, 12, 30), dtype=bool)
    bar[0, 4:9, 3:27] = True  # 5 rows × 24 columns
    sk = skeleton(bar)
    assert sk.sum(1).max() == 1  # one pixel per column: one pixel wide
    assert sk.any() and (sk <= bar).all()
    lines = np.zeros((3, 12, 12), dtype=bool)
    lines[0, 5, 2:9] = True  # 7 pixels in a row: 6 steps
    lines[1, np.arange(2, 9), np.arange(2, 9)] = True  # 7 on a diagonal: 6 diagonal steps
    lines[2, np.arange(2, 6), np.arange(2, 6)] = True  # 3 diagonal steps to (5, 5), then
    lines[2, 5, 6] = lines[2, 6, 6] = True  # a staircase: (5, 5)-(5, 6)-(6, 6), 2 steps;
    # (5, 5)-(6, 6) is joined through (5, 6), so that diagonal is not counted
    np.testing.assert_allclose(skeleton_length(lines),
                               [6, 6 * math.sqrt(2), 3 * math.sqrt(2) + 2])


@pytest.mark.parametrize("shear", [-0.6, -0.25, 0.0, 0.2, 0.5])
def test_slant_reads_the_shear_of_a_sheared_bar(shear):
    img = sheared_bar(shear)
    assert abs(slant(img[None])[0] - shear) < 0.01
    mirrored, moved = img[:, ::-1], np.roll(img, (2, -3), axis=(0, 1))
    assert abs(slant(mirrored[None])[0] + shear) < 0.01  # a mirror image leans the other way
    assert abs(slant(moved[None])[0] - slant(img[None])[0]) < 1e-9  # and a shift changes nothing


def test_slant_of_ink_on_one_row_or_none_is_zero():
    row = np.zeros((28, 28))
    row[10, 5:20] = 1
    np.testing.assert_array_equal(slant(np.stack([row, np.zeros((28, 28))])), [0.0, 0.0])


def test_measures_refuse_images_with_channels():
    with pytest.raises(xae.XaeError, match=r"one-channel images .*\(2, 3, 8, 8\)"):
        thickness(torch.zeros(2, 3, 8, 8))


def _clusters(n: int = 400, seed: int = 0) -> tuple[torch.Tensor, np.ndarray]:
    g = np.random.default_rng(seed)
    labels = g.random(n) < 0.3
    z = g.normal(size=(n, 3)) + np.outer(labels, [4.0, -2.0, 0.0])
    return torch.from_numpy(z).float(), labels


def test_the_mean_direction_is_the_difference_of_the_group_means():
    z = torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0], [4.0, 1.0], [5.0, 2.0]])
    labels = np.array([False, False, False, True, True])
    a = from_latents(z, labels, "bold")["bold"]
    np.testing.assert_allclose(a.direction.numpy(), [4.5 - 1.0, 1.5 - 1.0], atol=1e-6)
    assert a.sizes == (2, 3) and a.method == "mean" and a.name == "bold"
    assert a.length == pytest.approx(math.hypot(3.5, 0.5), rel=1e-6)


def test_the_probe_points_across_the_boundary_at_the_mean_differences_length():
    z, labels = _clusters()
    mean = from_latents(z, labels, "a")["a"]
    probe = from_latents(z, labels, "a", method="probe")["a"]
    assert probe.length == pytest.approx(mean.length, rel=1e-5)
    truth = np.array([4.0, -2.0, 0.0]) / math.hypot(4, 2)
    assert float(probe.direction.numpy() @ truth) / probe.length > 0.97
    assert probe.probe_accuracy > 0.95 and probe.probe_accuracy == mean.probe_accuracy


def test_integer_labels_give_one_direction_per_class_against_the_rest():
    z = torch.tensor([[0.0], [1.0], [2.0], [3.0], [7.0], [8.0]])
    out = from_latents(z, np.array([0, 0, 1, 1, 2, 2]))
    assert list(out) == ["class=0", "class=1", "class=2"]
    assert out["class=2"].sizes == (2, 4)
    assert float(out["class=2"].direction) == pytest.approx(7.5 - 1.5)
    assert out["class=0"].groups == "class 0 vs the other classes"


def test_a_measured_quantity_gives_its_top_third_against_its_bottom_third():
    measure = np.arange(9, dtype=float)
    z = torch.from_numpy(np.stack([measure ** 2, np.ones(9)], 1)).float()
    a = from_latents(z, measure, "ink")["ink"]
    bottom, top = (measure[:3] ** 2).mean(), (measure[6:] ** 2).mean()
    np.testing.assert_allclose(a.direction.numpy(), [top - bottom, 0.0], atol=1e-5)
    assert a.sizes == (3, 3) and "top third vs bottom third of ink" == a.groups


@pytest.mark.parametrize("labels, sizes", [(np.ones(6, dtype=bool), "6 and 0"),
                                           (np.full(6, 2.5), "0 and 0")])
def test_an_empty_group_is_an_error_naming_the_attribute_and_the_sizes(labels, sizes):
    with pytest.raises(xae.XaeError, match=f"attribute 'smile' has an empty group.*{sizes}"):
        from_latents(torch.zeros(6, 2), labels, "smile")


def test_discrete_codes_cannot_be_edited():
    model = xae.build(xae.preset("ae", bottleneck="fsq", prior="codes", latent_dim=8))
    with pytest.raises(xae.XaeError, match="continuous latent"):
        xae.attributes(model, torch.zeros(4, 1, 8, 8), np.array([True, False] * 2))


def test_spearman_on_toy_cases():
    amounts = [-1.0, 0.0, 1.0]
    rising = np.array([[1.0, 2.0, 3.0], [0.5, 0.6, 0.9]])
    # the ranks of the values are 4, 5, 6 and 1, 2, 3; the amounts are evenly spaced, so
    # their ranks are a linear function of them: ρ is the Pearson correlation of these
    assert spearman(amounts, rising) == pytest.approx(
        np.corrcoef(np.tile(amounts, 2), [4, 5, 6, 1, 2, 3])[0, 1])
    assert spearman(amounts, -rising) < 0
    assert spearman(amounts, np.array([[1.0, 2.0, 3.0]])) == pytest.approx(1.0)
    assert math.isnan(spearman(amounts, np.ones((2, 3))))


def test_csv_labels(tmp_path):
    f = tmp_path / "labels.csv"
    f.write_text("id,smiling,glasses\n0,true,0\n1,False,1\n2,YES,n\n")
    np.testing.assert_array_equal(csv_labels(f, "smiling", 3), [True, False, True])
    np.testing.assert_array_equal(attribute_labels("glasses", torch.zeros(3, 1, 8, 8), None, f),
                                  [False, True, False])
    with pytest.raises(xae.XaeError, match="no column 'hat'; its columns are id, smiling, glasses"):
        csv_labels(f, "hat", 3)
    with pytest.raises(xae.XaeError, match="has 3 rows but there are 4 images"):
        csv_labels(f, "smiling", 4)
    bad = tmp_path / "bad.csv"
    bad.write_text("smiling\ntrue\nmaybe\n")
    with pytest.raises(xae.XaeError, match="column 'smiling', line 3: 'maybe' is not a boolean"):
        csv_labels(bad, "smiling", 2)


def test_a_spatial_latent_is_learned_and_edited_as_one_flat_vector():
    from xae.edits import edit
    from xae.data import load

    model = xae.build(xae.preset("conv-vae", latent_dim=16)).eval()
    x = load(model.config.data).test_x[:30]
    labels = np.arange(30) % 3 == 0
    a = xae.attributes(model, x, labels, name="every third")["every third"]
    with torch.no_grad():
        z = model.latent_mean(x)
        want = z[labels].mean(0) - z[~labels].mean(0)
        moved = model.decode(z[:3] + 1.5 * want)
    assert model.latent_shape == (4, 2, 2) and a.direction.shape == (16,)
    np.testing.assert_allclose(a.direction.numpy(), want.numpy(), atol=1e-5)
    e = edit(model, x[:3], a.direction, [0.0, 1.5])
    np.testing.assert_allclose(e[:, 0].numpy(), model.reconstruct(x[:3]).numpy(), atol=1e-6)
    np.testing.assert_allclose(e[:, 1].numpy(), moved.numpy(), atol=1e-5)
