"""The report's HTML page."""

from __future__ import annotations

import html
import json
import re

from linkbert import schemas
from linkbert.pipeline.instances.pairing import (
    LINKED,
    RELATION_NAMES,
)
from linkbert.pipeline.report.checks import Report
from linkbert.pipeline.report.gather import REDIRECT_COUNTERS, Sample
from linkbert.pipeline.report.store import Store

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 24px auto; max-width: 1120px;
       color: #222; line-height: 1.4; padding: 0 16px; }
h1 { font-size: 22px; margin-bottom: 2px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
.sub { color: #666; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.status { font-weight: 600; border-radius: 3px; padding: 0 6px; color: #fff; }
.ok { background: #3a8a4f; } .warn { background: #c98a14; } .fail { background: #c0392b; }
img { max-width: 100%; border: 1px solid #eee; }
code { font-size: 12px; background: #f4f4f4; padding: 0 3px; }
.sample { border: 1px solid #ddd; border-radius: 6px; margin: 10px 0; padding: 8px 10px; font-size: 13px; }
.sample .head { margin-bottom: 6px; }
.rel { color: #fff; border-radius: 3px; padding: 1px 7px; font-weight: 600; }
.rel-0 { background: #4C72B0; } .rel-1 { background: #DD8452; } .rel-2 { background: #55A868; }
.tok { font-family: ui-monospace, monospace; font-size: 11px; background: #555; color: #fff; border-radius: 2px; padding: 0 3px; }
.seg-a { background: #dbe7fb; border-bottom: 2px solid #4C72B0; }
.seg-b { background: #fde4cf; border-bottom: 2px solid #DD8452; }
.side { font-weight: 700; } .side-a { color: #2b4f8a; } .side-b { color: #a4511a; }
.problem { color: #c0392b; font-weight: 600; }
mark { background: #b7e4c0; padding: 0 1px; }
details summary { cursor: pointer; color: #2b4f8a; }
"""


def _cells(values, numeric=()) -> str:
    return "".join(f'<td class="n">{value}</td>' if index in numeric else f"<td>{value}</td>" for index, value in enumerate(values))


def _table(header: list[str], rows: list[list], numeric=()) -> str:
    head = "".join(f"<th>{html.escape(str(name))}</th>" for name in header)
    body = "".join(f"<tr>{_cells(row, numeric)}</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _n(value) -> str:
    return f"{value:,}" if isinstance(value, int) else html.escape(str(value))


def _marked(text: str, phrase: str | None) -> str:
    """``text`` escaped, with whole-word mentions of ``phrase`` (any case) in <mark>."""
    if not phrase:
        return html.escape(text)
    pattern = re.compile(r"(?<!\w)" + re.escape(phrase) + r"(?!\w)", re.IGNORECASE)
    pieces, position = [], 0
    for match in pattern.finditer(text):
        pieces += [html.escape(text[position: match.start()]), f"<mark>{html.escape(match.group())}</mark>"]
        position = match.end()
    return "".join(pieces) + html.escape(text[position:])


def _sample_html(index: int, sample: Sample) -> str:
    name = RELATION_NAMES.get(sample.relation, str(sample.relation))
    link = f" via {html.escape(sample.link_type)}" if sample.link_type else ""
    title_a = html.escape(sample.title_a or "?")
    title_b = html.escape(sample.title_b or "?")
    problems = "".join(f'<div class="problem">✗ {html.escape(p)}</div>' for p in sample.problems)
    verdict = "" if sample.problems else ' <span class="status ok">matches segments</span>'
    return (
        f'<div class="sample" id="sample-{index}"><div class="head">'
        f'<span class="rel rel-{sample.relation}">{html.escape(name)}</span>{link} · {html.escape(sample.split)}'
        f" · round {sample.round} · {sample.num_tokens} tokens{verdict}<br>"
        f'<span class="side side-a">A</span> {title_a} <code>{html.escape(sample.doc_a)}#{sample.seg_a}</code> → '
        f'<span class="side side-b">B</span> {title_b} <code>{html.escape(sample.doc_b)}#{sample.seg_b}</code></div>'
        f'<span class="tok">[CLS]</span> <span class="seg-a" data-doc="{html.escape(sample.doc_a)}" data-seg="{sample.seg_a}">'
        f'{_marked(sample.text_a, sample.title_b if sample.relation == LINKED else None)}</span> <span class="tok">[SEP]</span> '
        f'<span class="seg-b" data-doc="{html.escape(sample.doc_b)}" data-seg="{sample.seg_b}">{html.escape(sample.text_b)}</span>'
        f' <span class="tok">[SEP]</span>{problems}</div>'
    )


def render_html(store: Store, manifest: dict, report: Report, tables_on_disk: dict, dead_examples: dict,
                unreadable_errors: list[str], zero_in_degree: int | None) -> str:
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>linkbert data report</title>"
             f"<style>{_STYLE}</style></head><body>"]
    options = manifest.get("options", {})
    parts.append(f"<h1>linkbert data report</h1><div class='sub'><code>{html.escape(store.display_root)}</code> · "
                 f"source {html.escape(str(options.get('source', '?')))} · links {html.escape(str(options.get('links', '?')))}"
                 f" · seed {html.escape(str(options.get('seed', '?')))}</div>")

    parts.append("<h2>At a glance</h2>")
    parts.append(_table(["", "check", "detail"], [
        [f'<span class="status {c.status}">{c.status.upper()}</span>', html.escape(c.name), html.escape(c.detail)]
        for c in report.checks]))

    parts.append("<h2>Tables</h2>")
    versions = manifest.get("schema_version", {})
    rows = []
    for table in schemas.TABLES:
        listed = manifest.get("tables", {}).get(table, {})
        on_disk_rows, names = tables_on_disk[table]
        rows.append([table, html.escape(str(versions.get(table, "?"))), _n(listed.get("rows", "—")), _n(on_disk_rows),
                     _n(len(listed.get("files", []))), _n(len(names))])
    parts.append(_table(["table", "schema", "rows (manifest)", "rows (files)", "files (manifest)", "files (on disk)"],
                        rows, numeric=(2, 3, 4, 5)))
    split_rows = []
    for split, info in sorted(manifest.get("splits", {}).items(), key=lambda kv: (kv[0] != "train", kv[0])):
        relations = info.get("relations", {})
        mix = info.get("relation_mix", {})
        split_rows.append([html.escape(split), _n(info.get("rows", 0)), _n(info.get("tokens", 0))] + [
            f"{_n(relations.get(name, 0))} ({mix.get(name, 0):.3f})" for name in RELATION_NAMES.values()
        ] + [html.escape(", ".join(f"{k} {v:,}" for k, v in sorted(info.get("link_types", {}).items())) or "—")])
    parts.append("<h3>Instances per split (manifest)</h3>")
    parts.append(_table(["split", "instances", "tokens", *RELATION_NAMES.values(), "link types"], split_rows,
                        numeric=(1, 2, 3, 4, 5)))
    tokenizer = manifest.get("tokenizer", {})
    parts.append("<h3>Tokenizer</h3>")
    parts.append(_table(["fingerprint", "vocabulary", "lower-case", "path"], [[
        f"<code>{html.escape(str(tokenizer.get('fingerprint', '?')))}</code>", _n(tokenizer.get("vocab_size", "?")),
        html.escape(str(tokenizer.get("lowercase", "?"))), html.escape(str(tokenizer.get("path", "?")))]], numeric=(1,)))
    probabilities = manifest.get("relation_probabilities", {})
    if probabilities:
        parts.append("<h3>Relation draw per availability class</h3><div class='sub'>R = random only, C = has a next "
                     "segment, L = has out-links; probabilities of (contiguous, random, linked).</div>")
        parts.append(_table(["class", *RELATION_NAMES.values()],
                            [[html.escape(k)] + [f"{p:.3f}" for p in v] for k, v in sorted(probabilities.items())],
                            numeric=(1, 2, 3)))
    parts.append("<details><summary>Options</summary>" + _table(
        ["option", "value"], [[html.escape(k), html.escape(json.dumps(v))] for k, v in sorted(options.items())]) + "</details>")
    counters = manifest.get("counters", {})
    if counters:
        parts.append("<details><summary>Counters</summary>" + _table(
            ["counter", "value"], [[html.escape(k), _n(v)] for k, v in sorted(counters.items())], numeric=(1,)) + "</details>")
    if "wall_seconds" in manifest:
        parts.append(f"<div class='sub'>pipeline wall time {manifest['wall_seconds']} s</div>")

    parts.append("<h2>Relation mix</h2><img src='relation_mix.png' alt='relation mix'>")
    parts.append("<h2>Lengths</h2><img src='lengths.png' alt='segment and instance lengths'>")
    parts.append("<h2>In-degree before and after diversity sampling</h2>")
    if zero_in_degree is not None:
        parts.append(f"<div class='sub'>{zero_in_degree:,} documents have no in-links and cannot appear on a log axis. "
                     "With diversity sampling the right-hand curve is flatter than the dashed line: "
                     "hubs are chosen less, rarely linked documents more.</div>")
    parts.append("<img src='in_degree.png' alt='in-degree distribution'>")

    parts.append("<h2>Links resolved</h2><img src='links_resolved.png' alt='links resolved'>")
    if report.link_resolution_source != "counters":
        parts.append("<div class='sub'>No link counters in the manifest: edges are compared with the documents' raw "
                     "out-links; duplicates that resolve to the same document count as not an edge.</div>")
    redirects = [[html.escape(name.replace("_", " ")), _n(counters[f"links.{name}"])]
                 for name in REDIRECT_COUNTERS if f"links.{name}" in counters]
    if redirects:
        parts.append("<h3>Redirect chains</h3>" + _table(["outcome", "redirects"], redirects, numeric=(1,)))

    total_dead = sum(report.dead_letters.values())
    parts.append(f"<h2>Dead letters: {total_dead:,}</h2>")
    if report.dead_letters:
        dead_rows = []
        for (stage, reason), count in report.dead_letters.items():
            example = dead_examples[(stage, reason)]
            where = f"{example.get('source_file', '')} · {example.get('record_id', '')}"
            dead_rows.append([html.escape(stage), html.escape(reason), _n(count),
                              html.escape(where), html.escape(str(example.get("detail", ""))[:300])])
        parts.append(_table(["stage", "reason", "records", "first record", "detail"], dead_rows, numeric=(2,)))
    else:
        parts.append("<div class='sub'>No record was refused.</div>" if store.exists("errors")
                     else "<div class='sub'>No <code>errors/</code> folder.</div>")
    if unreadable_errors:
        parts.append("<div class='problem'>Lines of errors/ that are not error records:</div><ul>"
                     + "".join(f"<li><code>{html.escape(line)}</code></li>" for line in unreadable_errors) + "</ul>")

    parts.append(f"<h2>Sample instances ({len(report.samples)})</h2><div class='sub'>The first instances of the "
                 "(seeded, shuffled) shards, an equal number per relation; "
                 "<span class='seg-a'>A is blue</span>, <span class='seg-b'>B is orange</span>; in linked pairs, "
                 "<mark>mentions of B's title</mark> in A are marked.</div>")
    parts.extend(_sample_html(index, sample) for index, sample in enumerate(report.samples))
    parts.append("</body></html>")
    return "\n".join(parts)
