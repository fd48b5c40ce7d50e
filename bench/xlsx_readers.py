"""XLSX readers on the import's 100,000-row file: ours, python-calamine, openpyxl read-only.

    .venv/bin/pip install -e '.[bench]'   # python-calamine, for this benchmark only
    .venv/bin/python bench/xlsx_readers.py --contacts 100000 --runs 3

Builds a scratch SQLite database with `flask demo-data` and exports it as the import
benchmark does (bench/imports.py: every column an import reads). Each run is its own process
reading every row of that file as text cells, the readers alternating (ABBA), so all see the
same load; the load average is noted before each run. CPU time, wall time and the process's
peak resident memory are reported.

- "ours": `open_table` and every row of `Table.rows()`, as an import reads them (unpack
  limits, header, row limit and all).
- "calamine": python-calamine loads the first sheet and every row is turned into text.
- "openpyxl": `load_workbook(read_only=True)` and every row, values only.
- "expat floor": the standard library's expat parses the unpacked sheet with an empty
  start-element handler, nothing else. Any reader that looks at every element from Python
  (such as a scan run before handing the file to a library) costs at least this.
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

from harness import ROOT, demo_database, flask, scratch_environment
from imports import COLUMNS

sys.path.insert(0, str(ROOT))
READERS = ["ours", "calamine", "openpyxl", "expat floor"]


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise LookupError("VmHWM")


def _ours(path: Path) -> int:
    from jeg_contacts.imports.reading import open_table
    from jeg_contacts.imports.unpacking import UnpackLimits

    table = open_table(path, unpack_limits=UnpackLimits(total=256 * 1024 * 1024))
    return sum(1 for _ in table.rows())


def _calamine(path: Path) -> int:
    from python_calamine import CalamineWorkbook

    with CalamineWorkbook.from_path(str(path)) as workbook:
        sheet = workbook.get_sheet_by_index(0)
        return sum(1 for row in sheet.iter_rows() if [str(value) for value in row])


def _openpyxl(path: Path) -> int:
    from openpyxl import load_workbook

    workbook = load_workbook(path, read_only=True)
    rows = sum(
        1
        for row in workbook.active.iter_rows(values_only=True)
        if ["" if value is None else str(value) for value in row]
    )
    workbook.close()
    return rows


def _expat_floor(path: Path) -> int:
    import zipfile
    from xml.parsers import expat

    parser = expat.ParserCreate()
    parser.StartElementHandler = lambda tag, attributes: None
    with zipfile.ZipFile(path) as archive, archive.open("xl/worksheets/sheet1.xml") as sheet:
        while chunk := sheet.read(1024 * 1024):
            parser.Parse(chunk, False)
    parser.Parse(b"", True)
    return 0


def child(reader: str, path: str) -> None:
    read = {"ours": _ours, "calamine": _calamine, "openpyxl": _openpyxl,
            "expat floor": _expat_floor}[reader]  # fmt: skip
    wall, cpu = time.perf_counter(), time.process_time()
    rows = read(Path(path))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(json.dumps({"rows": rows, "wall": wall, "cpu": cpu, "peak": _peak_mb()}))


def run(reader: str, path: Path) -> dict:
    load = os.getloadavg()[0]
    result = subprocess.run(
        [sys.executable, __file__, "--child", reader, str(path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(result.stdout.splitlines()[-1]) | {"load": load}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3, help="runs per reader")
    parser.add_argument("--file", type=Path, help="an XLSX file to read instead of exporting")
    parser.add_argument("--readers", nargs="+", choices=READERS, default=READERS)
    parser.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.child:
        child(*options.child)
        return
    with tempfile.TemporaryDirectory() as scratch:
        path = options.file
        if path is None:
            folder = Path(scratch)
            environment = scratch_environment(folder)
            print(f"Generating {options.contacts:,} demo contacts…", file=sys.stderr)
            demo_database(environment, options.contacts)
            path = folder / "contacts.xlsx"
            flask(environment, "contacts", "export", "--format", "xlsx", "--columns", COLUMNS,
                  "--output", str(path))  # fmt: skip
        results: dict[str, list[dict]] = {reader: [] for reader in options.readers}
        for number in range(options.runs):
            order = options.readers if number % 2 == 0 else list(reversed(options.readers))
            for reader in order:
                figures = run(reader, path)
                results[reader].append(figures)
                print(f"run {number + 1} {reader}: {figures}", file=sys.stderr)
        size = path.stat().st_size / 1024 / 1024
    loads = [figures["load"] for runs in results.values() for figures in runs]
    print(
        f"{size:.1f} MB file, {options.runs} runs per reader interleaved, "
        f"load average {min(loads):.1f}-{max(loads):.1f}:\n"
    )
    print("| reader | rows | CPU s, median (min-max) | wall s, median | peak RSS |")
    print("|---|---|---|---|---|")
    for reader, runs in results.items():
        cpus = [figures["cpu"] for figures in runs]
        print(
            f"| {reader} | {runs[0]['rows']:,} "
            f"| {statistics.median(cpus):.2f} ({min(cpus):.2f}-{max(cpus):.2f}) "
            f"| {statistics.median(figures['wall'] for figures in runs):.2f} "
            f"| {max(figures['peak'] for figures in runs):.0f} MB |"
        )


if __name__ == "__main__":
    main()
