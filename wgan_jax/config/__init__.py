"""One typed, validated configuration object, its presets, and its JSON and flag forms.

`Config` (wgan_jax.config.schema) is frozen and holds two parts (wgan_jax.config.fields):
`StepConfig`, what a run computes (a resume refuses any change to it), and `RunConfig`, what only
the host reads (length, intervals, paths, devices). The jitted programs take
`StepConfig.program()` as their static argument: the StepConfig without the fields the training
state carries, so that a new seed, clip bound or learning rate compiles nothing new. `rules` says
what a loss, an augmentation policy or a network family means for the other fields, `presets`
names sets of fields, `io` reads and writes config.json (old flat ones included, `legacy`) and
parses `--set` values.
"""

from wgan_jax.config.fields import GROUPS, NOT_COMPILED, RunConfig, StepConfig, knob
from wgan_jax.config.io import (RUN_RECORD_KEYS, from_dict, load_file, parse_assignment,
                                parse_value, to_dict)
from wgan_jax.config.presets import ARCH_DEFAULTS, PRESETS
from wgan_jax.config.rules import ARCHS, AUGMENTATIONS, LOSSES, LossRules, augment_policy
from wgan_jax.config.schema import Config, from_preset, step_differences


__all__ = ["ARCHS", "ARCH_DEFAULTS", "AUGMENTATIONS", "GROUPS", "LOSSES", "NOT_COMPILED", "PRESETS",
           "RUN_RECORD_KEYS", "Config", "LossRules", "RunConfig", "StepConfig", "augment_policy",
           "from_dict", "from_preset", "knob", "load_file", "parse_assignment", "parse_value",
           "step_differences", "to_dict"]
