"""Batch workflows, one folder per side of the data flow, shared pieces at the top.

- :mod:`lmrl.pipelines.rl`: RL with RLlib (``lmrl train``).
- :mod:`lmrl.pipelines.lm_train`: LM training on Ray Train (``lmrl pretrain``, ``lmrl finetune``,
  ``lmrl data collect``).
- Shared: the run config schema (:mod:`~lmrl.pipelines.config`), the run directory
  (:mod:`~lmrl.pipelines.run_dir`), policy settings (:mod:`~lmrl.pipelines.policy_setup`),
  env text corpora (:mod:`~lmrl.pipelines.corpus`), agents named on the command line
  (:mod:`~lmrl.pipelines.agents`), :mod:`~lmrl.pipelines.evaluate`,
  :mod:`~lmrl.pipelines.export` and :mod:`~lmrl.pipelines.quickstart`.

Modules that moved keep their old import path here, for the files that name it: RLlib
checkpoints pickle the classes they are built from (the learner, the env, the callbacks, the
policy mapping) by module path, in each ``class_and_ctor_args.pkl``, and
``Algorithm.from_checkpoint`` imports them from there. ``lmrl train --resume`` does not read
those files, but RLlib's own loader does, so a checkpoint written before the move still loads.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from typing import Any

#: Old module path -> where the module is now, for paths that RLlib checkpoints record.
MOVED_MODULES: dict[str, str] = {
    "lmrl.pipelines.learner": "lmrl.pipelines.rl.learner",
    "lmrl.pipelines.multiagent": "lmrl.pipelines.rl.multiagent",
    "lmrl.pipelines.rllib_builder": "lmrl.pipelines.rl.builder",
}


class _MovedModuleFinder:
    """Imports an old module path as the module at its new path (one module object, two names).

    On ``sys.meta_path`` after the standard finders, so it answers only names that no file has.
    """

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        return importlib.util.spec_from_loader(name, self) if name in MOVED_MODULES else None

    def create_module(self, spec: Any) -> None:
        return None  # a placeholder, replaced in exec_module

    def exec_module(self, module: Any) -> None:
        # The import system returns what sys.modules holds under the old name after this call.
        sys.modules[module.__name__] = importlib.import_module(MOVED_MODULES[module.__name__])


if not any(type(finder).__name__ == _MovedModuleFinder.__name__ for finder in sys.meta_path):
    sys.meta_path.append(_MovedModuleFinder())
