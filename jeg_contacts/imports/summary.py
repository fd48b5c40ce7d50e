"""What an import did, row by row and in sum, and the two ways a confirmed import is refused."""

from collections import Counter
from dataclasses import dataclass, field
from enum import StrEnum

EXAMPLES_PER_OUTCOME = 100


class Outcome(StrEnum):
    CREATE = "create"
    UPDATE = "update"
    UNCHANGED = "unchanged"
    SKIP = "skip"
    REJECT = "reject"


@dataclass(slots=True)
class RowResult:
    number: int
    outcome: Outcome
    email: str
    name: str = ""
    organisation: str = ""
    detail: str = ""  # why a row is rejected or skipped, what an update changes
    contact_id: int | None = None


@dataclass
class ImportSummary:
    counts: Counter = field(default_factory=Counter)
    examples: dict[Outcome, list[RowResult]] = field(default_factory=dict)
    new_organisations: int = 0
    pending: int = 0  # new contacts to be emailed a confirmation link
    emails_sent: int = 0
    emails_held: int = 0  # pending contacts whose address had its emails for the day

    @property
    def rows(self) -> int:
        return sum(self.counts[outcome] for outcome in Outcome)

    def count(self, outcome: Outcome) -> int:
        return self.counts[outcome]

    def add(self, result: RowResult) -> None:
        """Count a row's result, keeping the first few of each outcome as examples."""
        self.counts[result.outcome] += 1
        examples = self.examples[result.outcome]
        if len(examples) < EXAMPLES_PER_OUTCOME:
            examples.append(result)

    def expected(self) -> dict[str, int]:
        """What a commit must find again to go ahead (the dry run's counts)."""
        return {outcome.value: self.counts[outcome] for outcome in Outcome} | {
            "pending": self.pending
        }


class PreviewOutdated(Exception):
    """The file would now import differently from the dry run that was confirmed."""

    def __init__(self, summary: ImportSummary) -> None:
        super().__init__("the import would now give other numbers")
        self.summary = summary


class TooManyPending(Exception):
    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"Every new pending contact is emailed a confirmation link; at most {limit:,} "
            f"per import, and this file has {count:,}. Split the file, or import them as "
            "active, saying why the people on the list agreed to be contacted."
        )
        self.message = str(self)
