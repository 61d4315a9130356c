"""The installed layout: one ``linkbert`` namespace over the fixed top-level folders, nothing under a bare name."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PRODUCT_FOLDERS = ("linkbert", "pipeline", "train", "eval", "schemas")
MAX_MODULE_LINES = 560


def _python(code: str, tmp_path) -> subprocess.CompletedProcess:
    # From outside the repository, with nothing of it on sys.path but what the install provides.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    return subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True)


def test_subpackages_import_under_the_namespace(tmp_path):
    result = _python("import linkbert.pipeline, linkbert.train, linkbert.eval, linkbert.schemas, linkbert.cli; "
                     "import linkbert.pipeline.sources.wikipedia, linkbert.pipeline.edges.tfidf", tmp_path)
    assert result.returncode == 0, result.stderr


def test_bare_names_are_not_installed(tmp_path):
    code = ("import importlib.util, sys; "
            "found = [n for n in ('pipeline', 'train', 'eval', 'schemas') if importlib.util.find_spec(n)]; "
            "print(','.join(found)); sys.exit(1 if found else 0)")
    result = _python(code, tmp_path)
    assert result.returncode == 0, f"importable under a bare name: {result.stdout.strip()}"


def test_python_dash_m_linkbert_is_the_command(tmp_path):
    result = subprocess.run([sys.executable, "-m", "linkbert", "--help"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    for command in ("synth", "pipeline", "report", "train", "eval"):
        assert command in result.stdout


def test_every_source_registers_its_reconciliation():
    from linkbert.pipeline import sources

    assert set(sources.names()) >= {"wikipedia", "pubmed", "pmc", "pubmed,pmc"}
    for name in sources.names():
        source = sources.get(name)
        holds, lines = source.reconcile({})
        assert isinstance(holds, bool) and isinstance(lines, list)


def test_no_product_module_holds_several_jobs_by_size():
    oversized = []
    for folder in PRODUCT_FOLDERS:
        for path in (REPO / folder).rglob("*.py"):
            lines = path.read_text(encoding="utf-8").count("\n")
            if lines > MAX_MODULE_LINES:
                oversized.append(f"{path.relative_to(REPO)}: {lines} lines")
    assert not oversized, oversized
