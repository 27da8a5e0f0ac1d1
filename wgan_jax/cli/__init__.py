"""The command-line programs: argument parsing and exit codes only (train.py calls `train`).

    python -m wgan_jax.cli.sample     images from a run or a shipped generator
    python -m wgan_jax.cli.evaluate   a run scored, or several compared
    python -m wgan_jax.cli.export     a run's generator shipped in the package
    python -m wgan_jax.cli.classifier the evaluation classifier trained and shipped
"""
