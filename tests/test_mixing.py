"""``linkbert train --data DIR1[:W],DIR2[:W]``: shares, refusals, exact resume, per-source metrics."""

import collections
import itertools
import json
import signal
import subprocess
import time

import pytest
import torch
from train_fixtures import REPO, build_instance_dir, rewrite_metadata, run_train, train_command
from transformers import AutoTokenizer

from linkbert.train import checkpoint
from linkbert.train.data import ShardError, StreamConfig
from linkbert.train.masking import Masker, MaskingConfig
from linkbert.train.mixing import MixLoaderState, Mixture, MixSource, parse_data


@pytest.fixture(scope="module")
def two(tmp_path_factory):
    """Two outputs with one vocabulary (the second is tokenized with the first's tokenizer), 162 and 108 rows."""
    base = tmp_path_factory.mktemp("mix")
    first = build_instance_dir(base / "wiki", num_docs=30, rows_per_group=10)
    second = build_instance_dir(base / "books", num_docs=20, rows_per_group=10, seed=1, tokenizer_from=first.tokenizer_dir)
    return first, second


def _dataset(first, second, weights=(None, None), micro_batch=4, num_workers=0, state=None, seed=5):
    sources = [MixSource("wiki", str(first.root), weights[0]), MixSource("books", str(second.root), weights[1])]
    mixture = Mixture.open(sources, first.fingerprint)
    tokenizer = AutoTokenizer.from_pretrained(str(first.tokenizer_dir))
    masker = Masker.from_tokenizer(MaskingConfig(), tokenizer)
    config = StreamConfig(micro_batch_size=micro_batch, seed=seed, shuffle_buffer=20)
    return mixture, mixture.dataset(state or MixLoaderState(max(1, num_workers)), masker, config, len(tokenizer),
                                    tokenizer.pad_token_id, num_workers=num_workers)


def test_parse_data_weights_names_and_errors():
    assert parse_data("out/enwiki") == [MixSource("enwiki", "out/enwiki", None)]
    assert parse_data("a/wiki:3,b/wiki:1.5") == [MixSource("wiki", "a/wiki", 3.0), MixSource("wiki_2", "b/wiki", 1.5)]
    assert parse_data("gs://bucket/wiki,/data/books/") == [MixSource("wiki", "gs://bucket/wiki", None),
                                                           MixSource("books", "/data/books/", None)]
    with pytest.raises(SystemExit, match="every directory or to none"):
        parse_data("a:2,b")
    with pytest.raises(SystemExit, match="positive"):
        parse_data("a:0,b:1")


def test_default_mix_is_the_combine_and_weights_are_realised_within_one_point(two):
    first, second = two
    total = first.num_train_rows + second.num_train_rows
    # Default: shares in proportion to rows, and one mix epoch reads every row of both once.
    mixture, dataset = _dataset(first, second)
    assert mixture.rows == [first.num_train_rows, second.num_train_rows]
    batches = list(itertools.islice(dataset.stream(0).batches(), total // 4))
    seen = collections.Counter((int(s), int(r)) for b in batches for s, r in zip(b.source, b.row_ids))
    assert max(seen.values()) == 1, "a row was read twice within one mix epoch"
    assert len(seen) == total // 4 * 4
    # Weights 1:3 favour the smaller source: it is read again (a new epoch of it) once exhausted.
    mixture, dataset = _dataset(first, second, weights=(1, 3))
    batches = list(itertools.islice(dataset.stream(0).batches(), total // 4))
    sources = torch.cat([b.source for b in batches])
    share = float((sources == 1).double().mean())
    assert abs(share - 0.75) < 0.01, share
    for batch in batches:  # stratified: every micro-batch holds 3 of 4 rows from books
        assert int((batch.source == 1).sum()) == 3
    books = collections.Counter(int(r) for b in batches for s, r in zip(b.source, b.row_ids) if s == 1)
    assert max(books.values()) == 2 and len(books) == second.num_train_rows
    assert batches[-1].position.cursors[1][0].epoch == 1  # books is in its second epoch


def test_positions_resume_the_mixed_stream_exactly(two):
    first, second = two
    _, dataset = _dataset(first, second, weights=(2, 1), num_workers=2)
    stream = dataset.stream(1)
    reference = list(itertools.islice(stream.batches(), 40))
    state = MixLoaderState(2, {stream.stream: reference[24].position})
    restored = MixLoaderState.from_state_dict(json.loads(json.dumps(state.state_dict())))
    _, again = _dataset(first, second, weights=(2, 1), num_workers=2, state=restored)
    resumed = list(itertools.islice(again.stream(1).batches(restored.positions[stream.stream]), 15))
    for original, repeated in zip(reference[25:], resumed):
        for name in ("input_ids", "mlm_positions", "mlm_labels", "relation", "row_ids", "source"):
            assert torch.equal(getattr(original, name), getattr(repeated, name)), name

    def first_rows(seed):
        stream = _dataset(first, second, weights=(2, 1), seed=seed)[1].stream(0)
        return [b.row_ids.tolist() for b in itertools.islice(stream.batches(), 10)]

    assert first_rows(5) == first_rows(5) and first_rows(5) != first_rows(6)  # deterministic for a seed


def test_outputs_with_another_vocabulary_or_schema_major_are_refused_naming_both(two, tmp_path):
    first, _ = two
    other = build_instance_dir(tmp_path / "own-vocab", num_docs=20, rows_per_group=10, seed=2, vocab_size=300)
    assert other.fingerprint != first.fingerprint
    with pytest.raises(ShardError) as refused:
        Mixture.open([MixSource("a", str(first.root)), MixSource("b", str(other.root))], first.fingerprint)
    message = str(refused.value)
    assert str(first.root) in message and str(other.root) in message
    assert first.fingerprint in message and other.fingerprint in message and "--tokenizer" in message
    newer = build_instance_dir(tmp_path / "v9", num_docs=20, rows_per_group=10, seed=1, tokenizer_from=first.tokenizer_dir)
    rewrite_metadata(newer.train_files[0], schema_version="9.0")
    with pytest.raises(ShardError, match=r"schema 1\.\d+ .* but .*v9 has 9\.0"):
        Mixture.open([MixSource("a", str(first.root)), MixSource("b", str(newer.root))], first.fingerprint)


def _records(run_dir):
    by_step = {}
    for line in (run_dir / "metrics.jsonl").read_text().splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        by_step[record["step"]] = record
    return by_step


STEPS = 30
ARGS = ("--max-steps", str(STEPS), "--save-every", "4", "--log-every", "1", "--global-batch-size", "8",
        "--micro-batch-size", "4", "--num-workers", "2", "--seed", "3", "--lr", "3e-3", "--shuffle-buffer", "40",
        "--no-tensorboard")
PER_SOURCE = [f"{metric}.{name}" for name in ("wiki", "books") for metric in ("mlm_loss", "mlm_acc", "drp_loss",
                                                                             "drp_acc", "samples", "share")]


@pytest.mark.slow
def test_mixed_run_logs_per_source_metrics_and_resumes_exactly_after_sigkill(two, tmp_path):
    first, second = two
    data = f"{first.root}:1,{second.root}:3"
    reference_dir, killed_dir = tmp_path / "reference", tmp_path / "killed"
    common = ("--data", data, *ARGS)
    reference = subprocess.Popen(train_command(*common, "--output", str(reference_dir)), cwd=REPO,
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = subprocess.Popen(train_command(*common, "--output", str(killed_dir)), cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if (killed_dir / "metrics.jsonl").exists() and max(_records(killed_dir), default=0) >= 6:
            break
        assert victim.poll() is None, "the run to be killed ended on its own"
        time.sleep(0.01)
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert not (killed_dir / "hf").exists(), "the run finished before it was killed"
    resumed_from = int(checkpoint.latest_tag(str(killed_dir / "checkpoints")).removeprefix("step"))
    assert 4 <= resumed_from < STEPS

    output = run_train(*common, "--output", str(killed_dir), "--resume").stdout
    assert f"at step {resumed_from}" in output and "mixing wiki 0.250" in output
    reference_output, _ = reference.communicate(timeout=300)
    assert reference.returncode == 0, reference_output
    assert "books share 0.750" in reference_output  # the per-source console line

    expected, got = _records(reference_dir), _records(killed_dir)
    assert sorted(expected) == list(range(1, STEPS + 1))
    for step in range(resumed_from + 1, STEPS + 1):
        for key in ("loss", "mlm_loss", "drp_loss", *PER_SOURCE):
            assert got[step][key] == pytest.approx(expected[step][key], rel=1e-6, abs=1e-7), f"step {step}: {key}"
    # Per-source metrics are real numbers of each corpus, and the run realised its weights.
    assert all(expected[STEPS][key] is not None for key in PER_SOURCE)
    books = sum(record["samples.books"] for record in expected.values())
    assert books / (STEPS * 8) == pytest.approx(0.75, abs=0.01)
    assert all(record["samples.wiki"] + record["samples.books"] == record["samples"] for record in expected.values())
    mix = json.loads((reference_dir / "mix.json").read_text())
    assert [s["name"] for s in mix["sources"]] == ["wiki", "books"] and mix["sources"][1]["share"] == 0.75


@pytest.mark.slow
def test_eval_intrinsic_reports_each_heldout_set_and_all_together(tmp_path_factory, capsys):
    from train_fixtures import trained_run

    from linkbert import cli as linkbert_cli
    from linkbert.eval.intrinsic import evaluate

    data_dir, run_dir = trained_run(tmp_path_factory.getbasetemp())
    books = build_instance_dir(tmp_path_factory.mktemp("eval-books"), num_docs=30, seed=4,
                               tokenizer_from=data_dir / "tokenizer")
    model = str(run_dir / "hf")
    code = linkbert_cli.main(["eval", "intrinsic", "--model", model, "--data", f"{data_dir},{books.root}", "--json",
                              "--batch-size", "8"])
    assert code == 0
    out = capsys.readouterr().out
    assert f"instances from {data_dir}" in out and f"instances from {books.root}" in out
    assert "from all 2 outputs together" in out
    together = json.loads(out.strip().splitlines()[-1])
    alone = [evaluate(model, str(data_dir), batch_size=8), evaluate(model, str(books.root), batch_size=8)]
    assert list(together["per_data"].values()) == alone
    assert together["instances"] == alone[0]["instances"] + alone[1]["instances"]
    assert together["mlm_tokens"] == alone[0]["mlm_tokens"] + alone[1]["mlm_tokens"]
    lo, hi = sorted(r["mlm_acc"] for r in alone)
    assert lo <= together["mlm_acc"] <= hi and alone[0]["mlm_acc"] != alone[1]["mlm_acc"]
    correct = sum(together["drp_acc_per_relation"][n] * c for n, c in together["drp_count_per_relation"].items() if c)
    assert together["drp_acc"] == pytest.approx(correct / together["instances"])


def test_another_topology_restarts_every_source_at_its_next_epoch():
    from linkbert.train.data import StreamPosition
    from linkbert.train.mixing import MixPosition

    ranks = [MixLoaderState(2, {0: MixPosition(9, (20, 16), ((StreamPosition(2, 3, 1), 2), (StreamPosition(0, 1, 0), 1))),
                                1: MixPosition(9, (21, 15), ((StreamPosition(1, 0, 0), 0), (StreamPosition(4, 0, 2), 3)))},
                            mix=[["wiki", 0.5, 10], ["books", 0.5, 10]]).state_dict()]
    restarted = MixLoaderState.restart(ranks, rank=0, streams_per_rank=3)
    assert sorted(restarted.positions) == [0, 1, 2] and restarted.mix == ranks[0]["mix"]
    assert restarted.positions[2] == MixPosition(0, (0, 0), ((StreamPosition(3), 0), (StreamPosition(5), 0)))
    with pytest.raises(SystemExit, match="not a mix"):
        MixLoaderState.from_state_dict({"streams_per_rank": 1, "rotation": 0, "positions": {}})


def test_resuming_with_another_mix_is_refused(two):
    first, second = two
    mixture, _ = _dataset(first, second, weights=(1, 3))
    state = MixLoaderState(1, mix=mixture.signature())
    _dataset(first, second, weights=(1, 3), state=state)  # the same mix resumes
    with pytest.raises(SystemExit, match="resume with the same --data"):
        _dataset(first, second, weights=(1, 1), state=state)
