"""Batches straight from device memory: split, subset, augmentation and normalisation.

The images stay uint8 on the training device (150 MB for CIFAR-10, 240 MB once padded for
the crop, which is done once per run); each batch is selected, cropped and flipped there
with one gather, then normalised. No worker processes, no host round trip. The order of
operations is by default that of a torchvision pipeline
(``RandomCrop(32, padding) -> RandomHorizontalFlip -> ToTensor -> Normalize``): augmentation
acts on pixels, so zero padding means black pixels, and normalisation comes last. That keeps
this path and the canonical DataLoader pipeline statistically identical. He et al.'s Torch
code and seed 004's code normalised first and then padded, so their padding is the mean (the
mean colour), not black: ``augmentation.normalize_first`` does that, still from uint8 images,
by cropping the normaliser's per-pixel scale and shift (zero in the border) along with them.

Randomness: every epoch draws from its own generator seeded by (run seed, epoch), so an
epoch's batches do not depend on what ran before; resuming at an epoch boundary replays
exactly what an uninterrupted run would have seen.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from harness.schedule import batches_per_epoch
from harness.schema import Augmentation, Normalization


def derive_seed(*parts: object) -> int:
    """A 63-bit seed from any tuple of labels (run seed, purpose, epoch, ...)."""
    digest = hashlib.sha256(repr(parts).encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def generator(device: torch.device, *parts: object) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(*parts))
    return g


@dataclass(frozen=True)
class Split:
    """Indices into the 50k training images: what is trained on and what is held out."""

    train: np.ndarray
    validation: np.ndarray


def split_indices(n: int, validation: int, subset: int | None, seed: int) -> Split:
    """A validation hold-out and an optional training subset, deterministic given the seed."""
    if validation >= n:
        raise ValueError(f"cannot hold out {validation} of {n} training images")
    order = np.random.default_rng(derive_seed(seed, "split")).permutation(n)
    held_out, rest = order[:validation], order[validation:]
    if subset is not None:
        rest = rest[: min(subset, len(rest))]
    return Split(train=np.sort(rest), validation=np.sort(held_out))


class Normalizer:
    """``(pixels / 255 - mean) / std`` with statistics from the training images."""

    def __init__(self, spec: Normalization, train_images_u8: torch.Tensor) -> None:
        self.kind = spec.kind
        x = train_images_u8
        if spec.kind == "per_pixel_mean":
            mean = _mean(x, dims=(0,))
            std = torch.ones_like(mean)
        elif spec.kind == "per_pixel_mean_std":
            mean, std = _mean(x, dims=(0,)), _std(x, dims=(0,))
        elif spec.kind == "per_channel":
            if spec.mean is not None and spec.std is not None:
                mean = torch.tensor(spec.mean, dtype=torch.float64).view(3, 1, 1)
                std = torch.tensor(spec.std, dtype=torch.float64).view(3, 1, 1)
            else:
                mean, std = _mean(x, dims=(0, 2, 3)), _std(x, dims=(0, 2, 3))
        else:
            mean = torch.zeros(3, 1, 1, dtype=torch.float64)
            std = torch.ones(3, 1, 1, dtype=torch.float64)
        device = x.device
        # Fold the 1/255 into the affine map: x * scale + shift, one fused op per batch.
        std = std.to(device).clamp_min(1e-6)
        self.scale = (1.0 / (255.0 * std)).float()
        self.shift = (-mean.to(device) / std).float()
        self.mean, self.std = mean, std

    def to(self, device: torch.device) -> Normalizer:
        """The same normalisation with its tensors on ``device``."""
        moved = object.__new__(Normalizer)
        moved.__dict__.update(self.__dict__)
        moved.scale, moved.shift = self.scale.to(device), self.shift.to(device)
        return moved

    def __call__(self, pixels_u8: torch.Tensor) -> torch.Tensor:
        """float32 (autocast lowers the precision inside the model where asked)."""
        return torch.addcmul(self.shift, pixels_u8.float(), self.scale)

    def padded_maps(self, spec: Augmentation) -> tuple[torch.Tensor, torch.Tensor]:
        """Scale and shift as (3, H, W) maps with the crop's border added: zeros there (so a
        padded pixel normalises to 0, the mean) or the reflection of the image's own maps."""
        size = (3, 32, 32)
        maps = torch.stack([self.scale.expand(size), self.shift.expand(size)])  # (2, 3, 32, 32)
        p = spec.crop.padding if spec.crop else 0
        if p:
            mode = "reflect" if spec.crop.fill == "reflect" else "constant"
            maps = F.pad(maps, (p, p, p, p), mode=mode)
        return maps[0], maps[1]

    def describe(self) -> dict:
        if self.mean.numel() == 3:
            return {
                "kind": self.kind,
                "mean": [round(v, 6) for v in self.mean.flatten().tolist()],
                "std": [round(v, 6) for v in self.std.flatten().tolist()],
            }
        return {"kind": self.kind, "mean_of_mean_image": round(self.mean.mean().item(), 6)}


def _mean(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    total = x.double().sum(dim=dims, keepdim=True) / 255.0
    count = math.prod(x.shape[d] for d in dims)
    mean = total / count
    return mean.squeeze(0) if dims == (0,) else mean.view(3, 1, 1)


def _std(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    xs = x.double() / 255.0
    std = xs.std(dim=dims, keepdim=True, unbiased=False)
    return std.squeeze(0) if dims == (0,) else std.view(3, 1, 1)


def pad(images_u8: torch.Tensor, spec: Augmentation) -> torch.Tensor:
    """The images with the crop's border added (zeros or reflection); done once per run."""
    p = spec.crop.padding if spec.crop else 0
    if not p:
        return images_u8
    if spec.crop.fill == "reflect":
        # F.pad's reflect mode needs a floating tensor on some backends; uint8 round-trips exactly.
        return F.pad(images_u8.float(), (p, p, p, p), mode="reflect").to(torch.uint8)
    return F.pad(images_u8, (p, p, p, p))


def crop_and_flip(
    padded_u8: torch.Tensor, idx: torch.Tensor, spec: Augmentation, gen: torch.Generator
) -> torch.Tensor:
    """Images ``idx`` of a padded set, randomly cropped back to 32x32 and flipped.

    The batch is selected, then one gather does both crop and flip.
    """
    b, size = len(idx), 32
    flat = _crop_indices(padded_u8, b, spec, gen)
    return padded_u8[idx].flatten(2).gather(2, flat).view(b, 3, size, size)


def crop_flip_normalized(
    padded_u8: torch.Tensor,
    idx: torch.Tensor,
    spec: Augmentation,
    gen: torch.Generator,
    maps: tuple[torch.Tensor, torch.Tensor],
) -> torch.Tensor:
    """As :func:`crop_and_flip`, with the same draws, but of the normalised images
    (``normalize_first``): each pixel is normalised with the statistics of the place it came
    from, and a border pixel is 0. ``maps`` is :meth:`Normalizer.padded_maps`."""
    b, size = len(idx), 32
    flat = _crop_indices(padded_u8, b, spec, gen)
    pixels = padded_u8[idx].flatten(2).gather(2, flat).float()
    scale, shift = (m.flatten(1).expand(b, -1, -1).gather(2, flat) for m in maps)
    return torch.addcmul(shift, pixels, scale).view(b, 3, size, size)


def _crop_indices(
    padded_u8: torch.Tensor, b: int, spec: Augmentation, gen: torch.Generator
) -> torch.Tensor:
    """Draw each image's crop and flip; return where each output pixel comes from, as indices
    into the flattened padded image, shape (B, 3, 32*32).

    Output pixel (i, j) of image b comes from padded pixel (dy_b + i, dx_b + j), or
    (dy_b + i, dx_b + 31 - j) when b is flipped. With ``draw: per_batch`` every image of the
    batch shares one (dy, dx, flip).
    """
    device, size = padded_u8.device, 32
    draws = 1 if spec.draw == "per_batch" else b
    border = (padded_u8.shape[-1] - size) // 2
    if border:
        dy = torch.randint(0, 2 * border + 1, (draws,), device=device, generator=gen)
        dx = torch.randint(0, 2 * border + 1, (draws,), device=device, generator=gen)
    else:
        dy = dx = torch.zeros(draws, dtype=torch.long, device=device)
    if spec.flip:
        flip = torch.rand(draws, device=device, generator=gen) < 0.5
    else:
        flip = torch.zeros(draws, dtype=torch.bool, device=device)
    dy, dx, flip = dy.expand(b), dx.expand(b), flip.expand(b)
    ar = torch.arange(size, device=device)
    rows = dy[:, None] + ar[None, :]  # (B, H)
    cols = dx[:, None] + torch.where(flip[:, None], size - 1 - ar[None, :], ar[None, :])  # (B, W)
    width = padded_u8.shape[-1]
    return (rows[:, :, None] * width + cols[:, None, :]).view(b, 1, size * size).expand(-1, 3, -1)


def augment(images_u8: torch.Tensor, spec: Augmentation, gen: torch.Generator) -> torch.Tensor:
    """Random crop from a padded image and random horizontal flip, for a whole batch at once."""
    idx = torch.arange(len(images_u8), device=images_u8.device)
    return crop_and_flip(pad(images_u8, spec), idx, spec, gen)


def augment_and_normalize(
    images_u8: torch.Tensor, spec: Augmentation, normalizer: Normalizer, gen: torch.Generator
) -> torch.Tensor:
    """One training batch as the loader makes it: augmented and normalised, in the order the
    spec says (normalised first, or last)."""
    idx = torch.arange(len(images_u8), device=images_u8.device)
    padded = pad(images_u8, spec)
    if spec.normalize_first:
        return crop_flip_normalized(padded, idx, spec, gen, normalizer.padded_maps(spec))
    return normalizer(crop_and_flip(padded, idx, spec, gen))


class DeviceLoader:
    """Yields normalised, augmented training batches from device-resident uint8 images."""

    def __init__(
        self,
        images_u8: torch.Tensor,
        labels: torch.Tensor,
        *,
        batch_size: int,
        augmentation: Augmentation,
        normalizer: Normalizer,
        drop_last: bool,
        seed: int,
        channels_last: bool = False,
    ) -> None:
        self.padded = pad(images_u8, augmentation)  # once, not per batch
        # normalize_first: the normaliser's maps, padded like the images, cropped with them
        first = augmentation.normalize_first
        self.maps = normalizer.padded_maps(augmentation) if first else None
        self.labels = labels
        self.batch_size = batch_size
        self.augmentation = augmentation
        self.normalizer = normalizer
        self.drop_last = drop_last
        self.seed = seed
        self.channels_last = channels_last

    def __len__(self) -> int:
        return batches_per_epoch(len(self.labels), self.batch_size, self.drop_last)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        device = self.padded.device
        gen = generator(device, self.seed, "epoch", epoch)
        order = torch.randperm(len(self.labels), device=device, generator=gen)
        for i in range(len(self)):
            idx = order[i * self.batch_size : (i + 1) * self.batch_size]
            if self.maps is None:
                x = self.normalizer(crop_and_flip(self.padded, idx, self.augmentation, gen))
            else:
                x = crop_flip_normalized(self.padded, idx, self.augmentation, gen, self.maps)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            yield x, self.labels[idx]


def eval_batches(
    images_u8: torch.Tensor,
    labels: torch.Tensor,
    normalizer: Normalizer,
    batch_size: int = 1000,
    channels_last: bool = False,
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Single-view evaluation batches: the original 32x32 images, normalised."""
    for i in range(0, len(labels), batch_size):
        x = normalizer(images_u8[i : i + batch_size])
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        yield x, labels[i : i + batch_size]
