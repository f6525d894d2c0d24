"""K runs of one architecture as one network: the fused model and its optimizer.

Horizontal fusion (the idea of HFTA, Wang et al., MLSys 2021; written here from the idea, not
the code): a CIFAR ResNet at batch 128 is bound by kernel launches, not arithmetic, so K
members are trained as one module whose kernels are K times wider.

Layout: the members share the batch dimension and sit side by side in the channels. A fused
input is ``(B, K*3, 32, 32)``, member k's images in channels ``3k..3k+2``; every activation
is ``(B, K*C, H, W)`` with member k's C channels in block k. Then

- a convolution becomes a grouped convolution with K groups (member k's block of input
  channels only ever meets member k's filters);
- batch norm over K*C channels keeps each member's own batch statistics, which is what its
  solo run computes;
- the option-A shortcut subsamples and zero-pads each member's channels within its block;
- dropout draws each member's mask from the member's own generator;
- the classifier is a batched product: ``(B, K*C)`` to ``(B, K, classes)``.

Every tensor of the fused state is the members' tensors concatenated along dimension 0 (the
classifier's weight is ``(K*classes, C)``), so splitting a fused state into K ordinary ones and
merging them back is slicing and concatenation: exact both ways. Batch norm's
``num_batches_tracked`` is one counter, which the members share.

:class:`FusedSGD` is torch's SGD (the same update, in the same order) applied to each
member's slice of every parameter with that member's learning rate, momentum, weight decay
and Nesterov switch; it reads and writes each member's state in ``torch.optim.SGD``'s own
format, so a member's checkpoint is an ordinary one.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from harness.resnet import CifarResNet, ZeroPadShortcut
from harness.schema import Optimizer


class FusionError(ValueError):
    """Runs or states that cannot be fused (different architectures, sizes, counters)."""


# --------------------------------------------------------------------------- the modules


class FusedZeroPad(ZeroPadShortcut):
    """Option A for K members: subsample, then zero-pad each member's channels in its block.
    (A subclass, so that the unit treats it as the identity it is; see Unit._forward_preact.)"""

    def __init__(self, cin: int, cout: int, stride: int, members: int) -> None:
        super().__init__(cin, cout, stride)
        self.members = members

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if not self.extra_channels:
            return x
        b, _, h, w = x.shape
        blocks = x.reshape(b, self.members, self.cin, h, w)
        padded = F.pad(blocks, (0, 0, 0, 0, 0, self.extra_channels))
        return padded.reshape(b, self.members * (self.cin + self.extra_channels), h, w)


class FusedConv2d(nn.Conv2d):
    """The K members' convolutions as one grouped convolution.

    On the CPU, a convolution with few input channels per group (the stem's 3) is instead
    computed member by member: PyTorch's CPU backward of such a grouped convolution took 4.0 s
    where the two separate stems took 0.1 s (K=2, resnet20, batch 128, 2-core VM,
    2026-11-26), which made fused training far slower than training apart there. The deeper
    grouped convolutions were about 2x faster than separate ones, and stay grouped.
    """

    SPLIT_ON_CPU_BELOW = 8  # input channels per group

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        per_group = self.in_channels // self.groups
        if x.device.type != "cpu" or per_group >= self.SPLIT_ON_CPU_BELOW:
            return super().forward(x)
        bias = self.bias.chunk(self.groups) if self.bias is not None else [None] * self.groups
        return torch.cat([
            F.conv2d(xk, wk, bk, self.stride, self.padding, self.dilation)
            for xk, wk, bk in zip(x.chunk(self.groups, dim=1), self.weight.chunk(self.groups),
                                  bias, strict=True)
        ], dim=1)  # fmt: skip


class FusedDropout(nn.Module):
    """Dropout whose mask for member k comes from member k's own generator.

    On the CPU this is bit for bit the mask ``F.dropout`` draws in the member's solo run
    from the global generator seeded the same way (both fill a tensor of the member's shape
    with ``bernoulli_``), provided every dropout layer of the model draws from the same K
    generators in turn, as the solo layers share the global one: :func:`reseed_dropout`,
    where the solo run calls ``torch.manual_seed``.
    """

    def __init__(self, p: float, members: int) -> None:
        super().__init__()
        self.p = p
        self.members = members
        self.generators: list[torch.Generator] | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        if self.generators is None:
            raise RuntimeError("FusedDropout: reseed() before training")
        keep = 1.0 - self.p
        parts = []
        for block, gen in zip(x.chunk(self.members, dim=1), self.generators, strict=True):
            # Contiguous, as a solo run's activation is on the CPU, so that the mask is the
            # one its solo run draws there (on CUDA the draws differ anyway).
            noise = torch.empty(block.shape, dtype=block.dtype, device=block.device)
            noise.bernoulli_(keep, generator=gen).div_(keep)
            parts.append(block * noise)
        return torch.cat(parts, dim=1)


def reseed_dropout(model: nn.Module, seeds: Sequence[int], device: torch.device) -> None:
    """Give every dropout layer of a fused model the same K generators, seeded ``seeds``."""
    generators = []
    for seed in seeds:
        g = torch.Generator(device=device)
        g.manual_seed(seed)
        generators.append(g)
    for module in model.modules():
        if isinstance(module, FusedDropout):
            module.generators = generators


class FusedLinear(nn.Linear):
    """K classifiers at once: ``(B, K*C)`` to ``(B, K, N)``. The weight is ``(K*N, C)``, the
    members' weights one after another, like every other fused tensor."""

    def __init__(self, in_features: int, out_features: int, members: int) -> None:
        super().__init__(in_features, out_features * members)
        self.members = members
        self.classes = out_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k, n, c = self.members, self.classes, self.in_features
        xs = x.reshape(x.shape[0], k, c).transpose(0, 1)  # (K, B, C)
        w = self.weight.reshape(k, n, c).transpose(1, 2)  # (K, C, N)
        out = torch.baddbmm(self.bias.reshape(k, 1, n), xs, w)  # (K, B, N)
        return out.transpose(0, 1)  # (B, K, N)


# --------------------------------------------------------------------------- fusing


def fuse_models(models: Sequence[nn.Module]) -> nn.Module:
    """One module computing all of ``models`` (same architecture) side by side, initialised
    with their exact parameters and buffers. Its output is ``(B, K, classes)``."""
    k = len(models)
    if k < 1:
        raise FusionError("nothing to fuse")
    first = models[0]
    if not isinstance(first, CifarResNet):
        raise FusionError(f"only zoo networks can be fused, not {type(first).__name__}")
    if any(getattr(m, "spec", None) != first.spec for m in models):
        raise FusionError("members of a fused group must share one architecture")
    fused = copy.deepcopy(first)
    for name, module in list(fused.named_modules()):
        if not name:
            continue
        members = [m.get_submodule(name) for m in models]
        replacement = _fused_module(module, members, k)
        if replacement is not None:
            _replace(fused, name, replacement)
    fused.members = k
    return fused


@torch.no_grad()
def _fused_module(module: nn.Module, members: list[nn.Module], k: int) -> nn.Module | None:
    if isinstance(module, nn.Conv2d):
        if module.groups != 1:
            raise FusionError("grouped convolutions cannot be fused again")
        conv = FusedConv2d(module.in_channels * k, module.out_channels * k, module.kernel_size,
                         stride=module.stride, padding=module.padding, groups=k,
                         bias=module.bias is not None)  # fmt: skip
        _fill(conv, members)
        return conv
    if isinstance(module, nn.BatchNorm2d):
        norm = nn.BatchNorm2d(module.num_features * k, eps=module.eps, momentum=module.momentum,
                              affine=module.affine,
                              track_running_stats=module.track_running_stats)  # fmt: skip
        _fill(norm, members)
        return norm
    if isinstance(module, nn.Linear):
        linear = FusedLinear(module.in_features, module.out_features, k)
        _fill(linear, members)
        return linear
    if isinstance(module, ZeroPadShortcut):
        return FusedZeroPad(module.cin, module.cout, module.stride, k)
    if isinstance(module, nn.Dropout):
        return FusedDropout(module.p, k)
    return None


def _fill(fused: nn.Module, members: list[nn.Module]) -> None:
    for name, tensor in fused.state_dict(keep_vars=True).items():
        parts = [m.state_dict(keep_vars=True)[name] for m in members]
        # the members' device and dtype (a new module is float32 on the CPU); the memory
        # layout is the trainer's to choose, as for a solo model
        tensor.data = _merge_tensor(name, [p.detach() for p in parts])


def _replace(root: nn.Module, name: str, module: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


# --------------------------------------------------------------------------- states


def _merge_tensor(name: str, parts: Sequence[torch.Tensor]) -> torch.Tensor:
    if parts[0].dim() == 0:
        # num_batches_tracked: one counter for the group, equal in members trained alike
        if any(not torch.equal(p, parts[0]) for p in parts[1:]):
            raise FusionError(f"{name}: the members' counters differ ({[p.item() for p in parts]});"
                              " only runs at the same step can be fused")  # fmt: skip
        return parts[0].clone()
    if any(p.shape != parts[0].shape for p in parts[1:]):
        raise FusionError(f"{name}: the members' shapes differ")
    return torch.cat(list(parts), dim=0)


def merge_model_states(states: Sequence[dict[str, torch.Tensor]]) -> dict[str, torch.Tensor]:
    """The fused model's state dict from its members' ordinary ones."""
    keys = list(states[0])
    if any(list(s) != keys for s in states[1:]):
        raise FusionError("the members' state dicts name different tensors")
    return {key: _merge_tensor(key, [s[key] for s in states]) for key in keys}


def split_model_state(fused: dict[str, torch.Tensor], k: int) -> list[dict[str, torch.Tensor]]:
    """Member k's ordinary state dict for each k, from a fused one."""
    members: list[dict[str, torch.Tensor]] = [{} for _ in range(k)]
    for key, tensor in fused.items():
        parts = [tensor] * k if tensor.dim() == 0 else list(tensor.chunk(k, dim=0))
        for m, part in enumerate(parts):
            members[m][key] = part.clone()
    return members


def member_slices(tensor: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Views of each member's part of a fused tensor (its rows along dimension 0)."""
    return tensor.unflatten(0, (k, tensor.shape[0] // k)).unbind(0)


# --------------------------------------------------------------------------- the optimizer


class FusedSGD:
    """``torch.optim.SGD`` for each member's slice of every parameter, with per-member
    hyper-parameters, as a few foreach kernels per step.

    For each (parameter, member) slice, in torch's order: ``d = grad + wd * p``; ``buf = m *
    buf + d`` (``d`` itself at the first step: zero buffers give exactly that); ``d = d + m *
    buf`` with Nesterov, else ``buf``; ``p -= lr * d``. ``optimizers[k]`` is member k's
    recipe; its ``no_weight_decay`` kinds get decay 0 as in :func:`harness.train.parameter_groups`.
    A member that is dropped (it diverged) is no longer updated.
    """

    # The fields of harness.schema.Optimizer this update reads for each member; a field added
    # to the schema is ignored here until it is added (tests/test_fusion.py checks the two
    # agree). ``name`` is "sgd", the only optimiser there is.
    HONOURS = frozenset({"name", "lr", "momentum", "nesterov", "weight_decay", "no_weight_decay"})

    def __init__(self, model: nn.Module, optimizers: Sequence[Optimizer]) -> None:
        from harness.train import parameter_groups

        self.k = len(optimizers)
        self.optimizers = list(optimizers)
        self.params = [p for p in model.parameters() if p.requires_grad]
        self.buffers = [torch.zeros_like(p) for p in self.params] if self._momentum else None
        index = {id(p): i for i, p in enumerate(self.params)}
        # member k's solo parameter order and weight decay of each parameter
        self.orders: list[list[list[int]]] = []
        self.decay = [[0.0] * len(self.params) for _ in range(self.k)]
        for m, opt in enumerate(self.optimizers):
            groups = parameter_groups(model, opt)
            self.orders.append([[index[id(p)] for p in g["params"]] for g in groups])
            for g in groups:
                wd = g.get("weight_decay", opt.weight_decay)
                for p in g["params"]:
                    self.decay[m][index[id(p)]] = wd
        self.active = list(range(self.k))
        self.last_lr: list[float] = [opt.lr for opt in self.optimizers]
        self._stepped = False
        self._views()

    @property
    def _momentum(self) -> bool:
        momenta = {opt.momentum != 0 for opt in self.optimizers}
        if len(momenta) > 1:
            raise FusionError("members with and without momentum cannot share an optimizer")
        return momenta.pop()

    def _views(self) -> None:
        """Slices (parameter, member) for the active members, as flat lists for foreach."""
        pairs = [(i, m) for i in range(len(self.params)) for m in self.active]
        self._pairs = pairs
        p_views = [member_slices(p.detach(), self.k) for p in self.params]
        self._p = [p_views[i][m] for i, m in pairs]
        if self.buffers is not None:
            b_views = [member_slices(b, self.k) for b in self.buffers]
            self._b = [b_views[i][m] for i, m in pairs]
        self._wd_groups = _by_value([self.decay[m][i] for i, m in pairs])
        self._momenta = [self.optimizers[m].momentum for _, m in pairs]
        self._momentum_groups = _by_value(
            [(self.optimizers[m].momentum, self.optimizers[m].nesterov) for _, m in pairs]
        )
        self._lr_key: tuple[float, ...] | None = None

    def drop(self, member: int) -> None:
        """Stop updating ``member`` (its loss became NaN: it is recorded and left as it is)."""
        if member in self.active:
            self.active.remove(member)
            self._views()

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self, lrs: Sequence[float]) -> None:
        """One update with member k's learning rate ``lrs[k]`` (a Python float each)."""
        self.last_lr = list(lrs)
        self._stepped = True
        if not self.active:
            return
        key = tuple(lrs[m] for m in self.active)
        if key != self._lr_key:
            self._lr_groups = _by_value([lrs[m] for _, m in self._pairs])
            self._lr_key = key
        grads_of = [member_slices(p.grad, self.k) for p in self.params]
        grads = [grads_of[i][m] for i, m in self._pairs]
        # Slices sharing a hyper-parameter value go through one foreach call with it as
        # ``alpha``: the very operations of torch's SGD, so the results are its results.
        d = list(grads)
        for wd, idx in self._wd_groups:
            if wd:
                _put(d, idx, torch._foreach_add(_take(grads, idx), _take(self._p, idx), alpha=wd))
        if self.buffers is not None:
            torch._foreach_mul_(self._b, self._momenta)
            torch._foreach_add_(self._b, d)
            for (momentum, nesterov), idx in self._momentum_groups:
                if nesterov:
                    _put(d, idx, torch._foreach_add(_take(d, idx), _take(self._b, idx),
                                                    alpha=momentum))  # fmt: skip
                else:
                    _put(d, idx, _take(self._b, idx))
        for lr, idx in self._lr_groups:
            torch._foreach_add_(_take(self._p, idx), _take(d, idx), alpha=-lr)

    # ---- each member's state in torch.optim.SGD's format

    def member_state_dict(self, member: int) -> dict[str, Any]:
        """Member ``member``'s optimizer state exactly as its solo ``torch.optim.SGD`` keeps it."""
        template = self._template(member)
        state = {}
        if self.buffers is not None and self._stepped:
            solo_order = (i for order in self.orders[member] for i in order)
            for solo, i in enumerate(solo_order):
                buf = member_slices(self.buffers[i], self.k)[member]
                state[solo] = {"momentum_buffer": buf.clone()}
        groups = template["param_groups"]
        for g in groups:
            g["lr"] = self.last_lr[member]
        return {"state": state, "param_groups": groups}

    @torch.no_grad()
    def load_member_state_dict(self, member: int, state_dict: dict[str, Any]) -> None:
        """Take member ``member``'s state from its solo optimizer's state dict."""
        orders = self.orders[member]
        groups = state_dict["param_groups"]
        if [len(g["params"]) for g in groups] != [len(o) for o in orders]:
            raise FusionError("the optimizer state does not fit the member's parameters")
        state = state_dict["state"]
        for order, group in zip(orders, groups, strict=True):
            for i, key in zip(order, group["params"], strict=True):
                buf = (state.get(key) or {}).get("momentum_buffer")
                if buf is not None and self.buffers is not None:
                    member_slices(self.buffers[i], self.k)[member].copy_(buf)
                    self._stepped = True
        self.last_lr[member] = groups[0]["lr"]

    def _template(self, member: int) -> dict[str, Any]:
        """An empty solo SGD's state dict for the member: torch's own keys and defaults."""
        opt = self.optimizers[member]
        groups = []
        for order in self.orders[member]:
            group: dict[str, Any] = {"params": [torch.empty(0) for _ in order]}
            decays = {self.decay[member][i] for i in order}
            if decays and decays != {opt.weight_decay}:
                group["weight_decay"] = decays.pop()
            groups.append(group)
        sgd = torch.optim.SGD(groups, lr=opt.lr, momentum=opt.momentum, nesterov=opt.nesterov,
                              weight_decay=opt.weight_decay)  # fmt: skip
        return sgd.state_dict()


def _by_value(values: Sequence) -> list[tuple[Any, list[int]]]:
    """The positions of each distinct value, in order of first appearance."""
    groups: dict[Any, list[int]] = {}
    for i, v in enumerate(values):
        groups.setdefault(v, []).append(i)
    return list(groups.items())


def _take(items: list, idx: list[int]) -> list:
    return [items[i] for i in idx]


def _put(items: list, idx: list[int], values: Sequence) -> None:
    for i, v in zip(idx, values, strict=True):
        items[i] = v
