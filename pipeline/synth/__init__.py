"""Synthetic linked corpora with planted ground truth: a MediaWiki dump (``write_wiki_dump``) and a
PubMed baseline (``write_pubmed_baseline``). Documents are about made-up entities whose facts are
stated in their own document and in the documents linking to them; see the modules for file formats."""

from linkbert.pipeline.synth.pubmed import write_pubmed_baseline
from linkbert.pipeline.synth.wiki import write_wiki_dump

__all__ = ["write_pubmed_baseline", "write_wiki_dump"]
