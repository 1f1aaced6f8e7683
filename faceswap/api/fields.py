"""What /openapi.json promises about the request fields, kept to what the server really accepts.

The server checks a request in three places: pydantic (types, ranges, choices), `client_input` (the media
references) and `SwapOptions` (option values and how they combine). The JSON schema states the same rules, so that
data the document calls valid is accepted (schemathesis's `positive_data_acceptance` checks exactly that):

- a media input is one of three documented forms: an http(s) URL with a public host name, a base64 data URI of an
  image or video, or bare base64 (at least 64 characters). The server also takes a few forms the pattern leaves
  out (a public IP literal, this server's own `/v1/files/{id}` link, line-wrapped or URL-safe base64); a private or
  loopback address is refused with 400, as are undecodable data;
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

_HOST = r"(?:[a-z0-9](?:[a-z0-9-]{0,30}[a-z0-9])?\.){1,4}[a-z]{2,12}"
MEDIA_PATTERN = (
    rf"^(?:https?://{_HOST}(?::[1-9][0-9]{{1,3}})?(?:/[A-Za-z0-9._~-]*)*"
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
PixelBoost = Annotated[str | JsonInt | None, WithJsonSchema({"enum": [*PIXEL_BOOSTS, *_BOOST_INTS, None]})]


def face_indices(*, allow_all: bool) -> Any:
    """A face index (0…MAX_FACE_INDEX) or a comma-separated list of them ('all' for every face where allowed)."""
    index = r"[0-9]{1,2}"
    pattern = rf"^\s*(?:{'all|' if allow_all else ''}{index}(?:\s*,\s*{index})*)\s*$"
    return Annotated[str | JsonInt, WithJsonSchema({"anyOf": [
        {"type": "string", "pattern": pattern},
        {"type": "integer", "minimum": 0, "maximum": MAX_FACE_INDEX}]})]


def _is(field: str, values: list[Any]) -> dict[str, Any]:
    return {"properties": {field: {"enum": values}}, "required": [field]}


def _only(**fields: list[Any]) -> dict[str, Any]:
    return {"properties": {name: {"enum": [None, *values]} for name, values in fields.items()}}


def combination_rules(*, classic_genders: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """The `allOf` clauses of a dialect's input object (see the module docstring); `classic_genders` names the
    dialect's gender fields and the values that mean "any gender"."""
    by_size: dict[int, list[str]] = {}
    for name in SWAPPERS:
        by_size.setdefault(REGISTRY[name].input_size, []).append(name)
    rules: list[dict[str, Any]] = [
        {"if": _is("engine", ["classic"]), "then": _only(
            swapper=[DEFAULT_SWAPPER], pixel_boost=["native"], swapper_weight=[0.5], mask=["box", ["box"]],
            **classic_genders)},
        {"if": _is("swapper", [name for name in SWAPPERS if REGISTRY[name].swapper_type in ("blendswap", "uniface")]),
         "then": _only(swapper_weight=[0.5])},
    ]
    for size, names in sorted(by_size.items()):
        unfit = [value for value in _BOOST_INTS if value < size or value % size]
        if not unfit:
            continue
        allowed = ["native", *(str(value) for value in _BOOST_INTS if value not in unfit),
                   *(value for value in _BOOST_INTS if value not in unfit)]
        rules.append({"if": _is("swapper", names), "then": _only(pixel_boost=allowed)})
    return rules



def media(description: str) -> Any:
    """A media input field: the documented forms in the schema, `client_input` deciding on the server."""
    return Field(description=description, json_schema_extra={"minLength": 1, "pattern": MEDIA_PATTERN})
