"""The library example of README.md runs verbatim, in an empty folder it leaves empty."""

from __future__ import annotations

import subprocess
import sys

from repo_scripts import REPO

_OPENING = "## Example\n\n```python\n"


def readme_library_block() -> str:
    """The ```python block under "## Example" in README.md."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(_OPENING) + len(_OPENING)
    return text[start : text.index("```", start)]


def test_the_readme_library_snippet_runs_verbatim_and_leaves_no_file(tmp_path):
    script = tmp_path.parent / f"{tmp_path.name}-readme.py"
    script.write_text(readme_library_block(), encoding="utf-8")
    done = subprocess.run([sys.executable, str(script)], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    rule, pruned, *_ = done.stdout.splitlines()[0].split()
    assert rule == "qhpo-stop" and 0 < int(pruned) < 40  # the measured rule ran, and pruned
    assert "20 of 200 points in the QUBO" in done.stdout  # QSVR's subsample, shown
    assert list(tmp_path.iterdir()) == []  # no database, no checkpoint left behind
