"""Data mixing: blend domain data with general data at an exact, reproducible ratio."""

from mixtune.mixing.catalog import Catalog, CatalogError, CatalogSource, parse_hf_uri
from mixtune.mixing.manifest import MixManifest, PartReport, SourceReport
from mixtune.mixing.mixer import MANIFEST_FILE, MIXED_FILE, mix_datasets
from mixtune.mixing.prompt_bank import BankPrompt, load_prompt_bank
from mixtune.mixing.sources import MixError
from mixtune.mixing.spec import MixSpec, SpecError

__all__ = [
    "MANIFEST_FILE",
    "MIXED_FILE",
    "BankPrompt",
    "Catalog",
    "CatalogError",
    "CatalogSource",
    "MixError",
    "MixManifest",
    "MixSpec",
    "PartReport",
    "SourceReport",
    "SpecError",
    "load_prompt_bank",
    "mix_datasets",
    "parse_hf_uri",
]
