"""Static checks of the Dockerfiles (no Docker engine here): pinned bases, COPY sources that exist,
and the project installed without letting pip replace torch."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCKERFILES = sorted((REPO / "docker").glob("Dockerfile.*"))


def _instructions(path):
    text = re.sub(r"\\\n", " ", path.read_text())
    return [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_both_images_exist():
    assert {p.name for p in DOCKERFILES} == {"Dockerfile.beam-worker", "Dockerfile.trainer"}


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=lambda p: p.name)
def test_dockerfile_is_well_formed(dockerfile):
    instructions = _instructions(dockerfile)
    assert instructions[0].startswith("FROM ")
    base = instructions[0].split()[1]
    assert ":" in base and not base.endswith(":latest"), f"{dockerfile.name}: pin the base image tag"
    known = {"FROM", "WORKDIR", "COPY", "RUN", "ENV", "ENTRYPOINT", "CMD", "ARG", "LABEL", "USER"}
    for line in instructions:
        assert line.split()[0] in known, f"{dockerfile.name}: unknown instruction {line!r}"
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (REPO / source).exists(), f"{dockerfile.name}: COPY source {source} does not exist"
    runs = " ".join(line for line in instructions if line.startswith("RUN "))
    assert "--no-deps ." in runs, "install the project with --no-deps so the image's torch is kept"


def test_beam_worker_matches_the_installed_beam():
    import apache_beam

    base = _instructions(REPO / "docker" / "Dockerfile.beam-worker")[0].split()[1]
    assert base.endswith(":" + apache_beam.__version__), "worker image and launcher must run the same Beam version"
