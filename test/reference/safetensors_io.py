"""Minimal safetensors reader/writer in pure Python (struct + json + torch).

The format, as the Rust `safetensors` crate writes it (`serialize` / `prepare` in
safetensors/src/tensor.rs), which the Python `safetensors.torch.save_file` calls:

    [8 bytes]  N, the header length, unsigned 64-bit little-endian
    [N bytes]  JSON header: {"__metadata__": {str: str}, name: {"dtype", "shape", "data_offsets"}, ...}
               compact JSON (no spaces), padded on the right with spaces (0x20) so that
               8 + N is a multiple of 8
    [rest]     the byte buffer; data_offsets = [begin, end) relative to its start

Tensors are laid out in the order `prepare` sorts them: by dtype (larger alignment first),
then by name. Every fixture here is F32 (one dtype), so the order is plain name order, and
the header lists tensors in that same order, after `__metadata__`.
"""

from __future__ import annotations

import json
import struct
from collections import OrderedDict

import numpy as np
import torch

_DTYPES = {
    "F64": (torch.float64, 8),
    "F32": (torch.float32, 4),
    "F16": (torch.float16, 2),
    "BF16": (torch.bfloat16, 2),
    "I64": (torch.int64, 8),
    "I32": (torch.int32, 4),
    "I16": (torch.int16, 2),
    "I8": (torch.int8, 1),
    "U8": (torch.uint8, 1),
    "BOOL": (torch.bool, 1),
}
_NAMES = {v[0]: k for k, v in _DTYPES.items()}


def serialize(tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> bytes:
    """Returns the bytes of a .safetensors file holding `tensors` (any of the dtypes above)."""
    if metadata is None:
        metadata = {"format": "pt"}
    for k, v in metadata.items():
        if not isinstance(k, str) or not isinstance(v, str):
            raise TypeError(f"metadata must map str to str, got {k!r}: {v!r}")
    # prepare(): sort by dtype alignment (descending), then by name
    names = sorted(tensors, key=lambda n: (-_DTYPES[_NAMES[tensors[n].dtype]][1], n))
    header: "OrderedDict[str, object]" = OrderedDict()
    header["__metadata__"] = metadata
    chunks = []
    offset = 0
    for name in names:
        t = tensors[name].detach().contiguous().cpu()
        dtype = _NAMES[t.dtype]
        data = t.numpy().tobytes() if t.dtype != torch.bfloat16 else t.view(torch.int16).numpy().tobytes()
        header[name] = OrderedDict(
            [("dtype", dtype), ("shape", list(t.shape)), ("data_offsets", [offset, offset + len(data)])]
        )
        chunks.append(data)
        offset += len(data)
    text = json.dumps(header, separators=(",", ":")).encode("utf-8")
    text += b" " * ((8 - len(text) % 8) % 8)
    return struct.pack("<Q", len(text)) + text + b"".join(chunks)


def save_file(tensors: dict[str, torch.Tensor], path: str, metadata: dict[str, str] | None = None) -> None:
    with open(path, "wb") as f:
        f.write(serialize(tensors, metadata))


def deserialize(buf: bytes, source: str = "<bytes>") -> tuple["OrderedDict[str, torch.Tensor]", dict[str, str]]:
    """Parses a .safetensors file strictly: offsets must tile the buffer exactly."""
    if len(buf) < 8:
        raise ValueError(f"{source}: shorter than the 8-byte header length")
    (n,) = struct.unpack("<Q", buf[:8])
    if 8 + n > len(buf):
        raise ValueError(f"{source}: header length {n} runs past the end ({len(buf)} bytes)")
    header = json.loads(buf[8 : 8 + n].decode("utf-8"), object_pairs_hook=OrderedDict)
    metadata = header.pop("__metadata__", {})
    data = buf[8 + n :]
    out: "OrderedDict[str, torch.Tensor]" = OrderedDict()
    spans = []
    for name, info in header.items():
        dtype, size = _DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        numel = int(np.prod(info["shape"], dtype=np.int64)) if info["shape"] else 1
        if end - begin != numel * size:
            raise ValueError(f"{source}: tensor {name}: {end - begin} bytes for shape {info['shape']} {info['dtype']}")
        spans.append((begin, end, name))
        raw = bytearray(data[begin:end])
        if dtype == torch.bfloat16:
            t = torch.frombuffer(raw, dtype=torch.int16).view(torch.bfloat16) if raw else torch.empty(0, dtype=dtype)
        else:
            t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        out[name] = t.reshape(info["shape"]).clone()
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            raise ValueError(f"{source}: tensor {name} starts at {begin}, expected {pos} (gap or overlap)")
        pos = end
    if pos != len(data):
        raise ValueError(f"{source}: {len(data) - pos} trailing bytes after the last tensor")
    return out, metadata


def load_file(path: str) -> "OrderedDict[str, torch.Tensor]":
    with open(path, "rb") as f:
        return deserialize(f.read(), path)[0]


def load_file_with_metadata(path: str) -> tuple["OrderedDict[str, torch.Tensor]", dict[str, str]]:
    with open(path, "rb") as f:
        return deserialize(f.read(), path)
