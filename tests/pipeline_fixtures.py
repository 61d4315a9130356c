"""In-memory documents for pipeline tests that do not need a source stage."""

from __future__ import annotations

import random

import apache_beam as beam

WORDS = "alpha beta gamma delta river city mountain lake forest stone bridge tower castle field garden".split()


def linked_documents(num_docs: int = 60, seed: int = 0) -> tuple[list[dict], list[dict]]:
    """Documents "Entity i" linking to each other directly and through "Alias i" redirects."""
    rng = random.Random(seed)
    documents = []
    for index in range(num_docs):
        sentences, links = [], []
        for sentence_index in range(rng.randint(5, 40)):
            other = rng.randrange(num_docs)
            links.append(f"Entity {other}" if sentence_index % 3 else f"Alias {other}")
            filler = " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 20)))
            sentences.append(f"Entity {index} is near Entity {other} and {filler}.")
        documents.append({
            "doc_id": str(index), "title": f"Entity {index}", "text": " ".join(sentences), "source": "wikipedia",
            "outlinks": list(dict.fromkeys(links)), "source_file": "memory",
        })
    redirects = [{"title": f"Alias {index}", "target": f"Entity {index}"} for index in range(num_docs)]
    return documents, redirects


def memory_source(documents: list[dict], redirects: list[dict] | None = None):
    def source(pipeline):
        outputs = {
            "documents": pipeline | "Documents" >> beam.Create(documents),
            "errors": pipeline | "NoErrors" >> beam.Create([]),
        }
        if redirects is not None:
            outputs["redirects"] = pipeline | "Redirects" >> beam.Create(redirects)
        return outputs

    return source
