"""The README is a short front door: its Python examples run as printed, and it stays small."""
import re

from conftest import REPO


def readme_examples() -> list[str]:
    text = (REPO / "README.md").read_text()
    section = text.split("## In your own code", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"```python\n(.*?)```", section, re.S)


def test_readme_python_examples_run(data_dir, monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("SPECTRAN_DATA", str(data_dir))
    monkeypatch.chdir(tmp_path)
    examples = readme_examples()
    assert len(examples) == 2
    for code in examples:
        exec(compile(code, "README.md", "exec"), {})
    out = capsys.readouterr().out
    assert "torch.Size([8, 1001])" in out and "'ndcg@10'" in out


def test_readme_is_a_short_front_door_that_points_into_the_book():
    text = (REPO / "README.md").read_text()
    assert len(text.encode()) <= 10_000
    assert "book/07_results_record.md" in text and "RecBole's protocol" not in text
