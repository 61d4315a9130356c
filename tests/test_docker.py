"""Static checks of the Dockerfiles (no Docker engine here): pinned bases, COPY sources that exist,
and the project installed without letting pip replace torch."""

import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name

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


def _constraints() -> dict[str, str]:
    lines = (REPO / "docker" / "constraints.txt").read_text().splitlines()
    pairs = [line.split("==") for line in lines if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version for name, version in pairs}


# Libraries only the trainer, the launcher or the report need; workers run the pipeline's DoFns alone.
NOT_ON_WORKERS = {"apache-beam", "torch", "deepspeed", "safetensors", "tensorboard", "tqdm", "seqeval", "matplotlib"}


def test_beam_worker_runs_the_locked_beam_and_every_pipeline_library():
    instructions = _instructions(REPO / "docker" / "Dockerfile.beam-worker")
    locked = _constraints()
    base = instructions[0].split()[1]
    assert base == f"apache/beam_python3.11_sdk:{locked['apache-beam']}", "worker image and launcher must run the same Beam version"
    runs = " ".join(line for line in instructions if line.startswith("RUN "))
    assert "-c constraints.txt" in runs and any(line.startswith("COPY docker/constraints.txt ") for line in instructions)
    installed = {canonicalize_name(name) for name in re.findall(r'"([A-Za-z0-9_.-]+)"', runs)}
    needed = set(_project_requirements()) - NOT_ON_WORKERS
    assert needed <= installed, f"the worker image lacks {sorted(needed - installed)}"
    assert installed <= set(locked), f"not in docker/constraints.txt: {sorted(installed - set(locked))}"


def test_the_venv_runs_the_locked_versions():
    """make venv installs with -c docker/constraints.txt: what the tests run is what the lock says."""
    import importlib.metadata

    locked = _constraints()
    for name in ("apache-beam", "transformers", "tokenizers", "deepspeed", "pyarrow", "lxml", "torch"):
        installed = importlib.metadata.version(name).split("+")[0]
        assert installed == locked[name], f"{name} {installed} installed, docker/constraints.txt says {locked[name]}: run make venv"
    assert set(_project_requirements()) <= set(locked), "every dependency has a locked version"


def _pins(dockerfile) -> dict[str, str]:
    runs = " ".join(line for line in _instructions(dockerfile) if line.startswith("RUN "))
    return {name.lower(): version for name, version in re.findall(r'"([A-Za-z0-9_.-]+)==([^"]+)"', runs)}


def _project_requirements() -> dict:
    import tomllib

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    return {canonicalize_name(Requirement(line).name): Requirement(line) for line in project["dependencies"]}


def test_trainer_image_pins_fit_pyproject_and_the_tested_versions():
    import importlib.metadata

    from packaging.version import Version

    dockerfile = REPO / "docker" / "Dockerfile.trainer"
    pins = _pins(dockerfile)
    assert {"deepspeed", "transformers", "tokenizers"} <= set(pins), "pin DeepSpeed, transformers and tokenizers exactly"
    requirements = _project_requirements()
    for name, version in pins.items():
        assert requirements[name].specifier.contains(version, prereleases=True), f"{name}=={version} outside pyproject's {requirements[name]}"
    locked = _constraints()
    for name, version in pins.items():  # the combination this suite runs with
        assert version == locked[canonicalize_name(name)], f"image pins {name}=={version}, docker/constraints.txt says {locked[name]}"

    instructions = _instructions(dockerfile)
    base = instructions[0].split()[1]
    assert re.fullmatch(r"nvcr\.io/nvidia/pytorch:\d\d\.\d\d-py3", base), base
    [base_torch] = [line.split("=", 1)[1] for line in instructions if line.startswith("ARG BASE_TORCH=")]
    assert requirements["torch"].specifier.contains(base_torch, prereleases=True), base_torch
    # transformers turns torch off below its minimum, comparing versions as packaging does: a
    # pre-release of the minimum (2.6.0a0) is below it.
    minimum = [r for r in importlib.metadata.requires("transformers") if r.startswith("torch>=")][0]
    minimum = Version(re.match(r"torch>=([\d.]+)", minimum).group(1))
    assert Version(base_torch) >= minimum, f"the base image's torch {base_torch} is below transformers' minimum {minimum}"
