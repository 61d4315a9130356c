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


def test_multihop_never_asks_the_fact_that_xs_link_sentence_restates(world, sets):
    articles, links = world
    relation = {(link.source, link.target): link.relation for link in links}
    restated = 0
    for example in sets["multihop"]["train"]:
        x, y, fact = qa.parse_question_id(example["id"])
        bridge = qa._bridge_sentence(articles[x], articles[y], relation[(x, y)])
        assert bridge is not None and bridge in example["context"]
        appositive = {name for name, value in articles[y].facts.items() if name in qa.FACT_QUESTIONS[articles[y].kind]
                      and qa.answer_surface(value) and qa._contains_word(bridge, qa.answer_surface(value))}
        assert fact not in appositive, example["id"]
        restated += bool(appositive)
    assert restated > 100  # the link sentences do restate Y's facts: the check above has cases to refuse


def _documents_in_contexts(articles, examples):
    """The documents whose lead sentence appears in any of the contexts."""
    leads = {doc_id: qa._lead(article, 1)[0] for doc_id, article in articles.items()}
    text = "\n".join(example["context"] for example in examples)
    return {doc_id for doc_id, lead in leads.items() if lead in text}


@pytest.mark.parametrize("heldout", [True, False], ids=["heldout-ids", "hashed-split"])
def test_test_documents_reach_only_test_contexts_and_multihop_y_was_pretrained(world, heldout):
    articles, links = world
    heldout_ids = set(sorted(articles)[::7]) if heldout else None
    sets = qa.build_sets(articles, links, seed=0, heldout_ids=heldout_ids)
    test_docs = heldout_ids or {d for d in articles if qa.split_of_entity(d, 0, None, 0.1, 0.2) == "test"}
    test_x = {qa.parse_question_id(e["id"])[0] for e in sets["multihop"]["test"]}
    train_x = {qa.parse_question_id(e["id"])[0] for e in sets["multihop"]["train"] + sets["multihop"]["dev"]}
    assert test_x and test_x <= test_docs and not train_x & test_docs
    assert not {qa.parse_question_id(e["id"])[1] for s in qa.SPLITS for e in sets["multihop"][s]} & test_docs
    for setting, splits in sets.items():
        seen = _documents_in_contexts(articles, splits["train"] + splits["dev"])
        assert seen and not seen & test_docs, setting
    assert _documents_in_contexts(articles, sets["multihop"]["test"]) & test_docs


def test_heldout_ids_are_every_document_the_pipeline_held_out(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from linkbert.pipeline.instances.pairing import is_heldout

    (tmp_path / "documents").mkdir()
    doc_ids = [str(10 + 4 * i) for i in range(60)]
    pq.write_table(pa.table({"doc_id": doc_ids}), tmp_path / "documents" / "part-00000-of-00001.parquet")
    (tmp_path / "manifest.json").write_text(json.dumps({"options": {"seed": 3, "heldout_fraction": 0.3}}))
    # No held-out instances at all: a held-out document need not be an anchor to be held out.
    expected = {d for d in doc_ids if is_heldout(3, d, 0.3)}
    assert 0 < len(expected) < len(doc_ids)
    assert qa.heldout_doc_ids(str(tmp_path)) == expected
    with pytest.raises(FileNotFoundError, match="manifest.json"):
        qa.heldout_doc_ids(str(tmp_path / "documents"))


def _passage_count(text, passages):
    """How many passages of ``passages``, joined by spaces, make ``text`` (1 or 2), else 0."""
    if text in passages:
        return 1
    return 2 if any(text.startswith(p + " ") and text[len(p) + 1:] in passages for p in passages) else 0


def test_distractors_add_one_or_two_unrelated_passages_and_shift_offsets(world, sets):
    articles, _ = world
    plain = {e["id"]: e for e in sets["multihop"]["test"]}
    passages = {}
    for example in plain.values():
        _, y, _ = qa.parse_question_id(example["id"])
        split_at = example["context"].index(qa._lead(articles[y], 1)[0])
        passages[example["context"][:split_at - 1]] = passages[example["context"][split_at:]] = None
    added = []
    for example in sets["multihop-distractor"]["test"]:
        original = plain[example["id"].removesuffix("-distractor")]
        x, y, _ = qa.parse_question_id(original["id"])
        prefix = example["context"].index(original["context"])
        assert example["answers"]["answer_start"][0] == original["answers"]["answer_start"][0] + prefix
        before = example["context"][:prefix].removesuffix(" ")
        after = example["context"][prefix + len(original["context"]):].removeprefix(" ")
        count = sum(_passage_count(part, passages) for part in (before, after) if part)
        assert 1 <= count <= 2, example["id"]
        extra = before + " " + after
        assert not qa._contains_word(extra, articles[x].name) and not qa._contains_word(extra, articles[y].name)
        added.append(count)
    assert set(added) == {1, 2}


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
