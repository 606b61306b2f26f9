"""Settings of trusted writes, redaction and forgetting (``AGENTMEM_TRUST__*``,
``AGENTMEM_REDACTION__*``, ``AGENTMEM_FORGET__*``); part of :class:`agentmem.Settings`."""

from __future__ import annotations

from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


class TrustLevel(StrEnum):
    """How far a write source is trusted: ``trusted`` writes are stored at once,
    ``untrusted`` ones are held in quarantine until approved."""

    TRUSTED = "trusted"
    UNTRUSTED = "untrusted"


class InjectionAction(StrEnum):
    """What a write that looks like instructions to the agent gets."""

    OFF = "off"
    FLAG = "flag"
    """Stored, with ``provenance["flags"]`` naming the patterns it matched."""
    QUARANTINE = "quarantine"
    """Held in quarantine (flagged) whatever its source."""


class TrustSettings(BaseModel):
    """Where writes come from and how far each source is trusted (:mod:`agentmem.trust`)."""

    model_config = ConfigDict(extra="forbid")

    default_source: str = Field(
        default="user", description="source of a write that names none (mem.add(source=...))"
    )
    levels: dict[str, TrustLevel] = Field(
        default_factory=lambda: {
            "user": TrustLevel.TRUSTED,
            "agent": TrustLevel.TRUSTED,
            "tool": TrustLevel.UNTRUSTED,
            "import": TrustLevel.UNTRUSTED,
        },
        description="trust level of each write source; a source not listed is refused",
    )
    injection: InjectionAction = Field(
        default=InjectionAction.FLAG,
        description="what text that looks like instructions to the agent gets: off, flag "
        "(stored with provenance flags) or quarantine",
    )

    @field_validator("levels")
    @classmethod
    def _not_empty(cls, value: dict[str, TrustLevel]) -> dict[str, TrustLevel]:
        if not value:
            raise ValueError("trust.levels needs at least one source, e.g. {'user': 'trusted'}")
        return value

    @model_validator(mode="after")
    def _default_source_declared(self) -> TrustSettings:
        # Else every write that names no source is refused, long after the settings loaded.
        if self.default_source not in self.levels:
            raise ValueError(
                f"trust.default_source {self.default_source!r} is not a source trust.levels "
                f"declares ({', '.join(sorted(self.levels))}); declare it "
                f"(AGENTMEM_TRUST__LEVELS__{self.default_source.upper()}=trusted) or set "
                "AGENTMEM_TRUST__DEFAULT_SOURCE to one of those"
            )
        return self


class RedactionKind(StrEnum):
    """What :mod:`agentmem.redaction` can take out of text."""

    API_KEY = "api_key"
    CARD = "card"
    EMAIL = "email"
    PHONE = "phone"


class RedactionSettings(BaseModel):
    """Redaction of secrets and personal data before anything is embedded, indexed or
    trained on (:mod:`agentmem.redaction`)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = Field(default=False, description="redact text on write")
    kinds: list[RedactionKind] = Field(
        default_factory=lambda: list(RedactionKind),
        description="what to redact: api_key, card, email, phone",
    )
    keep_raw: bool = Field(
        default=False,
        description="keep the unredacted text in the system of record "
        "(provenance['raw_text']; never embedded, indexed or trained on)",
    )
    phone_region: str = Field(
        default="US",
        description="region for phone numbers written without a country code (ISO 3166 code)",
    )

    @field_validator("phone_region")
    @classmethod
    def _known_region(cls, value: str) -> str:
        # phonenumbers finds nothing for a region it does not know ('us' included), which
        # would turn phone redaction off without a word: refuse it here instead.
        region = value.strip().upper()
        try:
            from phonenumbers import SUPPORTED_REGIONS
        except ImportError:  # without the redaction extra, redacting phones is refused anyway
            known = len(region) == 2 and region.isascii() and region.isalpha()
        else:
            known = region in SUPPORTED_REGIONS
        if not known:
            raise ValueError(
                f"redaction.phone_region {value!r} is not a region phone numbers are known for; "
                "use a two-letter ISO 3166 code such as US, GB or DE "
                "(AGENTMEM_REDACTION__PHONE_REGION)"
            )
        return region


class ForgetSettings(BaseModel):
    """Forgetting (:mod:`agentmem.erasure`)."""

    model_config = ConfigDict(extra="forbid")

    batch_size: int = Field(
        default=500, ge=1, le=10_000, description="records removed per store transaction"
    )
    probe_questions: int = Field(
        default=3,
        ge=1,
        le=20,
        description="questions generated about each forgotten memory for the retrain probe",
    )


__all__ = [
    "ForgetSettings",
    "InjectionAction",
    "RedactionKind",
    "RedactionSettings",
    "TrustLevel",
    "TrustSettings",
]
