"""``--source text``: one document per file or per JSON line, records with their own links, dead letters."""

import bz2
import gzip
import json
import re

import apache_beam as beam
import pyarrow.parquet as pq
import pytest
from pipeline_fixtures import linked_documents

from linkbert.pipeline import run as pipeline_run
from linkbert.pipeline import sources
from linkbert.pipeline.records import collect_counters
from linkbert.pipeline.sources.text import ReadText, file_doc_id, is_jsonl


def _read(pattern: str, out):
    """Run only the text source: (documents by id, dead letters, counters)."""
    pipeline = beam.Pipeline()
    outputs = pipeline | ReadText(pattern)
    for name in ("documents", "errors"):
        _ = (outputs[name] | f"Json{name}" >> beam.Map(json.dumps, sort_keys=True)
             | f"Write{name}" >> beam.io.WriteToText(str(out / name)))
    result = pipeline.run()
    result.wait_until_finish()

    def lines(name):
        return [json.loads(line) for path in sorted(out.glob(f"{name}*")) for line in path.read_text().splitlines()]

    return {d["doc_id"]: d for d in lines("documents")}, lines("errors"), collect_counters(result)


def test_file_names_and_layouts():
    assert file_doc_id("gs://b/books/alice.txt.gz") == "alice"
    assert file_doc_id("/x/README") == "README"
    assert file_doc_id("/x/vol.2.txt") == "vol.2"
    assert is_jsonl("a/wiki-00.jsonl.bz2") and is_jsonl("b.ndjson") and not is_jsonl("a/alice.txt")


def test_reads_files_and_json_lines_and_sends_a_malformed_line_to_the_dead_letters(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "books").mkdir(parents=True)
    (corpus / "books" / "alice.txt").write_text("Alice was beginning to get very tired.\r\n\r\nSo she was considering.\n")
    with gzip.open(corpus / "books" / "bob.txt.gz", "wt") as handle:
        handle.write("Bob built a boat.\n")
    (corpus / "books" / "blank.txt").write_text("  \n\n")
    (corpus / "books" / "latin1.txt").write_bytes("caf\xe9".encode("latin-1"))
    records = [
        {"id": "w1", "title": "First", "text": "The first page links to the second.",
         "links": [{"start": 28, "end": 34, "target": "w2"}]},
        {"id": 2, "text": "An integer id and no title.", "outlinks": ["w1", 7]},
        "not json {",
        {"id": "w3", "title": "No text"},
        {"id": "w4", "text": "A span past the end.", "links": [{"start": 3, "end": 99, "target": "w1"}]},
        {"id": "w5", "text": "   "},
    ]
    lines = [line if isinstance(line, str) else json.dumps(line) for line in records]
    lines.insert(2, "")  # a blank line is not a record
    with bz2.open(corpus / "pages.jsonl.bz2", "wt") as handle:
        handle.write("\n".join(lines) + "\n")

    documents, errors, counters = _read(f"{corpus}/books/*,{corpus}/*.jsonl.bz2", tmp_path)

    assert sorted(documents) == ["2", "alice", "bob", "w1"]
    alice = documents["alice"]
    assert alice["title"] == "alice" and alice["source"] == "text" and alice["outlinks"] == []
    assert alice["text"] == "Alice was beginning to get very tired.\n\nSo she was considering."
    assert alice["source_file"].endswith("books/alice.txt")
    assert documents["bob"]["text"] == "Bob built a boat."
    assert documents["w1"]["title"] == "First" and documents["w1"]["outlinks"] == ["w2"]
    assert documents["2"]["title"] == "2" and documents["2"]["outlinks"] == ["w1", "7"]

    line_of = {id(e): re.search(r"\.jsonl\.bz2: line (\d+): ", e["detail"]) for e in errors}
    by_line = {line_of[id(e)].group(1): e for e in errors if line_of[id(e)]}
    assert sorted(by_line) == ["4", "5", "6"]  # file lines: the blank line 3 is skipped
    assert by_line["4"]["reason"] == "bad_json" and by_line["4"]["source_file"].endswith("pages.jsonl.bz2")
    assert "pages.jsonl.bz2: line 4:" in by_line["4"]["detail"]
    assert by_line["5"]["record_id"] == "w3" and "'text' must be a string" in by_line["5"]["detail"]
    assert "not inside the 20-character text" in by_line["6"]["detail"]
    assert [e["reason"] for e in errors if e["record_id"] == "latin1"] == ["not_utf8"]

    # read = written + filtered + failed, and the reconciliation the pipeline prints says so
    assert counters["text.records_read"] == 10
    assert counters["text.written"] == 4
    assert counters["text.filtered.empty"] == 2  # blank.txt, w5
    assert counters["text.failed"] == 4
    balanced, summary = sources.get("text").reconcile(counters)
    assert balanced, summary
    assert summary[0].startswith("text: read 10 = written 4")


def test_a_pattern_matching_nothing_is_refused_before_the_run(tmp_path):
    (tmp_path / "a.txt").write_text("text")
    with pytest.raises(FileNotFoundError, match="no input file matches .*missing"):
        _read(f"{tmp_path}/*.txt,{tmp_path}/missing/*.jsonl", tmp_path / "out")


def test_the_same_id_twice_keeps_the_later_record_and_counts_the_other(tmp_path):
    (tmp_path / "a.jsonl").write_text(json.dumps({"id": "x", "text": "old"}) + "\n")
    (tmp_path / "b.jsonl").write_text(json.dumps({"id": "x", "text": "new"}) + "\n")
    documents, errors, counters = _read(str(tmp_path / "*.jsonl"), tmp_path / "out")
    assert documents["x"]["text"] == "new" and not errors
    assert counters["text.superseded"] == 1 and sources.get("text").reconcile(counters)[0]


def _linked_jsonl(path, num_docs):
    """The fixture corpus with ids as link targets: each "Entity j" mention is an anchor span to doc-j."""
    documents, _ = linked_documents(num_docs, seed=1)
    edges = set()
    with open(path, "w") as handle:
        for document in documents:
            source = f"doc-{document['doc_id']}"
            spans = []
            for match in re.finditer(r"near (Entity (\d+))", document["text"]):
                target = f"doc-{match.group(2)}"
                spans.append({"start": match.start(1), "end": match.end(1), "target": target})
                if target != source:
                    edges.add((source, target))
            spans.append({"start": 0, "end": 6, "target": "not-in-the-corpus"})
            record = {"id": source, "title": document["title"], "text": document["text"], "links": spans}
            handle.write(json.dumps(record) + "\n")
    return edges


@pytest.mark.slow
def test_records_with_id_links_give_hyperlink_edges(tmp_path):
    expected = _linked_jsonl(tmp_path / "linked.jsonl", 40)
    config, beam_args = pipeline_run.parse_config([
        "--source", "text", "--input", str(tmp_path / "*.jsonl"), "--output", str(tmp_path / "out"),
        "--vocab-size", "300", "--segment-tokens", "40", "--max-seq-len", "96", "--num-shards", "1",
        "--heldout-fraction", "0.1"])
    manifest = pipeline_run.run(config, beam_args)
    assert manifest["source_reconciled"] and manifest["options"]["links"] == "hyperlink"
    edges = pq.read_table(tmp_path / "out" / "edges").to_pylist()
    assert {(e["src"], e["dst"]) for e in edges} == expected
    assert {e["link_type"] for e in edges} == {"hyperlink"}
    counters = manifest["counters"]
    assert counters["links.hyperlink.dangling"] == 40  # the one unknown target per record
    assert counters["links.hyperlink.resolved_direct"] == len(expected)
    linked = [row for row in pq.read_table(tmp_path / "out" / "instances").to_pylist() if row["relation"] == 2]
    assert linked and all((row["doc_a"], row["doc_b"]) in expected for row in linked)
