"""Our hand-written XLSX writer against XlsxWriter (`constant_memory`), on one export's rows.

    .venv/bin/python bench/xlsx_writers.py --contacts 100000 --runs 5

Builds a scratch SQLite database with `flask demo-data`. Each run is its own process: it
reads every row of the default XLSX export (all default columns) with the export's own query
and cell conversion, holds them in memory, then times only the writing of the workbook,
neutralised as the app neutralises it, to a file. Runs alternate between the two writers
(ABBA order), so both see the same load; the load average is noted before each run.

"ours" is the app's writer, `XlsxWriter` in `jeg_contacts/exports/writers.py` (our
`SheetWriter` behind the neutralising); "xlsxwriter" makes the same sheet through the
XlsxWriter library in `constant_memory` mode (`pip install -e '.[bench]'`).

Peak memory is the writer's own: the process's high-water mark of resident memory is reset
(`/proc/self/clear_refs`) once the rows are loaded, and the figure is how far it then rose
above the memory in use at that point. Issue 10 keeps our writer only if XlsxWriter is more
than 1.5 times slower.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harness import ROOT, demo_database, scratch_environment

sys.path.insert(0, str(ROOT))
WRITERS = ["ours", "xlsxwriter"]


def _memory(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise LookupError(field)


def _library_writer():
    """The app's writer's calls made through XlsxWriter: text with write_string (never
    write(), which would take "=..." for a formula), numbers and timestamps typed, the header
    bold, neutralised, frozen and filtered, columns at the export's widths."""
    import xlsxwriter

    from jeg_contacts.spreadsheets import FORMULA_TRIGGERS, neutralise

    triggers = frozenset(FORMULA_TRIGGERS)

    class LibraryXlsxWriter:
        def __init__(self, out, headers, widths, title):
            self._book = xlsxwriter.Workbook(out, {"constant_memory": True})
            self._sheet = self._book.add_worksheet(title)
            self._time = self._book.add_format({"num_format": "yyyy-mm-dd hh:mm"})
            bold = self._book.add_format({"bold": True})
            for column, (header, width) in enumerate(zip(headers, widths, strict=True)):
                self._sheet.set_column(column, column, width)
                self._sheet.write_string(0, column, neutralise(header), bold)
            self._sheet.freeze_panes(1, 0)
            self._columns = len(headers)
            self._row = 0

        def write_row(self, values):
            self._row += 1
            sheet, row = self._sheet, self._row
            for column, value in enumerate(values):
                if value is None or value == "":
                    continue
                if value.__class__ is str:
                    if value[0] in triggers:
                        value = "'" + value
                    sheet.write_string(row, column, value)
                elif isinstance(value, int | float):
                    sheet.write_number(row, column, value)
                else:  # a UTC timestamp; Excel's have no zone
                    sheet.write_datetime(row, column, value.replace(tzinfo=None), self._time)

        def close(self):
            self._sheet.autofilter(0, 0, self._row, self._columns - 1)
            self._book.close()

    return LibraryXlsxWriter


def child(writer: str, output: str) -> None:
    """One run, in this process: load the rows, then write them; prints a JSON line."""
    from jeg_contacts import create_app
    from jeg_contacts.audiences.services import ContactFilter
    from jeg_contacts.exports import services, writers

    app = create_app()
    with app.app_context():
        export = services.parse_export(ContactFilter(), format_key="xlsx")
        cells = writers._cells(export, writers._XLSX, writers._Names())
        rows = [cells(row) for row in services.read_rows(export)]
        widths = [services.COLUMNS[key].width for key in export.columns]
        headers = export.headers
    make = writers.XlsxWriter if writer == "ours" else _library_writer()
    Path("/proc/self/clear_refs").write_text("5")  # reset VmHWM to the memory in use now
    before = _memory("VmRSS")
    wall, cpu = time.perf_counter(), time.process_time()
    with open(output, "wb") as out:
        sheet = make(out, headers, widths, "Contacts")
        for row in rows:
            sheet.write_row(row)
        sheet.close()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _memory("VmHWM") - before
    size = Path(output).stat().st_size
    print(json.dumps({"rows": len(rows), "wall": wall, "cpu": cpu, "peak": peak, "size": size}))


def _close(first: str, second: str) -> bool:
    """The same cell, a timestamp written to fewer decimals by one writer counting as equal."""
    if first == second:
        return True
    try:
        return abs(float(first) - float(second)) < 1e-5  # under a second
    except ValueError:
        return False


def same_cells(first: Path, second: Path) -> bool:
    """Whether two workbooks' first sheets read back to the same rows of cells."""
    from jeg_contacts.imports.xlsx import WorkbookReader

    with first.open("rb") as one, second.open("rb") as other:
        readers = [WorkbookReader(file) for file in (one, other)]
        rows = [reader.rows(reader.sheets[0]) for reader in readers]
        for left, right in zip(*rows, strict=True):
            if len(left[1]) != len(right[1]) or not all(map(_close, left[1], right[1])):
                print(f"first difference: {left} != {right}", file=sys.stderr)
                return False
    return True


def run(environment: dict[str, str], writer: str, output: Path) -> dict:
    load = os.getloadavg()[0]
    result = subprocess.run(
        [sys.executable, __file__, "--child", writer, str(output)],
        env=environment,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.splitlines()[-1]) | {"load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=5, help="runs per writer")
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch)
        print(f"Generating {options.contacts:,} demo contacts…", file=sys.stderr)
        environment = scratch_environment(folder)
        demo_database(environment, options.contacts)
        results: dict[str, list[dict]] = {writer: [] for writer in WRITERS}
        for number in range(options.runs):
            for writer in WRITERS if number % 2 == 0 else reversed(WRITERS):
                figures = run(environment, writer, folder / f"{writer}.xlsx")
                results[writer].append(figures)
                print(f"run {number + 1} {writer}: {figures}", file=sys.stderr)
        same = same_cells(*(folder / f"{writer}.xlsx" for writer in WRITERS))
    rows = results[WRITERS[0]][0]["rows"]
    loads = [figures["load"] for runs in results.values() for figures in runs]
    print(
        f"{rows:,} rows, {options.runs} runs per writer interleaved, "
        f"load average {min(loads):.1f}-{max(loads):.1f}:\n"
    )
    print("| writer | wall s, median (min-max) | CPU s, median | peak memory | file size |")
    print("|---|---|---|---|---|")
    for writer, runs in results.items():
        walls = [figures["wall"] for figures in runs]
        print(
            f"| {writer} | {statistics.median(walls):.2f} ({min(walls):.2f}-{max(walls):.2f}) "
            f"| {statistics.median(figures['cpu'] for figures in runs):.2f} "
            f"| {max(figures['peak'] for figures in runs):.1f} MB "
            f"| {runs[0]['size'] / 1024 / 1024:.1f} MB |"
        )
    print(f"\nBoth files read back (the app's reader) to the same cells: {same}.")
    wall, cpu = (
        [statistics.median(figures[kind] for figures in results[writer]) for writer in WRITERS]
        for kind in ("wall", "cpu")
    )
    print(
        f"\nxlsxwriter / ours, medians: {wall[1] / wall[0]:.2f} times the wall time, "
        f"{cpu[1] / cpu[0]:.2f} times the CPU time."
    )


if __name__ == "__main__":
    main()
