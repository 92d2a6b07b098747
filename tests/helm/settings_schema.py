"""The part of ``values.schema.json`` that describes ``config``, generated from the settings.

``config`` is foresight's settings file, so its schema is the settings model's own JSON
schema, adapted to what Helm's validators read (draft-07 ``definitions``) and to what the
settings loader accepts beyond the model's JSON types (durations written as ``30s``). Secret
fields accept only null: their values belong in Secrets, not in a ConfigMap.

Regenerate after changing a setting::

    python -m tests.helm.settings_schema
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from autoscaler.settings import Settings

SCHEMA_FILE = Path(__file__).resolve().parents[2] / "helm" / "foresight" / "values.schema.json"

# Fields validated "before" by the loader: a number of seconds, or a duration string.
_DURATIONS = {"group_wait", "group_interval", "repeat_interval"}
_SECRET_HELP = (
    "Never set in `config` (a ConfigMap): use `webhookSecret` or `secretMounts` and `secret_file`."
)


def _adapt(node: Any) -> Any:
    if isinstance(node, list):
        return [_adapt(item) for item in node]
    if not isinstance(node, dict):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "$ref":
            out[key] = value.replace("#/$defs/", "#/definitions/")
        elif key == "properties":
            out[key] = {name: _property(name, spec) for name, spec in value.items()}
        else:
            out[key] = _adapt(value)
    return out


def _property(name: str, spec: dict[str, Any]) -> Any:
    if spec.get("writeOnly") or any(
        branch.get("writeOnly") for branch in spec.get("anyOf", []) if isinstance(branch, dict)
    ):
        return {"type": "null", "description": _SECRET_HELP}
    adapted = _adapt(spec)
    if name in _DURATIONS:
        duration = {"type": "string", "pattern": r"^([0-9]+(ms|s|m|h|d|w|y))+$"}
        if "anyOf" in adapted:
            adapted["anyOf"].append(duration)
        else:
            number = {
                k: adapted.pop(k) for k in list(adapted) if k not in ("description", "default")
            }
            adapted["anyOf"] = [number, duration]
    if set(adapted) == {"$ref"}:
        # A group left empty in values.yaml (every line commented) is null: Helm drops it.
        return {"anyOf": [adapted, {"type": "null"}]}
    return adapted


def settings_schema() -> tuple[dict[str, Any], dict[str, Any]]:
    """``(schema of config, definitions)`` for values.schema.json."""
    raw = Settings.model_json_schema()
    definitions = {name: _adapt(spec) for name, spec in raw.pop("$defs").items()}
    config = _adapt(raw)
    config["description"] = (
        "foresight's settings file (`foresight settings --reference`), rendered into a ConfigMap."
    )
    return config, definitions


def main() -> None:
    schema = json.loads(SCHEMA_FILE.read_text(encoding="utf-8"))
    config, definitions = settings_schema()
    schema["properties"]["config"] = config
    schema["definitions"] = definitions
    SCHEMA_FILE.write_text(
        json.dumps(schema, indent=2, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    print(f"wrote {SCHEMA_FILE}")


if __name__ == "__main__":
    main()
