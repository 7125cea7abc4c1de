"""Refresh the result tables of the book's results record from the results files (nothing is typed by hand).

Each block between ``<!-- report: FILE [FILE ...] -->`` and ``<!-- /report -->`` is replaced by
``python -m spectran_tutorial report FILE ...``, each block between ``<!-- overview: FILE ... -->``
and ``<!-- /overview -->`` by the methods x datasets table of NDCG@10 over those files, and each
``<!-- twins: FILE ... -->`` block by SpecTran against its A-only twins (``report.ATTENTION_TWINS``).
A ``protocol=unmasked`` among the files of a report block picks the protocol of its metrics.
``--check`` changes nothing and fails when the page is out of date (a test runs it).
"""
import re
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from spectran_tutorial.report import load_rows, overview_table, report, twins_table  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
PAGE = ROOT / "book" / "07_results_record.md"
BLOCK = re.compile(r"(<!-- (?P<kind>report|overview|twins): (?P<files>[^>]*?) -->\n).*?(<!-- /(?P=kind) -->)", re.S)


def refresh(match: re.Match) -> str:
    words = match.group("files").split()
    files = [ROOT / w for w in words if "=" not in w]       # named relative to the repository
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        sys.exit(f"{PAGE}: a table block names results files that do not exist: {', '.join(missing)}")
    options = dict(w.split("=", 1) for w in words if "=" in w)
    tables = {"overview": overview_table, "twins": twins_table}
    kind = match.group("kind")
    table = tables[kind](load_rows(files)) if kind in tables else report(files, allow_mixed=True, **options)
    return match.group(1) + table + "\n" + match.group(4)


if __name__ == "__main__":
    fresh = BLOCK.sub(refresh, PAGE.read_text())
    if "--check" in sys.argv[1:]:   # a test: the page must already show what the results files hold
        if fresh != PAGE.read_text():
            sys.exit(f"{PAGE}: its tables differ from the results files; run python scripts/update_tables.py")
        print(f"{PAGE.name}: tables up to date")
    else:
        PAGE.write_text(fresh)
        print(f"{PAGE.name}: tables refreshed")
