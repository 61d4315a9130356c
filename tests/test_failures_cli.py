"""Losses exit non-zero with one line naming the file and DIR/errors/; options and paths are checked
at the edge before any work; reruns never clobber (issue 14). Bad inputs are generated here."""

import argparse
import gzip
import io
import json
import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from apache_beam.io.filesystem import FileMetadata, FileSystem

from linkbert.cli import main
from linkbert.pipeline import run as pipeline_run
from linkbert.pipeline.outcome import losses_exit_code
from linkbert.pipeline.preflight import UsageError, check_output
from linkbert.pipeline.sources.pmc import ParsePmcFile
from pipeline_fixtures import linked_documents, memory_source
from test_failures_wiki import dump, page


def pipeline(capsys, *args) -> tuple[int, str]:
    """``linkbert pipeline ARGS`` in-process -> (exit code, stderr)."""
    try:
        code = main(["pipeline", *args])
    except SystemExit as exc:  # argparse
        code = exc.code
    return code, capsys.readouterr().err


def last_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.startswith(("linkbert pipeline", "linkbert report", "linkbert pipeline:"))]
    assert len(lines) == 1, err
    return lines[0]


@pytest.mark.parametrize("option, value", [
    ("--segment-tokens", "0"), ("--num-shards", "-3"), ("--num-shards", "0"), ("--max-seq-len", "2"),
    ("--dupe-factor", "0"), ("--heldout-fraction", "1.5"), ("--rows-per-shard", "0"), ("--wiki-range-mb", "0"),
    ("--namespaces", "main"),
])
def test_numeric_options_are_checked_before_any_work(tmp_path, capsys, option, value):
    out = tmp_path / "out"
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(tmp_path / "x.xml"), "--output", str(out),
                         option, value)
    assert code == 2 and option in err and value in err and not out.exists()
    assert len(err.strip().splitlines()) == 2  # a one-line usage and the one-line error, not 20 lines of options


def test_max_seq_len_below_two_segments_is_refused(tmp_path, capsys):
    (tmp_path / "x.xml").write_bytes(dump([page(1)]))
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(tmp_path / "x.xml"),
                         "--output", str(tmp_path / "out"), "--max-seq-len", "300")
    assert code == 2 and "--max-seq-len 300 is below two segments" in last_line(err)
    assert not (tmp_path / "out" / "manifest.json").exists()


def test_input_matching_nothing_and_unwritable_output_are_one_line(tmp_path, capsys):
    code, err = pipeline(capsys, "--source", "pubmed", "--input", str(tmp_path / "nothing-*.xml.gz"),
                         "--output", str(tmp_path / "out"))
    assert code == 2 and "matches no file" in last_line(err) and "nothing-*.xml.gz" in err
    assert "Traceback" not in err
    (tmp_path / "a.xml").write_bytes(dump([page(1)]))
    (tmp_path / "file").write_text("not a directory")
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(tmp_path / "a.xml"),
                         "--output", str(tmp_path / "file" / "out"))
    assert code == 2 and "is not writable" in last_line(err) and "Traceback" not in err


def test_non_empty_output_is_refused_unless_overwrite_clears_it(tmp_path, capsys):
    (tmp_path / "a.xml").write_bytes(dump([page(1)]))
    out = tmp_path / "out"
    (out / "instances").mkdir(parents=True)
    (out / "instances" / "train-00000-of-00003.parquet").write_bytes(b"earlier run")
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(tmp_path / "a.xml"), "--output", str(out))
    assert code == 2 and "already holds 1 file(s)" in last_line(err) and "--overwrite" in err
    assert (out / "instances" / "train-00000-of-00003.parquet").exists()
    check_output(argparse.Namespace(output=str(out), overwrite=True))
    assert not list(p for p in out.rglob("*") if p.is_file())


def test_a_bad_page_exits_1_naming_file_and_errors_after_writing_the_good_pages(tmp_path, capsys):
    pages = [page(i) for i in range(1, 41)]
    data = dump(pages)
    bad = data.index(b"<id>7</id>") + 40
    source = tmp_path / "wiki.xml"
    source.write_bytes(data[:bad] + b"\xff" + data[bad:])
    out = tmp_path / "out"
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(source), "--output", str(out),
                         "--vocab-size", "200")
    line = last_line(err)
    assert code == 1 and str(source) in line and f"{out}/errors/" in line and "wikipedia.failed" in line
    assert f"{source} (bad_xml: record 7)" in line  # the file and the record
    documents = ds.dataset(str(out / "documents"), format="parquet").to_table().column("doc_id").to_pylist()
    assert sorted(map(int, documents)) == [i for i in range(1, 41) if i != 7]
    errors = [json.loads(line) for path in (out / "errors").glob("errors*") for line in path.open()]
    assert [(e["record_id"], e["reason"]) for e in errors] == [("7", "bad_xml")]
    assert (out / "README.md").exists()


def test_pubmed_where_every_file_fails_exits_1(tmp_path, capsys):
    for name in ("a.xml.gz", "b.xml.gz"):
        (tmp_path / name).write_bytes(gzip.compress(b"<PubmedArticleSet><PubmedArticle>")[:-6])
    code, err = pipeline(capsys, "--source", "pubmed", "--input", str(tmp_path / "*.xml.gz"),
                         "--output", str(tmp_path / "out"), "--vocab-size", "200")
    line = last_line(err)
    assert code == 1 and "pubmed.files_failed" in line and str(tmp_path / "a.xml.gz") in line
    assert "no document was written" in line and "do not reconcile" not in line  # the failed files say it


def test_all_records_filtered_exits_1_saying_why(tmp_path, capsys, real_data):
    source = real_data("pubmed/medline/pubmed-29768149.xml")
    code, err = pipeline(capsys, "--source", "pubmed", "--input", str(source), "--output", str(tmp_path / "out"),
                         "--vocab-size", "200", "--min-abstract-words", "100000")
    line = last_line(err)
    assert code == 1 and "no document was written" in line and "short_abstract 1" in line
    assert "--min-abstract-words 100000" in line


def test_a_pubmed_file_given_to_wikipedia_says_which_source_fits(tmp_path, capsys, real_data):
    source = real_data("pubmed/medline/pubmed-29768149.xml")
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(source), "--output", str(tmp_path / "out"),
                         "--vocab-size", "200")
    line = last_line(err)
    assert code == 1 and f"{source} (wrong_format: use --source pubmed)" in line
    errors = [json.loads(x) for p in (tmp_path / "out" / "errors").glob("errors*") for x in p.open()]
    assert len(errors) == 1 and "use --source pubmed" in errors[0]["detail"]


def _memory_run(tmp_path, name, documents, redirects=None, extra=()):
    config, _ = pipeline_run.parse_config(["--source", "wikipedia", "--input", "memory", "--output",
                                           str(tmp_path / name), "--vocab-size", "300", *extra])
    return config, pipeline_run.run(config, [], memory_source(documents, redirects))


def test_one_document_and_no_links_exit_1_saying_why(tmp_path, capsys):
    documents, redirects = linked_documents(1)
    documents[0]["text"] = "Entity 0 is a short page."
    config, manifest = _memory_run(tmp_path, "one", documents, redirects)
    capsys.readouterr()
    assert losses_exit_code(config, manifest) == 1
    assert "no instance was written from 1 document(s): pairing needs at least two documents" in last_line(
        capsys.readouterr().err)
    documents, _ = linked_documents(12)
    for document in documents:
        document["outlinks"] = ["Nowhere"]
    config, manifest = _memory_run(tmp_path, "unlinked", documents, [], ["--heldout-fraction", "0"])
    capsys.readouterr()
    assert losses_exit_code(config, manifest) == 1
    line = last_line(capsys.readouterr().err)
    assert "no linked instance although --links hyperlink" in line and "links.hyperlink.dangling" in line


def test_pmc_efetch_wrapper_reads_every_article(tmp_path, real_data):
    articles = sorted(Path(real_data("pubmed/pmc")).glob("*.nxml"))[:2]
    bodies = []
    for path in articles:
        text = path.read_text(encoding="utf-8")
        bodies.append(text[text.index("<article"):])
    wrapped = tmp_path / "efetch.xml"
    wrapped.write_text('<?xml version="1.0"?>\n<pmc-articleset>' + "".join(bodies) + "</pmc-articleset>\n", encoding="utf-8")
    fn = ParsePmcFile(include_body=False)
    fn.setup()
    out = list(fn.process((str(wrapped), None)))  # (path, None): read the file itself
    versions = [item for item in out if isinstance(item, tuple)]
    assert len(versions) == 2 and not [item for item in out if not isinstance(item, tuple)]
    single = {fn.process((str(p), None)).__next__()[0] for p in articles}
    assert {doc_id for doc_id, _ in versions} == single


def test_report_exits_1_on_a_failing_check(tmp_path, capsys):
    documents, redirects = linked_documents(30)
    config, manifest = _memory_run(tmp_path, "rep", documents, redirects, ["--heldout-fraction", "0.1"])
    assert main(["report", config.output]) == 0
    letter = {"stage": "wikipedia.read", "source_file": "x.xml", "record_id": "7", "reason": "bad_xml", "detail": "x"}
    (Path(config.output) / "errors" / "errors-extra.jsonl").write_text(json.dumps(letter) + "\n")
    capsys.readouterr()
    assert main(["report", config.output, "--output", str(tmp_path / "warn")]) == 0  # a dead letter is a WARN
    assert "[WARN] dead letters" in capsys.readouterr().out
    assert main(["report", config.output, "--output", str(tmp_path / "strict"), "--strict"]) == 1
    line = last_line(capsys.readouterr().err)
    assert "FAIL or WARN (--strict)" in line and "dead letters" in line and config.output in line
    path = Path(config.output) / "manifest.json"
    broken = json.loads(path.read_text())
    broken["tables"]["documents"]["rows"] += 5
    path.write_text(json.dumps(broken))
    capsys.readouterr()
    assert main(["report", config.output, "--output", str(tmp_path / "report2")]) == 1
    line = last_line(capsys.readouterr().err)
    assert "FAIL" in line and "manifest matches the files" in line and config.output in line
    shutil.rmtree(tmp_path / "report2")


def test_a_wikipedia_file_given_to_pubmed_says_which_source_fits(tmp_path):
    from linkbert.pipeline.sources.pubmed import ParseMedlineFile

    path = tmp_path / "wiki.xml"
    path.write_bytes(dump([page(1)]))
    fn = ParseMedlineFile(min_abstract_words=0)
    fn.setup()
    out = list(fn.process((str(path), path.stat().st_size)))
    assert len(out) == 1 and out[0].value["reason"] == "not_medline"
    assert str(path) in out[0].value["detail"] and "use --source wikipedia" in out[0].value["detail"]


def test_a_missing_tokenizer_path_is_one_line(tmp_path, capsys):
    (tmp_path / "a.xml").write_bytes(dump([page(1)]))
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(tmp_path / "a.xml"),
                         "--output", str(tmp_path / "out"), "--tokenizer", "bert-base-uncased")
    assert code == 2 and "--tokenizer bert-base-uncased: no such local" in last_line(err)


def test_every_kind_of_damaged_dump_exits_1_and_keeps_the_good_pages(tmp_path, capsys):
    import bz2

    good = dump([page(i) for i in range(1, 21)])
    files = {
        "empty.xml": b"",
        "bomb.xml": b'<!DOCTYPE mediawiki [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>\n' + dump([page(30, "&b;")]),
        "oversized.xml": dump([page(40), page(41, "word " * (3 << 20)), page(42)]),
        "truncated.xml.bz2": bz2.compress(dump([page(i) for i in range(50, 60)]))[:-40],
        "good.xml": good,
    }
    for name, content in files.items():
        (tmp_path / name).write_bytes(content)
    out = tmp_path / "out"
    code, err = pipeline(capsys, "--source", "wikipedia", "--input", str(tmp_path / "*.xml*"), "--output", str(out),
                         "--vocab-size", "200", "--max-seq-len", "512")
    line = last_line(err)
    assert code == 1 and f"{out}/errors/" in line and "more file(s)" in line
    errors = [json.loads(x) for p in (out / "errors").glob("errors*") for x in p.open()]
    by_file = {Path(e["source_file"]).name: e["reason"] for e in errors}
    assert by_file == {"empty.xml": "empty_file", "bomb.xml": "unsafe_xml", "oversized.xml": "page_too_large",
                       "truncated.xml.bz2": "truncated"}
    documents = set(map(int, ds.dataset(str(out / "documents"), format="parquet").to_table().column("doc_id").to_pylist()))
    assert set(range(1, 21)) | {40, 42} <= documents and not {30, 41} & documents


class _MemoryFileSystem(FileSystem):
    """A bucket-like filesystem in memory (``memtest://``), to show that --overwrite clears a remote
    output through FileSystems, as on gs://: object names only, no directories."""

    objects: dict[str, bytes] = {}

    @classmethod
    def scheme(cls):
        return "memtest"

    def join(self, base, *paths):
        return "/".join([base.rstrip("/"), *(p.strip("/") for p in paths)])

    def split(self, path):
        head, _, tail = path.rstrip("/").rpartition("/")
        return head, tail

    def has_dirs(self):
        return False

    def mkdirs(self, path):
        pass

    def _list(self, prefix):
        for name, data in list(self.objects.items()):
            if name.startswith(prefix):
                yield FileMetadata(name, len(data))

    def create(self, path, mime_type="application/octet-stream", compression_type=None):
        objects = self.objects

        class Sink(io.BytesIO):
            def close(self):
                objects[path] = self.getvalue()
                super().close()

        return Sink()

    def open(self, path, mime_type="application/octet-stream", compression_type=None):
        return io.BytesIO(self.objects[path])

    def exists(self, path):
        return path in self.objects

    def delete(self, paths):
        for path in paths:
            del self.objects[path]

    def size(self, path):
        return len(self.objects[path])

    def last_updated(self, path):
        return 0.0

    def metadata(self, path):
        return FileMetadata(path, len(self.objects[path]))

    def copy(self, sources, destinations):
        raise NotImplementedError

    def rename(self, sources, destinations):
        raise NotImplementedError


def test_overwrite_clears_a_bucket_output_through_filesystems():
    objects = _MemoryFileSystem.objects
    objects.clear()
    objects.update({"memtest://bucket/run/instances/train-00000-of-00003.parquet": b"earlier",
                    "memtest://bucket/run/manifest.json": b"{}", "memtest://bucket/other/keep.txt": b"not ours"})
    with pytest.raises(UsageError, match=r"--output memtest://bucket/run already holds 2 file\(s\) of an earlier run"):
        check_output(argparse.Namespace(output="memtest://bucket/run", overwrite=False))
    assert len(objects) == 3
    check_output(argparse.Namespace(output="memtest://bucket/run", overwrite=True))
    assert list(objects) == ["memtest://bucket/other/keep.txt"]  # cleared, the write probe removed, the rest kept


def test_a_cut_pmc_efetch_result_keeps_its_whole_articles_and_exits_1(tmp_path, capsys, real_data):
    articles = sorted(Path(real_data("pubmed/pmc")).glob("*.nxml"))[:3]
    bodies = [path.read_text(encoding="utf-8") for path in articles]
    bodies = [text[text.index("<article"):] for text in bodies]
    whole = '<?xml version="1.0"?>\n<pmc-articleset>' + "".join(bodies) + "</pmc-articleset>\n"
    cut = tmp_path / "efetch.xml"
    cut.write_text(whole[: whole.index(bodies[2]) + len(bodies[2]) // 2], encoding="utf-8")  # inside the third
    out = tmp_path / "out"
    code, err = pipeline(capsys, "--source", "pmc", "--input", str(cut), "--output", str(out), "--vocab-size", "200",
                         "--links", "none", "--min-abstract-words", "0")
    line = last_line(err)
    assert code == 1 and "lost 1 pmc.failed" in line and f"{cut} (xml_syntax)" in line
    fn = ParsePmcFile(include_body=False)
    fn.setup()
    expected = {next(fn.process((str(path), None)))[0] for path in articles[:2]}
    documents = ds.dataset(str(out / "documents"), format="parquet").to_table()
    assert set(documents.column("doc_id").to_pylist()) == expected
    errors = [json.loads(x) for p in (out / "errors").glob("errors*") for x in p.open()]
    assert len(errors) == 1 and "article 2 of the <pmc-articleset>" in errors[0]["detail"]


def test_max_seq_len_without_room_for_the_special_tokens_warns(caplog):
    from linkbert.pipeline.preflight import check_option_combinations

    with caplog.at_level("WARNING"):
        check_option_combinations(argparse.Namespace(segment_tokens=254, max_seq_len=510))
    assert "loses up to 1 token(s) of B" in caplog.text and "--max-seq-len 511 avoids it" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING"):
        check_option_combinations(argparse.Namespace(segment_tokens=254, max_seq_len=512))
    assert caplog.text == ""
