"""Small instance shard sets for the trainer and eval tests, built the way the pipeline writes them.

``build_instance_dir(root)`` writes ``root/tokenizer/`` (a WordPiece tokenizer trained with
``tokenizers`` on a synthetic entity corpus), ``root/instances/{train,heldout}-SSSSS-of-NNNNN.parquet``
(``schemas.to_table`` rows with the linkbert metadata) and ``root/manifest.json``. The corpus makes
document relations learnable: a contiguous B names A's entity, a linked B is about an entity A names.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from linkbert import schemas

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
_SYLLABLES = "ka lo mi ne su ra ti vo ze pu ba do fe gi hu ja".split()
_KINDS = "river mountain city festival scientist machine language forest island engine".split()
_VERBS = "borders founded studied built describes crosses governs inspired hosts replaced".split()
_FILLER = "the a of in and was is for with by from on at its as an".split()


@dataclass(frozen=True)
class InstanceDir:
    root: Path
    tokenizer_dir: Path
    train_files: list[Path]
    heldout_files: list[Path]
    fingerprint: str
    num_train_rows: int


def _entity_names(rng: random.Random, count: int) -> list[str]:
    names: set[str] = set()
    while len(names) < count:
        names.add("".join(rng.choice(_SYLLABLES) for _ in range(rng.randint(2, 4))))
    return sorted(names)


def synthetic_documents(num_docs: int, seed: int = 0, sentences_per_segment: int = 4) -> list[dict]:
    """Documents about one entity each; each links to three other documents whose entity it names."""
    rng = random.Random(seed)
    names = _entity_names(rng, num_docs)
    documents = []
    for index, name in enumerate(names):
        links = rng.sample([i for i in range(num_docs) if i != index], 3)
        segments = []
        for seg_idx in range(3):
            sentences = []
            for _ in range(sentences_per_segment):
                other = names[rng.choice(links)]
                words = [name, rng.choice(_VERBS), rng.choice(_FILLER), other, rng.choice(_FILLER), rng.choice(_KINDS)]
                if rng.random() < 0.5:
                    words += [rng.choice(_FILLER), name, "is", "a", rng.choice(_KINDS)]
                sentences.append(" ".join(words) + " .")
            segments.append(" ".join(sentences))
        documents.append({"doc_id": str(1000 + index), "name": name, "links": links, "segments": segments})
    return documents


def train_tokenizer(texts: list[str], directory: Path, vocab_size: int = 400):
    from tokenizers import BertWordPieceTokenizer
    from transformers import BertTokenizer

    wordpiece = BertWordPieceTokenizer(lowercase=True)
    wordpiece.train_from_iterator(texts, vocab_size=vocab_size, min_frequency=1, special_tokens=SPECIAL_TOKENS)
    tokenizer = BertTokenizer(vocab=wordpiece.get_vocab())
    tokenizer.save_pretrained(str(directory))
    return tokenizer


def _instances(documents: list[dict], encoded: dict, rng: random.Random, cls_id: int, sep_id: int, max_len: int) -> list[dict]:
    rows = []
    for index, doc in enumerate(documents):
        for seg_a in range(len(doc["segments"]) - 1):
            for relation in (0, 1, 2):
                if relation == 0:
                    doc_b, seg_b = index, seg_a + 1
                elif relation == 1:
                    doc_b = rng.choice([i for i in range(len(documents)) if i != index and i not in doc["links"]])
                    seg_b = rng.randrange(len(documents[doc_b]["segments"]))
                else:
                    doc_b = rng.choice(doc["links"])
                    seg_b = rng.randrange(len(documents[doc_b]["segments"]))
                a = encoded[index][seg_a][: max_len // 2 - 2]
                b = encoded[doc_b][seg_b][: max_len - len(a) - 3]
                input_ids = [cls_id, *a, sep_id, *b, sep_id]
                rows.append({
                    "input_ids": input_ids,
                    "b_start": len(a) + 2,
                    "relation": relation,
                    "link_type": "hyperlink" if relation == 2 else None,
                    "doc_a": doc["doc_id"],
                    "seg_a": seg_a,
                    "doc_b": documents[doc_b]["doc_id"],
                    "seg_b": seg_b,
                    "round": 0,
                    "num_tokens": len(input_ids),
                })
    rng.shuffle(rows)
    return rows


def write_shards(rows: list[dict], directory: Path, split: str, num_shards: int, rows_per_group: int, fingerprint: str) -> list[Path]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for shard in range(num_shards):
        path = directory / f"{split}-{shard:05d}-of-{num_shards:05d}.parquet"
        table = schemas.to_table(rows[shard::num_shards], "instances", fingerprint, where=str(path))
        pq.write_table(table, path, row_group_size=rows_per_group)
        paths.append(path)
    return paths


def build_instance_dir(
    root: Path,
    num_docs: int = 40,
    num_train_shards: int = 2,
    rows_per_group: int = 16,
    max_len: int = 128,
    vocab_size: int = 400,
    seed: int = 0,
    sentences_per_segment: int = 4,
    tokenizer_from: Path | None = None,
) -> InstanceDir:
    """Write a small pipeline-shaped output directory under ``root`` and describe it.

    The tokenizer is trained on the corpus, or copied from ``tokenizer_from`` (a BERT checkpoint dir).
    """
    root = Path(root)
    documents = synthetic_documents(num_docs, seed, sentences_per_segment)
    tokenizer_dir = root / "tokenizer"
    if tokenizer_from is None:
        tokenizer = train_tokenizer([s for d in documents for s in d["segments"]], tokenizer_dir, vocab_size)
    else:
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_from))
        tokenizer.save_pretrained(str(tokenizer_dir))
    fingerprint = schemas.tokenizer_fingerprint(tokenizer.get_vocab())
    encoded = {
        index: [tokenizer(segment, add_special_tokens=False)["input_ids"] for segment in doc["segments"]]
        for index, doc in enumerate(documents)
    }
    rng = random.Random(seed)
    heldout_docs = set(range(0, num_docs, 10))
    rows = _instances(documents, encoded, rng, tokenizer.cls_token_id, tokenizer.sep_token_id, max_len)
    doc_index = {doc["doc_id"]: i for i, doc in enumerate(documents)}
    train_rows = [r for r in rows if doc_index[r["doc_a"]] not in heldout_docs]
    heldout_rows = [r for r in rows if doc_index[r["doc_a"]] in heldout_docs]
    instances = root / "instances"
    train_files = write_shards(train_rows, instances, "train", num_train_shards, rows_per_group, fingerprint)
    heldout_files = write_shards(heldout_rows, instances, "heldout", 1, rows_per_group, fingerprint)
    manifest = {
        "schema_versions": {"instances": schemas.version("instances")},
        "tokenizer_fingerprint": fingerprint,
        "counts": {"train": len(train_rows), "heldout": len(heldout_rows)},
        "source": "tests/train_fixtures.py synthetic corpus",
    }
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return InstanceDir(root, tokenizer_dir, train_files, heldout_files, fingerprint, len(train_rows))


def rewrite_metadata(path: Path, **changes: str) -> None:
    """Rewrite a shard in place with some linkbert metadata values replaced (for refusal tests)."""
    table = pq.read_table(path)
    metadata = dict(table.schema.metadata or {})
    for key, value in changes.items():
        metadata[f"linkbert.{key}".encode()] = value.encode()
    pq.write_table(table.replace_schema_metadata(metadata), path)


def table_of(path: Path) -> pa.Table:
    return pq.read_table(path)


REPO = Path(__file__).resolve().parents[1]


def train_command(*args: str) -> list[str]:
    """``python -m train ...`` with one torch thread: the tests share a small, busy machine."""
    import sys

    return [sys.executable, "-m", "train", *args, "--threads", "1", "--no-progress"]


def run_train(*args: str, timeout: float = 300):
    import subprocess

    result = subprocess.run(train_command(*args), cwd=REPO, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"training failed ({result.returncode}):\n{result.stdout[-3000:]}\n{result.stderr[-5000:]}")
    return result


def trained_run(base: Path) -> tuple[Path, Path]:
    """(data dir, run dir) of a short training run on synthetic shards, made once per session under ``base``."""
    data_root, run_dir = base / "trained-data", base / "trained-run"
    if not (run_dir / "hf" / "model.safetensors").exists():
        build_instance_dir(data_root, num_docs=60, rows_per_group=32)
        run_train("--data", str(data_root), "--output", str(run_dir), "--max-steps", "40",
                  "--global-batch-size", "16", "--micro-batch-size", "8", "--lr", "2e-3", "--save-every", "20",
                  "--log-every", "10", "--num-workers", "0")
    return data_root, run_dir
