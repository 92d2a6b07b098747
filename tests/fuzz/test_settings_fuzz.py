"""Fuzzing the settings loader: any YAML file and any ``FORESIGHT_*`` variables give settings
or a SettingsError naming the field and its source (file:line:col or the variable), never
another exception."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from autoscaler.settings import Settings, SettingsError, iter_settings_reference, load_settings
from tests.fuzz.mutations import mutated

FUZZ = settings(max_examples=150, deadline=None, derandomize=True, database=None)
ENV_NAMES = [name for name, _, _, _ in iter_settings_reference()]
GROUPS = sorted(Settings.model_fields)
# A list group (remote_write) has no fields of its own in the reference.
FIELDS = sorted({n.split("__", 1)[1].lower() for n in ENV_NAMES if "__" in n})

scalars = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["1s", "5m", "-1", "0", "1e9", "text", "json", "[]", "{}"])
)
keys = st.sampled_from(GROUPS) | st.sampled_from(FIELDS) | st.text(max_size=6)
values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(keys, inner, max_size=4),
    max_leaves=10,
)
documents = st.dictionaries(st.sampled_from(GROUPS) | keys, values, max_size=4)


@contextmanager
def _file(text: str) -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp, "foresight.yaml")
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        yield path


def _load(path: Path | None) -> None:
    try:
        load_settings(path)
    except SettingsError as e:
        message = str(e)
        assert message
        assert path is None or str(path) in message or "environment variable" in message, message


@FUZZ
@given(documents)
def test_random_yaml_mappings(doc: dict[str, object]) -> None:
    with _file(yaml.safe_dump(doc)) as path:
        _load(path)


VALID = """\
log:
  level: INFO
store:
  raw_retention_hours: 2
  data_dir: /var/lib/foresight
"""


def test_the_seed_is_valid() -> None:
    with _file(VALID) as path:
        assert load_settings(path).store.raw_retention_hours == 2


@FUZZ
@given(mutated(VALID) | st.text(max_size=80))
@example("{[a]: 1}")  # composes, but has an unhashable key for the loader
@example("a: !!python/object:os.system x")
def test_mutated_files(text: str) -> None:
    with _file(text) as path:
        _load(path)


def _env_name(group: str, field: str) -> str:
    return f"FORESIGHT_{group}__{field}".upper()


@FUZZ
@given(
    st.dictionaries(
        st.sampled_from(ENV_NAMES) | st.builds(_env_name, st.sampled_from(GROUPS), keys),
        st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=12)
        | st.sampled_from(["1", "-1", "true", "{}", "[]", '{"a": 1}', "1e999", "nan"]),
        max_size=3,
    )
)
@example({"FORESIGHT_NOTIFY__ROUTE__ROUTES": "00"})
@example({"FORESIGHT_NOTIFY__RECEIVERS": "["})
def test_random_environment(env: dict[str, str]) -> None:
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        _load(None)
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
