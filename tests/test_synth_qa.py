"""``linkbert synth qa``: multi-hop questions that need the planted link, single-hop controls, splits by entity."""

import json

import pytest

from linkbert.cli import main as linkbert
from linkbert.pipeline.synth import qa

DOCS = 200


@pytest.fixture(scope="module")
def world():
    return qa.world_from_seed(DOCS, seed=3)


@pytest.fixture(scope="module")
def sets(world):
    articles, links = world
    return qa.build_sets(articles, links, seed=0)


def _answer(example):
    start, text = example["answers"]["answer_start"][0], example["answers"]["text"][0]
    return start, text


def test_every_answer_sits_at_its_offset_in_the_context(sets):
    for setting, splits in sets.items():
        for split, examples in splits.items():
            for example in examples:
                start, text = _answer(example)
                assert example["context"][start:start + len(text)] == text, (setting, split, example["id"])


def test_multihop_answer_is_in_y_and_never_in_x(world, sets):
    articles, links = world
    planted = {(link.source, link.target) for link in links}
    multihop = [e for split in qa.SPLITS for e in sets["multihop"][split]]
    assert len(multihop) > DOCS  # several questions per document on average
    for example in multihop:
        x, y, fact = qa.parse_question_id(example["id"])
        _, answer = _answer(example)
        assert (x, y) in planted, "the question must follow a planted link"
        assert answer == str(articles[y].facts[fact])
        assert qa._contains_word(articles[y].text, answer)
        assert not qa._contains_word(articles[x].text, answer), "answerable from X's own article"
        # The question names X, never Y; the answer passage is Y's.
        assert articles[x].title in example["question"] and articles[y].name not in example["question"]
        assert example["answers"]["answer_start"][0] > example["context"].index(articles[y].name)


def test_x_passage_states_the_link(world, sets):
    articles, _ = world
    for example in sets["multihop"]["train"][:200]:
        x, y, _ = qa.parse_question_id(example["id"])
        x_passage = example["context"][: example["context"].index(qa._lead(articles[y], 1)[0])]
        assert articles[y].name in x_passage, "X's passage must name Y (the bridge)"


def test_singlehop_names_y_and_shares_the_context(world, sets):
    articles, _ = world
    for example in sets["singlehop"]["train"] + sets["singlehop"]["test"]:
        _, y, _ = qa.parse_question_id(example["id"])
        assert articles[y].title in example["question"]


def test_splits_do_not_share_question_entities(sets):
    for setting, position in (("multihop", 0), ("singlehop", 1)):
        entities = {split: {qa.parse_question_id(e["id"])[position] for e in sets[setting][split]} for split in qa.SPLITS}
        assert all(entities[split] for split in qa.SPLITS), setting
        assert not entities["train"] & entities["test"] and not entities["dev"] & entities["test"]
        assert not entities["train"] & entities["dev"]


def test_heldout_documents_become_the_test_entities(world):
    articles, links = world
    heldout = set(sorted(articles)[::7])
    sets = qa.build_sets(articles, links, seed=0, heldout_ids=heldout)
    test_x = {qa.parse_question_id(e["id"])[0] for e in sets["multihop"]["test"]}
    train_x = {qa.parse_question_id(e["id"])[0] for e in sets["multihop"]["train"] + sets["multihop"]["dev"]}
    assert test_x and test_x <= heldout and not train_x & heldout


def test_distractors_add_one_or_two_other_passages_and_shift_offsets(sets):
    plain = {e["id"]: e for e in sets["multihop"]["test"]}
    added = []
    for example in sets["multihop-distractor"]["test"]:
        original = plain[example["id"].removesuffix("-distractor")]
        assert original["context"] in example["context"] and len(example["context"]) > len(original["context"])
        prefix = example["context"].index(original["context"])
        assert example["answers"]["answer_start"][0] == original["answers"]["answer_start"][0] + prefix
        others = [e["context"] for e in sets["multihop"]["test"] if e["id"] != original["id"] and e["context"] in example["context"]]
        added.append(len(others))
    assert set(added) >= {1, 2}


def test_fewshot_keeps_about_a_tenth_of_training_questions(sets):
    full, few = sets["multihop"]["train"], sets["multihop-fewshot"]["train"]
    assert {e["id"] for e in few} <= {e["id"] for e in full}
    assert 0.05 < len(few) / len(full) < 0.15
    assert sets["multihop-fewshot"]["test"] == sets["multihop"]["test"]


def test_same_seed_same_sets_other_seed_other_splits(world, sets):
    articles, links = world
    assert qa.build_sets(articles, links, seed=0) == sets
    other = qa.build_sets(articles, links, seed=1)
    assert {e["id"] for e in other["multihop"]["test"]} != {e["id"] for e in sets["multihop"]["test"]}


def test_cli_reads_a_synth_wiki_corpus_and_writes_harness_files(tmp_path):
    corpus, out = tmp_path / "corpus", tmp_path / "qa"
    assert linkbert(["synth", "wiki", "--docs", "80", "--seed", "5", "--out", str(corpus)]) == 0
    assert linkbert(["synth", "qa", "--world", str(corpus), "--out", str(out)]) == 0
    from_seed = qa.build_sets(*qa.world_from_seed(80, 5), seed=0)
    for setting in from_seed:
        for split in qa.SPLITS:
            rows = [json.loads(line) for line in (out / setting / f"{split}.json").read_text().splitlines()]
            assert rows == from_seed[setting][split], (setting, split)
            for row in rows:
                assert set(row) == {"id", "question", "context", "answers"}
    assert "**Q:**" in (out / "samples.md").read_text()
