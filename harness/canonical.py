"""The canonical pipeline: what common open-source CIFAR-10 ResNet trainers do.

PIL images through torchvision transforms (``RandomCrop(32, padding)``,
``RandomHorizontalFlip``, ``ToTensor``, normalisation) in DataLoader worker processes, batches
copied to the device, fp32, eager. It is the baseline that ``repro bench`` measures the fast
path against, and the reference the fast path's augmentation must match in distribution.

Seeding mirrors the fast path: the epoch's shuffle comes from a generator seeded by
(seed, epoch), so both pipelines visit the images in the same order on the CPU; the workers'
augmentation draws come from a second generator seeded the same way.

Augmentation drawn per batch (``draw: per_batch``) cannot be a per-image transform: there the
images only become tensors in the workers, and the batch is cropped, flipped and normalised in
the DataLoader's collate function (also in the workers), with torchvision's functional ops.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler
from torchvision import transforms as T
from torchvision.transforms import functional as TF

from harness.loader import Normalizer, derive_seed
from harness.schedule import batches_per_epoch
from harness.schema import Augmentation
from harness.stop_signals import ignore_stop_signals, stops_deferred


class _Normalize:
    """The fast path's normalisation applied to ToTensor's 0..1 output (picklable for workers)."""

    def __init__(self, normalizer: Normalizer) -> None:
        cpu = normalizer.to(torch.device("cpu"))
        self.scale = cpu.scale * 255.0
        self.shift = cpu.shift

    def __call__(self, x01: torch.Tensor) -> torch.Tensor:
        return torch.addcmul(self.shift, x01, self.scale)


def transform_for(augmentation: Augmentation, normalizer: Normalizer) -> T.Compose:
    """What the workers do to each image (all of it, unless augmentation is per batch).

    Pixels are augmented, then normalised; with ``normalize_first`` the other way round, and
    the crop's zero padding (on the normalised tensor) is then the mean.
    """
    to_tensor = [T.ToTensor(), _Normalize(normalizer)]
    if augmentation.draw == "per_batch":
        # The rest is BatchAugment's; it normalises unless that came first.
        return T.Compose(to_tensor if augmentation.normalize_first else to_tensor[:1])
    ops: list = []
    if augmentation.crop is not None:
        mode = "reflect" if augmentation.crop.fill == "reflect" else "constant"
        ops.append(T.RandomCrop(32, padding=augmentation.crop.padding, padding_mode=mode))
    if augmentation.flip:
        ops.append(T.RandomHorizontalFlip(0.5))
    return T.Compose(to_tensor + ops if augmentation.normalize_first else ops + to_tensor)


class BatchAugment:
    """The collate function for ``draw: per_batch``: stacks a batch of 0..1 tensors, crops it
    at one random offset, flips it or not, as a whole, and normalises it, unless the images
    came normalised (``normalize_first``). Picklable for workers; draws from the worker's torch
    generator, as torchvision's transforms do."""

    def __init__(self, augmentation: Augmentation, normalizer: Normalizer) -> None:
        self.crop = augmentation.crop
        self.flip = augmentation.flip
        # None when the images came normalised (a lambda would not pickle for the workers)
        self.normalize = None if augmentation.normalize_first else _Normalize(normalizer)

    def __call__(self, samples: list[tuple[torch.Tensor, int]]) -> tuple[torch.Tensor, ...]:
        x = torch.stack([image for image, _ in samples])
        y = torch.tensor([label for _, label in samples])
        if self.crop is not None and self.crop.padding:
            p = self.crop.padding
            mode = "reflect" if self.crop.fill == "reflect" else "constant"
            x = TF.pad(x, [p], padding_mode=mode)
            top, left = (int(v) for v in torch.randint(0, 2 * p + 1, (2,)))
            x = TF.crop(x, top, left, 32, 32)
        if self.flip and torch.rand(1).item() < 0.5:
            x = TF.hflip(x)
        return (x if self.normalize is None else self.normalize(x)), y


class _PilImages(Dataset):
    def __init__(self, images_u8: np.ndarray, labels: np.ndarray, transform) -> None:
        self.hwc = np.ascontiguousarray(images_u8.transpose(0, 2, 3, 1))  # PIL wants HWC
        self.labels = labels
        self.transform = transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int):
        return self.transform(Image.fromarray(self.hwc[i])), int(self.labels[i])


class CanonicalLoader:
    """Same interface as ``harness.loader.DeviceLoader``: ``len()`` and ``epoch(e)``."""

    def __init__(
        self,
        images_u8: np.ndarray,
        labels: np.ndarray,
        *,
        batch_size: int,
        augmentation: Augmentation,
        normalizer: Normalizer,
        drop_last: bool,
        seed: int,
        device: torch.device,
        workers: int,
    ) -> None:
        self.dataset = _PilImages(images_u8, labels, transform_for(augmentation, normalizer))
        per_batch = augmentation.draw == "per_batch"
        self.collate = BatchAugment(augmentation, normalizer) if per_batch else None
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.seed = seed
        self.device = device
        self.workers = workers
        self.labels = labels

    def __len__(self) -> int:
        return batches_per_epoch(len(self.labels), self.batch_size, self.drop_last)

    def epoch(self, epoch: int) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        order = torch.Generator().manual_seed(derive_seed(self.seed, "epoch", epoch))
        workers = torch.Generator().manual_seed(derive_seed(self.seed, "workers", epoch))
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=RandomSampler(self.dataset, generator=order),
            num_workers=self.workers,
            drop_last=self.drop_last,
            pin_memory=self.device.type == "cuda",
            generator=workers,
            collate_fn=self.collate,  # None: PyTorch's default
            # The terminal's Ctrl-C reaches the workers too; only this process acts on it.
            worker_init_fn=ignore_stop_signals,
        )
        if self.workers == 0:
            # In-process: the transforms draw from the global generator; seed it per epoch.
            torch.manual_seed(derive_seed(self.seed, "workers", epoch))
        # A stop signal while the DataLoader forks its workers or hands over a batch would
        # land in its machinery (swallowed there, or leaving a half-made iterator): it is
        # noted instead, and the training loop stops before its next step.
        with stops_deferred():
            batches = iter(loader)
        while True:
            with stops_deferred():
                batch = next(batches, None)
            if batch is None:
                return
            x, y = batch
            yield x.to(self.device, non_blocking=True), y.to(self.device, non_blocking=True)
