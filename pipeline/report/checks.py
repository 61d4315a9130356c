"""Consistency checks between the manifest and the files, each ok / warn / fail."""

from __future__ import annotations

from dataclasses import dataclass

from linkbert import schemas
from linkbert.pipeline.instances.pairing import (
    RELATION_NAMES,
)
from linkbert.pipeline.report.gather import Sample

MIX_TOLERANCE = 0.05


OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Check:
    name: str
    status: str  # ok | warn | fail
    detail: str


def check_status(ok: bool, otherwise: str = FAIL) -> str:
    return OK if ok else otherwise


def build_checks(manifest: dict, footers: dict, tokenizer_fingerprint: str | None, relation_counts: dict,
                 samples: list[Sample], dead_letters: dict, unreadable_errors: list[str], resolution: dict,
                 orphan_picks: int) -> list[Check]:
    checks = []
    mismatched, problems = [], []
    for table in schemas.TABLES:
        rows, names, table_problems, _, _ = footers[table]
        listed = manifest.get("tables", {}).get(table)
        problems += table_problems
        if listed is None:
            mismatched.append(f"{table} missing from the manifest")
            continue
        listed_names = sorted(entry["file"] for entry in listed.get("files", []))
        if not names:
            mismatched.append(f"{table}: no files")
        elif listed.get("rows") != rows or listed_names != names:
            mismatched.append(f"{table}: manifest {listed.get('rows')} rows in {len(listed_names)} files, "
                              f"found {rows} in {len(names)}")
    checks.append(Check("manifest matches the files", check_status(not mismatched),
                        "; ".join(mismatched) or "rows and files of every table as listed"))
    checks.append(Check("schema versions readable", check_status(not problems),
                        "; ".join(problems[:5]) or "every file names its table and a known major version"))

    expected = manifest.get("tokenizer", {}).get("fingerprint")
    in_files = footers["segments"][3] | footers["instances"][3]
    troubles = []
    if tokenizer_fingerprint is None:
        troubles.append("no tokenizer in DIR/tokenizer")
    elif tokenizer_fingerprint != expected:
        troubles.append(f"DIR/tokenizer is {tokenizer_fingerprint}, manifest says {expected}")
    if in_files - {expected}:
        troubles.append(f"files carry {', '.join(sorted(in_files - {expected}))}")
    checks.append(Check("tokenizer fingerprint", check_status(not troubles), "; ".join(troubles) or f"{expected} everywhere"))

    disagreements = []
    for split in sorted(set(relation_counts) | set(manifest.get("splits", {}))):
        listed = manifest.get("splits", {}).get(split, {}).get("relations", {})
        found = {RELATION_NAMES.get(r, str(r)): n for r, n in relation_counts.get(split, {}).items()}
        if {k: v for k, v in listed.items() if v} != {k: v for k, v in found.items() if v}:
            disagreements.append(f"{split}: manifest {listed}, files {found}")
    checks.append(Check("relation counts match the manifest", check_status(not disagreements),
                        "; ".join(disagreements) or "per split and relation"))

    train = relation_counts.get("train", {})
    total = sum(train.values())
    if total:
        shares = {RELATION_NAMES.get(r, str(r)): n / total for r, n in sorted(train.items())}
        worst = max(abs(shares.get(name, 0.0) - 1 / 3) for name in RELATION_NAMES.values())
        checks.append(Check("train relation mix near 1/3", check_status(worst <= MIX_TOLERANCE, WARN),
                            " ".join(f"{k}={v:.3f}" for k, v in shares.items()) + f" (largest gap {worst:.3f})"))
    else:
        checks.append(Check("train relation mix near 1/3", FAIL, "no train instances"))

    checks.append(a_only_check(manifest))
    pair_lengths = pair_lengths_check(manifest)
    if pair_lengths is not None:
        checks.append(pair_lengths)

    train_rows = footers["instances"][4]
    if train_rows:
        spread = max(train_rows) - min(train_rows)
        checks.append(Check("train shards balanced (±1 row)", check_status(spread <= 1),
                            f"{len(train_rows)} shards of {min(train_rows):,}–{max(train_rows):,} rows"))

    bad = [f"#{i} {s.doc_a}#{s.seg_a}: {'; '.join(s.problems)}" for i, s in enumerate(samples) if s.problems]
    checks.append(Check("sample instances match their segments", check_status(bool(samples) and not bad),
                        "; ".join(bad[:3]) or (f"{len(samples)} decoded" if samples else "no instances to sample")))
    if orphan_picks:
        checks.append(Check("linked B documents are edge targets", FAIL,
                            f"{orphan_picks:,} linked instances point to documents that no edge points to"))

    dead = sum(dead_letters.values())
    documents = manifest.get("tables", {}).get("documents", {}).get("rows", 0)
    detail = f"{dead:,} refused records" + (f" ({dead / (dead + documents):.2%} of documents + refused)" if dead else "")
    if unreadable_errors:
        detail += f"; errors/ has lines that are not error records ({unreadable_errors[0]})"
    checks.append(Check("dead letters", check_status(dead == 0 and not unreadable_errors, WARN), detail))
    for link_type, outcomes in sorted(resolution.items()):
        total_links = sum(outcomes.values())
        resolved = outcomes.get("resolved_direct", 0) + outcomes.get("resolved_via_redirect", 0) + outcomes.get("edges", 0)
        share = resolved / total_links if total_links else 0.0
        checks.append(Check(f"{link_type} links resolved", check_status(share >= 0.5, WARN),
                            f"{share:.1%} of {total_links:,} raw links"))
    return checks


def _classifier_detail(what: str, result: dict, verb: str) -> str:
    threshold = result.get("threshold")
    detail = (f"{what} {result['accuracy']:.3f} vs majority {result['majority']:.3f} "
              f"({result['folds']}-fold CV on {result['samples']:,} train instances")
    if threshold is None:
        return detail + ")"
    return detail + (f"; the issue's bound majority + {result['margin']:.2f} = {result['majority'] + result['margin']:.3f}, "
                     f"{verb} above {threshold:.3f} = that + sampling noise {result['noise']:.3f})")


def a_only_check(manifest: dict) -> Check:
    """The pipeline's own measurement (manifest ``a_only_classifier``): a classifier that sees only A
    must not beat the majority class by more than the margin (2 points). FAIL when it does by more
    than its sampling noise too; WARN when it is above the margin but within the noise, or when the
    sample is too small for the noise to be under the margin (the figure cannot certify 2 points)."""
    name = "relation not predictable from A alone"
    a_only = manifest.get("a_only_classifier")
    if not a_only:
        return Check(name, WARN, "the manifest has no a_only_classifier (written by an older pipeline)")
    if a_only.get("accuracy") is None:
        return Check(name, WARN, "no train instances to measure")
    return _classifier_check(name, "A-only decision tree", a_only, FAIL)


def pair_lengths_check(manifest: dict) -> Check | None:
    """The same measurement on the lengths of A, B and the sequence (the model sees them): a WARN,
    not a FAIL, above the bound: greedy packing leaves a weak signal the paper's data has too."""
    pair = (manifest.get("a_only_classifier") or {}).get("pair_lengths")
    if not pair or pair.get("accuracy") is None:
        return None
    return _classifier_check("relation not predictable from pair lengths", "decision tree on (len A, len B, total)",
                             pair, WARN)


def _classifier_check(name: str, what: str, result: dict, above_noise: str) -> Check:
    detail = _classifier_detail(what, result, "fails" if above_noise == FAIL else "warns")
    if not result.get("passes"):
        return Check(name, above_noise, detail)
    if result.get("threshold") is not None and result["accuracy"] > result["majority"] + result["margin"]:
        return Check(name, WARN, detail + "; above the bound, within sampling noise")
    if result.get("noise") is None or result["noise"] > result["margin"]:
        return Check(name, WARN, detail + "; too few train instances to certify the bound")
    return Check(name, OK, detail)


def normalisation_check(changed: dict | None) -> Check | None:
    """How many words the tokenizer's normaliser (lower-casing, accent stripping) changes."""
    if not changed or not changed.get("words"):
        return None
    share = changed["changed"] / changed["words"]
    detail = (f"{changed['changed']:,} of {changed['words']:,} sampled words ({share:.1%}) change under the tokenizer's "
              f"normaliser; {changed['accent_changed']:,} ({changed['accent_changed'] / changed['words']:.1%}) lose "
              f"diacritics, {changed['collisions']:,} distinct words collide")
    return Check("tokenizer normalisation", OK, detail)


@dataclass
class Report:
    index_html: str
    plots: dict[str, str]
    checks: list[Check]
    samples: list[Sample]
    relation_counts: dict[str, dict[int, int]]
    dead_letters: dict[tuple[str, str], int]
    link_resolution: dict[str, dict[str, int]]
    link_resolution_source: str
