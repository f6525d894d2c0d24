"""A small, learnable CIFAR-10 look-alike written in the official python pickle format."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

# Ten clearly different colours: the class is visible in every pixel, so a tiny net learns
# it in a couple of epochs and "the loss must fall" is a real check.
PALETTE = np.array(
    [
        [230, 25, 75], [60, 180, 75], [255, 225, 25], [0, 130, 200], [245, 130, 48],
        [145, 30, 180], [70, 240, 240], [240, 50, 230], [210, 245, 60], [128, 128, 128],
    ],
    dtype=np.float64,
)  # fmt: skip


def make_split(n: int, seed: int, noise: bool = False) -> tuple[np.ndarray, list[int]]:
    rng = np.random.default_rng(seed)
    if noise:  # uniform pixels, random labels: nothing to learn, every input well spread
        return rng.integers(0, 256, (n, 3072), dtype=np.uint8), rng.integers(0, 10, n).tolist()
    labels = rng.integers(0, 10, n)
    base = PALETTE[labels][:, :, None, None]  # (n, 3, 1, 1)
    # A class-specific stripe pattern on top of the colour, plus noise.
    rows = np.arange(32)[None, None, :, None]
    stripes = 25 * np.sin(rows * (1 + labels[:, None, None, None]) / 3)
    images = base + stripes + rng.normal(0, 35, (n, 3, 32, 32))
    rows_u8 = np.clip(images, 0, 255).astype(np.uint8).reshape(n, 3072)
    return rows_u8, labels.tolist()


def write_cifar(
    root: Path, per_batch: int = 120, test: int = 200, bytes_keys: bool = True, noise: bool = False
) -> Path:
    """Write root/cifar-10-batches-py/ like the official release; returns root."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def dump(name: str, data: np.ndarray, labels: list[int]) -> None:
        if bytes_keys:  # what the official (Python 2) pickles look like from Python 3
            batch = {b"batch_label": name.encode(), b"labels": labels, b"data": data}
        else:
            batch = {"batch_label": name, "labels": labels, "data": data}
        with open(folder / name, "wb") as f:
            pickle.dump(batch, f, protocol=2)

    for i in range(1, 6):
        dump(f"data_batch_{i}", *make_split(per_batch, seed=i, noise=noise))
    dump("test_batch", *make_split(test, seed=99, noise=noise))
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"label_names": [b"c%d" % i for i in range(10)]}, f, protocol=2)
    return root
