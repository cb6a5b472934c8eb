"""mg.save / mg.load: bit-exact round trips, atomic writes, and hostile, truncated or malformed files."""

import hashlib
import io
import json
import os
import pickle
import struct
import time
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import minigrad as mg
from minigrad import nn, serialization
from minigrad.serialization import MAGIC, CheckpointError


def assert_same(a, b, where="obj"):
    """Equal types, dtypes, shapes and bytes, recursively (NaN payloads and -0.0 included)."""
    assert type(a) is type(b), f"{where}: {type(a)} != {type(b)}"
    if isinstance(a, (np.ndarray, np.generic)):
        assert a.dtype == b.dtype and a.shape == b.shape, f"{where}: {a.dtype}{a.shape} != {b.dtype}{b.shape}"
        assert a.tobytes() == b.tobytes(), where  # tobytes() is C order for any layout
    elif isinstance(a, dict):
        assert list(a) == list(b), f"{where}: keys {list(a)} != {list(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float):
        assert struct.pack("<d", a) == struct.pack("<d", b), f"{where}: {a!r} != {b!r}"
    else:
        assert a == b, where


def nan_payload32():
    return np.array([0x7FC00001, 0xFFC12345, 0x7F800001], np.uint32).view(np.float32)


def sample_obj():
    rng = np.random.default_rng(0)
    return {
        "model": {"fc.weight": rng.standard_normal((3, 2)).astype(np.float32),
                  "fc.bias": np.array([-0.0, 0.0, np.inf], np.float32)},
        "optim": {"state": {0: {"step": 7, "exp_avg": rng.standard_normal(4)}},
                  "param_groups": [{"lr": 1e-3, "betas": (0.9, 0.999), "params": [0], "nesterov": False}]},
        "nan_payloads": nan_payload32(),
        "f64": np.array([-0.0, 5e-324, np.nan, -np.inf, 1 / 3]),
        "f16": np.arange(5, dtype=np.float16),
        "ints": [np.arange(4, dtype=d) for d in (np.int8, np.uint8, np.int16, np.uint16, np.int32,
                                                  np.uint32, np.int64, np.uint64)],
        "bools": np.array([[True, False], [False, True]]),
        "empty": np.zeros((0, 3), np.float32),
        "zero_d": np.array(2.5),
        "big_endian": np.arange(3, dtype=">f8"),
        "fortran": np.asfortranarray(np.arange(6.0).reshape(2, 3)),
        "strided": np.arange(10.0)[::3],
        "scalars": (np.float32(1.5), np.int64(-3), np.bool_(True), np.float64(-0.0)),
        "py": [None, True, False, 0, -12345678901234567890123, 1.5, -0.0, float("nan"), float("inf"),
               float("-inf"), "", "ünïcode ✓ \x00 \ud800"],
        "rng": np.random.default_rng(42).bit_generator.state,
        "mt": np.random.Generator(np.random.MT19937(3)).bit_generator.state,
        "nested": {"a": {"b": {"c": [[], {}, ()]}}},
        7: "int key",
        "step": 1000,
    }


def expected_after_load(obj):
    """What load returns: non-native arrays come back as C-ordered little-endian arrays, Tensors as
    ndarrays; all values (bytes) identical."""
    if isinstance(obj, dict):
        return {k: expected_after_load(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [expected_after_load(v) for v in obj]
    if isinstance(obj, tuple):
        return tuple(expected_after_load(v) for v in obj)
    if isinstance(obj, np.ndarray):
        return obj.astype(obj.dtype.newbyteorder("<"), order="C")
    return obj


# ---------------------------------------------------------------------------- round trips
def test_round_trip_is_bit_exact(tmp_path):
    obj = sample_obj()
    mg.save(obj, tmp_path / "ck.mgck")
    back = mg.load(tmp_path / "ck.mgck")
    assert_same(back, expected_after_load(obj))
    assert back["model"]["fc.weight"].dtype == np.float32 and back["f64"].dtype == np.float64
    assert back["big_endian"].dtype == np.dtype("<f8")
    np.testing.assert_array_equal(back["big_endian"], [0.0, 1.0, 2.0])
    assert back["model"]["fc.weight"].flags.writeable
    assert os.listdir(tmp_path) == ["ck.mgck"]


def test_rng_state_restores_the_stream(tmp_path):
    g = np.random.default_rng(7)
    g.random(5)
    mg.save({"rng": g.bit_generator.state}, tmp_path / "r")
    want = g.random(4)
    h = np.random.default_rng()
    h.bit_generator.state = mg.load(tmp_path / "r")["rng"]
    np.testing.assert_array_equal(h.random(4), want)


def test_tensors_and_parameters_save_as_arrays(tmp_path):
    lin = nn.Linear(2, 3)
    mg.save({"w": lin.weight, "t": mg.tensor([1.0, 2.0])}, tmp_path / "t")
    back = mg.load(tmp_path / "t")
    assert_same(back["w"], lin.weight.data)
    assert_same(back["t"], np.array([1.0, 2.0], np.float32))


@given(st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=5),
    lambda kids: st.lists(kids, max_size=3) | st.tuples(kids, kids)
    | st.dictionaries(st.text(max_size=3) | st.integers(-5, 5), kids, max_size=3),
    max_leaves=10))
def test_round_trip_property(tmp_path_factory, obj):
    path = tmp_path_factory.mktemp("prop") / "ck"
    mg.save(obj, path)
    assert_same(mg.load(path), obj)


@pytest.mark.parametrize("bad, match", [
    ({"s": {1, 2}}, r"cannot save a set at obj\['s'\]"),
    ({"o": np.array([object()], dtype=object)}, "dtype object"),
    ({"c": np.zeros(2, np.complex128)}, "dtype complex128"),
    ({"m": nn.Linear(2, 2)}, "state_dict"),
    ({1.5: 0}, "keys must be str or int"),
    ({True: 0}, "keys must be str or int"),
    ({"r": np.zeros(2, [("a", "<f4")])}, "not supported"),
])
def test_save_rejects_unsupported_before_touching_disk(tmp_path, bad, match):
    with pytest.raises(TypeError, match=match):
        mg.save(bad, tmp_path / "ck")
    assert os.listdir(tmp_path) == []


def test_save_rejects_cycles(tmp_path):
    a = []
    a.append(a)
    with pytest.raises(ValueError, match="cycle"):
        mg.save(a, tmp_path / "ck")
    assert os.listdir(tmp_path) == []


# ---------------------------------------------------------------------------- atomicity
def test_failure_mid_write_keeps_old_checkpoint_and_leaves_no_temp(tmp_path, monkeypatch):
    path = tmp_path / "ck"
    old = {"w": np.arange(1000.0), "step": 1}
    mg.save(old, path)
    old_bytes = path.read_bytes()
    real_write = serialization._write
    calls = []

    def failing_write(f, h, buf):
        calls.append(len(buf))
        if len(calls) == 3:  # prefix and header written, the first array's bytes fail
            raise OSError("disk full (simulated)")
        real_write(f, h, buf)

    monkeypatch.setattr(serialization, "_write", failing_write)
    with pytest.raises(OSError, match="simulated"):
        mg.save({"w": np.arange(2000.0), "x": np.ones(5), "step": 2}, path)
    assert len(calls) == 3
    assert path.read_bytes() == old_bytes
    assert_same(mg.load(path), old)
    assert os.listdir(tmp_path) == ["ck"]


def test_failure_at_rename_keeps_old_and_cleans_up(tmp_path, monkeypatch):
    path = tmp_path / "ck"
    mg.save({"v": 1}, path)

    def boom(src, dst):
        assert os.path.exists(src)  # the complete temporary file is in the same directory
        assert os.path.dirname(src) == str(tmp_path)
        raise KeyboardInterrupt

    monkeypatch.setattr(serialization.os, "replace", boom)
    with pytest.raises(KeyboardInterrupt):
        mg.save({"v": 2}, path)
    monkeypatch.undo()
    assert mg.load(path) == {"v": 1}
    assert os.listdir(tmp_path) == ["ck"]


def test_save_overwrites_atomically(tmp_path):
    path = tmp_path / "ck"
    for v in range(3):
        mg.save({"v": v}, path)
    assert mg.load(path) == {"v": 2} and os.listdir(tmp_path) == ["ck"]


# ---------------------------------------------------------------------------- hostile files
class CreatesFile:
    """Unpickling this object creates (opens for writing) the file at ``path``."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return (open, (self.path, "w"))


@pytest.fixture
def no_unpickling(monkeypatch):
    """Make any attempt to unpickle (or np.load) during the test fail loudly."""
    def forbidden(*a, **k):
        raise AssertionError("something tried to unpickle / np.load")

    for mod, name in ((pickle, "loads"), (pickle, "load"), (pickle, "Unpickler"), (np, "load")):
        monkeypatch.setattr(mod, name, forbidden)


def test_payload_is_live(tmp_path):
    """The hostile payload really would create the file when unpickled (so the tests below can fail)."""
    marker = tmp_path / "pwned"
    pickle.loads(pickle.dumps(CreatesFile(marker))).close()
    assert marker.exists()


def test_npz_with_pickled_object_array_is_rejected(tmp_path, no_unpickling):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.npz"
    np.savez(path, a=np.array([CreatesFile(marker)], dtype=object))
    with pytest.raises(ValueError, match=r"not a minigrad checkpoint \(it looks like a NumPy .npz"):
        mg.load(path)
    assert not marker.exists()


def test_raw_pickle_is_rejected(tmp_path, no_unpickling):
    marker = tmp_path / "pwned"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"state": CreatesFile(marker)}))
    with pytest.raises(ValueError, match="it looks like a pickle"):
        mg.load(path)
    assert not marker.exists()


def craft(path, header, data=b"", magic=MAGIC, version=1, hlen=None, digest=None, raw_header=None):
    """Write a file in the checkpoint layout with a valid digest (unless given), from any header."""
    hb = raw_header if raw_header is not None else json.dumps(header).encode()
    body = struct.pack("<8sIQ", magic, version, len(hb) if hlen is None else hlen) + hb + data
    path.write_bytes(body + (digest if digest is not None else hashlib.sha256(body).digest()))
    return path


def header_for(arrays, root=None, data_len=None):
    specs, off = [], 0
    for dtype, shape, nbytes in arrays:
        specs.append({"dtype": dtype, "shape": shape, "offset": off, "nbytes": nbytes})
        off += nbytes
    if root is None:
        root = {"$dict": {f"a{i}": {"$array": i} for i in range(len(arrays))}}
    return {"format": "minigrad-checkpoint", "version": 1, "root": root, "arrays": specs,
            "data_len": off if data_len is None else data_len}


def test_pickle_inside_a_wellformed_container_is_rejected(tmp_path, no_unpickling):
    marker = tmp_path / "pwned"
    payload = pickle.dumps(CreatesFile(marker))
    for dtype in ("|O", "O", "object", "|V8"):
        path = craft(tmp_path / "evil", header_for([(dtype, [1], len(payload))]), payload)
        with pytest.raises(ValueError, match="not allowed"):
            mg.load(path)
    bad_tag = header_for([], root={"$pickle": payload.hex()})
    with pytest.raises(ValueError, match="invalid node"):
        mg.load(craft(tmp_path / "evil2", bad_tag))
    assert not marker.exists()


def test_crafted_valid_file_loads(tmp_path):
    """The crafting helper itself produces loadable files (so rejections below are for the stated reason)."""
    data = np.array([1.0, 2.0], "<f4").tobytes()
    with pytest.warns(DeprecationWarning, match="save it again"):  # a dict of arrays: now safetensors
        back = mg.load(craft(tmp_path / "ok", header_for([("<f4", [2], 8)]), data))
    assert_same(back, {"a0": np.array([1.0, 2.0], np.float32)})


MALFORMED = [
    ("dtype", header_for([("<c16", [1], 16)]), b"\0" * 16, "not allowed"),
    ("bigendian", header_for([(">f4", [1], 4)]), b"\0" * 4, "not allowed"),
    ("nbytes", header_for([("<f8", [2, 2], 16)]), b"\0" * 16, "needs 32 bytes"),
    ("neg-shape", header_for([("<f8", [-1], 8)]), b"\0" * 8, "invalid shape"),
    ("bool-shape", header_for([("<f8", [True], 8)]), b"\0" * 8, "invalid shape"),
    ("ndim", header_for([("|u1", [1] * 40, 1)]), b"\0", "invalid shape"),
    ("data_len", header_for([("|u1", [2], 2)], data_len=3), b"\0\0\0", "data_len"),
    ("unreferenced", header_for([("|u1", [1], 1)], root={"$dict": {}}), b"\0", "never referenced"),
    ("twice", header_for([("|u1", [1], 1)], root=[{"$array": 0}, {"$array": 0}]), b"\0", "twice"),
    ("range", header_for([], root={"$array": 3}), b"", "out of range"),
    ("scalar-shape", header_for([("|u1", [2], 2)], root={"$scalar": 0}), b"\0\0", "scalar"),
    ("tag", header_for([], root={"$eval": "1"}), b"", "invalid node"),
    ("two-keys", header_for([], root={"$dict": {}, "$tuple": []}), b"", "invalid node"),
    ("float-hex", header_for([], root={"$float": "zz"}), b"", "invalid node"),
    ("items", header_for([], root={"$items": [[1.5, 0]]}), b"", "items"),
    ("bool-bytes", header_for([("|b1", [2], 2)]), b"\x01\x07", "bool array"),
    ("format", {**header_for([]), "format": "other"}, b"", "format"),
    ("keys", {**header_for([]), "extra": 1}, b"", "keys"),
    ("offset", {**header_for([("|u1", [1], 1)]), "arrays": [{"dtype": "|u1", "shape": [1], "offset": 5,
                                                             "nbytes": 1}]}, b"\0", "offset"),
]


@pytest.mark.parametrize("name, header, data, match", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_headers_are_clear_errors(tmp_path, no_unpickling, name, header, data, match):
    with pytest.raises(CheckpointError, match=match):
        mg.load(craft(tmp_path / name, header, data))


@pytest.mark.parametrize("raw, match", [
    (b"{not json", "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b'{"format": NaN}', "non-JSON constant"),
    (b'{"a": 1, "a": 2}', "duplicate key"),
    (b"[" * 200_000 + b"]" * 200_000, "JSON|deep"),
    (b"[]", "header must be an object"),
])
def test_bad_json_headers(tmp_path, raw, match):
    with pytest.raises(CheckpointError, match=match):
        mg.load(craft(tmp_path / "h", None, raw_header=raw))


def test_duplicate_key_among_many_is_found_in_linear_time(tmp_path):
    n = 50_000
    raw = ("{" + ",".join(f'"k{i}":0' for i in range(n)) + ',"k7":1}').encode()
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="duplicate key 'k7'"):
        mg.load(craft(tmp_path / "dup", None, raw_header=raw))
    assert time.perf_counter() - t0 < 5.0  # a quadratic scan would take minutes


def test_deeply_nested_nodes_are_rejected(tmp_path):
    root = None
    for _ in range(150):
        root = [root]
    with pytest.raises(CheckpointError, match="deeper"):
        mg.load(craft(tmp_path / "deep", header_for([], root=root)))


def test_bad_magic_version_and_header_length(tmp_path):
    h = header_for([])
    with pytest.raises(CheckpointError, match="bad magic"):
        mg.load(craft(tmp_path / "m", h, magic=b"GARBAGE!"))
    with pytest.raises(CheckpointError, match="version 2; this minigrad reads version 1"):
        mg.load(craft(tmp_path / "v", h, version=2))
    t0 = time.perf_counter()
    with pytest.raises(CheckpointError, match="exceeds the limit"):
        mg.load(craft(tmp_path / "l", h, hlen=2**63))
    with pytest.raises(CheckpointError, match="truncated"):
        mg.load(craft(tmp_path / "l2", h, hlen=10**6))
    assert time.perf_counter() - t0 < 1.0
    with pytest.raises(CheckpointError, match="exceeds the limit"):
        mg.load(craft(tmp_path / "small", h), max_header_bytes=10)
    (tmp_path / "empty").write_bytes(b"")
    with pytest.raises(CheckpointError, match="truncated"):
        mg.load(tmp_path / "empty")


def test_huge_declared_array_fails_without_allocating(tmp_path):
    """A header declaring a 2^60-byte array in a tiny file is rejected from the sizes alone."""
    n = 2**57
    path = craft(tmp_path / "huge", header_for([("<f8", [n], 8 * n)]), b"\0" * 64)
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="truncated"):
            mg.load(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_wrong_digest_and_trailing_bytes(tmp_path):
    h = header_for([("<f4", [1], 4)])
    with pytest.raises(CheckpointError, match="digest mismatch"):
        mg.load(craft(tmp_path / "d", h, b"\0" * 4, digest=b"\0" * 32))
    path = tmp_path / "t"
    mg.save({"a": 1}, path)
    path.write_bytes(path.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="trailing bytes"):
        mg.load(path)


def small_checkpoint(path):
    mg.save({"w": np.arange(6, dtype=np.float32).reshape(2, 3), "step": 3, "name": "x",
             "t": (1.5, None)}, path)
    return path.read_bytes()


def test_every_truncation_is_a_clear_error(tmp_path):
    blob = small_checkpoint(tmp_path / "good")
    bad = tmp_path / "bad"
    for n in range(len(blob)):
        bad.write_bytes(blob[:n])
        with pytest.raises(CheckpointError):
            mg.load(bad)


def test_every_single_byte_corruption_is_detected(tmp_path):
    blob = small_checkpoint(tmp_path / "good")
    bad = tmp_path / "bad"
    for i in range(len(blob)):
        b = bytearray(blob)
        b[i] ^= 0x20
        bad.write_bytes(bytes(b))
        with pytest.raises(CheckpointError):
            mg.load(bad)


@given(st.binary(max_size=300), st.integers(0, 10_000))
def test_random_garbage_never_escapes_as_another_error(tmp_path_factory, junk, cut):
    d = tmp_path_factory.mktemp("junk")
    blob = small_checkpoint(d / "good")
    for data in (junk, MAGIC + junk, blob[:cut % len(blob)] + junk):
        (d / "bad").write_bytes(data)
        with pytest.raises(CheckpointError):
            mg.load(d / "bad")


# ---------------------------------------------------------------------------- file objects
class Unseekable:
    """A read-only stream that cannot seek (a pipe, a socket, an HTTP body)."""

    def __init__(self, data):
        self._f = io.BytesIO(data)

    def read(self, n=-1):
        return self._f.read(n)

    def seekable(self):
        return False


class WriteOnly:
    """A sink with only write() (no flush, no fileno)."""

    def __init__(self):
        self.chunks = []

    def write(self, b):
        self.chunks.append(bytes(b))
        return len(b)


def test_round_trip_through_file_objects(tmp_path):
    obj = sample_obj()
    buf = io.BytesIO()
    mg.save(obj, buf)
    blob = buf.getvalue()
    assert blob == bytes_saved_to_path(tmp_path, obj)                        # the same bytes as a path gets
    buf.seek(0)
    assert_same(mg.load(buf), expected_after_load(obj))
    assert_same(mg.load(io.BytesIO(blob)), expected_after_load(obj))
    assert_same(mg.load(Unseekable(blob)), expected_after_load(obj))
    sink = WriteOnly()
    mg.save(obj, sink)
    assert b"".join(sink.chunks) == blob
    with open(tmp_path / "opened.ckpt", "wb") as f:                    # an open file, written in place
        mg.save(obj, f)
    with open(tmp_path / "opened.ckpt", "rb") as f:
        assert_same(mg.load(f), expected_after_load(obj))
    assert sorted(os.listdir(tmp_path)) == ["opened.ckpt", "path.ckpt"]   # no temporary files


def bytes_saved_to_path(tmp_path, obj):
    mg.save(obj, tmp_path / "path.ckpt")
    return (tmp_path / "path.ckpt").read_bytes()


def test_file_object_position_is_respected():
    """save writes at the current position; load reads from the current position to the end."""
    buf = io.BytesIO()
    buf.write(b"HEADER--")
    mg.save({"a": np.arange(3)}, buf)
    buf.seek(8)
    np.testing.assert_array_equal(mg.load(buf)["a"], [0, 1, 2])
    buf.seek(0)
    with pytest.raises(CheckpointError, match="bad magic"):
        mg.load(buf)


def test_state_dicts_through_a_buffer():
    net = nn.Linear(3, 2)
    buf = io.BytesIO()
    mg.save(net.state_dict(), buf)
    other = nn.Linear(3, 2)
    other.load_state_dict(mg.load(io.BytesIO(buf.getvalue())))
    np.testing.assert_array_equal(other.weight.data, net.weight.data)


def test_file_objects_get_every_check(tmp_path):
    blob = small_checkpoint(tmp_path / "good")
    for n in range(0, len(blob), 7):                       # truncations
        with pytest.raises(CheckpointError):
            mg.load(io.BytesIO(blob[:n]))
        with pytest.raises(CheckpointError):
            mg.load(Unseekable(blob[:n]))
    for i in range(0, len(blob), 5):                       # corruptions
        b = bytearray(blob)
        b[i] ^= 0x20
        with pytest.raises(CheckpointError):
            mg.load(io.BytesIO(bytes(b)))
    with pytest.raises(CheckpointError, match="trailing bytes"):
        mg.load(io.BytesIO(blob + b"x"))
    with pytest.raises(CheckpointError, match="looks like a pickle"):
        mg.load(io.BytesIO(pickle.dumps({"a": 1})))


def test_huge_declared_array_from_a_buffer_fails_without_allocating(tmp_path):
    n = 2**57
    blob = craft(tmp_path / "huge", header_for([("<f8", [n], 8 * n)]), b"\0" * 64).read_bytes()
    tracemalloc.start()
    try:
        with pytest.raises(CheckpointError, match="truncated"):
            mg.load(io.BytesIO(blob))
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000


def test_text_mode_and_non_files_are_clear_errors(tmp_path):
    with open(tmp_path / "t.txt", "w") as f, pytest.raises(TypeError, match=r"text mode.*'wb'"):
        mg.save({"a": 1}, f)
    assert (tmp_path / "t.txt").read_bytes() == b""
    (tmp_path / "c.ckpt").write_bytes(small_checkpoint(tmp_path / "good"))
    with open(tmp_path / "c.ckpt", encoding="latin-1") as f, pytest.raises(TypeError, match="'rb'"):
        mg.load(f)
    with pytest.raises(TypeError, match="path or a binary file object"):
        mg.save({"a": 1}, 42)
    with pytest.raises(TypeError, match="path or a binary file object"):
        mg.load(object())
    buf = io.BytesIO()
    with pytest.raises(TypeError, match="cannot save"):       # contents checked before writing
        mg.save({"a": object()}, buf)
    assert buf.getvalue() == b""


# ---------------------------------------------------------------------------- safetensors (issue 15)
def test_dict_of_arrays_is_safetensors_readable_without_minigrad(tmp_path):
    from safetensors.numpy import load_file

    net = nn.Linear(3, 2)
    mg.save(net.state_dict(), tmp_path / "w.safetensors")
    back = load_file(str(tmp_path / "w.safetensors"))
    assert sorted(back) == ["bias", "weight"]
    np.testing.assert_array_equal(back["weight"], net.weight.data)
    again = mg.load(tmp_path / "w.safetensors")
    assert again["weight"].flags.writeable and again["weight"].dtype == net.weight.dtype


def test_foreign_safetensors_file_loads(tmp_path):
    from safetensors.numpy import save_file

    save_file({"a": np.arange(4, dtype=np.int32), "b": np.ones((2, 0), np.float16)}, str(tmp_path / "f"))
    back = mg.load(tmp_path / "f")
    np.testing.assert_array_equal(back["a"], np.arange(4)) and back["b"].shape == (2, 0)


def test_safetensors_metadata_round_trip_and_corruption(tmp_path):
    p = tmp_path / "m.safetensors"
    serialization.save_safetensors({"x": np.arange(6.0)}, p, {"k": "v"})
    tensors, meta = serialization.load_safetensors(p)
    assert meta == {"k": "v"} and tensors["x"].tolist() == list(range(6))
    blob = bytearray(p.read_bytes())
    blob[-3] ^= 1
    p.write_bytes(bytes(blob))
    with pytest.raises(CheckpointError, match="digest mismatch"):
        mg.load(p)


@pytest.mark.parametrize("mutate, match", [
    (lambda h: h.update(x={"dtype": "F32", "shape": [2], "data_offsets": [0, 16]}), "outside|wrong size"),
    (lambda h: h.update(x={"dtype": "C64", "shape": [6], "data_offsets": [0, 48]}), "not allowed"),
    (lambda h: h.update(x={"dtype": "F64", "shape": [-6], "data_offsets": [0, 48]}), "invalid shape"),
    (lambda h: h.update(x={"dtype": "F64", "shape": [6]}), "must have keys"),
    (lambda h: h.update(__metadata__={"k": 1}), "__metadata__"),
    (lambda h: h.update(y={"dtype": "F64", "shape": [6], "data_offsets": [0, 48]}), "tile"),
])
def test_hostile_safetensors_headers(tmp_path, mutate, match):
    h = {"x": {"dtype": "F64", "shape": [6], "data_offsets": [0, 48]}}
    mutate(h)
    hb = json.dumps(h).encode()
    (tmp_path / "h").write_bytes(len(hb).to_bytes(8, "little") + hb + b"\0" * 48)
    with pytest.raises(CheckpointError, match=match):
        mg.load(tmp_path / "h")


def test_safetensors_header_bound_checked_before_reading(tmp_path):
    (tmp_path / "big").write_bytes((10**9).to_bytes(8, "little") + b"{" + b" " * 100)
    with pytest.raises(CheckpointError, match="exceeds the limit"):
        mg.load(tmp_path / "big", max_header_bytes=10**6)


def test_big_header_is_parsed_only_after_the_digest(tmp_path, monkeypatch):
    """Issue 15 item 2: a corrupted file with a large header is rejected before its JSON is parsed."""
    path = tmp_path / "big"
    mg.save({"pad": "x" * 200_000, "n": 1}, path)
    blob = bytearray(path.read_bytes())
    blob[-40] ^= 1
    path.write_bytes(bytes(blob))
    monkeypatch.setattr(serialization, "_parse_header",
                        lambda *a: (_ for _ in ()).throw(AssertionError("parsed before the digest")))
    with pytest.raises(CheckpointError, match="digest mismatch"):
        mg.load(path)


@pytest.mark.parametrize("obj", [{"a": 1}, {"w": np.ones(3)}])
def test_save_into_a_directory_fails_before_writing(tmp_path, obj):
    """Issue 15 item 9: mg.save(obj, '/tmp') fails before any temporary file is written."""
    before = os.listdir(tmp_path)
    with pytest.raises(IsADirectoryError, match="is a directory"):
        mg.save(obj, tmp_path)
    assert os.listdir(tmp_path) == before
    with pytest.raises(FileNotFoundError, match="does not exist"):
        mg.save(obj, tmp_path / "no" / "ck")
    assert os.listdir(tmp_path) == before


def test_dict_of_arrays_in_the_old_container_is_read_with_a_deprecation_warning(tmp_path):
    """A dict of arrays written by the previous mg.save (minigrad's container) still loads, with a
    DeprecationWarning saying how to convert it; nested objects keep the container without warning."""
    header, arrays = serialization._encode({"w": np.arange(3.0)})
    with open(tmp_path / "old.mg", "wb") as f:
        serialization._write_all(f, header, arrays)
    with pytest.warns(DeprecationWarning, match=r"save it again"):
        back = mg.load(tmp_path / "old.mg")
    np.testing.assert_array_equal(back["w"], [0.0, 1.0, 2.0])
    mg.save(back, tmp_path / "new")
    assert (tmp_path / "new").read_bytes()[8:9] == b"{"          # now safetensors
    import warnings

    mg.save({"w": np.arange(3.0), "step": 1}, tmp_path / "nested")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mg.load(tmp_path / "nested")["step"] == 1


def test_safetensors_digest_covers_the_header(tmp_path):
    """Renaming a tensor or editing a metadata value (a valid file still) is detected; a file without
    the digest loads unless the digest is required."""
    p = tmp_path / "h.safetensors"
    serialization.save_safetensors({"exp_avg": np.arange(3.0)}, p, {"lr": "0.01"})
    blob = p.read_bytes()
    for old, new in ((b'"exp_avg"', b'"exp_aVg"'), (b'"0.01"', b'"0.02"'), (b'"lr"', b'"Lr"')):
        p.write_bytes(blob.replace(old, new))
        with pytest.raises(CheckpointError, match="digest mismatch"):
            mg.load(p)
    from safetensors.numpy import save_file

    save_file({"x": np.ones(2)}, str(p))
    assert serialization.load_safetensors(p)[0]["x"].tolist() == [1.0, 1.0]
    with pytest.raises(CheckpointError, match=r"no minigrad\.sha256"):
        serialization.load_safetensors(p, require_digest=True)
