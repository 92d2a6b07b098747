"""Storage from a kubelet's ``/stats/summary``: pods' ephemeral storage and volumes, node
filesystems.

The document is the kubelet's Summary API (``k8s.io/kubelet/pkg/apis/stats/v1alpha1``), typed
here with ``TypedDict``s of the fields read (the kubelet omits what it does not know, so
every field may be missing). Samples are named as the kubelet names them where it does:
``kubelet_volume_stats_*`` for volumes bound to a PersistentVolumeClaim (labels
``namespace``, ``persistentvolumeclaim``); the rest has no established name and takes the
``foresight_*`` names of :mod:`runtime.names`. Every sample carries ``job="kubelet"``,
``metrics_path="/stats/summary"``, ``node`` and ``instance``.

A kubelet's document is mostly what is not read (per-container CPU, memory and logs, every
network interface): it is decoded by msgspec into the typed fields alone, strictly (0.16 ms
for a node of 30 pods, where pydantic-core took 0.5 and :func:`json.loads` 1.4); a document
that does not fit the types (a pod that is not an object, a count that is a string) is
decoded by :func:`json.loads` and read as before.
"""

from __future__ import annotations

import json
import sys
from typing import Any, cast

import msgspec
from typing_extensions import TypedDict

from collectors.cadvisor import TargetLabels
from runtime import names, names_kubelet
from tsdb.labels import Labels

__all__ = [
    "FsStats",
    "NodeStats",
    "PodStats",
    "RowKey",
    "Summary",
    "SummaryError",
    "VolumeStats",
    "decode_summary",
    "decode_summary_whole",
    "row_labels",
    "summary_columns",
    "summary_rows",
    "summary_samples",
]


class FsStats(TypedDict, total=False):
    time: str
    availableBytes: int
    capacityBytes: int
    usedBytes: int
    inodesFree: int
    inodes: int
    inodesUsed: int


class PVCReference(TypedDict, total=False):
    name: str
    namespace: str


class VolumeStats(FsStats, total=False):
    name: str
    pvcRef: PVCReference


class PodReference(TypedDict, total=False):
    name: str
    namespace: str
    uid: str


PodStats = TypedDict(
    "PodStats",
    {"podRef": PodReference, "volume": list[VolumeStats], "ephemeral-storage": FsStats},
    total=False,
)


class RuntimeStats(TypedDict, total=False):
    imageFs: FsStats
    containerFs: FsStats


class NodeStats(TypedDict, total=False):
    nodeName: str
    fs: FsStats
    runtime: RuntimeStats


class Summary(TypedDict, total=False):
    node: NodeStats
    pods: list[PodStats]


class SummaryError(ValueError):
    """A response that is not a Summary API document."""


# The fields typed above, strictly (no coercion: a document that does not fit is read by
# json.loads as before); every other field is left undecoded.
_READ = msgspec.json.Decoder(Summary)


def decode_summary(text: str | bytes) -> Summary:
    """The document (text, or UTF-8 bytes), checked to be an object with a ``node`` object
    and a ``pods`` list; only the fields :func:`summary_samples` reads are decoded."""
    data: Any
    try:
        data = _READ.decode(text)
    except msgspec.DecodeError:
        data = _loads(text)  # another shape, or not JSON: what json.loads makes of it
    return _checked(data)


def decode_summary_whole(text: str | bytes) -> Summary:
    """:func:`decode_summary` by :func:`json.loads`, every field decoded."""
    return _checked(_loads(text))


def _loads(text: str | bytes) -> Any:
    if isinstance(text, bytes):
        text = text.decode("utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError as e:
        raise SummaryError(f"not JSON: {e}") from None


def _checked(data: Any) -> Summary:
    if not isinstance(data, dict):
        raise SummaryError("not a JSON object")
    if not isinstance(data.get("node"), dict):
        raise SummaryError("no node object")
    if not isinstance(data.get("pods", []), list):
        raise SummaryError("pods is not a list")
    return cast(Summary, data)


# The JSON number types (bool, an int subclass, is not one); exact types, as JSON gives them.
_NUMBERS = (int, float)

_FS = (
    ("capacityBytes", names.NODE_FS_CAPACITY),
    ("availableBytes", names.NODE_FS_AVAILABLE),
    ("usedBytes", names.NODE_FS_USED),
    ("inodes", names.NODE_FS_INODES),
    ("inodesFree", names.NODE_FS_INODES_FREE),
)
_PVC = (
    ("capacityBytes", names_kubelet.VOLUME_CAPACITY),
    ("availableBytes", names_kubelet.VOLUME_AVAILABLE),
    ("usedBytes", names_kubelet.VOLUME_USED),
    ("inodes", names_kubelet.VOLUME_INODES),
    ("inodesFree", names_kubelet.VOLUME_INODES_FREE),
    ("inodesUsed", names_kubelet.VOLUME_INODES_USED),
)
_VOLUME = (("usedBytes", names.POD_VOLUME_USED), ("capacityBytes", names.POD_VOLUME_CAPACITY))
_NODEFS = (("filesystem", "nodefs"),)
_IMAGEFS = (("filesystem", "imagefs"),)
_CONTAINERFS = (("filesystem", "containerfs"),)
_EPHEMERAL = (("usedBytes", names.POD_EPHEMERAL_STORAGE_USED),)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else ""


Pairs = tuple[tuple[str, str], ...]
# A sample's name and its own labels (the document's: filesystem, namespace, pod, volume,
# claim), sorted by name: the same series gives the same key.
RowKey = tuple[str, Pairs]


def summary_samples(summary: Summary, target: TargetLabels) -> list[tuple[Labels, float]]:
    """Every sample of the document, with its full label set (``__name__`` included).

    Missing numbers give no sample (never a zero); pods without a namespace and name, and
    volumes without a name, are skipped.
    """
    return [(row_labels(key, target), value) for key, value in summary_rows(summary)]


def row_labels(key: RowKey, target: TargetLabels) -> Labels:
    """The full label set of a row of :func:`summary_rows` scraped from ``target``."""
    name, pairs = key
    # Interned, as the store's index keeps them: a namespace recurs in many series.
    own = [(k, sys.intern(v)) for k, v in pairs]
    return tuple(sorted((("__name__", name), *target.pairs(), *own)))


def summary_rows(summary: Summary) -> list[tuple[RowKey, float]]:
    """The samples of :func:`summary_samples`, each keyed by its name and its own labels
    (empty ones left out), without the scrape's."""
    keys, values = summary_columns(summary)
    return list(zip(keys, values, strict=True))


def summary_columns(summary: Summary) -> tuple[list[RowKey], list[float]]:
    """:func:`summary_rows` as two lists: the keys, and the values in the same order (a
    node's keys come back equal from one response to the next, and are compared as a list).
    """
    keys: list[RowKey] = []
    values: list[float] = []
    add_key, add_value = keys.append, values.append

    def numbers(stats: Any, fields: tuple[tuple[str, str], ...], pairs: Pairs) -> None:
        if not isinstance(stats, dict):
            return
        get = stats.get
        for field, name in fields:
            value: Any = get(field)
            if type(value) in _NUMBERS:
                add_key((name, pairs))
                add_value(float(value))

    node = summary.get("node", {})
    numbers(node.get("fs"), _FS, _NODEFS)
    runtime = node.get("runtime")
    if isinstance(runtime, dict):
        numbers(runtime.get("imageFs"), _FS, _IMAGEFS)
        numbers(runtime.get("containerFs"), _FS, _CONTAINERFS)
    pods = summary.get("pods", [])
    for pod in pods if isinstance(pods, list) else []:
        if not isinstance(pod, dict):
            continue
        ref = pod.get("podRef")
        if not isinstance(ref, dict):
            continue
        namespace, pod_name = _text(ref.get("namespace")), _text(ref.get("name"))
        if not (namespace and pod_name):
            continue
        where = (("namespace", namespace), ("pod", pod_name))
        numbers(pod.get("ephemeral-storage"), _EPHEMERAL, where)
        volumes = pod.get("volume", [])
        for volume in volumes if isinstance(volumes, list) else []:
            if not isinstance(volume, dict):
                continue
            volume_name = _text(volume.get("name"))
            if not volume_name:
                continue
            pvc = volume.get("pvcRef")
            claim, claim_ns = "", ""
            if isinstance(pvc, dict):
                claim, claim_ns = _text(pvc.get("name")), _text(pvc.get("namespace"))
            if claim:
                pairs: Pairs = (where[0], ("persistentvolumeclaim", claim), where[1])
                numbers(volume, _VOLUME, (*pairs, ("volume", volume_name)))
                # The claim's namespace: the kubelet's own volume metrics name it so.
                claim_pairs = (
                    ("namespace", claim_ns or namespace),
                    ("persistentvolumeclaim", claim),
                )
                numbers(volume, _PVC, claim_pairs)
            else:
                numbers(volume, _VOLUME, (*where, ("volume", volume_name)))
    return keys, values
