"""Documents of several sources -> one per doc_id (an article in PubMed and in PMC is one document)."""

from __future__ import annotations

import apache_beam as beam

from linkbert.pipeline.records import counter
from linkbert.pipeline.sources import Source, register
from linkbert.pipeline.sources.versions import reconcile

DOCUMENT_METADATA_COLUMNS = ("language", "pub_year", "mesh_terms", "doi")


def merge_documents(documents: list[dict]) -> dict:
    """One document from several with the same doc_id: the longest text wins (then source, file name);
    outlinks are the union in order (winner's first); missing metadata is taken from the others."""
    ranked = sorted(documents, key=lambda d: (-len(d["text"]), d["source"], d["source_file"]))
    merged = dict(ranked[0])
    outlinks = dict.fromkeys(merged["outlinks"])
    for other in ranked[1:]:
        outlinks.update(dict.fromkeys(other["outlinks"]))
        for column in DOCUMENT_METADATA_COLUMNS:
            if merged.get(column) is None and other.get(column) is not None:
                merged[column] = other[column]
    merged["outlinks"] = list(outlinks)
    return merged


class _CollectDocuments(beam.CombineFn):
    def create_accumulator(self):
        return []

    def add_input(self, accumulator, document):
        accumulator.append(document)
        return accumulator

    def merge_accumulators(self, accumulators):
        return [document for accumulator in accumulators for document in accumulator]

    def extract_output(self, accumulator):
        return accumulator


class _MergeGroup(beam.DoFn):
    def setup(self):
        self.merged = counter("documents.merged")

    def process(self, keyed):
        _doc_id, documents = keyed
        if len(documents) > 1:
            self.merged.inc(len(documents) - 1)
        yield merge_documents(documents)


class MergeDocuments(beam.PTransform):
    """Documents of several sources (a PCollection or a tuple/list of them) -> one per ``doc_id``.

    ``(pubmed_docs, pmc_docs) | MergeDocuments()``: an article in both is one document whose outlinks
    are the union. ``documents.merged`` counts the documents folded into another.
    """

    def expand(self, documents):
        if isinstance(documents, (tuple, list)):
            documents = documents | "Flatten" >> beam.Flatten()
        return (
            documents
            | "KeyByDocId" >> beam.Map(lambda document: (document["doc_id"], document))
            | "CollectByDocId" >> beam.CombinePerKey(_CollectDocuments())
            | "Merge" >> beam.ParDo(_MergeGroup())
        )


def _read_pubmed_and_pmc(pipeline, config) -> dict:
    """``--source pubmed,pmc``: patterns naming ``nxml`` go to the PMC reader, the others to PubMed;
    an article in both becomes one document."""
    from linkbert.pipeline.sources.pmc import ReadPmc
    from linkbert.pipeline.sources.pubmed import ReadPubmed

    patterns = [pattern for pattern in config.input.split(",") if pattern.strip()]
    pmc_patterns = [p for p in patterns if "nxml" in p]
    pubmed_patterns = [p for p in patterns if p not in pmc_patterns]
    outputs = []
    if pubmed_patterns:
        outputs.append(pipeline | "ReadPubmed" >> ReadPubmed(",".join(pubmed_patterns), min_abstract_words=config.min_abstract_words))
    if pmc_patterns:
        outputs.append(pipeline | "ReadPmc" >> ReadPmc(",".join(pmc_patterns), include_body=config.pmc_body))
    if len(outputs) == 1:
        return outputs[0]
    return {
        "documents": tuple(output["documents"] for output in outputs) | "MergePubmedPmc" >> MergeDocuments(),
        "errors": tuple(output["errors"] for output in outputs) | "SourceErrors" >> beam.Flatten(),
    }


register(Source("pubmed,pmc", default_links="citation", read=_read_pubmed_and_pmc, reconcile=reconcile))
