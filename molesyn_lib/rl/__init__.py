"""RL stability in the reasoning lab: DAPO-style RL (TRL's ``GRPOTrainer``) from different initialisations.

Light modules load eagerly (no torch): :mod:`.rewards` (TRL-signature reward functions: verified correctness, a
format term, DAPO's soft overlong punishment; rollout summaries) and :mod:`.stability` (collapse counting,
monotonicity, drawdown, transfer-graph drift, per-initialisation tables). Heavy ones load on first attribute access:
:mod:`.trainer` (:class:`RLConfig`, :func:`train_rl`, the per-step :class:`RLMonitor`; DAPO's batch reuse so
clip-higher binds, dynamic sampling emulated by filtering zero-spread groups, overlong punishment on) and
:mod:`.experiments` (initialisations, cached multi-seed runs in parallel, profiles, curve frames) and :mod:`.plots`
(seed bands).

Typical use::

    from molesyn_lib import rl
    configs = rl.grid("smoke")                      # every initialisation x seed of the chapter's profile
    records = rl.run_rl_grid(configs, workers=2)    # cached on disk; 2 processes, 1 thread each
    rl.stability_table([rl.run_summary(r) for r in records])
"""
from __future__ import annotations

from ..lazy import lazy_getattr
from .rewards import (
    REWARDS,
    RolloutStats,
    completion_text,
    correctness_reward,
    format_reward,
    get_reward,
    overlong_reward,
    parse_gold,
    rollout_stats,
)
from .stability import (
    RunStability,
    count_collapses,
    dip_and_regrowth,
    graph_drift,
    max_drawdown,
    monotonicity,
    run_stability,
    stability_table,
)

_LAZY = {
    "RLConfig": "trainer", "RLMonitor": "trainer", "RLResult": "trainer", "train_rl": "trainer",
    "grpo_config": "trainer", "rl_dataset": "trainer", "rollout_kl": "trainer", "reward_functions": "trainer",
    "make_trainer": "trainer", "dapo_trainer_class": "trainer", "filter_zero_spread": "trainer",
    "zero_spread_groups": "trainer",
    "InitSpec": "experiments", "INITS": "experiments", "SFTConfig": "experiments", "RLRunConfig": "experiments",
    "RLProfile": "experiments", "PROFILES": "experiments", "profile": "experiments", "grid": "experiments",
    "init_checkpoint": "experiments", "run_rl": "experiments", "run_rl_grid": "experiments",
    "run_summary": "experiments", "curves_frame": "experiments", "evals_frame": "experiments",
    "init_table": "experiments", "length_dynamics": "experiments",
    "seed_bands": "plots", "seed_strip": "plots",
}

__all__ = [
    "INITS",
    "PROFILES",
    "REWARDS",
    "InitSpec",
    "RLConfig",
    "RLMonitor",
    "RLProfile",
    "RLResult",
    "RLRunConfig",
    "RolloutStats",
    "RunStability",
    "SFTConfig",
    "completion_text",
    "correctness_reward",
    "count_collapses",
    "curves_frame",
    "dapo_trainer_class",
    "dip_and_regrowth",
    "evals_frame",
    "filter_zero_spread",
    "format_reward",
    "get_reward",
    "graph_drift",
    "grid",
    "grpo_config",
    "init_checkpoint",
    "init_table",
    "length_dynamics",
    "make_trainer",
    "max_drawdown",
    "monotonicity",
    "overlong_reward",
    "parse_gold",
    "profile",
    "reward_functions",
    "rl_dataset",
    "rollout_kl",
    "rollout_stats",
    "run_rl",
    "run_rl_grid",
    "run_stability",
    "run_summary",
    "seed_bands",
    "seed_strip",
    "stability_table",
    "train_rl",
    "zero_spread_groups",
]


__getattr__ = lazy_getattr(__name__, _LAZY)
