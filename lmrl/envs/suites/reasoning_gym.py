"""reasoning-gym tasks as one-step lmrl text envs: ``rg/leg_counting-v0``, ``rg/gsm_symbolic-v0``, ...

reasoning-gym (Open-Thought, Apache-2.0) generates reasoning problems with
verifiable answers from a seed, offline, and scores an answer with each
dataset's own ``score_answer``. Each dataset registered here passed
:func:`audit_dataset` (see :data:`EXCLUDED` for those that did not).
"""

from __future__ import annotations

import json
import unicodedata
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import CHARSET, HELD_OUT_SEED, MAX_ACTION_CHARS, TextEnv
from lmrl.envs.suites import quote, register_suite
from lmrl.errors import ConfigError

#: Datasets left out, and why (reasoning-gym 0.1.25; found by :func:`audit_dataset`).
EXCLUDED: dict[str, str] = {
    "game_of_life_halting": "reward-hackable: any non-empty answer scores 1.0",
    "coin_flip": "reward-hackable: the constant answer '0' averages 0.93",
    "puzzle24": "reward-hackable: the constant answer '1*2*3*4' scores 1.0 whatever numbers were given",
    "graph_color": "no reference answer: the dataset's answer scores 0 (a verifier, no expert)",
    "propositional_logic": "no reference answer: the dataset's answer scores 0",
    "rubiks_cube": "no reference answer: the dataset's answer scores 0",
    "rush_hour": "no reference answer: the dataset's answer scores 0",
    "boxnet": "fails with its default config (TypeError in reasoning-gym 0.1.25)",
    "composite": "a mixture that needs its own config of datasets, not one task",
}
_UNFIT = "the reference answer does not survive lmrl's action text (printable, <= 512 characters)"
EXCLUDED.update(
    {
        name: f"{_UNFIT}: it scores {score} over 30 problems"
        for name, score in (
            ("arc_agi", 0.75),
            ("emoji_mystery", 0.70),
            ("futoshiki", 0.90),
            ("modulo_grid", 0.0),
            ("palindrome_partitioning", 0.47),
            ("prime_factorization", 0.20),
            ("tower_of_hanoi", 0.56),
        )  # fmt: skip
    }
)

#: Datasets registered as ``rg/<name>-v0``: reasoning-gym 0.1.25's, less :data:`EXCLUDED`
#: and those whose reference answers do not fit lmrl's action text (see :func:`audit_dataset`).
DATASETS: tuple[str, ...] = (
    "ab", "acre", "advanced_geometry", "aiw", "arc_1d", "base_conversion",
    "basic_arithmetic", "bf", "binary_alternation", "binary_matrix", "bitwise_arithmetic",
    "caesar_cipher", "calendar_arithmetic", "chain_sum", "circuit_logic", "codeio",
    "color_cube_rotation", "complex_arithmetic", "count_bits", "count_primes", "countdown",
    "course_schedule", "cryptarithm", "decimal_arithmetic", "decimal_chain_sum", "dice",
    "family_relationships", "figlet_font", "fraction_simplification",
    "game_of_life", "gcd", "group_anagrams", "gsm_symbolic",
    "intermediate_integration", "isomorphic_strings", "jugs", "kakurasu", "knight_swap",
    "knights_knaves", "largest_island", "lcm", "leg_counting", "letter_counting",
    "letter_jumble", "list_functions", "mahjong_puzzle", "manipulate_matrix", "maze",
    "mini_sudoku", "n_queens", "needle_haystack", "number_filtering",
    "number_format", "number_sequence", "number_sorting", "palindrome_generation",
    "path_star", "polynomial_equations", "polynomial_multiplication",
    "pool_matrix", "power_function", "products",
    "quantum_lock", "ransom_note", "rearc", "rectangle_count", "rotate_matrix", "rotten_oranges",
    "self_reference", "sentence_reordering", "shortest_path", "simple_equations",
    "simple_geometry", "simple_integration", "sokoban", "spell_backward", "spiral_matrix",
    "string_insertion", "string_manipulation", "string_splitting", "string_synthesis", "sudoku",
    "survo", "syllogism", "time_intervals", "tsumego", "word_ladder",
    "word_sequence_reversal", "word_sorting", "zebra_puzzles",
)  # fmt: skip
ENV_IDS: dict[str, tuple[str, dict]] = {
    f"rg/{name}-v0": ("lmrl.envs.suites.reasoning_gym:ReasoningGymEnv", {"dataset": name})
    for name in DATASETS
}
#: Symbols of reasoning-gym questions spelled in printable characters (others become ``?``).
_REPLACEMENTS = {
    "\u2212": "-", "\u2013": "-", "\u2014": "-", "\u00d7": "x", "\u00f7": "/",
    "\u2192": "->", "\u2190": "<-", "\u2194": "<->", "\u2191": "^", "\u2193": "v",
    "\u00b0": " degrees", "\u222b": "integral ", "\u2019": "'", "\u2018": "'",
    "\u201c": '"', "\u201d": '"', "\u20ac": "EUR ", "\u00a3": "GBP ", "\u2295": "(+)",
    "\u2500": "-", "\u2502": "|", "\u2588": "#", "\u2580": "#", "\u2584": "#",
    "\u2590": "#", "\u258c": "#", "\u00b7": ".", "\u2022": "*", "\u2122": "(TM)",
}  # fmt: skip


def to_charset(text: str) -> str:
    """``text`` in lmrl's printable charset: accents stripped, a few symbols spelled, others ``?``."""
    out = []
    for ch in text:
        if ch in CHARSET:
            out.append(ch)
            continue
        if ch in _REPLACEMENTS:
            out.append(_REPLACEMENTS[ch])
            continue
        if unicodedata.name(ch, "").startswith("BOX DRAWINGS"):
            out.append("+")
            continue
        plain = unicodedata.normalize("NFKD", ch).encode("ascii", "ignore").decode()
        out.append(plain if plain and all(c in CHARSET for c in plain) else "?")
    return "".join(out).replace("\r", "").replace("\x0b", " ").replace("\x0c", " ")


def clean_answer(text: str, max_chars: int = MAX_ACTION_CHARS) -> str:
    """Answer text as scored: printable characters only, line breaks kept, ``max_chars`` at most.

    Unlike :func:`lmrl.envs.base.clean_action` this keeps the lines of an answer
    (a grid, a list of moves), only squeezing spaces inside each line.
    """
    kept = "".join(ch for ch in text if ch in CHARSET and ch not in "\x0b\x0c\r")
    lines = [" ".join(line.split()) for line in kept.split("\n")]
    return "\n".join(lines).strip()[:max_chars]


@lru_cache(maxsize=32)
def _dataset(name: str, size: int, seed: int, config_json: str) -> Any:
    """The dataset, cached per (name, size, seed, config); the config comes as sorted JSON so lists can be in the key."""
    import reasoning_gym

    return reasoning_gym.create_dataset(name, size=size, seed=seed, **json.loads(config_json))


class ReasoningGymEnv(TextEnv):
    """One reasoning-gym problem per episode; the answer is scored by the dataset's own scorer.

    ## Description
    ``reset`` draws a problem of reasoning-gym's ``dataset`` (generated by
    reasoning-gym from ``dataset_seed`` and the problem's index, with the
    dataset's own difficulty ``config``); the agent answers in one step. Seeds
    are reasoning-gym's: ``reset(seed=s)`` gives problem ``s % size`` of the
    dataset, so episode ``s`` is ``reasoning_gym.create_dataset(dataset,
    size=size, seed=dataset_seed)[s % size]``; without a seed the index is drawn
    from ``self.np_random``. For GRPO groups, reset every env of a group with
    the same seed.

    Evaluation seeds (``s >= HELD_OUT_SEED``, 1,000,000; see
    :data:`lmrl.envs.base.HELD_OUT_SEED`) index a second, held-out dataset
    instead: problem ``(s - 1_000_000) % size`` of ``create_dataset(dataset,
    size=size, seed=dataset_seed + 1_000_000)`` (:attr:`held_out_dataset_seed`).
    Most reasoning-gym datasets make problem ``i`` from ``Random(seed + i)``, so
    for ``size <= 1_000_000`` the two datasets never share a generator seed;
    a small problem space can still repeat a training question by chance.
    ``info["split"]`` is ``"train"`` or ``"held_out"``, ``info["dataset_seed"]``
    the reasoning-gym seed of the problem's dataset, ``info["index"]`` its index.

    ## Action Space
    Free text: the answer alone (no admissible actions; generate mode). Line
    breaks are kept (grids, move lists); characters outside lmrl's printable
    set are dropped; at most 512 characters.

    ## Observation Space
    ``{"text": str, "actions": ()}``: reasoning-gym's question, in printable
    characters (accented letters stripped, other symbols shown as ``?``), for
    example::

        Your task is to count how many legs there are in total when given a list of animals.

        Now, how many legs are there in total if you have 3 sea slugs, 12 deers, 2 giraffes, 11 elephants?

    After the answer: whether it was correct and its score (the reference
    answer is not shown).

    ## Rewards
    The dataset's ``score_answer(answer, entry)``, 0 to 1 (1 for a correct
    answer). An answer the scorer cannot read scores 0. Many datasets keep
    reasoning-gym's default scorer, which gives partial credit
    ``len(reference) / len(answer)`` when the reference is inside the answer
    (``-10`` scores 0.67 when the answer is ``-1``); with
    ``partial_credit=False`` the reward is 1 for a correct answer and 0
    otherwise (``info["score"]`` keeps the scorer's figure).

    ## Episode End
    Terminated after the one answer. ``info["success"]`` is True when the
    score is 1; ``info["score"]`` holds it.

    ## Arguments
    ```python
    lmrl.envs.make("rg/leg_counting-v0", size=10_000, dataset_seed=0,
                   config={"min_animals": 3, "max_animals": 10})
    ```
    * ``dataset``: the reasoning-gym dataset name (set by each id).
    * ``size``: problems in the dataset (episode seeds wrap around it; the held-out
      dataset has as many).
    * ``dataset_seed``: reasoning-gym's dataset seed (the held-out dataset's is
      ``dataset_seed + 1_000_000``).
    * ``config``: the dataset's own config fields (difficulty), as a dict.
    * ``partial_credit``: reward the scorer's partial credit (True) or only
      correct answers (False).
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    The expert answers with the dataset's reference answer. The random agent
    answers with the reference answer of a random other problem of the same
    dataset (a well-formed, usually wrong answer).

    ## Version History
    * v0: Initial version (reasoning-gym 0.1.25).
    """

    default_action_mode: ClassVar[str] = "generate"
    max_episode_steps: ClassVar[int | None] = 1
    held_out_split: ClassVar[bool] = True

    @classmethod
    def agent_instructions(cls, partial_credit: bool = True, **_: Any) -> str:
        """The chat system message: answer the problem, in the form it asks for."""
        rewards = (
            "1 for a correct answer, partial credit for some near answers, else 0"
            if partial_credit
            else "1 for a correct answer, else 0"
        )
        return (
            "Solve the problem in the user message. Give the final answer in the form the "
            f"problem asks for.\n\nRewards: {rewards}.\n\nAnswer with the final answer only."
        )

    def __init__(
        self,
        dataset: str = "leg_counting",
        size: int = 10_000,
        dataset_seed: int = 0,
        config: dict[str, Any] | None = None,
        partial_credit: bool = True,
        render_mode: str | None = None,
    ) -> None:
        super().__init__(render_mode=render_mode)
        if dataset in EXCLUDED:
            raise ConfigError(f"reasoning-gym dataset {dataset!r} is excluded: {EXCLUDED[dataset]}")
        if size < 1:
            raise ConfigError(f"size must be >= 1, got {size}")
        self.dataset_name, self.size, self.dataset_seed = dataset, int(size), int(dataset_seed)
        self.config = dict(config or {})
        self.partial_credit = bool(partial_credit)
        try:
            self.dataset = _dataset(dataset, self.size, self.dataset_seed, self._config_json())
        except Exception as exc:
            raise ConfigError(
                f"reasoning-gym could not create dataset {dataset!r} with config {self.config}: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        #: reasoning-gym seed of the held-out dataset that evaluation seeds index.
        self.held_out_dataset_seed = self.dataset_seed + HELD_OUT_SEED
        self._held_out: Any = None  # built at the first evaluation seed
        self._requested_seed: int | None = None
        self._raw_answer: str | None = None
        self.split = "train"  # "held_out" for evaluation seeds
        self.index = 0
        self.entry: dict[str, Any] = {}

    def _config_json(self) -> str:
        """The dataset config as sorted JSON: the cache key, and what ``create_dataset`` receives."""
        return json.dumps(self.config, sort_keys=True)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["dataset"] = state["_held_out"] = None  # rebuilt from its arguments: can be large
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.dataset = _dataset(self.dataset_name, self.size, self.dataset_seed, self._config_json())

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        seed, self.split = self._requested_seed, "train"
        if seed is None:
            self.index = int(self.np_random.integers(self.size))
        elif seed >= HELD_OUT_SEED:  # an evaluation seed: a problem of the held-out dataset
            self.split, self.index = "held_out", (seed - HELD_OUT_SEED) % self.size
        else:
            self.index = seed % self.size
        self.entry = self.episode_dataset[self.index]
        return to_charset(str(self.entry["question"])), (), self._info()

    def step(self, action: str):  # noqa: D102 - keeps the raw text so answers keep their lines
        self._raw_answer = action if isinstance(action, str) else None
        return super().step(action)

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        answer = clean_answer(self._raw_answer if self._raw_answer is not None else action)
        score = self.score(answer)
        if not answer:
            verdict = f"You gave {quote(answer)}; it scores 0. Answer with the solution itself."
        elif score >= 1.0:
            verdict = "Correct."
        else:
            verdict = f"Not correct: {quote(answer)} scores {score:.2f} of 1."
        question = to_charset(str(self.entry["question"]))
        reward = score if self.partial_credit else float(score >= 1.0)
        return f"{question}\n{verdict}", (), reward, True, False, self._info(score, answer)

    @property
    def episode_dataset(self) -> Any:
        """The reasoning-gym dataset of this episode: the training one, or the held-out one."""
        if self.split != "held_out":
            return self.dataset
        if self._held_out is None:
            seed = self.held_out_dataset_seed
            self._held_out = _dataset(self.dataset_name, self.size, seed, self._config_json())
        return self._held_out

    def score(self, answer: str) -> float:
        """The dataset's score of ``answer`` for the current problem (0 if the scorer fails on it)."""
        try:
            score = float(self.episode_dataset.score_answer(answer, entry=self.entry))
        except Exception:  # some scorers raise on unreadable answers
            return 0.0
        return score if np.isfinite(score) else 0.0

    def _info(self, score: float = 0.0, answer: str | None = None) -> dict[str, Any]:
        info: dict[str, Any] = {
            "success": bool(score >= 1.0),
            "score": float(score),
            "dataset": self.dataset_name,
            "split": self.split,
            "dataset_seed": (
                self.held_out_dataset_seed if self.split == "held_out" else self.dataset_seed
            ),
            "index": self.index,
        }
        if answer is not None:
            info["answer"] = answer
        return info

    def expert_action(self) -> str:
        """The dataset's reference answer."""
        return str(self.entry["answer"])

    def random_action(self, rng: np.random.Generator) -> str:
        """The reference answer of a random problem of the episode's dataset."""
        return str(self.episode_dataset[int(rng.integers(self.size))]["answer"])


def audit_dataset(name: str, n: int = 30) -> dict[str, Any]:
    """Checks a reasoning-gym dataset for use here: the figures :data:`DATASETS` was chosen by.

    Args:
        name: reasoning-gym dataset name.
        n: Problems to try.

    Returns:
        ``{"expert": mean score of the cleaned reference answers, "best_constant": (mean,
        answer) of the best constant answer, "ascii_questions": fraction of questions already in
        lmrl's charset}``. A dataset is registered when ``expert >= 0.9`` and
        ``best_constant[0] < 0.9``.
    """
    env = ReasoningGymEnv(dataset=name, size=max(n, 1000))
    constants = (
        "",
        "0",
        "1",
        "2",
        "True",
        "False",
        "yes",
        "no",
        "None",
        "[]",
        "{}",
        "a",
        "x" * 600,
    )
    expert, const, ascii_q = 0.0, dict.fromkeys(constants, 0.0), 0
    for seed in range(n):
        obs, _ = env.reset(seed=seed)
        expert += env.score(clean_answer(env.expert_action()))
        ascii_q += obs["text"] == str(env.entry["question"])
        for c in constants:
            const[c] += env.score(clean_answer(c))
    best = max(const, key=const.get)
    return {
        "expert": expert / n,
        "best_constant": (const[best] / n, best[:10]),
        "ascii_questions": ascii_q / n,
    }


def register_envs() -> None:
    """Registers the ``rg/*`` ids (the ``lmrl.envs`` entry point of the ``reasoning-gym`` extra)."""
    register_suite(
        ENV_IDS, suite="reasoning-gym", extra="reasoning-gym", modules=("reasoning_gym",)
    )
