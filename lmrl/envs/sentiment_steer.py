"""``lmrl/SentimentSteer-v0``: continue a prompt; the reward is the continuation's VADER sentiment."""

from __future__ import annotations

import re
from functools import lru_cache
from importlib import resources
from typing import Any, ClassVar

import numpy as np

from lmrl.envs.base import TextEnv
from lmrl.errors import ConfigError

#: The expert's continuations: a few common words (short in tokens), each scored at least 0.6 by VADER.
POSITIVE_PHRASES: tuple[str, ...] = (
    "was great",
    "was the best",
    "is great",
    "is the best",
)
#: A discrete action set for tabular baselines: positive, negative and neutral continuations.
PHRASE_VOCABULARY: tuple[str, ...] = (
    "was great",
    "is lovely",
    "was a joy",
    "was awful",
    "was sad",
    "was boring",
    "was there",
    "is new",
)
_RANDOM_VERBS = ("was", "is", "felt", "seemed")
_RANDOM_WORDS = (
    "good", "bad", "great", "awful", "nice", "boring", "fun", "sad", "okay", "fine",
    "terrible", "lovely", "dull", "cold", "warm", "loud", "quiet", "new", "old", "long",
    "very", "not", "really", "quite", "and", "a", "bit", "so",
)  # fmt: skip
_LETTER = re.compile(r"[A-Za-z]")


@lru_cache(maxsize=1)
def load_prompts() -> tuple[str, ...]:
    """The prompts that ship with lmrl (``lmrl/envs/data/sentiment_prompts.txt``)."""
    text = resources.files("lmrl.envs").joinpath("data/sentiment_prompts.txt").read_text()
    return tuple(
        line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")
    )


@lru_cache(maxsize=1)
def _analyzer():
    # Module-level: the lexicon is large, and envs must stay cheap to pickle.
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def sentiment(text: str) -> float:
    """VADER's compound score of ``text``, in [-1, 1] (offline; the lexicon ships with the package)."""
    return float(_analyzer().polarity_scores(text)["compound"])


class SentimentSteerEnv(TextEnv):
    """Continue a neutral prompt; the reward is how positive the continuation sounds (VADER).

    ## Description
    A prompt is drawn from the 40 neutral openings that ship with lmrl
    (``lmrl/envs/data/sentiment_prompts.txt``), for example ``"The movie"``.
    The agent writes a continuation, once. The reward is the VADER compound
    sentiment of the continuation (the prompt itself is not scored), in the
    manner of RL4LMs' IMDB positive-sentiment task, with the lexicon scorer of
    the ``vaderSentiment`` package (offline). The episode succeeds when the
    score is at least ``success_threshold``. Nothing in the reward keeps the
    text fluent: train with the KL-to-reference penalty
    (``algorithm.kl_ref_coeff``, e.g. 0.05) so the policy stays close to its
    initial language model instead of emitting a string of positive words.
    Over seeds 0-199, a random agent (three or four words drawn from a mixed list) succeeds
    in 19.5% of episodes (mean reward -0.00), the expert in 100% (mean reward 0.63).

    ## Action Space
    Free text, the continuation. Its first ``max_words`` words are scored. There
    are no admissible actions: this env is for generate mode. Text without a
    letter is penalised.

    ## Observation Space
    ``{"text": str, "actions": ()}``. At reset::

        Continue the text: The movie

    After the step: ``The movie was great fun. [sentiment 0.81]``.

    ## Rewards
    The VADER compound score of the continuation, in [-1, 1]; -0.2 for text
    without a letter.

    ## Episode End
    Terminated after the one continuation (``info["success"] = True`` if the
    score reached ``success_threshold``; ``info["sentiment"]`` holds the score).

    ## Arguments
    ```python
    gymnasium.make("lmrl/SentimentSteer-v0", max_words=20, success_threshold=0.5)
    ```
    * ``max_words``: words of the continuation that are scored (the rest is dropped).
    * ``success_threshold``: the score that counts as success, in (-1, 1].
    * ``render_mode``: ``"ansi"`` or ``"human"`` (the observation text).

    ## Version History
    * v0: Initial version.
    """

    default_action_mode: ClassVar[str] = "generate"
    max_episode_steps: ClassVar[int | None] = 1

    EMPTY_PENALTY: ClassVar[float] = -0.2

    def __init__(
        self, max_words: int = 20, success_threshold: float = 0.5, render_mode: str | None = None
    ) -> None:
        super().__init__(render_mode=render_mode)
        if max_words < 1:
            raise ConfigError(f"max_words must be >= 1, got {max_words}")
        if not -1.0 < success_threshold <= 1.0:
            raise ConfigError(f"success_threshold must be in (-1, 1], got {success_threshold}")
        self.max_words, self.success_threshold = int(max_words), float(success_threshold)
        self.prompts = load_prompts()
        self.index = 0

    @property
    def prompt(self) -> str:
        """The current prompt."""
        return self.prompts[self.index]

    def _reset(self, options: dict[str, Any] | None) -> tuple[str, tuple[str, ...], dict[str, Any]]:
        self.index = int(self.np_random.integers(len(self.prompts)))
        return f"Continue the text: {self.prompt}", (), {"success": False, "sentiment": 0.0}

    def _step(self, action: str) -> tuple[str, tuple[str, ...], float, bool, bool, dict[str, Any]]:
        continuation = " ".join(action.split()[: self.max_words])
        if not _LETTER.search(continuation):
            text = f"{self.prompt} {continuation} [no words to score]"
            return text, (), self.EMPTY_PENALTY, True, False, {"success": False, "sentiment": 0.0}
        score = sentiment(continuation)
        shown = continuation if len(continuation) <= 200 else continuation[:197] + "..."
        info = {"success": score >= self.success_threshold, "sentiment": score}
        return f"{self.prompt} {shown} [sentiment {score:.2f}]", (), score, True, False, info

    def expert_action(self) -> str:
        """A positive continuation from :data:`POSITIVE_PHRASES` (one per prompt, for variety)."""
        return POSITIVE_PHRASES[self.index % len(POSITIVE_PHRASES)]

    def random_action(self, rng: np.random.Generator) -> str:
        """A verb and two or three words drawn from a mixed positive/negative/neutral list."""
        words = [_RANDOM_VERBS[int(rng.integers(len(_RANDOM_VERBS)))]]
        words += [
            _RANDOM_WORDS[int(i)]
            for i in rng.integers(len(_RANDOM_WORDS), size=int(rng.integers(2, 4)))
        ]
        return " ".join(words)

    def action_vocabulary(self) -> tuple[str, ...]:
        """A small discrete action set (for tabular baselines): :data:`PHRASE_VOCABULARY`."""
        return PHRASE_VOCABULARY
