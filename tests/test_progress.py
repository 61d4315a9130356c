"""Progress of a long local run: counts written per process, summed and printed by the launcher with
the share of input read, rate and ETA; on stderr, on by default only on a terminal, never remote."""

import io
import json
import re

import pytest

from linkbert.cli import main as linkbert
from linkbert.pipeline import progress


def test_progress_is_shown_on_local_runners_only_and_by_default_on_a_terminal():
    assert progress.wanted(None, None, is_tty=True) and not progress.wanted(None, None, is_tty=False)
    assert progress.wanted(True, "DirectRunner", is_tty=False) and not progress.wanted(False, None, is_tty=True)
    for remote in ("DataflowRunner", "PortableRunner", "FlinkRunner"):
        assert not progress.wanted(True, remote, is_tty=True)


def test_printer_sums_every_process_and_gives_share_rate_and_eta(tmp_path):
    (tmp_path / "101.json").write_text(json.dumps({"bytes": 300, "pages": 10}))
    (tmp_path / "102.json").write_text(json.dumps({"bytes": 200, "documents": 4}))
    (tmp_path / ".103.tmp").write_text("{half written")
    assert progress.read_totals(str(tmp_path)) == {"bytes": 500, "pages": 10, "documents": 4}
    printer = progress.Printer(str(tmp_path), total_bytes=1000, stream=io.StringIO(), is_tty=False)
    printer.started = 0.0
    assert printer.line({"bytes": 100}, now=2.0) == "progress: 10.0% of 1000 B input read (100 B), 50 B/s, ETA 0:18"
    line = printer.line(progress.read_totals(str(tmp_path)), now=6.0)  # 400 more bytes in 4 s
    assert line == "progress: 50.0% of 1000 B input read (500 B), 100 B/s, ETA 0:05 | 10 pages, 4 documents (1 documents/s)"
    done = printer.line({"bytes": 1000, "documents": 9}, now=9.0, final=True)
    assert done.startswith("progress: 100.0% of 1000 B input read (1000 B), ") and done.endswith("0:09 elapsed | 9 documents (1 documents/s)")
    assert progress.size(3 * 2**30) == "3.0 GiB" and progress.duration(3725) == "1:02:05"


def test_counting_reader_counts_bytes_into_this_processs_file(tmp_path, monkeypatch):
    source = tmp_path / "input.bin"
    source.write_bytes(b"x" * 5000)
    with open(source, "rb") as raw, progress.counting_bytes(raw) as counted:  # no progress asked: raw itself
        assert counted is raw and len(counted.read()) == 5000
    monkeypatch.setenv(progress.ENV, str(tmp_path / "progress"))
    (tmp_path / "progress").mkdir()
    with open(source, "rb") as raw, progress.counting_bytes(raw) as counted:
        assert counted.read(1000) == b"x" * 1000 and len(counted.read()) == 4000
    assert progress.read_totals(str(tmp_path / "progress")) == {"bytes": 5000}


@pytest.mark.slow
def test_a_local_run_in_worker_processes_prints_its_progress_to_stderr(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    assert linkbert(["synth", "wiki", "--docs", "40", "--seed", "4", "--out", str(corpus)]) == 0
    dump = next(corpus.glob("*.xml.bz2"))
    output = tmp_path / "out"
    capsys.readouterr()
    assert linkbert(["pipeline", "--source", "wikipedia", "--input", str(dump), "--output", str(output),
                     "--vocab-size", "500", "--segment-tokens", "32", "--max-seq-len", "64", "--progress",
                     "--direct_running_mode=multi_processing", "--direct_num_workers=2"]) == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if line.startswith("progress:")]
    manifest = json.loads((output / "manifest.json").read_text())
    pages, documents = manifest["counters"]["wikipedia.pages_read"], manifest["tables"]["documents"]["rows"]
    # pages and bytes are counted by the readers in the worker processes, documents after them
    assert re.fullmatch(rf"progress: 100\.0% of {re.escape(progress.size(dump.stat().st_size))} input read \(.*\), "
                        rf".*elapsed \| {pages} pages, {documents} documents \(.* documents/s\)", lines[-1]), lines
