import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEFAULT_SHARED_DATA = REPO.parent / "shared" / "data"


def _real_data_root() -> tuple[Path, bool]:
    env = os.environ.get("LINKBERT_REAL_DATA")
    if env:
        root = Path(env)
        return (root if root.is_absolute() else (REPO / root).resolve()), True
    return DEFAULT_SHARED_DATA, False


@pytest.fixture
def real_data():
    """``real_data("wikipedia/….bz2")`` -> Path of a file under ../shared/data.

    When LINKBERT_REAL_DATA is set (CI sets it) a missing file fails the test; otherwise it skips.
    """
    root, required = _real_data_root()

    def locate(relative: str) -> Path:
        path = root / relative
        if not path.exists():
            message = f"real test data file missing: {path}"
            if required:
                pytest.fail(message + " (LINKBERT_REAL_DATA is set)")
            pytest.skip(message)
        return path

    return locate
