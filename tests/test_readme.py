"""The README's Python examples run as printed."""
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
