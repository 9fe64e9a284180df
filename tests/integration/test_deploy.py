"""The production image: its Dockerfile installs a platform that starts (issue 15, "What to
build" 2). The compose file: tests/integration/test_compose.py.

Without a container engine on this machine, the image is reproduced from the Dockerfile itself,
so that the two cannot drift: its ``COPY`` instructions are carried out (honouring
``.dockerignore`` as Docker does) into a temporary root, its ``RUN pip …`` commands run
verbatim in a fresh virtualenv (pip takes packages from the machine's configured index, as
``make install`` does), and its ``ENTRYPOINT`` + ``CMD`` start from that install as a non-root
user, with only the ports (any free one) and the image's absolute paths (under the temporary
root) adapted.
"""

from __future__ import annotations

import contextlib
import json
import os
import posixpath
import pwd
import queue
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.conftest import require_service

REPO = Path(__file__).resolve().parents[2]
DOCKERFILE = REPO / "docker" / "Dockerfile"
#: the ``ecosense up`` options whose values are ports (adapted to 0: any free port)
PORT_OPTIONS = ("--http-port", "--hj212-port", "--dashboard-port")


# --- .dockerignore, as Docker's builder reads it (moby/patternmatcher) -----------------------


@dataclass(frozen=True)
class IgnorePattern:
    regex: re.Pattern[str]
    exclusion: bool  # a ``!pattern`` line: matching paths are put back in


def _pattern_regex(pattern: str) -> re.Pattern[str]:
    """The regular expression of one cleaned .dockerignore pattern: ``*`` and ``?`` stop at
    ``/``, ``**`` spans any number of directories (zero included), ``[…]`` is a class and
    ``\\`` escapes the next character."""
    out, i = "^", 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "*" and pattern[i + 1 : i + 2] == "*":
            i += 1
            if pattern[i + 1 : i + 2] == "/":
                i += 1
            out += ".*" if i + 1 >= len(pattern) else "(.*/)?"
        elif ch == "*":
            out += "[^/]*"
        elif ch == "?":
            out += "[^/]"
        elif ch == "\\" and i + 1 < len(pattern):
            i += 1
            out += re.escape(pattern[i])
        elif ch == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                raise ValueError(f".dockerignore: unclosed [ in {pattern!r}")
            body = pattern[i + 1 : end]
            out += "[" + ("^" + body[1:] if body.startswith(("^", "!")) else body) + "]"
            i = end
        else:
            out += re.escape(ch)
        i += 1
    return re.compile(out + "$")


def read_dockerignore(text: str) -> list[IgnorePattern]:
    """The patterns of a .dockerignore file: one a line, ``#`` comments, ``!`` exceptions,
    each cleaned as a path relative to the context's root."""
    patterns = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        exclusion = line.startswith("!")
        line = line[1:].strip() if exclusion else line
        cleaned = posixpath.normpath(line).lstrip("/")
        if cleaned in ("", "."):
            continue
        patterns.append(IgnorePattern(_pattern_regex(cleaned), exclusion))
    return patterns


def ignored(path: str, patterns: list[IgnorePattern]) -> bool:
    """Whether ``path`` (relative, ``/``-separated) is left out of the build context: the
    last pattern matching it or one of its parent directories decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    matched = False
    for p in patterns:
        if p.exclusion != matched:
            continue
        if any(p.regex.match(c) for c in candidates):
            matched = not p.exclusion
    return matched


def context_files(root: Path, patterns: list[IgnorePattern]) -> list[str]:
    """Every file and symlink of the build context ``root`` that .dockerignore keeps."""
    prune = not any(p.exclusion for p in patterns)  # else a child may be put back in
    kept = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root).as_posix()
        prefix = "" if rel == "." else rel + "/"
        if prune:
            dirnames[:] = [d for d in dirnames if not ignored(prefix + d, patterns)]
        kept += [prefix + f for f in filenames if not ignored(prefix + f, patterns)]
        kept += [prefix + d for d in dirnames if (Path(dirpath) / d).is_symlink()]
    return sorted(kept)


def test_dockerignore_matches_as_docker_documents_it() -> None:
    """The examples of Docker's ".dockerignore file" reference, and a directory pattern
    leaving out everything below it."""
    p = read_dockerignore("# comment\n*/temp*\n*/*/temp*\ntemp?\n")
    assert ignored("somedir/temporary.txt", p) and ignored("somedir/temp", p)
    assert ignored("somedir/subdir/temp.txt", p) and ignored("tempa", p)
    assert not ignored("temp.txt", p) and not ignored("tempab", p)
    assert not ignored("a/b/c/temp", p)
    p = read_dockerignore("**/*.go\n")
    assert ignored("x.go", p) and ignored("a/b/x.go", p) and not ignored("x.gox", p)
    p = read_dockerignore("*.md\n!README*.md\nREADME-secret.md\n")
    assert ignored("CHANGES.md", p) and not ignored("README.md", p)
    assert ignored("README-secret.md", p)
    p = read_dockerignore("/tests\n.venv/\n**/__pycache__\n")
    assert ignored("tests/unit/test_x.py", p) and ignored(".venv/bin/python", p)
    assert ignored("gis/__pycache__/x.pyc", p) and not ignored("gis/tests.py", p)


# --- the Dockerfile --------------------------------------------------------------------------


@dataclass(frozen=True)
class Instruction:
    keyword: str
    args: str


def instructions(text: str) -> list[Instruction]:
    """A Dockerfile's instructions: comment lines dropped, ``\\`` continuations joined."""
    out, pending = [], ""
    for raw in text.splitlines():
        if raw.strip().startswith("#"):
            continue
        if raw.rstrip().endswith("\\"):
            pending += raw.rstrip()[:-1] + " "
            continue
        line = (pending + raw).strip()
        pending = ""
        if line:
            keyword, _, args = line.partition(" ")
            out.append(Instruction(keyword.upper(), args.strip()))
    assert not pending, "a continuation at the end of the Dockerfile"
    return out


def exec_form(args: str) -> list[str]:
    """The JSON ``["…", …]`` (exec) form of ENTRYPOINT, CMD or VOLUME."""
    value = json.loads(args)
    assert isinstance(value, list) and all(isinstance(v, str) for v in value), args
    return value


@dataclass
class Image:
    """What the Dockerfile builds, read from it."""

    copies: list[tuple[list[str], str, str]] = field(default_factory=list)  # srcs, dest, cwd
    runs: list[tuple[str, str, dict[str, str]]] = field(default_factory=list)  # cmd, cwd, env
    env: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    workdir: str = "/"
    expose: list[int] = field(default_factory=list)
    entrypoint: list[str] = field(default_factory=list)
    cmd: list[str] = field(default_factory=list)
    healthcheck: str = ""
    volumes: list[str] = field(default_factory=list)


def read_dockerfile(text: str) -> Image:
    image = Image()
    stages = 0
    for ins in instructions(text):
        if ins.keyword == "FROM":
            stages += 1
        elif ins.keyword == "ENV":
            words = shlex.split(ins.args)
            if "=" in words[0]:
                for word in words:
                    key, _, value = word.partition("=")
                    image.env[key] = value
            else:
                image.env[words[0]] = ins.args.split(None, 1)[1]
        elif ins.keyword == "WORKDIR":
            image.workdir = posixpath.join(image.workdir, ins.args)
        elif ins.keyword == "COPY":
            words = exec_form(ins.args) if ins.args.startswith("[") else shlex.split(ins.args)
            flags = [w for w in words if w.startswith("--")]
            assert not [f for f in flags if f.startswith("--from")], "single-stage: no COPY --from"
            *srcs, dest = [w for w in words if not w.startswith("--")]
            image.copies.append((srcs, posixpath.join(image.workdir, dest), image.workdir))
        elif ins.keyword == "RUN":
            image.runs.append((ins.args, image.workdir, dict(image.env)))
        elif ins.keyword == "USER":
            image.user = ins.args
        elif ins.keyword == "EXPOSE":
            image.expose += [int(p.split("/")[0]) for p in ins.args.split()]
        elif ins.keyword == "ENTRYPOINT":
            image.entrypoint = exec_form(ins.args)
        elif ins.keyword == "CMD":
            image.cmd = exec_form(ins.args)
        elif ins.keyword == "HEALTHCHECK":
            _options, sep, command = ins.args.partition(" CMD ")
            assert sep, "HEALTHCHECK … CMD command"
            image.healthcheck = command.strip()
        elif ins.keyword == "VOLUME":
            image.volumes += exec_form(ins.args)
        else:
            raise AssertionError(f"an instruction this test does not reproduce: {ins.keyword}")
    assert stages == 1, "keep the Dockerfile single-stage"
    return image


def is_pip(command: str) -> bool:
    return bool(re.match(r"(pip3?|python3? -m pip) install\b", command))


def option(args: list[str], name: str) -> str:
    assert name in args, f"{name} missing from {args}"
    return args[args.index(name) + 1]


def test_the_dockerfile_makes_a_non_root_image_with_a_health_check() -> None:
    """Non-root, ``ecosense up`` on all interfaces, every port it listens on exposed (HJ 212
    too), a health check on ``/healthz`` at the gateway's port, the data dir a volume; every
    RUN that is not pip installs no Python code (so the virtualenv reproduces the image)."""
    image = read_dockerfile(DOCKERFILE.read_text("utf-8"))
    assert image.user not in ("root", "0", "") and not image.user.startswith("0:")
    assert image.entrypoint == ["ecosense"] and image.cmd[0] == "up"
    assert option(image.cmd, "--host") == "0.0.0.0"
    ports = [int(option(image.cmd, o)) for o in PORT_OPTIONS]
    assert sorted(ports) == sorted(image.expose)
    http = option(image.cmd, "--http-port")
    assert f"127.0.0.1:{http}/healthz" in image.healthcheck
    assert image.env["ECOSENSE_DATA_DIR"] in image.volumes
    assert "ECOSENSE_DATABASE_URL" not in image.env  # alone: its embedded PostgreSQL
    assert [c for c, _, _ in image.runs if is_pip(c)], "the Dockerfile installs with pip"
    for command, _, _ in image.runs:
        assert is_pip(command) or not re.search(r"\b(pip|python|setup\.py)\b", command), command


def test_the_build_context_holds_every_installed_package_and_no_tests() -> None:
    """.dockerignore keeps what ``pip install .`` needs (pyproject.toml, README.md, every
    package pyproject.toml installs) and leaves out tests, caches and local state."""
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))
    packages = {p.rstrip("*") for p in config["tool"]["setuptools"]["packages"]["find"]["include"]}
    kept = set(context_files(REPO, read_dockerignore((REPO / ".dockerignore").read_text())))
    assert {"pyproject.toml", "README.md"} <= kept
    assert {f"{p}/__init__.py" for p in packages} <= kept
    tops = {k.split("/")[0] for k in kept}
    assert not tops & {"tests", ".git", ".venv", ".cache", ".ecosense", "benchmarks"}, tops
    assert not [k for k in kept if "__pycache__" in k.split("/")]


# --- the image, reproduced: install exactly what it copies, start it ------------------------


def copy_context(image: Image, root: Path) -> None:
    """Carry out the Dockerfile's COPY instructions from the repository into ``root`` (the
    image's ``/``)."""
    patterns = read_dockerignore((REPO / ".dockerignore").read_text("utf-8"))
    files = context_files(REPO, patterns)
    for srcs, dest, _cwd in image.copies:
        target = root / dest.lstrip("/")
        for src in srcs:
            assert not re.search(r"[*?\[]", src), f"COPY wildcards are not reproduced: {src}"
            src = posixpath.normpath(src)
            if src == ".":
                chosen = [(f, f) for f in files]
            elif (REPO / src).is_dir() and not (REPO / src).is_symlink():
                chosen = [(f, f[len(src) + 1 :]) for f in files if f.startswith(src + "/")]
            else:
                assert src in files, f"COPY {src}: not in the build context (.dockerignore?)"
                name = posixpath.basename(src) if dest.endswith("/") or len(srcs) > 1 else ""
                chosen = [(src, name)]
            assert chosen, f"COPY {src}: nothing to copy"
            for rel, to in chosen:
                out = target / to if to else target
                out.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(REPO / rel, out, follow_symlinks=False)


def in_root(root: Path, path: str) -> Path:
    """The image's absolute ``path`` under the temporary root."""
    return root / path.lstrip("/")


def base_env(venv: Path) -> dict[str, str]:
    """The machine's environment (its pip configuration included) without the test run's
    Python paths or EcoSense settings, the new virtualenv first on ``PATH``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
        and not k.startswith(("ECOSENSE_", "XDG_"))
    }
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


def run_as() -> tuple[int, int] | None:
    """(uid, gid) to start the platform as: the image runs as a non-root user, so a test run
    as root starts it as ``nobody`` (it owns the data dir, not the installed files)."""
    if os.geteuid() != 0:
        return None
    entry = pwd.getpwnam("nobody")
    return entry.pw_uid, entry.pw_gid


def venv_python(user: tuple[int, int] | None) -> str:
    """The interpreter to make the image's virtualenv with: this test run's own, unless the
    platform runs as another user who cannot reach it (pyenv's under a private ``/root``);
    then Debian's ``python3`` (bookworm's 3.11, the image's base too; its ``venv`` module is
    the ``python3-venv`` package that scripts/services.sh installs)."""
    prefix = Path(sys.base_prefix).resolve()
    if user is None or all(d.stat().st_mode & 0o001 for d in (prefix, *prefix.parents)):
        return sys.executable
    debian = "/usr/bin/python3"
    usable = (
        Path(debian).exists()
        and subprocess.run(
            [debian, "-c", "import ensurepip, sys; assert sys.version_info >= (3, 11)"],
            capture_output=True,
            check=False,
        ).returncode
        == 0
    )
    require_service("Debian's python3 with venv (python3-venv)", usable)
    return debian


@pytest.fixture(scope="module")
def workroot() -> Iterator[Path]:
    """A temporary root that another user may traverse (pytest's own is private)."""
    root = Path(tempfile.mkdtemp(prefix="ecosense-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def read_lines(proc: subprocess.Popen[str]) -> tuple[queue.Queue[str], threading.Thread]:
    """``proc``'s stdout lines, read (and closed at its end) by a thread, so that a silent hang
    does not block the test."""
    assert proc.stdout is not None
    stdout = proc.stdout
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        with stdout:
            for line in stdout:
                lines.put(line)

    thread = threading.Thread(target=pump, daemon=True)
    thread.start()
    return lines, thread


def wait_ready(proc: subprocess.Popen[str], lines: queue.Queue[str], timeout: float) -> str:
    """The ``ready …`` line of ``proc``, within ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while (left := deadline - time.monotonic()) > 0:
        try:
            line = lines.get(timeout=min(left, 1.0))
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        if line.startswith("ready "):
            return line.strip()
    code = proc.poll()
    raise AssertionError(
        f"exited with code {code} before ready" if code is not None else f"no ready in {timeout} s"
    )


@pytest.mark.integration
def test_the_image_installs_and_starts_on_its_embedded_database(workroot: Path) -> None:
    """Issue 15: "`ecosense up` in the image fails with ModuleNotFoundError: No module named
    'carbon'". The Dockerfile's COPY and ``RUN pip …`` lines, carried out in a fresh
    virtualenv, give a platform whose ``ENTRYPOINT`` + ``CMD`` (ports any free one, the data
    dir under the temporary root, no database URL: the embedded PostgreSQL) prints ``ready``
    as a non-root user, answers ``GET /healthz`` and the image's own HEALTHCHECK command,
    and exits 0 on SIGTERM (``docker stop``) with its database stopped."""
    image = read_dockerfile(DOCKERFILE.read_text("utf-8"))
    copy_context(image, workroot)
    venv = workroot / "venv"
    user = run_as()
    subprocess.run([venv_python(user), "-m", "venv", str(venv)], check=True, timeout=300)
    for command, cwd, env in image.runs:
        if not is_pip(command):
            continue  # system steps (the image's user): checked above to install no Python
        r = subprocess.run(
            ["/bin/sh", "-c", command],
            cwd=in_root(workroot, cwd),
            env={**base_env(venv), **env},
            capture_output=True,
            text=True,
            timeout=1800,
        )
        assert r.returncode == 0, f"RUN {command}:\n{r.stdout[-3000:]}\n{r.stderr[-3000:]}"

    data_dir = in_root(workroot, image.env["ECOSENSE_DATA_DIR"])
    workdir = in_root(workroot, image.workdir)
    for d in (data_dir, workdir):
        d.mkdir(parents=True, exist_ok=True)
    if user is not None:
        os.chown(data_dir, *user)
    args = list(image.cmd)
    for name in PORT_OPTIONS:
        args[args.index(name) + 1] = "0"
    env = {
        **base_env(venv),
        **image.env,
        "ECOSENSE_DATA_DIR": str(data_dir),
        "HOME": str(data_dir),  # the image user's home (useradd --home-dir)
    }
    exe = venv / "bin" / image.entrypoint[0]
    stderr = workroot / "up.stderr"
    with stderr.open("w") as err_file:
        proc = subprocess.Popen(
            [str(exe), *image.entrypoint[1:], *args],
            cwd=workdir,
            env=env,
            stdout=subprocess.PIPE,
            stderr=err_file,
            text=True,
            start_new_session=True,
            user=user[0] if user else None,
            group=user[1] if user else None,
            extra_groups=[] if user else None,
        )
    lines, reader = read_lines(proc)
    try:
        ready = wait_ready(proc, lines, timeout=300)
        http = dict(p.split("=", 1) for p in ready.split()[1:])["http"]
        health = httpx.get(http + "/healthz", timeout=10)
        assert health.status_code == 200, health.text
        assert health.json()["status"] == "ok"
        port = http.rsplit(":", 1)[1]
        check = image.healthcheck.replace(
            f"127.0.0.1:{option(image.cmd, '--http-port')}/", f"127.0.0.1:{port}/"
        )
        r = subprocess.run(
            ["/bin/sh", "-c", check],
            env=env,
            capture_output=True,
            text=True,
            timeout=30,
            user=user[0] if user else None,
            group=user[1] if user else None,
            extra_groups=[] if user else None,
        )
        assert r.returncode == 0, f"HEALTHCHECK {check}: {r.stderr}"
        proc.send_signal(signal.SIGTERM)  # as `docker stop` does, to the main process
        proc.wait(timeout=90)
    except BaseException:
        print(stderr.read_text(errors="replace")[-6000:], file=sys.stderr)
        raise
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        with contextlib.suppress(ProcessLookupError):  # its workers and dashboard, if left
            os.killpg(proc.pid, signal.SIGKILL)
        reader.join(timeout=30)
        database_left = stop_database(data_dir / "pg")
    assert proc.returncode == 0, stderr.read_text(errors="replace")[-6000:]
    assert not database_left, "the embedded database was stopped with the platform"


def stop_database(pgdata: Path) -> bool:
    """Stop an embedded PostgreSQL left running in ``pgdata`` (its server is detached, out of
    the platform's session); True when there was one."""
    pid_file = pgdata / "postmaster.pid"
    if not pid_file.exists():
        return False
    with contextlib.suppress(ValueError, ProcessLookupError, OSError):
        os.kill(int(pid_file.read_text().splitlines()[0]), signal.SIGQUIT)  # immediate stop
    return True
