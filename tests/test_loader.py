import collections
import logging

import pyarrow.parquet as pq
import pytest
import torch
from train_fixtures import build_instance_dir, rewrite_metadata, write_shards
from transformers import AutoTokenizer

from linkbert.train.data import (
    InstanceDataset,
    LoaderState,
    ShardError,
    StreamConfig,
    build_loader,
    open_shards,
    shard_paths,
)
from linkbert.train.masking import Masker, MaskingConfig


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return build_instance_dir(tmp_path_factory.mktemp("instances"), num_docs=40, num_train_shards=3, rows_per_group=7)


@pytest.fixture(scope="module")
def tokenizer(data):
    return AutoTokenizer.from_pretrained(str(data.tokenizer_dir))


def dataset(data, tokenizer, rank=0, world_size=1, num_workers=0, micro_batch=4, **config):
    masker = Masker.from_tokenizer(MaskingConfig(), tokenizer)
    shards = open_shards(shard_paths(str(data.root), "train"), data.fingerprint)
    stream_config = StreamConfig(micro_batch_size=micro_batch, seed=5, **{"shuffle_buffer": 20, **config})
    return InstanceDataset(shards, masker, stream_config, len(tokenizer), tokenizer.pad_token_id,
                           rank=rank, world_size=world_size, num_workers=num_workers)


def test_two_ranks_two_workers_cover_every_row_once_per_epoch(data, tokenizer):
    for epoch in (0, 1):
        seen = collections.Counter()
        per_stream = {}
        for rank in (0, 1):
            ds = dataset(data, tokenizer, rank=rank, world_size=2, num_workers=2)
            for worker in (0, 1):
                stream = ds.stream(worker)
                rows = [r for batch in stream.epoch_batches(epoch) for r in batch.row_ids.tolist()]
                per_stream[stream.stream] = rows
                seen.update(rows)
        assert sorted(per_stream) == [0, 1, 2, 3]
        assert all(per_stream.values()), "a stream got no rows"
        assert sorted(seen) == list(range(data.num_train_rows)), "a row is missing"
        assert set(seen.values()) == {1}, "a row was read twice"
    # A new epoch deals the row groups differently.
    assert dataset(data, tokenizer).stream(0).epoch_batches(0).__next__().row_ids.tolist() != \
        dataset(data, tokenizer).stream(0).epoch_batches(1).__next__().row_ids.tolist()


def test_dataloader_workers_interleave_and_positions_resume_exactly(data, tokenizer):
    ds = dataset(data, tokenizer, num_workers=2)
    loader = build_loader(ds, num_workers=2)
    state = LoaderState(streams_per_rank=2)
    batches = []
    for batch in loader:
        batches.append(batch)
        if len(batches) <= 5:
            state.advance(batch)
        if len(batches) == 12:
            break
    assert [b.stream for b in batches[:4]] == [0, 1, 0, 1]
    saved = state.state_dict()
    assert saved["rotation"] == 1  # 5 batches consumed: stream 1 comes next
    restored = LoaderState.from_state_dict(saved)
    resumed = InstanceDataset(ds.shards, ds.masker, ds.config, ds.vocab_size, ds.pad_id, num_workers=2,
                              positions=restored.positions, rotation=restored.rotation)
    again = []
    for batch in build_loader(resumed, num_workers=2):
        again.append(batch)
        if len(again) == 7:
            break
    for original, repeated in zip(batches[5:], again):
        assert original.stream == repeated.stream
        assert torch.equal(original.row_ids, repeated.row_ids)
        assert torch.equal(original.input_ids, repeated.input_ids), "masking differs after resume"
        assert torch.equal(original.mlm_positions, repeated.mlm_positions)


def test_batches_are_padded_to_a_multiple_of_8_with_segments(data, tokenizer):
    ds = dataset(data, tokenizer, micro_batch=5, bucket_batches=0)
    all_rows = [row for path in data.train_files for row in pq.read_table(path).to_pylist()]
    for batch in list(ds.stream(0).epoch_batches(0))[:6]:
        width = batch.input_ids.shape[1]
        assert width % 8 == 0
        lengths = batch.attention_mask.sum(1)
        assert width - 8 < lengths.max() <= width
        assert batch.num_tokens == int(lengths.sum())
        labels_by_row = collections.defaultdict(list)
        for flat, label in zip(batch.mlm_positions.tolist(), batch.mlm_labels.tolist()):
            labels_by_row[flat // width].append((flat % width, label))
        for i in range(batch.size):
            row = all_rows[int(batch.row_ids[i])]
            n, b_start = row["num_tokens"], row["b_start"]
            assert int(lengths[i]) == n
            assert batch.token_type_ids[i, :b_start].sum() == 0
            assert batch.token_type_ids[i, b_start:n].all()
            assert (batch.input_ids[i, n:] == tokenizer.pad_token_id).all()
            assert int(batch.relation[i]) == row["relation"]
            assert labels_by_row[i], "a sequence has nothing to predict"
            for position, label in labels_by_row[i]:
                assert position < n and label == row["input_ids"][position]


def test_length_bucketing_reduces_padding(data, tokenizer):
    def padding(**config):
        batches = list(dataset(data, tokenizer, micro_batch=4, shuffle_buffer=1000, **config).stream(0).epoch_batches(0))
        return sum(b.input_ids.numel() - b.num_tokens for b in batches)
    assert padding(bucket_batches=8) < padding(bucket_batches=0)


def test_refuses_other_tokenizer_and_unknown_major(tmp_path, data):
    paths = shard_paths(str(data.root), "train")
    with pytest.raises(ShardError, match="tokenized with vocabulary") as error:
        open_shards(paths, "sha256:" + "0" * 32)
    assert paths[0] in str(error.value)
    copy = build_instance_dir(tmp_path, num_docs=12, num_train_shards=2, rows_per_group=50)
    rewrite_metadata(copy.train_files[1], schema_version="2.0")
    with pytest.raises(ShardError, match="major version") as error:
        open_shards(shard_paths(str(copy.root), "train"), copy.fingerprint)
    assert str(copy.train_files[1]) in str(error.value)


def test_missing_and_corrupt_shards_name_the_file(tmp_path):
    copy = build_instance_dir(tmp_path, num_docs=12, num_train_shards=3, rows_per_group=50)
    copy.train_files[1].unlink()
    with pytest.raises(ShardError, match="missing shard .*train-00001-of-00003.parquet"):
        shard_paths(str(copy.root), "train")
    copy.train_files[1].write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(ShardError, match="train-00001-of-00003.parquet: not a readable Parquet file"):
        open_shards(shard_paths(str(copy.root), "train"), copy.fingerprint)
    truncated = copy.train_files[2].read_bytes()
    copy.train_files[2].write_bytes(truncated[: len(truncated) // 2])
    with pytest.raises(ShardError, match="train-00002-of-00003.parquet"):
        open_shards([str(copy.train_files[2])], copy.fingerprint)


def test_invalid_rows_are_skipped_and_logged(tmp_path, caplog):
    copy = build_instance_dir(tmp_path, num_docs=12, num_train_shards=1, rows_per_group=100)
    rows = pq.read_table(copy.train_files[0]).to_pylist()
    rows[3]["relation"] = 7
    rows[5]["input_ids"] = rows[5]["input_ids"] + [10**6]
    rows[5]["num_tokens"] += 1
    write_shards(rows, copy.root / "instances", "train", 1, 100, copy.fingerprint)
    tokenizer = AutoTokenizer.from_pretrained(str(copy.tokenizer_dir))
    with caplog.at_level(logging.WARNING, logger="linkbert.train.data"):
        ds = dataset(copy, tokenizer)
        stream = ds.stream(0)
        seen = [r for b in stream.epoch_batches(0) for r in b.row_ids.tolist()]
    assert sorted(seen) == [i for i in range(len(rows)) if i not in (3, 5)]
    assert stream.skipped_rows == 2
    assert "train-00000-of-00001.parquet: row group 0: skipped 2 invalid row(s); first: row 3: relation 7" in caplog.text


def test_fewer_row_groups_than_streams_are_split(tmp_path):
    copy = build_instance_dir(tmp_path, num_docs=12, num_train_shards=1, rows_per_group=1000)
    tokenizer = AutoTokenizer.from_pretrained(str(copy.tokenizer_dir))
    seen = collections.Counter()
    for rank in range(2):
        ds = dataset(copy, tokenizer, rank=rank, world_size=2, num_workers=2)
        for worker in range(2):
            seen.update(r for b in ds.stream(worker).epoch_batches(0) for r in b.row_ids.tolist())
    assert sorted(seen) == list(range(copy.num_train_rows)) and set(seen.values()) == {1}


_UNDER_A_LOW_FD_LIMIT = """
import os, resource, sys
from transformers import AutoTokenizer
from linkbert.train.data import InstanceStream, StreamConfig, open_shards, shard_paths, work_units
from linkbert.train.masking import Masker, MaskingConfig

root, fingerprint = sys.argv[1], sys.argv[2]
tokenizer = AutoTokenizer.from_pretrained(os.path.join(root, "tokenizer"))
masker = Masker.from_tokenizer(MaskingConfig(), tokenizer)
in_use = len(os.listdir("/proc/self/fd"))
limit = in_use + 16  # far fewer descriptors than the 60 shards the stream reads
resource.setrlimit(resource.RLIMIT_NOFILE, (limit, resource.getrlimit(resource.RLIMIT_NOFILE)[1]))
shards = open_shards(shard_paths(root, "train"), fingerprint)
stream = InstanceStream(shards, work_units(shards), masker, StreamConfig(4, shuffle_buffer=8), 0, 1,
                        len(tokenizer), tokenizer.pad_token_id)
for epoch in range(2):
    rows = sorted(r for batch in stream.epoch_batches(epoch) for r in batch.row_ids.tolist())
    assert rows == list(range(sum(s.num_rows for s in shards))), "rows missing"
print(f"ok {len(shards)} shards under a limit of {limit} descriptors, {len(stream._files)} open")
"""


def test_a_stream_over_more_shards_than_the_descriptor_limit(tmp_path):
    import subprocess
    import sys

    many = build_instance_dir(tmp_path, num_docs=40, num_train_shards=60, rows_per_group=1000)
    result = subprocess.run([sys.executable, "-c", _UNDER_A_LOW_FD_LIMIT, str(many.root), many.fingerprint],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ok 60 shards" in result.stdout and "8 open" in result.stdout
