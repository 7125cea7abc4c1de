import pytest

from spectran_tutorial.errors import SpectranError
from spectran_tutorial.report import Table, markdown_to_html, metric, summarize, version_check


def _row(method, seed, masked, unmasked=None, data="aaa", table=1, commit="c1"):
    row = {"dataset": "d", "backbone": "sasrec", "method": method, "seed": seed,
           "test": {"ndcg@10": masked}, "diagnostics": {}, "git_commit": commit}
    if unmasked is not None:
        row.update(test_unmasked={"ndcg@10": unmasked}, data_files={"interactions.tsv": data},
                   recipe={"trainer": 1, "table": table, "backbone": 1})
    return row


def test_metric_names_say_the_protocol():
    assert metric("ndcg@10", "masked") == "test.ndcg@10"
    assert metric("hr@20", "unmasked", "valid") == "valid_unmasked.hr@20"
    with pytest.raises(SpectranError):
        metric("ndcg@10", "filtered")


def test_rows_without_the_unmasked_protocol_are_left_out_of_its_tables():
    rows = [_row("id", 0, 0.2), _row("id", 1, 0.3, 0.1), _row("pca", 0, 0.4, 0.2)]
    masked = {c["method"]: c["seeds"] for c in summarize(rows, (metric("ndcg@10", "masked"),))}
    unmasked = {c["method"]: c["seeds"] for c in summarize(rows, (metric("ndcg@10", "unmasked"),))}
    assert masked == {"id": 2, "pca": 1} and unmasked == {"id": 1, "pca": 1}


def test_version_check_refuses_mixed_data_and_recipes_and_counts_the_rest():
    same = [_row("id", 0, 0.2, 0.1), _row("id", 1, 0.3, 0.1, commit="c2-dirty"), _row("id", 2, 0.3)]
    problems, note = version_check(same)
    assert problems == [] and "3 runs from 2 commits" in note and "1 from trees with uncommitted" in note
    assert "1 stored before data fingerprints" in note
    problems, _ = version_check([_row("id", 0, 0.2, 0.1), _row("id", 1, 0.2, 0.1, data="bbb")])
    assert problems == ["d/interactions.tsv has 2 versions"]
    problems, _ = version_check([_row("pca", 0, 0.2, 0.1), _row("pca", 1, 0.2, 0.1, table=2)])
    assert problems == ["pca (table) has recipe versions [1, 2]"]


def test_report_refuses_mixed_versions_unless_allowed(tmp_path):
    import json
    from spectran_tutorial.report import report
    path = tmp_path / "r.jsonl"
    rows = [_row("id", 0, 0.2, 0.1), _row("id", 1, 0.2, 0.1, data="bbb")]
    for r in rows:
        r["diagnostics"] = {"effective_rank": 3.0}
        r["seconds_per_epoch"] = 1.0
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(SpectranError, match="mix versions: d/interactions.tsv has 2 versions"):
        report([path], protocol="unmasked")
    assert "Protocol: unmasked" in report([path], protocol="unmasked", allow_mixed=True)


def test_tables_render_as_html_tables():
    md = Table("| a | b |\n|---|---|\n| **x** | `y` < 1 |\n\nA note.")
    html = md._repr_html_()
    assert html.count("<table") == 1 and ">a</th>" in html and 'overflow-x:auto' in html and "padding" in html and "<strong>x</strong>" in html
    assert "<code>y</code> &lt; 1" in html and "<p>A note.</p>" in html and "|" not in html
    assert markdown_to_html("no table") == "<p>no table</p>"


def test_stored_results_come_from_a_clone_or_are_fetched_once(tmp_path, monkeypatch):
    from spectran_tutorial.report import stored_results
    clone = tmp_path / "clone" / "results"
    clone.mkdir(parents=True)
    (clone / "a.jsonl").write_text('{"key": "a"}\n')
    assert stored_results(["a.jsonl"], folder=clone) == [clone / "a.jsonl"]
    remote = tmp_path / "remote" / "raw" / "main" / "results"       # the repository's layout of raw files
    remote.mkdir(parents=True)
    (remote / "b.jsonl").write_text('{"key": "b"}\n')
    monkeypatch.chdir(tmp_path)
    (fetched,) = stored_results(["b.jsonl"], folder=tmp_path / "none", repository=(tmp_path / "remote").as_uri())
    assert fetched.read_text() == '{"key": "b"}\n' and fetched == tmp_path.joinpath("results", "b.jsonl").relative_to(tmp_path)
    (remote / "b.jsonl").unlink()                                       # fetched once: no second download
    assert stored_results(["b.jsonl"], folder=tmp_path / "none", repository=(tmp_path / "remote").as_uri())
    with pytest.raises(SpectranError, match="c.jsonl: stored results not found"):
        stored_results(["c.jsonl"], folder=tmp_path / "none")


def test_the_results_record_shows_what_the_results_files_hold():
    import subprocess
    import sys
    from pathlib import Path
    repo = Path(__file__).resolve().parent.parent
    check = subprocess.run([sys.executable, "scripts/update_tables.py", "--check"], cwd=repo,
                           capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_own_runs_beside_the_stored_run_of_the_same_cell():
    from spectran_tutorial.report import beside_stored
    mine = [{"key": "k1", "dataset": "d", "method": "id", "seed": 0, "device": "gpu",
             "test": {"ndcg@10": 0.05}, "test_unmasked": {"ndcg@10": 0.04}},
            {"key": "k2", "dataset": "d", "method": "pca", "seed": 0, "device": "gpu",
             "test": {"ndcg@10": 0.03}, "test_unmasked": {"ndcg@10": 0.02}}]
    stored = [{"key": "k1", "device": "cpu", "test": {"ndcg@10": 0.051}}]   # stored before unmasked existed
    lines = beside_stored(mine, stored).splitlines()
    assert lines[2] == "| d | id | 0 | gpu | 0.0500 | 0.0400 | cpu | 0.0510 | — |"
    assert lines[3] == "| d | pca | 0 | gpu | 0.0300 | 0.0200 | — | — | — |"


def test_provenance_table_counts_runs_and_commits_per_device():
    from spectran_tutorial.report import provenance_table
    rows = [{"device": "cpu (x86_64, 1 threads)", "git_commit": c, "date": d}
            for c, d in (("aaa", "2026-11-02T10:00"), ("aaa", "2026-11-01T09:00"), ("bbb", "2026-11-05T00:00"))]
    rows.append({"device": "NVIDIA H200", "git_commit": "ccc", "date": "2026-12-01T00:00"})
    lines = provenance_table(rows).splitlines()
    assert lines[2] == "| cpu (x86_64, 1 threads) | 3 | 2 | 2026-11-01 | 2026-11-05 |"
    assert lines[3] == "| NVIDIA H200 | 1 | 1 | 2026-12-01 | 2026-12-01 |"
