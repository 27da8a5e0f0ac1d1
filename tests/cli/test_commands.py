"""Every command a user types, with the obvious wrong inputs: train.py, sample, evaluate,
pretrained and the classifier's. Each is one `error:` line and exit 2 (bad input, found before
any work) or 74 (the OS refused a write), never a traceback, and the user's files are kept.

The commands run in this process through their `main`, which is what `python -m` calls: the
same code path as a subprocess, without paying for a JAX start per case."""

import shutil
import sys
from pathlib import Path

import pytest

from wgan_jax.cli import (classifier as classifier_cli, evaluate as evaluate_cli, export as export_cli,
                          sample as sample_cli)

ROOT = Path(__file__).resolve().parents[2]


def train_main(argv):
    sys.path.insert(0, str(ROOT))
    import train

    return train.main(argv)


COMMANDS = {"train": train_main, "sample": sample_cli.main, "evaluate": evaluate_cli.main,
            "pretrained": export_cli.main, "classifier": classifier_cli.main}

# (command, arguments, exit status, what the one error line says). In the arguments, {run} is a
# finished run, {file} a plain file, {empty} an empty folder, {foreign} a folder of someone's
# files (not a run), {junk} a folder whose checkpoints/ holds no checkpoint, {out} a fresh path.
CASES = [
    ("train", ["--workdir", "{foreign}"], 2, "holds files no run wrote (holiday.txt); choose a new"),
    ("train", ["--workdir", "{file}/run"], 2, "cannot write to workdir {file}/run: {file} is a file, not a folder"),
    ("train", ["--workdir", "/proc/wgan-run"], 2, "cannot write to workdir /proc/wgan-run"),
    ("train", ["--workdir", "{empty}", "--resume"], 2, "--resume: no checkpoints in {empty}"),
    ("train", ["--resume"], 2, "--resume needs --workdir"),
    ("train", ["--workdir", "{out}", "--init-from", "{empty}"], 2, "--init-from: {empty}: no checkpoints folder"),
    ("train", ["--workdir", "{out}", "--init-from", "{run}:9"], 2, "--init-from: {run} has no checkpoint at step 9 (it has 1, 2)"),
    ("train", ["--config", "{empty}"], 2, "--config {empty}: Is a directory"),
    ("train", ["--config", "{file}/c.json"], 2, "--config {file}/c.json: Not a directory"),
    ("train", ["--config", "{file}"], 2, "--config {file}: not JSON"),
    ("train", ["--compile-cache", "{file}/cache"], 2, "cannot write to --compile-cache {file}/cache: {file} is a file"),
    ("train", ["--iterations", "-5"], 2, "iterations must be a positive integer"),
    ("sample", ["{file}"], 2, "{file}: no checkpoints folder; is this a training workdir?"),
    ("sample", ["{empty}"], 2, "{empty}: no checkpoints folder"),
    ("sample", ["{foreign}"], 2, "{foreign}: no checkpoints folder"),
    ("sample", ["{junk}"], 2, "no checkpoint in {junk}/checkpoints"),
    ("sample", ["{run}", "--out", "{file}/a.png"], 2, "cannot write to --out {file}: {file} is a file, not a folder"),
    ("sample", ["{run}", "--out", "{file}/a.npz"], 2, "{file} is a file, not a folder"),
    ("sample", ["{run}", "--out", "{file}/pngs/"], 2, "{file} is a file, not a folder"),
    ("sample", ["{run}", "--out", "/proc/wgan/a.png"], 2, "cannot write to --out /proc/wgan"),
    ("sample", ["{run}", "--out", "{out}/a.txt"], 2, "cannot write anything as '.txt'"),
    ("sample", ["{run}", "--n", "0"], 2, "--n must be between 1 and"),
    ("sample", ["{run}", "--n", "many"], 2, "argument --n: invalid int value: 'many'"),
    ("sample", ["{run}", "--step", "last"], 2, "--step must be an iteration or 'best', got 'last'"),
    ("sample", ["{run}", "--step", "9"], 2, "has no checkpoint at step 9 (it has 1, 2)"),
    ("sample", ["{run}", "--label", "3"], 2, "--label 3: this generator is not conditional"),
    ("sample", ["--pretrained", "nonesuch"], 2, "no pretrained generator 'nonesuch' (shipped: mnist"),
    ("evaluate", ["{out}/missing"], 2, "{out}/missing: no checkpoints folder"),
    ("evaluate", ["{file}"], 2, "{file}: no checkpoints folder"),
    ("evaluate", ["{foreign}"], 2, "{foreign}: no checkpoints folder"),
    ("evaluate", ["{run}", "--samples", "10"], 2, "--samples must be at least 100, got 10"),
    ("evaluate", ["{run}", "--samples", "1000000000"], 2, "1000000000 evaluation samples do not fit"),
    ("evaluate", ["{run}", "--step", "9"], 2, "has no checkpoint at step 9"),
    ("evaluate", ["{run}", "--reference", "test"], 2, "argument --reference: invalid choice: 'test'"),
    ("evaluate", ["{run}", "{run}", "--out", "{file}/cmp"], 2, "cannot write to --out {file}/cmp: {file} is a file"),
    ("pretrained", ["{empty}", "--name", "x"], 2, "{empty}: no checkpoints folder"),
    ("pretrained", ["{run}"], 2, "the following arguments are required: --name"),
    ("pretrained", ["{run}", "--name", "../escape"], 2, "--name '../escape': use letters, digits"),
    ("pretrained", ["{run}", "--name", ""], 2, "--name '': use letters"),
    ("pretrained", ["{run}", "--name", "x", "--samples", "10"], 2, "--samples must be at least 100"),
    ("pretrained", ["{run}", "--name", "x", "--fid", "maybe"], 2, "argument --fid: invalid choice"),
    ("pretrained", ["{run}", "--name", "x", "--step", "9"], 2, "has no checkpoint at step 9"),
    ("pretrained", ["{run}", "--name", "x", "--out", "{file}/gens"], 2, "cannot write to the generators folder {file}/gens: {file} is a file"),
    ("classifier", ["--epochs", "0"], 2, "--epochs must be at least 1, got 0"),
    ("classifier", ["--epochs", "-1"], 2, "--epochs must be at least 1, got -1"),
    ("classifier", ["--dataset", "cifar10"], 2, "argument --dataset: invalid choice: 'cifar10'"),
    ("classifier", ["--out", "{file}/classifiers"], 2, "cannot write to --out {file}/classifiers: {file} is a file"),
]


@pytest.fixture
def places(tiny_run, tmp_path):
    """The paths the cases name, the user's files among them."""
    (tmp_path / "file").write_text("not a folder")
    (tmp_path / "empty").mkdir()
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "holiday.txt").write_text("someone's")
    (tmp_path / "foreign" / ".DS_Store").write_text("a file manager's")  # not named: hidden
    (tmp_path / "junk" / "checkpoints").mkdir(parents=True)
    (tmp_path / "junk" / "checkpoints" / "notes").write_text("not a checkpoint")
    return {"run": str(tiny_run), "file": str(tmp_path / "file"), "empty": str(tmp_path / "empty"),
            "foreign": str(tmp_path / "foreign"), "junk": str(tmp_path / "junk"),
            "out": str(tmp_path / "out")}


def call(command: str, argv: list[str]) -> int:
    """The exit status `python -m ...` would have (argparse exits rather than returns)."""
    try:
        return COMMANDS[command](argv)
    except SystemExit as stop:
        return stop.code


def user_files(tmp_path: Path) -> dict:
    return {str(p.relative_to(tmp_path)): p.read_bytes() for p in sorted(tmp_path.rglob("*"))
            if p.is_file() and "out" not in p.relative_to(tmp_path).parts}


@pytest.mark.parametrize("command, argv, status, message", CASES,
                         ids=[f"{c[0]} {' '.join(c[1])}" for c in CASES])
def test_a_wrong_input_is_one_line_and_keeps_the_users_files(places, tmp_path, capsys, command,
                                                             argv, status, message):
    before = user_files(tmp_path)
    run_files = sorted(p.relative_to(places["run"]) for p in Path(places["run"]).rglob("*"))
    assert call(command, [a.format(**places) for a in argv]) == status
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message.format(**places) in errors[0], err
    assert "Traceback" not in err
    assert user_files(tmp_path) == before  # nothing overwritten, nothing written among them
    assert sorted(p.relative_to(places["run"]) for p in Path(places["run"]).rglob("*")) == run_files


@pytest.mark.slow
@pytest.mark.parametrize("command, argv, blocked", [
    ("evaluate", ["{run}", "--samples", "100"], "report.md"),
    ("pretrained", ["{run}", "--name", "x", "--samples", "100", "--out", "{out}"], "x.json"),
])
def test_a_write_the_os_refuses_after_the_work_is_one_line_and_status_74(
        places, tmp_path, capsys, command, argv, blocked):
    """A file the command writes last is a folder here, so the write fails after the evaluation:
    the OS's reason in one line, exit 74 (EX_IOERR), as for a full disk."""
    run = tmp_path / "run-copy"
    shutil.copytree(places["run"], run)
    where = run if command == "evaluate" else Path(places["out"])
    (where / blocked).mkdir(parents=True)
    places = {**places, "run": str(run)}
    assert call(command, [a.format(**places) for a in argv]) == 74
    err = capsys.readouterr().err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {where / blocked}: Is a directory"], err


def test_a_new_run_may_start_in_an_empty_folder_or_beside_hidden_files_or_a_killed_runs(tmp_path):
    """What the workdir check lets through: nothing, a file manager's hidden files, and what a
    run killed before its first checkpoint left (it simply starts again)."""
    from wgan_jax.train.workdirs import check_workdir, foreign_entries

    hidden, killed = tmp_path / "hidden", tmp_path / "killed"
    (hidden / ".ipynb_checkpoints").mkdir(parents=True)
    (hidden / ".DS_Store").write_text("")
    (killed / "samples").mkdir(parents=True)
    for name in ("config.json", "metrics.jsonl", ".wgan_jax.lock"):
        (killed / name).write_text("")
    for folder in (tmp_path / "new", hidden, killed):
        check_workdir(folder, resume=False)
        assert foreign_entries(folder) == []
    (killed / "notes.txt").write_text("mine")
    assert foreign_entries(killed) == ["notes.txt"]
