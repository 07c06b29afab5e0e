"""The safetensors writer and reader of condjl's PyTorch fixture scripts (the safetensors package is not installed
where they run).  A fixture script finds this file by walking up from its own directory:

    ROOT = HERE
    while not os.path.isfile(os.path.join(ROOT, 'tools', 'safetensors_file.py')):
        ROOT = os.path.dirname(ROOT)
    sys.path.insert(0, os.path.join(ROOT, 'tools'))
    from safetensors_file import write_safetensors

Format: an 8-byte little-endian header length, a JSON header padded with spaces to a multiple of 8 bytes, then the
raw little-endian bytes of every tensor in header order.
"""
import collections
import json
import struct

import torch

CODES = {
    torch.float64: 'F64', torch.float32: 'F32', torch.float16: 'F16', torch.bfloat16: 'BF16',
    torch.int64: 'I64', torch.int32: 'I32', torch.int16: 'I16', torch.int8: 'I8', torch.uint8: 'U8',
    torch.bool: 'BOOL',
}
DTYPES = {v: k for k, v in CODES.items()}


def write_safetensors(path, tensors, metadata=None):
    """Writes name -> tensor (in order) to path; metadata, when given, is the header's __metadata__ (str -> str)."""
    header, blobs, offset = ({} if metadata is None else {'__metadata__': metadata}), [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b''
        header[name] = {'dtype': CODES[t.dtype], 'shape': list(t.shape), 'data_offsets': [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(',', ':')).encode()
    raw += b' ' * (-len(raw) % 8)
    with open(path, 'wb') as f:
        f.write(struct.pack('<Q', len(raw)) + raw + b''.join(blobs))
    return 8 + len(raw) + offset


def read_safetensors(path):
    """Returns (name -> tensor in file order, the __metadata__ dict, the header length)."""
    with open(path, 'rb') as f:
        raw = f.read()
    (n,) = struct.unpack('<Q', raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop('__metadata__', {})
    out = collections.OrderedDict()
    for name, info in header.items():
        begin, end = info['data_offsets']
        data = bytearray(raw[8 + n + begin:8 + n + end])
        dtype = DTYPES[info['dtype']]
        flat = torch.frombuffer(data, dtype=dtype) if data else torch.zeros(0, dtype=dtype)
        out[name] = flat.reshape(info['shape'])
    return out, meta, n
