"""Streaming XLSX: writing one sheet of text, numbers and timestamps.

openpyxl's write-only mode produces the same kind of file but spends about 25 µs per cell
(45 s for 100,000 contacts of 17 columns on our machines, 29 s even with lxml), far from the
30 s the issue allows for a whole export. This writer emits the sheet XML directly into the
ZIP entry, a row at a time, so memory stays constant and 100,000 rows take a few seconds.
XlsxWriter, even in its `constant_memory` mode, took five times as long for the same rows
(issue 10; figures in docs/benchmarks.md, `bench/xlsx_writers.py`), so this writer stays.
The result is checked with openpyxl, the reader, in the tests.
"""

import re
import zipfile
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import IO, Any

from jeg_contacts.spreadsheets import column_letter

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL_NS = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_PKG_REL_NS = "http://schemas.openxmlformats.org/package/2006/relationships"
_EPOCH = datetime(1899, 12, 30, tzinfo=UTC)
# Characters XML 1.0 cannot carry at all; they are dropped.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")
MAX_CELL_CHARS = 32_767  # Excel's limit

# Cell styles defined in styles.xml below: 0 plain, 1 bold header, 2 date and time.
_HEADER_STYLE = 1
_TIMESTAMP_STYLE = 2

_SPREADSHEETML = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_SPREADSHEETML}.sheet.main+xml"/>'
    '<Override PartName="/xl/worksheets/sheet1.xml" '
    f'ContentType="{_SPREADSHEETML}.worksheet+xml"/>'
    f'<Override PartName="/xl/styles.xml" ContentType="{_SPREADSHEETML}.styles+xml"/>'
    "</Types>"
)

_ROOT_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PKG_REL_NS}">
<Relationship Id="rId1" Type="{_REL_NS}/officeDocument" Target="xl/workbook.xml"/>
</Relationships>"""

_WORKBOOK_RELS = f"""<?xml version="1.0" encoding="UTF-8" standalone="yes"?>
<Relationships xmlns="{_PKG_REL_NS}">
<Relationship Id="rId1" Type="{_REL_NS}/worksheet" Target="worksheets/sheet1.xml"/>
<Relationship Id="rId2" Type="{_REL_NS}/styles" Target="styles.xml"/>
</Relationships>"""

_STYLES = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
    f'<styleSheet xmlns="{_NS}">'
    '<numFmts count="1"><numFmt numFmtId="164" formatCode="yyyy-mm-dd hh:mm"/></numFmts>'
    '<fonts count="2"><font><sz val="11"/><name val="Calibri"/></font>'
    '<font><b/><sz val="11"/><name val="Calibri"/></font></fonts>'
    '<fills count="2"><fill><patternFill patternType="none"/></fill>'
    '<fill><patternFill patternType="gray125"/></fill></fills>'
    '<borders count="1"><border><left/><right/><top/><bottom/><diagonal/></border></borders>'
    '<cellStyleXfs count="1"><xf numFmtId="0" fontId="0" fillId="0" borderId="0"/></cellStyleXfs>'
    '<cellXfs count="3">'
    '<xf numFmtId="0" fontId="0" fillId="0" borderId="0" xfId="0"/>'
    '<xf numFmtId="0" fontId="1" fillId="0" borderId="0" xfId="0" applyFont="1"/>'
    '<xf numFmtId="164" fontId="0" fillId="0" borderId="0" xfId="0" applyNumberFormat="1"/>'
    "</cellXfs>"
    '<cellStyles count="1"><cellStyle name="Normal" xfId="0" builtinId="0"/></cellStyles>'
    "</styleSheet>"
)


def _escape(text: str) -> str:
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if "\r" in text:
        text = text.replace("\r", "&#13;")  # a bare CR would be read back as a line feed
    if _NOT_XML.search(text):
        text = _NOT_XML.sub("", text)
    return text[:MAX_CELL_CHARS]


class SheetWriter:
    """Write one sheet, a header row then data rows, into an XLSX file object.

    The header is bold, frozen in place and carries a filter; `widths` are in characters."""

    def __init__(
        self, file: IO[bytes], headers: Sequence[str], widths: Sequence[int], title: str
    ) -> None:
        self._zip = zipfile.ZipFile(file, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1)
        self._title = title
        self._letters = [column_letter(index) for index in range(len(headers))]
        self._rows = 0
        self._sheet = self._zip.open("xl/worksheets/sheet1.xml", "w", force_zip64=True)
        columns = "".join(
            f'<col min="{number}" max="{number}" width="{width}" customWidth="1"/>'
            for number, width in enumerate(widths, start=1)
        )
        self._write(
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<worksheet xmlns="{_NS}" xmlns:r="{_REL_NS}">'
            '<sheetViews><sheetView workbookViewId="0">'
            '<pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/>'
            '<selection pane="bottomLeft" activeCell="A2" sqref="A2"/>'
            "</sheetView></sheetViews>"
            '<sheetFormatPr defaultRowHeight="15"/>'
            f"<cols>{columns}</cols><sheetData>"
        )
        self.write_row(headers, style=_HEADER_STYLE)

    def _write(self, text: str) -> None:
        self._sheet.write(text.encode())

    def write_row(self, values: Sequence[Any], style: int = 0) -> None:
        """Append a row: str as text, int/float as numbers, datetimes as dates, None empty."""
        self._rows += 1
        number = self._rows
        styled = f' s="{style}"' if style else ""
        cells = []
        for letter, value in zip(self._letters, values, strict=False):
            if value is None or value == "":
                continue
            if isinstance(value, str):
                cells.append(
                    f'<c r="{letter}{number}"{styled} t="inlineStr"><is><t xml:space="preserve">'
                    f"{_escape(value)}</t></is></c>"
                )
            elif isinstance(value, datetime):
                serial = (value.astimezone(UTC) - _EPOCH).total_seconds() / 86400
                cells.append(
                    f'<c r="{letter}{number}" s="{_TIMESTAMP_STYLE}"><v>{serial:.6f}</v></c>'
                )
            elif isinstance(value, bool):
                cells.append(f'<c r="{letter}{number}"{styled} t="b"><v>{int(value)}</v></c>')
            elif isinstance(value, int | float):
                cells.append(f'<c r="{letter}{number}"{styled}><v>{value}</v></c>')
            else:
                raise TypeError(f"cannot write {type(value).__name__} to a cell")
        self._write(f'<row r="{number}">{"".join(cells)}</row>')

    def close(self) -> None:
        """Finish the sheet and the workbook around it."""
        last = f"{self._letters[-1]}{max(self._rows, 1)}" if self._letters else "A1"
        self._write(f'</sheetData><autoFilter ref="A1:{last}"/></worksheet>')
        self._sheet.close()
        title = _escape(self._title).replace('"', "&quot;")
        quoted = "'" + self._title.replace("'", "''") + "'"
        self._zip.writestr(
            "xl/workbook.xml",
            '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n'
            f'<workbook xmlns="{_NS}" xmlns:r="{_REL_NS}">'
            f'<sheets><sheet name="{title}" sheetId="1" r:id="rId1"/></sheets>'
            '<definedNames><definedName name="_xlnm._FilterDatabase" localSheetId="0" hidden="1">'
            f"{_escape(quoted)}!$A$1:${last.rstrip('0123456789')}${max(self._rows, 1)}"
            "</definedName></definedNames></workbook>",
        )
        self._zip.writestr("[Content_Types].xml", _CONTENT_TYPES)
        self._zip.writestr("_rels/.rels", _ROOT_RELS)
        self._zip.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        self._zip.writestr("xl/styles.xml", _STYLES)
        self._zip.close()


# --- Reading ------------------------------------------------------------------------------
#
# openpyxl reads a sheet at about 20 µs a cell here (45 s for 100,000 rows of 15 columns),
# most of an import's minute. The sheet is read instead with expat, behind defusedxml, a row
# at a time: the same values, several times faster.
