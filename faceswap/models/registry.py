"""The model registry: one frozen `ModelSpec` per weight file, as data.

Hosting choices (MODELS.md §2–§9), written down here because they are decisions:
- buffalo_l files (det_10g, w600k_r50, genderage) come from the Hugging Face mirror `public-data/insightface`
  (`models/buffalo_l/<file>`), pinned by the sha256 of insightface's own release files.
- inswapper_128.onnx comes from `hacksider/deep-live-cam`, the **original** file (sha256 `e4a3f08c…`).
  FaceFusion's copy is a different, modified file and is deliberately not used.
- GFPGAN v1.4 ONNX comes from the `Gourieff/ReActor` dataset (the harisreedhar export, 340,256,690 bytes), the
  one build whose size and sha256 are published.
- CodeFormer ONNX comes from `facefusion/models-3.0.0` (inputs `input` and float64 `weight`). Neither its size
  nor its sha256 is published; FaceFusion publishes a CRC32 (`codeformer.hash` = 1456f3ab), which is what we
  check. `models verify` says plainly that this file is checked by CRC32 only.
- GPEN-BFR 256/512/1024/2048 and RestoreFormer++ come from `facefusion/models-3.0.0` (MODELS.md §17.5), optional;
  nothing is published to check them by, and `models list` says so.
- 1k3d68 (68 landmarks, optional) comes from the same buffalo_l mirror as det_10g, pinned by its sha256.

All InsightFace weights are for non-commercial research only; CodeFormer is under the non-commercial NTU S-Lab
licence 1.0. `python -m faceswap models list` prints these terms next to each file.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Literal

from faceswap.errors import FaceSwapError

ModelRole = Literal["detector", "recognizer", "genderage", "converter", "swapper", "occluder", "parser", "restorer",
                   "landmarker"]
"""What a model file does in a swap; each role has its own exact signature (models.signature)."""
Template = Literal["letterbox", "arcface_112", "arcface_112_v1", "arcface_128", "bbox_96", "bbox_192", "ffhq_512",
                   "mtcnn_512",
                   "swap_crop", "vector"]
"""`swap_crop`: the model runs on the swapper's aligned crop, whatever its template (occluders, parsers); `vector`:
no image at all (embedding converters). `arcface_112` is insightface's (FaceFusion's arcface_112_v2)."""
SwapperType = Literal["", "inswapper", "hyperswap", "simswap", "ghost", "hififace", "blendswap", "uniface"]

INSIGHTFACE_LICENCE = "InsightFace pretrained models: non-commercial research use only"
XSEG_LICENCE = "XSeg occluder (DeepFaceLab, FaceFusion's export): GPL-3.0"
BISENET_LICENCE = "BiSeNet face parser (yakhyo/face-parsing, FaceFusion's export): MIT"
HYPERSWAP_LICENCE = "FaceFusion HyperSwap: ResearchRAIL-MS (research use; see facefusion-labs)"
GHOST_LICENCE = ("GHOST (ai-forever/sber-swap): Apache-2.0 - commercial use allowed, the one such swapper here "
                 "(its identity still comes from w600k_r50, InsightFace non-commercial, through crossface_ghost)")
SIMSWAP_LICENCE = "SimSwap (neuralchen): non-commercial use only"
HIFIFACE_LICENCE = "HiFiFace unofficial (GuijiAI): licence unknown - do not assume commercial use"
BLENDSWAP_LICENCE = "BlendFace (mapooon): non-commercial use only"
UNIFACE_LICENCE = "UniFace (xc-csc101): licence unknown - do not assume commercial use"
CROSSFACE_LICENCE = "FaceFusion CrossFace embedding converter: OpenRAIL-MS (facefusion-labs badge)"
GPEN_LICENCE = "GPEN-BFR (yangxy): non-commercial use only"
RESTOREFORMER_LICENCE = "RestoreFormer++ (wzhouxiff): Apache-2.0"


@dataclass(frozen=True)
class ModelSpec:
    name: str
    """Short name used on the command line and in code (`det_10g`)."""
    filename: str
    """File name inside the models directory."""
    role: ModelRole
    repo_id: str
    """Hugging Face repository the file is downloaded from."""
    repo_path: str
    """Path of the file inside that repository."""
    repo_type: Literal["model", "dataset"]
    size: int | None
    """Exact size in bytes, when published."""
    sha256: str | None
    """sha256 of the file, when published; None means the file can only be checked by size or CRC32."""
    licence: str
    input_size: int
    template: Template
    mean: float
    std: float
    """Pre-processing `(pixel - mean) / std` as the reference implementation applies it (informational: the
    engine reads the real rule from the file, e.g. insightface's node-name test for ArcFace)."""
    crc32: str | None = None
    """CRC32 (8 hex digits) when that is the only published checksum (FaceFusion's `.hash` files)."""
    description: str = ""
    adapter: str = ""
    """The class that wraps the loaded session, as `module:Class` (imported when the model is loaded)."""
    optional: bool = False
    """Downloaded only when named (or by the `all` group): an alternative the user opts into, such as a swapper."""
    swapper_type: SwapperType = ""
    """For swappers: FaceFusion's model type, which picks normalisation and identity path (MODELS.md §17.1)."""
    converter: str | None = None
    """For swappers: the registry name of the embedding converter the identity goes through (§17.2)."""
    precision: Literal["fp32", "fp16"] = "fp32"
    """fp16 for a half-precision export (float32 I/O, fp16 inside): run as it is, never converted again."""

    @property
    def url(self) -> str:
        prefix = "datasets/" if self.repo_type == "dataset" else ""
        return f"https://huggingface.co/{prefix}{self.repo_id}/resolve/main/{self.repo_path}"

    @property
    def checksum_note(self) -> str:
        if self.sha256:
            return "sha256"
        if self.crc32:
            return "CRC32 only (no published sha256 or size)"
        if self.size:
            return "size only (no published checksum)"
        return "unchecked (nothing published)"


FACEFUSION_SWAPPERS: tuple[tuple[str, str, SwapperType, int, Template, str, str | None, str], ...] = (
    # name, FaceFusion base, type, size, template, licence, crc32 (FaceFusion's .hash, where §17 has it), vendor
    ("hyperswap_1a_256", "3.3.0", "hyperswap", 256, "arcface_128", HYPERSWAP_LICENCE, None, "FaceFusion HyperSwap 1a"),
    ("hyperswap_1b_256", "3.3.0", "hyperswap", 256, "arcface_128", HYPERSWAP_LICENCE, None, "FaceFusion HyperSwap 1b"),
    ("hyperswap_1c_256", "3.3.0", "hyperswap", 256, "arcface_128", HYPERSWAP_LICENCE, None, "FaceFusion HyperSwap 1c"),
    ("ghost_1_256", "3.0.0", "ghost", 256, "arcface_112_v1", GHOST_LICENCE, None, "GHOST 1-block U-Net"),
    ("ghost_2_256", "3.0.0", "ghost", 256, "arcface_112_v1", GHOST_LICENCE, None, "GHOST 2-block U-Net"),
    ("ghost_3_256", "3.0.0", "ghost", 256, "arcface_112_v1", GHOST_LICENCE, None, "GHOST 3-block U-Net"),
    ("simswap_256", "3.0.0", "simswap", 256, "arcface_112_v1", SIMSWAP_LICENCE, None, "SimSwap"),
    ("simswap_unofficial_512", "3.0.0", "simswap", 512, "arcface_112_v1", SIMSWAP_LICENCE, None,
     "SimSwap unofficial 512"),
    ("hififace_unofficial_256", "3.1.0", "hififace", 256, "mtcnn_512", HIFIFACE_LICENCE, None, "HiFiFace unofficial"),
    ("blendswap_256", "3.0.0", "blendswap", 256, "ffhq_512", BLENDSWAP_LICENCE, "6a424cf7", "BlendSwap"),
    ("uniface_256", "3.0.0", "uniface", 256, "ffhq_512", UNIFACE_LICENCE, None, "UniFace"),
)
"""FaceFusion's optional swappers (MODELS.md §17.1), one row each; `_facefusion_swapper` makes the specs."""

CROSSFACE_CONVERTERS: tuple[tuple[str, str | None], ...] = (
    ("crossface_simswap", None), ("crossface_ghost", "6cabb296"), ("crossface_hififace", None))
"""CrossFace embedding converters (models-3.4.0; §17.2): name, crc32 where §17 publishes it."""

_ADAPTERS = {"hyperswap": "faceswap.engines.neural.hyperswap:HyperSwapper",
             "blendswap": "faceswap.engines.neural.swappers:ImageSourceSwapper",
             "uniface": "faceswap.engines.neural.swappers:ImageSourceSwapper"}
_CONVERTED: tuple[str, ...] = ("ghost", "simswap", "hififace")


def _facefusion_swapper(name: str, base: str, kind: SwapperType, size: int, template: Template, licence: str,
                        crc32: str | None, vendor: str) -> ModelSpec:
    checked = "CRC32 only" if crc32 else "unchecked: nothing published"
    signed = kind in ("hyperswap", "ghost", "hififace", "uniface")  # fed [-1, 1]; the others [0, 1]
    return ModelSpec(
        name=name, filename=f"{name}.onnx", role="swapper", repo_id=f"facefusion/models-{base}",
        repo_path=f"{name}.onnx", repo_type="model", size=None, sha256=None, crc32=crc32, licence=licence,
        input_size=size, template=template, mean=127.5 if signed else 0.0,
        std=127.5 if signed else 255.0,
        description=f"{vendor} face swapper at {size} px ({checked})",
        adapter=_ADAPTERS.get(kind, "faceswap.engines.neural.swappers:EmbeddingSwapper"), optional=True,
        swapper_type=kind, converter=f"crossface_{kind}" if kind in _CONVERTED else None,
        precision="fp16" if kind == "hyperswap" else "fp32")  # FaceFusion exports hyperswap in fp16 (§17.1)


def _crossface(name: str, crc32: str | None) -> ModelSpec:
    return ModelSpec(
        name=name, filename=f"{name}.onnx", role="converter", repo_id="facefusion/models-3.4.0",
        repo_path=f"{name}.onnx", repo_type="model", size=None, sha256=None, crc32=crc32, licence=CROSSFACE_LICENCE,
        input_size=512, template="vector", mean=0.0, std=1.0,
        description=f"CrossFace: ArcFace w600k_r50 identity → {name.split('_')[1]} identity (512 → 512)",
        adapter="faceswap.engines.neural.swappers:EmbeddingConverter", optional=True)


FACEFUSION_RESTORERS: tuple[tuple[str, int, Template, str, str], ...] = (
    # name, size, template, licence, vendor (all models-3.0.0, FaceFusion's `input` → first output export)
    ("gpen_bfr_256", 256, "arcface_128", GPEN_LICENCE, "GPEN-BFR 256"),
    ("gpen_bfr_512", 512, "ffhq_512", GPEN_LICENCE, "GPEN-BFR 512"),
    ("gpen_bfr_1024", 1024, "ffhq_512", GPEN_LICENCE, "GPEN-BFR 1024"),
    ("gpen_bfr_2048", 2048, "ffhq_512", GPEN_LICENCE, "GPEN-BFR 2048"),
    ("restoreformer_plus_plus", 512, "ffhq_512", RESTOREFORMER_LICENCE, "RestoreFormer++"),
)
"""FaceFusion's other face enhancers (MODELS.md §17.5): one row each; `_facefusion_restorer` makes the specs. Their
`.hash` CRC32 values are not in MODELS.md and no sha256 or size is published, so they are used unchecked."""


def _facefusion_restorer(name: str, size: int, template: Template, licence: str, vendor: str) -> ModelSpec:
    return ModelSpec(
        name=name, filename=f"{name}.onnx", role="restorer", repo_id="facefusion/models-3.0.0",
        repo_path=f"{name}.onnx", repo_type="model", size=None, sha256=None, crc32=None, licence=licence,
        input_size=size, template=template, mean=127.5, std=127.5,
        description=f"{vendor} face restoration at {size} px on the {template} template (FaceFusion's ONNX export; "
                    "unchecked: nothing published)",
        adapter="faceswap.restore.restorer:OnnxRestorer", optional=True)


FACEFUSION_MASKERS: tuple[tuple[str, ModelRole, str, str | None], ...] = (
    # name, role, FaceFusion release, CRC32 (MODELS.md §17.4; no sha256 or size published)
    ("xseg_1", "occluder", "3.1.0", "f207afe3"),
    ("xseg_2", "occluder", "3.1.0", None),
    ("xseg_3", "occluder", "3.2.0", None),
    ("bisenet_resnet_18", "parser", "3.1.0", "6cafc877"),
    ("bisenet_resnet_34", "parser", "3.0.0", None),
)
"""The occlusion and face-parsing models behind the occlusion and region masks; `_facefusion_masker` makes the
specs (XSeg at 256 px, BiSeNet at 512 px, both on the swap crop, fed [0, 1])."""


def _facefusion_masker(name: str, role: ModelRole, release: str, crc32: str | None) -> ModelSpec:
    occluder = role == "occluder"
    return ModelSpec(
        name=name, filename=f"{name}.onnx", role=role, repo_id=f"facefusion/models-{release}",
        repo_path=f"{name}.onnx", repo_type="model", size=None, sha256=None, crc32=crc32,
        licence=XSEG_LICENCE if occluder else BISENET_LICENCE, input_size=256 if occluder else 512,
        template="swap_crop", mean=0.0, std=255.0,
        description="XSeg occlusion mask (hands, hair, objects in front of the face)" if occluder
        else "BiSeNet face parsing into 19 classes (region masks; ImageNet-normalised)",
        adapter=f"faceswap.engines.neural.maskers:{'XsegOccluder' if occluder else 'BisenetParser'}", optional=True)


SPECS: tuple[ModelSpec, ...] = (
    ModelSpec(
        name="det_10g", filename="det_10g.onnx", role="detector",
        repo_id="public-data/insightface", repo_path="models/buffalo_l/det_10g.onnx", repo_type="model",
        size=16_923_827, sha256="5838f7fe053675b1c7a08b633df49e7af5495cee0493c7dcf6697200b85b5b91",
        licence=INSIGHTFACE_LICENCE, input_size=640, template="letterbox", mean=127.5, std=128.0,
        description="SCRFD-10GF face detector with 5 key points (buffalo_l)",
        adapter="faceswap.engines.neural.scrfd:ScrfdDetector"),
    ModelSpec(
        name="w600k_r50", filename="w600k_r50.onnx", role="recognizer",
        repo_id="public-data/insightface", repo_path="models/buffalo_l/w600k_r50.onnx", repo_type="model",
        size=174_383_860, sha256="4c06341c33c2ca1f86781dab0e829f88ad5b64be9fba56e56bc9ebdefc619e43",
        licence=INSIGHTFACE_LICENCE, input_size=112, template="arcface_112", mean=127.5, std=127.5,
        description="ArcFace IResNet-50 (WebFace600K) 512-d identity embedding (buffalo_l)",
        adapter="faceswap.engines.neural.arcface:ArcFaceEmbedder"),
    ModelSpec(
        name="genderage", filename="genderage.onnx", role="genderage",
        repo_id="public-data/insightface", repo_path="models/buffalo_l/genderage.onnx", repo_type="model",
        size=1_322_532, sha256="4fde69b1c810857b88c64a335084f1c3fe8f01246c9a191b48c7bb756d6652fb",
        licence=INSIGHTFACE_LICENCE, input_size=96, template="bbox_96", mean=0.0, std=1.0,
        description="gender and age (buffalo_l)",
        adapter="faceswap.engines.neural.genderage:GenderAgeClassifier"),
    ModelSpec(
        name="inswapper_128", filename="inswapper_128.onnx", role="swapper",
        repo_id="hacksider/deep-live-cam", repo_path="inswapper_128.onnx", repo_type="model",
        size=554_253_681, sha256="e4a3f08c753cb72d04e10aa0f7dbe3deebbf39567d4ead6dce08e98aa49e16af",
        licence=INSIGHTFACE_LICENCE, input_size=128, template="arcface_128", mean=0.0, std=255.0,
        description="InsightFace inswapper_128 face swapper (original release file)",
        adapter="faceswap.engines.neural.inswapper:Inswapper", swapper_type="inswapper"),
    ModelSpec(
        name="inswapper_128_fp16", filename="inswapper_128_fp16.onnx", role="swapper",
        repo_id="facefusion/models-3.0.0", repo_path="inswapper_128_fp16.onnx", repo_type="model",
        size=None, sha256=None, licence=INSIGHTFACE_LICENCE, input_size=128, template="arcface_128", mean=0.0,
        std=255.0, description="InsightFace inswapper_128, FaceFusion's half-precision export (float32 I/O; its "
        "own emap; unchecked: nothing published)",
        adapter="faceswap.engines.neural.inswapper:Inswapper", swapper_type="inswapper", optional=True,
        precision="fp16"),
    *(_facefusion_swapper(*row) for row in FACEFUSION_SWAPPERS),
    *(_crossface(*row) for row in CROSSFACE_CONVERTERS),
    *(_facefusion_masker(*row) for row in FACEFUSION_MASKERS),
    ModelSpec(
        name="gfpgan_1.4", filename="GFPGANv1.4.onnx", role="restorer",
        repo_id="Gourieff/ReActor", repo_path="models/facerestore_models/GFPGANv1.4.onnx", repo_type="dataset",
        size=340_256_690, sha256="6548e54cbcf248af385248f0c1193b359c37a0f98b836282b09cf48af4fd2b73",
        licence="GFPGAN: Apache-2.0 code with third-party parts under NVIDIA (StyleGAN2) and CC BY-NC-SA 4.0 terms",
        input_size=512, template="ffhq_512", mean=127.5, std=127.5,
        description="GFPGAN v1.4 face restoration (ONNX export)",
        adapter="faceswap.restore.restorer:OnnxRestorer"),
    ModelSpec(
        name="codeformer", filename="codeformer.onnx", role="restorer",
        repo_id="facefusion/models-3.0.0", repo_path="codeformer.onnx", repo_type="model",
        size=None, sha256=None, crc32="1456f3ab",
        licence="CodeFormer: NTU S-Lab License 1.0 (non-commercial)",
        input_size=512, template="ffhq_512", mean=127.5, std=127.5,
        description="CodeFormer face restoration with fidelity weight (FaceFusion's ONNX export)",
        adapter="faceswap.restore.restorer:OnnxRestorer"),
    *(_facefusion_restorer(*row) for row in FACEFUSION_RESTORERS),
    ModelSpec(
        name="1k3d68", filename="1k3d68.onnx", role="landmarker",
        repo_id="public-data/insightface", repo_path="models/buffalo_l/1k3d68.onnx", repo_type="model",
        size=143_607_619, sha256="df5c06b8a0c12e422b2ed8947b8869faa4105387f199c477af038aa01f9a45cc",
        licence=INSIGHTFACE_LICENCE, input_size=192, template="bbox_192", mean=0.0, std=1.0,
        description="68 3-D face landmarks (buffalo_l); area masks use them when present, else estimate 68 from 5",
        adapter="faceswap.engines.neural.landmarker:Landmarker68", optional=True),
)

REGISTRY: Mapping[str, ModelSpec] = MappingProxyType({spec.name: spec for spec in SPECS})

RESTORE_CHOICES: Mapping[str, str] = MappingProxyType({
    "gfpgan": "gfpgan_1.4", "codeformer": "codeformer",
    **{spec.name: spec.name for spec in SPECS
       if spec.role == "restorer" and spec.name not in ("gfpgan_1.4", "codeformer")}})
"""The `restore` option's choices and the registry model behind each (`gfpgan` and `codeformer` keep their short
names, the seeds' words; the others are FaceFusion's model names)."""

GROUPS: Mapping[str, tuple[str, ...]] = MappingProxyType({
    "neural": ("det_10g", "w600k_r50", "genderage", "inswapper_128"),
    "gfpgan": ("gfpgan_1.4",),
    "restorers": ("gfpgan_1.4", "codeformer"),
    "all": tuple(spec.name for spec in SPECS),
})


def half_sibling(name: str, registry: Mapping[str, ModelSpec] = REGISTRY) -> str | None:
    """The published half-precision export of model `name` (`inswapper_128` → `inswapper_128_fp16`), if any."""
    sibling = registry.get(f"{name}_fp16")
    return sibling.name if sibling is not None and sibling.precision == "fp16" else None


def names_with_role(role: ModelRole, registry: Mapping[str, ModelSpec] = REGISTRY) -> tuple[str, ...]:
    """Registry names of every model with `role`, in registry order (the choices offered for that role)."""
    return tuple(name for name, spec in registry.items() if spec.role == role)


def adapter_class(spec: ModelSpec) -> type:
    """The adapter class named by `spec.adapter`."""
    import importlib

    module_name, _, class_name = spec.adapter.partition(":")
    return getattr(importlib.import_module(module_name), class_name)  # type: ignore[no-any-return]


def resolve_names(names: Iterable[str], registry: Mapping[str, ModelSpec] = REGISTRY) -> tuple[str, ...]:
    """Model names from names, file names or group names (`neural`, `restorers`, `all`), in order, once each.

    No names at all means every model in the registry that is not optional.
    """
    wanted = [name.strip() for name in names if name.strip()]
    if not wanted:
        return tuple(name for name, spec in registry.items() if not spec.optional)
    by_filename = {spec.filename.lower(): spec.name for spec in registry.values()}
    resolved: list[str] = []
    for name in wanted:
        key = name.lower()
        if key in registry:
            found: tuple[str, ...] = (key,)
        elif name in registry:
            found = (name,)
        elif key in by_filename:
            found = (by_filename[key],)
        elif key in GROUPS and all(member in registry for member in GROUPS[key]):
            found = GROUPS[key]
        else:
            choices = ", ".join([*registry, *GROUPS])
            raise FaceSwapError("invalid_request", f"unknown model {name!r}; choose from: {choices}", field="models")
        resolved.extend(item for item in found if item not in resolved)
    return tuple(resolved)
