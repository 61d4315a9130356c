"""Link resolution: raw out-links (titles or PMIDs) -> edges between documents of the corpus.

Redirect chains are resolved first on the (small) redirect table with bounded hops, each hop one
``CoGroupByKey``; the links are then joined once against the index of document titles plus resolved
redirect titles. Self-links and duplicates are dropped; dangling links, broken and cyclic redirect
chains are counted, not kept.

Hyperlink edges say whether a link sits in the text (``in_text``: its anchor is in the cleaned text,
as opposed to an infobox, table or caption whose text is dropped). ``SegmentLinkTargets`` resolves
the anchors inside each segment's span through the same title index, so a segment knows the
documents it links to itself (LinkBERT's "documents linked from segment A").
"""

from __future__ import annotations

import apache_beam as beam

from linkbert.pipeline.records import counter

DIRECT, VIA_REDIRECT = "doc", "redirect"


class _FollowRedirectHop(beam.DoFn):
    """One hop: each pending chain (origin, visited) at key ``target`` is resolved, advanced or dropped.

    The first hop sees the title tables themselves and emits, on "status", what each title that a
    chain reached is: ``(DIRECT, doc_id)``, ``(VIA_REDIRECT, next title)`` or ``(None, None)``. Later hops
    see only those statuses: chains only ever reach redirect targets, far fewer than the titles."""

    def __init__(self, last_hop: bool, first_hop: bool):
        self._last_hop = last_hop
        self._first_hop = first_hop

    def setup(self):
        self._resolved = counter("links.redirects_resolved")
        self._dangling = counter("links.redirects_dangling")
        self._cycles = counter("links.redirect_cycles")
        self._too_long = counter("links.redirect_chains_too_long")

    def process(self, element):
        target, grouped = element
        pending = grouped["pending"]
        if self._first_hop:
            doc_ids, next_targets = sorted(grouped["docs"]), sorted(grouped["redirects"])
            kind, value = ((DIRECT, doc_ids[0]) if doc_ids else (VIA_REDIRECT, next_targets[0]) if next_targets
                           else (None, None))
        else:
            kind, value = next(iter(grouped["status"]), (None, None))
        if self._first_hop and not self._last_hop and any(True for _ in pending):
            yield beam.pvalue.TaggedOutput("status", (target, (kind, value)))
        for origin, visited in pending:
            if kind == DIRECT:
                self._resolved.inc()
                yield beam.pvalue.TaggedOutput("resolved", (origin, value))
            elif kind is None:
                self._dangling.inc()
            elif value in visited:
                self._cycles.inc()
            elif self._last_hop:
                self._too_long.inc()
            else:
                yield value, (origin, visited + (value,))


class ResolveRedirects(beam.PTransform):
    """(redirects, doc_titles) -> (redirect title, doc_id) for every chain that ends at a document.

    The title tables are grouped once, in the first hop; each later hop groups the chains still
    pending with the status of the titles they reached (see ``_FollowRedirectHop``)."""

    def __init__(self, max_hops: int):
        super().__init__()
        self._max_hops = max(1, max_hops)

    def expand(self, inputs):
        redirects, doc_titles = inputs
        redirect_table = redirects | "KeyRedirects" >> beam.Map(lambda r: (r["title"], r["target"]))
        pending = redirects | "StartChains" >> beam.Map(lambda r: (r["target"], (r["title"], (r["title"], r["target"]))))
        resolved = []
        tables = {"docs": doc_titles, "redirects": redirect_table}
        for hop in range(self._max_hops):
            outputs = (
                {"pending": pending, **tables}
                | f"JoinHop{hop}" >> beam.CoGroupByKey()
                | f"FollowHop{hop}" >> beam.ParDo(_FollowRedirectHop(hop == self._max_hops - 1, hop == 0)).with_outputs(
                    "resolved", "status", main="pending"
                )
            )
            if hop == 0:
                tables = {"status": outputs.status}
            resolved.append(outputs.resolved)
            pending = outputs.pending
        return resolved | "AllResolved" >> beam.Flatten()


class _JoinLinks(beam.DoFn):
    def __init__(self, link_type: str):
        self._link_type = link_type

    def setup(self):
        self._direct = counter(f"links.{self._link_type}.resolved_direct")
        self._via_redirect = counter(f"links.{self._link_type}.resolved_via_redirect")
        self._dangling = counter(f"links.{self._link_type}.dangling")
        self._self_links = counter(f"links.{self._link_type}.self_links")

    def process(self, element):
        _, grouped = element
        targets = sorted(grouped["index"])  # (kind, doc_id); "doc" sorts before "redirect"
        sources = grouped["links"]
        if not targets:
            for _ in sources:
                self._dangling.inc()
            return
        kind, dst = targets[0]
        for src, in_text in sources:
            if src == dst:
                self._self_links.inc()
                continue
            (self._direct if kind == DIRECT else self._via_redirect).inc()
            yield (src, dst), in_text


def _explode_outlinks(document):
    """(raw target, (src, in_text)): in_text is None for documents without link positions."""
    positions = document.get("links")
    in_text = None if positions is None else {link["target"] for link in positions}
    for target in document["outlinks"]:
        yield target, (document["doc_id"], None if in_text is None else target in in_text)


def _any_in_text(flags):
    flags = list(flags)
    return None if all(flag is None for flag in flags) else any(bool(flag) for flag in flags)


class LinkIndex(beam.PTransform):
    """{"documents", "redirects"?} -> (link target, (kind, doc_id)): every document's own key (title
    for hyperlinks, doc_id for citations) and every redirect title whose chain ends at a document."""

    def __init__(self, link_type: str, max_redirect_hops: int = 3, key_field: str | None = None):
        super().__init__()
        self._link_type = link_type
        self._max_redirect_hops = max_redirect_hops
        self._key_field = key_field or ("title" if link_type == "hyperlink" else "doc_id")

    def expand(self, inputs):
        documents = inputs["documents"]
        redirects = inputs.get("redirects")
        key_field = self._key_field
        doc_titles = documents | "KeyByTarget" >> beam.Map(lambda d: (d[key_field], d["doc_id"]))
        index = [doc_titles | "DirectIndex" >> beam.Map(lambda kv: (kv[0], (DIRECT, kv[1])))]
        if redirects is not None:
            resolved = (redirects, doc_titles) | "ResolveRedirects" >> ResolveRedirects(self._max_redirect_hops)
            index.append(resolved | "RedirectIndex" >> beam.Map(lambda kv: (kv[0], (VIA_REDIRECT, kv[1]))))
        return index | "Index" >> beam.Flatten()


class ResolveLinks(beam.PTransform):
    """{"documents", "redirects"?, "index"?} -> edge rows of ``link_type`` (``index``: a ``LinkIndex``
    already built, shared with ``SegmentLinkTargets``).

    Documents are keyed by title for hyperlinks and by doc_id for citations (out-links are PMIDs);
    ``key_field="doc_id"`` resolves hyperlinks by id too (sources whose links name target ids).
    """

    def __init__(self, link_type: str, max_redirect_hops: int = 3, key_field: str | None = None):
        super().__init__()
        self._link_type = link_type
        self._max_redirect_hops = max_redirect_hops
        self._key_field = key_field or ("title" if link_type == "hyperlink" else "doc_id")

    def expand(self, inputs):
        link_type = self._link_type
        index = inputs.get("index")
        if index is None:
            index = inputs | "LinkIndex" >> LinkIndex(link_type, self._max_redirect_hops, self._key_field)
        links = inputs["documents"] | "ExplodeOutlinks" >> beam.FlatMap(_explode_outlinks)
        return (
            {"index": index, "links": links}
            | "JoinLinks" >> beam.CoGroupByKey()
            | "Resolve" >> beam.ParDo(_JoinLinks(link_type))
            | "Dedup" >> beam.CombinePerKey(_any_in_text)
            | "ToEdgeRows" >> beam.MapTuple(
                lambda pair, in_text: {"src": pair[0], "dst": pair[1], "link_type": link_type, "score": None,
                                       "in_text": in_text})
        )


class _ResolveSegmentTitles(beam.DoFn):
    def setup(self):
        self._resolved = counter("segments.links_resolved")
        self._dangling = counter("segments.links_dangling")

    def process(self, element):
        _, grouped = element
        targets = sorted(grouped["index"])
        for doc_id, seg_idx in grouped["requests"]:
            if not targets:
                self._dangling.inc()
            elif targets[0][1] != doc_id:
                self._resolved.inc()
                yield doc_id, (seg_idx, targets[0][1])


class SegmentLinkTargets(beam.PTransform):
    """{"segments" (with ``link_titles``: raw targets of the anchors in the segment, or None), "index"}
    -> (doc_id, (seg_idx, linked doc_id)) for each anchor that resolves to another document.

    Only the titles travel; ``MakeInstances`` joins these pairs into the segments' ``outlinks`` in
    the grouping by document it makes anyway, so token ids cross no extra shuffle for them.
    """

    def expand(self, inputs):
        requests = inputs["segments"] | "TitleRequests" >> beam.FlatMap(
            lambda s: ((title, (s["doc_id"], s["seg_idx"])) for title in sorted(set(s.get("link_titles") or ()))))
        return (
            {"index": inputs["index"], "requests": requests}
            | "JoinTitles" >> beam.CoGroupByKey()
            | "ResolveTitles" >> beam.ParDo(_ResolveSegmentTitles())
        )
