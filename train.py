"""Train a WGAN: `python train.py --help` lists the flags. The program is wgan_jax/cli/train.py
(parse, build the config, run); this file is where the design card puts its command."""

import sys

from wgan_jax.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
