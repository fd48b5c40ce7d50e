"""What every benchmark needs: a scratch SQLite instance, `flask` commands run as child
processes, and the peak memory of a process."""

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FLASK = str(Path(sys.executable).with_name("flask"))


def scratch_environment(folder: Path, database: str = "bench.db", **extra: str) -> dict[str, str]:
    """The environment of an app instance living in `folder`, on SQLite."""
    return {
        **os.environ,
        "INSTANCE_PATH": str(folder),
        "DATABASE_URL": f"sqlite:///{folder / database}",
        "SECRET_KEY": "bench",
        "OUTBOX_DIR": str(folder / "outbox"),
        **extra,
    }


def flask(environment: dict[str, str], *args: str, stdin: str | None = None) -> str:
    """Run one `flask --app wsgi` command to completion; its standard output."""
    return subprocess.run(
        [FLASK, "--app", "wsgi", *args],
        env=environment,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        input=stdin,
    ).stdout


def demo_database(environment: dict[str, str], contacts: int) -> None:
    """Migrations, topics and `contacts` demo contacts (which ends with ANALYZE)."""
    flask(environment, "db", "upgrade")
    flask(environment, "seed")
    flask(environment, "demo-data", "--contacts", str(contacts))


class PeakMemory:
    """Watches a process's high-water mark of resident memory (VmHWM) until stopped."""

    def __init__(self, pid: int) -> None:
        self.status = Path(f"/proc/{pid}/status")
        self.megabytes = 0.0
        self._done = threading.Event()
        self._watcher = threading.Thread(target=self._watch)
        self._watcher.start()

    def _watch(self) -> None:
        while not self._done.is_set():
            try:
                for line in self.status.read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        self.megabytes = max(self.megabytes, int(line.split()[1]) / 1024)
            except OSError:
                return
            time.sleep(0.1)

    def stop(self) -> float:
        self._done.set()
        self._watcher.join()
        return self.megabytes


def timed_command(environment: dict[str, str], *args: str) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one `flask` command run as its own process."""
    started = time.perf_counter()
    process = subprocess.Popen(
        [FLASK, "--app", "wsgi", *args],
        env=environment,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    memory = PeakMemory(process.pid)
    _, errors = process.communicate()
    peak = memory.stop()
    if process.returncode:
        raise RuntimeError(f"flask {' '.join(args)} failed:\n{errors.decode()}")
    return time.perf_counter() - started, peak
