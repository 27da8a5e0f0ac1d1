"""The README and docs/: the examples run as written, every relative link and image resolves,
every flag in a command block exists, and the README's test command is what CI runs."""

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]


@pytest.mark.slow
def test_library_example_runs():
    blocks = re.findall(r"```python\n(.*?)```", README, flags=re.S)
    assert len(blocks) == 1
    namespace: dict = {}
    exec(compile(blocks[0], "README.md", "exec"), namespace)
    assert namespace["samples"].shape == (25, 28, 28, 1)
    assert int(namespace["state"].step) == 2
    assert int(namespace["state"].critic_updates) == 1 + namespace["config"].algorithm.n_critic


def test_ci_runs_the_readme_test_command_exactly():
    commands = re.findall(r"```bash\n(.*?)\n```", README, flags=re.S)
    test_command = next(c for c in commands if "pytest" in c)
    assert test_command in (ROOT / ".ci" / "run").read_text().splitlines()


def _anchors(page: Path) -> set[str]:
    """GitHub's anchors of a page's headers: lower case, punctuation dropped, spaces to '-'."""
    heads = re.findall(r"^#+ (.*)$", page.read_text(), flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.strip().lower()).replace(" ", "-") for h in heads}


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_and_image_resolves(page):
    targets = re.findall(r"!?\[[^\]]*\]\(([^)\s]+)\)", page.read_text())
    relative = [t for t in targets if not re.match(r"(https?:|mailto:)", t)]
    for target in relative:
        path, _, anchor = target.partition("#")
        resolved = (page.parent / path).resolve() if path else page
        assert resolved.exists(), f"{page.name}: {target} does not exist"
        if anchor:
            assert anchor in _anchors(resolved), f"{page.name}: no header for #{anchor} in {path}"
    if page.name == "README.md":
        assert len(relative) >= 8  # the checks above ran on the front page's links


def _help(program: str, capsys) -> str:
    from wgan_jax.cli import evaluate, export, sample, train

    entry = {"train.py": train.parse_args, "wgan_jax.cli.sample": sample.parse_args,
             "wgan_jax.cli.evaluate": evaluate.main, "wgan_jax.cli.export": export.main}[program]
    with pytest.raises(SystemExit):
        entry(["--help"])
    return capsys.readouterr().out


def test_every_flag_in_a_command_block_exists(capsys):
    checked = 0
    for page in PAGES:
        for block in re.findall(r"```bash\n(.*?)```", page.read_text(), flags=re.S):
            for line in block.splitlines():
                found = re.search(r"(train\.py|-m (wgan_jax\.[\w.]+)|wgan-jax-sample)(.*)", line)
                if not found:
                    continue
                program = found.group(2) or ("wgan_jax.cli.sample" if "sample" in found.group(1)
                                             else "train.py")
                help_text = _help(program, capsys)
                for flag in re.findall(r"(?<![\w-])--[a-z][a-z-]*", found.group(3).split("#")[0]):
                    assert flag in help_text, f"{page.name}: {program} has no {flag}: {line}"
                    checked += 1
    assert checked >= 20  # the README and docs name at least this many
