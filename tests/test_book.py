"""The book builds offline with warnings as errors (Jupyter Book 1.x, notebooks not re-executed:
their committed outputs are shown, and pytest --nbval checks that they still hold)."""
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_book_builds_without_warnings(tmp_path):
    exe = Path(sys.executable).with_name("jupyter-book")
    out = subprocess.run([str(exe), "build", "-W", "-n", "--keep-going", "--path-output", str(tmp_path), str(REPO)],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    html = tmp_path / "_build" / "html" / "book"
    pages = sorted(p.name for p in html.glob("*.html"))
    assert "05_spectral_position_encoding.html" in pages and len(pages) >= 8
    assert "<img" in (html / "03_dimension_collapse.html").read_text()      # the plots are in the page
    shutil.rmtree(tmp_path / "_build", ignore_errors=True)
