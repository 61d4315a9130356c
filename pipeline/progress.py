"""Progress of a long local run: input bytes read (of the total, known up front from the matched files'
sizes), records read, rate and ETA, printed to stderr every few seconds, as WikiExtractor and
``datasets`` users expect.

The DirectRunner reports Beam metrics only when the pipeline has finished, and in its multi-processing
mode the readers run in other processes. So the channel is a small file per process: readers count
(``add``) into this module, and a thread in each process writes the totals to
``$LINKBERT_PROGRESS_DIR/<pid>.json`` every half second (and at the end of every file or range read);
the launcher sums those files. It is a local channel for local runners: ``linkbert pipeline`` never
sets it on a remote runner, whose own UI shows progress, and without it counting does nothing.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import threading
import time

ENV = "LINKBERT_PROGRESS_DIR"
WRITE_SECONDS = 0.5
LOCAL_RUNNERS = {"", "direct", "directrunner", "switchingdirectrunner", "bundlebaseddirectrunner", "fnapirunner"}

_lock = threading.Lock()
_counts: dict[str, dict[str, int]] = {}  # progress directory -> name -> count (one run's, in this process)
_written: dict[str, dict[str, int]] = {}
_writer: threading.Thread | None = None


def add(name: str, n: int = 1) -> None:
    """Count ``n`` more ``name`` (``bytes`` of input, ``pages``, ``documents``) when a local run asked for progress."""
    directory = os.environ.get(ENV)
    if not directory or not n:
        return
    with _lock:
        counts = _counts.setdefault(directory, {})
        counts[name] = counts.get(name, 0) + n
    _start_writer()


def flush() -> None:
    """Write this process's counts now (at the end of a file, so the last figures are exact)."""
    with _lock:
        pending = {directory: dict(counts) for directory, counts in _counts.items() if counts != _written.get(directory)}
    for directory, counts in pending.items():
        try:
            temporary = os.path.join(directory, f".{os.getpid()}.{threading.get_ident()}.tmp")
            with open(temporary, "w", encoding="utf-8") as handle:
                json.dump(counts, handle)
            os.replace(temporary, os.path.join(directory, f"{os.getpid()}.json"))
            with _lock:
                _written[directory] = counts
        except OSError:  # the run is over and its directory gone: nothing left to report
            with _lock:
                _counts.pop(directory, None)


class _CountingReader:
    """A binary file that counts the bytes read from it as input ``bytes``, and flushes when closed."""

    def __init__(self, raw):
        self._raw = raw

    def read(self, *args):
        data = self._raw.read(*args)
        add("bytes", len(data))
        return data

    def readinto(self, buffer):
        n = self._raw.readinto(buffer)
        add("bytes", n or 0)
        return n

    def readable(self) -> bool:
        return True

    def close(self) -> None:
        flush()
        self._raw.close()

    def __getattr__(self, name):
        return getattr(self._raw, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def counting_bytes(raw):
    """``raw`` read through a counter of input bytes for the progress of a local run (``raw`` itself when
    no progress was asked for)."""
    return _CountingReader(raw) if os.environ.get(ENV) else contextlib.nullcontext(raw)


def _start_writer() -> None:
    global _writer
    if _writer is not None:
        return
    with _lock:
        if _writer is None:
            _writer = threading.Thread(target=_write_forever, name="linkbert-progress", daemon=True)
            _writer.start()


def _write_forever() -> None:
    while True:
        time.sleep(WRITE_SECONDS)
        flush()


def read_totals(directory: str) -> dict[str, int]:
    """The counts of every process of the run, summed."""
    totals: dict[str, int] = {}
    try:
        names = os.listdir(directory)
    except OSError:
        return totals
    for name in names:
        if not name.endswith(".json"):
            continue
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as handle:
                counts = json.load(handle)
        except (OSError, ValueError):  # being replaced: read it next time
            continue
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + int(value)
    return totals


def wanted(flag: bool | None, runner: str | None, is_tty: bool) -> bool:
    """--progress / --no-progress / neither (on when stderr is a terminal), and only on a local runner."""
    local = (runner or "").lower() in LOCAL_RUNNERS
    return local and (flag if flag is not None else is_tty)


def size(n: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(n) < 1024 or unit == "TiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TiB"


def duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


class Printer:
    """Prints the run's progress to ``stream`` every ``interval`` seconds from a thread, and a last line at ``stop``."""

    def __init__(self, directory: str, total_bytes: int, stream=None, interval: float | None = None,
                 is_tty: bool | None = None):
        self.directory, self.total_bytes = directory, total_bytes
        self.stream = stream or sys.stderr
        self.is_tty = self.stream.isatty() if is_tty is None else is_tty
        self.interval = interval or (2.0 if self.is_tty else 5.0)  # a log file gets fewer lines
        self.started = time.monotonic()
        self.first_bytes: tuple[float, int] | None = None  # (when, bytes) the first time input was seen read
        self.read_rate = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="linkbert-progress-printer", daemon=True)

    def start(self) -> Printer:
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._print(self.line(read_totals(self.directory), time.monotonic()), final=False)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        flush()  # the in-process runner's own counts
        self._print(self.line(read_totals(self.directory), time.monotonic(), final=True), final=True)

    def _print(self, line: str, final: bool) -> None:
        if self.is_tty:
            self.stream.write("\r\x1b[K" + line + ("\n" if final else ""))
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def line(self, totals: dict[str, int], now: float, final: bool = False) -> str:
        """``progress: 37.2% of 1.1 GiB input read (412.0 MiB), 1.8 MiB/s, ETA 6:03 | 12,345 pages, 5,678 documents``."""
        done = totals.get("bytes", 0)
        parts = []
        if done and self.first_bytes is None:
            self.first_bytes = (now, done)
        elapsed = now - self.started
        if self.total_bytes and not done and totals:  # records, but no reader that counts bytes
            parts.append(f"{size(self.total_bytes)} input")
        elif self.total_bytes:
            share = min(done / self.total_bytes, 1.0)
            text = f"{share:.1%} of {size(self.total_bytes)} input read ({size(done)})"
            since, before = self.first_bytes or (self.started, 0)
            # the rate since input was first seen read (start-up is not reading), once that spans a second;
            # kept from the moment all input was read
            rate = (done - before) / (now - since) if now - since >= 1 else done / elapsed if elapsed > 0 else 0.0
            if share >= 1.0:
                self.read_rate = self.read_rate or rate
                rate = self.read_rate
            if done and rate > 0:
                text += f", {size(rate)}/s"
            if final:
                text += f", {duration(elapsed)} elapsed"
            elif share >= 1.0:
                text += f", input read; later stages running, {duration(elapsed)} elapsed"
            elif rate > 0:
                text += f", ETA {duration((self.total_bytes - done) / rate)}"
            parts.append(text)
        records = [f"{totals[name]:,} {name}" for name in ("pages", "documents") if totals.get(name)]
        if records:
            parts.append(", ".join(records) + (f" ({totals.get('documents', 0) / elapsed:,.0f} documents/s)"
                                               if totals.get("documents") and elapsed > 0 else ""))
        return "progress: " + (" | ".join(parts) if parts else f"starting, {duration(elapsed)} elapsed")
