"""What /openapi.json promises about the request fields, kept to what the server really accepts.

The server checks a request in three places: pydantic (types, ranges, choices), `client_input` (the media
references) and `SwapOptions` (option values and how they combine). The JSON schema states the same rules, so that
data the document calls valid is accepted (schemathesis's `positive_data_acceptance` checks exactly that):

- a media input is one of three documented forms: an http(s) URL whose host is a name (the grammar
  `faceswap.media.fetch.HOST_NAME` enforces, less localhost names and names ending in a number), a base64 data URI
  of an image or video, or bare base64 (at least 64 characters). The server also takes a few forms the pattern
  leaves out (a public IP literal, this server's own `/v1/files/{id}` link on 127.0.0.1, line-wrapped or URL-safe
  base64, other data URIs); private and loopback addresses and undecodable data are refused with 400;
- option choices are enums, numbers have their bounds, name and index lists given as comma-separated strings have
  patterns;
- the rules between fields (`combination_rules`) are `if`/`then` clauses: the classic engine takes none of the
  neural-only options, `pixel_boost` must be a multiple of the swapper's crop size, and the swappers that take a
  crop of the face photo have no `swapper_weight`.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BeforeValidator, Field, WithJsonSchema

from faceswap.models.registry import REGISTRY
from faceswap.options import (
    DEFAULT_SWAPPER,
    MASK_AREAS,
    MASK_REGIONS,
    MASK_TYPES,
    MAX_FACE_INDEX,
    PIXEL_BOOSTS,
    SWAPPERS,
)


def _integral(value: Any) -> Any:
    return int(value) if isinstance(value, float) and value.is_integer() else value


JsonInt = Annotated[int, BeforeValidator(_integral)]
"""An integer that may come as 9.0, as JSON Schema's `integer` allows. The request models are strict otherwise:
JSON types as the schema states them (no `0` for false, no "9" for 9, no `true` for 1)."""

_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?"
_END = r"\.?(?:[:/?#]|$)"
_HOST = (rf"(?!(?:{_LABEL}\.)*[lL][oO][cC][aA][lL][hH][oO][sS][tT]{_END})"  # localhost names are refused
         rf"(?:{_LABEL}\.)*(?![0-9]+{_END}){_LABEL}\.?")
"""`faceswap.media.fetch.HOST_NAME`, less the names the server refuses; IP literals are left out of the document."""
_PORT = r"(?:[0-9]{1,4}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
MEDIA_PATTERN = (
    rf"^(?:[hH][tT][tT][pP][sS]?://{_HOST}(?::{_PORT}?)?(?:[/?#]\S*)?"
    r"|data:(?:image|video)/[a-z0-9.+-]{1,20};base64,(?:[A-Za-z0-9+/]{4})+"
    r"|(?:[A-Za-z0-9+/]{4}){16,})$"
)
"""The documented media forms (see the module's docstring); `client_input` makes the final decision."""



def _name_list(names: tuple[str, ...]) -> str:
    choice = "(?:" + "|".join(names) + ")"
    return rf"^\s*{choice}(?:\s*,\s*{choice})*\s*$"


def _names(names: tuple[str, ...], what: str) -> Any:
    """A comma-separated string or a non-empty array of `names` (the server lower-cases and trims them)."""
    return Annotated[
        str | list[str] | None,
        WithJsonSchema({"anyOf": [
            {"type": "string", "pattern": _name_list(names)},
            {"type": "array", "minItems": 1, "items": {"enum": list(names)}},
            {"type": "null"}], "description": what})]


_PERCENT = r"\s*(?:100|[1-9]?[0-9])\s*"
MaskTypes = _names(MASK_TYPES, "Masks, comma-separated or as an array.")
MaskRegions = _names(MASK_REGIONS, "Face-parsing regions, comma-separated or as an array.")
MaskAreas = _names(MASK_AREAS, "Landmark areas, comma-separated or as an array.")
MaskPadding = Annotated[
    str | list[JsonInt] | None,
    WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": rf"^{_PERCENT}(?:(?:,{_PERCENT}){{3}})?$"},
        {"type": "array", "minItems": 1, "maxItems": 1, "items": {"type": "integer", "minimum": 0, "maximum": 100}},
        {"type": "array", "minItems": 4, "maxItems": 4, "items": {"type": "integer", "minimum": 0, "maximum": 100}},
        {"type": "null"}]})]
_BOOST_INTS = tuple(int(value) for value in PIXEL_BOOSTS[1:])
Percent = Annotated[
    JsonInt | None, Field(ge=0, le=100),
    WithJsonSchema({"anyOf": [{"type": "integer", "minimum": 0, "maximum": 100}, {"type": "null"}]})]
"""A whole percentage, 0–100, or null (pydantic does not carry the bounds of a validated int into the schema)."""

PixelBoost = Annotated[str | JsonInt | None, WithJsonSchema({"enum": [*PIXEL_BOOSTS, *_BOOST_INTS, None]})]


MAX_LISTED_FACES = 4
"""The documented length limit of a comma-separated index list (the server takes up to 100 distinct indices); each
length is a branch of `index_rules`, and more branches make schema-driven generators much slower."""
_INDEX = r"\s*(?:[1-9]?[0-9])\s*"
_DISTINCT = r"(?![\s\S]*\b([0-9]+)\b[\s\S]*\b\1\b)"
"""No index twice (the pattern has no leading zeros, so equal numbers are equal text)."""


def _indices(count: int | None = None) -> str:
    """`count` comma-separated indices, or 1…MAX_LISTED_FACES of them."""
    more = f"{{{count - 1}}}" if count else f"{{0,{MAX_LISTED_FACES - 1}}}"
    return rf"{_INDEX}(?:,{_INDEX}){more}"


FaceIndices = Annotated[str | JsonInt, WithJsonSchema({"anyOf": [{"type": "string"}, {"type": "integer"}]})]
"""A face index or a comma-separated list of them; what the values may be is in `index_rules`, since the two index
fields depend on each other."""
_ONE_INDEX = {"type": "integer", "minimum": 0, "maximum": MAX_FACE_INDEX}


def _list_of(count: int) -> dict[str, Any]:
    return {"type": "string", "pattern": rf"^{_DISTINCT}{_indices(count)}$"}


def index_rules(*, sources: str, targets: str) -> list[dict[str, Any]]:
    """One source face (an index 0…MAX_FACE_INDEX) replaces every target: one index, a list of distinct ones or
    'all'; several source faces pair with as many distinct target indices (source i replaces target i)."""
    single = {"anyOf": [{"type": "string", "pattern": rf"^{_INDEX}$"}, _ONE_INDEX]}
    any_targets = {"anyOf": [{"type": "string", "pattern": rf"^(?:\s*all\s*|{_DISTINCT}{_indices()})$"}, _ONE_INDEX]}
    branches = [{"properties": {sources: single, targets: any_targets}}]
    branches += [{"properties": {sources: _list_of(count), targets: _list_of(count)}, "required": [sources, targets]}
                 for count in range(2, MAX_LISTED_FACES + 1)]
    return [{"anyOf": branches}]


def _is(field: str, values: list[Any]) -> dict[str, Any]:
    return {"properties": {field: {"enum": values}}, "required": [field]}


def _only(**fields: list[Any]) -> dict[str, Any]:
    return {"properties": {name: {"enum": [None, *values]} for name, values in fields.items()}}


def combination_rules(*, classic_genders: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The `allOf` clauses of a dialect's input object (see the module docstring); `classic_genders` names the
    dialect's gender fields and the values that mean "any gender".

    The swapper rules are one `anyOf` over groups of swappers (crop size, and whether `swapper_weight` applies)
    rather than an `if`/`then` per rule: every `if` doubles the branches a generator has to combine."""
    groups: dict[tuple[int, bool], list[str]] = {}
    for name in SWAPPERS:
        spec = REGISTRY[name]
        groups.setdefault((spec.input_size, spec.swapper_type in ("blendswap", "uniface")), []).append(name)
    branches: list[dict[str, Any]] = []
    for (size, crop_only), names in sorted(groups.items()):
        fit = [value for value in _BOOST_INTS if value >= size and value % size == 0]
        limits: dict[str, list[Any]] = {}
        if len(fit) < len(_BOOST_INTS):
            limits["pixel_boost"] = ["native", *(str(value) for value in fit), *fit]
        if crop_only:
            limits["swapper_weight"] = [0.5]
        branch = _only(**limits)
        branch["properties"]["swapper"] = {"enum": [*names, *([None] if DEFAULT_SWAPPER in names else [])]}
        if DEFAULT_SWAPPER not in names:
            branch["required"] = ["swapper"]
        branches.append(branch)
    classic = _only(swapper=[DEFAULT_SWAPPER], pixel_boost=["native"], swapper_weight=[0.5], mask=["box", ["box"]],
                    **classic_genders)
    return [{"if": _is("engine", ["classic"]), "then": classic}, {"anyOf": branches}]


def media(description: str) -> Any:
    """A media input field: the documented forms in the schema, `client_input` deciding on the server."""
    return Field(description=description, json_schema_extra={"minLength": 1, "pattern": MEDIA_PATTERN})
