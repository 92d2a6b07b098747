"""``foresight silence``: add, list and expire silences of a running foresight (like amtool).

Requests carry ``Authorization: Bearer`` with the token of ``--token-file`` or of the
environment variable ``FORESIGHT_TOKEN``; the token is never printed, not even in errors.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import ssl
from pathlib import Path
from typing import Any

from autoscaler.cli.base import Command, CommandError
from autoscaler.settings import Settings

TOKEN_ENV = "FORESIGHT_TOKEN"


def _add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--url",
        help="foresight's API address (default: http://127.0.0.1:<server.api_port>)",
    )
    parser.add_argument(
        "--token-file",
        metavar="FILE",
        type=Path,
        help=f"file holding the bearer token to send (default: the {TOKEN_ENV} environment "
        "variable; in a pod, /var/run/secrets/kubernetes.io/serviceaccount/token)",
    )
    parser.add_argument(
        "--ca-file",
        metavar="FILE",
        type=Path,
        help="CA certificates (PEM) to verify an https --url with (default: the system's)",
    )
    sub = parser.add_subparsers(dest="silence_command", metavar="ACTION", required=True)
    add = sub.add_parser(
        "add",
        help="silence alerts matching every MATCHER",
        description="Create a silence. Matchers use Alertmanager's syntax: "
        "'alertname=Watchdog', 'severity=~\"warning|info\"', 'job!=api'. Prints its id.",
    )
    add.add_argument("matchers", nargs="+", metavar="MATCHER")
    add.add_argument("-c", "--comment", required=True, help="why the alerts are silenced")
    add.add_argument("-a", "--author", default=None, help="who silences (default: the user)")
    add.add_argument("-d", "--duration", default="1h", help="how long, e.g. 2h30m (default 1h)")
    add.add_argument("--start", help="RFC 3339 start (default: now)")
    add.add_argument("--end", help="RFC 3339 end (instead of --duration)")
    ls = sub.add_parser(
        "list",
        help="list silences (active and pending; --expired for the others)",
        description="List silences whose matchers pass every MATCHER filter.",
    )
    ls.add_argument("matchers", nargs="*", metavar="MATCHER")
    ls.add_argument("--expired", action="store_true", help="list expired silences instead")
    ls.add_argument("-q", "--quiet", action="store_true", help="print only ids")
    ls.add_argument("--json", action="store_true", help="print Alertmanager's JSON")
    expire = sub.add_parser("expire", help="end silences now", description="Expire silences.")
    expire.add_argument("ids", nargs="+", metavar="ID")


def _token(args: argparse.Namespace) -> str | None:
    """The bearer token of ``--token-file``, else of ``FORESIGHT_TOKEN``; None: send none."""
    path: Path | None = args.token_file
    if path is not None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as e:
            raise CommandError(f"{path}: cannot read the token file: {e}") from e
        if not token:
            raise CommandError(f"{path}: the token file is empty")
        return token
    return os.environ.get(TOKEN_ENV, "").strip() or None


def _verify(ca_file: Path | None) -> ssl.SSLContext | bool:
    if ca_file is None:
        return True
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (OSError, ssl.SSLError) as e:
        raise CommandError(f"{ca_file}: cannot read the CA certificates: {e}") from e


def _request(
    method: str, url: str, token: str | None, verify: ssl.SSLContext | bool, **kwargs: Any
) -> Any:
    import httpx  # noqa: PLC0415

    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        response = httpx.request(method, url, timeout=10, headers=headers, verify=verify, **kwargs)
    except httpx.HTTPError as e:
        raise CommandError(f"cannot reach foresight at {url}: {e}") from e
    if response.status_code == 401:
        hint = "" if token else f" (give --token-file or set {TOKEN_ENV})"
        raise CommandError(f"{method} {url}: 401: {_detail(response)}{hint}")
    if response.status_code >= 400:
        raise CommandError(f"{method} {url}: {response.status_code}: {_detail(response)}")
    return response.json() if response.content else None


def _detail(response: Any) -> Any:
    try:
        body = response.json()
    except ValueError:
        return response.text
    # The API's errors come as Prometheus' envelope or, from the silence API, a bare string.
    return body.get("error", body) if isinstance(body, dict) else body


def _matcher_json(text: str) -> list[dict[str, Any]]:
    from alerts.notify.matchers import MatcherError, parse_matchers, to_api  # noqa: PLC0415

    try:
        return [to_api(m) for m in parse_matchers(text)]
    except MatcherError as e:
        raise CommandError(f"invalid matcher {text!r}: {e}") from e


def _times(args: argparse.Namespace, now_ms: int) -> tuple[int, int]:
    from alerts.notify.silences import SilenceError, parse_time  # noqa: PLC0415
    from alerts.rules.durations import DurationError, parse_duration_ms  # noqa: PLC0415

    try:
        start = parse_time(args.start) if args.start else now_ms
        end = parse_time(args.end) if args.end else start + parse_duration_ms(args.duration)
    except (SilenceError, DurationError) as e:
        raise CommandError(str(e)) from e
    return start, end


def _run(args: argparse.Namespace, settings: Settings) -> int:
    from alerts.notify.silences import format_time  # noqa: PLC0415
    from runtime.clock import RealClock  # noqa: PLC0415

    base = (args.url or f"http://127.0.0.1:{settings.server.api_port}").rstrip("/")
    token = _token(args)
    verify = _verify(args.ca_file)
    if args.silence_command == "add":
        start, end = _times(args, round(RealClock().now() * 1000))
        body = {
            "matchers": [m for text in args.matchers for m in _matcher_json(text)],
            "startsAt": format_time(start),
            "endsAt": format_time(end),
            "createdBy": args.author or getpass.getuser(),
            "comment": args.comment,
        }
        print(_request("POST", f"{base}/api/v2/silences", token, verify, json=body)["silenceID"])
        return 0
    if args.silence_command == "expire":
        for silence_id in args.ids:
            _request("DELETE", f"{base}/api/v2/silence/{silence_id}", token, verify)
        return 0
    params = [("filter", m) for m in args.matchers]
    found = _request("GET", f"{base}/api/v2/silences", token, verify, params=params)
    wanted = [s for s in found if (s["status"]["state"] == "expired") == args.expired]
    if args.json:
        print(json.dumps(wanted, indent=2))
    elif args.quiet:
        for s in wanted:
            print(s["id"])
    else:
        _print_table(wanted)
    return 0


def _print_table(silences: list[dict[str, Any]]) -> None:
    def matchers(s: dict[str, Any]) -> str:
        ops = {(False, True): "=", (False, False): "!=", (True, True): "=~", (True, False): "!~"}
        return " ".join(
            f'{m["name"]}{ops[(m["isRegex"], m.get("isEqual", True))]}"{m["value"]}"'
            for m in s["matchers"]
        )

    rows = [("ID", "Matchers", "Ends At", "Created By", "Comment")]
    rows += [(s["id"], matchers(s), s["endsAt"], s["createdBy"], s["comment"]) for s in silences]
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r[:4], widths, strict=True)) + "  " + r[4])


COMMAND = Command(
    name="silence",
    help="add, list and expire silences",
    description="Manage the silences of a running foresight through its "
    "Alertmanager-compatible /api/v2/silences API on server.api_port, sending the bearer "
    f"token of --token-file or ${TOKEN_ENV}.",
    add_arguments=_add_arguments,
    run=_run,
)
