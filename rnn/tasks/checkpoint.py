"""Checkpoints of a training run in safetensors, validated before anything is built from them.

A run directory holds two safetensors files, each replaced atomically (``mg.serialization``):

- ``model.safetensors``: the model's ``state_dict`` under its own names (PyTorch's for the built-in layers,
  e.g. ``encoder.rnn.weight_ih_l0``), readable without minigrad (``safetensors.numpy.load_file``,
  ``safetensors.torch.load_file``); metadata ``format``, ``step`` and ``config`` (JSON);
- ``checkpoint.safetensors``: everything a resume needs in one file, so that it is always consistent:
  the weights (``model/<name>``), the optimiser's per-parameter arrays (``optimizer/<index>/<key>``,
  e.g. Adam's ``exp_avg``), and as JSON metadata the config, the step, the optimiser's hyper-parameters
  and scalar state, and minigrad's generator state (``bit_generator.state``).

``load_checkpoint`` bounds the header (``MAX_HEADER_BYTES``), checks the digest, then checks every field
of the metadata against a schema (types, ranges, the sizes of ``TrainConfig.validate``) and that the
config cannot describe a model much larger than the weights stored, before any model is built;
``restore`` then checks the tensors' names, shapes and dtypes against the rebuilt model. Every rejection
is a ``CheckpointInvalid`` (a ``ValueError``) naming the file and the field.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np

import minigrad as mg
from minigrad import nn, optim
from minigrad.serialization import MAGIC, CheckpointError, load_safetensors, save_safetensors

#: /3: safetensors (model.safetensors + checkpoint.safetensors); /2: checkpoint.mg, models of rnn.models
FORMAT = "minigrad-rnn-checkpoint/3"
CHECKPOINT = "checkpoint.safetensors"
MODEL = "model.safetensors"
LEGACY = "checkpoint.mg"
MAX_HEADER_BYTES = 4 * 1024 * 1024
MAX_STEP = 10**12
RNG_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}


class CheckpointInvalid(ValueError):  # noqa: N818  (reads as "checkpoint invalid: ...")
    """A checkpoint that is missing a field, has a field of the wrong type or range, or does not fit
    its model."""


def _json(v: Any) -> Any:
    """``v`` with NumPy scalars and tuples as plain JSON values."""
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, (list, tuple)):
        return [_json(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _json(x) for k, x in v.items()}
    return v


def save_checkpoint(out_dir: str | Path, config: dict[str, Any], model: nn.Module, opt: optim.Optimizer,
                    step: int) -> Path:
    """Write ``checkpoint.safetensors`` then ``model.safetensors`` into ``out_dir``; the checkpoint's path."""
    out = Path(out_dir)
    sd = model.state_dict()
    osd = opt.state_dict()
    tensors: dict[str, Any] = {f"model/{k}": v for k, v in sd.items()}
    scalars: dict[str, dict[str, Any]] = {}
    for i, s in osd["state"].items():
        for key, v in s.items():
            if isinstance(v, np.ndarray) and v.ndim:
                tensors[f"optimizer/{i}/{key}"] = v
            else:
                scalars.setdefault(str(i), {})[key] = _json(v)
    meta = {**_meta(config, step), "rng": json.dumps(mg.default_rng().bit_generator.state),
            "optimizer": json.dumps({"param_groups": _json(osd["param_groups"]), "scalars": scalars})}
    save_safetensors(tensors, out / CHECKPOINT, meta)
    save_model(out, config, model, step)
    return out / CHECKPOINT


def save_model(out_dir: str | Path, config: dict[str, Any], model: nn.Module, step: int) -> None:
    """Write ``model.safetensors`` (the state dict under its own names) for ``step``."""
    save_safetensors(model.state_dict(), Path(out_dir) / MODEL, _meta(config, step))


def _meta(config: dict[str, Any], step: int) -> dict[str, str]:
    """The metadata both files carry: format, step and the run's config."""
    return {"format": FORMAT, "step": str(int(step)), "config": json.dumps(config)}


# --------------------------------------------------------------------------------------------- loading
def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint file meant by ``path`` (a file, or a run directory); ``FileNotFoundError`` or
    ``CheckpointInvalid`` (a run of an older format) if there is none."""
    p = Path(path)
    if p.is_dir():
        if (p / CHECKPOINT).is_file():
            return p / CHECKPOINT
        if (p / LEGACY).is_file():
            _refuse_legacy(p / LEGACY)
        raise FileNotFoundError(f"checkpoint {p / CHECKPOINT} does not exist")
    if p.exists() and not p.is_file():
        raise CheckpointInvalid(f"checkpoint {p} is not a regular file")
    if not p.is_file():
        raise FileNotFoundError(f"checkpoint {p} does not exist")
    return p


def _refuse_legacy(p: Path) -> None:
    found = "minigrad-rnn-checkpoint/2 or older"
    try:
        old = mg.load(p, max_header_bytes=MAX_HEADER_BYTES)
        if isinstance(old, dict) and isinstance(old.get("format"), str):
            found = old["format"][:60]
    except (ValueError, OSError):
        pass
    raise CheckpointInvalid(f"{p} is a checkpoint in format {found}, but this version of rnn reads {FORMAT} "
                            f"({CHECKPOINT}, safetensors); train the model again")


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """The validated checkpoint at ``path`` (a run directory, its ``checkpoint.safetensors`` or its
    ``model.safetensors``): ``{"format", "config", "step", "model", "optimizer", "rng", "path"}`` with
    ``optimizer`` and ``rng`` None for a ``model.safetensors`` (enough to evaluate, sample and draw)."""
    from .trainer import memory_available

    p = checkpoint_file(path)
    size, have = p.stat().st_size, memory_available()
    if have is not None and 3 * size > have:  # read, decoded, then copied into a model
        raise CheckpointInvalid(f"{p} is {size / 2**30:.1f} GiB: loading it needs more than the "
                                f"{have / 2**30:.1f} GiB of memory available")
    with open(p, "rb") as f:
        head = f.read(9)
    if head[:len(MAGIC)] == MAGIC:
        _refuse_legacy(p)
    if head[8:9] != b"{":
        raise CheckpointInvalid(f"{p} is not a minigrad rnn checkpoint (not a safetensors file: "
                                f"{os.path.getsize(p)} bytes starting {head[:8]!r})")
    try:
        tensors, meta = load_safetensors(p, max_header_bytes=MAX_HEADER_BYTES, require_digest=True)
    except CheckpointError as exc:
        raise CheckpointInvalid(str(exc).removeprefix("load: ")) from None
    return parse(p, tensors, meta)


def _fail(p: Path, field: str, msg: str) -> CheckpointInvalid:
    return CheckpointInvalid(f"{p}: {field}: {msg}")


def _meta_json(p: Path, meta: dict[str, str], key: str, kind: type) -> Any:
    if key not in meta:
        raise _fail(p, key, "missing")
    try:
        v = json.loads(meta[key], parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
    except (ValueError, RecursionError) as exc:
        raise _fail(p, key, f"not valid JSON ({str(exc)[:100]})") from None
    if not isinstance(v, kind):
        raise _fail(p, key, f"expected a JSON {kind.__name__}, got {type(v).__name__}")
    return v


def parse(p: Path, tensors: dict[str, np.ndarray], meta: dict[str, str]) -> dict[str, Any]:
    """Check the metadata and tensors of a loaded file against the schema; the checkpoint dict."""
    from .trainer import TrainConfig

    found = meta.get("format")
    if found != FORMAT:
        if isinstance(found, str) and found.startswith(FORMAT.rsplit("/", 1)[0] + "/"):
            raise CheckpointInvalid(f"{p} is a checkpoint in format {found[:60]}, but this version of rnn "
                                    f"reads {FORMAT}; train the model again")
        raise CheckpointInvalid(f"{p} is not a minigrad rnn checkpoint (no format {FORMAT} in its metadata)")
    cfg = TrainConfig.checked(_meta_json(p, meta, "config", dict), where=f"{p}: config")
    step = meta.get("step", "")
    if not (step.isascii() and step.isdigit() and len(step) <= 13 and int(step) <= MAX_STEP):
        raise _fail(p, "step", f"expected an integer between 0 and {MAX_STEP}, got {step[:40]!r}")
    model = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    optimizer = rng = None
    if "optimizer" in meta or "rng" in meta:  # checkpoint.safetensors
        rng = _check_rng(p, _meta_json(p, meta, "rng", dict))
        optimizer = _optimizer_state(p, _meta_json(p, meta, "optimizer", dict), tensors)
        stray = [k for k in tensors if not k.startswith(("model/", "optimizer/"))]
        if stray:
            raise _fail(p, "tensors", f"unexpected tensor {stray[0][:100]!r}")
    else:  # model.safetensors: the state dict under its own names
        model = tensors
    if not model:
        raise _fail(p, "model", "no weights")
    for k, v in model.items():
        if v.dtype != np.dtype(cfg.dtype):
            raise _fail(p, f"model/{k}", f"dtype {v.dtype}, but config.dtype is {cfg.dtype}")
    _check_size(p, cfg, model)
    return {"format": FORMAT, "config": cfg.to_dict(), "step": int(step), "model": model,
            "optimizer": optimizer, "rng": rng, "path": p}


def _check_size(p: Path, cfg: Any, model: dict[str, np.ndarray]) -> None:
    """Refuse a config that describes a model far bigger than the weights stored (a 7 KB file saying
    hidden=12000): every layer after the first holds a (>= hidden, hidden) matrix, every layer and the
    head at least ``hidden`` numbers."""
    h, n = cfg.hidden, cfg.layers
    least = h * h * (n - 1) + h * (n + 1)
    have = sum(v.size for v in model.values())
    if have < least:
        raise _fail(p, "config", f"hidden={h}, layers={n} describe a model of at least {least} numbers, but "
                                 f"the file holds {have}: the config does not match the weights")


def _check_rng(p: Path, st: dict[str, Any]) -> dict[str, Any]:
    kind = type(mg.default_rng().bit_generator).__name__
    if set(st) != RNG_KEYS or st["bit_generator"] != kind:
        raise _fail(p, "rng", f"expected a {kind} bit_generator.state with keys {sorted(RNG_KEYS)}")
    inner = st["state"]
    ok = (isinstance(inner, dict) and set(inner) == {"state", "inc"}
          and all(type(v) is int and 0 <= v < 2**128 for v in inner.values())
          and st["has_uint32"] in (0, 1) and type(st["uinteger"]) is int and 0 <= st["uinteger"] < 2**32)
    if not ok:
        raise _fail(p, "rng", "state values out of range (128-bit state and inc, 32-bit uinteger)")
    return st


def _number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _optimizer_state(p: Path, o: dict[str, Any], tensors: dict[str, np.ndarray]) -> dict[str, Any]:
    """The optimiser state dict from the metadata and the ``optimizer/<i>/<key>`` tensors (structure
    checked here; sizes against the model's parameters by ``Optimizer.load_state_dict``)."""
    if set(o) != {"param_groups", "scalars"} or not isinstance(o["param_groups"], list) \
            or not isinstance(o["scalars"], dict) or not o["param_groups"]:
        raise _fail(p, "optimizer", "expected {'param_groups': [...], 'scalars': {...}}")
    for g in o["param_groups"]:
        if not isinstance(g, dict) or not isinstance(g.get("params"), list) \
                or not all(type(i) is int and 0 <= i < 100_000 for i in g["params"]):
            raise _fail(p, "optimizer.param_groups", "each group needs 'params': a list of indices")
        for k, v in g.items():
            if k != "params" and not (_number(v) or isinstance(v, bool)
                                      or (isinstance(v, list) and all(_number(x) for x in v))):
                raise _fail(p, f"optimizer.param_groups.{k[:40]}", f"not a finite number: {str(v)[:40]}")
    state: dict[int, dict[str, Any]] = {}
    for i, s in o["scalars"].items():
        if not (i.isascii() and i.isdigit() and len(i) < 7) or not isinstance(s, dict) \
                or not all(_number(v) for v in s.values()):
            raise _fail(p, "optimizer.scalars", f"entry {i[:20]!r} must map a parameter index to numbers")
        state.setdefault(int(i), {}).update(s)
    for name, v in tensors.items():
        if name.startswith("optimizer/"):
            parts = name.split("/")
            if len(parts) != 3 or not (parts[1].isascii() and parts[1].isdigit() and len(parts[1]) < 7):
                raise _fail(p, name[:100], "expected optimizer/<index>/<key>")
            state.setdefault(int(parts[1]), {})[parts[2]] = v
    return {"state": dict(sorted(state.items())), "param_groups": o["param_groups"]}


def restore_states(p: Path, ckpt: dict[str, Any], model: nn.Module, opt: optim.Optimizer | None) -> None:
    """Load the checkpoint's weights (names, shapes and dtypes checked against ``model`` first), the
    optimiser state and the generator state; ``CheckpointInvalid`` naming what does not fit."""
    mine = model.state_dict()
    saved = ckpt["model"]
    missing, extra = sorted(set(mine) - set(saved)), sorted(set(saved) - set(mine))
    if missing or extra:
        what = f"missing {missing[0]!r}" if missing else f"unexpected {extra[0][:100]!r}"
        raise _fail(p, "model", f"the weights do not fit the model the config describes ({what})")
    for k, v in mine.items():
        if saved[k].shape != v.shape or saved[k].dtype != v.dtype:
            raise _fail(p, f"model/{k}", f"{saved[k].dtype}{list(saved[k].shape)}, but the model has "
                                         f"{v.dtype}{list(v.shape)}")
    model.load_state_dict(saved)
    if opt is not None and ckpt["optimizer"] is not None:
        for i, (g, mine_g) in enumerate(zip(ckpt["optimizer"]["param_groups"], opt.param_groups)):
            if set(g) - {"initial_lr"} != set(mine_g) - {"initial_lr"}:
                raise _fail(p, f"optimizer.param_groups[{i}]", f"keys {sorted(g)[:12]} are not the "
                            f"{type(opt).__name__} hyper-parameters {sorted(mine_g)}")
        try:
            opt.load_state_dict(ckpt["optimizer"])
        except (ValueError, TypeError, KeyError) as exc:
            raise _fail(p, "optimizer", str(exc)[:300]) from None
    if ckpt["rng"] is not None:
        try:
            mg.default_rng().bit_generator.state = ckpt["rng"]
        except (ValueError, TypeError, OverflowError) as exc:
            raise _fail(p, "rng", str(exc)[:200]) from None
