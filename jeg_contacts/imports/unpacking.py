"""The ZIP layer under the XLSX reader: the parts of an uploaded archive, unpacked within limits.

A small ZIP can unpack to gigabytes and its directory can lie about sizes. So the directory is
checked from the archive's end record before zipfile reads it, and the bytes really unpacked
are counted, in total and against the packed bytes they came from. The XML inside the parts
is xlsx.py's business.
"""

import os
import struct
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from typing import IO

# Bytes unpacked per read.
CHUNK = 64 * 1024
# A part is judged on its ratio once it has unpacked this much: small parts such as styles
# compress unevenly, and below this no part can cost anything.
RATIO_FLOOR = 1024 * 1024
# Parts and directory size a workbook may have. zipfile reads the whole directory into memory,
# an object per part, before anything else; a workbook has a few dozen parts.
MAX_PARTS = 10_000
MAX_DIRECTORY_BYTES = 4 * 1024 * 1024
_EOCD = b"PK\x05\x06"
_ZIP64_LOCATOR = b"PK\x06\x07"
_ZIP64_EOCD = b"PK\x06\x06"


@dataclass(frozen=True)
class UnpackLimits:
    """What reading a workbook may unpack: `total` bytes across the parts it reads, and no
    part more than `ratio` times the packed bytes it came from."""

    total: int = 128 * 1024 * 1024
    ratio: int = 100


class DamagedWorkbook(Exception):
    """The file is a ZIP archive but not a workbook we can read; the message says why."""


class RefusedWorkbook(Exception):
    """The workbook may be sound, but reading it would cost more than the limits allow, or it
    uses what no spreadsheet needs; each subclass says which."""


class UnpacksTooLarge(RefusedWorkbook):
    def __init__(self, limit: int) -> None:
        super().__init__(f"unpacks to more than {limit} bytes")
        self.limit = limit


class PackedTooTightly(RefusedWorkbook):
    def __init__(self, part: str, limit: int) -> None:
        super().__init__(f"{part} unpacks to more than {limit} times its packed size")
        self.part = part
        self.limit = limit


class TooManyParts(RefusedWorkbook):
    def __init__(self, count: int) -> None:
        super().__init__(f"the archive lists {count} parts")
        self.count = count


def _check_directory(file: IO[bytes]) -> None:
    """Refuse an archive whose directory lists more parts than a workbook has, from its end
    record, before zipfile reads that directory into memory."""
    size = file.seek(0, os.SEEK_END)
    file.seek(max(0, size - 22 - 0xFFFF))  # the end record, then at most a 64 KB comment
    tail = file.read()
    file.seek(0)
    at = tail.rfind(_EOCD)
    if at < 0 or len(tail) - at < 22:
        return  # not a ZIP archive: zipfile says so
    parts, directory = struct.unpack("<HI", tail[at + 10 : at + 16])
    zip64 = at >= 20 and tail[at - 20 : at - 16] == _ZIP64_LOCATOR
    if zip64 and (parts == 0xFFFF or directory == 0xFFFFFFFF):
        (offset,) = struct.unpack("<Q", tail[at - 12 : at - 4])
        file.seek(offset)
        record = file.read(56)
        file.seek(0)
        if record[:4] == _ZIP64_EOCD:
            parts, directory = struct.unpack("<QQ", record[32:48])
    if parts > MAX_PARTS or directory > MAX_DIRECTORY_BYTES:
        raise TooManyParts(parts)


class _CountingFile:
    """The file under the ZIP reader, counting the packed bytes read from it."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self.count = 0

    def read(self, size: int = -1) -> bytes:
        data = self._file.read(size)
        self.count += len(data)
        return data

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def seekable(self) -> bool:
        return True


@dataclass
class _Tally:
    unpacked: int = 0


class _Part:
    """One part of the archive as it unpacks, refused as soon as it passes the limits. The
    bytes really unpacked and the packed bytes really read are counted: the sizes the ZIP
    directory declares may be lies."""

    def __init__(
        self, archive: zipfile.ZipFile, counter: _CountingFile, info: zipfile.ZipInfo,
        limits: UnpackLimits, tally: _Tally,
    ) -> None:  # fmt: skip
        self.name = info.filename
        self._source = archive.open(info)
        self._counter = counter
        self._packed_from = counter.count  # after the part's own header
        self._limits = limits
        self._tally = tally
        self._unpacked = 0

    def read(self, size: int) -> bytes:
        data = self._source.read(size)
        self._unpacked += len(data)
        self._tally.unpacked += len(data)
        if self._tally.unpacked > self._limits.total:
            raise UnpacksTooLarge(self._limits.total)
        if self._unpacked > RATIO_FLOOR and self._unpacked > self._limits.ratio * (
            self._counter.count - self._packed_from
        ):
            raise PackedTooTightly(self.name, self._limits.ratio)
        return data

    def __enter__(self) -> "_Part":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._source.close()


class Archive:
    """The parts of an uploaded ZIP archive, each unpacked within `limits`, all of them
    together counting towards `limits.total`.

    TooManyParts before zipfile reads a directory too large; zipfile's own errors
    (BadZipFile, OSError, ...) for what is not a ZIP archive."""

    def __init__(self, file: IO[bytes], limits: UnpackLimits) -> None:
        self.limits = limits
        self._tally = _Tally()
        _check_directory(file)
        self._file = _CountingFile(file)
        self._zip = zipfile.ZipFile(self._file)  # type: ignore[arg-type]
        self._parts = {info.filename: info for info in self._zip.infolist()}

    def __contains__(self, name: str) -> bool:
        return name in self._parts

    def open(self, name: str, tally: _Tally | None = None) -> _Part:
        """Part `name`, to read as it unpacks; DamagedWorkbook if it cannot be."""
        info = self._parts.get(name)
        if info is None:
            raise DamagedWorkbook(f"{name} is missing")
        if info.flag_bits & 0x1:
            raise DamagedWorkbook(f"{name} is encrypted")
        # bzip2 and LZMA unpack a whole block per read, whatever size is asked for, and no
        # spreadsheet program uses them.
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise DamagedWorkbook(f"{name} is packed with method {info.compress_type}")
        return _Part(self._zip, self._file, info, self.limits, tally or self._tally)

    def start_of(self, name: str, size: int = 256) -> bytes:
        """The first bytes of a part, if there is one."""
        if name not in self._parts:
            return b""
        with self.open(name) as part:
            return part.read(size)

    def unpack(self, names: Iterable[str]) -> None:
        """Unpack the parts `names` and keep nothing: RefusedWorkbook as soon as the limits
        are passed. What the archive has unpacked so far counts towards the total; what this
        unpacks does not count again when the parts are read for real."""
        tally = _Tally(self._tally.unpacked)  # the workbook's own parts, read on opening
        for name in names:
            with self.open(name, tally) as part:
                while part.read(CHUNK):
                    pass

    def close(self) -> None:
        self._zip.close()
