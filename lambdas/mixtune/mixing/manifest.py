"""The mix manifest (``manifest.json``): everything needed to reproduce and audit a mix."""

from __future__ import annotations

from pydantic import BaseModel, Field

from mixtune.mixing.decontam import EvalSetInfo
from mixtune.mixing.spec import MixSpec

MANIFEST_VERSION = 1
DOMAIN = "domain"


class SourceReport(BaseModel):
    """One input of the mix: the domain file or one catalog source."""

    name: str
    category: str = Field(description="'domain' for the domain data, else the catalog category")
    uri: str
    licence: str = ""
    input_sha256: str = Field(
        description="sha256 of the file the mixer read (the staged file for converted sources)"
    )
    original_sha256: str | None = Field(
        default=None, description="sha256 of the raw source before conversion"
    )
    available_records: int = Field(description="records in the (prepared) file")
    available_tokens: int | None = None
    rejected_records: int = Field(default=0, description="rejected while converting a non-prepared source")
    contaminated_records: int = Field(default=0, description="dropped by decontamination")
    selected_records: int = 0
    unique_records: int = 0
    selected_tokens: int | None = None
    max_record_tokens: int | None = None
    target_share: float = Field(
        default=0.0, description="percent of the mix this source should hold, in the spec's unit"
    )
    target_units: float = Field(default=0.0, description="records or tokens this source should give")
    oversampled: bool = False


class PartReport(BaseModel):
    """The domain or one general category: target and realised shares (percent)."""

    name: str
    target_percent: float
    records: int
    tokens: int | None
    record_percent: float
    token_percent: float | None


class DecontaminationReport(BaseModel):
    ngram: int
    eval_sets: list[EvalSetInfo] = Field(default_factory=list)
    eval_ngrams: int = 0
    dropped: dict[str, int] = Field(default_factory=dict, description="source -> records dropped")


class OutputReport(BaseModel):
    uri: str
    sha256: str | None = None
    records: int = 0
    tokens: int | None = None
    bytes: int = 0


class MixManifest(BaseModel):
    manifest_version: int = MANIFEST_VERSION
    dry_run: bool = False
    spec: MixSpec
    seed: int
    unit: str
    domain_uri: str
    catalog_uri: str | None = None
    sources: list[SourceReport]
    parts: list[PartReport] = Field(description="domain first, then categories: target vs realised shares")
    warnings: list[str] = Field(default_factory=list)
    decontamination: DecontaminationReport | None = None
    output: OutputReport

    def part(self, name: str) -> PartReport:
        for part in self.parts:
            if part.name == name:
                return part
        raise KeyError(name)

    def source(self, name: str) -> SourceReport:
        for source in self.sources:
            if source.name == name:
                return source
        raise KeyError(name)

    def plan_lines(self) -> list[str]:
        """A human-readable plan: parts, sources, warnings (no dataset text)."""
        unit = self.unit
        lines = [
            f"mix plan ({unit}, seed {self.seed}): {self.output.records} records"
            + (f", {self.output.tokens} tokens" if self.output.tokens is not None else "")
        ]
        for part in self.parts:
            realised = part.token_percent if unit == "tokens" else part.record_percent
            tokens = f", {part.tokens} tokens" if part.tokens is not None else ""
            lines.append(
                f"  {part.name:<24} target {part.target_percent:7.2f}%  realised {realised:7.2f}%"
                f"  ({part.records} records{tokens})"
            )
        lines.append("  sources:")
        for source in self.sources:
            extra = []
            if source.oversampled:
                extra.append("oversampled")
            if source.contaminated_records:
                extra.append(f"{source.contaminated_records} contaminated dropped")
            if source.rejected_records:
                extra.append(f"{source.rejected_records} rejected")
            lines.append(
                f"    {source.name:<22} [{source.category}] {source.selected_records} of "
                f"{source.available_records} records" + (f" ({', '.join(extra)})" if extra else "")
            )
        lines.extend(f"  warning: {warning}" for warning in self.warnings)
        return lines

    def summary(self) -> str:
        """One line for logs."""
        shares = ", ".join(
            f"{p.name} {(p.token_percent if self.unit == 'tokens' else p.record_percent) or 0:.2f}%"
            for p in self.parts
        )
        return f"mixed {self.output.records} records ({shares}); {len(self.warnings)} warning(s)"
