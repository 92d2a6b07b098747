"""The messages of Prometheus remote write 1.0, and a request's bytes on the wire.

The messages are those of Prometheus' ``prompb/remote.proto`` and ``prompb/types.proto``
(``WriteRequest``, ``TimeSeries``, ``Label``, ``Sample``, ``MetricMetadata``), with the same
package, names and field numbers, so that a receiver decodes them as it decodes Prometheus'
own. They are described here as a ``FileDescriptorProto`` and built by protobuf's message
factory in a pool of their own: no generated code to keep in step, and no clash with another
library that registers ``prometheus.*`` in the default pool. Fields we never send
(exemplars, native histograms) are left out; a decoder skips unknown fields anyway.

The body of a request is the serialised ``WriteRequest`` compressed with snappy's block
format (not its framed format), as the protocol requires.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import cramjam
import numpy as np
from google.protobuf import (  # type: ignore[import-untyped]  # no stubs installed
    descriptor_pb2,
    descriptor_pool,
    message_factory,
)

from tsdb.codec import F64, I64
from tsdb.labels import Labels

__all__ = [
    "CONTENT_ENCODING",
    "CONTENT_TYPE",
    "PROTOCOL_VERSION",
    "Label",
    "MetricMetadata",
    "Sample",
    "TimeSeries",
    "WriteRequest",
    "decode_request",
    "encode_request",
    "series_header",
]

CONTENT_TYPE = "application/x-protobuf"
CONTENT_ENCODING = "snappy"
PROTOCOL_VERSION = "0.1.0"

_F = descriptor_pb2.FieldDescriptorProto
_PACKAGE = "prometheus"


def _file() -> descriptor_pb2.FileDescriptorProto:
    f = descriptor_pb2.FileDescriptorProto(
        name="foresight/prometheus_remote_write.proto", package=_PACKAGE, syntax="proto3"
    )

    def message(name: str, *fields: tuple[str, int, int, int, str]) -> None:
        m = f.message_type.add(name=name)
        for field_name, number, kind, label, type_name in fields:
            field = m.field.add(name=field_name, number=number, type=kind, label=label)
            if type_name:
                field.type_name = type_name

    one, many = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED
    message("Label", ("name", 1, _F.TYPE_STRING, one, ""), ("value", 2, _F.TYPE_STRING, one, ""))
    message(
        "Sample", ("value", 1, _F.TYPE_DOUBLE, one, ""), ("timestamp", 2, _F.TYPE_INT64, one, "")
    )
    message(
        "TimeSeries",
        ("labels", 1, _F.TYPE_MESSAGE, many, f".{_PACKAGE}.Label"),
        ("samples", 2, _F.TYPE_MESSAGE, many, f".{_PACKAGE}.Sample"),
    )
    message(
        "MetricMetadata",
        ("type", 1, _F.TYPE_ENUM, one, f".{_PACKAGE}.MetricMetadata.MetricType"),
        ("metric_family_name", 2, _F.TYPE_STRING, one, ""),
        ("help", 4, _F.TYPE_STRING, one, ""),
        ("unit", 5, _F.TYPE_STRING, one, ""),
    )
    kinds = f.message_type[-1].enum_type.add(name="MetricType")
    for number, kind in enumerate(
        ("UNKNOWN", "COUNTER", "GAUGE", "HISTOGRAM", "GAUGEHISTOGRAM", "SUMMARY", "INFO")
    ):
        kinds.value.add(name=kind, number=number)
    kinds.value.add(name="STATESET", number=7)
    message(
        "WriteRequest",
        ("timeseries", 1, _F.TYPE_MESSAGE, many, f".{_PACKAGE}.TimeSeries"),
        ("metadata", 3, _F.TYPE_MESSAGE, many, f".{_PACKAGE}.MetricMetadata"),
    )
    return f


_POOL = descriptor_pool.DescriptorPool()
_POOL.Add(_file())


def _class(name: str) -> Any:
    return message_factory.GetMessageClass(_POOL.FindMessageTypeByName(f"{_PACKAGE}.{name}"))


Label = _class("Label")
Sample = _class("Sample")
TimeSeries = _class("TimeSeries")
MetricMetadata = _class("MetricMetadata")
WriteRequest = _class("WriteRequest")


def series_header(labels: Labels) -> bytes:
    """A ``TimeSeries`` holding only ``labels`` (sorted by name, as receivers expect),
    serialised: built once per series and merged into every request that carries it, which
    costs a fraction of building the labels again."""
    entry = TimeSeries()
    entry.labels.extend(Label(name=k, value=v) for k, v in sorted(labels))
    header: bytes = entry.SerializeToString()
    return header


def encode_request(
    series: Iterable[tuple[Labels | bytes, Sequence[int] | I64, Sequence[float] | F64]],
) -> bytes:
    """The body of one remote-write request: each series' labels (or its
    :func:`series_header`) and its samples (timestamps in ms; lists are cheaper than
    arrays here), serialised and snappy-compressed."""
    request = WriteRequest()
    add_series = request.timeseries.add
    for labels, ts, values in series:
        entry = add_series()
        if isinstance(labels, bytes):
            entry.MergeFromString(labels)
        else:
            entry.labels.extend(Label(name=k, value=v) for k, v in sorted(labels))
        add_sample = entry.samples.add
        stamps = ts.tolist() if isinstance(ts, np.ndarray) else ts
        floats = values.tolist() if isinstance(values, np.ndarray) else values
        for t, v in zip(stamps, floats, strict=True):
            # Attributes set one by one: a third cheaper than keyword arguments.
            sample = add_sample()
            sample.value = v
            sample.timestamp = t
    return bytes(cramjam.snappy.compress_raw(request.SerializeToString()))


def decode_request(body: bytes) -> list[tuple[Labels, I64, F64]]:
    """Inverse of :func:`encode_request` (for tests and tools)."""
    request = WriteRequest()
    request.ParseFromString(bytes(cramjam.snappy.decompress_raw(body)))
    out = []
    for entry in request.timeseries:
        labels = tuple((label.name, label.value) for label in entry.labels)
        ts = np.array([s.timestamp for s in entry.samples], dtype=np.int64)
        values = np.array([s.value for s in entry.samples], dtype=np.float64)
        out.append((labels, ts, values))
    return out
