"""The Dockerfile, checked statically (no container engine is needed): stages, a pinned
slim base, no build tools in the final image, a fixed non-root user, the entrypoint the
chart relies on, and a build context that holds what the build copies."""

from __future__ import annotations

import fnmatch
import json
import re
import tomllib
from dataclasses import dataclass, field

from tests.helm.helmchart import REPO, manifests

DOCKERFILE = REPO / "Dockerfile"
DOCKERIGNORE = REPO / ".dockerignore"
BUILD_TOOLS = re.compile(r"\b(gcc|g\+\+|clang|make|build-essential|cargo|rustc|apt-get install)\b")


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


def instructions() -> list[tuple[str, str]]:
    """(KEYWORD, arguments) of every instruction, continuation lines joined."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continued line"
    return out


def stages() -> list[Stage]:
    args: dict[str, str] = {}
    result: list[Stage] = []
    for keyword, rest in instructions():
        if keyword == "ARG" and not result:
            arg, _, default = rest.partition("=")
            args[arg] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], parts[0])
            stage = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            result.append(Stage(base, stage))
        else:
            result[-1].instructions.append((keyword, rest))
    return result


def image_user() -> int:
    """The numeric UID the final stage runs as."""
    (user,) = stages()[-1].all("USER")
    return int(user.split(":")[0])


def test_multi_stage_on_a_pinned_slim_python() -> None:
    found = stages()
    assert len(found) >= 2
    assert found[0].name == "build"
    requires = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "requires-python"
    ]
    minimum = requires.removeprefix(">=")
    for stage in found:
        base = stage.base
        pinned = re.fullmatch(r"python:(\d+\.\d+)\.\d+-slim-\w+(@sha256:[0-9a-f]{64})?", base)
        assert pinned, f"{base}: not an exact slim Python tag"
        assert pinned.group(1) == minimum
    # The final stage takes only the built virtualenv from the build stage.
    final = found[-1]
    copies = final.all("COPY")
    assert copies == ["--from=build /opt/foresight /opt/foresight"]


def test_no_build_tools_in_the_final_image() -> None:
    final = stages()[-1]
    for run in final.all("RUN"):
        assert not BUILD_TOOLS.search(run), run


def test_runs_as_a_fixed_non_root_user() -> None:
    uid = image_user()
    assert uid >= 10000
    (user,) = stages()[-1].all("USER")
    assert re.fullmatch(r"\d+:\d+", user), "numeric, so that runAsNonRoot can verify it"
    created = " ".join(stages()[-1].all("RUN"))
    assert f"--uid {uid}" in created


def test_entrypoint_is_foresight_run() -> None:
    final = stages()[-1]
    (entrypoint,) = final.all("ENTRYPOINT")
    (cmd,) = final.all("CMD")
    assert json.loads(entrypoint) == ["foresight"]
    assert json.loads(cmd) == ["run"]
    scripts = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["project"][
        "scripts"
    ]
    assert "foresight" in scripts
    assert any("foresight --version" in run for run in stages()[0].all("RUN"))


def test_the_chart_runs_the_image_as_built() -> None:
    rendered = manifests({})
    container = rendered.container()
    assert container["command"] == ["foresight"]
    assert container["args"][-1] == "run"
    pod = rendered.workload()["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsUser"] == image_user()
    assert pod["securityContext"]["fsGroup"] == image_user()
    (exposed,) = stages()[-1].all("EXPOSE")
    assert container["ports"][0]["containerPort"] == int(exposed)


def _ignored(path: str, patterns: list[str]) -> bool:
    ignored = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        body = pattern.removeprefix("!").rstrip("/")
        if fnmatch.fnmatch(path, body) or fnmatch.fnmatch(path, body + "/*"):
            ignored = not negate
    return ignored


def _dockerignore() -> list[str]:
    return [
        line.strip()
        for line in DOCKERIGNORE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]


def test_the_build_context_holds_what_is_copied() -> None:
    patterns = _dockerignore()
    for stage in stages():
        for copy in stage.all("COPY"):
            if copy.startswith("--from="):
                continue
            for source in copy.split()[:-1]:
                path = source.rstrip("/")
                assert (REPO / path).exists(), source
                if path != ".":
                    assert not _ignored(path, patterns), f"{source} is excluded by .dockerignore"
    for noise in (".venv", "tests", "helm", ".git", "autoscaler/__pycache__"):
        assert _ignored(noise, patterns), noise


def test_the_build_context_is_every_package() -> None:
    """The image is built from every top-level package: those in the repository, those
    pyproject installs and those .dockerignore lets into the build context are one list."""
    in_repo = {p.parent.name for p in REPO.glob("*/__init__.py")} - {"tests"}
    find = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["packages"]["find"]["include"]
    installed = {pattern.removesuffix("*") for pattern in find}
    allowed = {p.removeprefix("!").rstrip("/") for p in _dockerignore() if p.startswith("!")}
    assert installed == in_repo
    assert allowed == installed | {"pyproject.toml", "README.md"}
    copies = stages()[0].all("COPY")
    assert copies[-1].split() == [".", "./"], "the build installs the whole allowlisted context"
