"""metrics.jsonl records: their kinds (with files from before records had one), the metric keys
of a record, and reading a damaged file."""

from wgan_jax.eval import records

TRAIN = {"iteration": 50, "kind": "train", "critic_loss": -1.0, "wasserstein_estimate": 1.0}
EVAL = {"iteration": 500, "kind": "eval", "fd_mnist": 42.0, "fd_mnist_raw": 44.0, "fid": 9.5,
        "kid_mnist": 40.0, "classifier_score": 6.6}


def test_kinds_come_from_the_record_or_for_older_files_from_its_keys():
    assert [records.kind(r) for r in (TRAIN, EVAL)] == ["train", "eval"]
    older = [{k: v for k, v in r.items() if k != "kind"} for r in (TRAIN, EVAL)]
    assert [records.kind(r) for r in older] == ["train", "eval"]
    assert records.of_kind([TRAIN, EVAL, TRAIN], records.EVAL) == [EVAL]


def test_metric_keys_the_headline_and_the_table():
    assert records.key_of(EVAL, "fd") == "fd_mnist"  # not the raw generator's
    assert records.key_of(EVAL, "precision") is None and records.key_of(TRAIN, "fd") is None
    assert records.quality_key(EVAL) == "fd_mnist"
    assert records.quality_key({"iteration": 1, "fid": 3.0}) == "fid"
    assert records.headline(EVAL) == {"fid": 9.5, "fd_mnist": 42.0}
    assert records.headline(TRAIN) == {}
    assert all(direction in ("lower", "higher") for _, direction in records.METRICS.values())


def test_a_damaged_line_is_skipped_and_counted(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text('{"iteration": 1, "kind": "train"}\n{"iteration": 2, "ki\n[1, 2]\n\n'
                    '{"iteration": 3, "kind": "eval", "fd_mnist": 1.0}\n')
    read, damaged = records.read(path)
    assert [r["iteration"] for r in read] == [1, 3] and damaged == 2
