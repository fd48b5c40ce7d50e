"""plain_csv_line, the CSV export's shortcut, writes what csv.writer writes."""

import csv
import io
import random

import pytest

from jeg_contacts.spreadsheets import plain_csv_line

PIECES = ["", " ", "a", "Zoë", "МЧС", "李", "'=1+2", ",", ";", "\t", '"', "\r", "\n", "\r\n",
          "\\", "'", "|", "\x00", "\u2028", "  x  ", "x,y", "1.5", "None"]  # fmt: skip


def _written(values: list[str], delimiter: str) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, delimiter=delimiter, lineterminator="\r\n").writerow(values)
    return buffer.getvalue()


@pytest.mark.parametrize("delimiter", [",", ";", "\t"])
def test_plain_csv_lines_are_what_csv_writer_writes(delimiter):
    generator = random.Random(5)
    plain = 0
    for _ in range(20_000):
        values = [
            "".join(generator.choices(PIECES, k=generator.randint(0, 3)))
            for _cell in range(generator.randint(1, 6))
        ]
        line = plain_csv_line(values, delimiter)
        if line is not None:
            plain += 1
            assert line + "\r\n" == _written(values, delimiter), values
    # Both kinds of rows were tried.
    assert 2_000 < plain < 18_000
