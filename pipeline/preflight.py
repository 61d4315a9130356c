"""Checks at the edge of ``linkbert pipeline``, before any work starts: numeric option ranges (argparse
types), options that must agree, input patterns that match files, and an output directory that is
writable and holds no earlier run (unless ``--overwrite``, which clears it through ``FileSystems``)."""

from __future__ import annotations

import argparse
import logging
import uuid

from apache_beam.io.filesystems import FileSystems


class UsageError(ValueError):
    """A bad option or path, found before the pipeline starts; the message is one line."""


def int_at_least(minimum: int):
    def parse(value: str) -> int:
        try:
            number = int(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value!r}") from None
        if number < minimum:
            raise argparse.ArgumentTypeError(f"must be an integer >= {minimum}, got {value}")
        return number

    parse.__name__ = f"integer >= {minimum}"
    return parse


def float_in(low: float, high: float, high_open: bool = True, low_open: bool = False):
    def parse(value: str) -> float:
        try:
            number = float(value)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {value!r}") from None
        if not (number > low if low_open else number >= low) or not (number < high if high_open else number <= high):
            raise argparse.ArgumentTypeError(
                f"must be in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}, got {value}")
        return number

    parse.__name__ = "number"
    return parse


def namespace_list(value: str) -> str:
    try:
        [int(part) for part in value.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be comma-separated namespace ids such as 0,14, got {value!r}") from None
    return value


def check_option_combinations(config: argparse.Namespace) -> None:
    """Options that are valid alone but not together."""
    segment, seq = getattr(config, "segment_tokens", None), getattr(config, "max_seq_len", None)
    if segment is not None and seq is not None and seq < 2 * segment:
        raise UsageError(f"--max-seq-len {seq} is below two segments of --segment-tokens {segment} ({2 * segment}):"
                         f" B would be cut to fit; give --max-seq-len >= {2 * segment} or a smaller --segment-tokens")
    if segment is not None and seq is not None and seq < 2 * segment + 3:  # [CLS] A [SEP] B [SEP]
        logging.warning("--max-seq-len %d leaves room for two segments of --segment-tokens %d but not their 3 special "
                        "tokens: a pair of two full segments loses up to %d token(s) of B (--max-seq-len %d avoids it)",
                        seq, segment, 2 * segment + 3 - seq, 2 * segment + 3)


def _patterns(value: str) -> list[str]:
    return [pattern.strip() for pattern in (value or "").split(",") if pattern.strip()]


def check_inputs(config: argparse.Namespace) -> None:
    for option, value in (("--input", config.input), ("--wiki-index", getattr(config, "wiki_index", None))):
        for pattern in _patterns(value):
            try:
                matched = FileSystems.match([pattern])[0].metadata_list
            except Exception as exc:  # noqa: BLE001 - Beam raises BeamIOError, OSError, ValueError by scheme
                raise UsageError(f"{option} {pattern!r}: cannot be listed: {exc}".splitlines()[0]) from None
            if not matched:
                raise UsageError(f"{option} {pattern!r} matches no file")
    tokenizer = getattr(config, "tokenizer", None)
    if tokenizer and not FileSystems.exists(tokenizer):
        raise UsageError(f"--tokenizer {tokenizer}: no such local directory or vocab.txt (nothing is downloaded)")


def existing_files(output: str) -> list[str]:
    try:
        return [m.path for m in FileSystems.match([FileSystems.join(output, "**")])[0].metadata_list]
    except Exception:  # noqa: BLE001 - a directory that does not exist yet
        return []


def check_output(config: argparse.Namespace) -> None:
    """Refuse an output holding an earlier run unless ``--overwrite`` (then clear it); probe writability."""
    output = config.output
    earlier = existing_files(output)
    if earlier and not getattr(config, "overwrite", False):
        raise UsageError(f"--output {output} already holds {len(earlier)} file(s) of an earlier run"
                         f" (e.g. {earlier[0]}); give --overwrite to replace them, or another --output")
    if earlier:
        FileSystems.delete(earlier)
    probe = FileSystems.join(output, f".linkbert-write-probe-{uuid.uuid4().hex}")
    try:
        with FileSystems.create(probe) as handle:
            handle.write(b"")
        FileSystems.delete([probe])
    except Exception as exc:  # noqa: BLE001 - any scheme's permission or missing-bucket error
        raise UsageError(f"--output {output} is not writable: {str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
