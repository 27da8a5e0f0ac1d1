"""One typed, validated configuration object in sections, its presets, and its JSON and flag
forms.

`Config` (wgan_jax.config.schema) is frozen and holds the preset's name and eight sections
(knobs.SECTIONS), each a frozen dataclass that validates its own fields: `runs` (seeds, clip
bounds, learning rates: numbers the training state carries), `algorithm`, `optim`, `averaging`
and `nets` (computed.py, nets.py: the compiled programs take these four whole, as
`Config.program()`), and `training`, `data`, `outputs` (host.py: only the host reads them). A
resume keeps the preset, `runs` and the compiled four. Every field also has a flat name, unique
across sections (`FIELDS`), which from_preset's overrides, `--set` and the flat config.json files
written before the sections use. `rules` says what a loss, an augmentation policy or a network
family means for the other fields, `presets` names sets of fields, `io` reads and writes
config.json and parses `--set` values.
"""

from wgan_jax.config.computed import Algorithm, Averaging, Optim, Runs
from wgan_jax.config.host import Data, Outputs, Training
from wgan_jax.config.io import (RUN_RECORD_KEYS, flat, from_dict, load_file, parse_assignment,
                                parse_value, to_dict)
from wgan_jax.config.knobs import SECTIONS, key_of, knob
from wgan_jax.config.nets import Nets
from wgan_jax.config.presets import ARCH_DEFAULTS, PRESETS
from wgan_jax.config.rules import ARCHS, AUGMENTATIONS, LOSSES, LossRules, augment_policy
from wgan_jax.config.schema import (COMPILED, FIELDS, KEPT, Config, Program, from_preset,
                                    resume_differences)


__all__ = ["ARCHS", "ARCH_DEFAULTS", "AUGMENTATIONS", "COMPILED", "FIELDS", "KEPT", "LOSSES",
           "PRESETS", "RUN_RECORD_KEYS", "SECTIONS", "Algorithm", "Averaging", "Config", "Data",
           "LossRules", "Nets", "Optim", "Outputs", "Program", "Runs", "Training",
           "augment_policy", "flat", "from_dict", "from_preset", "key_of", "knob", "load_file",
           "parse_assignment", "parse_value", "resume_differences", "to_dict"]
