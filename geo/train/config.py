"""What a training run is: its configuration (from a profile, :data:`geo.profiles.TRAIN`) and its identity.

Variants (the ablations of Figure 6), one parameter:

=========  ===============================================================
``AE``     one generator reconstructs its own input view (no rotation)
``SG``     one generator (phi, psi): view i -> view j through R(i->j), Eq. (1)
``DG``     two generators (phi, psi), (mu, nu) and L_rc: Eq. (4)
``+AUG``   suffix: pairs also from virtual torus cameras (``aug`` of them)
``I_SG``   raw image crops as input: needs Human3.6M video frames (not shipped)
=========  ===============================================================

A run's identity (:func:`identity`) is every config field that defines the model or its
training, i.e. all but ``steps``, ``checkpoint_every``, ``log_every``, ``eval_every``,
``compile``, ``max_seconds``, ``fused``, ``channels_last``: a checkpoint or a saved set of
weights is only reused by a config of the same identity (:mod:`geo.train.checkpoint`,
:mod:`geo.weights`), and run folders made by :func:`geo.experiments.run_dir` carry
:func:`identity_hash` in their name. The hashes name committed weights and run folders,
so what goes into them changes only through :data:`LATER_FIELDS`.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field, fields

from geo import losses
from geo.cameras import TORI
from geo.models import GeneratorConfig
from geo.profiles import TRAIN
from geo.render import LINE_WIDTH
from geo.skeleton import VIRTUAL_JOINTS

VARIANTS = ("AE", "SG", "SG+AUG", "DG", "DG+AUG", "I_SG")
TRAINED = ("AE", "SG", "SG+AUG", "DG+AUG")     # the variants the notebooks train
# Fields that do not change what a run learns (how long, how often it logs, how fast it
# runs): everything else is the run's identity.
NOT_IDENTITY = ("steps", "checkpoint_every", "checkpoint_seconds", "log_every", "eval_every", "compile", "max_seconds",
                "fused", "channels_last")


@dataclass
class TrainConfig:
    variant: str = "DG+AUG"
    steps: int = 200
    batch: int = 32
    lr: float = 1e-3
    warmup: int = 0               # linear warm-up steps
    lr_min: float | None = None   # None: constant lr after warm-up; else cosine decay to lr_min at `steps`
    aug: float = 0.5              # share of virtual-camera pairs in +AUG variants
    lrc_weight: float = 1.0       # Eq. (4) weighs L_rc by 1
    lrc_norm: str = "rms"         # how L_rc normalises the clouds (geo.losses: "rms", "residual", "ratio")
    virtual_joints: str = "nominal"  # virtual views' 2D joints from the 3D ones (geo.skeleton.VIRTUAL_JOINTS)
    torus: str = "all"            # the virtual cameras, by name (geo.cameras.TORI: fitted on all subjects or the training ones)
    seed: int = 0
    checkpoint_every: int = 100
    checkpoint_seconds: float = 300.0  # also checkpoint when this much wall time passed since the last (0: off)
    max_seconds: float = 0.0      # stop early after this wall time (0: no limit); the run stays unfinished
    compile: bool | str = False   # CUDA only: True or a torch.compile mode ("reduce-overhead", ...)
    fused: bool = True            # CUDA only: fused Adam
    channels_last: bool = True    # maps and weights NHWC (CUDA and CPU: oneDNN's fast kernels)
    log_every: int = 10
    eval_every: int = 0           # held-out IoU every this many steps (0: never), when train() gets `heldout`
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)

    def __post_init__(self):
        if isinstance(self.generator, dict):
            self.generator = GeneratorConfig(**self.generator)
        if self.variant not in VARIANTS:
            raise ValueError(f"unknown variant {self.variant!r}; expected one of {VARIANTS}")
        if self.lrc_norm not in losses.LRC_NORMS:
            raise ValueError(f"lrc_norm {self.lrc_norm!r}: expected one of {losses.LRC_NORMS}")
        if self.virtual_joints not in VIRTUAL_JOINTS:
            raise ValueError(f"virtual_joints {self.virtual_joints!r}: expected one of {VIRTUAL_JOINTS}")
        if self.torus not in TORI:
            raise ValueError(f"torus {self.torus!r}: expected one of {sorted(TORI)}")

    @property
    def two_generators(self) -> bool:
        return self.variant.startswith("DG")

    @property
    def augment(self) -> float:
        return self.aug if self.variant.endswith("+AUG") else 0.0

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """From ``asdict`` output (a checkpoint's); fields this version lacks are dropped,
        fields it added take their defaults."""
        names = {f.name for f in fields(cls)}
        d = {k: v for k, v in d.items() if k in names}
        g = d.get("generator", {})
        if isinstance(g, dict):
            gnames = {f.name for f in fields(GeneratorConfig)}
            d["generator"] = GeneratorConfig(**{k: v for k, v in g.items() if k in gnames})
        return cls(**d)


# Fields added after weights and run folders were made: at these values they are left
# out of the identity, so that what was trained before them keeps its identity.
LATER_FIELDS = {"lrc_norm": "rms", "generator.line_width": LINE_WIDTH, "virtual_joints": "nominal", "torus": "all"}


def identity(cfg: TrainConfig) -> dict:
    """The config fields that define the model and its training (module docstring)."""
    d = {k: v for k, v in asdict(cfg).items() if k not in NOT_IDENTITY}
    for key, default in LATER_FIELDS.items():
        *outer, last = key.split(".")
        sub = d
        for o in outer:
            sub = sub.get(o, {})
        if last in sub and sub[last] == default:
            del sub[last]
    return d


def identity_hash(cfg: TrainConfig, data_id: str = "", n: int = 10) -> str:
    """Short hash of :func:`identity` plus a data identity string."""
    blob = json.dumps({"config": identity(cfg), "data": data_id}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:n]


def config_for(variant: str, profile: str = "quick", **over) -> TrainConfig:
    """``profile``'s config of ``variant`` (:data:`geo.profiles.TRAIN`) with the fields in ``over`` replaced; a
    ``generator`` dict is merged into the profile's, so that overriding the width keeps
    the profile's other generator fields."""
    if profile not in TRAIN:
        raise ValueError(f"unknown profile {profile!r}; expected one of {sorted(TRAIN)}")
    kw = {**TRAIN[profile], **over}
    g = kw.get("generator", {})
    kw["generator"] = g if isinstance(g, GeneratorConfig) else GeneratorConfig(**{**TRAIN[profile].get("generator", {}), **g})
    return TrainConfig(variant=variant, **kw)

