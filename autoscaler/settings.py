"""foresight's settings: grouped, bounded, documented with units.

Sources, highest priority first: command-line overrides, environment variables
(``FORESIGHT_GROUP__FIELD``), the YAML file given with ``--config``, defaults. An invalid
value fails at start with the field and the source that supplied it, e.g.
``config.yaml:4:28: store.flush_interval_seconds: Input should be less than or equal to 5``;
so does a key repeated in one mapping of the file (``config.yaml:5:3: duplicate key
"data_dir"``), and a ``FORESIGHT_GROUP__FIELD`` variable that names no setting.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, model_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from pydantic_settings import SettingsError as SourceError

from alerts.settings import NotifySettings, RuleSettings
from autoscaler.backfill.settings import HistorySettings
from autoscaler.controller.settings import ControllerSettings, LeaderSettings
from autoscaler.cost.settings import CostSettings
from autoscaler.forecast.settings import ForecastSettings
from autoscaler.metricsapi.settings import ExternalMetricsSettings
from autoscaler.policy.settings import PolicySettings
from autoscaler.sharding.settings import ShardingSettings
from collectors.settings import CollectorSettings, KubernetesSettings
from promql.settings import PromQLSettings
from queryapi.settings import QueryApiSettings
from remotewrite.settings import RemoteWriteSettings
from runtime.endpoint import EndpointAuth
from tsdb.settings import StoreSettings

ENV_PREFIX = "FORESIGHT_"
ENV_DELIMITER = "__"
_KEY = "\0key"


class LogSettings(BaseModel):
    """Log output."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    format: Literal["text", "json"] = Field(
        "text", description="`text` for people, `json` for log pipelines."
    )
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", description="Lowest level logged."
    )


class ServerSettings(BaseModel):
    """The HTTP servers: /metrics, /healthz and /readyz on `port`; the API (silences, rules,
    alerts) on `api_port`, every request of it authenticated and authorised."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    host: str = Field(
        "127.0.0.1",
        description="Address both ports listen on; loopback by default, so a foresight run "
        "outside a cluster is not reachable from the network. `0.0.0.0` in a pod (the chart "
        "sets it).",
    )
    port: int = Field(
        8080, ge=0, le=65535, description="/metrics, /healthz and /readyz (0 picks a free port)."
    )
    api_port: int = Field(
        8081,
        ge=0,
        le=65535,
        description="The API: /api/v2/silences, /api/v1/rules, /api/v1/alerts (0 picks a "
        "free port).",
    )
    auth: Literal["kubernetes", "token-file", "none"] = Field(
        "kubernetes",
        description="How API callers are checked: `kubernetes` (a bearer token checked with "
        "TokenReview, its right with SubjectAccessReview on `<resource>.foresight.dev`), "
        "`token-file` (tokens and groups of `token_file`) or `none` (anyone; logged as a "
        "warning).",
    )
    token_file: Path | None = Field(
        None,
        description='With auth `token-file`: CSV lines `token,user,uid,"group1,group2"`; '
        "group `foresight:admin` may do everything, `foresight:view` only read. Re-read when "
        "it changes.",
    )
    render_metrics_in_child: bool = Field(
        True,
        description="Render /metrics in a child process forked for each scrape, so that "
        "building tens of megabytes of text never holds the interpreter lock the event loop "
        "(Lease renewal, /healthz) needs; false renders it in a thread. The child shares "
        "memory with the service until either writes it.",
    )
    huge_pages: bool = Field(
        True,
        description="With `render_metrics_in_child`, move the service's densely used memory "
        "into 2 MiB pages after each collection cycle (Linux 6.1 or later, transparent huge "
        "pages not `never`; in a worker thread), so that each fork copies a 512th of the page "
        "table and stalls the event loop for less. Memory that is mostly untouched (a "
        "thread's stack) stays in small pages.",
    )
    protect_metrics: bool = Field(
        False,
        description="Also require a token for /metrics, with the right to `get` the path "
        "/metrics (RBAC `nonResourceURLs`; in token-file mode, either group).",
    )
    auth_cache_seconds: float = Field(
        10,
        ge=0,
        le=600,
        description="How long an accepted token or an allowed request is "
        "remembered (0: not at all).",
    )
    auth_deny_cache_seconds: float = Field(
        10,
        ge=0,
        le=600,
        description="How long a rejected token or a refused request is remembered (0: not at all).",
    )

    tls_cert_file: Path | None = Field(
        None,
        description="Serve the API port over HTTPS with this certificate (PEM, with its "
        "chain); with `tls_key_file`. Read again when it changes.",
    )
    tls_key_file: Path | None = Field(None, description="The private key (PEM) of `tls_cert_file`.")

    @model_validator(mode="after")
    def _auth_needs_its_file(self) -> ServerSettings:
        if self.auth == "token-file" and self.token_file is None:
            raise ValueError("auth token-file needs server.token_file")
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("tls_cert_file and tls_key_file go together")
        if self.api_port == self.port and self.port != 0:
            raise ValueError(f"api_port and port must differ (both {self.port})")
        return self


class StorageSettings(EndpointAuth):
    """Where rules, forecasts and the controller's load queries read series: the embedded
    store (default), or a Prometheus-compatible server fed by `remote_write`, with the
    embedded store buffering what this process collected (keep `store.raw_retention_hours`
    short then). Credentials as the other endpoints: files re-read on each request."""

    query_url: str | None = Field(
        None,
        description="Base URL of a Prometheus-compatible query API (Prometheus, Thanos, Mimir, "
        "VictoriaMetrics), e.g. `http://prometheus:9090`; unset: the embedded store.",
    )
    chunk_hours: float = Field(
        24, gt=0, le=168, description="Longest time range read in one request."
    )


class WebhookSettings(BaseModel):
    """Defaults of every webhook receiver that does not set its own."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    secret: SecretStr | None = Field(
        None,
        description="HMAC-SHA256 key for the `X-Foresight-Signature` header of webhooks that "
        "set neither `secret` nor `secret_file`; never logged.",
    )
    timeout_seconds: float = Field(
        10,
        gt=0,
        le=300,
        description="Timeout of one delivery attempt of webhooks that set none.",
    )

    def apply_to(self, notify: NotifySettings) -> NotifySettings:
        """``notify`` with these defaults filled into its webhook receivers."""
        receivers = []
        for receiver in notify.receivers:
            hooks = []
            for hook in receiver.webhook_configs:
                update: dict[str, Any] = {}
                if hook.secret is None and hook.secret_file is None and self.secret is not None:
                    update["secret"] = self.secret
                if "timeout_seconds" not in hook.model_fields_set:
                    update["timeout_seconds"] = self.timeout_seconds
                hooks.append(hook.model_copy(update=update))
            receivers.append(receiver.model_copy(update={"webhook_configs": hooks}))
        return notify.model_copy(update={"receivers": receivers})


class Settings(BaseSettings):
    """Every setting of foresight, by group."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter=ENV_DELIMITER,
        extra="forbid",
        frozen=True,
        case_sensitive=False,
    )

    log: LogSettings = Field(default_factory=LogSettings)
    server: ServerSettings = Field(default_factory=ServerSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    kubernetes: KubernetesSettings = Field(default_factory=KubernetesSettings)
    collectors: CollectorSettings = Field(default_factory=CollectorSettings)
    forecast: ForecastSettings = Field(default_factory=ForecastSettings)
    policy: PolicySettings = Field(default_factory=PolicySettings)
    promql: PromQLSettings = Field(default_factory=PromQLSettings)
    query_api: QueryApiSettings = Field(default_factory=QueryApiSettings)
    rules: RuleSettings = Field(default_factory=RuleSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    webhook: WebhookSettings = Field(default_factory=WebhookSettings)
    cost: CostSettings = Field(default_factory=CostSettings)
    controller: ControllerSettings = Field(default_factory=ControllerSettings)
    storage: StorageSettings = Field(default_factory=StorageSettings)
    sharding: ShardingSettings = Field(default_factory=ShardingSettings)
    leader: LeaderSettings = Field(default_factory=LeaderSettings)
    history: HistorySettings = Field(default_factory=HistorySettings)
    external_metrics: ExternalMetricsSettings = Field(default_factory=ExternalMetricsSettings)
    remote_write: list[RemoteWriteSettings] = Field(
        default_factory=list,
        description="Receivers of Prometheus remote write 1.0, sent from the store's "
        "write-ahead log (as Prometheus' `remote_write`).",
    )

    @model_validator(mode="after")
    def _shards_share_a_store(self) -> Settings:
        if self.sharding.replicas > 1:
            needed = {
                "storage.query_url": self.storage.query_url,
                "remote_write": self.remote_write,
                "leader.enabled": self.leader.enabled,
            }
            missing = [name for name, value in needed.items() if not value]
            if missing:
                raise ValueError(
                    f"sharding.replicas > 1 needs {', '.join(missing)}: shards read and write "
                    "one shared store, and one of them leads"
                )
        return self


class SettingsError(Exception):
    """Settings could not be loaded; the message names every bad field and its source."""


@dataclass(frozen=True)
class Position:
    """Where a value sits in a YAML file (1-based)."""

    file: Path
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


def read_config_file(path: Path) -> tuple[dict[str, Any], dict[tuple[str, ...], Position]]:
    """Parse a YAML settings file, keeping the position of every key for error messages."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise SettingsError(f"{path}: cannot read settings file: {e.strerror}") from e
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        # Composing accepts what loading refuses (an unhashable key, an unknown tag).
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        problem = getattr(e, "problem", None) or str(e)
        raise SettingsError(f"{where}: invalid YAML: {problem}") from e
    if node is None:
        return {}, {}
    if not isinstance(node, yaml.MappingNode):
        raise SettingsError(
            f"{path}:{node.start_mark.line + 1}:{node.start_mark.column + 1}: "
            "settings file must be a mapping of groups"
        )
    duplicates = list(_duplicate_keys(node, path))
    if len(duplicates) == 1:
        raise SettingsError(duplicates[0])
    if duplicates:
        raise SettingsError("invalid settings file:\n  " + "\n  ".join(duplicates))
    positions: dict[tuple[str, ...], Position] = {}
    _collect_positions(node, (), path, positions)
    return data, positions


def _duplicate_keys(node: yaml.Node, path: Path) -> Iterator[str]:
    """A message per key repeated in one mapping: YAML loaders keep the last one silently,
    so the first value would look set and be ignored."""
    if isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _duplicate_keys(item, path)
    if not isinstance(node, yaml.MappingNode):
        return
    seen: dict[str, int] = {}
    for key, value in node.value:
        if isinstance(key, yaml.ScalarNode) and key.tag != "tag:yaml.org,2002:merge":
            line = key.start_mark.line + 1
            if key.value in seen:
                where = Position(path, line, key.start_mark.column + 1)
                yield f'{where}: duplicate key "{key.value}" (first on line {seen[key.value]})'
            else:
                seen[key.value] = line
        yield from _duplicate_keys(value, path)


def _collect_positions(
    node: yaml.Node, prefix: tuple[str, ...], path: Path, out: dict[tuple[str, ...], Position]
) -> None:
    if not isinstance(node, yaml.MappingNode):
        return
    for key, value in node.value:
        loc = (*prefix, str(key.value))
        mark = value.start_mark if not isinstance(value, yaml.MappingNode) else key.start_mark
        out[loc] = Position(path, mark.line + 1, mark.column + 1)
        # Errors about a key (unknown setting) point at the key itself.
        out[(*loc, _KEY)] = Position(path, key.start_mark.line + 1, key.start_mark.column + 1)
        _collect_positions(value, loc, path, out)


class _MappingSource(PydanticBaseSettingsSource):
    """Settings from an already parsed file."""

    def __init__(self, settings_cls: type[BaseSettings], data: Mapping[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = dict(data)

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return self._data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def load_settings(
    config_file: Path | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Settings:
    """Load settings from overrides, the environment and an optional YAML file.

    Raises :class:`SettingsError` naming each invalid field and where its value came from.
    """
    check_environment(os.environ)
    data, positions = read_config_file(config_file) if config_file else ({}, {})

    class _Loaded(Settings):
        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return init_settings, env_settings, _MappingSource(settings_cls, data)

    try:
        return _Loaded(**dict(overrides or {}))
    except ValidationError as e:
        raise SettingsError(_describe(e, positions, os.environ, overrides or {})) from e
    except SourceError as e:
        # A list or mapping setting given in the environment must be JSON; the library names
        # only the group, so name the variables that fed it.
        found = re.search(r'field "([^"]+)"', str(e))
        group = f"{ENV_PREFIX}{found.group(1).upper() if found else ''}"
        names = sorted(n for n in os.environ if n.upper().startswith(group))
        raise SettingsError(
            f"{', '.join(names) or 'environment'}: not valid JSON for a list or mapping "
            f"setting ({e.__cause__ or e})"
        ) from e


def check_environment(env: Mapping[str, str]) -> None:
    """Refuse ``FORESIGHT_GROUP__FIELD`` variables that name no setting.

    pydantic-settings reads only the variables of fields it knows, so a misspelt group
    (``FORESIGHT_STOER__DATA_DIR``) would be ignored and the default used. Only names with the
    ``__`` delimiter are checked: others may be a whole group as JSON (``FORESIGHT_STORE``) or
    not ours at all (Kubernetes' service links, ``FORESIGHT_SERVICE_HOST``).
    """
    problems = []
    for name in sorted(env):
        upper = name.upper()
        if not upper.startswith(ENV_PREFIX) or ENV_DELIMITER not in upper[len(ENV_PREFIX) :]:
            continue
        loc = tuple(upper[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER))
        problem = _unknown_part(loc)
        if problem:
            problems.append(f"environment variable {name}: {problem}")
    if problems:
        raise SettingsError("invalid settings:\n  " + "\n  ".join(problems))


def _unknown_part(loc: tuple[str, ...]) -> str:
    """Why ``loc`` names no setting, or "" when it does (down to a field that is not a group
    of settings: what lies below it, a dict key or a list index, is the field's to check)."""
    model: type[BaseModel] = Settings
    for depth, part in enumerate(loc):
        if part not in model.model_fields:
            names = sorted(model.model_fields)
            what = "group" if depth == 0 else "setting"
            message = f'unknown {what} "{".".join(loc[: depth + 1])}" (valid: {", ".join(names)})'
            close = difflib.get_close_matches(part, names, n=1)
            if close:
                guess = (*loc[:depth], close[0], *loc[depth + 1 :])
                if not _unknown_part(guess):
                    message += f"; did you mean {env_name(guess)}?"
            return message
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return ""
        model = annotation
    return ""


def env_name(loc: tuple[str, ...]) -> str:
    """The environment variable that sets a field, e.g. FORESIGHT_STORE__DATA_DIR."""
    return ENV_PREFIX + ENV_DELIMITER.join(part.upper() for part in loc)


def _describe(
    error: ValidationError,
    positions: Mapping[tuple[str, ...], Position],
    env: Mapping[str, str],
    overrides: Mapping[str, Any],
) -> str:
    upper_env = {k.upper() for k in env}
    lines = []
    for item in error.errors():
        loc = tuple(str(p) for p in item["loc"])
        field = ".".join(loc) or "settings"
        msg = item["msg"]
        unknown = item["type"] == "extra_forbidden"
        where = (*loc, _KEY) if unknown and (*loc, _KEY) in positions else loc
        source = _source_of(where, positions, upper_env, overrides)
        if unknown:
            msg = f"unknown setting (valid: {', '.join(_valid_names(loc[:-1]))})"
        lines.append(f"{source}: {field}: {msg}")
    return "invalid settings:\n  " + "\n  ".join(lines)


def _source_of(
    loc: tuple[str, ...],
    positions: Mapping[tuple[str, ...], Position],
    upper_env: set[str],
    overrides: Mapping[str, Any],
) -> str:
    if loc and loc[0] in overrides:
        return "command line"
    for depth in range(len(loc), 0, -1):
        if env_name(loc[:depth]) in upper_env:
            return f"environment variable {env_name(loc[:depth])}"
    for depth in range(len(loc), 0, -1):
        if loc[:depth] in positions:
            return str(positions[loc[:depth]])
    return "default"


def _valid_names(group: tuple[str, ...]) -> list[str]:
    model: type[BaseModel] = Settings
    for part in group:
        annotation = model.model_fields[part].annotation
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        model = annotation
    return sorted(model.model_fields)


def iter_settings_reference() -> Iterator[tuple[str, str, str, str]]:
    """(environment variable, type, default, description) for every leaf setting."""
    yield from _walk(Settings, ())


def _walk(model: type[BaseModel], prefix: tuple[str, ...]) -> Iterator[tuple[str, str, str, str]]:
    for name, info in model.model_fields.items():
        annotation = info.annotation
        loc = (*prefix, name)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _walk(annotation, loc)
            continue
        default = info.get_default(call_default_factory=True)
        bounds = [_bound(m) for m in info.metadata]
        description = (info.description or "") + (
            f" Bounds: {', '.join(bounds)}." if bounds else ""
        )
        yield env_name(loc), _type_name(annotation), _show_default(default), description


_BOUNDS = {"gt": ">", "ge": "≥", "lt": "<", "le": "≤"}


def _bound(meta: Any) -> str:
    for attr, sign in _BOUNDS.items():
        value = getattr(meta, attr, None)
        if value is not None:
            return f"{sign} {value}"
    return str(meta)


def _type_name(annotation: Any) -> str:
    if get_origin(annotation) is Literal:
        return " \\| ".join(f"`{a}`" for a in get_args(annotation))
    if get_origin(annotation) in (tuple, list):
        return "list of " + _type_name(get_args(annotation)[0])
    args = [a for a in get_args(annotation) if a is not type(None)]
    if args:
        suffix = " (optional)" if len(args) < len(get_args(annotation)) else ""
        return " \\| ".join(_type_name(a) for a in args) + suffix
    names = {
        Path: "path",
        SecretStr: "secret",
        float: "number",
        int: "integer",
        bool: "boolean",
        str: "string",
    }
    return names.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _show_default(value: Any) -> str:
    if value is None:
        return "unset"
    if isinstance(value, SecretStr):
        return "(secret)"
    return f"`{value}`"
