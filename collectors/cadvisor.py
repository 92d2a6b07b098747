"""cAdvisor's series from a kubelet's ``/metrics/cadvisor``: which are kept, and their labels.

A kubelet's cAdvisor response is large (about 200 lines per pod, 78 families) and most of it
is dropped, as kube-prometheus drops it: only the families named in the settings are read.
A kubelet writes every family as one block opened by its ``# HELP`` (or ``# TYPE``) line, so
the blocks of kept families are cut out of the response (its UTF-8 bytes, never decoded
whole) with a few ``find`` calls, near where they were last time (:class:`BlockPlan`), and
only they go through :mod:`tsdb.exposition` (the same strict parser as every scrape: a
malformed line in a kept family fails the scrape). A response in another layout is parsed
whole.

Kept rows get the labels a kube-prometheus ``ServiceMonitor`` gives them (``job="kubelet"``,
``metrics_path="/metrics/cadvisor"``, ``node``, ``instance``); rows without a pod (the node's
and system cgroups) are dropped, as kube-prometheus drops them, and so are pod-level rows
(no ``container``: the pod's cgroup and its sandbox), which only repeat the sums of their
containers, except for network: cAdvisor reports a pod's network on its sandbox row only.
Network rows of the tunnel devices that kernel modules add to every network namespace
(``tunl0``, ``gre0``...: always zero in a pod) are dropped too.

A kubelet writes the same rows in the same order every scrape; only values and timestamps
change. So the kept text is split around its values by one regular expression (in C, no
Python work per line), and when the text between the values is what it was last time (by
its length and checksums), the kept values are taken by their positions. Anything else
(pods came or went, a value or timestamp outside the plain pattern) is read line by line,
each line known before by its hash and only new ones parsed.
"""

from __future__ import annotations

import bisect
import functools
import re
import sys
from array import array
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

import numpy as np

from collectors.layout import layout_fingerprint
from runtime import names_kubelet
from tsdb.exposition import (
    ExpositionError,
    parse_exposition,
    parse_labels,
    parse_timestamp,
    parse_value,
    plain_sample_lines,
)
from tsdb.go_regex import GoRegex, compile_matcher
from tsdb.labels import Labels

__all__ = [
    "Resolve",
    "RowCache",
    "RowLabels",
    "Rows",
    "Selection",
    "TargetLabels",
    "kept_blocks",
    "read_by_position",
    "read_cadvisor",
    "series_labels",
]

# (metric name, labels) of rows not seen before -> their series ids, in order (-1: a row that
# is dropped); asked once per response, so that new series are created together.
Resolve = Callable[[Sequence[tuple[str, Labels]]], Sequence[int]]
# Series ids and values of a response's kept rows, in order: lists, or arrays (the rows read
# by position: their ids are the cache's own ``picked``, replaced and never changed).
Rows = tuple[Sequence[int], Sequence[float]]


@dataclass(frozen=True)
class Selection:
    """Which rows and labels of cAdvisor's are kept (from the collector settings)."""

    metrics: frozenset[str]
    drop_labels: frozenset[str] = frozenset({"id", "name"})
    drop_interfaces: GoRegex | None = None

    @classmethod
    def of(
        cls, metrics: Collection[str], drop_labels: Collection[str], interfaces: str
    ) -> Selection:
        """From the settings' values; ``interfaces`` is an RE2 pattern ("" drops none)."""
        matcher = compile_matcher(interfaces, dot_nl=True) if interfaces else None
        return cls(frozenset(metrics), frozenset(drop_labels), matcher)


@dataclass(frozen=True)
class TargetLabels:
    """What the scrape adds to every kept row, as a kube-prometheus scrape of the kubelet."""

    node: str
    instance: str
    metrics_path: str = names_kubelet.CADVISOR_PATH

    def pairs(self) -> tuple[tuple[str, str], ...]:
        return (
            ("instance", self.instance),
            ("job", names_kubelet.KUBELET_JOB),
            ("metrics_path", self.metrics_path),
            ("node", self.node),
        )


def _family_name(text: bytes, start: int) -> bytes:
    """The metric name of the ``# HELP name ...`` or ``# TYPE name kind`` line at ``start``."""
    begin = start + 7
    line_end = text.find(b"\n", begin)
    if line_end < 0:
        line_end = len(text)
    end = text.find(b" ", begin, line_end)
    return text[begin : line_end if end < 0 else end]


@dataclass(frozen=True)
class BlockPlan:
    """Where the kept families were in a node's last response, so that the next one is cut
    without reading the families between them.

    Go's client writes families sorted by name, and a kubelet writes the same ones every
    time: each kept block is looked for near where it was (shifted as the blocks before it
    moved), and a kept family the text lacked is looked for only between the kept families
    it would sort between. Whatever is cut is then checked against the layout learned from a
    full read (``RowCache.layout``), so a plan that no longer fits costs a full read, never
    a wrong row.
    """

    marker: bytes
    heads: tuple[bytes, ...]  # "# HELP name " of each kept family, in order
    spans: tuple[int, ...]  # start and end of each kept block
    absent: tuple[tuple[int, bytes], ...]  # (index of the kept block it would precede, head)


# How far a block may have moved since the last response, relative to the block before it.
_PLAN_SLACK = 8192
_NEWLINE = ord("\n")


def kept_blocks(text: str, keep: Collection[str]) -> str | None:
    """The text of the families in ``keep``, when ``text`` is laid out as a kubelet writes it
    (a block per family, each opened by a ``# HELP`` line, or by ``# TYPE`` when there is no
    HELP); None for any other layout, which must be parsed whole."""
    found = _cut_blocks(text.encode(), frozenset(n.encode() for n in keep))
    return None if found is None else found[0].decode()


def _cut_blocks(text: bytes, keep: Collection[bytes]) -> tuple[bytes, BlockPlan | None] | None:
    """:func:`kept_blocks` of UTF-8 text, and where they are (no plan when the families are
    not sorted)."""
    marker = text[:7]
    if marker not in (b"# HELP ", b"# TYPE "):
        return None
    separator = b"\n" + marker
    kept: list[bytes] = []
    spans: list[int] = []
    names: list[bytes] = []
    start = 0
    seen: set[bytes] = set()
    in_order = True
    previous = b""
    while start >= 0:
        name = _family_name(text, start)
        following = text.find(separator, start + 1)
        if name in seen:
            return None  # a family in two blocks: not the layout this relies on
        seen.add(name)
        in_order = in_order and name > previous
        previous = name
        if name in keep:
            end = following + 1 if following >= 0 else len(text)
            block = text[start:end]
            kept.append(block if block.endswith(b"\n") else block + b"\n")
            spans += (start, end)
            names.append(name)
        start = following + 1 if following >= 0 else -1
    plan = None
    if in_order:
        absent = [(bisect.bisect(names, name), name) for name in keep if name not in seen]
        plan = BlockPlan(
            marker,
            tuple(marker + name + b" " for name in names),
            tuple(spans),
            tuple(sorted((i, marker + name + b" ") for i, name in absent)),
        )
    return b"".join(kept), plan


def _blocks_near(text: bytes, plan: BlockPlan) -> list[bytes | memoryview] | None:
    """The kept blocks of ``text`` where ``plan`` says they are, in order, as views (and a
    newline after the text's last line when it has none): their text joined is what
    :func:`kept_blocks` would cut. None where the plan does not fit (then the text is cut
    by :func:`kept_blocks`)."""
    marker = plan.marker
    if not text.startswith(marker):
        return None
    separator = b"\n" + marker
    spans = plan.spans
    found: list[int] = []
    # Views of the blocks: they are split where they are, never copied.
    view = memoryview(text)
    kept: list[bytes | memoryview] = []
    shift = 0
    low = 0
    for i, head in enumerate(plan.heads):
        old = spans[2 * i]
        if old == 0:
            if not text.startswith(head):
                return None
            start = 0
        else:
            guess = old + shift
            at = text.find(b"\n" + head, max(low, guess - _PLAN_SLACK), guess + _PLAN_SLACK)
            if at < 0:
                return None
            start = at + 1
        shift = start - old
        following = text.find(separator, max(start, start + spans[2 * i + 1] - old - _PLAN_SLACK))
        end = following + 1 if following >= 0 else len(text)
        if text.startswith(head, end):
            return None  # a family in two blocks
        kept.append(view[start:end])
        if text[end - 1] != _NEWLINE:
            kept.append(b"\n")  # the last line of the text, without its newline
        found += (start, end)
        low = end - 1
    for i, head in plan.absent:
        begin = found[2 * i - 1] - 1 if i else 0
        until = found[2 * i] if i < len(plan.heads) else len(text)
        if text.find(b"\n" + head, begin, until) >= 0 or (i == 0 and text.startswith(head)):
            return None  # a kept family that was not there: read the text whole
    return kept


@dataclass
class RowCache:
    """What one node's last response said of each line of its kept families, in order: the
    hash of the line's text before its value, and the series id it stands for (-1: a row
    that is dropped; -2: a line without a sample; -3: a line read whole every time).

    A kubelet writes the same rows in the same order every time, so a line is looked up by
    its position, and by its hash only once the order changed (pods came or went). Eight
    bytes a line instead of its text: a node's 3,500 kept lines cost 56 kB, not 1.3 MB. Two
    texts of one node with equal 64-bit (SipHash) hashes are beyond practical concern.

    ``layout`` is the fingerprint of the kept text with its values cut out
    (:func:`~collectors.layout.layout_fingerprint`; None: not known, or not readable that
    way), ``picks`` the positions of the kept rows' values among the values of that text
    (None: all of them, in order) and ``picked`` their series ids: both replaced when learned
    again, never changed, since the rows read by position are ``picked`` itself.
    """

    hashes: array[int] = field(default_factory=lambda: array("q"))
    refs: array[int] = field(default_factory=lambda: array("q"))
    layout: int | None = None
    picks: array[int] | None = None
    picked: array[int] = field(default_factory=lambda: array("q"))
    plan: BlockPlan | None = None


_NO_SAMPLE = -2
_UNCACHED = -3

# The end of a sample line as Go's client writes it: the label set's brace, the value, the
# timestamp. A value of these characters is valid exactly when float() takes it, as
# parse_value would; a line with another value (NaN, say) or timestamp is not split there,
# so that it is never read by position but line by line. Possessive: no backtracking.
_VALUE_AT_END = re.compile(rb"\} ([0-9.eE+-]++)(?: -?[0-9]{1,18}+)?$", re.M)


def read_cadvisor(
    text: str | bytes, keep: Collection[str], cache: RowCache, resolve: Resolve
) -> Rows:
    """Series ids and values of the rows of the kept families.

    ``resolve(rows)`` gives the series ids of rows (name, labels) not seen before (-1: the
    row is dropped), all of a response's at once; ``cache`` keeps them from one scrape of a
    node to the next. A line is read by the exposition parser the first time its text is
    seen; after that only its value and timestamp are (with the same parser's
    :func:`~tsdb.exposition.parse_value` and :func:`~tsdb.exposition.parse_timestamp`), and
    while the text around the values stays the same, only the kept rows' values, by their
    positions (see the module docstring). Raises :class:`tsdb.exposition.ExpositionError`
    for a malformed line of a kept family (or of any family, in a layout other than the
    kubelet's, where the whole text is parsed).
    """
    data = text.encode() if isinstance(text, str) else text
    read = read_by_position(data, cache)
    if read is not None:
        return read
    cut = _cut_blocks(data, _encoded(keep))
    if cut is None:
        cache.layout = cache.plan = None
        samples = [s for s in parse_exposition(_decoded(data)).samples if s.name in keep]
        found = resolve([(s.name, s.labels) for s in samples]) if samples else []
        rows = [(ref, s.value) for ref, s in zip(found, samples, strict=True) if ref >= 0]
        return [ref for ref, _ in rows], [value for _, value in rows]
    kept, cache.plan = cut
    parts = _VALUE_AT_END.split(kept)
    read = _by_position(parts[0::2], parts[1::2], cache)
    if read is not None:
        return read
    refs, values = _read_lines(_decoded(kept), keep, cache, resolve)
    _note_layout(cache, parts)
    return refs, values


def read_by_position(data: bytes, cache: RowCache) -> Rows | None:
    """The series ids and values of the kept rows of ``data`` (UTF-8 bytes) when it is laid
    out as the node's last response was (its kept rows are read by the positions of their
    values, a few milliseconds); None when it is not, or not known yet, and ``data`` needs
    :func:`read_cadvisor` (line by line: tens of milliseconds)."""
    if cache.plan is None or cache.layout is None:
        return None
    blocks = _blocks_near(data, cache.plan)
    if blocks is None:
        return None
    # Split block by block, the same parts as the blocks' text joined and split (a value
    # ends its line, a block ends with a newline), without the copy of a megabyte.
    between: list[bytes] = []
    values: list[bytes] = []
    split = _VALUE_AT_END.split
    for block in blocks:
        parts = split(block)
        between += parts[0::2]
        values += parts[1::2]
    return _by_position(between, values, cache)


def _decoded(data: bytes) -> str:
    # As a scrape decodes a body: the exposition format is UTF-8.
    return data.decode("utf-8", errors="replace")


@functools.lru_cache(maxsize=8)
def _encoded_names(keep: frozenset[str]) -> frozenset[bytes]:
    return frozenset(name.encode() for name in keep)


def _encoded(keep: Collection[str]) -> Collection[bytes]:
    if isinstance(keep, frozenset):
        return _encoded_names(keep)
    return frozenset(name.encode() for name in keep)


def _by_position(between: list[bytes], values: list[bytes], cache: RowCache) -> Rows | None:
    """The kept rows of a text split by :data:`_VALUE_AT_END` (into the parts ``between``
    the values and the ``values``), by the positions of their values, when the text between
    the values is the layout learned; None otherwise."""
    if cache.layout is None or layout_fingerprint(b"".join(between), len(values)) != cache.layout:
        return None
    picks = cache.picks
    try:
        # Mostly every value is a kept row's: then they are read as they come.
        chosen = values if picks is None else map(values.__getitem__, picks)
        return cache.picked, array("d", map(float, chosen))
    except ValueError:
        return None  # a value such as "1e": read line by line, which names the line


def _note_layout(cache: RowCache, parts: list[bytes]) -> None:
    """Remember where the kept rows' values sit among the values of ``parts`` (the kept text
    split by :data:`_VALUE_AT_END`), from the row cache just filled line by line."""
    cache.layout = None
    rows = np.frombuffer(cache.refs, dtype=np.int64)
    n = len(parts) // 2
    # The line of each value: the newlines of the text before it (values have none).
    at = np.cumsum(np.fromiter((p.count(b"\n") for p in parts[0 : 2 * n : 2]), np.int64, n))
    refs = rows[at]
    if (refs == _NO_SAMPLE).any():
        # A comment ending as a sample does: whether such a line is cut could change with
        # the text around the values unchanged, and move every value after it.
        return
    split = np.zeros(len(rows), dtype=bool)
    split[at] = True
    if (rows == _UNCACHED).any() or ((rows >= 0) & ~split).any():
        return  # a row whose value is not split out: never read by position
    picks = np.flatnonzero(refs >= 0)
    cache.layout, cache.picks, cache.picked = (
        layout_fingerprint(b"".join(parts[0::2]), n),
        None if len(picks) == n else array("q", picks.tobytes()),
        array("q", refs[picks].tobytes()),
    )


def _read_lines(
    kept: str, keep: Collection[str], cache: RowCache, resolve: Resolve
) -> tuple[list[int], list[float]]:
    """The kept rows of ``kept`` read line by line, each line known by its hash."""
    old_hashes, old_refs = cache.hashes, cache.refs
    n_old = len(old_hashes)
    if not n_old:
        return _read_fresh(kept, keep, cache, resolve)
    refs: list[int] = []
    values: list[float] = []
    add_ref, add_value = refs.append, values.append
    hashes: array[int] = array("q")
    row_refs: array[int] = array("q")
    add_hash, add_row = hashes.append, row_refs.append
    moved: dict[int, int] | None = None
    unseen: list[tuple[int, str, bool]] = []  # (position, line, cacheable) read together
    for i, line in enumerate(kept.split("\n")):
        series, brace, rest = line.partition("} ")
        key = hash(series if brace else line)
        if i < n_old and old_hashes[i] == key:
            found = old_refs[i]
        else:
            if moved is None:
                moved = dict(zip(old_hashes, old_refs, strict=True))
            found = moved.get(key, _UNCACHED)
        add_hash(key)
        add_row(found)
        if found < 0:
            if found == _UNCACHED:
                if line:
                    unseen.append((i, line, bool(brace) and line.count("} ") == 1))
                else:
                    row_refs[i] = _NO_SAMPLE
            continue
        value_text, _, timestamp = rest.partition(" ")
        try:
            value = parse_value(value_text)
            if timestamp and not (len(timestamp) < 19 and timestamp.isdigit()):
                parse_timestamp(timestamp)
        except ValueError as e:
            raise ExpositionError(0, f"{e} in {line[:160]!r}") from None
        add_ref(found)
        add_value(value)
    if unseen:
        for i, ref, value, cacheable in _read_unseen(unseen, keep, resolve):
            row_refs[i] = ref if cacheable or ref == _NO_SAMPLE else _UNCACHED
            if ref >= 0:
                add_ref(ref)
                add_value(value)
    cache.hashes, cache.refs = hashes, row_refs
    return refs, values


def _read_fresh(
    kept: str, keep: Collection[str], cache: RowCache, resolve: Resolve
) -> tuple[list[int], list[float]]:
    """:func:`_read_lines` of a node's first response (no line known): every line is new,
    so none is looked up."""
    lines = kept.split("\n")
    heads = [line.partition("} ") for line in lines]
    hashes = array(
        "q",
        [
            hash(line if not brace else series)
            for line, (series, brace, _) in zip(lines, heads, strict=True)
        ],
    )
    row_refs = array("q", [_NO_SAMPLE]) * len(lines)
    unseen = [
        (i, line, bool(brace) and "} " not in rest)
        for i, (line, (_, brace, rest)) in enumerate(zip(lines, heads, strict=True))
        if line
    ]
    refs: list[int] = []
    values: list[float] = []
    for i, ref, value, cacheable in _read_unseen(unseen, keep, resolve) if unseen else ():
        row_refs[i] = ref if cacheable or ref == _NO_SAMPLE else _UNCACHED
        if ref >= 0:
            refs.append(ref)
            values.append(value)
    cache.hashes, cache.refs = hashes, row_refs
    return refs, values


def _read_unseen(
    unseen: list[tuple[int, str, bool]], keep: Collection[str], resolve: Resolve
) -> list[tuple[int, int, float, bool]]:
    """(position, series id or -1 or -2, value, cacheable) of lines not seen before, read
    together by the exposition parser (line by line when they are not all in the plain
    layout, which also finds the line at fault); the kept rows resolved in one call."""
    samples = plain_sample_lines("\n".join(line for _, line, _ in unseen))
    # The series id of each line but the kept rows' (-2: no sample, -1: a family not kept),
    # which are found together once all are read.
    out: list[tuple[int, int, float, bool]] = []
    rows: list[tuple[str, Labels]] = []
    at: list[int] = []
    if samples is None:
        for i, line, cacheable in unseen:
            first = _first_sight(line)
            if first is None:
                out.append((i, _NO_SAMPLE, 0.0, cacheable))
                continue
            name, labels, value = first
            if name in keep:
                at.append(len(out))
                rows.append((name, labels))
            out.append((i, -1, value, cacheable))
    else:
        _read_plain(unseen, samples, keep, out, rows, at)
    if rows:
        for k, ref in zip(at, resolve(rows), strict=True):
            i, _, value, cacheable = out[k]
            out[k] = (i, ref, value, cacheable)
    return out


def _read_plain(
    unseen: list[tuple[int, str, bool]],
    samples: list[tuple[str, str, str, str]],
    keep: Collection[str],
    out: list[tuple[int, int, float, bool]],
    rows: list[tuple[str, Labels]],
    at: list[int],
) -> None:
    """:func:`_read_unseen` of lines all in the plain layout (``samples``, as
    :func:`~tsdb.exposition.plain_sample_lines` read them): the kept rows into ``rows``,
    their places in ``out`` into ``at``."""
    read = iter(samples)
    add, add_row, add_at = out.append, rows.append, at.append
    # A container's label text recurs in every family: each is parsed once.
    parsed: dict[str, Labels] = {"": ()}
    for i, line, cacheable in unseen:
        if line[0] == "#":
            add((i, _NO_SAMPLE, 0.0, cacheable))  # checked by plain_sample_lines
            continue
        name, label_text, value_text, timestamp = next(read)
        try:
            labels = parsed.get(label_text)
            if labels is None:
                labels = parsed[label_text] = parse_labels(label_text)
            # The plain layout's value is digits, dots, signs and exponents: float() takes
            # it exactly when parse_value does; a timestamp is digits, in int64 when short.
            value = float(value_text)
            if len(timestamp) > 18:
                parse_timestamp(timestamp)
        except ExpositionError as e:
            raise ExpositionError(0, f"{e.reason} in {line[:160]!r}") from None
        except ValueError as e:
            raise ExpositionError(0, f"{e} in {line[:160]!r}") from None
        if name in keep:
            add_at(len(out))
            add_row((name, labels))
        add((i, -1, value, cacheable))


def _first_sight(line: str) -> tuple[str, Labels, float] | None:
    """The name, labels and value of a line read whole by the exposition parser; None for a
    line without a sample (a comment, an empty line)."""
    try:
        exposition = parse_exposition(line)
    except ExpositionError as e:
        raise ExpositionError(0, f"{e.reason} in {line[:160]!r}") from None
    if not exposition.samples:
        return None
    sample = exposition.samples[0]
    return sample.name, sample.labels, sample.value


def series_labels(
    name: str, labels: str | Labels, selection: Selection, target: TargetLabels
) -> Labels | None:
    """The stored label set of a row (with ``__name__``), or None for a row that is dropped.

    ``labels`` is a label text as the kubelet wrote it or parsed labels; raises
    :class:`tsdb.exposition.ExpositionError` for a malformed text.
    """
    parsed = parse_labels(labels) if isinstance(labels, str) else labels
    kept = _kept_pairs(name in names_kubelet.NETWORK, parsed, selection, target)
    return None if kept is None else _named(name, kept)


def _kept_pairs(
    network: bool, parsed: Labels, selection: Selection, target: TargetLabels
) -> dict[str, str] | None:
    """The stored labels of a row but its name (None: dropped)."""
    found = dict(parsed)
    if not found.get("pod") or not found.get("namespace"):
        return None
    if network:
        dropped = selection.drop_interfaces
        if dropped is not None and dropped.fullmatch(found.get("interface", "")):
            return None
    elif not found.get("container"):
        return None
    drop = selection.drop_labels
    # Interned, as the store's index keeps them: a namespace, a container's name or an
    # interface recur in thousands of series, parsed anew from each label text.
    pairs = {sys.intern(k): sys.intern(v) for k, v in parsed if k not in drop}
    pairs.update(target.pairs())  # the scrape's labels win, as with honor_labels: false
    return pairs


def _named(name: str, pairs: dict[str, str]) -> Labels:
    return tuple(sorted({**pairs, "__name__": name}.items()))


class RowLabels:
    """:func:`series_labels` of one node's rows, each label set looked at once however many
    families it appears in (a container's, in every family but network's)."""

    def __init__(self, selection: Selection, target: TargetLabels) -> None:
        self._selection = selection
        self._target = target
        # The kept pairs of each label set, of network rows and of the others.
        self._kept: tuple[dict[Labels, dict[str, str] | None], ...] = ({}, {})

    def __call__(self, name: str, labels: Labels) -> Labels | None:
        network = name in names_kubelet.NETWORK
        known = self._kept[network]
        kept = known.get(labels, _UNKNOWN)
        if kept is _UNKNOWN:
            kept = known[labels] = _kept_pairs(network, labels, self._selection, self._target)
        return None if kept is None else _named(name, kept)


_UNKNOWN: dict[str, str] = {}
