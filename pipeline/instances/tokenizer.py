"""The WordPiece tokenizer: trained on a deterministic sample of the corpus, or read from a local path.

The tokenizer travels through the pipeline as one small element (its ``tokenizers`` JSON plus the ids
the later stages need), used as a singleton side input: it is the size of a vocabulary, never of the
corpus. The trained tokenizer is written to ``DIR/tokenizer/`` in a form
``transformers.AutoTokenizer.from_pretrained`` loads, plus ``vocab.txt`` for other tools.
"""

from __future__ import annotations

import functools
import os
import typing
import tempfile
from pathlib import Path

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from linkbert import schemas
from linkbert.pipeline.records import counter
from linkbert.pipeline.stablehash import stable_hash

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def tokenizer_info(tokenizer_json: str, lowercase: bool, strip_accents: bool = False) -> dict:
    """The element that carries a tokenizer through the pipeline."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_str(tokenizer_json)
    vocab = tokenizer.get_vocab()
    missing = [token for token in SPECIAL_TOKENS if token not in vocab]
    if missing:
        raise ValueError(f"tokenizer lacks the special tokens {missing}")
    return {
        "json": tokenizer_json,
        "lowercase": lowercase,
        "strip_accents": strip_accents,
        "fingerprint": schemas.tokenizer_fingerprint(vocab),
        "vocab_size": len(vocab),
        "cls_id": vocab["[CLS]"],
        "sep_id": vocab["[SEP]"],
        "pad_id": vocab["[PAD]"],
        "mask_id": vocab["[MASK]"],
    }


@functools.lru_cache(maxsize=4)
def load_tokenizer(tokenizer_json: str):
    """A ``tokenizers.Tokenizer`` for the JSON, built once per worker process."""
    from tokenizers import Tokenizer

    return Tokenizer.from_str(tokenizer_json)


def train_wordpiece(texts: list[str], vocab_size: int, lowercase: bool, alphabet_size: int = 1000,
                    strip_accents: bool = False) -> str:
    """Train a BERT WordPiece vocabulary on ``texts``; returns the tokenizer's JSON.

    The ``tokenizers`` trainer breaks ties between equally frequent merges by symbol ids that it
    assigns in hash-map order, so two runs on the same text give different vocabularies. Fixing the
    alphabet and the ids of every character and ``##`` continuation character up front (passed as
    leading vocabulary entries, then demoted from special tokens) makes training deterministic.
    """
    import json
    from collections import Counter

    from tokenizers import BertWordPieceTokenizer

    # Lower-casing and accent stripping are separate choices (BERT-uncased ties them: ā -> a, й -> и).
    tokenizer = BertWordPieceTokenizer(lowercase=lowercase, strip_accents=strip_accents)
    normalizer, pre_tokenizer = tokenizer._tokenizer.normalizer, tokenizer._tokenizer.pre_tokenizer
    char_counts: Counter[str] = Counter()
    for text in texts:
        for word, _ in pre_tokenizer.pre_tokenize_str(normalizer.normalize_str(text)):
            char_counts.update(word)
    alphabet = sorted(sorted(char_counts, key=lambda char: (-char_counts[char], char))[:alphabet_size])
    seeded = alphabet + ["##" + char for char in alphabet]
    tokenizer.train_from_iterator(
        texts,
        vocab_size=max(vocab_size, len(SPECIAL_TOKENS) + len(seeded)),
        min_frequency=2,
        special_tokens=SPECIAL_TOKENS + seeded,
        limit_alphabet=len(alphabet),
        initial_alphabet=alphabet,
        wordpieces_prefix="##",
        show_progress=False,
    )
    spec = json.loads(tokenizer._tokenizer.to_str())
    spec["added_tokens"] = [token for token in spec["added_tokens"] if token["content"] in SPECIAL_TOKENS]
    return json.dumps(spec, ensure_ascii=False)


def read_local_tokenizer(path: str, lowercase: bool, strip_accents: bool = False) -> str:
    """The JSON of a tokenizer at ``path`` (any FileSystems path, ``gs://`` too): a directory with
    tokenizer.json or vocab.txt, a tokenizer.json, or a vocab.txt file."""
    from tokenizers import BertWordPieceTokenizer

    def read(name: str) -> bytes:
        with FileSystems.open(name, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
            return handle.read()

    directory_json, directory_vocab = FileSystems.join(path, "tokenizer.json"), FileSystems.join(path, "vocab.txt")
    if path.endswith(".json") or FileSystems.exists(directory_json):
        return read(path if path.endswith(".json") else directory_json).decode("utf-8")
    vocab = directory_vocab if FileSystems.exists(directory_vocab) else path
    if not FileSystems.exists(vocab) or vocab == path.rstrip("/") and Path(path).is_dir():
        raise FileNotFoundError(f"--tokenizer {path}: no tokenizer.json or vocab.txt found")
    with tempfile.TemporaryDirectory() as local:
        local_vocab = os.path.join(local, "vocab.txt")
        with open(local_vocab, "wb") as handle:
            handle.write(read(vocab))
        return BertWordPieceTokenizer(local_vocab, lowercase=lowercase, strip_accents=strip_accents)._tokenizer.to_str()


def save_tokenizer(info: dict, output_dir: str) -> list[str]:
    """Write the tokenizer to ``output_dir`` (any FileSystems path) as transformers expects it."""
    from tokenizers import Tokenizer
    from transformers import BertTokenizerFast

    tokenizer = BertTokenizerFast(tokenizer_object=Tokenizer.from_str(info["json"]), do_lower_case=info["lowercase"],
                                  strip_accents=info.get("strip_accents", False))
    written = []
    with tempfile.TemporaryDirectory() as local:
        tokenizer.save_pretrained(local)
        vocab = Tokenizer.from_str(info["json"]).get_vocab()
        with open(os.path.join(local, "vocab.txt"), "w", encoding="utf-8") as handle:
            handle.writelines(token + "\n" for token, _ in sorted(vocab.items(), key=lambda item: item[1]))
        for name in sorted(os.listdir(local)):
            destination = FileSystems.join(output_dir, name)
            with open(os.path.join(local, name), "rb") as source, FileSystems.create(destination) as sink:
                sink.write(source.read())
            written.append(destination)
    return written


DEFAULT_SAMPLE_CHARS = 100_000_000  # characters of text gathered to train WordPiece, at most


class _SampleKey(beam.DoFn):
    """document -> (stable hash, doc_id, characters it would add to the sample): what choosing the sample
    needs, without the text, so that the Top accumulators (one per bundle) stay small."""

    def __init__(self, seed: int, max_chars: int):
        self._seed = seed
        self._max_chars = max_chars

    def process(self, document):
        doc_id = document["doc_id"]
        yield stable_hash(self._seed, "tokenizer-sample", doc_id), doc_id, min(len(document["text"]), self._max_chars)


def sample_cut(chosen: list, budget_chars: int) -> tuple[int, str] | None:
    """The (hash, doc_id) of the last document of the sample: the smallest hashes first, while their
    characters fit ``budget_chars`` (always at least one document); None for an empty corpus."""
    total, last = 0, None
    for key_hash, doc_id, chars in sorted(chosen):
        if last is not None and total + chars > budget_chars:
            break
        total += chars
        last = (key_hash, doc_id)
    return last


class _SampleText(beam.DoFn):
    """document -> (hash, doc_id, its first ``max_chars`` characters) for the documents of the sample only."""

    def __init__(self, seed: int, max_chars: int):
        self._seed = seed
        self._max_chars = max_chars

    def process(self, document, last):
        if last is None:
            return
        key = (stable_hash(self._seed, "tokenizer-sample", document["doc_id"]), document["doc_id"])
        if key <= tuple(last):
            yield key[0], key[1], document["text"][: self._max_chars]


class BuildTokenizer(beam.PTransform):
    """documents -> a single tokenizer-info element, trained on a deterministic sample (or read locally).

    The sample is the ``sample_docs`` documents with the smallest stable hash (their first ``sample_chars``
    characters each), cut where their characters would pass ``sample_budget_chars``, so the same corpus
    and seed always give the same vocabulary, whatever the runner or element order. Choosing it moves
    only (hash, doc_id, length) triples through the Top combiner; the texts of the chosen documents alone
    are then gathered, at most ``sample_budget_chars`` characters in one place.
    """

    def __init__(self, output_dir: str, seed: int, vocab_size: int, lowercase: bool, sample_docs: int,
                 sample_chars: int = 20000, local_path: str | None = None, strip_accents: bool = False,
                 sample_budget_chars: int = DEFAULT_SAMPLE_CHARS):
        super().__init__()
        self._output_dir = output_dir
        self._seed = seed
        self._vocab_size = vocab_size
        self._lowercase = lowercase
        self._sample_docs = sample_docs
        self._sample_chars = sample_chars
        self._sample_budget_chars = sample_budget_chars
        self._local_path = local_path
        self._strip_accents = strip_accents

    def expand(self, documents):
        if self._local_path:
            local_json = read_local_tokenizer(self._local_path, self._lowercase, self._strip_accents)
            info = documents.pipeline | "LocalTokenizer" >> beam.Create(
                [tokenizer_info(local_json, self._lowercase, self._strip_accents)])
        else:
            vocab_size, lowercase, strip_accents = self._vocab_size, self._lowercase, self._strip_accents
            budget = self._sample_budget_chars

            def train(sample):
                texts = [text for _, _, text in sorted(sample)]
                counter("tokenizer.sample_documents").inc(len(texts))
                counter("tokenizer.sample_characters").inc(sum(map(len, texts)))
                return tokenizer_info(train_wordpiece(texts, vocab_size, lowercase, strip_accents=strip_accents),
                                      lowercase, strip_accents)

            last = (
                documents
                | "SampleKeys" >> beam.ParDo(_SampleKey(self._seed, self._sample_chars))
                | "SmallestHashes" >> beam.combiners.Top.Smallest(self._sample_docs)
                | "CharacterBudget" >> beam.Map(sample_cut, budget).with_output_types(typing.Any)  # hashes are unsigned 64-bit
            )
            info = (
                documents
                | "SampleText" >> beam.ParDo(_SampleText(self._seed, self._sample_chars), beam.pvalue.AsSingleton(last))
                | "GatherSample" >> beam.combiners.ToList()
                | "TrainWordPiece" >> beam.Map(train)
            )
        output_dir = self._output_dir
        _ = info | "SaveTokenizer" >> beam.Map(lambda element: save_tokenizer(element, output_dir))
        return info
