#!/usr/bin/python3
"""Golden data for the inference engine, from an independent reference.

Creates (deterministically) tiny random models in the mlx-lm / Hugging Face
layout and computes their logits with a plain numpy transformer written from
the specs (docs/formats/qwen2-forward.md, mlx-quantization.md, adapters.md),
in float64 on weights dequantized in float32. Writes:

  tests/golden/models/<name>/   config.json, model.safetensors, tokenizer.json,
                                tokenizer_config.json, generation_config.json
  tests/golden/adapters/<name>/ an MLX LoRA adapter, the same adapter in PEFT
                                format, and one made for a different model
  tests/golden/golden.json      the cases: model, adapters, tokens, where the
                                logits are, plus a greedy continuation
  tests/golden/logits/*.f32     little-endian float32 logits [positions, vocab]

Run:  /usr/bin/python3 tests/reference/make_golden.py   (numpy only)
The C++ tests read the committed output; they never run Python.
"""
import json
import os
import shutil
import struct
import sys

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "golden")

# ---------------------------------------------------------------------------
# Tokenizer: byte-level BPE (GPT-2 byte map), a few merges, ChatML specials.

def bytes_to_unicode():
    bs = list(range(0x21, 0x7F)) + list(range(0xA1, 0xAD)) + list(range(0xAE, 0x100))
    cs = bs[:]
    n = 0
    for b in range(256):
        if b not in bs:
            bs.append(b)
            cs.append(256 + n)
            n += 1
    return {b: chr(c) for b, c in zip(bs, cs)}

MERGES = [("Ġ", "t"), ("h", "e"), ("Ġ", "a"), ("i", "n"), ("Ġt", "he"), ("e", "r"), ("o", "n"),
          ("Ġ", "s"), ("r", "e"), ("a", "t"), ("e", "n"), ("Ġ", "w"), ("o", "r")]
SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
QWEN2_SPLIT = (r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|"
               r"\s*[\r\n]+|\s+(?!\S)|\s+")


def tokenizer_json():
    b2u = bytes_to_unicode()
    vocab = {b2u[b]: b for b in range(256)}
    for a, b in MERGES:
        vocab[a + b] = len(vocab)
    added = []
    for s in SPECIALS:
        added.append({"id": len(vocab) + len(added), "content": s, "single_word": False, "lstrip": False,
                      "rstrip": False, "normalized": False, "special": True})
    return {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "NFC"},
        "pre_tokenizer": {"type": "Sequence", "pretokenizers": [
            {"type": "Split", "pattern": {"Regex": QWEN2_SPLIT}, "behavior": "Isolated", "invert": False},
            {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False, "use_regex": False}]},
        "post_processor": {"type": "ByteLevel", "add_prefix_space": False, "trim_offsets": False,
                           "use_regex": False},
        "decoder": {"type": "ByteLevel", "add_prefix_space": True, "trim_offsets": True, "use_regex": True},
        "model": {"type": "BPE", "dropout": None, "unk_token": None, "continuing_subword_prefix": "",
                  "end_of_word_suffix": "", "fuse_unk": False, "byte_fallback": False, "ignore_merges": False,
                  "vocab": vocab, "merges": [[a, b] for a, b in MERGES]},
    }

N_TEXT_TOKENS = 256 + len(MERGES)
VOCAB = N_TEXT_TOKENS + len(SPECIALS)  # 272
ENDOFTEXT, IM_START, IM_END = N_TEXT_TOKENS, N_TEXT_TOKENS + 1, N_TEXT_TOKENS + 2

CHAT_TEMPLATE = (
    "{%- for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n'}}{%- endfor %}{%- if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}"
    "{%- endif %}{# default system: You are Qwen, created by Alibaba Cloud. You are a helpful assistant. #}")

# ---------------------------------------------------------------------------
# Number formats.

def to_bf16_bits(a):
    """float32 -> bf16 bit patterns, round to nearest even (as MLX and torch)."""
    u = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    u = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return u.astype(np.uint16)


def bf16_bits_to_f32(h):
    return (h.astype(np.uint32) << 16).view(np.float32)


def round_to(a, dtype):
    """The float32 values of `a` after storing it as dtype (F32/BF16/F16)."""
    a = np.asarray(a, dtype=np.float32)
    if dtype == "F32":
        return a
    if dtype == "BF16":
        return bf16_bits_to_f32(to_bf16_bits(a))
    return a.astype(np.float16).astype(np.float32)


def encode(a, dtype):
    a = np.asarray(a)
    if dtype == "F32":
        return a.astype("<f4").tobytes()
    if dtype == "BF16":
        return to_bf16_bits(a).astype("<u2").tobytes()
    if dtype == "F16":
        return a.astype("<f2").tobytes()
    if dtype == "U32":
        return a.astype("<u4").tobytes()
    raise ValueError(dtype)


def write_safetensors(path, tensors, metadata=None):
    """tensors: name -> (dtype, shape, bytes). Hugging Face layout: header
    padded with spaces to a multiple of 8."""
    header = {}
    if metadata is not None:
        header["__metadata__"] = metadata
    offset = 0
    blobs = []
    for name in sorted(tensors):
        dtype, shape, data = tensors[name]
        header[name] = {"dtype": dtype, "shape": list(shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)

# ---------------------------------------------------------------------------
# MLX affine quantization (docs/formats/mlx-quantization.md §2, CPU rounding) and packing (§4).

def mlx_quantize(w, gs, bits, scale_dtype):
    """Returns (packed uint32 [out, in*bits/32], scales, biases as stored,
    and the dequantized float32 weight scale*q + bias)."""
    w = np.asarray(w, dtype=np.float32)
    out, n_in = w.shape
    g = w.reshape(out, n_in // gs, gs)
    n_bins = np.float32(2 ** bits - 1)
    eps = np.float32(1e-7)
    w_max = g.max(axis=-1)
    w_min = g.min(axis=-1)
    mask = np.abs(w_min) > np.abs(w_max)
    scale = np.maximum((w_max - w_min) / n_bins, eps).astype(np.float32)
    scale = np.where(mask, scale, -scale).astype(np.float32)
    edge = np.where(mask, w_min, w_max).astype(np.float32)
    with np.errstate(divide="ignore", invalid="ignore"):
        q0 = np.rint(edge / scale).astype(np.float32)
        scale = np.where(q0 != 0, (edge / q0).astype(np.float32), scale).astype(np.float32)
    bias = np.where(q0 != 0, edge, np.float32(0)).astype(np.float32)
    q = np.clip(np.rint((g - bias[..., None]) / scale[..., None]), 0, n_bins).astype(np.uint32)
    q = q.reshape(out, n_in)
    # LSB-first bitstream per row.
    bitplanes = ((q[..., None] >> np.arange(bits, dtype=np.uint32)) & 1).astype(np.uint8)
    packed = np.packbits(bitplanes.reshape(out, n_in * bits), axis=-1, bitorder="little")
    packed = packed.view("<u4").reshape(out, n_in * bits // 32)
    s_stored = round_to(scale, scale_dtype)
    b_stored = round_to(bias, scale_dtype)
    deq = (s_stored.reshape(out, -1, 1) * q.reshape(out, -1, gs).astype(np.float32)
           + b_stored.reshape(out, -1, 1)).astype(np.float32).reshape(out, n_in)
    return packed, s_stored, b_stored, deq

# ---------------------------------------------------------------------------
# Tiny models.

def make_config(arch, hidden, inter, layers, heads, kv_heads, head_dim=None, tie=True, extra=None):
    c = {
        "architectures": [{"qwen2": "Qwen2ForCausalLM", "llama": "LlamaForCausalLM",
                           "qwen3": "Qwen3ForCausalLM"}[arch]],
        "model_type": arch, "hidden_size": hidden, "intermediate_size": inter,
        "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv_heads,
        "hidden_act": "silu", "max_position_embeddings": 512, "rms_norm_eps": 1e-6,
        "rope_theta": 10000.0, "tie_word_embeddings": tie, "vocab_size": VOCAB,
        "bos_token_id": ENDOFTEXT, "eos_token_id": ENDOFTEXT, "torch_dtype": "float32",
    }
    if head_dim is not None:
        c["head_dim"] = head_dim
    c.update(extra or {})
    return c


LINEARS = ["self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
           "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj"]


def make_weights(cfg, rng):
    """float32 weights keyed by HF name."""
    h, inter = cfg["hidden_size"], cfg["intermediate_size"]
    hd = cfg.get("head_dim", h // cfg["num_attention_heads"])
    nq, nkv = cfg["num_attention_heads"] * hd, cfg["num_key_value_heads"] * hd
    arch = cfg["model_type"]
    w = {"model.embed_tokens.weight": rng.standard_normal((VOCAB, h)),
         "model.norm.weight": 1 + 0.1 * rng.standard_normal(h)}
    shapes = {"self_attn.q_proj": (nq, h), "self_attn.k_proj": (nkv, h), "self_attn.v_proj": (nkv, h),
              "self_attn.o_proj": (h, nq), "mlp.gate_proj": (inter, h), "mlp.up_proj": (inter, h),
              "mlp.down_proj": (h, inter)}
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        w[p + "input_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(h)
        w[p + "post_attention_layernorm.weight"] = 1 + 0.1 * rng.standard_normal(h)
        for m in LINEARS:
            shape = shapes[m]
            w[p + m + ".weight"] = rng.standard_normal(shape) * (1.5 / np.sqrt(shape[1]))
        if arch == "qwen2" or cfg.get("attention_bias"):
            for m in ["q_proj", "k_proj", "v_proj"]:
                w[p + f"self_attn.{m}.bias"] = 0.3 * rng.standard_normal(shapes["self_attn." + m][0])
        if arch != "qwen2" and cfg.get("attention_bias"):
            w[p + "self_attn.o_proj.bias"] = 0.3 * rng.standard_normal(h)
        if arch == "qwen3":
            w[p + "self_attn.q_norm.weight"] = 1 + 0.1 * rng.standard_normal(hd)
            w[p + "self_attn.k_norm.weight"] = 1 + 0.1 * rng.standard_normal(hd)
    if not cfg["tie_word_embeddings"]:
        w["lm_head.weight"] = rng.standard_normal((VOCAB, h)) * (1.0 / np.sqrt(h))
    return {k: np.asarray(v, dtype=np.float32) for k, v in w.items()}


def save_model(name, cfg, tensors, deq):
    """tensors: name -> (dtype, shape, bytes); deq: name -> float32 values the
    reference uses. Returns deq."""
    d = os.path.join(ROOT, "models", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "config.json"), "w") as f:
        json.dump(dict(sorted(cfg.items())), f, indent=4)
    write_safetensors(os.path.join(d, "model.safetensors"), tensors, {"format": "mlx"})
    with open(os.path.join(d, "tokenizer.json"), "w") as f:
        json.dump(tokenizer_json(), f, ensure_ascii=False)
    with open(os.path.join(d, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": False, "bos_token": None, "eos_token": "<|im_end|>",
                   "pad_token": "<|endoftext|>", "model_max_length": 512, "chat_template": CHAT_TEMPLATE,
                   "tokenizer_class": "Qwen2Tokenizer"}, f, indent=2)
    with open(os.path.join(d, "generation_config.json"), "w") as f:
        json.dump({"eos_token_id": [IM_END, ENDOFTEXT], "pad_token_id": ENDOFTEXT}, f, indent=2)
    return deq


def save_float(name, cfg, w, dtype):
    tensors, deq = {}, {}
    for k, v in w.items():
        tensors[k] = (dtype, v.shape, encode(v, dtype))
        deq[k] = round_to(v, dtype)
    return save_model(name, dict(cfg, torch_dtype={"F32": "float32", "BF16": "bfloat16",
                                                   "F16": "float16"}[dtype]), tensors, deq)


def save_quantized(name, cfg, w, bits, gs, dtype, overrides):
    """MLX layout: every Linear/Embedding whose input dim divides by gs is
    quantized, with per-module overrides (a dict of params, or False)."""
    tensors, deq = {}, {}
    qcfg = {"group_size": gs, "bits": bits, "mode": "affine"}
    for k, v in sorted(w.items()):
        module = k[: -len(".weight")] if k.endswith(".weight") else None
        quantizable = module is not None and v.ndim == 2 and not module.endswith("norm")
        params = {"group_size": gs, "bits": bits}
        if quantizable and module in overrides:
            o = overrides[module]
            if o is False:
                quantizable = False
            else:
                params = o
            qcfg[module] = o if o is False else dict(o, mode="affine")
        if quantizable and v.shape[1] % params["group_size"] == 0:
            packed, s, b, dq = mlx_quantize(v, params["group_size"], params["bits"], dtype)
            tensors[k] = ("U32", packed.shape, encode(packed, "U32"))
            tensors[module + ".scales"] = (dtype, s.shape, encode(s, dtype))
            tensors[module + ".biases"] = (dtype, b.shape, encode(b, dtype))
            deq[k] = dq
        else:
            tensors[k] = (dtype, v.shape, encode(v, dtype))
            deq[k] = round_to(v, dtype)
    cfg = dict(cfg, quantization=qcfg, quantization_config=qcfg,
               torch_dtype={"F32": "float32", "BF16": "bfloat16", "F16": "float16"}[dtype])
    return save_model(name, cfg, tensors, deq)

# ---------------------------------------------------------------------------
# Adapters. One LoRA (rank r, scale s) on every linear of every layer:
#   MLX:  lora_a [in, r], lora_b [r, out];  y += s * (x @ lora_a) @ lora_b
#   PEFT: lora_A [r, in] = lora_a^T, lora_B [out, r] = lora_b^T, s = alpha / r

def make_lora(cfg, w, rank, rng):
    lora = {}
    for l in range(cfg["num_hidden_layers"]):
        for m in LINEARS:
            mod = f"model.layers.{l}.{m}"
            out, n_in = w[mod + ".weight"].shape
            a = (rng.uniform(-1, 1, (n_in, rank)) / np.sqrt(n_in)).astype(np.float32)
            b = (0.5 * rng.standard_normal((rank, out))).astype(np.float32)
            lora[mod] = (a, b)
    return lora


def save_mlx_adapter(name, lora, rank, scale, num_layers):
    d = os.path.join(ROOT, "adapters", name)
    os.makedirs(d, exist_ok=True)
    tensors = {}
    for mod, (a, b) in lora.items():
        tensors[mod + ".lora_a"] = ("F32", a.shape, encode(a, "F32"))
        tensors[mod + ".lora_b"] = ("F32", b.shape, encode(b, "F32"))
    write_safetensors(os.path.join(d, "adapters.safetensors"), tensors, None)
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump({"fine_tune_type": "lora", "num_layers": num_layers,
                   "lora_parameters": {"rank": rank, "scale": scale, "dropout": 0.0}}, f, indent=4, sort_keys=True)


def save_peft_adapter(name, lora, rank, alpha):
    d = os.path.join(ROOT, "adapters", name)
    os.makedirs(d, exist_ok=True)
    tensors = {}
    for mod, (a, b) in lora.items():
        key = "base_model.model." + mod
        tensors[key + ".lora_A.weight"] = ("F32", (a.shape[1], a.shape[0]), encode(a.T.copy(), "F32"))
        tensors[key + ".lora_B.weight"] = ("F32", (b.shape[1], b.shape[0]), encode(b.T.copy(), "F32"))
    write_safetensors(os.path.join(d, "adapter_model.safetensors"), tensors, {"format": "pt"})
    with open(os.path.join(d, "adapter_config.json"), "w") as f:
        json.dump({"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": rank, "lora_alpha": alpha,
                   "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
                   "lora_dropout": 0.0, "bias": "none", "fan_in_fan_out": False, "use_rslora": False,
                   "use_dora": False, "base_model_name_or_path": "tiny-qwen2"}, f, indent=2)

# ---------------------------------------------------------------------------
# Reference forward pass (docs/formats/qwen2-forward.md §2), float64 throughout.

def rope_inv_freq(cfg, hd):
    theta = cfg.get("rope_theta", 10000.0)
    inv = theta ** (-np.arange(0, hd, 2, dtype=np.float64) / hd)
    rs = cfg.get("rope_scaling")
    if rs and rs.get("rope_type", rs.get("type")) == "llama3":
        f, lf, hf, L = rs["factor"], rs["low_freq_factor"], rs["high_freq_factor"], \
            rs["original_max_position_embeddings"]
        out = []
        for x in inv:
            wavelen = 2 * np.pi / x
            if wavelen < L / hf:
                out.append(x)
            elif wavelen > L / lf:
                out.append(x / f)
            else:
                s = (L / wavelen - lf) / (hf - lf)
                out.append((1 - s) * x / f + s * x)
        inv = np.array(out)
    return inv


def rms_norm(x, w, eps):
    return w * (x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps))


def apply_rope(x, pos, inv):  # x [T, H, D]
    ang = pos[:, None].astype(np.float64) * inv[None, :]
    cos = np.concatenate([np.cos(ang)] * 2, axis=-1)[:, None, :]
    sin = np.concatenate([np.sin(ang)] * 2, axis=-1)[:, None, :]
    half = x.shape[-1] // 2
    rot = np.concatenate([-x[..., half:], x[..., :half]], axis=-1)
    return x * cos + rot * sin


def reference_logits(cfg, deq, tokens, adapters=()):
    """Logits [T, vocab] of every position. adapters: list of (lora, scale)."""
    W = {k: v.astype(np.float64) for k, v in deq.items()}
    h_dim = cfg["hidden_size"]
    nh, nkv = cfg["num_attention_heads"], cfg["num_key_value_heads"]
    hd = cfg.get("head_dim", h_dim // nh)
    eps = cfg["rms_norm_eps"]
    inv = rope_inv_freq(cfg, hd)
    T = len(tokens)
    pos = np.arange(T)

    def linear(mod, x):
        y = x @ W[mod + ".weight"].T
        if mod + ".bias" in W:
            y = y + W[mod + ".bias"]
        for lora, scale in adapters:
            if mod in lora:
                a, b = lora[mod]
                y = y + scale * ((x @ a.astype(np.float64)) @ b.astype(np.float64))
        return y

    h = W["model.embed_tokens.weight"][np.array(tokens)]
    for l in range(cfg["num_hidden_layers"]):
        p = f"model.layers.{l}."
        x = rms_norm(h, W[p + "input_layernorm.weight"], eps)
        q = linear(p + "self_attn.q_proj", x).reshape(T, nh, hd)
        k = linear(p + "self_attn.k_proj", x).reshape(T, nkv, hd)
        v = linear(p + "self_attn.v_proj", x).reshape(T, nkv, hd)
        if cfg["model_type"] == "qwen3":
            q = rms_norm(q, W[p + "self_attn.q_norm.weight"], eps)
            k = rms_norm(k, W[p + "self_attn.k_norm.weight"], eps)
        q, k = apply_rope(q, pos, inv), apply_rope(k, pos, inv)
        rep = nh // nkv
        out = np.zeros((T, nh, hd))
        for j in range(nh):
            kj, vj = k[:, j // rep, :], v[:, j // rep, :]
            s = (q[:, j, :] @ kj.T) / np.sqrt(hd)
            s = s + np.triu(np.full((T, T), -np.inf), 1)
            s = np.exp(s - s.max(axis=-1, keepdims=True))
            s = s / s.sum(axis=-1, keepdims=True)
            out[:, j, :] = s @ vj
        h = h + linear(p + "self_attn.o_proj", out.reshape(T, nh * hd))
        x = rms_norm(h, W[p + "post_attention_layernorm.weight"], eps)
        g = linear(p + "mlp.gate_proj", x)
        u = linear(p + "mlp.up_proj", x)
        h = h + linear(p + "mlp.down_proj", g / (1 + np.exp(-g)) * u)
    h = rms_norm(h, W["model.norm.weight"], eps)
    out_w = W["model.embed_tokens.weight"] if cfg["tie_word_embeddings"] else W["lm_head.weight"]
    return h @ out_w.T

# ---------------------------------------------------------------------------

def main():
    if os.path.isdir(ROOT):
        for sub in ["models", "adapters", "logits"]:
            shutil.rmtree(os.path.join(ROOT, sub), ignore_errors=True)
    os.makedirs(os.path.join(ROOT, "logits"), exist_ok=True)
    rng = np.random.default_rng(20240611)

    qcfg = make_config("qwen2", hidden=32, inter=64, layers=2, heads=4, kv_heads=2)
    qw = make_weights(qcfg, rng)
    lora = make_lora(qcfg, qw, rank=4, rng=rng)
    lora_scale = 2.0

    models = {}
    models["qwen2-f32"] = (qcfg, save_float("qwen2-f32", qcfg, qw, "F32"))
    models["qwen2-bf16"] = (qcfg, save_float("qwen2-bf16", qcfg, qw, "BF16"))
    models["qwen2-q8"] = (qcfg, save_quantized("qwen2-q8", qcfg, qw, 8, 32, "BF16", {}))
    models["qwen2-q4"] = (qcfg, save_quantized(
        "qwen2-q4", qcfg, qw, 4, 32, "F16",
        {"model.layers.1.mlp.down_proj": {"group_size": 64, "bits": 8},
         "model.layers.0.self_attn.v_proj": False}))
    models["qwen2-q3"] = (qcfg, save_quantized(
        "qwen2-q3", qcfg, qw, 3, 32, "F32",
        {"model.layers.0.mlp.up_proj": {"group_size": 32, "bits": 6},
         "model.layers.1.mlp.gate_proj": {"group_size": 32, "bits": 2},
         "model.layers.1.mlp.down_proj": {"group_size": 64, "bits": 5}}))

    # The adapter fused into the f32 base, in f32: W' = W + s * (lora_a @ lora_b)^T.
    fused = dict(qw)
    for mod, (a, b) in lora.items():
        delta = lora_scale * (a.astype(np.float64) @ b.astype(np.float64)).T
        fused[mod + ".weight"] = (qw[mod + ".weight"].astype(np.float64) + delta).astype(np.float32)
    models["qwen2-f32-fused"] = (qcfg, save_float("qwen2-f32-fused", qcfg, fused, "F32"))

    lcfg = make_config("llama", hidden=32, inter=64, layers=1, heads=4, kv_heads=2, tie=False,
                       extra={"rope_theta": 500000.0, "attention_bias": False, "mlp_bias": False,
                              "rope_scaling": {"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                                               "high_freq_factor": 4.0,
                                               "original_max_position_embeddings": 8192}})
    lw = make_weights(lcfg, rng)
    models["llama-bf16"] = (lcfg, save_float("llama-bf16", lcfg, lw, "BF16"))

    q3cfg = make_config("qwen3", hidden=32, inter=64, layers=1, heads=4, kv_heads=2, head_dim=16,
                        extra={"attention_bias": False, "rope_theta": 1000000.0})
    q3w = make_weights(q3cfg, rng)
    models["qwen3-bf16"] = (q3cfg, save_float("qwen3-bf16", q3cfg, q3w, "BF16"))

    save_mlx_adapter("qwen2-lora-mlx", lora, rank=4, scale=lora_scale, num_layers=2)
    save_peft_adapter("qwen2-lora-peft", lora, rank=4, alpha=int(lora_scale * 4))
    # An adapter trained for another model: hidden 48 instead of 32.
    other = make_config("qwen2", hidden=48, inter=64, layers=2, heads=4, kv_heads=2)
    save_mlx_adapter("other-model-lora-mlx", make_lora(other, make_weights(other, rng), 4, rng), 4, 2.0, 2)

    prompt = [int(t) for t in rng.integers(0, N_TEXT_TOKENS, 8)]
    continuation = [int(t) for t in rng.integers(0, N_TEXT_TOKENS, 3)]
    tokens = prompt + continuation
    mlx_adapter = (lora, lora_scale)
    cases = [
        ("qwen2-f32", "qwen2-f32", []),
        ("qwen2-bf16", "qwen2-bf16", []),
        ("qwen2-q8", "qwen2-q8", []),
        ("qwen2-q4", "qwen2-q4", []),
        ("qwen2-q3", "qwen2-q3", []),
        ("qwen2-f32-fused", "qwen2-f32-fused", []),
        ("qwen2-f32+mlx-lora", "qwen2-f32", ["qwen2-lora-mlx"]),
        ("qwen2-f32+peft-lora", "qwen2-f32", ["qwen2-lora-peft"]),
        ("qwen2-q4+mlx-lora", "qwen2-q4", ["qwen2-lora-mlx"]),
        ("qwen2-bf16+mlx-lora+peft-lora", "qwen2-bf16", ["qwen2-lora-mlx", "qwen2-lora-peft"]),
        ("llama-bf16", "llama-bf16", []),
        ("qwen3-bf16", "qwen3-bf16", []),
    ]
    out_cases = []
    for name, model, adapters in cases:
        cfg, deq = models[model]
        logits = reference_logits(cfg, deq, tokens, [mlx_adapter] * len(adapters))
        path = os.path.join("logits", name.replace("+", "_") + ".f32")
        logits.astype("<f4").tofile(os.path.join(ROOT, path))
        out_cases.append({"name": name, "model": "models/" + model,
                          "adapters": ["adapters/" + a for a in adapters], "logits": path,
                          "positions": len(tokens), "max_abs_logit": float(np.abs(logits).max())})

    # Greedy continuation of the adapted model; the margin between the best
    # and second-best logit at each step shows near-ties cannot flip it.
    cfg, deq = models["qwen2-f32"]
    seq = list(prompt)
    margins = []
    for _ in range(10):
        lg = reference_logits(cfg, deq, seq, [mlx_adapter])[-1]
        order = np.argsort(lg)
        margins.append(float(lg[order[-1]] - lg[order[-2]]))
        seq.append(int(order[-1]))
    greedy = {"model": "models/qwen2-f32", "adapters": ["adapters/qwen2-lora-mlx"],
              "fused_model": "models/qwen2-f32-fused", "prompt": prompt, "tokens": seq[len(prompt):],
              "min_margin": min(margins)}
    if min(margins) < 1e-3:
        sys.exit(f"greedy path has a near-tie (margin {min(margins)}); change the seed")

    golden = {"version": 1, "generator": "tests/reference/make_golden.py", "vocab_size": VOCAB,
              "prompt": prompt, "continuation": continuation, "cases": out_cases, "greedy": greedy}
    with open(os.path.join(ROOT, "golden.json"), "w") as f:
        json.dump(golden, f, indent=1)
    total = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(ROOT) for fn in fns)
    print(f"wrote {ROOT}: {total} bytes")


if __name__ == "__main__":
    main()
