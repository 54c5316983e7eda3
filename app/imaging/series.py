"""The images of a series as a viewer walks through them: reading order, lazy decoding
into a memory-bounded cache, and prefetch around the image on screen.

A multi-frame file contributes one entry per frame. Decoding runs on a small thread pool
(pydicom's decoders and numpy release the interpreter for most of their work); the image
asked for is decoded first, its neighbours next, so the first image appears before the
series is loaded.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from app.imaging import decoders, pixels
from app.imaging.frames import frame_order
from app.imaging.geometry import SliceInfo, order_slices

log = logging.getLogger(__name__)

DEFAULT_CACHE_MB = 1024


class ImageError(Exception):
    """An image of the series that cannot be shown, and why (for the viewport)."""


@dataclass(frozen=True)
class Entry:
    path: Path
    frame: int  # 0-based frame within the file


def _numbers(text, n):
    try:
        values = [float(v) for v in (text or "").split("\\")]
    except ValueError:
        return None
    return values if len(values) == n else None


def _number(text):
    try:
        return int(text)
    except (TypeError, ValueError):
        return None


def native_layout(path: Path, header) -> tuple[int, np.dtype, tuple[int, ...]] | None:
    """(offset of the pixel data in the file, dtype, one frame's shape) for uncompressed
    little-endian unsigned grey pixels, whose frames can be read in place; None otherwise
    (compressed, colour, 1-bit, signed: pydicom decodes those)."""
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
    ts = getattr(getattr(header, "file_meta", None), "TransferSyntaxUID", None)
    bits = int(header.get("BitsAllocated", 0) or 0)
    if ts not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) or bits not in (8, 16) \
            or int(header.get("SamplesPerPixel", 1) or 1) != 1 or int(header.get("PixelRepresentation", 0) or 0):
        return None
    import struct

    import pydicom
    explicit = ts == ExplicitVRLittleEndian
    try:
        with open(path, "rb") as f:
            pydicom.dcmread(f, stop_before_pixels=True)  # leaves the file at the Pixel Data tag
            offset = f.tell()
            head = f.read(12 if explicit else 8)
    except Exception:  # noqa: BLE001 - the ordinary reading says what is wrong
        return None
    if len(head) < 8 or head[:4] != b"\xe0\x7f\x10\x00" or struct.unpack("<I", head[-4:])[0] == 0xFFFFFFFF:
        return None
    offset += len(head)
    return offset, np.dtype("<u2" if bits == 16 else "u1"), (int(header.Rows), int(header.Columns))


def archive_series(archive, series_uid: str) -> tuple[list[Path], list[int]]:
    """The files of a series of the archive in reading order (geometry, else Instance
    Number) and their frame counts — from the index, without opening a file."""
    files, frames, _ = _archive_series(archive, series_uid)
    return files, frames


def _archive_series(archive, series_uid: str):
    """(files, frame counts, geometry): geometry is each file's (Image Position, Image
    Orientation) as the index has them, or None."""
    from sqlalchemy import select

    from app.store.schema import instance, series
    with archive.engine.connect() as conn:
        rows = conn.execute(select(instance.c.path, instance.c.ImagePositionPatient,
                                   instance.c.ImageOrientationPatient, instance.c.InstanceNumber,
                                   instance.c.NumberOfFrames)
                            .join(series, series.c.id == instance.c.series_id)
                            .where(series.c.SeriesInstanceUID == series_uid)).all()
    frames = {r.path: max(_number(r.NumberOfFrames) or 1, 1) for r in rows}
    ordered, _ = order_slices([SliceInfo(r.path, _numbers(r.ImagePositionPatient, 3),
                                         _numbers(r.ImageOrientationPatient, 6), _number(r.InstanceNumber))
                               for r in rows])
    return ([archive.files.absolute(s.key) for s in ordered], [frames[s.key] for s in ordered],
            [(s.position, s.orientation) if s.position and s.orientation else None for s in ordered])


def archive_series_files(archive, series_uid: str) -> list[Path]:
    return archive_series(archive, series_uid)[0]


class SeriesImages:
    def __init__(self, files: list[Path], frames: list[int] | None = None, *, cache_mb: int = DEFAULT_CACHE_MB,
                 workers: int = 2, geometry: list | None = None, headers: dict[Path, object] | None = None):
        """``frames``: the frame count of each file when the index knows it; headers are then
        read when an image is first shown, not all before the first one appears.
        ``geometry``: each file's (position, orientation) from the index, so that linked
        scrolling finds the nearest slice without reading every header. ``headers``: those
        the caller has read already (without pixel data), not read again."""
        import pydicom
        self.entries: list[Entry] = []
        self.headers: dict[Path, object] = {}
        known = headers or {}
        for i, path in enumerate(files):
            if frames is not None and frames[i] <= 1:
                self.entries.append(Entry(path, 0))
                continue
            # a multi-frame file's header is read now: its frames are put in reading order
            try:
                header = known.get(path) or pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as exc:  # noqa: BLE001 - one unreadable file must not stop the series
                log.warning("cannot read %s: %s", path, exc)
                if frames is not None:
                    self.entries.append(Entry(path, 0))  # shown with why it cannot be read
                continue
            self.headers[path] = header
            self.entries.extend(Entry(path, f) for f in frame_order(header))
        self._budget = cache_mb * 2**20
        self._cache: OrderedDict[Entry, np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self._pending: dict[Entry, Future] = {}
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="decode")
        self._datasets: OrderedDict[Path, object] = OrderedDict()  # a few whole files (multi-frame)
        self._layouts: dict[Path, tuple | None] = {}  # uncompressed multi-frame: where the frames are
        self._textures: OrderedDict[tuple, tuple] = OrderedDict()  # (entry, window, invert, factor) -> texture
        self._texture_bytes = 0
        self._texture_spec: tuple | None = None  # how prefetched images are made into textures
        self._last_spec: tuple | None = None  # how the viewer last asked for a texture
        self._frame_headers: dict = {}
        self._positions_key: tuple | None = None  # positions along one slice normal (nearest())
        self._positions: list[float | None] = []
        self._notes: dict[Entry, str] = {}
        self._geometry = {path: g for path, g in zip(files, geometry or ()) if g is not None}

    @classmethod
    def from_archive(cls, archive, series_uid: str, **kw) -> "SeriesImages":
        files, frames, geometry = _archive_series(archive, series_uid)
        return cls(files, frames, geometry=geometry, **kw)

    def __len__(self) -> int:
        return len(self.entries)

    def header(self, i: int):
        """Image ``i``'s header; for a frame of an enhanced multi-frame object, with that
        frame's functional group attributes (app.imaging.frames)."""
        from app.imaging.frames import frame_header, is_enhanced
        entry = self.entries[i]
        header = self._file_header(entry.path)
        if not is_enhanced(header):
            return header
        key = (entry.path, entry.frame)
        flat = self._frame_headers.get(key)
        if flat is None:
            flat = self._frame_headers[key] = frame_header(header, entry.frame)
        return flat

    def _file_header(self, path: Path):
        header = self.headers.get(path)
        if header is None:
            import pydicom
            try:
                header = pydicom.dcmread(path, stop_before_pixels=True)
            except Exception as exc:  # noqa: BLE001 - shown in the viewport, the series goes on
                raise ImageError(f"this file cannot be read: {exc}") from None
            self.headers[path] = header
        return header

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)

    def frame_of_reference(self) -> str | None:
        try:
            return str(self.header(0).get("FrameOfReferenceUID", "") or "") or None if len(self) else None
        except ImageError:
            return None

    def position(self, i: int, normal_vector=None) -> float | None:
        """Where image ``i`` lies along ``normal_vector`` (default: its own slice normal), in mm;
        None without geometry."""
        from app.imaging.geometry import normal
        entry = self.entries[i]
        known = self._geometry.get(entry.path) if entry.path not in self.headers else None
        try:
            if known is not None:  # from the index: no header read
                ipp, iop = known
            else:
                header = self.header(i)
                ipp, iop = header.ImagePositionPatient, header.ImageOrientationPatient
            ipp = [float(v) for v in ipp]
            n = normal_vector if normal_vector is not None else normal([float(v) for v in iop])
        except (AttributeError, TypeError, ValueError, ImageError):
            return None
        return float(np.dot(ipp, n))

    def nearest(self, position: float, normal_vector) -> int | None:
        """The image closest to ``position`` along ``normal_vector`` (linked scrolling: asked
        at every step, so the positions along one normal are computed once)."""
        key = tuple(round(float(v), 6) for v in normal_vector)
        if self._positions_key != key:
            self._positions = [self.position(i, normal_vector) for i in range(len(self))]
            self._positions_key = key
        best, best_d = None, None
        for i, p in enumerate(self._positions):
            if p is not None and (best_d is None or abs(p - position) < best_d):
                best, best_d = i, abs(p - position)
        return best

    # -- decoding ---------------------------------------------------------------------------
    def _decode(self, entry: Entry) -> np.ndarray:
        import pydicom
        header = self.headers.get(entry.path)
        if header is not None and int(header.get("NumberOfFrames", 1) or 1) > 1:
            # multi-frame: uncompressed frames are read one by one
            arr = self._native_frame(entry)
            if arr is not None:
                return arr
        ds = self._datasets.get(entry.path)
        if ds is None:
            ds = pydicom.dcmread(entry.path)
            if int(ds.get("NumberOfFrames", 1) or 1) > 1:
                self._datasets[entry.path] = ds
                while len(self._datasets) > 2:
                    self._datasets.popitem(last=False)
        if "PixelData" not in ds:
            raise ImageError("no image in this object")
        arr = pixels.frame_array(ds, entry.frame)
        note = decoders.incomplete(ds, entry.frame)
        if note:
            log.warning("%s frame %d: %s", entry.path, entry.frame, note)
            self._notes[entry] = note
        return arr

    def _native_frame(self, entry: Entry) -> np.ndarray | None:
        """One frame of an uncompressed multi-frame file, read from where it lies in the file:
        a tomosynthesis volume is half a gigabyte, and the viewer shows its middle slice
        first. None where the layout is not the simple one (the whole file is read then)."""
        layout = self._layouts.get(entry.path, False)
        if layout is False:
            layout = self._layouts[entry.path] = native_layout(entry.path, self.headers[entry.path])
        if layout is None:
            return None
        offset, dtype, shape = layout
        count = int(np.prod(shape))
        arr = np.fromfile(entry.path, dtype=dtype, count=count, offset=offset + entry.frame * count * dtype.itemsize)
        if arr.size != count:
            raise ImageError("the image data is incomplete (truncated)")
        return arr.reshape(shape)

    def _store(self, entry: Entry, arr: np.ndarray) -> None:
        with self._lock:
            if entry in self._cache:
                return
            self._cache[entry] = arr
            self._bytes += arr.nbytes
            while self._bytes > self._budget and len(self._cache) > 1:
                _, old = self._cache.popitem(last=False)
                self._bytes -= old.nbytes

    def _load(self, entry: Entry) -> np.ndarray:
        arr = self._decode(entry)
        self._store(entry, arr)
        return arr

    def stored(self, i: int) -> np.ndarray:
        """Stored values of image ``i`` (decoded now if not cached or being decoded)."""
        entry = self.entries[i]
        with self._lock:
            arr = self._cache.get(entry)
            if arr is not None:
                self._cache.move_to_end(entry)
                return arr
            pending = self._pending.get(entry)
        if pending is not None:
            return pending.result()
        try:
            return self._load(entry)
        except ImageError:
            raise
        except Exception as exc:  # noqa: BLE001 - a truncated or undecodable image
            raise ImageError(f"this image cannot be decoded: {exc}") from None

    def prefetch(self, center: int, radius: int = 8) -> None:
        """Decode the neighbours of ``center`` in the background, nearest first, and make
        their textures as the last one asked for was made (scrolling then only draws)."""
        order = sorted(range(max(0, center - radius), min(len(self), center + radius + 1)),
                       key=lambda j: abs(j - center))
        spec = self._texture_spec
        for j in order:
            entry = self.entries[j]
            with self._lock:
                if entry in self._pending:
                    continue
                if entry in self._cache and (spec is None or (entry, *spec) in self._textures):
                    continue
                fut = self._pool.submit(self._background, entry, j, spec)
                self._pending[entry] = fut

    def _background(self, entry: Entry, index: int, spec: tuple | None):
        try:
            with self._lock:
                arr = self._cache.get(entry)
            if arr is None:
                arr = self._load(entry)
            if spec is not None:  # from arr: asking stored() here would wait on this very task
                self.texture(index, *spec, remember=False, stored=arr)
            return arr
        except Exception as exc:  # noqa: BLE001 - reported when the image is shown
            log.info("prefetch of %s frame %d failed: %s", entry.path, entry.frame, exc)
            raise
        finally:
            with self._lock:
                self._pending.pop(entry, None)

    def note(self, i: int) -> str:
        """What the reader must know about image ``i`` as shown (e.g. truncated data)."""
        return self._notes.get(self.entries[i], "")

    def cached(self) -> int:
        with self._lock:
            return len(self._cache)

    # -- display ----------------------------------------------------------------------------
    def display(self, i: int, window: pixels.Window | None = None, invert: bool = False) -> np.ndarray:
        """Image ``i`` as shown: uint8 grey (H, W) or RGB (H, W, 3)."""
        return pixels.display(self.header(i), self.stored(i), window, invert=invert)

    def slab(self, i: int, half: int, mode: str = "mip") -> np.ndarray:
        """Stored values of a slab around image ``i``: ``half`` images either side (fewer at
        the ends), their maximum ("mip") or mean ("average"), as the stored type."""
        lo, hi = max(0, i - half), min(len(self) - 1, i + half)
        stack = [self.stored(j) for j in range(lo, hi + 1)]
        if mode == "mip":
            return np.maximum.reduce(stack)
        return np.rint(np.mean(stack, axis=0)).astype(stack[0].dtype)

    def texture(self, i: int, window: pixels.Window | None, invert: bool, factor: int, *, remember: bool = True,
                stored: np.ndarray | None = None):
        """(texture, its origin, the displayed image's shape): image ``i`` as shown, averaged
        over ``factor`` x ``factor`` blocks (app.imaging.scene.reduce). Textures are kept
        (a bounded few), so one made off the GUI thread — a hanging stage's, a prefetched
        neighbour's — is not made again there. ``remember``: the next prefetch makes its
        textures as this one (the viewer asks; a prefetch task does not). ``stored``: the
        image's stored values, when the caller has them."""
        from app.imaging import scene
        spec = (window, invert, factor)
        if remember:  # not while the window is being dragged: each step would remake them all
            self._texture_spec = spec if spec == self._last_spec else None
            self._last_spec = spec
        key = (self.entries[i], *spec)
        with self._lock:
            made = self._textures.get(key)
            if made is not None:
                self._textures.move_to_end(key)
                return made
        if stored is None:
            stored = self.stored(i)
        img = pixels.display(self.header(i), stored, window, invert=invert)
        shown, origin = scene.reduce(img, factor)
        made = (shown, origin, img.shape)
        with self._lock:
            if key not in self._textures:
                self._textures[key] = made
                self._texture_bytes += shown.nbytes
            while self._texture_bytes > self._budget // 4 and len(self._textures) > 1:
                _, (old, _, _) = self._textures.popitem(last=False)
                self._texture_bytes -= old.nbytes
        return made
