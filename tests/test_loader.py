"""The device-resident data path: split, crops, flips, normalisation, determinism."""

import numpy as np
import pytest
import torch

from harness.loader import DeviceLoader, Normalizer, augment, generator, split_indices
from harness.schema import Augmentation, Crop, Normalization


def test_split_is_deterministic_disjoint_and_seed_dependent():
    a = split_indices(50_000, 5_000, None, seed=0)
    b = split_indices(50_000, 5_000, None, seed=0)
    c = split_indices(50_000, 5_000, None, seed=1)
    assert np.array_equal(a.train, b.train) and np.array_equal(a.validation, b.validation)
    assert len(a.train) == 45_000 and len(a.validation) == 5_000
    assert not set(a.train) & set(a.validation)
    assert len(set(a.train) | set(a.validation)) == 50_000
    assert not np.array_equal(a.validation, c.validation)


def test_subset_comes_from_the_training_part():
    s = split_indices(50_000, 5_000, 1_000, seed=3)
    assert len(s.train) == 1_000 and not set(s.train) & set(s.validation)


def batch(n=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)


def test_every_crop_is_a_window_of_the_zero_padded_image_possibly_flipped():
    x = batch()
    out = augment(
        x, Augmentation(crop=Crop(padding=4), flip=True), torch.Generator().manual_seed(1)
    )
    assert out.shape == x.shape and out.dtype == torch.uint8
    padded = torch.nn.functional.pad(x, (4, 4, 4, 4))
    flips = 0
    for i in range(len(x)):
        windows = [padded[i, :, dy : dy + 32, dx : dx + 32] for dy in range(9) for dx in range(9)]
        plain = any(torch.equal(out[i], w) for w in windows)
        flipped = any(torch.equal(out[i], w.flip(-1)) for w in windows)
        assert plain or flipped
        flips += flipped and not plain
    assert 10 < flips < 54  # about half


def test_reflection_padding_mirrors_the_border():
    x = batch(8)
    g = torch.Generator().manual_seed(2)
    out = augment(x, Augmentation(crop=Crop(padding=4, fill="reflect"), flip=False), g)
    padded = torch.nn.functional.pad(x.float(), (4, 4, 4, 4), mode="reflect").to(torch.uint8)
    for i in range(len(x)):
        assert any(
            torch.equal(out[i], padded[i, :, dy : dy + 32, dx : dx + 32])
            for dy in range(9)
            for dx in range(9)
        )


def test_no_augmentation_is_the_identity():
    x = batch(4)
    out = augment(x, Augmentation(crop=None, flip=False), torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_augmentation_is_deterministic_given_the_generator_seed():
    x = batch()
    spec = Augmentation()
    a = augment(x, spec, generator(torch.device("cpu"), 0, "epoch", 3))
    b = augment(x, spec, generator(torch.device("cpu"), 0, "epoch", 3))
    c = augment(x, spec, generator(torch.device("cpu"), 0, "epoch", 4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_normalisation_kinds():
    x = batch(256)
    given = Normalizer(
        Normalization(kind="per_channel", mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25)), x
    )
    out = given(x[:2])
    assert torch.allclose(out, (x[:2].float() / 255 - 0.5) / 0.25, atol=1e-5)
    computed = Normalizer(Normalization(kind="per_channel"), x)(x)
    assert computed.mean(dim=(0, 2, 3)).abs().max() < 1e-4
    assert (computed.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    pixel = Normalizer(Normalization(kind="per_pixel_mean"), x)(x)
    assert pixel.mean(dim=0).abs().max() < 1e-4  # the mean image is subtracted
    pixel_std = Normalizer(Normalization(kind="per_pixel_mean_std"), x)(x)
    assert (pixel_std.std(dim=0, unbiased=False) - 1).abs().max() < 1e-3


@pytest.mark.parametrize(("drop_last", "batches", "last"), [(False, 3, 20), (True, 2, 40)])
def test_last_partial_batch_kept_or_dropped(drop_last, batches, last):
    x = batch(100)
    loader = DeviceLoader(
        x,
        torch.arange(100),
        batch_size=40,
        augmentation=Augmentation(),
        normalizer=Normalizer(Normalization(kind="none"), x),
        drop_last=drop_last,
        seed=0,
    )
    sizes = [len(y) for _, y in loader.epoch(0)]
    assert len(loader) == batches and len(sizes) == batches and sizes[-1] == last
    labels = torch.cat([y for _, y in loader.epoch(0)])
    if not drop_last:
        assert sorted(labels.tolist()) == list(range(100))  # each image once per epoch
    xb, _ = next(loader.epoch(0))
    assert xb.dtype == torch.float32 and xb.shape == (40, 3, 32, 32)
