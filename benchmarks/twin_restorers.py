"""Cost twins of the face restorers, reconstructed from their published architectures with random weights.

- **GFPGAN 1.4** — `GFPGANv1Clean(out_size=512, num_style_feat=512, channel_multiplier=2, input_is_latent=True,
  different_w=True, narrow=1, sft_half=True)` as TencentARC's `gfpgan/utils.py` builds it for v1.4: a U-Net
  encoder (1x1 conv, seven bilinear down ResBlocks 32→256 channels, 3x3 conv at 4x4), a Gemm from the 4x4
  features to 16 style latents, seven up ResBlocks with SFT scale/shift conv pairs, and the StyleGAN2 decoder
  (modulated, demodulated 3x3 convs whose weights are computed from the latents at run time, as in the exported
  graph; SFT on half the channels; ToRGB skips). The style MLP is skipped (`input_is_latent`), so it is absent,
  as in an export. The U-Net's intermediate RGB outputs are not exported.
- **CodeFormer** — `CodeFormer(dim_embd=512, n_head=8, n_layers=9, codebook_size=1024, connect_list=['32', '64',
  '128', '256'])`: the VQGAN encoder (nf 64, ch_mult 1-2-2-4-4-8, two GroupNorm/swish ResBlocks per level,
  attention at 16x16), a 9-layer transformer over the 256 tokens, the codebook look-up, and the generator with
  the four fidelity-weighted SFT fusion blocks. `weight` is a rank-1 float64 input, as in FaceFusion's file.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from onnx import TensorProto

from benchmarks.graphs import Graph, tensor_info

RESOLUTIONS = (8, 16, 32, 64, 128, 256, 512)
GFPGAN_DECODER = {4: 512, 8: 512, 16: 512, 32: 512, 64: 512, 128: 256, 256: 128, 512: 64}
"""StyleGAN2 channels with channel_multiplier 2; the U-Net uses half of each (unet_narrow 0.5)."""


# ------------------------------------------------------------------------------------------------ GFPGAN
def _updown_block(g: Graph, x: str, cin: int, cout: int, factor: float) -> str:
    out = g.leaky(g.conv(x, cin, cin, 3))
    out = g.leaky(g.conv(g.resize(out, factor), cin, cout, 3))
    return g.op("Add", [out, g.conv(g.resize(x, factor), cin, cout, 1, bias=False, gain=1.0)])


def _modulated_conv(g: Graph, x: str, style: str, cin: int, cout: int, kernel: int, style_dim: int, *,
                    demodulate: bool = True, upsample: bool = False) -> str:
    """StyleGAN2's modulated conv: weight * (style projected to cin), demodulated, then a plain Conv."""
    scales = g.gemm(style, style_dim, cin, bias=1.0)
    weight = g.random((cout, cin, kernel, kernel), fan_in=cin * kernel * kernel, gain=1.0)
    modulated = g.op("Mul", [weight, g.op("Reshape", [scales, g.ints([1, cin, 1, 1])])])
    if demodulate:
        energy = g.op("ReduceSum", [g.op("Mul", [modulated, modulated]), g.ints([1, 2, 3])], keepdims=1)
        modulated = g.op("Div", [modulated, g.op("Sqrt", [g.op("Add", [energy, g.const(1e-8)])])])
    if upsample:
        x = g.resize(x, 2.0)
    pad = kernel // 2
    return g.op("Conv", [x, modulated], kernel_shape=[kernel, kernel], pads=[pad] * 4)


def _style_conv(g: Graph, x: str, style: str, cin: int, cout: int, style_dim: int, *, upsample: bool) -> str:
    out = _modulated_conv(g, x, style, cin, cout, 3, style_dim, upsample=upsample)
    out = g.op("Add", [g.op("Mul", [out, g.const(math.sqrt(2.0))]), g.const(np.zeros((1, cout, 1, 1), np.float32))])
    return g.leaky(out)


def _to_rgb(g: Graph, x: str, style: str, cin: int, style_dim: int, skip: str | None) -> str:
    out = _modulated_conv(g, x, style, cin, 3, 1, style_dim, demodulate=False)
    out = g.op("Add", [out, g.const(np.zeros((1, 3, 1, 1), np.float32))])
    return out if skip is None else g.op("Add", [out, g.resize(skip, 2.0)])


def build_gfpgan(path: Path, *, scale: float = 1.0, seed: int = 5) -> Path:
    g = Graph("gfp", seed=seed, scale=scale)
    decoder = {res: g.width(channels, multiple=4) for res, channels in GFPGAN_DECODER.items()}
    unet = {res: channels // 2 for res, channels in decoder.items()}
    style_dim = g.width(512)

    # U-Net encoder: 512 → 4, keeping each level's features for the skips.
    x = g.leaky(g.conv("input", 3, unet[512], 1))
    skips, cin = [], unet[512]
    for res in reversed(RESOLUTIONS):
        x = _updown_block(g, x, cin, unet[res // 2], 0.5)
        skips.insert(0, x)
        cin = unet[res // 2]
    x = g.leaky(g.conv(x, cin, unet[4], 3))
    latents = g.gemm(g.op("Flatten", [x], axis=1), unet[4] * 16, 16 * style_dim, gain=0.5)
    latents = g.op("Reshape", [latents, g.ints([1, 16, style_dim])])

    # U-Net decoder: SFT conditions (scale, shift) per resolution.
    conditions = []
    for level, res in enumerate(RESOLUTIONS):
        x = _updown_block(g, g.op("Add", [x, skips[level]]), cin, unet[res], 2.0)
        cin = unet[res]
        for _kind in ("scale", "shift"):
            conditions.append(g.conv(g.leaky(g.conv(x, cin, cin, 3)), cin, cin, 3, gain=0.5))

    def latent(index: int) -> str:
        return g.op("Gather", [latents, g.const(np.array(index), dtype=np.int64)], axis=1)

    # StyleGAN2 decoder with SFT on half of the channels.
    out = g.const(g.rng.standard_normal((1, decoder[4], 4, 4), dtype=np.float32))
    out = _style_conv(g, out, latent(0), decoder[4], decoder[4], style_dim, upsample=False)
    rgb = _to_rgb(g, out, latent(1), decoder[4], style_dim, None)
    cin, index = decoder[4], 1
    for level, res in enumerate(RESOLUTIONS):
        out = _style_conv(g, out, latent(index), cin, decoder[res], style_dim, upsample=True)
        half = decoder[res] // 2
        same, sft = g.ops("Split", [out, g.ints([half, half])], 2, axis=1)
        sft = g.op("Add", [g.op("Mul", [sft, conditions[2 * level]]), conditions[2 * level + 1]])
        out = g.op("Concat", [same, sft], axis=1)
        out = _style_conv(g, out, latent(index + 1), decoder[res], decoder[res], style_dim, upsample=False)
        rgb = _to_rgb(g, out, latent(index + 2), decoder[res], style_dim, rgb)
        cin, index = decoder[res], index + 2
    g.op("Identity", [rgb], output="output")
    return g.save(path, [tensor_info("input", [1, 3, 512, 512])], [tensor_info("output", [1, 3, 512, 512])])


# ------------------------------------------------------------------------------------------------ CodeFormer
def _res_block(g: Graph, x: str, cin: int, cout: int) -> str:
    y = g.conv(g.swish(g.group_norm(x, cin)), cin, cout, 3)
    y = g.conv(g.swish(g.group_norm(y, cout)), cout, cout, 3, gain=0.3)
    return g.op("Add", [y, x if cin == cout else g.conv(x, cin, cout, 1, gain=1.0)])


def _attn_block(g: Graph, x: str, channels: int, side: int) -> str:
    h = g.group_norm(x, channels)
    q, k, v = (g.op("Reshape", [g.conv(h, channels, channels, 1, gain=1.0), g.ints([1, channels, side * side])])
               for _ in range(3))
    weights = g.op("MatMul", [g.op("Transpose", [q], perm=[0, 2, 1]), k])
    weights = g.op("Softmax", [g.op("Mul", [weights, g.const(channels ** -0.5)])], axis=2)
    attended = g.op("MatMul", [v, g.op("Transpose", [weights], perm=[0, 2, 1])])
    attended = g.op("Reshape", [attended, g.ints([1, channels, side, side])])
    return g.op("Add", [x, g.conv(attended, channels, channels, 1, gain=0.3)])


def _transformer_layer(g: Graph, x: str, pos: str, dim: int, heads: int) -> str:
    """Pre-norm self-attention and a GELU MLP (dim → 2·dim) on (tokens, dim)."""
    tokens_shape, head_dim = g.ints([-1, heads, dim // heads]), dim // heads
    normed = g.op("LayerNormalization", [x, g.const(np.ones(dim, np.float32)), g.const(np.zeros(dim, np.float32))],
                  axis=-1)
    query_key = g.op("Add", [normed, pos])
    q, k = (g.op("Transpose", [g.op("Reshape", [g.matmul(query_key, dim, dim), tokens_shape])], perm=[1, 0, 2])
            for _ in range(2))
    v = g.op("Transpose", [g.op("Reshape", [g.matmul(normed, dim, dim), tokens_shape])], perm=[1, 0, 2])
    scores = g.op("MatMul", [g.op("Mul", [q, g.const(head_dim ** -0.5)]), g.op("Transpose", [k], perm=[0, 2, 1])])
    attended = g.op("MatMul", [g.op("Softmax", [scores], axis=-1), v])
    attended = g.op("Reshape", [g.op("Transpose", [attended], perm=[1, 0, 2]), g.ints([-1, dim])])
    x = g.op("Add", [x, g.matmul(attended, dim, dim, gain=0.3)])
    normed = g.op("LayerNormalization", [x, g.const(np.ones(dim, np.float32)), g.const(np.zeros(dim, np.float32))],
                  axis=-1)
    hidden = g.matmul(normed, dim, 2 * dim)
    erf = g.op("Erf", [g.op("Mul", [hidden, g.const(1 / math.sqrt(2.0))])])
    hidden = g.op("Mul", [g.op("Mul", [hidden, g.const(0.5)]), g.op("Add", [erf, g.const(1.0)])])  # exact GELU
    return g.op("Add", [x, g.matmul(hidden, 2 * dim, dim, gain=0.3)])


def build_codeformer(path: Path, *, scale: float = 1.0, seed: int = 6) -> Path:
    g = Graph("cf", seed=seed, scale=scale)
    nf, emb, dim, codebook = g.width(64, multiple=8), g.width(256, multiple=8), g.width(512, multiple=8), 1024
    mult = (1, 2, 2, 4, 4, 8)
    fidelity = g.op("Reshape", [g.op("Cast", ["weight"], to=TensorProto.FLOAT), g.ints([1, 1, 1, 1])])

    # Encoder 512 → 16, keeping the features at 256, 128, 64 and 32 for the fusion blocks.
    x, res, cin = g.conv("input", 3, nf, 3), 512, nf
    features: dict[int, tuple[str, int]] = {}
    for level, factor in enumerate(mult):
        for _ in range(2):
            x, cin = _res_block(g, x, cin, nf * factor), nf * factor
            if res == 16:
                x = _attn_block(g, x, cin, res)
        features[res] = (x, cin)
        if level != len(mult) - 1:
            x = g.conv(g.op("Pad", [x, g.ints([0, 0, 0, 0, 0, 0, 1, 1])]), cin, cin, 3, stride=2, pad=0)
            res //= 2
    x = _res_block(g, _attn_block(g, _res_block(g, x, cin, cin), cin, 16), cin, cin)
    lq = g.conv(g.group_norm(x, cin), cin, emb, 3)

    # Transformer over the 16x16 tokens, then the nearest codebook entries.
    tokens = g.op("Transpose", [g.op("Reshape", [lq, g.ints([emb, 256])])], perm=[1, 0])
    query = g.matmul(tokens, emb, dim)
    pos = g.const(g.rng.standard_normal((256, dim), dtype=np.float32) * 0.02)
    for _ in range(9):
        query = _transformer_layer(g, query, pos, dim, heads=8)
    query = g.op("LayerNormalization", [query, g.const(np.ones(dim, np.float32)),
                                        g.const(np.zeros(dim, np.float32))], axis=-1)
    logits = g.op("Softmax", [g.matmul(query, dim, codebook)], axis=-1)
    one_hot = g.op("OneHot", [g.op("ArgMax", [logits], axis=-1, keepdims=0), g.ints([codebook]),
                              g.const(np.array([0.0, 1.0], np.float32))], axis=-1)
    quant = g.op("MatMul", [one_hot, g.const(g.rng.standard_normal((codebook, emb), dtype=np.float32))])
    x = g.op("Transpose", [g.op("Reshape", [quant, g.ints([1, 16, 16, emb])])], perm=[0, 3, 1, 2])

    # Generator 16 → 512 with the fidelity-weighted fusion of the encoder features.
    cin = nf * mult[-1]
    x = _res_block(g, _attn_block(g, _res_block(g, g.conv(x, emb, cin, 3), cin, cin), cin, 16), cin, cin)
    res = 16
    for level in reversed(range(len(mult))):
        for block in range(2):
            x, cin = _res_block(g, x, cin, nf * mult[level]), nf * mult[level]
            if res == 16:
                x = _attn_block(g, x, cin, res)
            if block == 0 and res in (32, 64, 128, 256):
                x = _fuse(g, features[res], x, cin, fidelity)
        if level:
            x, res = g.conv(g.resize(x, 2.0, mode="nearest"), cin, cin, 3), res * 2
    g.op("Identity", [g.conv(g.group_norm(x, cin), cin, 3, 3, gain=0.5)], output="output")
    image, weight = tensor_info("input", [1, 3, 512, 512]), tensor_info("weight", [1], TensorProto.DOUBLE)
    return g.save(path, [image, weight], [tensor_info("output", [1, 3, 512, 512])])


def _fuse(g: Graph, encoded: tuple[str, int], x: str, channels: int, fidelity: str) -> str:
    """Fuse_sft_block: x + w * (x * scale + shift), scale and shift from a ResBlock over [encoder, x]."""
    feature, enc_channels = encoded
    joined = _res_block(g, g.op("Concat", [feature, x], axis=1), enc_channels + channels, channels)
    scale = g.conv(g.leaky(g.conv(joined, channels, channels, 3)), channels, channels, 3, gain=0.3)
    shift = g.conv(g.leaky(g.conv(joined, channels, channels, 3)), channels, channels, 3, gain=0.3)
    residual = g.op("Add", [g.op("Mul", [x, scale]), shift])
    return g.op("Add", [x, g.op("Mul", [residual, fidelity])])
