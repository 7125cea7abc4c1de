"""Refresh the result tables in README.md from the results files (nothing is typed by hand).

Each block between ``<!-- report: FILE [FILE ...] -->`` and ``<!-- /report -->`` is replaced by
``python -m spectran_tutorial report FILE ...``.
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from spectran_tutorial.report import report  # noqa: E402

README = Path(__file__).resolve().parent.parent / "README.md"
BLOCK = re.compile(r"(<!-- report: (?P<files>[^>]*?) -->\n).*?(<!-- /report -->)", re.S)


def refresh(match: re.Match) -> str:
    files = match.group("files").split()
    return match.group(1) + report(files) + "\n" + match.group(3)


README.write_text(BLOCK.sub(refresh, README.read_text()))
print("README.md tables refreshed")
