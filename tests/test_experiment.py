import json
import os
import signal
import subprocess
import sys

import pytest
import torch

from spectran_tutorial.config import Config
from spectran_tutorial.experiment import cell_key, grid, read_results, run_grid
from spectran_tutorial.report import summarize

from conftest import REPO

TINY = """
import os
import signal
import sys
from spectran_tutorial.config import Config
from spectran_tutorial.experiment import grid, run_grid
base = Config().replace("data", max_users=120, data_dir=sys.argv[1]).replace("model", dim=8)
base = base.replace("train", epochs=3, batch_size=32, num_threads=1)
seen = []


def log(line):                # kill -9 this process inside the second cell, once it has begun training
    seen.append(line)
    if line.startswith("[3/") or any(s.startswith("[2/") for s in seen[:-1]) and line.startswith("  "):
        os.kill(os.getpid(), signal.SIGKILL)


run_grid(grid(base, ["amazon-office"], ["sasrec"], ["id", "pca"], [0, 1]), sys.argv[2], sys.argv[3], log=log)
"""


def tiny_cells(data_dir):
    base = Config().replace("data", max_users=120, data_dir=str(data_dir)).replace("model", dim=8)
    base = base.replace("train", epochs=3, batch_size=32, num_threads=1)
    return grid(base, ["amazon-office"], ["sasrec"], ["id", "pca"], [0, 1])


@pytest.mark.slow
def test_killed_grid_finishes_every_cell_exactly_once(data_dir, tmp_path):
    results, runs = tmp_path / "results.jsonl", tmp_path / "runs"
    script = tmp_path / "tiny.py"
    script.write_text(TINY)
    proc = subprocess.Popen([sys.executable, str(script), str(data_dir), str(results), str(runs)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    assert proc.wait(timeout=300) == -signal.SIGKILL          # killed in the middle of the second cell
    assert len(read_results(results)) == 1
    rows = run_grid(tiny_cells(data_dir), results, runs, log=lambda *_: None)
    keys = [r["key"] for r in read_results(results)]
    assert sorted(keys) == sorted(cell_key(c) for c in tiny_cells(data_dir))   # each cell exactly once
    assert len(rows) == 4
    again = run_grid(tiny_cells(data_dir), results, runs, log=lambda *_: None)  # nothing left to do
    assert len(read_results(results)) == 4 and len(again) == 4


def test_cells_finished_in_another_results_file_are_not_run_again(data_dir, tmp_path):
    cells = tiny_cells(data_dir)
    elsewhere = tmp_path / "cpu.jsonl"
    elsewhere.write_text("".join(json.dumps({"key": cell_key(c)}) + "\n" for c in cells[:3]))
    rows = run_grid(cells, tmp_path / "gpu.jsonl", tmp_path / "runs", log=lambda *_: None, skip_done_in=[elsewhere])
    assert [r["key"] for r in rows] == [cell_key(cells[3])]
    assert len(read_results(elsewhere)) == 3                       # only read


def test_summary_has_mean_and_spread():
    rows = [{"dataset": "d", "backbone": "b", "method": "m", "seed": s, "test": {"ndcg@10": v},
             "diagnostics": {}} for s, v in enumerate([0.1, 0.2, 0.3])]
    (cell,) = summarize(rows, metrics=("test.ndcg@10",))
    mean, std = cell["test.ndcg@10"]
    assert abs(mean - 0.2) < 1e-12 and abs(std - 0.1) < 1e-12 and cell["seeds"] == 3


def test_truncated_last_line_is_ignored(tmp_path):
    path = tmp_path / "r.jsonl"
    path.write_text(json.dumps({"key": "a"}) + "\n" + '{"key": "b", "te')
    assert [r["key"] for r in read_results(path)] == ["a"]


def test_key_ignores_bookkeeping_and_sees_every_result_setting(data_dir, tmp_path):
    from spectran_tutorial.runs import run_key
    base = Config().replace("data", data_dir=str(data_dir))
    assert run_key(base.replace("train", device="cuda", num_threads=4)) == run_key(base)
    copy = tmp_path / "copy"
    (copy / "amazon-office").mkdir(parents=True)
    for name in ("interactions.tsv", "items.jsonl"):     # the same bytes in another folder
        (copy / "amazon-office" / name).write_bytes((data_dir / "amazon-office" / name).read_bytes())
    assert run_key(base.replace("data", data_dir=str(copy))) == run_key(base)
    assert run_key(base.replace("method", threshold_init=0.5)) != run_key(base)
    assert run_key(base.replace("train", seed=1)) != run_key(base)
    assert run_key(Config.from_dict(base.to_dict())) == run_key(base)


def _office_copy(data_dir, root, drop_users=0, text_suffix=""):
    """A copy of amazon-office under the same name, without its first users or with other text."""
    folder = root / "amazon-office"
    folder.mkdir(parents=True)
    lines = (data_dir / "amazon-office" / "interactions.tsv").read_text().splitlines(keepends=True)
    dropped = {line.split("\t")[0] for line in lines[1:]}
    dropped = set(sorted(dropped)[:drop_users])
    (folder / "interactions.tsv").write_text(lines[0] + "".join(x for x in lines[1:] if x.split("\t")[0] not in dropped))
    items = [json.loads(x) for x in (data_dir / "amazon-office" / "items.jsonl").read_text().splitlines()]
    (folder / "items.jsonl").write_text("".join(json.dumps({**r, "title": r.get("title", "") + text_suffix}) + "\n"
                                                for r in items))
    return root


@pytest.mark.slow
def test_other_data_under_the_same_name_is_never_reused(data_dir, tmp_path):
    """Measured once: a second copy of amazon-office with other interactions returned the first
    copy's result ("already finished"), and a grid on it ran nothing. Now each copy has its own key."""
    from spectran_tutorial.runs import run_key
    from spectran_tutorial.train import train
    first = _office_copy(data_dir, tmp_path / "a")
    second = _office_copy(data_dir, tmp_path / "b", drop_users=40)
    base = Config().replace("data", max_users=120, data_dir=str(first)).replace("model", dim=8)
    base = base.replace("train", epochs=1, batch_size=32)
    other = base.replace("data", data_dir=str(second))
    assert run_key(base) != run_key(other)
    runs = tmp_path / "runs"
    a = train(base, runs_root=runs, progress=False, log=lambda *_: None)
    said = []
    b = train(other, runs_root=runs, progress=False, log=said.append)
    assert not any("already finished" in line for line in said)
    assert a["key"] != b["key"] and a["data_files"] != b["data_files"]
    assert a["test"] != b["test"]
    cells = grid(other, ["amazon-office"], ["sasrec"], ["id"], [0, 1])
    rows = run_grid(cells, tmp_path / "r.jsonl", runs, log=lambda *_: None)
    assert len(rows) == 2 and all(r["data_files"] == b["data_files"] for r in rows)
    # the item text counts only for methods that read it
    text_changed = _office_copy(data_dir, tmp_path / "c", text_suffix=" (new)")
    moved = base.replace("data", data_dir=str(text_changed))
    assert run_key(moved) == run_key(base)
    assert run_key(moved.replace("method", name="pca")) != run_key(base.replace("method", name="pca"))


def _row(method, seed, ndcg, dataset="d"):
    return {"dataset": dataset, "backbone": "sasrec", "method": method, "seed": seed,
            "test": {"ndcg@10": ndcg}, "diagnostics": {}}


def test_comparison_against_the_best_baseline():
    from spectran_tutorial.report import average_improvement, comparison
    rows = [_row("id", s, v) for s, v in enumerate([0.10, 0.11, 0.12])]
    rows += [_row("pca", s, v) for s, v in enumerate([0.20, 0.21, 0.22])]
    rows += [_row("spectran-no-attn", s, v) for s, v in enumerate([0.50, 0.50, 0.50])]   # an ablation, not a baseline
    rows += [_row("spectran", s, v) for s, v in enumerate([0.22, 0.24, 0.23])]
    (c,) = comparison(rows, metrics=("test.ndcg@10",))
    assert c["best_baseline"] == "pca"
    assert abs(c["improvement"] - (0.23 / 0.21 - 1)) < 1e-12
    from scipy.stats import ttest_rel
    assert abs(c["p_value"] - ttest_rel([0.22, 0.24, 0.23], [0.20, 0.21, 0.22]).pvalue) < 1e-12
    rows += [_row("id", 0, 0.1, "e"), _row("spectran", 0, 0.3, "e")]
    comps = comparison(rows, metrics=("test.ndcg@10",))
    assert abs(average_improvement(comps) - ((0.23 / 0.21 - 1) + 2.0) / 2) < 1e-12
    assert comps[1]["p_value"] is None                       # one seed: no test


@pytest.mark.slow
def test_gpu_grid_script_runs_a_staged_grid_until_its_deadline(data_dir, tmp_path):
    """scripts/gpu_grid.py run --plan: workers share the staged grids in order, each cell once, and a
    report follows."""
    stage = tmp_path / "stage"
    (stage / "data").mkdir(parents=True)
    (stage / "data" / "amazon-office").symlink_to(data_dir / "amazon-office")
    (stage / "COMMIT").write_text("abc123")
    out = tmp_path / "out"
    env = {k: v for k, v in os.environ.items() if k not in ("OUT", "SPECTRAN_DATA")}
    small = ["data.max_users=80", "model.dim=8", "train.epochs=1"]
    plan = [{"name": "first", "datasets": ["amazon-office"], "backbones": ["sasrec"], "methods": ["id"],
             "seeds": [0, 1], "set": small},
            {"name": "then", "datasets": ["amazon-office"], "backbones": ["sasrec"], "methods": ["pca"],
             "seeds": [0], "set": small}]
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    cmd = [sys.executable, str(REPO / "scripts" / "gpu_grid.py"), "run", "--plan", str(tmp_path / "plan.json"),
           "--stage", str(stage), "--seconds", "240", "--workers", "2", "--threads", "1",
           "--no-speed", "--allow-cpu", "--out", str(out), "--runs-dir", str(tmp_path / "runs"), "--site", str(tmp_path / "site")]
    if not torch.cuda.is_available():       # without --allow-cpu the script refuses to run on a CPU
        refused = subprocess.run([c for c in cmd if c != "--allow-cpu"], env=env, capture_output=True, text=True)
        assert refused.returncode == 1 and "no CUDA device" in refused.stdout
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=300)
    rows = [r for r in read_results(out / "first.jsonl") if "max_users=80" in Config.from_dict(r["config"]).variant()]
    assert sorted(r["seed"] for r in rows) == [0, 1]
    assert [r["method"] for r in read_results(out / "then.jsonl")] == ["pca"]     # the next grid of the plan
    report = (out / "gpu-report.md").read_text()
    assert "| amazon-office | sasrec | id |" in report and "| amazon-office | sasrec | pca |" in report


def test_a_rerun_grid_runs_cells_finished_in_other_results_files(tmp_path):
    """A plan's grid with ``rerun`` (e.g. for metrics that older rows lack) is not told to skip the
    cells finished in the other results files; any other grid is."""
    import argparse
    import importlib.util
    spec = importlib.util.spec_from_file_location("gpu_grid", REPO / "scripts" / "gpu_grid.py")
    gpu_grid = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gpu_grid)
    args = argparse.Namespace(skip_done_in=[str(REPO / "results" / "beauty-sasrec.jsonl")], threads=1, runs_dir="runs")
    grid = {"name": "rare-items", "datasets": ["amazon-beauty"], "backbones": ["sasrec"], "methods": ["id"],
            "seeds": [0], "set": []}
    assert "--skip-done-in" in gpu_grid.experiment_command(grid, tmp_path / "r.jsonl", args)
    assert "--skip-done-in" not in gpu_grid.experiment_command({**grid, "rerun": True}, tmp_path / "r.jsonl", args)


def test_commit_of_a_tree_without_git_history_comes_from_the_environment(monkeypatch):
    from spectran_tutorial import provenance

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")
    monkeypatch.setattr(provenance.subprocess, "run", no_git)
    monkeypatch.setenv("SPECTRAN_COMMIT", "abc123")
    assert provenance.git_commit.__wrapped__() == "abc123"
    monkeypatch.delenv("SPECTRAN_COMMIT")
    assert provenance.git_commit.__wrapped__() is None


def test_overview_puts_methods_in_rows_and_marks_the_best_baseline():
    from spectran_tutorial.report import overview_table
    rows = [_row("spectran", s, v) for s, v in enumerate([0.22, 0.245, 0.225])]
    rows += [_row("pca", s, v) for s, v in enumerate([0.20, 0.22, 0.21])] + [_row("id", 0, 0.10)]
    rows += [_row("spectran-no-attn", 0, 0.50), _row("id", 0, 0.30, "e"), _row("spectran", 0, 0.27, "e")]
    lines = overview_table(rows).splitlines()
    assert lines[0] == "| method | d (sasrec) | e (sasrec) |"
    assert [line.split(" | ")[0] for line in lines[2:]] == [
        "| id", "| pca", "| spectran-no-attn", "| spectran", "| gain of spectran (* p < .05, ** p < .01)"]
    assert lines[3] == "| pca | **0.2100 ± 0.0100 (3)** | – |"       # the best baseline, not the ablation
    assert lines[2] == "| id | 0.1000 (1) | **0.3000 (1)** |"
    # SpecTran is 0.015-0.025 above PCA in every seed: p = 0.02; one seed on e: no test, no mark
    assert lines[-1] == (f"| gain of spectran (* p < .05, ** p < .01) | {0.23 / 0.21 - 1:+.1%} * "
                         f"| {0.27 / 0.30 - 1:+.1%} |")


def test_significance_marks_follow_the_paired_test():
    from spectran_tutorial.report import paired, significance
    rows = [_row("spectran", s, v) for s, v in enumerate([0.30, 0.21, 0.26])]
    rows += [_row("pca", s, v) for s, v in enumerate([0.20, 0.22, 0.21])]
    (pair,) = paired(rows, ("spectran", ""), ("pca", ""))
    assert pair["a_higher"] == 2 and pair["p_value"] > 0.05 and significance(pair["p_value"]) == ""
    assert significance(0.03) == " *" and significance(0.004) == " **" and significance(None) == ""


def test_overview_groups_the_columns_of_one_backbone():
    from spectran_tutorial.report import overview_table
    rows = [{**_row("id", 0, 0.1, d), "backbone": b} for d, b in
            (("e", "hstu"), ("d", "gru4rec"), ("d", "sasrec"), ("e", "sasrec"), ("d", "hstu"))]
    assert overview_table(rows).splitlines()[0] == (
        "| method | e (sasrec) | d (sasrec) | e (hstu) | d (hstu) | d (gru4rec) |")


def test_summary_in_package_order_and_no_spread_for_one_seed():
    from spectran_tutorial.report import markdown_table, summarize
    rows = [{**_row(m, s, 0.1 + s / 100, d), "backbone": b} for d, b, m, seeds in
            (("e", "hstu", "spectran", 1), ("e", "sasrec", "llminit", 2), ("e", "sasrec", "id", 2), ("d", "sasrec", "id", 1))
            for s in range(seeds)]
    cells = summarize(rows, ("test.ndcg@10",))
    assert [(c["dataset"], c["backbone"], c["method"]) for c in cells] == [
        ("e", "sasrec", "id"), ("e", "sasrec", "llminit"), ("e", "hstu", "spectran"), ("d", "sasrec", "id")]
    lines = markdown_table(cells, ("test.ndcg@10",)).splitlines()
    assert lines[2].endswith("| 2 | 0.1050 ± 0.0071 |") and lines[4].endswith("| 1 | 0.1000 |")


def test_variant_leaves_out_what_the_method_name_implies():
    from spectran_tutorial.report import variant
    row = lambda cfg: {"config": cfg.to_dict()}    # noqa: E731
    no_attn = Config().replace("method", name="spectran-no-attn", pe_init="whiten")
    assert variant(row(no_attn)) == ""                                  # the name starts g at 1 anyway
    assert variant(row(no_attn.replace("method", pe_normalize=True))) == "pe_normalize=True"
    assert variant(row(Config().replace("method", name="spectran", pe_init="whiten"))) == "pe_init=whiten"


def test_comparison_of_runs_trained_with_another_setting():
    from spectran_tutorial.report import comparison
    infonce = Config().replace("train", loss="infonce").to_dict()
    rows = [_row("id", s, v) for s, v in enumerate([0.30, 0.31])]                       # default recipe
    rows += [{**_row(m, s, v), "config": infonce} for m, vals in (("id", [0.10, 0.12]), ("spectran", [0.12, 0.15]))
             for s, v in enumerate(vals)]
    assert comparison(rows, metrics=("test.ndcg@10",)) == []     # no SpecTran run with the default recipe
    (c,) = comparison(rows, metrics=("test.ndcg@10",), setting="loss=infonce")
    assert c["best_baseline"] == "id" and abs(c["improvement"] - (0.135 / 0.11 - 1)) < 1e-12


def test_paired_comparison_of_two_runs_over_shared_seeds():
    from scipy.stats import ttest_rel
    from spectran_tutorial.report import paired
    rows = [_row("spectran", s, v) for s, v in enumerate([0.22, 0.24, 0.23])]
    rows += [_row("id", s, v) for s, v in enumerate([0.20, 0.25, 0.21, 0.30])]    # seed 3 has no partner
    (c,) = paired(rows, ("spectran", ""), ("id", ""))
    assert c["seeds"] == 3 and c["a_higher"] == 2
    assert abs(c["gain"] - (0.23 / 0.24 - 1)) < 1e-12                  # means over every seed of each
    assert abs(c["p_value"] - ttest_rel([0.22, 0.24, 0.23], [0.20, 0.25, 0.21]).pvalue) < 1e-12
    assert paired(rows, ("spectran", ""), ("pca", "")) == []


def test_gpu_grid_stage_carries_what_an_offline_machine_needs(data_dir, tmp_path, monkeypatch):
    """The staged data and embedding cache are found with no encoder and no other data folder."""
    from spectran_tutorial.data import load_dataset
    from spectran_tutorial.text import text_matrix
    stage = tmp_path / "stage"
    subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_grid.py"), "stage", "ml-100k", "--no-wheels",
                    "--stage", str(stage), "--data-dir", str(data_dir)], check=True, capture_output=True, timeout=600)
    monkeypatch.setenv("SPECTRAN_CACHE", str(stage / "cache"))
    staged = text_matrix(load_dataset("ml-100k", stage / "data"), progress=False)
    assert staged.from_cache and staged.matrix.shape[0] == 1682
    assert (stage / "COMMIT").read_text().strip()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "keep.txt").write_text("x")
    refused = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_grid.py"), "stage", "ml-100k", "--no-wheels",
                              "--stage", str(tmp_path / "other"), "--data-dir", str(data_dir)], capture_output=True)
    assert refused.returncode != 0 and (tmp_path / "other" / "keep.txt").is_file()
    missing = subprocess.run([sys.executable, str(REPO / "scripts" / "gpu_grid.py"), "stage", "amazon-toys", "--no-wheels",
                              "--stage", str(stage), "--data-dir", str(tmp_path / "other")], capture_output=True, text=True)
    assert missing.returncode != 0 and "amazon-toys" in missing.stderr
    assert (stage / "COMMIT").is_file() and (stage / "data" / "ml-100k").is_dir()   # the last staging is kept


def test_every_attention_twin_is_a_label_runs_get_and_differs_in_the_attention_and_the_start_of_g():
    from spectran_tutorial.cli import apply_overrides
    from spectran_tutorial.item_tables import METHODS
    from spectran_tutorial.report import ATTENTION_TWINS, variant
    sections = {name: section for section in ("method", "train") for name in Config().to_dict()[section]}

    def config(method, label):
        settings = [kv.split("=") for kv in label.split(", ") if kv]
        cfg = Config().replace("method", name=method, **METHODS[method][1])
        return apply_overrides(cfg, [f"{sections[k]}.{k}={v.lower() if v in ('True', 'False') else v}"
                                     for k, v in settings])

    for (a, a_label), (b, b_label) in ATTENTION_TWINS:
        with_attention, without = config(a, a_label), config(b, b_label)
        assert variant({"config": with_attention.to_dict()}) == a_label
        assert variant({"config": without.to_dict()}) == b_label
        mine, theirs = with_attention.overrides(), without.overrides()
        differs = {k for k in mine.keys() | theirs.keys() if mine.get(k) != theirs.get(k)}
        # besides the attention, only where g starts (x or 1) may differ: the paper's A-only ablation
        assert differs <= {"method.name", "method.attention", "method.pe_init"}, (a_label, differs)


def test_gains_plot_has_one_bar_per_column_signed_like_the_comparison():
    import matplotlib
    matplotlib.use("Agg")
    from spectran_tutorial import plots
    from spectran_tutorial.report import comparison
    rows = [_row("spectran", s, v) for s, v in enumerate([0.22, 0.24])] + [_row("pca", s, 0.20) for s in range(2)]
    rows += [_row("spectran", 0, 0.10, "e"), _row("id", 0, 0.30, "e")]
    fig = plots.gains(comparison(rows, metrics=("test.ndcg@10",)))
    bars = fig.axes[0].patches
    assert [round(b.get_width(), 6) for b in bars] == [round(100 * (0.23 / 0.20 - 1), 6), round(100 * (0.10 / 0.30 - 1), 6)]
    assert [t.get_text().strip() for t in fig.axes[0].texts] == ["pca, 2 seeds", "id, 1 seed"]


@pytest.mark.slow
def test_packed_runs_benchmark_keeps_the_recipe_of_the_trainer(data_dir):
    """benchmarks/packed_runs.py on a small subset: a row per pack size, and the packed model of
    seed 0 ends its epoch with the trainer's loss (dropout off)."""
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "packed_runs.py"), "--dataset", "amazon-office",
                          "--max-users", "150", "--methods", "id", "--packs", "2", "--data-dir", str(data_dir)],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[2].split()[:2] == ["id", "1*"] and lines[3].split()[:2] == ["id", "2"]
    assert lines[3].split()[4].endswith("x") and float(lines[3].split()[5][1:]) >= 1.0     # padded columns
    assert "recipe check" in lines[4] and float(lines[4].rsplit(" ", 1)[1]) < 1e-4


def test_rank_plot_puts_each_method_at_its_rank_and_metric_with_the_id_line():
    import matplotlib
    matplotlib.use("Agg")
    from spectran_tutorial import plots
    cells = [{"method": "id", "variant": "", "seeds": 3, "m": (0.05, 0.001), "effective_rank": (60.0, 1.0)},
             {"method": "mlp", "variant": "", "seeds": 3, "m": (0.02, 0.002), "effective_rank": (5.0, 0.5)},
             {"method": "spectran", "variant": "fusion=none", "seeds": 2, "m": (0.04, 0.001), "effective_rank": (50.0, 2.0)}]
    ax = plots.rank_vs_metric(cells, "m").axes[0]
    points = [(float(line.get_xdata()[0]), float(line.get_ydata()[0])) for line in ax.lines if line.get_marker() == "o"]
    assert points == [(5.0, 0.02), (50.0, 0.04)]
    assert [float(y) for y in ax.lines[0].get_ydata()] == [0.05, 0.05]          # the ID table, across
    bars = plots.metric_bars(cells, "m").axes[0]
    assert sorted(t.get_text() for t in bars.get_yticklabels()) == [
        "id (3 seeds)", "mlp (3 seeds)", "spectran (fusion=none, 2 seeds)"]


def test_gpu_profile_keeps_the_recipe(data_dir):
    """gpu-full changes bookkeeping only: its runs are the CPU rows' cells (same key, no variant)."""
    from spectran_tutorial.runs import run_key
    gpu = Config.profile("gpu-full").replace("data", data_dir=str(data_dir))
    cpu = Config().replace("data", data_dir=str(data_dir))
    assert gpu.overrides() == {} and gpu.variant() == "" and run_key(gpu) == run_key(cpu)


def test_spectrum_plot_leaves_out_null_directions_and_marks_d():
    import matplotlib
    matplotlib.use("Agg")
    from spectran_tutorial import plots
    x = torch.randn(50, 20, generator=torch.Generator().manual_seed(0))
    x[:, -2:] = x[:, :2]                                 # two null directions once centred
    fig = plots.spectrum({"text": x - x.mean(0)}, mark=8)
    ax = fig.axes[0]
    assert len(ax.lines[0].get_xdata()) == 18              # 20 components, the 2 null ones not drawn
    assert ax.get_ylim()[0] > 1e-7 and ax.lines[-1].get_xdata()[0] == 8


def test_probe_by_band_draws_one_bar_per_band_and_the_chance_line():
    import matplotlib
    matplotlib.use("Agg")
    from spectran_tutorial import plots
    fig = plots.probe_by_band({"1-64": 0.04, "65-128": 0.03, "129-130": 0.01}, chance=0.002)
    ax = fig.axes[0]
    assert [round(p.get_height(), 3) for p in ax.patches] == [0.04, 0.03, 0.01]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1-64", "65-128", "129-130"]
    assert ax.lines[0].get_ydata()[0] == 0.002


def test_learned_g_is_the_mean_polynomial_per_embedding_size():
    import matplotlib
    matplotlib.use("Agg")
    from spectran_tutorial import plots
    rows = [{"config": {"model": {"dim": 16}}, "diagnostics": {"poly": p}} for p in ([0.0, 1.0, 0.0], [0.2, 0.6, 0.0])]
    ax = plots.learned_g(rows).axes[0]
    x, y = ax.lines[0].get_xdata(), ax.lines[0].get_ydata()
    assert abs(y[0] - 0.1) < 1e-12 and abs(y[-1] - 0.9) < 1e-12 and x[-1] == 1.0     # g = 0.1 + 0.8 x
    assert ax.lines[0].get_label() == "d = 16 (2 seeds)"


@pytest.mark.slow
def test_grid_on_a_local_ray_instance_gives_the_rows_of_the_local_grid(data_dir, tmp_path):
    """The cells run as Ray tasks; the driver alone writes each row once, with the same metrics as
    the same cells run here, and a second call finds nothing left to do."""
    pytest.importorskip("ray")
    cells = tiny_cells(data_dir)[:2]
    here = run_grid(cells, tmp_path / "here.jsonl", tmp_path / "runs-here", log=lambda *_: None)
    lines = []
    on_ray = run_grid(cells, tmp_path / "ray.jsonl", tmp_path / "runs-ray", log=lines.append,
                      ray_address="local")
    assert sorted(r["key"] for r in on_ray) == sorted(r["key"] for r in here)
    by_key = {r["key"]: r for r in here}
    for row in on_ray:
        assert row["test"] == by_key[row["key"]]["test"] and row["epochs"] == by_key[row["key"]]["epochs"]
    assert any("sent to Ray" in line for line in lines)
    again = run_grid(cells, tmp_path / "ray.jsonl", tmp_path / "runs-ray", log=lambda *_: None,
                     ray_address="local")
    assert len(read_results(tmp_path / "ray.jsonl")) == 2 and len(again) == 2


def test_a_time_budget_stops_after_an_epoch_and_the_next_call_resumes(data_dir, tmp_path, monkeypatch):
    """With a clock that moves 10 s per reading, a 45 s budget lets the first cell train two epochs
    (checkpoint kept, no row), starts no other cell, and a call without a budget resumes there."""
    import time as real_time
    from spectran_tutorial import experiment, train as train_module

    class Clock:
        now = 0.0
        perf_counter = staticmethod(real_time.perf_counter)

        def time(self):
            self.now += 10
            return self.now

    clock = Clock()
    monkeypatch.setattr(experiment, "time", clock)
    monkeypatch.setattr(train_module, "time", clock)
    cells, results, runs = tiny_cells(data_dir)[:2], tmp_path / "r.jsonl", tmp_path / "runs"
    lines = []
    assert run_grid(cells, results, runs, log=lines.append, minutes=45 / 60) == []
    assert any("stopped by the time budget after epoch 2" in line for line in lines)
    assert any("time budget spent: 1 cells left" in line for line in lines)
    monkeypatch.undo()
    lines.clear()
    assert len(run_grid(cells, results, runs, log=lines.append)) == 2
    assert any("resuming" in line and "after epoch 2" in line for line in lines)


def test_spectral_weights_plot_shows_every_entry_and_marks_d():
    import matplotlib
    matplotlib.use("Agg")
    from spectran_tutorial import plots
    w = torch.zeros(4, 10)
    w[0, 0], w[3, 9] = 2.0, -0.5                          # zeros are drawn at the floor, signs dropped
    fig = plots.spectral_weights(w, dim=4, floor=1e-3)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (4, 10) and image.max() == 2.0 and image[3, 9] == 0.5 and image.min() == 1e-3
    assert fig.axes[0].lines[0].get_xdata()[0] == 4.5


def test_the_next_gpu_sessions_plan_names_real_datasets_methods_and_settings():
    from spectran_tutorial.cli import apply_overrides, check_method_overrides
    from spectran_tutorial.data import DATASETS
    from spectran_tutorial.item_tables import METHODS
    plan = json.loads((REPO / "scripts" / "gpu_plan.json").read_text())
    assert plan
    for entry in plan:
        assert set(entry["datasets"]) <= set(DATASETS) and set(entry.get("methods", METHODS)) <= set(METHODS)
        cfg = apply_overrides(Config(), entry.get("set", []))
        for method in entry.get("methods", METHODS):
            check_method_overrides(method, entry.get("set", []))
            cfg.replace("method", name=method).validate()


@pytest.mark.slow
def test_gpu_speed_benchmark_runs_on_a_cpu_and_prints_its_ratios(data_dir, tmp_path):
    """benchmarks/gpu_speed.py on a small subset: one row per cell with the baseline's and this
    tree's seconds per epoch, their ratio, the filled rate and the share of the measured peak."""
    import shutil
    baseline = tmp_path / "baseline"
    shutil.copytree(REPO / "spectran_tutorial", baseline / "spectran_tutorial")   # stands in for 2144b5a
    out = subprocess.run([sys.executable, str(REPO / "benchmarks" / "gpu_speed.py"), "--dataset", "amazon-office",
                          "--max-users", "150", "--methods", "id", "--epochs", "1", "--workers", "2",
                          "--data-dir", str(data_dir), "--baseline", str(baseline), "--variants", "train.precision=bf16"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert "matrix-product peak" in lines[0] and lines[1].split()[:2] == ["backbone", "method"]
    row = lines[2].split()
    assert row[:2] == ["sasrec", "id"] and row[4].endswith("x") and row[-1].endswith("%")
    assert lines[3].startswith("sasrec    id         with train.precision=bf16: ") and "x the default" in lines[3]
