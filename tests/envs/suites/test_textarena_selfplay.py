"""TextArena games train through lmrl's multi-agent path: the self-play example, shrunk."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("textarena")  # the textarena extra; the test extra installs it

EXAMPLE = Path(__file__).parents[3] / "examples" / "textarena_tictactoe_selfplay.yaml"
SEATS = ["player_0", "player_1"]
#: The example as it is, shrunk to one small iteration (the tiny preset is the session's).
SMALL = [
    "algorithm.train_batch_size=64",
    "algorithm.minibatch_size=32",
    "algorithm.num_epochs=1",
    "resources.num_envs_per_env_runner=4",
    "run.stop.iterations=1",
    "run.checkpoint_every=1",
    "run.eval_episodes=4",
    "run.progress=false",
]


def _weights(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(model_dir / "model.safetensors"))


def _changed(before: dict[str, np.ndarray], after: dict[str, np.ndarray]) -> list[str]:
    """Weights an optimiser step moved by more than float noise (a zero bias moved by 1e-30 is not)."""
    return [
        k for k in before if k in after and np.abs(np.asarray(after[k]) - before[k]).max() > 1e-6
    ]


def test_example_self_play_trains_both_seats_and_evaluates(ray_session, tiny_model_dir, tmp_path):
    from lmrl.pipelines.rl.loop import train
    from lmrl.platform.config import load_config

    cfg = load_config(
        EXAMPLE, [*SMALL, f"policy.model={tiny_model_dir}", f"run.output_dir={tmp_path}"]
    )
    assert (
        cfg.env.id == "textarena/TicTacToe-v0" and cfg.policies == {} and cfg.policy_mapping == {}
    )
    run = train(cfg)

    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    # Both seats were played by the LLM policy (a scripted seat never reaches RLlib) ...
    assert {f"success_rate/{a}" for a in SEATS} <= set(row), row
    assert np.isfinite(row["policy_loss"])
    plan = json.loads((run / "export" / "multiagent.json").read_text())
    assert plan["policies"] == dict.fromkeys(SEATS, "shared") and plan["scripted"] == {}
    # ... and the one policy both seats share was updated.
    meta = json.loads((run / "export" / "shared" / "lmrl.json").read_text())
    assert meta["agents"] == SEATS and meta["env_id"] == "textarena/TicTacToe-v0"
    before, after = _weights(Path(tiny_model_dir)), _weights(run / "export" / "shared")
    assert _changed(before, after), "the shared policy's weights did not change"
    summary = json.loads((run / "summary.json").read_text())
    ev = summary["eval"]
    assert ev["env_id"] == "textarena/TicTacToe-v0" and ev["episodes"] == 4
    assert ev["seat_plan"] == dict.fromkeys(SEATS, "shared")
    assert set(ev["per_agent"]) == set(SEATS)
    assert ev["expert_success_rate"] == 1.0  # minimax never loses


def test_separate_policies_per_seat_both_update(ray_session, tiny_model_dir, tmp_path):
    """One LLM policy per seat (O and X): each is trained on its own seat's turns."""
    from lmrl.pipelines.rl.builder import build_algorithm_config
    from lmrl.platform.config import load_config

    cfg = load_config(
        EXAMPLE,
        [*SMALL, f"policy.model={tiny_model_dir}", f"run.output_dir={tmp_path}",
         "policies={o: {}, x: {}}", "policy_mapping={player_0: o, player_1: x}"],
    )  # fmt: skip
    algo = build_algorithm_config(cfg, tiny_model_dir).build_algo()
    try:
        before = algo.learner_group.get_weights()
        result = algo.train()
        after = algo.learner_group.get_weights()
    finally:
        algo.stop()
    assert set(after) == {"o", "x"}
    for pid in ("o", "x"):
        assert _changed({k: np.asarray(v) for k, v in before[pid].items()}, after[pid]), pid
        assert np.isfinite(result["learners"][pid]["policy_loss"])
