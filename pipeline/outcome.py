"""The exit status of ``linkbert pipeline``: 0 only when nothing was lost and the run produced what it
was asked for. Anything lost (failed records, unreadable files or parts of files, counters that do not
reconcile) or nothing produced (no document, no instance, no linked instance while links were asked
for) is exit 1, after everything that could be read has been written, with one summary line naming
the files concerned and ``DIR/errors/``."""

from __future__ import annotations

import json
import re
import sys

from apache_beam.io.filesystems import FileSystems

# counters whose every unit is something lost
LOSS_SUFFIXES = (".failed", ".files_failed", ".unreadable_streams", ".deletions_failed")


def lost_counts(counters: dict[str, int]) -> dict[str, int]:
    return {name: int(value) for name, value in sorted(counters.items()) if name.endswith(LOSS_SUFFIXES) and value}


def dead_letters_by_file(output: str, limit: int = 100000) -> dict[str, dict[str, list]]:
    """source file -> reason -> [count, the first record ids] over ``DIR/errors/*``; a reason whose
    detail names the ``--source`` that fits carries it (``wrong_format: use --source pubmed``)."""
    found: dict[str, dict[str, list]] = {}
    try:
        paths = [m.path for m in FileSystems.match([FileSystems.join(output, "errors", "errors*")])[0].metadata_list]
    except Exception:  # noqa: BLE001 - no errors output
        return found
    for path in sorted(paths):
        with FileSystems.open(path) as handle:
            for number, line in enumerate(handle):
                if number >= limit:
                    break
                record = json.loads(line)
                reason = record.get("reason") or "?"
                hint = _SOURCE_HINT.search(record.get("detail") or "")
                entry = found.setdefault(record.get("source_file") or "?", {}).setdefault(
                    f"{reason}: {hint.group()}" if hint else reason, [0, []])
                entry[0] += 1
                if record.get("record_id") is not None and len(entry[1]) < 3:
                    entry[1].append(str(record["record_id"]))
    return found


_SOURCE_HINT = re.compile(r"use --source [\w,]+")


def _files_phrase(letters: dict[str, dict[str, list]]) -> str:
    """``FILE (bad_xml: record 50; truncated: record 200)`` for the three files with most dead letters."""
    def reasons(by_reason: dict[str, list]) -> str:
        parts = []
        for reason, (count, ids) in sorted(by_reason.items()):
            named = f"record{'s' if len(ids) > 1 else ''} {', '.join(ids)}" if ids else ""
            more = f" and {count - len(ids)} more" if ids and count > len(ids) else f" x{count}" if count > 1 else ""
            parts.append(f"{reason}: {named}{more}" if named else f"{reason}{more}")
        return "; ".join(parts)

    ranked = sorted(letters.items(), key=lambda item: -sum(count for count, _ in item[1].values()))
    shown = [f"{path} ({reasons(by_reason)})" for path, by_reason in ranked[:3]]
    more = f" and {len(letters) - 3} more file(s)" if len(letters) > 3 else ""
    return ", ".join(shown) + more


def _filtered(counters: dict[str, int]) -> str:
    parts = [f"{name} {value}" for name, value in sorted(counters.items()) if ".filtered." in name and value]
    return ", ".join(parts) or "none"


def problems(config, manifest: dict) -> list[str]:
    """Why the run is not a success, each as a phrase; empty when it is."""
    counters = manifest.get("counters", {})
    found = []
    lost = lost_counts(counters)
    if lost:
        found.append("lost " + ", ".join(f"{value} {name}" for name, value in lost.items()))
    if manifest.get("source_reconciled") is False and not lost:  # None: no counters; lost: files failed, said
        found.append("the source counters do not reconcile")
    tables = manifest.get("tables", {})
    documents = tables.get("documents", {}).get("rows", 0)
    if not documents:
        hint = ""
        if any("short_abstract" in name or "no_abstract" in name for name in counters if counters[name]):
            hint = f" (--min-abstract-words {getattr(config, 'min_abstract_words', '?')}; 0 keeps all)"
        found.append(f"no document was written (filtered: {_filtered(counters)}){hint}")
        return found
    splits = manifest.get("splits", {})
    instances = sum(info.get("rows", 0) for info in splits.values())
    link_type = manifest.get("options", {}).get("links")
    linked = sum(info.get("relations", {}).get("linked", 0) for info in splits.values())
    unlinked = None
    if link_type and link_type != "none" and not linked:  # none: BERT-style pairs, no linked ones by design
        resolved = {name: value for name, value in counters.items() if name.startswith(f"links.{link_type}.")}
        detail = ", ".join(f"{name} {value}" for name, value in sorted(resolved.items())) or "no link counters"
        unlinked = (f"no linked instance although --links {link_type}: no {link_type} resolved to a document"
                    f" of the corpus ({detail})")
    if not instances:
        found.append(f"no instance was written from {documents} document(s)"
                     + (": pairing needs at least two documents" if documents < 2 else ""))
        if documents >= 2 and unlinked and manifest.get("options", {}).get("anchors") == "balanced":
            found.append(unlinked + "; with --anchors balanced an anchor needs a linked partner (--links none pairs"
                         " contiguous/random only)")
        return found
    if unlinked:
        found.append(unlinked)
    return found


def losses_exit_code(config, manifest: dict) -> int:
    """Print one summary line for a run that lost or lacked something and return 1; else 0."""
    found = problems(config, manifest)
    if not found:
        return 0
    errors_dir = FileSystems.join(config.output, "errors") + "/"
    letters = dead_letters_by_file(config.output)
    if letters:  # the files go with the losses they explain
        where = f"in {_files_phrase(letters)}"
        if found[0].startswith("lost "):
            found[0] += " " + where
        else:
            found.append("dead letters " + where)
    print(f"linkbert pipeline: FAILED: {'; '.join(found)}; see {errors_dir}", file=sys.stderr)
    return 1
