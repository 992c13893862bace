"""What a run config implies for its policy: auto settings by model kind, made explicit once."""

from __future__ import annotations

import yaml

from lmrl.pipelines.config import RunConfig
from lmrl.pipelines.policy_setup import adapter_config, is_pretrained, lora_settings, resolve_auto
from lmrl.pipelines.run_dir import config_to_yaml


def _cfg(**policy) -> RunConfig:
    return RunConfig.model_validate({"env": {"id": "lmrl/Maze-v0"}, "policy": policy})


def test_presets_keep_their_tuned_settings():
    cfg = resolve_auto(_cfg())
    p = cfg.policy
    assert (p.chat, p.choice_scoring, p.lora.enabled, p.max_prompt_tokens, p.max_candidate_tokens) == (
        False, "mean", False, 96, 8,
    )  # fmt: skip
    assert cfg.algorithm.lr == 1e-3
    a = adapter_config(_cfg())
    assert a.chat_system is None and a.prompt_format == "{text}\nAction:"
    assert lora_settings(_cfg()) is None


def test_pretrained_models_get_chat_sum_scores_lora_and_a_lower_lr():
    cfg = resolve_auto(_cfg(model="smollm2-135m-instruct"))
    p = cfg.policy
    assert (p.chat, p.choice_scoring, p.lora.enabled, p.max_prompt_tokens, p.max_candidate_tokens) == (
        True, "sum", True, 384, 16,
    )  # fmt: skip
    assert cfg.algorithm.lr == 1e-4
    a = adapter_config(cfg)
    assert a.chat_system.startswith("Find the goal in a small grid maze")
    assert a.chat_system.endswith("Answer with the action only.")
    assert "Over seeds" not in a.chat_system or "Description" not in a.chat_system
    assert lora_settings(cfg) == {"r": 8, "alpha": 16.0, "target_modules": "all-linear"}


def test_explicit_settings_win_and_resolving_twice_changes_nothing():
    cfg = RunConfig.model_validate(
        {
            "policy": {"model": "smollm2-135m-instruct", "chat": False, "max_prompt_tokens": 200,
                       "lora": {"enabled": False}},
            "algorithm": {"lr": 3e-4},
        }
    )  # fmt: skip
    once = resolve_auto(cfg)
    assert (once.policy.chat, once.policy.max_prompt_tokens, once.policy.lora.enabled) == (False, 200, False)
    assert once.algorithm.lr == 3e-4 and once.policy.max_candidate_tokens == 16
    assert resolve_auto(once) == once
    # What lmrl train saves loads back to the same resolved config (a resumed run keeps it).
    reloaded = RunConfig.model_validate(yaml.safe_load(config_to_yaml(once)))
    assert resolve_auto(reloaded) == once


def test_local_directories_are_pretrained_when_their_tokenizer_has_a_chat_template(tmp_path, tiny_model_dir):
    assert not is_pretrained(_cfg(model=tiny_model_dir))  # a preset's tokenizer: no template
    (tmp_path / "config.json").write_text("{}")
    (tmp_path / "chat_template.jinja").write_text("{{ messages }}")
    assert is_pretrained(_cfg(model=str(tmp_path)))
    assert is_pretrained(_cfg(model="HuggingFaceTB/SmolLM2-135M-Instruct"))  # a hub id


def test_a_bare_model_evaluates_zero_shot_and_needs_an_env(tiny_model_dir, tmp_path):
    import pytest

    from lmrl.errors import PolicyError
    from lmrl.pipelines.evaluate import evaluate

    report = evaluate(tiny_model_dir, "lmrl/Maze-v0", n=3, seed=5, out_dir=str(tmp_path / "zs"), sampled=False)
    assert report["policy"] == tiny_model_dir and report["episodes"] == 3
    assert 0.0 <= report["greedy_success_rate"] <= 1.0 and report["sampled_success_rate"] is None
    assert report["expert_success_rate"] == 1.0
    assert (tmp_path / "zs" / "eval.json").is_file()
    with pytest.raises(PolicyError, match="is a model, not a trained policy: pass --env ID"):
        evaluate(tiny_model_dir)


def test_dqn_trains_the_whole_lm_and_refuses_lora():
    import pytest

    cfg = RunConfig.model_validate({"policy": {"model": "smollm2-135m-instruct"}, "algorithm": {"name": "DQN"}})
    assert lora_settings(cfg) is None
    with pytest.raises(ValueError, match=r"policy.lora.enabled \(true\) is supported with PPO and APPO only"):
        RunConfig.model_validate({"policy": {"lora": {"enabled": True}}, "algorithm": {"name": "DQN"}})


def test_a_bare_model_evaluates_zero_shot_in_every_seat_of_a_multi_agent_env(tiny_model_dir, tmp_path):
    from lmrl.pipelines.evaluate import evaluate

    report = evaluate(tiny_model_dir, "lmrl/TicTacToe-v0", n=2, seed=5, out_dir=str(tmp_path / "zs"), sampled=False)
    assert report["multiagent"] and report["seat_plan"] == {"player_0": "policy", "player_1": "policy"}
    assert set(report["per_agent"]) == {"player_0", "player_1"} and report["sampled_success_rate"] is None
    assert all(0.0 <= r["vs_random_success_rate"] <= 1.0 for r in report["per_agent"].values())
    assert (tmp_path / "zs" / "eval.json").is_file()


def test_suite_envs_give_agent_facing_system_messages_and_lmrl_envs_their_docs():
    import pytest

    import lmrl.envs
    from lmrl.envs.adapter import env_instructions
    from lmrl.errors import UnknownEnvError
    from lmrl.pipelines.policy_setup import chat_system_message

    # lmrl's own envs: the docstring's task sections (no agent_instructions of their own).
    maze = chat_system_message("lmrl/Maze-v0")
    assert maze == env_instructions(lmrl.envs.env_info("lmrl/Maze-v0")["doc"])
    # Suites: the game and how a turn goes, none of the adapter's seeds, folds or arguments.
    suites = {
        "twx/SimonSays-v0": "You are playing Simon Says, a TextWorld-Express text game",
        "babyai/GoToObj-v0": "You are an agent in a grid world (BabyAI)",
        "textarena/TicTacToe-v0": "You are a player in a two-player TextArena game",
        "rg/leg_counting-v0": "Solve the problem in the user message.",
    }
    for env_id, start in suites.items():
        text = chat_system_message(env_id)
        assert text.startswith(start), (env_id, text)
        assert not any(word in text for word in ("seed", "fold", "HELD_OUT", "kwargs", "``")), (env_id, text)
        assert len(text) < 700 and text.endswith("only."), (env_id, text)
    # The user's env arguments reach the text (registered ones merged with them).
    assert "after 12 steps" in chat_system_message("twx/Coin-v0", {"max_steps": 12})
    assert "partial credit" not in chat_system_message("rg/leg_counting-v0", {"partial_credit": False})
    # What a chat policy is given is that message.
    cfg = RunConfig.model_validate(
        {"env": {"id": "twx/SimonSays-v0"}, "policy": {"model": "smollm2-135m-instruct"}}
    )
    assert adapter_config(cfg).chat_system == chat_system_message("twx/SimonSays-v0")
    with pytest.raises(UnknownEnvError, match="Did you mean"):
        chat_system_message("twx/SimonSay-v0")
