"""SwapOptions: the one request model every caller (UI, REST, CLI) builds, validated once.

Choices live here as `Literal` aliases; CLI `choices=`, UI dropdowns and REST docs derive from them with
`typing.get_args`, so there is one list of each.
"""

from __future__ import annotations

from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from faceswap.errors import FaceSwapError
from faceswap.models.registry import REGISTRY, RESTORE_CHOICES, names_with_role
from faceswap.swap.masks import MaskArea, MaskRegion, MaskType

Order = Literal["left_to_right", "largest_first"]
Selection = Literal["track", "per_frame"]
Gender = Literal["any", "male", "female"]
EngineChoice = Literal["auto", "neural", "classic"]
Restore = Literal[("none", *RESTORE_CHOICES)]  # type: ignore[valid-type]  # the registry's restorers
OutputFormat = Literal["same", "mp4", "gif"]
SwapperChoice = Literal[names_with_role("swapper")]  # type: ignore[valid-type]  # the registry's swappers
PixelBoost = Literal["native", "256", "384", "512", "768", "1024"]
OccluderChoice = Literal[names_with_role("occluder")]  # type: ignore[valid-type]
ParserChoice = Literal[names_with_role("parser")]  # type: ignore[valid-type]

ORDERS: tuple[str, ...] = get_args(Order)
SELECTIONS: tuple[str, ...] = get_args(Selection)
GENDERS: tuple[str, ...] = get_args(Gender)
ENGINES: tuple[str, ...] = get_args(EngineChoice)
RESTORES: tuple[str, ...] = get_args(Restore)
OUTPUT_FORMATS: tuple[str, ...] = get_args(OutputFormat)
SWAPPERS: tuple[str, ...] = get_args(SwapperChoice)
PIXEL_BOOSTS: tuple[str, ...] = get_args(PixelBoost)
DEFAULT_SWAPPER = "inswapper_128"
MASK_TYPES: tuple[str, ...] = get_args(MaskType)
MASK_REGIONS: tuple[str, ...] = get_args(MaskRegion)
MASK_AREAS: tuple[str, ...] = get_args(MaskArea)
OCCLUDERS: tuple[str, ...] = get_args(OccluderChoice)
PARSERS: tuple[str, ...] = get_args(ParserChoice)

MAX_FACE_INDEX = 99

QUALITY_FIELDS: tuple[str, ...] = ("swapper", "pixel_boost", "swapper_weight", "mask", "mask_blur", "mask_padding",
                                   "mask_regions", "mask_areas", "mask_occluder", "mask_parser")
"""The neural engine's quality options (#13), in the order the web page and its API take them."""


def pixel_boost_choices(swapper: str) -> tuple[str, ...]:
    """The `pixel_boost` values `swapper` can honour: native and the whole multiples of its input size."""
    size = REGISTRY[swapper].input_size
    return ("native", *(choice for choice in PIXEL_BOOSTS[1:] if int(choice) >= size and int(choice) % size == 0))


def takes_swapper_weight(swapper: str) -> bool:
    """Whether `swapper` has an identity vector that `swapper_weight` can scale (not blendswap or uniface, which
    take a crop of the face photo)."""
    return REGISTRY[swapper].swapper_type not in ("blendswap", "uniface")


def parse_index_list(value: Any, *, allow_all: bool) -> Any:
    """Accept 0, "0", "0,2", " 0 , 2 ", [0, 2] and (for targets) "all"; leave anything else to pydantic."""
    if isinstance(value, bool):
        return value  # pydantic rejects it with a clear message
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        text = value.strip().lower()
        if allow_all and text == "all":
            return "all"
        parts = [part.strip() for part in text.split(",")]
        if not text or not all(part.isdigit() for part in parts):
            expected = "'all' or " if allow_all else ""
            raise ValueError(f"expected {expected}a comma-separated list of face indices such as '0' or '0,2', "
                             f"got {value!r}")
        return [int(part) for part in parts]
    return value


def parse_name_list(value: Any) -> Any:
    """Accept "box,occlusion", " box " and ["box", "occlusion"]; leave anything else to pydantic."""
    if isinstance(value, str):
        return [part.strip().lower() for part in value.split(",") if part.strip()]
    return value


class SwapOptions(BaseModel):
    """Every knob of a swap. Build with `SwapOptions.parse(...)` to get catalog errors instead of pydantic's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    video: str = Field(min_length=1, description="Video to change: a local path, an http(s) URL or a data URI.")
    face: str = Field(min_length=1, description="Photo of the face to put in: a local path, URL or data URI.")
    target_faces: list[int] | Literal["all"] = Field(
        default_factory=lambda: [0],
        description="Which faces in the video to replace, by index in `order` ('all' for every face).")
    source_faces: list[int] = Field(
        default_factory=lambda: [0], description="Which faces of the face photo to use, by index in `order`.")
    order: Order = Field("left_to_right", description="How face indices count: from the left, or largest first.")
    selection: Selection = Field(
        "track", description="'track' follows the chosen person through the video; 'per_frame' re-applies the "
                             "index on every frame.")
    reference_frame: int | None = Field(
        None, ge=0, description="Frame (0-based, in the whole video) on which target indices are counted in 'track' "
                                "mode, as picked in a face browser; default: the first frame showing enough faces.")
    target_gender: Gender = Field("any", description="Only consider video faces of this gender.")
    source_gender: Gender = Field("any", description="Only consider face-photo faces of this gender.")
    frame_cap: int = Field(0, ge=0, description="Process at most this many frames (0 = the whole video).")
    start: float | None = Field(None, ge=0, description="Start of the part to process, in seconds.")
    end: float | None = Field(None, gt=0, description="End of the part to process, in seconds.")
    engine: EngineChoice = Field("auto", description="'neural' (inswapper), 'classic' (offline) or 'auto'.")
    restore: Restore = Field("none", description="Face restoration after the swap.")
    codeformer_weight: float = Field(0.95, ge=0, le=1, description="CodeFormer fidelity: 0 quality, 1 fidelity.")
    restore_visibility: float = Field(1.0, ge=0.1, le=1, description="How much of the restored face shows.")
    restore_blend: int = Field(
        100, ge=0, le=100, description="Restored face mixed with the unrestored (swapped) one, 0–100 as FaceFusion's "
                                       "face_enhancer_blend (its default is 80): 0 leaves the swapped face as it is, "
                                       "100 shows the restorer's output; applied on top of restore_visibility.")
    output_format: OutputFormat = Field("same", description="'same' keeps GIF as GIF and makes MP4 otherwise.")
    swapper: SwapperChoice = Field(
        DEFAULT_SWAPPER, description="The neural engine's swap model; all but inswapper_128 are optional downloads "
                                     "(`python -m faceswap models download NAME`); ghost_1/2/3_256 is the one "
                                     "Apache-2.0 swapper.")
    pixel_boost: PixelBoost = Field(
        "native", description="Swap at this crop size (a whole multiple of the swapper's size) by running the model "
                              "on each sub-pixel phase: 512 with inswapper_128 is 16 model calls per face.")
    swapper_weight: float = Field(
        0.5, ge=0, le=1, description="Identity strength: 0.5 as the swapper makes it, towards 1 more of the face "
                                     "photo's identity, towards 0 more of the target's (embedding swappers only).")
    mask: list[MaskType] = Field(
        default_factory=lambda: ["box"], min_length=1,
        description="Masks combined by their minimum: 'box' (feathered crop), 'occlusion' (keeps hands, hair and "
                    "objects in front of the face), 'region' (only the parsed `mask_regions`), 'area' (only the "
                    "68-point `mask_areas`).")
    mask_blur: float = Field(0.3, ge=0, le=1, description="Box mask edge blur, a fraction of half the crop.")
    mask_padding: tuple[int, int, int, int] = Field(
        (0, 0, 0, 0), description="Box mask padding in % of the crop: top, right, bottom, left.")
    mask_regions: list[MaskRegion] = Field(
        default_factory=lambda: list(MASK_REGIONS), min_length=1,
        description="Face-parsing regions the 'region' mask swaps; leave out mouth and lips to keep the target's "
                    "mouth (speech).")
    mask_areas: list[MaskArea] = Field(
        default_factory=lambda: list(MASK_AREAS), min_length=1,
        description="Landmark areas the 'area' mask swaps; 'upper-face' alone keeps the target's mouth (speech).")
    mask_occluder: OccluderChoice = Field("xseg_1", description="Occluder model for the 'occlusion' mask.")
    mask_parser: ParserChoice = Field("bisenet_resnet_34", description="Face parser for the 'region' mask.")

    @field_validator("target_faces", mode="before")
    @classmethod
    def _parse_targets(cls, value: Any) -> Any:
        return parse_index_list(value, allow_all=True)

    @field_validator("source_faces", mode="before")
    @classmethod
    def _parse_sources(cls, value: Any) -> Any:
        return parse_index_list(value, allow_all=False)

    @field_validator("mask", "mask_regions", "mask_areas", mode="before")
    @classmethod
    def _parse_names(cls, value: Any) -> Any:
        return parse_name_list(value)

    @field_validator("mask_padding", mode="before")
    @classmethod
    def _parse_padding(cls, value: Any) -> Any:
        if isinstance(value, str):
            value = [part.strip() for part in value.split(",")]
        if isinstance(value, (list, tuple)) and len(value) == 1:
            value = list(value) * 4
        return value

    @field_validator("mask_padding")
    @classmethod
    def _check_padding(cls, value: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
        if any(not 0 <= pad <= 100 for pad in value):
            raise ValueError(f"padding values are percentages between 0 and 100, got {list(value)}")
        return value

    @field_validator("mask", "mask_regions", "mask_areas")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    @field_validator("target_faces", "source_faces")
    @classmethod
    def _check_indices(cls, value: Any) -> Any:
        if value == "all":
            return value
        if not value:
            raise ValueError("give at least one face index")
        if any(index < 0 or index > MAX_FACE_INDEX for index in value):
            raise ValueError(f"face indices must be between 0 and {MAX_FACE_INDEX}, got {value}")
        if len(set(value)) != len(value):
            raise ValueError(f"each face index may appear once, got {value}")
        return value

    @model_validator(mode="after")
    def _check_combinations(self) -> SwapOptions:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}) must be after start ({self.start})")
        n_sources = len(self.source_faces)
        if n_sources > 1:
            if self.target_faces == "all":
                raise ValueError(
                    f"{n_sources} source faces cannot be paired with target_faces='all': give one source face, "
                    "or as many target indices as source indices")
            if len(self.target_faces) != n_sources:
                raise ValueError(
                    f"source_faces {self.source_faces} and target_faces {self.target_faces} must have the same "
                    "length (source i replaces target i), or give a single source face for every target")
        if self.engine == "classic" and (self.target_gender != "any" or self.source_gender != "any"):
            raise ValueError("gender filters need the neural engine's gender model; the classic engine has none "
                             "(use engine 'neural' or 'auto' with the models installed, or leave gender 'any')")
        if self.engine == "classic":
            unsupported = self.classic_unsupported()
            if unsupported:
                raise ValueError(f"the classic engine cannot honour {unsupported}: it has no swap model (use engine "
                                 "'neural' or 'auto' with the models installed)")
        if self.swapper_weight != 0.5 and self.engine != "classic" and not takes_swapper_weight(self.swapper):
            raise ValueError(f"swapper_weight {self.swapper_weight} cannot be honoured by {self.swapper}: it takes "
                             "a crop of the face photo, not an identity vector (leave it at 0.5)")
        boost = self.pixel_boost_size
        size = REGISTRY[self.swapper].input_size
        if boost is not None and (boost < size or boost % size):
            choices = pixel_boost_choices(self.swapper)[1:]
            raise ValueError(f"pixel_boost {boost} is not a whole multiple of {self.swapper}'s {size} px; choose "
                             f"native or one of {', '.join(choices)}")
        return self

    def classic_unsupported(self) -> str:
        """The options set here that only a neural swapper can honour ('' when none), named with their values."""
        wrong = [f"{name}={getattr(self, name)!r}" for name, default in (("swapper", DEFAULT_SWAPPER),
                                                                        ("pixel_boost", "native"), ("mask", ["box"]),
                                                                        ("swapper_weight", 0.5))
                 if getattr(self, name) != default]
        return ", ".join(wrong)

    @property
    def pixel_boost_size(self) -> int | None:
        """The boosted crop size in pixels, None for the swapper's native size."""
        return None if self.pixel_boost == "native" else int(self.pixel_boost)

    @classmethod
    def parse(cls, data: dict[str, Any] | None = None, /, **fields: Any) -> SwapOptions:
        """Validate and build; a problem becomes `invalid_request` naming the field and the bad value."""
        try:
            return cls.model_validate({**(data or {}), **fields})
        except ValidationError as exc:
            raise options_error(exc) from exc

    def pairs(self, n_targets_found: int) -> list[tuple[int, int]]:
        """(target index, source index) pairs for a frame on which `n_targets_found` faces are indexable."""
        targets = list(range(n_targets_found)) if self.target_faces == "all" else self.target_faces
        if len(self.source_faces) == 1:
            return [(target, self.source_faces[0]) for target in targets]
        return list(zip(targets, self.source_faces, strict=True))

    @property
    def needed_target_count(self) -> int:
        """Faces a frame must show before the chosen targets can be picked on it (1 for 'all')."""
        return 1 if self.target_faces == "all" else max(self.target_faces) + 1


def options_error(exc: ValidationError) -> FaceSwapError:
    problems = []
    first_field = None
    for error in exc.errors():
        location = ".".join(str(part) for part in error["loc"])
        first_field = first_field or location or None
        message = error["msg"].removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = "unknown field"
        elif error["type"] == "missing":
            message = "this field is required"
        elif "input" in error and error["type"] not in ("value_error",):
            message = f"{message} (got {error['input']!r})"
        problems.append(f"{location}: {message}" if location else message)
    return FaceSwapError("invalid_request", "Invalid request: " + "; ".join(problems), field=first_field)
