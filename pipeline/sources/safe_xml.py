"""Parsing untrusted XML with lxml: no DTD loading, no network, no entity expansion.

Every parser here is built with ``resolve_entities=False, load_dtd=False, no_network=True,
huge_tree=False``, so an external entity (XXE) is never fetched and an internal one is never expanded.
On top of that, a document whose internal DTD subset declares any entity is refused as soon as its
root element starts (the check defusedxml calls ``forbid_entities``): MEDLINE and JATS files never
declare entities, so one that does is an attack or a broken export. A "billion laughs" file therefore
fails before its body is read, with memory bounded by the DTD's size.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from lxml import etree

SAFE_PARSER_OPTIONS = dict(
    resolve_entities=False,
    load_dtd=False,
    dtd_validation=False,
    no_network=True,
    huge_tree=False,
)

_FEED_CHUNK_BYTES = 1 << 16


class UnsafeXmlError(ValueError):
    """The document declares entities (entity-expansion bomb, external entity) and is refused."""


def refuse_entity_declarations(element: etree._Element, source_file: str) -> None:
    """Raise ``UnsafeXmlError`` if the document of ``element`` declares entities in its DTD."""
    dtd = element.getroottree().docinfo.internalDTD
    if dtd is None:
        return
    names = [entity.name for entity in dtd.iterentities()]
    if names:
        shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
        raise UnsafeXmlError(
            f"{source_file}: refused: the DTD declares {len(names)} entit{'y' if len(names) == 1 else 'ies'}"
            f" ({shown}); entity declarations are not accepted in untrusted XML"
        )


def _is_amplification_error(exc: etree.XMLSyntaxError) -> bool:
    message = str(exc).lower()
    return "amplification" in message or "entity reference loop" in message


def iterparse_safe(
    stream, source_file: str, tags: Iterable[str], events=("start", "end")
) -> Iterator[tuple[str, etree._Element]]:
    """``lxml.etree.iterparse`` over ``stream`` with the safe options, limited to ``tags``.

    The entity check runs on the first start event, so list the expected root tags in ``tags``. An
    unexpected root is not reported here: callers see no events and decide what that means.
    """
    checked = False
    try:
        for event, element in etree.iterparse(stream, events=events, tag=list(tags), **SAFE_PARSER_OPTIONS):
            if not checked:
                refuse_entity_declarations(element, source_file)
                checked = True
            yield event, element
    except etree.XMLSyntaxError as exc:
        if _is_amplification_error(exc):
            raise UnsafeXmlError(f"{source_file}: refused: entity expansion limit exceeded ({exc})") from exc
        raise


def parse_bytes_safe(data: bytes, source_file: str) -> etree._ElementTree:
    """Parse a whole (small) document; refuses entity declarations before reading past the root tag."""
    parser = etree.XMLPullParser(events=("start",), **SAFE_PARSER_OPTIONS)
    checked = False
    try:
        for offset in range(0, len(data), _FEED_CHUNK_BYTES):
            parser.feed(data[offset : offset + _FEED_CHUNK_BYTES])
            if not checked:
                for _event, element in parser.read_events():
                    refuse_entity_declarations(element, source_file)
                    checked = True
                    break
        root = parser.close()
    except etree.XMLSyntaxError as exc:
        if _is_amplification_error(exc):
            raise UnsafeXmlError(f"{source_file}: refused: entity expansion limit exceeded ({exc})") from exc
        raise
    if not checked:
        refuse_entity_declarations(root, source_file)
    return root.getroottree()
