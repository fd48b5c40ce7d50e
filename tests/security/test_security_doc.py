"""docs/security.md names a test for each defence: every one it names must exist."""

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_REFERENCE = re.compile(r"`(tests/[\w/]+\.py)::(\w+)`")


def test_every_test_named_in_the_security_doc_exists():
    doc = (ROOT / "docs" / "security.md").read_text(encoding="utf-8")
    references = _REFERENCE.findall(doc)
    assert len(references) > 50
    missing = [
        f"{path}::{name}"
        for path, name in references
        if not (ROOT / path).exists()
        or not re.search(rf"^def {name}\(", (ROOT / path).read_text(encoding="utf-8"), re.M)
    ]
    assert missing == []
