"""Masking credentials before anything is printed or logged: the one place that decides what a
credential looks like.

:func:`redact_url` hides the password of ``user:password@host`` and the values of query
parameters named like credentials (``token``, ``access_token``, ``api_key``, ``password``,
``sig``...); :func:`redact_text` does so for every URL inside a message (an HTTP client's
error names the URL it failed on); :func:`redact_headers` hides the values of credential
headers (``Authorization``, ``Cookie``, ``X-Api-Key``, any name with ``token``, ``secret``,
``key``, ``auth`` or ``password`` in it), keeping an ``Authorization`` scheme (``Bearer``,
``Basic``) so that the output still says which kind is set; :func:`redact_settings` applies
them to a JSON-like dump of settings. Masked values read :data:`MASK`, as pydantic prints a
``SecretStr``. Everything else is returned as it was, so the output stays useful.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "**********"

# Parts of a parameter or header name that mark its value as a credential.
_CREDENTIAL = re.compile(
    r"token|secret|passw|pwd|auth|api[-_]?key|apikey|access[-_]?key|private[-_]?key|"
    r"signature|^sig$|^key$|cookie|session|credential",
    re.IGNORECASE,
)
_URL = re.compile(r"\b[a-zA-Z][a-zA-Z0-9+.-]*://[^\s\"'<>]+")
_AUTH_SCHEME = re.compile(r"^\s*([A-Za-z][A-Za-z0-9_-]*)\s+\S")


def is_credential_name(name: str) -> bool:
    """Whether a header, query parameter or settings key named ``name`` holds a credential."""
    return bool(_CREDENTIAL.search(name))


def redact_url(url: str) -> str:
    """``url`` with its password and credential query values masked."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, _, host = netloc.rpartition("@")
        user, sep, _password = userinfo.partition(":")
        # A lone userinfo is a token more often than a user name (https://TOKEN@host).
        netloc = f"{user}:{MASK}@{host}" if sep else f"{MASK}@{host}"
    query = parts.query
    if query:
        pairs = parse_qsl(query, keep_blank_values=True)
        if any(is_credential_name(k) for k, _ in pairs):
            query = "&".join(
                f"{quote(k, safe='[]')}={MASK if is_credential_name(k) else quote(v, safe='')}"
                for k, v in pairs
            )
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """``text`` with every URL in it passed through :func:`redact_url`."""
    return _URL.sub(lambda m: redact_url(m.group(0)), text)


def redact_header(name: str, value: str) -> str:
    """One header's value as it may be shown."""
    if not is_credential_name(name):
        return value
    scheme = _AUTH_SCHEME.match(value) if name.lower().endswith("authorization") else None
    return f"{scheme.group(1)} {MASK}" if scheme else MASK


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """``headers`` with credential values masked."""
    return {name: redact_header(name, value) for name, value in headers.items()}


def _holds_credential(key: str) -> bool:
    # `secret_file`, `token_file`: where a credential is, which may be shown.
    return is_credential_name(key) and not key.endswith(("_file", "_dir", "_path"))


def redact_settings(data: Any) -> Any:
    """A JSON-like dump of settings with credentials masked: ``headers`` mappings, values of
    keys named like credentials, and URLs inside any string."""
    if isinstance(data, Mapping):
        out: dict[Any, Any] = {}
        for key, value in data.items():
            if key == "headers" and isinstance(value, Mapping):
                out[key] = redact_headers({str(k): str(v) for k, v in value.items()})
            elif isinstance(value, str) and value and _holds_credential(str(key)):
                out[key] = MASK
            else:
                out[key] = redact_settings(value)
        return out
    if isinstance(data, list | tuple):
        return [redact_settings(v) for v in data]
    if isinstance(data, str):
        return redact_text(data)
    return data
