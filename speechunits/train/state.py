"""Everything random or stateful a bit-exact resume has to restore besides the weights.

- the global RNGs: torch (CPU and every CUDA device), numpy's legacy global
  generator, Python's `random` (time jitter and VAE sampling draw from torch's);
- private state of model modules that `state_dict()` leaves out: private
  `torch.Generator`s (the codebook's restart / k-means draws), non-persistent
  buffers (the k-means reservoir, code-usage counts) and plain integer counters
  (the reservoir's frame count).

All of it is converted to plain data (tensors, ints, lists, dicts) so that a
checkpoint holding it still loads with `torch.load(weights_only=True)`.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch import nn

__all__ = ["capture_rng", "restore_rng", "capture_module_state", "restore_module_state"]

_MODULE_ATTRS = set(vars(nn.Module()))  # what every module has; never module-specific state


def capture_rng() -> dict:
    np_state = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {
            "name": str(np_state[0]),
            "key": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": _to_lists(random.getstate()),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n["name"], n["key"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached_gaussian"]))
    random.setstate(_to_tuples(state["python"]))
    if "cuda" in state and torch.cuda.is_available():
        cuda = state["cuda"]
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in cuda])


def _to_lists(x):
    return [_to_lists(v) for v in x] if isinstance(x, tuple) else x


def _to_tuples(x):
    return tuple(_to_tuples(v) for v in x) if isinstance(x, list) else x


def capture_module_state(model: nn.Module) -> dict:
    """{module name: {"generators": {attr: state}, "buffers": {name: tensor}, "ints": {attr: int}}}."""
    out = {}
    for name, module in model.named_modules():
        entry: dict = {}
        gens = {k: v.get_state() for k, v in vars(module).items() if isinstance(v, torch.Generator)}
        if gens:
            entry["generators"] = gens
        bufs = {k: module._buffers[k].detach().cpu().clone() for k in module._non_persistent_buffers_set
                if module._buffers.get(k) is not None}
        if bufs:
            entry["buffers"] = bufs
        ints = {k: v for k, v in vars(module).items()
                if k.startswith("_") and k not in _MODULE_ATTRS and type(v) is int}
        if ints:
            entry["ints"] = ints
        if entry:
            out[name] = entry
    return out


def restore_module_state(model: nn.Module, state: dict) -> None:
    modules = dict(model.named_modules())
    for name, entry in state.items():
        module = modules.get(name)
        if module is None:
            continue
        for attr, gen_state in entry.get("generators", {}).items():
            gen = getattr(module, attr, None)
            if not isinstance(gen, torch.Generator):
                gen = torch.Generator()
                setattr(module, attr, gen)
            gen.set_state(gen_state)
        for buf, value in entry.get("buffers", {}).items():
            old = module._buffers.get(buf)
            device = old.device if old is not None else "cpu"
            module._buffers[buf] = value.to(device)
        for attr, value in entry.get("ints", {}).items():
            setattr(module, attr, int(value))
