// Runs modelbuild's outputs through real MLX (the @frost-beta/mlx Node-API
// bindings: MLX's C++ library, CPU backend, prebuilt for Linux x86-64).
// tests/mlx_compat_test.cc drives it; see README.md here.
//
//   node check_model.mjs quantize IN.safetensors OUT.safetensors GROUP_SIZE BITS
//       every tensor T of IN → T.weight, T.scales, T.biases from mx.quantize
//   node check_model.mjs dequantize IN.safetensors OUT.safetensors GROUP_SIZE BITS
//       every T.weight/T.scales/T.biases of IN → T from mx.dequantize
//   node check_model.mjs load MODEL_DIR
//       loads the model the way mlx_lm.utils.load_model does and prints a
//       JSON summary; any mismatch is an error naming the tensor
//   node check_model.mjs logits MODEL_DIR TOKENS OUT.f32
//       loads as above, then runs the Qwen2 forward pass on the comma-separated
//       token ids and writes the float32 logits of every position
//
// Errors go to stderr with exit status 1.
import fs from 'node:fs';
import path from 'node:path';
import mlx from '@frost-beta/mlx';

const { core: mx, nn } = mlx;

// ---- mlx_lm's Qwen2 module tree (mlx_lm/models/qwen2.py) ------------------
// Property names are camelCase; the bindings map them to the snake_case
// checkpoint keys (selfAttn.qProj ↔ self_attn.q_proj), as mlx_lm's are.

class Attention extends nn.Module {
  constructor(args) {
    super();
    const dim = args.hidden_size;
    this.nHeads = args.num_attention_heads;
    this.nKvHeads = args.num_key_value_heads;
    this.headDim = dim / this.nHeads;
    this.ropeTheta = args.rope_theta ?? 1000000;
    this.qProj = new nn.Linear(dim, this.nHeads * this.headDim, true);
    this.kProj = new nn.Linear(dim, this.nKvHeads * this.headDim, true);
    this.vProj = new nn.Linear(dim, this.nKvHeads * this.headDim, true);
    this.oProj = new nn.Linear(this.nHeads * this.headDim, dim, false);
  }

  forward(x, mask) {
    const [B, L] = x.shape;
    const heads = (t, n) => t.reshape(B, L, n, -1).transpose(0, 2, 1, 3);
    let q = heads(this.qProj.forward(x), this.nHeads);
    let k = heads(this.kProj.forward(x), this.nKvHeads);
    let v = heads(this.vProj.forward(x), this.nKvHeads);
    q = mx.fast.rope(q, this.headDim, false, this.ropeTheta, 1.0, 0);
    k = mx.fast.rope(k, this.headDim, false, this.ropeTheta, 1.0, 0);
    // Grouped-query attention: each KV head serves nHeads/nKvHeads queries.
    const rep = this.nHeads / this.nKvHeads;
    k = mx.repeat(k, rep, 1);
    v = mx.repeat(v, rep, 1);
    let scores = mx.matmul(q, k.transpose(0, 1, 3, 2));
    scores = mx.add(mx.multiply(scores, 1 / Math.sqrt(this.headDim)), mask);
    const out = mx.matmul(mx.softmax(scores, -1, true), v);
    return this.oProj.forward(out.transpose(0, 2, 1, 3).reshape(B, L, -1));
  }
}

class MLP extends nn.Module {
  constructor(dim, hidden) {
    super();
    this.gateProj = new nn.Linear(dim, hidden, false);
    this.downProj = new nn.Linear(hidden, dim, false);
    this.upProj = new nn.Linear(dim, hidden, false);
  }

  forward(x) {
    const g = this.gateProj.forward(x);
    return this.downProj.forward(mx.multiply(mx.multiply(g, mx.sigmoid(g)), this.upProj.forward(x)));
  }
}

class TransformerBlock extends nn.Module {
  constructor(args) {
    super();
    this.selfAttn = new Attention(args);
    this.mlp = new MLP(args.hidden_size, args.intermediate_size);
    this.inputLayernorm = new nn.RMSNorm(args.hidden_size, args.rms_norm_eps);
    this.postAttentionLayernorm = new nn.RMSNorm(args.hidden_size, args.rms_norm_eps);
  }

  forward(x, mask) {
    const h = mx.add(x, this.selfAttn.forward(this.inputLayernorm.forward(x), mask));
    return mx.add(h, this.mlp.forward(this.postAttentionLayernorm.forward(h)));
  }
}

class Qwen2Model extends nn.Module {
  constructor(args) {
    super();
    this.embedTokens = new nn.Embedding(args.vocab_size, args.hidden_size);
    this.layers = [];
    for (let i = 0; i < args.num_hidden_layers; ++i) this.layers.push(new TransformerBlock(args));
    this.norm = new nn.RMSNorm(args.hidden_size, args.rms_norm_eps);
  }
}

class Model extends nn.Module {
  constructor(args) {
    super();
    this.tied = args.tie_word_embeddings ?? true;
    this.model = new Qwen2Model(args);
    if (!this.tied) this.lmHead = new nn.Linear(args.hidden_size, args.vocab_size, false);
  }

  // Logits [1, L, vocab] for token ids [1, L], causal attention.
  forward(tokens) {
    const L = tokens.shape[1];
    let h = this.model.embedTokens.forward(tokens);
    const pos = mx.arange(L);
    const future = mx.greater(pos.reshape(1, L), pos.reshape(L, 1));  // key after query
    const mask = mx.multiply(future.astype(h.dtype), -1e9);
    for (const layer of this.model.layers) h = layer.forward(h, mask);
    h = this.model.norm.forward(h);
    return this.tied ? this.model.embedTokens.asLinear(h) : this.lmHead.forward(h);
  }

  // mlx_lm's Qwen2 Model.sanitize.
  sanitize(weights) {
    if (this.tied) delete weights['lm_head.weight'];
    for (const k of Object.keys(weights)) if (k.includes('self_attn.rotary_emb.inv_freq')) delete weights[k];
    return weights;
  }
}

// ---- mlx_lm.utils.load_model ----------------------------------------------

function fail(message) {
  console.error(`check_model: ${message}`);
  process.exit(1);
}

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    fail(`${file}: ${e.message}`);
  }
}

const isQuantized = (m) => m instanceof nn.QuantizedLinear || m instanceof nn.QuantizedEmbedding;
const canQuantize = (m) => typeof m.toQuantized === 'function' && !isQuantized(m);

function loadModel(dir) {
  const config = readJson(path.join(dir, 'config.json'));
  if (config.model_type !== 'qwen2') fail(`${dir}/config.json: model_type ${config.model_type} is not qwen2`);

  // glob("model*.safetensors"), each file through mx.load.
  const files = fs.readdirSync(dir).filter((f) => /^model.*\.safetensors$/.test(f)).sort();
  if (files.length === 0) fail(`${dir}: no model*.safetensors`);
  let weights = {};
  for (const f of files) {
    try {
      Object.assign(weights, mx.load(path.join(dir, f)));
    } catch (e) {
      fail(`${path.join(dir, f)}: mx.load: ${e.message}`);
    }
  }

  const model = new Model(config);
  weights = model.sanitize(weights);

  // nn.quantize with mlx_lm's class_predicate: a per-layer entry of
  // config.quantization wins (an object quantizes with its own parameters,
  // false keeps the layer float); otherwise a quantizable layer is quantized
  // exactly when the checkpoint has its scales. These bindings' predicate
  // returns a boolean only, so layers with their own parameters get their
  // own nn.quantize pass first.
  const q = config.quantization;
  const quantizedLayers = {};
  if (q) {
    const own = Object.entries(q).filter(([, v]) => v !== null && typeof v === 'object');
    for (const [layer, p] of own) {
      nn.quantize(model, p.group_size, p.bits, (p2, m) => p2 === layer && canQuantize(m));
      quantizedLayers[layer] = { bits: p.bits, group_size: p.group_size };
    }
    nn.quantize(model, q.group_size, q.bits, (p2, m) => {
      if (p2 in q) return false;
      const yes = canQuantize(m) && `${p2}.scales` in weights;
      if (yes) quantizedLayers[p2] = { bits: q.bits, group_size: q.group_size };
      return yes;
    });
  }

  // model.load_weights(list(weights.items()), strict=True): every parameter
  // present with the module's shape, nothing extra.
  try {
    model.loadWeights(Object.entries(weights), true);
  } catch (e) {
    fail(`${dir}: load_weights: ${e.message}`);
  }
  model.eval();
  let parameters = 0;
  for (const [, v] of mlx.utils.treeFlatten(model.parameters())) parameters += v.size;
  return { model, config, files, quantizedLayers, parameters };
}

// ---- commands ---------------------------------------------------------------

function quantizeFile(inFile, outFile, groupSize, bits) {
  const out = {};
  for (const [name, w] of Object.entries(mx.load(inFile))) {
    const [wq, scales, biases] = mx.quantize(w, groupSize, bits);
    out[`${name}.weight`] = wq;
    out[`${name}.scales`] = scales;
    out[`${name}.biases`] = biases;
  }
  mx.saveSafetensors(outFile, out);
}

function dequantizeFile(inFile, outFile, groupSize, bits) {
  const t = mx.load(inFile);
  const out = {};
  for (const key of Object.keys(t).filter((k) => k.endsWith('.weight'))) {
    const name = key.slice(0, -'.weight'.length);
    out[name] = mx.dequantize(t[key], t[`${name}.scales`], t[`${name}.biases`], groupSize, bits);
  }
  mx.saveSafetensors(outFile, out);
}

function writeLogits(dir, tokenList, outFile) {
  const { model } = loadModel(dir);
  // Float32 throughout, so the comparison with modelbuild's engine measures
  // how the two read the weights, not float16 activation rounding.
  model.setDtype(mx.float32);
  const ids = tokenList.split(',').map(Number);
  const logits = model.forward(mx.array([ids], mx.int32)).astype(mx.float32);
  const flat = logits.reshape([-1]).tolist();
  fs.writeFileSync(outFile, Buffer.from(new Float32Array(flat).buffer));
}

const [cmd, ...args] = process.argv.slice(2);
try {
  if (cmd === 'quantize' && args.length === 4) {
    quantizeFile(args[0], args[1], Number(args[2]), Number(args[3]));
  } else if (cmd === 'dequantize' && args.length === 4) {
    dequantizeFile(args[0], args[1], Number(args[2]), Number(args[3]));
  } else if (cmd === 'load' && args.length === 1) {
    const { files, quantizedLayers, parameters } = loadModel(args[0]);
    console.log(JSON.stringify({ files, parameters, quantized: quantizedLayers }));
  } else if (cmd === 'logits' && args.length === 3) {
    writeLogits(args[0], args[1], args[2]);
  } else {
    fail('usage: check_model.mjs quantize|dequantize IN OUT GROUP_SIZE BITS | load DIR | logits DIR TOKENS OUT');
  }
} catch (e) {
  fail(process.env.MLX_CHECK_DEBUG ? e.stack : e.message);
}
