"""Safe checkpoints: ``save(obj, path)`` / ``load(path)`` for nested containers of arrays and plain values.

A dict of arrays (str keys, ``np.ndarray``/Tensor values: a ``state_dict``) is written as a standard
safetensors file (https://github.com/huggingface/safetensors), readable without minigrad by
``safetensors.numpy.load_file`` / ``safetensors.torch.load_file``; ``load`` of a safetensors file (ours
or anyone's) returns a dict of arrays. ``save_safetensors`` / ``load_safetensors`` add string metadata.
Before anything is allocated the safetensors header length is bounded (``max_header_bytes``), then the
header is checked (dtypes, shapes, contiguous in-bounds offsets, the exact file size); files written by
minigrad carry the SHA-256 of their header and data in the metadata (``minigrad.sha256``), checked on
load.

Anything else (nested dicts/lists/tuples with plain values, which safetensors cannot hold) uses
minigrad's own container, below. A dict of arrays in that container (what ``save`` wrote before it
spoke safetensors) is still read, with a ``DeprecationWarning``: the next version will refuse it.

What can be saved: dicts (str or int keys), lists, tuples, ``np.ndarray`` (bool, int8..int64,
uint8..uint64, float16/32/64), NumPy scalars, Tensors (saved as their array; loaded as ndarray), and
Python None, bool, int, float, str. That covers ``model.state_dict()``, ``optimizer.state_dict()``,
step counters and a NumPy ``Generator``'s ``bit_generator.state``. Everything round-trips bit-exactly
(dtype, shape, -0.0 and NaN payloads; tuples stay tuples, int keys stay ints).

File format (version 1), all integers little-endian::

    magic     8 bytes   b"MGCKPT\\r\\n"
    version   u32       1
    hlen      u64       length of the header
    header    hlen      UTF-8 JSON: {"format": "minigrad-checkpoint", "version": 1, "root": <node>,
                        "arrays": [{"dtype": "<f4", "shape": [2, 3], "offset": 0, "nbytes": 24}, ...],
                        "data_len": <int>}
    data      data_len  the arrays' raw C-order bytes, back to back in "arrays" order
    digest    32 bytes  SHA-256 of everything before it

A node is JSON null/true/false/int/str/float (finite) / list of nodes, or an object with one key:
``{"$dict": {str: node}}``, ``{"$items": [[str|int, node], ...]}``, ``{"$tuple": [...]}``,
``{"$array": i}``, ``{"$scalar": i}`` (a 0-d array read back as a NumPy scalar) or
``{"$float": "<16 hex digits of the IEEE-754 bits>"}`` (NaN and infinities).

Nothing is ever unpickled or evaluated. ``load`` checks the magic, version, header length (bounded by
``max_header_bytes``), the exact file size, the digest, the header's structure, every dtype against
an allow-list, and shape x itemsize == nbytes for contiguous, in-bounds buffers, before it allocates
any array; so a malformed, truncated or hostile file raises ``CheckpointError`` (a ``ValueError``) in
time and memory linear in the file size. ``save`` to a path writes a temporary file in the same
directory, flushes and fsyncs it, then ``os.replace``s it over the target: a crash leaves the old
checkpoint. Both also take a binary file object (``io.BytesIO``, an open file): ``save`` writes at its
position (not atomically) and ``load`` reads from its position to its end, with the same checks.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import struct
import warnings
from collections.abc import Callable
from typing import Any, BinaryIO

import numpy as np

MAGIC = b"MGCKPT\r\n"
VERSION = 1
FORMAT = "minigrad-checkpoint"
_PREFIX = struct.Struct("<8sIQ")  # magic, version, header length
_DIGEST = 32
MAX_HEADER_BYTES = 64 * 1024 * 1024
MAX_DEPTH = 100
MAX_NDIM = 32
_CHUNK = 1 << 20
_EARLY_DIGEST = 64 * 1024

#: Array dtypes a checkpoint may hold (little-endian ``dtype.str``).
ALLOWED_DTYPES = frozenset({"|b1", "|i1", "|u1", "<i2", "<u2", "<i4", "<u4", "<i8", "<u8",
                            "<f2", "<f4", "<f8"})

__all__ = ["ALLOWED_DTYPES", "CheckpointError", "atomic_write", "load", "load_safetensors", "save",
           "save_safetensors"]

#: safetensors dtype names <-> NumPy dtypes (little-endian)
ST_DTYPES = {"BOOL": "|b1", "U8": "|u1", "I8": "|i1", "I16": "<i2", "U16": "<u2", "I32": "<i4",
             "U32": "<u4", "I64": "<i8", "U64": "<u8", "F16": "<f2", "F32": "<f4", "F64": "<f8"}
DIGEST_KEY = "minigrad.sha256"


class CheckpointError(ValueError):
    """A file that is not a valid minigrad checkpoint (bad magic or version, truncated, corrupted,
    malformed header, disallowed dtype, inconsistent sizes)."""


# ---------------------------------------------------------------------------- encoding
def _where(path: tuple) -> str:
    return "obj" + "".join(f"[{p!r}]" for p in path)


class _Encoder:
    def __init__(self) -> None:
        self.arrays: list[np.ndarray] = []

    def array(self, a: np.ndarray, path: tuple) -> int:
        dt = a.dtype
        if dt.byteorder == ">" or (dt.byteorder == "=" and not np.little_endian):
            a = a.astype(dt.newbyteorder("<"))
        if a.dtype.str not in ALLOWED_DTYPES:
            raise TypeError(f"save: array of dtype {a.dtype} at {_where(path)} is not supported "
                            f"(allowed: bool, int8..64, uint8..64, float16/32/64)")
        self.arrays.append(a if a.flags.c_contiguous else a.copy(order="C"))  # keeps 0-d arrays 0-d
        return len(self.arrays) - 1

    def node(self, x: Any, path: tuple, depth: int) -> Any:
        from .tensor import Tensor

        if depth > MAX_DEPTH:
            raise ValueError(f"save: nesting deeper than {MAX_DEPTH} at {_where(path)} (a cycle?)")
        if x is None or isinstance(x, (bool, str)):
            return x
        if isinstance(x, int) and not isinstance(x, np.generic):
            return int(x)
        if isinstance(x, float) and not isinstance(x, np.generic):
            if math.isfinite(x):
                return float(x)
            return {"$float": struct.pack(">d", x).hex()}
        if isinstance(x, np.ndarray):
            return {"$array": self.array(x, path)}
        if isinstance(x, np.generic):
            return {"$scalar": self.array(np.asarray(x), path)}
        if isinstance(x, Tensor):
            return {"$array": self.array(x.data, path)}
        if isinstance(x, list):
            return [self.node(v, (*path, i), depth + 1) for i, v in enumerate(x)]
        if isinstance(x, tuple):
            return {"$tuple": [self.node(v, (*path, i), depth + 1) for i, v in enumerate(x)]}
        if isinstance(x, dict):
            for k in x:
                if isinstance(k, bool) or not isinstance(k, (str, int)):
                    raise TypeError(f"save: dict key {k!r} ({type(k).__name__}) at {_where(path)}; "
                                    "keys must be str or int")
            if all(isinstance(k, str) for k in x):
                return {"$dict": {k: self.node(v, (*path, k), depth + 1) for k, v in x.items()}}
            return {"$items": [[int(k) if isinstance(k, int) else k, self.node(v, (*path, k), depth + 1)]
                               for k, v in x.items()]}
        hint = " (save its state_dict() instead)" if hasattr(x, "state_dict") else ""
        raise TypeError(f"save: cannot save a {type(x).__name__} at {_where(path)}{hint}; supported: "
                        "dict, list, tuple, ndarray, NumPy scalar, Tensor, None, bool, int, float, str")


def _write(f: BinaryIO, h: Any, buf: Any) -> None:
    """Write one buffer and feed it to the digest (the one place bytes reach the file)."""
    f.write(buf)
    h.update(buf)


def _bytes_of(a: np.ndarray) -> memoryview:
    return memoryview(a.reshape(-1).view(np.uint8))


def _encode(obj: Any) -> tuple[bytes, list[np.ndarray]]:
    """The header bytes and the arrays of ``obj`` (a ``TypeError`` for unsupported contents)."""
    enc = _Encoder()
    root = enc.node(obj, (), 0)
    specs, offset = [], 0
    for a in enc.arrays:
        specs.append({"dtype": a.dtype.str, "shape": list(a.shape), "offset": offset, "nbytes": a.nbytes})
        offset += a.nbytes
    header = json.dumps({"format": FORMAT, "version": VERSION, "root": root, "arrays": specs,
                         "data_len": offset}, separators=(",", ":"), allow_nan=False).encode("ascii")
    return header, enc.arrays


def _write_all(f: BinaryIO, header: bytes, arrays: list[np.ndarray]) -> None:
    h = hashlib.sha256()
    _write(f, h, _PREFIX.pack(MAGIC, VERSION, len(header)))
    _write(f, h, header)
    for a in arrays:
        if a.nbytes:
            _write(f, h, _bytes_of(a))
    f.write(h.digest())


def _is_path(x: Any) -> bool:
    return isinstance(x, (str, bytes, os.PathLike))


def _check_binary(f: Any, fn: str, method: str) -> None:
    if not callable(getattr(f, method, None)):
        raise TypeError(f"{fn}: expected a path or a binary file object with .{method}(), got "
                        f"{type(f).__name__}")
    if isinstance(f, io.TextIOBase):
        mode = "wb" if method == "write" else "rb"
        raise TypeError(f"{fn}: {getattr(f, 'name', 'the file')!r} is open in text mode; open it with "
                        f"mode {mode!r}")


def _is_array_dict(obj: Any) -> bool:
    from .tensor import Tensor

    return (isinstance(obj, dict) and bool(obj) and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, (np.ndarray, Tensor)) for v in obj.values()))


def save(obj: Any, f: str | os.PathLike[str] | BinaryIO) -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays and plain values) to ``f``: a path, or a binary
    file object with ``write`` (``io.BytesIO``, ``open(..., "wb")``), written at its position.

    A non-empty dict of str -> array/Tensor (a ``state_dict``) is written as safetensors; anything else
    in minigrad's container. Unsupported contents, a target that is a directory or whose directory does
    not exist raise before anything is written. A path is written atomically: on any failure the
    temporary file is removed and an existing checkpoint there is left intact. A file object is written
    directly and flushed (not atomic, not closed: it stays the caller's)."""
    if _is_array_dict(obj):
        save_safetensors(obj, f)
        return
    header, arrays = _encode(obj)
    _emit(f, "save", lambda out: _write_all(out, header, arrays))


def _check_target(path: str, fn: str) -> None:
    """Refuse a target that cannot be replaced by a file before any temporary file is written."""
    if os.path.isdir(path):
        raise IsADirectoryError(f"{fn}: {path} is a directory; give a file name inside it")
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{fn}: the directory {directory} does not exist")


def _emit(f: Any, fn: str, write: Any) -> None:
    """Run ``write(file)`` on a file object, or atomically on a path (temp + fsync + rename)."""
    if not _is_path(f):
        _check_binary(f, fn, "write")
        write(f)
        if callable(getattr(f, "flush", None)):
            f.flush()
        return
    path = os.fsdecode(f)
    _check_target(path, fn)
    atomic_write(path, write)


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], Any], mode: int = 0o644) -> None:
    """Replace ``path`` by what ``write(file)`` writes, atomically: a temporary file in the same
    directory (``.<name>.<random>.tmp``), flushed and fsynced, renamed over ``path``, then the directory
    fsynced. On any failure the temporary file is removed and ``path`` is untouched; an ``OSError``
    without a file name (a full disk) is re-raised naming ``path``."""
    path = os.fsdecode(path)
    directory = os.path.dirname(os.path.abspath(path))
    base = os.path.basename(path)
    while True:
        tmp = os.path.join(directory, f".{base}.{secrets.token_hex(6)}.tmp")
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), mode)
            break
        except FileExistsError:
            continue
    try:
        with os.fdopen(fd, "wb") as out:
            write(out)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError) and exc.errno and exc.filename is None:  # say which file (disk full)
            raise type(exc)(exc.errno, exc.strerror, path) from exc
        raise
    _fsync_dir(directory)


def save_safetensors(tensors: dict[str, Any], f: str | os.PathLike[str] | BinaryIO,
                     metadata: dict[str, str] | None = None) -> None:
    """Write ``tensors`` (str -> array or Tensor) as a safetensors file with string ``metadata`` (plus
    the SHA-256 of the data under ``minigrad.sha256``); atomically to a path, as ``save``."""
    from safetensors.numpy import save as st_save

    from .tensor import Tensor

    if not isinstance(tensors, dict) or not all(isinstance(k, str) for k in tensors):
        raise TypeError("save_safetensors: expected a dict with str keys")
    meta = dict(metadata or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in meta.items()):
        raise TypeError("save_safetensors: metadata must map str to str")
    enc, arrays = _Encoder(), {}
    for k, v in tensors.items():
        a = v.data if isinstance(v, Tensor) else v
        if not isinstance(a, np.ndarray):
            raise TypeError(f"save_safetensors: {k!r} is a {type(v).__name__}, not an array or Tensor")
        enc.array(a, (k,))
        arrays[k] = enc.arrays[-1]
    meta.pop(DIGEST_KEY, None)
    blob = st_save(arrays, metadata=meta or None)
    hlen = int.from_bytes(blob[:8], "little")
    meta[DIGEST_KEY] = _st_digest(json.loads(blob[8:8 + hlen]), blob[8 + hlen:])
    blob = st_save(arrays, metadata=meta)
    _emit(f, "save", lambda out: _write(out, hashlib.sha256(), memoryview(blob)))


def _st_digest(header: dict[str, Any], data: bytes) -> str:
    """SHA-256 of a safetensors header (without the digest itself, keys sorted) and of its data: any
    change to a name, shape, offset, metadata value or byte of data changes it."""
    header = dict(header)
    meta = {k: v for k, v in header.pop("__metadata__", {}).items() if k != DIGEST_KEY}
    if meta:
        header["__metadata__"] = meta
    h = hashlib.sha256(json.dumps(header, sort_keys=True, separators=(",", ":")).encode())
    h.update(data)
    return h.hexdigest()


def _fsync_dir(directory: str) -> None:
    """Make the rename durable (POSIX); best effort where directories cannot be opened."""
    try:
        dfd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dfd)
    except OSError:
        pass
    finally:
        os.close(dfd)


# ---------------------------------------------------------------------------- decoding
def _no_dupes(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d: dict[str, Any] = {}
    for k, v in pairs:  # linear time even for a hostile object with a million keys
        if k in d:
            raise CheckpointError(f"load: header has a duplicate key {k[:100]!r}")
        d[k] = v
    return d


def _no_constants(name: str) -> Any:
    raise CheckpointError(f"load: header contains the non-JSON constant {name}")


def _is_int(x: Any) -> bool:
    return isinstance(x, int) and not isinstance(x, bool)


def _check_specs(header: Any, fname: str) -> list[tuple[np.dtype, tuple[int, ...], int, int]]:
    if not isinstance(header, dict) or set(header) != {"format", "version", "root", "arrays", "data_len"}:
        raise CheckpointError(f"load: {fname}: header must be an object with keys format, version, root, "
                              "arrays, data_len")
    if header["format"] != FORMAT or header["version"] != VERSION:
        raise CheckpointError(f"load: {fname}: header says format {header['format']!r} version "
                              f"{header['version']!r}, expected {FORMAT!r} version {VERSION}")
    arrays = header["arrays"]
    if not isinstance(arrays, list):
        raise CheckpointError(f"load: {fname}: 'arrays' must be a list")
    specs, offset = [], 0
    for i, s in enumerate(arrays):
        if not isinstance(s, dict) or set(s) != {"dtype", "shape", "offset", "nbytes"}:
            raise CheckpointError(f"load: {fname}: array {i} must have keys dtype, shape, offset, nbytes")
        if not isinstance(s["dtype"], str) or s["dtype"] not in ALLOWED_DTYPES:
            raise CheckpointError(f"load: {fname}: array {i} has dtype {s['dtype']!r}, which is not "
                                  f"allowed (allowed: {sorted(ALLOWED_DTYPES)})")
        shape = s["shape"]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(d) and 0 <= d < 2**62 for d in shape)):
            raise CheckpointError(f"load: {fname}: array {i} has invalid shape {shape!r}")
        dt = np.dtype(s["dtype"])
        expected = math.prod(shape) * dt.itemsize
        if not _is_int(s["nbytes"]) or s["nbytes"] != expected:
            raise CheckpointError(f"load: {fname}: array {i} of shape {tuple(shape)} and dtype {dt} needs "
                                  f"{expected} bytes but the header says {s['nbytes']!r}")
        if not _is_int(s["offset"]) or s["offset"] != offset:
            raise CheckpointError(f"load: {fname}: array {i} starts at offset {s['offset']!r}, expected "
                                  f"{offset} (arrays must be contiguous and in order)")
        offset += expected
        specs.append((dt, tuple(shape), s["offset"], expected))
    if not _is_int(header["data_len"]) or header["data_len"] != offset:
        raise CheckpointError(f"load: {fname}: data_len {header['data_len']!r} does not equal the "
                              f"arrays' total size {offset}")
    return specs


class _Decoder:
    def __init__(self, n_arrays: int, fname: str) -> None:
        self.used = [False] * n_arrays
        self.fname = fname
        self.scalars: set[int] = set()

    def fail(self, msg: str) -> CheckpointError:
        return CheckpointError(f"load: {self.fname}: {msg}")

    def ref(self, i: Any) -> int:
        if not _is_int(i) or not 0 <= i < len(self.used):
            raise self.fail(f"array reference {i!r} is out of range (0..{len(self.used) - 1})")
        if self.used[i]:
            raise self.fail(f"array {i} is referenced twice")
        self.used[i] = True
        return i

    def node(self, x: Any, depth: int) -> Any:
        """Validate a node; arrays become ``_Ref`` placeholders filled in after the data is read."""
        if depth > MAX_DEPTH:
            raise self.fail(f"nesting deeper than {MAX_DEPTH}")
        if x is None or isinstance(x, (bool, int, str)):
            return x
        if isinstance(x, float):
            if not math.isfinite(x):
                raise self.fail("non-finite float outside a $float node")
            return x
        if isinstance(x, list):
            return [self.node(v, depth + 1) for v in x]
        if not isinstance(x, dict) or len(x) != 1:
            raise self.fail(f"invalid node of type {type(x).__name__}")
        (tag, v), = x.items()
        if tag == "$dict" and isinstance(v, dict):
            return {k: self.node(w, depth + 1) for k, w in v.items()}
        if tag == "$items" and isinstance(v, list):
            out: dict[Any, Any] = {}
            for item in v:
                if (not isinstance(item, list) or len(item) != 2 or isinstance(item[0], bool)
                        or not isinstance(item[0], (str, int))):
                    raise self.fail("$items entries must be [str or int key, node]")
                if item[0] in out:
                    raise self.fail(f"duplicate dict key {item[0]!r}")
                out[item[0]] = self.node(item[1], depth + 1)
            return out
        if tag == "$tuple" and isinstance(v, list):
            return tuple(self.node(w, depth + 1) for w in v)
        if tag == "$array":
            return _Ref(self.ref(v), False)
        if tag == "$scalar":
            return _Ref(self.ref(v), True)
        if tag == "$float" and isinstance(v, str) and len(v) == 16:
            try:
                return struct.unpack(">d", bytes.fromhex(v))[0]
            except ValueError:
                pass
        raise self.fail(f"invalid node {tag!r}")


class _Ref:
    __slots__ = ("i", "scalar")

    def __init__(self, i: int, scalar: bool) -> None:
        self.i, self.scalar = i, scalar


def _fill(x: Any, arrays: list[np.ndarray]) -> Any:
    if isinstance(x, _Ref):
        a = arrays[x.i]
        if x.scalar:
            if a.ndim:
                raise CheckpointError(f"load: a $scalar node refers to an array of shape {a.shape}")
            return a[()]
        return a
    if isinstance(x, list):
        return [_fill(v, arrays) for v in x]
    if isinstance(x, tuple):
        return tuple(_fill(v, arrays) for v in x)
    if isinstance(x, dict):
        return {k: _fill(v, arrays) for k, v in x.items()}
    return x


def load(f: str | os.PathLike[str] | BinaryIO, max_header_bytes: int = MAX_HEADER_BYTES) -> Any:
    """Read a checkpoint written by ``save`` from a path, or from a binary file object with ``read``
    (from its position to its end; a stream that cannot seek is read into memory first). Never
    unpickles; any malformed, truncated, corrupted or hostile input raises ``CheckpointError`` (a
    ``ValueError``) saying what is wrong."""
    if _is_path(f):
        fname = os.fsdecode(f)
        with open(fname, "rb") as fh:
            return _load_from(fh, fname, max_header_bytes)
    _check_binary(f, "load", "read")
    fname = str(getattr(f, "name", None) or f"<{type(f).__name__}>")
    seekable = getattr(f, "seekable", None)
    if not (callable(seekable) and seekable()):
        data = f.read()
        if not isinstance(data, bytes):
            raise TypeError(f"load: {fname} returned {type(data).__name__} from read(), not bytes; open it "
                            "with mode 'rb'")
        f = io.BytesIO(data)
    return _load_from(f, fname, max_header_bytes)


def _load_from(f: BinaryIO, fname: str, max_header_bytes: int) -> Any:
    """Validate then read a checkpoint occupying ``f`` from its current position to its end."""
    start = f.tell()
    size = f.seek(0, os.SEEK_END) - start
    f.seek(start)
    head = f.read(9)
    f.seek(start)
    if head[:len(MAGIC)] != MAGIC and len(head) == 9 and head[8:9] == b"{":
        tensors, _ = _load_st(f, fname, size, max_header_bytes)
        return tensors
    hlen = _read_prefix(f, fname, size, max_header_bytes)
    if hlen > _EARLY_DIGEST:  # a big header costs time and memory to parse: check the digest first
        _verify_digest(f, fname, start, size)
        f.seek(start + _PREFIX.size)
    raw = f.read(hlen)
    if not isinstance(raw, bytes) or len(raw) != hlen:
        raise CheckpointError(f"load: {fname} is truncated (header)")
    header = _parse_header(raw, fname)
    specs = _check_specs(header, fname)
    expected = _PREFIX.size + hlen + header["data_len"] + _DIGEST
    if size != expected:
        what = "truncated" if size < expected else "has trailing bytes"
        raise CheckpointError(f"load: {fname} {what}: the header describes {expected} bytes, the "
                              f"file has {size}")
    dec = _Decoder(len(specs), fname)
    try:
        root = dec.node(header["root"], 0)
    except RecursionError:
        raise CheckpointError(f"load: {fname}: header nested too deeply") from None
    if not all(dec.used):
        raise CheckpointError(f"load: {fname}: array {dec.used.index(False)} is never referenced")
    _verify_digest(f, fname, start, size)
    f.seek(start + _PREFIX.size + hlen)
    obj = _fill(root, _read_arrays(f, fname, specs))
    if _is_array_dict(obj):
        warnings.warn(f"load: {fname} holds a dict of arrays in minigrad's own container, which mg.save now "
                      "writes as safetensors; this minigrad still reads it, the next will not: save it again "
                      "(mg.save(mg.load(path), path))", DeprecationWarning, stacklevel=3)
    return obj


def _read_prefix(f: BinaryIO, fname: str, size: int, max_header_bytes: int) -> int:
    """Check magic, version and header length; returns the header length."""
    prefix = f.read(_PREFIX.size)
    if not isinstance(prefix, bytes):
        raise TypeError(f"load: {fname} returned {type(prefix).__name__} from read(), not bytes; open it "
                        "with mode 'rb'")
    if len(prefix) >= len(MAGIC) and prefix[:len(MAGIC)] != MAGIC:
        kind = " (it looks like a NumPy .npz/zip file)" if prefix.startswith(b"PK") else \
            " (it looks like a pickle)" if prefix[:1] == b"\x80" else ""
        raise CheckpointError(f"load: {fname} is not a minigrad checkpoint{kind}: bad magic bytes "
                              f"{prefix[:len(MAGIC)]!r}")
    if len(prefix) < _PREFIX.size or size < _PREFIX.size + _DIGEST:
        raise CheckpointError(f"load: {fname} is truncated: {size} bytes, fewer than the "
                              f"{_PREFIX.size + _DIGEST}-byte minimum")
    _, version, hlen = _PREFIX.unpack(prefix)
    if version != VERSION:
        raise CheckpointError(f"load: {fname} has format version {version}; this minigrad reads "
                              f"version {VERSION}")
    if hlen > max_header_bytes:
        raise CheckpointError(f"load: {fname}: header length {hlen} exceeds the limit of "
                              f"{max_header_bytes} bytes")
    if _PREFIX.size + hlen + _DIGEST > size:
        raise CheckpointError(f"load: {fname} is truncated: the header alone needs {hlen} bytes but "
                              f"the file has {size}")
    return hlen


def _parse_header(raw: bytes, fname: str) -> Any:
    try:
        return json.loads(raw.decode("utf-8"), object_pairs_hook=_no_dupes, parse_constant=_no_constants)
    except CheckpointError:
        raise
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise CheckpointError(f"load: {fname}: header is not valid JSON ({type(exc).__name__}: "
                              f"{str(exc)[:200]})") from None


def _verify_digest(f: BinaryIO, fname: str, start: int, size: int) -> None:
    """SHA-256 over everything before the digest (streamed, bounded memory)."""
    f.seek(start)
    h = hashlib.sha256()
    remaining = size - _DIGEST
    while remaining:
        chunk = f.read(min(_CHUNK, remaining))
        if not chunk:
            raise CheckpointError(f"load: {fname} shrank while being read")
        h.update(chunk)
        remaining -= len(chunk)
    if f.read(_DIGEST) != h.digest():
        raise CheckpointError(f"load: {fname} is corrupted: SHA-256 digest mismatch")


def _read_arrays(f: BinaryIO, fname: str, specs: list[tuple[np.dtype, tuple[int, ...], int, int]]
                 ) -> list[np.ndarray]:
    """The arrays, allocated only now (total size == data_len <= file size, validated above)."""
    arrays = []
    for dt, shape, _, nbytes in specs:
        try:
            a = np.empty(shape, dt)
        except (ValueError, MemoryError) as exc:
            raise CheckpointError(f"load: {fname}: cannot allocate an array of shape {shape} "
                                  f"({exc})") from None
        if nbytes and _readinto(f, _bytes_of(a)) != nbytes:
            raise CheckpointError(f"load: {fname} is truncated (array data)")
        if dt.kind == "b" and nbytes and a.view(np.uint8).max() > 1:
            raise CheckpointError(f"load: {fname}: a bool array holds bytes other than 0 and 1")
        arrays.append(a)
    return arrays


def _readinto(f: BinaryIO, buf: memoryview) -> int:
    """Fill ``buf`` from ``f`` (``readinto`` where the file has it, else ``read``); bytes read."""
    if callable(getattr(f, "readinto", None)):
        n, total = 1, 0
        while n and total < len(buf):
            n = f.readinto(buf[total:]) or 0
            total += n
        return total
    data = f.read(len(buf))
    buf[:len(data)] = data
    return len(data)


# ---------------------------------------------------------------------------- safetensors
def load_safetensors(f: str | os.PathLike[str] | BinaryIO, max_header_bytes: int = MAX_HEADER_BYTES,
                     require_digest: bool = False) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """The tensors (name -> writable ndarray, in file order) and the string metadata of a safetensors
    file, validated before anything is allocated (see the module doc); ``CheckpointError`` otherwise.
    The digest minigrad writes (header and data) is checked when present, and required with
    ``require_digest``."""
    if _is_path(f):
        fname = os.fsdecode(f)
        with open(fname, "rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(0)
            return _load_st(fh, fname, size, max_header_bytes, require_digest)
    _check_binary(f, "load", "read")
    fname = str(getattr(f, "name", None) or f"<{type(f).__name__}>")
    data = f.read()
    if not isinstance(data, bytes):
        raise TypeError(f"load: {fname} returned {type(data).__name__} from read(), not bytes")
    return _load_st(io.BytesIO(data), fname, len(data), max_header_bytes, require_digest)


def _st_specs(header: Any, fname: str, data_len: int
              ) -> list[tuple[str, np.dtype, tuple[int, ...], int, int]]:
    """Check a parsed safetensors header: name -> dtype, shape, data_offsets tiling the data exactly."""
    def fail(msg: str) -> CheckpointError:
        return CheckpointError(f"load: {fname}: {msg}")

    if not isinstance(header, dict):
        raise fail("safetensors header must be a JSON object")
    meta = header.get("__metadata__", {})
    if not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
        raise fail("safetensors __metadata__ must map str to str")
    specs = []
    for name, s in header.items():
        if name == "__metadata__":
            continue
        if not isinstance(s, dict) or set(s) != {"dtype", "shape", "data_offsets"}:
            raise fail(f"tensor {name[:100]!r} must have keys dtype, shape, data_offsets")
        if s["dtype"] not in ST_DTYPES:
            raise fail(f"tensor {name[:100]!r} has dtype {str(s['dtype'])[:20]!r}, which is not allowed "
                       f"(allowed: {', '.join(ST_DTYPES)})")
        shape, off = s["shape"], s["data_offsets"]
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(_is_int(d) and 0 <= d < 2**62 for d in shape)):
            raise fail(f"tensor {name[:100]!r} has invalid shape {str(shape)[:100]}")
        dt = np.dtype(ST_DTYPES[s["dtype"]])
        nbytes = math.prod(shape) * dt.itemsize
        if (not isinstance(off, list) or len(off) != 2 or not all(_is_int(o) for o in off)
                or not 0 <= off[0] <= off[1] <= data_len or off[1] - off[0] != nbytes):
            raise fail(f"tensor {name[:100]!r} of shape {tuple(shape)} and dtype {dt} ({nbytes} bytes) has "
                       f"data_offsets {str(off)[:100]} outside the {data_len} bytes of data or of the "
                       "wrong size")
        specs.append((name, dt, tuple(shape), off[0], off[1]))
    specs.sort(key=lambda t: (t[3], t[4]))
    end = 0
    for name, _, _, b, e in specs:
        if b != end:
            raise fail(f"tensor {name[:100]!r} starts at byte {b}, expected {end} (tensors must tile the "
                       "data without gaps or overlaps)")
        end = e
    if end != data_len:
        raise fail(f"the tensors cover {end} bytes but the data section has {data_len} (trailing bytes)")
    return specs


def _load_st(f: BinaryIO, fname: str, size: int, max_header_bytes: int, require_digest: bool = False
             ) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    prefix = f.read(8)
    if len(prefix) < 8:
        raise CheckpointError(f"load: {fname} is truncated: {size} bytes")
    hlen = int.from_bytes(prefix, "little")
    if hlen > max_header_bytes:
        raise CheckpointError(f"load: {fname}: safetensors header length {hlen} exceeds the limit of "
                              f"{max_header_bytes} bytes")
    if 8 + hlen > size:
        raise CheckpointError(f"load: {fname} is truncated: the header alone needs {hlen} bytes but the "
                              f"file has {size}")
    raw = f.read(hlen)
    header = _parse_header(raw, fname)
    specs = _st_specs(header, fname, size - 8 - hlen)
    meta = dict(header.get("__metadata__", {}))
    digest = meta.pop(DIGEST_KEY, None)
    data = f.read(size - 8 - hlen)
    if len(data) != size - 8 - hlen:
        raise CheckpointError(f"load: {fname} shrank while being read")
    if digest is None and require_digest:
        raise CheckpointError(f"load: {fname} has no {DIGEST_KEY} in its metadata (not written by minigrad, "
                              "or its header was altered)")
    if digest is not None and _st_digest(header, data) != digest:
        raise CheckpointError(f"load: {fname} is corrupted: SHA-256 digest mismatch")
    from safetensors.numpy import load as st_load

    try:
        loaded = st_load(prefix + raw + data)
    except Exception as exc:  # the package's own checks (after ours: should not happen)
        raise CheckpointError(f"load: {fname}: not a valid safetensors file ({str(exc)[:200]})") from None
    out = {}
    for name, dt, shape, _, _ in specs:
        a = loaded[name]
        if a.dtype != dt or a.shape != shape:
            raise CheckpointError(f"load: {fname}: tensor {name[:100]!r} read back as {a.dtype}{a.shape}")
        out[name] = a if a.flags.writeable else a.copy()
    return out, meta
