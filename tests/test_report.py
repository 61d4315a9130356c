import html
import json
import re
import shutil
import sys
from html.parser import HTMLParser
from pathlib import Path

import pyarrow.dataset as ds
import pytest
from PIL import Image
from pipeline_fixtures import linked_documents, memory_source

import linkbert.pipeline.run as pipeline_run
from linkbert.cli import main as cli_main
from linkbert.pipeline.instances.pairing import RELATION_NAMES
from linkbert.pipeline.report.build import ReportError, build_report

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class _Page(HTMLParser):
    """Tables (rows of cell texts), <img> sources and the A/B spans of the samples of an HTML page."""

    def __init__(self, text: str):
        super().__init__()
        self.tables, self.images, self.spans = [], [], []
        self._cell = self._span = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table":
            self.tables.append([])
        elif tag == "tr":
            self.tables[-1].append([])
        elif tag in ("td", "th"):
            self._cell = ""
        elif tag == "img":
            self.images.append(attrs["src"])
        elif tag == "span" and attrs.get("class") in ("seg-a", "seg-b") and "data-doc" in attrs:
            self._span = [attrs["class"], attrs["data-doc"], int(attrs["data-seg"]), ""]

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self.tables[-1][-1].append(self._cell.strip())
            self._cell = None
        elif tag == "span" and self._span is not None:
            self.spans.append(tuple(self._span))
            self._span = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data
        if self._span is not None:
            self._span[3] += data

    def table_with(self, first_header: str) -> dict[str, list[str]]:
        table = next(t for t in self.tables if t and t[0] and t[0][0] == first_header)
        return {row[0]: row[1:] for row in table[1:]}


@pytest.fixture(scope="module")
def pipeline_output(tmp_path_factory):
    documents, redirects = linked_documents(40)
    output = str(tmp_path_factory.mktemp("report") / "out")
    config, _ = pipeline_run.parse_config(
        ["--source", "wikipedia", "--input", "memory", "--output", output, "--vocab-size", "400",
         "--heldout-fraction", "0.1", "--num-shards", "2"]
    )
    manifest = pipeline_run.run(config, [], memory_source(documents, redirects))
    return output, manifest, {document["doc_id"]: document for document in documents}


@pytest.fixture(scope="module")
def report_page(pipeline_output):
    output, _, _ = pipeline_output
    assert cli_main(["report", output]) == 0
    with open(f"{output}/report/index.html", encoding="utf-8") as handle:
        text = handle.read()
    return build_report(output, f"{output}/report-again"), text, _Page(text)


def _number(cell: str) -> int:
    return int(cell.split()[0].replace(",", ""))


@pytest.mark.slow
def test_report_page_references_valid_plots_and_shows_manifest_counts(pipeline_output, report_page):
    output, manifest, _ = pipeline_output
    report, text, page = report_page
    assert set(page.images) == {"relation_mix.png", "lengths.png", "in_degree.png", "links_resolved.png"}
    for name in page.images:
        path = f"{output}/report/{name}"
        with open(path, "rb") as handle:
            assert handle.read(8) == PNG_SIGNATURE, name
        with Image.open(path) as image:
            image.verify()
            assert image.size[0] >= 600 and image.size[1] >= 150, (name, image.size)

    tables = page.table_with("table")
    for table, info in manifest["tables"].items():
        listed_rows, on_disk_rows, listed_files, on_disk_files = tables[table][1:5]
        assert _number(listed_rows) == _number(on_disk_rows) == info["rows"]
        assert _number(listed_files) == _number(on_disk_files) == len(info["files"])
    splits = page.table_with("split")
    assert set(splits) == set(manifest["splits"])
    for split, info in manifest["splits"].items():
        assert _number(splits[split][0]) == info["rows"]
        assert _number(splits[split][1]) == info["tokens"]
        for column, name in enumerate(RELATION_NAMES.values(), start=2):
            assert _number(splits[split][column]) == info["relations"].get(name, 0)
    assert manifest["tokenizer"]["fingerprint"] in text

    checks = {check.name: check for check in report.checks}
    assert not [check for check in report.checks if check.status == "fail"], report.checks
    assert checks["manifest matches the files"].status == "ok"
    assert checks["tokenizer fingerprint"].status == "ok"
    counters = manifest["counters"]
    resolved = counters["links.hyperlink.resolved_direct"] + counters["links.hyperlink.resolved_via_redirect"]
    assert report.link_resolution["hyperlink"]["resolved_direct"] == counters["links.hyperlink.resolved_direct"]
    assert f"{resolved / sum(report.link_resolution['hyperlink'].values()):.1%}" in checks["hyperlink links resolved"].detail
    assert {split: sum(counts.values()) for split, counts in report.relation_counts.items()} == {
        split: info["rows"] for split, info in manifest["splits"].items()}


@pytest.mark.slow
def test_sample_instances_decode_to_the_text_of_their_documents(pipeline_output, report_page):
    from transformers import AutoTokenizer

    output, _, documents = pipeline_output
    report, _, page = report_page
    tokenizer = AutoTokenizer.from_pretrained(f"{output}/tokenizer")
    instances = ds.dataset(f"{output}/instances").to_table().to_pylist()
    by_anchor = {(row["round"], row["doc_a"], row["seg_a"]): row for row in instances}
    segments = {(row["doc_id"], row["seg_idx"]): row["input_ids"] for row in ds.dataset(f"{output}/segments").to_table().to_pylist()}

    assert len(report.samples) == 12
    assert sorted(sample.relation for sample in report.samples) == [0] * 4 + [1] * 4 + [2] * 4
    assert len(page.spans) == 2 * len(report.samples)
    for sample, (span_a, span_b) in zip(report.samples, zip(page.spans[::2], page.spans[1::2])):
        row = by_anchor[(sample.round, sample.doc_a, sample.seg_a)]
        assert (row["relation"], row["doc_b"], row["seg_b"]) == (sample.relation, sample.doc_b, sample.seg_b)
        a_ids = row["input_ids"][1: row["b_start"] - 1]
        b_ids = row["input_ids"][row["b_start"]: -1]
        assert segments[(sample.doc_a, sample.seg_a)][: len(a_ids)] == a_ids
        assert segments[(sample.doc_b, sample.seg_b)][: len(b_ids)] == b_ids
        for (css_class, doc, seg, shown), ids in ((span_a, a_ids), (span_b, b_ids)):
            assert css_class in ("seg-a", "seg-b") and (doc, seg) in {(sample.doc_a, sample.seg_a), (sample.doc_b, sample.seg_b)}
            shown = html.unescape(shown)
            assert shown == tokenizer.decode(ids)
            # The decoded text is a piece of the original document (lower-cased, whitespace normalised).
            assert shown in " ".join(documents[doc]["text"].lower().split())
        assert span_a[:3] == ("seg-a", sample.doc_a, sample.seg_a) and span_b[:3] == ("seg-b", sample.doc_b, sample.seg_b)
        assert not sample.problems
    rendered = re.findall(r'<span class="rel rel-(\d)">(\w+)</span>', report_page[1])
    assert [(int(relation), name) for relation, name in rendered] == [
        (sample.relation, RELATION_NAMES[sample.relation]) for sample in report.samples]


@pytest.mark.slow
def test_report_falls_back_to_outlinks_counts_dead_letters_and_flags_a_corrupt_shard(pipeline_output, tmp_path):
    source, manifest, documents = pipeline_output
    output = tmp_path / "out"
    shutil.copytree(source, output, ignore=shutil.ignore_patterns("report*"))
    without_counters = {key: value for key, value in manifest.items() if key != "counters"}
    (output / "manifest.json").write_text(json.dumps(without_counters))
    records = [
        {"stage": "source", "source_file": "dump.xml", "record_id": "12", "reason": "parse_error", "detail": "bad <ref>"},
        {"stage": "source", "source_file": "dump.xml", "record_id": "13", "reason": "parse_error", "detail": "bad table"},
        {"stage": "segment", "source_file": "dump.xml", "record_id": "14", "reason": "segment_error", "detail": "boom"},
    ]
    lines = [json.dumps(records[0]), json.dumps(records[1]), "{not json", json.dumps(records[2])]
    (output / "errors" / "errors-00000-of-00001.jsonl").write_text("\n".join(lines) + "\n")
    corrupted = sorted((output / "instances").glob("train-*.parquet"))[0]
    corrupted.write_bytes(b"not a parquet file")

    report = build_report(str(output))
    text = (output / "report" / "index.html").read_text(encoding="utf-8")

    outlinks = sum(len(document["outlinks"]) for document in documents.values())
    edges = manifest["tables"]["edges"]["rows"]
    assert report.link_resolution_source != "counters"
    assert report.link_resolution == {"hyperlink": {"edges": edges, "not an edge": outlinks - edges}}
    assert report.dead_letters == {("segment", "segment_error"): 1, ("source", "parse_error"): 2}
    assert "errors-00000-of-00001.jsonl:3" in text
    assert "Dead letters: 3" in text
    checks = {check.name: check for check in report.checks}
    assert checks["manifest matches the files"].status == "fail"
    assert "instances" in checks["manifest matches the files"].detail
    assert checks["schema versions readable"].status == "fail"
    assert f"instances/{corrupted.name}" in checks["schema versions readable"].detail
    assert checks["relation counts match the manifest"].status == "fail"
    assert checks["dead letters"].status == "warn"
    for name in ("relation_mix.png", "lengths.png", "in_degree.png", "links_resolved.png"):
        assert (output / "report" / name).read_bytes().startswith(PNG_SIGNATURE)


@pytest.mark.slow
def test_report_reads_a_bounded_number_of_instance_rows_whatever_their_count(pipeline_output, tmp_path, monkeypatch):
    """Counts per split and relation come from the manifest (checked against each file's footer); the
    plots and sample instances from a bounded head of the shards: 8x the instances, the same rows read."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    from report import inflate_instances

    from linkbert.pipeline.report import gather, store

    monkeypatch.setattr(gather, "REPORT_SAMPLE_ROWS", 60)
    monkeypatch.setattr(gather, "SAMPLE_SCAN_ROWS", 100)
    stores = []
    monkeypatch.setattr(store.Store, "__init__", _recording(store.Store.__init__, stores))
    source, manifest, _ = pipeline_output
    read, reports = {}, {}
    bound = 60 + 1024 * len(manifest["tables"]["instances"]["files"])  # the head sample + the examples' first batches
    for factor in (30, 240):
        rows = inflate_instances(Path(source), tmp_path / f"x{factor}", factor)
        assert rows == factor * manifest["tables"]["instances"]["rows"]
        stores.clear()
        reports[factor] = build_report(str(tmp_path / f"x{factor}"))
        read[factor] = sum(s.rows_read["instances"] for s in stores)
        assert {split: sum(counts.values()) for split, counts in reports[factor].relation_counts.items()} == {
            split: factor * info["rows"] for split, info in manifest["splits"].items()}
        checks = {check.name: check.status for check in reports[factor].checks}
        assert checks["relation counts match the manifest"] == checks["manifest matches the files"] == "ok"
        assert read[factor] <= bound, (factor, read[factor])
    assert 4 * bound < 240 * manifest["tables"]["instances"]["rows"]
    assert len(reports[240].samples) == 12


def _recording(init, stores):
    def recording_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        stores.append(self)
    return recording_init


def test_directory_without_manifest_is_refused_by_name(tmp_path, capsys):
    with pytest.raises(ReportError, match=re.escape(str(tmp_path / "manifest.json"))):
        build_report(str(tmp_path))
    assert cli_main(["report", str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err
    (tmp_path / "manifest.json").write_text("{truncated")
    with pytest.raises(ReportError, match="not valid JSON"):
        build_report(str(tmp_path))
