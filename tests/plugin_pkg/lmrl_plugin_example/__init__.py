"""An example lmrl env plugin: ``plugin/Echo-v0``, registered through the ``lmrl.envs`` entry point."""

from __future__ import annotations

from lmrl.envs import TextEnv, register

WORDS = ("apple", "river", "stone", "cloud")


class EchoEnv(TextEnv):
    """Repeat the word you are shown.

    ## Description
    A word is drawn at reset; saying it back ends the episode with success.

    ## Action Space
    Text; the admissible actions are the four words.

    ## Observation Space
    ``{"text": "Say the word: river.", "actions": WORDS}``.

    ## Rewards
    +1 for the word, -0.1 for anything else.

    ## Episode End
    Terminated on the word; truncated after 3 steps.

    ## Arguments
    None.

    ## Version History
    * v0: Initial version.
    """

    max_episode_steps = 3

    def _reset(self, options):
        self.word, self.steps = WORDS[int(self.np_random.integers(len(WORDS)))], 0
        return f"Say the word: {self.word}.", WORDS, {}

    def _step(self, action):
        self.steps += 1
        if action == self.word:
            return "Well done.", (), 1.0, True, False, {"success": True}
        text = f"No, say the word: {self.word}."
        return text, WORDS, -0.1, False, self.steps >= 3, {}

    def expert_action(self):
        return self.word


def register_envs() -> None:
    """The entry point: lmrl calls it once, when it loads its plugins."""
    register("plugin/Echo-v0", "lmrl_plugin_example:EchoEnv")
