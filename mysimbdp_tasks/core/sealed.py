"""Sealed tenant files: envelope encryption of a CSV / JSON / JSON Lines file with the tenant's key.

A tenant may stage ``name.csv.enc`` (``.json.enc``, ``.jsonl.enc``, ``.ndjson.enc``) instead of the
plaintext file. The worker reads it through :class:`SealedReader`, which decrypts one segment at a
time in memory: the plaintext never reaches a disk.

Format, version 1 (all integers big-endian)::

    header   = magic "MSBDPENC" (8) | version 0x01 (1) | segment size S (4) | tenant length n (1)
             | tenant name, UTF-8 (n) | key id (8) | nonce prefix (8)
             | wrap nonce (12) | wrapped data key (48)
    segments = seg_0 | seg_1 | ... | seg_last      (at least one; the last may be empty)
               S is 4 KiB to 1 MiB (a file declaring another size is refused, ``not_sealed``)
    seg_i    = AES-256-GCM(data key, nonce = nonce prefix | i as 4 bytes,
                           plaintext = S bytes (the last: 0..S), AAD = 0x01 if last else 0x00)

- The **tenant key** (32 random bytes, :mod:`mysimbdp_tasks.security.filekeys`) is the tenant's only
  long-lived secret. Its **key id** is ``HMAC-SHA256(tenant key, "mysimbdp file key id")[:8]``: it
  names the key without revealing it.
- Each file has its own random 32-byte **data key**, wrapped with AES-256-GCM under the tenant key
  (random wrap nonce); the wrap's AAD is every header byte before the wrap nonce (magic, version,
  segment size, tenant name, key id, nonce prefix). Editing any of them, e.g. the tenant name,
  makes the unwrap fail.
- Segment nonces come from a random per-file prefix and the segment counter, so segments cannot be
  reordered; the last-segment flag in each segment's AAD makes a cut at a segment boundary
  detectable (the new last segment was sealed as "not last").

Refusals (``PermanentIngestError`` reasons): ``not_sealed`` (no magic / unknown version /
malformed header), ``wrong_tenant`` (sealed for another tenant), ``wrong_key`` (another key id: an
old key after rotation, or another party's key), ``tampered`` (header or segment does not
authenticate, or bytes after the last segment), ``truncated`` (the file ends on a segment sealed as
"not last").

Segments make random access possible (segment i sits at a fixed offset), but chunk planning scans
a file's bytes for record boundaries (:mod:`chunks`), which for a sealed file would mean decrypting
it once to plan and again to read; a sealed file is read as one chunk.

The worker (:mod:`mysimbdp_tasks.batch.files`) authenticates every segment (:func:`verify`) before
it reads a record, so a refused file lands no row and fails with the reason (its quota refunded).
Only a file altered between that pass and the read (in the platform's own ``processing/``) could
land the rows of the segments before the bad one; the receipt then says ``partial: tampered``, as
for any file that cannot be read on from some point.
"""

from __future__ import annotations

import hashlib
import hmac
import io
import os
import struct
from collections.abc import Callable, Iterator
from typing import BinaryIO, cast

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from .errors import PermanentIngestError

__all__ = ["SUFFIX", "SealedReader", "SealingWriter", "inner_name", "is_sealed_name", "key_id", "opener", "seal",
           "verify"]

SUFFIX = ".enc"
MAGIC = b"MSBDPENC"
VERSION = 1
SEGMENT_BYTES = 64 << 10
# The segment sizes a file may declare: a segment is held whole while it is decrypted, so a larger
# one costs the worker its size in memory; a tiny one costs a decryption and a tag per few bytes.
MIN_SEGMENT_BYTES, MAX_SEGMENT_BYTES = 4 << 10, 1 << 20
KEY_BYTES = 32
TAG_BYTES = 16
KEY_ID_BYTES = 8
PREFIX_BYTES = 8
WRAP_NONCE_BYTES = 12
_KEY_ID_LABEL = b"mysimbdp file key id"
_FIXED = struct.Struct(">8sBIB")  # magic, version, segment size, tenant length
_MAX_SEGMENTS = 1 << 32


def key_id(key: bytes) -> bytes:
    return hmac.new(key, _KEY_ID_LABEL, hashlib.sha256).digest()[:KEY_ID_BYTES]


def is_sealed_name(name: str) -> bool:
    return name.lower().endswith(SUFFIX)


def inner_name(name: str) -> str:
    """The plaintext file's name: ``x.csv.enc`` -> ``x.csv``; other names unchanged."""
    return name[: -len(SUFFIX)] if is_sealed_name(name) else name


def _nonce(prefix: bytes, index: int) -> bytes:
    return prefix + struct.pack(">I", index)


def _aad(last: bool) -> bytes:
    return b"\x01" if last else b"\x00"


class SealingWriter(io.RawIOBase):
    """Seals what is written to it into ``dst``, a segment at a time; :meth:`finish` (or ``close``,
    which does not close ``dst``) seals the last segment. Nothing but sealed bytes reaches ``dst``."""

    def __init__(self, dst: BinaryIO, tenant: str, key: bytes, segment_bytes: int = SEGMENT_BYTES) -> None:
        super().__init__()
        if len(key) != KEY_BYTES:
            raise ValueError(f"a tenant file key is {KEY_BYTES} bytes, got {len(key)}")
        if not MIN_SEGMENT_BYTES <= segment_bytes <= MAX_SEGMENT_BYTES:
            raise ValueError(f"a segment is {MIN_SEGMENT_BYTES} to {MAX_SEGMENT_BYTES} bytes, got {segment_bytes}")
        name = tenant.encode("utf-8")
        data_key, self._prefix, wrap_nonce = (os.urandom(KEY_BYTES), os.urandom(PREFIX_BYTES),
                                              os.urandom(WRAP_NONCE_BYTES))
        authenticated = _FIXED.pack(MAGIC, VERSION, segment_bytes, len(name)) + name + key_id(key) + self._prefix
        wrapped = AESGCM(key).encrypt(wrap_nonce, data_key, authenticated)
        self._dst, self._aead, self._segment = dst, AESGCM(data_key), segment_bytes
        self._buffer, self._index, self._finished = bytearray(), 0, False
        self.written = dst.write(authenticated + wrap_nonce + wrapped)

    def writable(self) -> bool:
        return True

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self._finished:
            raise ValueError("the sealed file is finished")
        self._buffer += data
        # A full segment is sealed as "not last" only once a byte after it exists.
        while len(self._buffer) > self._segment:
            self._emit(bytes(self._buffer[: self._segment]), last=False)
            del self._buffer[: self._segment]
        return len(data)

    def _emit(self, plain: bytes, last: bool) -> None:
        self.written += self._dst.write(self._aead.encrypt(_nonce(self._prefix, self._index), plain, _aad(last)))
        self._index += 1

    def finish(self) -> int:
        """Seal the last segment; the sealed file's size."""
        if not self._finished:
            self._emit(bytes(self._buffer), last=True)
            self._buffer.clear()
            self._finished = True
        return self.written

    def close(self) -> None:
        if not self.closed:
            self.finish()
        super().close()


def seal(src: BinaryIO, dst: BinaryIO, tenant: str, key: bytes, segment_bytes: int = SEGMENT_BYTES) -> int:
    """Write ``src`` sealed for ``tenant`` under its ``key`` to ``dst``; return the bytes written."""
    writer = SealingWriter(dst, tenant, key, segment_bytes)
    while block := src.read(segment_bytes):
        writer.write(block)
    return writer.finish()


class _Header:
    __slots__ = ("data_key", "length", "prefix", "segment_bytes")

    def __init__(self, f: BinaryIO, name: str, tenant: str, key: bytes) -> None:
        fixed = f.read(_FIXED.size)
        if len(fixed) < _FIXED.size or not fixed.startswith(MAGIC):
            raise PermanentIngestError("not_sealed", f"{name}: not a sealed file (no {MAGIC.decode()} header)")
        _, version, self.segment_bytes, n = _FIXED.unpack(fixed)
        if version != VERSION:
            raise PermanentIngestError("not_sealed", f"{name}: sealed-file version {version}; "
                                       f"this platform reads {VERSION}")
        wanted = n + KEY_ID_BYTES + PREFIX_BYTES + WRAP_NONCE_BYTES + KEY_BYTES + TAG_BYTES
        rest = f.read(wanted)
        if len(rest) < wanted:
            raise PermanentIngestError("not_sealed", f"{name}: the sealed-file header is cut short or malformed")
        if not MIN_SEGMENT_BYTES <= self.segment_bytes <= MAX_SEGMENT_BYTES:
            raise PermanentIngestError("not_sealed", f"{name}: segments of {self.segment_bytes} bytes; a sealed file's "
                                       f"are {MIN_SEGMENT_BYTES} to {MAX_SEGMENT_BYTES}")
        owner = rest[:n].decode("utf-8", errors="replace")
        if owner != tenant:
            raise PermanentIngestError("wrong_tenant", f"{name}: sealed for tenant {owner!r}, not {tenant!r}")
        kid, pos = rest[n : n + KEY_ID_BYTES], n + KEY_ID_BYTES
        if not hmac.compare_digest(kid, key_id(key)):
            raise PermanentIngestError("wrong_key", f"{name}: sealed with key id {kid.hex()}, tenant {tenant}'s "
                                       f"file key is {key_id(key).hex()} (an old key, or not the tenant's)")
        self.prefix = rest[pos : pos + PREFIX_BYTES]
        pos += PREFIX_BYTES
        authenticated = fixed + rest[:pos]
        try:
            self.data_key = AESGCM(key).decrypt(rest[pos : pos + WRAP_NONCE_BYTES], rest[pos + WRAP_NONCE_BYTES :],
                                                authenticated)
        except InvalidTag:
            raise PermanentIngestError("tampered", f"{name}: the header does not authenticate") from None
        self.length = len(fixed) + len(rest)


class SealedReader(io.RawIOBase):
    """A read-only, seekable view of a sealed file's plaintext, decrypted a segment at a time.

    Every segment is authenticated before any of its bytes are returned; a segment that does not
    authenticate raises ``PermanentIngestError`` (so bytes of earlier segments may have been read).
    """

    def __init__(self, path: str | os.PathLike[str], tenant: str, key: bytes) -> None:
        super().__init__()
        self._name = os.path.basename(os.fspath(path))
        self._f: BinaryIO = open(path, "rb")  # noqa: SIM115 - closed by close()
        try:
            self._h = _Header(self._f, self._name, tenant, key)
            body = os.fstat(self._f.fileno()).st_size - self._h.length
            step = self._h.segment_bytes + TAG_BYTES
            self._segments = max(1, -(-body // step))
            if body < TAG_BYTES:
                raise PermanentIngestError("truncated", f"{self._name}: the file ends before its first segment")
            if self._segments > _MAX_SEGMENTS or body - (self._segments - 1) * step < TAG_BYTES:
                raise PermanentIngestError("tampered", f"{self._name}: its length does not fit whole segments "
                                           "(cut inside a segment, or bytes appended)")
        except BaseException:
            self._f.close()
            raise
        self.size = body - self._segments * TAG_BYTES  # plaintext bytes
        self._aead = AESGCM(self._h.data_key)
        self._pos, self._cached, self._plain = 0, -1, b""

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}[whence]
        self._pos = max(0, base + offset)
        return self._pos

    def segment(self, index: int) -> bytes:
        """Plaintext of segment ``index``, authenticated."""
        if index != self._cached:
            step = self._h.segment_bytes + TAG_BYTES
            self._f.seek(self._h.length + index * step)
            sealed = self._f.read(step)
            last = index == self._segments - 1
            nonce = _nonce(self._h.prefix, index)
            try:
                self._plain = self._aead.decrypt(nonce, sealed, _aad(last))
            except InvalidTag:
                raise self._refusal(index, nonce, sealed, last) from None
            self._cached = index
        return self._plain

    def _refusal(self, index: int, nonce: bytes, sealed: bytes, last: bool) -> PermanentIngestError:
        if last:
            try:
                self._aead.decrypt(nonce, sealed, _aad(False))
            except InvalidTag:
                pass
            else:
                return PermanentIngestError("truncated", f"{self._name}: ends after segment {index}, which was "
                                            "sealed as not the last: the file was cut")
        return PermanentIngestError("tampered", f"{self._name}: segment {index} of {self._segments} does not "
                                    "authenticate (altered, cut inside, or extended)")

    def readinto(self, buffer: memoryview) -> int:  # type: ignore[override]
        out = memoryview(buffer).cast("B")
        done = 0
        while done < len(out) and self._pos < self.size:
            index, within = divmod(self._pos, self._h.segment_bytes)
            plain = self.segment(index)[within : within + len(out) - done]
            out[done : done + len(plain)] = plain
            done += len(plain)
            self._pos += len(plain)
        return done

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()

    def segments(self) -> Iterator[bytes]:
        for index in range(self._segments):
            yield self.segment(index)


def opener(tenant: str, key: bytes) -> Callable[[str | os.PathLike[str]], BinaryIO]:
    """Opens a file sealed for ``tenant`` as its plaintext (what :mod:`parsing` reads)."""
    def open_sealed(path: str | os.PathLike[str]) -> BinaryIO:
        return cast(BinaryIO, SealedReader(path, tenant, key))
    return open_sealed


def verify(path: str | os.PathLike[str], tenant: str, key: bytes) -> int:
    """Authenticate every segment of a sealed file; its plaintext size. Raises the refusal."""
    with SealedReader(path, tenant, key) as reader:
        for _ in reader.segments():
            pass
        return reader.size
