"""Build the Java client (`make java-client`) and run its programs against a live gateway."""

from __future__ import annotations

import fcntl
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import REPO

JAVA_BUILD = REPO / "build" / "java"
JACKSON_JARS = [Path("/usr/share/java") / f"jackson-{n}.jar" for n in ("databind", "core", "annotations")]
CHECK_MAIN = "io.ragserve.client.check.ClientCheck"
EXAMPLE_MAIN = "io.ragserve.example.Example"


def _jars_present() -> bool:
    return all(j.is_file() for j in JACKSON_JARS)


@pytest.fixture(scope="session")
def java_classpath() -> str:
    """`make java-client` (idempotent) and the classpath of the client, its example and checks.

    Skips only when the platform truly lacks the JDK or Jackson (and `make` could not install them).
    """
    if shutil.which("make") is None:
        pytest.skip("make is not installed: cannot build clients/java")
    JAVA_BUILD.mkdir(parents=True, exist_ok=True)
    with (JAVA_BUILD.parent / ".java-client.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # test sessions sharing this working copy build one at a time
        r = subprocess.run(
            ["make", "-s", "--no-print-directory", "java-client"],
            cwd=REPO, capture_output=True, text=True, timeout=900,
        )  # fmt: skip
    if r.returncode != 0:
        if shutil.which("javac") is None or shutil.which("java") is None or not _jars_present():
            pytest.skip(
                "Java client not built: this platform lacks a JDK 17 (javac) or Debian's "
                "libjackson2-databind-java, and `make java-client` could not install them:\n"
                + r.stderr[-2000:]
            )
        pytest.fail(f"`make java-client` failed:\n{r.stdout[-2000:]}\n{r.stderr[-4000:]}")
    parts = [JAVA_BUILD / "ragserve-client.jar", JAVA_BUILD / "app-classes", *JACKSON_JARS]
    return ":".join(str(p) for p in parts)


def run_java(
    classpath: str, main: str, *args: str, timeout_s: float = 600
) -> subprocess.CompletedProcess[str]:
    """Run a Java main class; its output is returned (and echoed for `pytest -s` and failure reports)."""
    java = shutil.which("java") or "java"
    r = subprocess.run(
        [java, "-cp", classpath, main, *args], capture_output=True, text=True, timeout=timeout_s
    )
    print(r.stdout)
    print(r.stderr)
    return r
