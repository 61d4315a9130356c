"""``--tokenizer`` is read through FileSystems (so ``gs://`` works): a directory, a tokenizer.json, a vocab.txt."""

import json

import pytest

from linkbert.pipeline.instances.tokenizer import read_local_tokenizer

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "river", "##s"]


def test_every_form_of_tokenizer_path(tmp_path):
    (tmp_path / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    from_directory = json.loads(read_local_tokenizer(str(tmp_path), True))
    from_file = json.loads(read_local_tokenizer(str(tmp_path / "vocab.txt"), True))
    assert from_directory == from_file and from_file["model"]["vocab"]["river"] == 6
    (tmp_path / "tokenizer.json").write_text(json.dumps(from_file))
    assert json.loads(read_local_tokenizer(str(tmp_path), True)) == from_file
    assert json.loads(read_local_tokenizer(str(tmp_path / "tokenizer.json"), True)) == from_file
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="no tokenizer.json or vocab.txt"):
        read_local_tokenizer(str(empty), True)
