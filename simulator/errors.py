"""The simulator's exception tree.

``SimulatorError`` is the root. ``ApiError`` is what the API server answers with: every one of
them turns into a Kubernetes ``Status`` object with its HTTP code, in one place
(``api_http``), so a handler never has to think about the wire. ``ScenarioError`` is a bad
scenario file and names the file, line, column and field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

__all__ = ["ApiError", "ScenarioError", "SimulatorError"]


class SimulatorError(Exception):
    """Root of every error the simulator raises on purpose."""


class ApiError(SimulatorError):
    """A request the API server refuses, with the ``Status`` it answers."""

    def __init__(
        self,
        code: int,
        reason: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        """The ``meta/v1 Status`` object for this error."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.details is not None:
            out["details"] = self.details
        return out

    # Constructors for the errors the real API server gives, with its wording, so that
    # clients that match on messages behave the same against the simulator.

    @classmethod
    def not_found(cls, group_resource: str, name: str, kind: str = "") -> ApiError:
        plural, _, group = group_resource.partition(".")
        return cls(
            404,
            "NotFound",
            f'{group_resource} "{name}" not found',
            {"name": name, "group": group, "kind": kind or plural},
        )

    @classmethod
    def already_exists(cls, group_resource: str, name: str) -> ApiError:
        plural, _, group = group_resource.partition(".")
        return cls(
            409,
            "AlreadyExists",
            f'{group_resource} "{name}" already exists',
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def conflict(cls, group_resource: str, name: str) -> ApiError:
        plural, _, group = group_resource.partition(".")
        return cls(
            409,
            "Conflict",
            f'Operation cannot be fulfilled on {group_resource} "{name}": the object has been '
            "modified; please apply your changes to the latest version and try again",
            {"name": name, "group": group, "kind": plural},
        )

    @classmethod
    def invalid(
        cls, kind: str, group: str, name: str, causes: Sequence[tuple[str, str]]
    ) -> ApiError:
        """422: ``causes`` are (field path, message) pairs."""
        text = "; ".join(f"{field}: {msg}" for field, msg in causes)
        prefix = f"{kind}.{group}" if group else kind
        return cls(
            422,
            "Invalid",
            f'{prefix} "{name}" is invalid: {text}',
            {
                "name": name,
                "group": group,
                "kind": kind,
                "causes": [
                    {"reason": "FieldValueInvalid", "message": msg, "field": field}
                    for field, msg in causes
                ],
            },
        )

    @classmethod
    def bad_request(cls, message: str) -> ApiError:
        return cls(400, "BadRequest", message)

    @classmethod
    def method_not_allowed(cls, method: str, what: str) -> ApiError:
        return cls(
            405,
            "MethodNotAllowed",
            f"the server does not allow this method on the requested resource ({method} {what})",
        )

    @classmethod
    def no_subresource(cls) -> ApiError:
        """A subresource the server does not serve (``pods/resize`` without the
        InPlacePodVerticalScaling feature): go-restful finds no route under a served group
        version and kube-apiserver wraps its text in a generic 404 ``Status``."""
        return cls(
            404,
            "NotFound",
            "the server could not find the requested resource",
            {"causes": [{"reason": "UnexpectedServerResponse", "message": "404: Page Not Found"}]},
        )

    @classmethod
    def no_route(cls, path: str) -> ApiError:
        return cls(
            404,
            "NotFound",
            f"the server could not find the requested resource ({path})",
            {},
        )

    @classmethod
    def unsupported_media_type(cls, content_type: str) -> ApiError:
        return cls(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown "
            f"format - accepted media types include: application/json-patch+json, "
            f"application/merge-patch+json, application/apply-patch+yaml "
            f"(got {content_type!r})",
        )

    @classmethod
    def gone(cls, message: str) -> ApiError:
        return cls(410, "Expired", message)


class ScenarioError(SimulatorError):
    """A scenario file that cannot be used; the message starts with ``file:line:col``."""

    def __init__(self, where: str, field: str, message: str) -> None:
        text = f"{where}: {field}: {message}" if field else f"{where}: {message}"
        super().__init__(text)
        self.where = where
        self.field = field
        self.message = message
