"""The page's "Advanced" panel: the neural engine's quality options (swapper, pixel boost, masks), closed by default.

Every choice, range and default comes from `SwapOptions` and the model registry (`faceswap.options`); this module
only decides what a person may pick on this server and says why the rest cannot work:

- swappers: all of the registry's are valid API values; the page offers those whose files are here and names
  the others as not installed;
- pixel boost: only whole multiples of the chosen swapper's size, with the cost ("boost 512 = 16 swapper calls
  per face");
- swapper weight: only where the swapper has an identity vector to scale;
- masks: occlusion and region only when an occluder or a parser is here;
- the classic engine honours none of these: with it (chosen, or the only one installed) the whole panel is
  disabled with the reason, and its values go back to the defaults, so a swap never fails on them later.

The components are built with every valid value as a choice, so the API (`gradio_client`) accepts what
`SwapOptions` accepts; the page narrows the choices on load (`AdvancedPanel.refresh`).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

import gradio as gr

from faceswap.models.registry import REGISTRY
from faceswap.options import (
    DEFAULT_SWAPPER,
    MASK_AREAS,
    MASK_REGIONS,
    MASK_TYPES,
    OCCLUDERS,
    PARSERS,
    PIXEL_BOOSTS,
    QUALITY_FIELDS,
    SWAPPERS,
    SwapOptions,
    pixel_boost_choices,
    takes_swapper_weight,
)
from faceswap.ui.status import Capabilities

if TYPE_CHECKING:
    from faceswap.runtime import Runtime

CLASSIC_REASON = ("Not available with the classic engine: it has no swap model, so it cannot honour these options. "
                  "Choose engine auto or neural.")
NO_MODELS_REASON = ("Not available here: these options need the neural engine's models, which are not installed "
                    "(the classic engine runs, and it cannot honour them).")
INSTALL_HINT = "the server's admin adds one with `python -m faceswap models download NAME`"


def default(name: str) -> Any:
    field = SwapOptions.model_fields[name]
    return field.get_default(call_default_factory=True)


def bounds(name: str) -> tuple[float, float]:
    """The (minimum, maximum) `SwapOptions` allows for a number option."""
    low = next(item.ge for item in SwapOptions.model_fields[name].metadata if hasattr(item, "ge"))
    high = next(item.le for item in SwapOptions.model_fields[name].metadata if hasattr(item, "le"))
    return float(low), float(high)


def describe(name: str) -> str:
    """The option's description as `SwapOptions` gives it (the API's parameter text)."""
    return SwapOptions.model_fields[name].description or ""


def padding_text(padding: tuple[int, ...]) -> str:
    return ",".join(str(side) for side in padding)


@dataclass(frozen=True)
class Advanced:
    """The panel's components, one per `QUALITY_FIELDS` name (same names), and its note."""

    swapper: gr.Dropdown
    pixel_boost: gr.Radio
    swapper_weight: gr.Slider
    mask: gr.CheckboxGroup
    mask_blur: gr.Slider
    mask_padding: gr.Textbox
    mask_regions: gr.CheckboxGroup
    mask_areas: gr.CheckboxGroup
    mask_occluder: gr.Dropdown
    mask_parser: gr.Dropdown
    note: gr.Markdown

    def inputs(self) -> list[gr.components.Component]:
        """The quality options, in `QUALITY_FIELDS` order (the swap and preview endpoints' last parameters)."""
        return [getattr(self, name) for name in QUALITY_FIELDS]

    def outputs(self) -> list[gr.components.Component]:
        """What `refresh` updates, in field order."""
        return [getattr(self, item.name) for item in fields(self)]


# -- what this server can do ---------------------------------------------------------------------------------------

def available_swappers(caps: Capabilities) -> list[str]:
    """Swappers whose files (and the analysis models and converter they need) are all here."""
    from faceswap.engines.neural import neural_models

    return [name for name in SWAPPERS if all(model in caps.present for model in neural_models(name))]


def panel_reason(caps: Capabilities, engine: str) -> str | None:
    """Why the whole panel is disabled (None: it is usable)."""
    if engine == "classic":
        return CLASSIC_REASON
    if not available_swappers(caps):
        return NO_MODELS_REASON
    return None


def usable_masks(caps: Capabilities) -> list[str]:
    """The mask types whose model is here: occlusion needs an occluder, region a face parser."""
    needs = {"occlusion": OCCLUDERS, "region": PARSERS}
    return [kind for kind in MASK_TYPES if any(name in caps.present for name in needs.get(kind, ("",)))
            or kind not in needs]


def boost_calls(swapper: str, boost: str) -> int:
    """Swapper runs per face at `boost`: (boost / the swapper's size)²."""
    return 1 if boost == "native" else (int(boost) // REGISTRY[swapper].input_size) ** 2


def boost_choices(swapper: str) -> list[tuple[str, str]]:
    size = REGISTRY[swapper].input_size
    return [(f"native ({size} px)" if boost == "native" else f"{boost} ({boost_calls(swapper, boost)} calls)", boost)
            for boost in pixel_boost_choices(swapper)]


def boost_info(swapper: str, boost: str) -> str:
    """The cost of the chosen boost, in the words the issue asks for: "boost 512 = 16 swapper calls per face"."""
    size = REGISTRY[swapper].input_size
    if boost != "native":
        return f"boost {boost} = {boost_calls(swapper, boost)} swapper calls per face ({swapper} works at {size} px)."
    choices = pixel_boost_choices(swapper)[1:]
    example = "512" if "512" in choices else choices[-1]
    return (f"native = 1 swapper call per face at {size} px. Larger crops are sharper and slower: boost {example} = "
            f"{boost_calls(swapper, example)} swapper calls per face.")


def weight_info(swapper: str) -> str:
    if takes_swapper_weight(swapper):
        return "0.5 as the swapper makes it; higher: more of the photo's identity, lower: more of the video's."
    return f"Not for {swapper}: it takes a crop of the face photo, not an identity it could weigh."


def model_info(kind: str, names: tuple[str, ...], caps: Capabilities) -> str:
    here = [name for name in names if name in caps.present]
    if not here:
        return f"No {kind} model is installed here ({', '.join(names)}): {INSTALL_HINT}."
    return f"The {kind} model used by the {'occlusion' if kind == 'occluder' else 'region'} mask."


def panel_note(caps: Capabilities, engine: str) -> str:
    reason = panel_reason(caps, engine)
    if reason:  # said once, calmly, above the greyed-out options
        head, _, rest = reason.partition(": ")
        return f"**{head}:** {rest}"
    missing = [name for name in SWAPPERS if name not in available_swappers(caps)]
    lines = []
    if missing:
        lines.append(f"Swappers not installed here: {', '.join(missing)} ({INSTALL_HINT}).")
    unusable = [kind for kind in MASK_TYPES if kind not in usable_masks(caps)]
    if unusable:
        lines.append(f"Masks not available here: {', '.join(unusable)} (no "
                     f"{' or '.join('occluder' if kind == 'occlusion' else 'face parser' for kind in unusable)} "
                     "model installed).")
    return "\n\n".join(lines)


# -- the panel -------------------------------------------------------------------------------------------------------

def build_advanced(caps: Capabilities) -> Advanced:
    """Place the panel (closed); call inside a `gr.Blocks` context, after the Options accordion."""
    low, high = bounds("swapper_weight")
    blur_low, blur_high = bounds("mask_blur")
    with gr.Accordion("Advanced (neural engine): swapper, pixel boost, masks", open=False, elem_id="advanced"):
        note = gr.Markdown(panel_note(caps, "auto"), elem_id="advanced-note")
        with gr.Row():
            swapper = gr.Dropdown([(swapper_label(name), name) for name in SWAPPERS], value=DEFAULT_SWAPPER,
                                  label="Swapper", filterable=False, elem_id="swapper",
                                  info="The model that makes the new face.")
            pixel_boost = gr.Radio(boost_choices(DEFAULT_SWAPPER), value=default("pixel_boost"), label="Pixel boost",
                                   info=boost_info(DEFAULT_SWAPPER, default("pixel_boost")), elem_id="pixel-boost")
            swapper_weight = gr.Slider(low, high, value=default("swapper_weight"), step=0.05, label="Identity strength",
                                       info=weight_info(DEFAULT_SWAPPER), elem_id="swapper-weight")
        with gr.Row():
            mask = gr.CheckboxGroup(list(MASK_TYPES), value=default("mask"), label="Masks", elem_id="mask",
                                    info="box: the whole face; occlusion: keeps hands, hair and things in front of "
                                         "the face; region / area: only the parts ticked below.")
            mask_blur = gr.Slider(blur_low, blur_high, value=default("mask_blur"), step=0.05, label="Mask edge blur",
                                  elem_id="mask-blur", info="Softens the box mask's edge.")
            mask_padding = gr.Textbox(padding_text(default("mask_padding")), label="Mask padding (%)",
                                      elem_id="mask-padding", info="top,right,bottom,left, or one value for all sides.")
        with gr.Row():
            mask_regions = gr.CheckboxGroup(list(MASK_REGIONS), value=default("mask_regions"),
                                            label="Regions swapped (region mask)", elem_id="mask-regions",
                                            info="Untick mouth and lips to keep the video's mouth (speech).")
            mask_areas = gr.CheckboxGroup(list(MASK_AREAS), value=default("mask_areas"),
                                          label="Areas swapped (area mask)", elem_id="mask-areas",
                                          info="upper-face alone keeps the video's mouth.")
        with gr.Row():
            mask_occluder = gr.Dropdown(list(OCCLUDERS), value=default("mask_occluder"), label="Occluder",
                                        filterable=False, elem_id="mask-occluder",
                                        info=model_info("occluder", OCCLUDERS, caps))
            mask_parser = gr.Dropdown(list(PARSERS), value=default("mask_parser"), label="Face parser",
                                      filterable=False, elem_id="mask-parser", info=model_info("parser", PARSERS, caps))
    return Advanced(swapper, pixel_boost, swapper_weight, mask, mask_blur, mask_padding, mask_regions, mask_areas,
                    mask_occluder, mask_parser, note)


def swapper_label(name: str) -> str:
    return f"{name} ({REGISTRY[name].input_size} px)"


def panel_updates(caps: Capabilities, engine: str, swapper: str | None, boost: str | None) -> tuple[Any, ...]:
    """Updates for `Advanced.outputs()`: what may be picked with `engine` and the chosen swapper on this server.
    A disabled panel goes back to the defaults (the run would refuse anything else)."""
    if panel_reason(caps, engine):
        off: dict[str, Any] = {"interactive": False}
        return (gr.update(value=DEFAULT_SWAPPER, **off),
                gr.update(choices=boost_choices(DEFAULT_SWAPPER), value=default("pixel_boost"),
                          info=boost_info(DEFAULT_SWAPPER, "native"), **off),
                gr.update(value=default("swapper_weight"), info=weight_info(DEFAULT_SWAPPER), **off),
                gr.update(value=default("mask"), **off), gr.update(value=default("mask_blur"), **off),
                gr.update(value=padding_text(default("mask_padding")), **off),
                gr.update(value=default("mask_regions"), **off), gr.update(value=default("mask_areas"), **off),
                gr.update(value=default("mask_occluder"), **off), gr.update(value=default("mask_parser"), **off),
                panel_note(caps, engine))
    swappers = available_swappers(caps)
    chosen = swapper if swapper in swappers else (DEFAULT_SWAPPER if DEFAULT_SWAPPER in swappers else swappers[0])
    boosts = pixel_boost_choices(chosen)
    boost = boost if boost in boosts else "native"
    weighs = takes_swapper_weight(chosen)
    occluders = [name for name in OCCLUDERS if name in caps.present]
    parsers = [name for name in PARSERS if name in caps.present]
    return (gr.update(choices=[(swapper_label(name), name) for name in swappers], value=chosen, interactive=True),
            gr.update(choices=boost_choices(chosen), value=boost, info=boost_info(chosen, boost), interactive=True),
            gr.update(interactive=weighs, info=weight_info(chosen),
                      **({} if weighs else {"value": default("swapper_weight")})),
            gr.update(choices=usable_masks(caps), interactive=True), gr.update(interactive=True),
            gr.update(interactive=True), gr.update(interactive=True), gr.update(interactive=True),
            _model_choice(occluders, "mask_occluder", "occluder", OCCLUDERS, caps),
            _model_choice(parsers, "mask_parser", "parser", PARSERS, caps),
            panel_note(caps, engine))


def _model_choice(here: list[str], name: str, kind: str, names: tuple[str, ...], caps: Capabilities) -> Any:
    if not here:
        return gr.update(choices=list(names), value=default(name), interactive=False,
                         info=model_info(kind, names, caps))
    return gr.update(choices=here, value=default(name) if default(name) in here else here[0], interactive=True,
                     info=model_info(kind, names, caps))


class AdvancedPanel:
    """The panel's handlers, bound to the runtime (whose models may be added while the server runs)."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime

    def refresh(self, engine: str, swapper: str | None, boost: str | None) -> tuple[Any, ...]:
        """On page load, after a download, and when the engine or the swapper changes."""
        return panel_updates(Capabilities.of(self.runtime), engine, swapper, boost)

    @staticmethod
    def show_boost_cost(swapper: str, boost: str) -> Any:
        return gr.update(info=boost_info(swapper, boost) if boost in PIXEL_BOOSTS else "")


def option_descriptions() -> dict[str, str]:
    """The API's text for each quality parameter: `SwapOptions`' own descriptions."""
    return {name: describe(name) for name in QUALITY_FIELDS}
