#include "inference/forward.h"

#include <algorithm>
#include <cmath>

namespace mb::inference {

namespace {

// y = w * (x / sqrt(mean(x^2) + eps)); the mean in double, the rest in f32.
void rms_norm(const float* x, const float* w, int64_t n, float eps, float* y) {
  double ss = 0;
  for (int64_t i = 0; i < n; ++i) ss += static_cast<double>(x[i]) * x[i];
  const float inv = static_cast<float>(1.0 / std::sqrt(ss / n + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = w[i] * (x[i] * inv);
}

// rotate_half ("NEOX") pairing: element i with element i + d/2.
void rope(float* v, int d, const float* cos, const float* sin) {
  const int half = d / 2;
  for (int i = 0; i < half; ++i) {
    const float a = v[i], b = v[i + half];
    v[i] = a * cos[i] - b * sin[i];
    v[i + half] = b * cos[i] + a * sin[i];
  }
}

}  // namespace

Forward::Forward(const Model& model, ThreadPool& pool)
    : m_model(model),
      m_pool(pool),
      m_context_limit(model.config.max_position_embeddings),
      m_k(model.config.num_layers),
      m_v(model.config.num_layers),
      m_inv_freq(rope_inv_freq(model.config.rope, model.config.head_dim)) {}

void Forward::ensure_capacity(int64_t positions) {
  if (positions <= m_capacity) return;
  // Grow geometrically so a long generation reallocates a few times only.
  int64_t cap = std::max<int64_t>({positions, 2 * m_capacity, 256});
  cap = std::min(cap, std::max(positions, m_context_limit));
  const int64_t kv = static_cast<int64_t>(m_model.config.num_kv_heads) * m_model.config.head_dim;
  for (size_t l = 0; l < m_k.size(); ++l) {
    m_k[l].resize(cap * kv);
    m_v[l].resize(cap * kv);
  }
  m_capacity = cap;
}

void Forward::add_bias_and_lora(const Linear& l, const float* x, int64_t n, float* y) {
  const int64_t out = l.weight.rows;
  if (!l.bias.empty())
    for (int64_t t = 0; t < n; ++t)
      for (int64_t o = 0; o < out; ++o) y[t * out + o] += l.bias[o];
  for (const LoraTerm& term : l.lora) {
    const int64_t rank = term.a.rows;
    m_lora_u.resize(n * rank);
    m_lora_t.resize(n * out);
    matmul(term.a, x, n, m_lora_u.data(), m_pool);
    matmul(term.b, m_lora_u.data(), n, m_lora_t.data(), m_pool);
    for (int64_t i = 0; i < n * out; ++i) y[i] += term.scale * m_lora_t[i];
  }
}

void Forward::linear(const Linear& l, const float* x, int64_t n, float* y) {
  matmul(l.weight, x, n, y, m_pool);
  add_bias_and_lora(l, x, n, y);
}

void Forward::attention(int layer, int64_t n) {
  const ModelConfig& c = m_model.config;
  const int hd = c.head_dim, nh = c.num_heads, rep = c.num_heads / c.num_kv_heads;
  const int64_t kv_stride = static_cast<int64_t>(c.num_kv_heads) * hd;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  const float* keys = m_k[layer].data();
  const float* values = m_v[layer].data();
  const int64_t p0 = m_pos;
  m_pool.parallel_for(n * nh, 1, [&](int64_t b, int64_t e) {
    thread_local std::vector<float> scores;
    for (int64_t i = b; i < e; ++i) {
      const int64_t t = i / nh;
      const int h = static_cast<int>(i % nh);
      const int64_t len = p0 + t + 1;  // causal: keys 0 .. p0 + t
      const float* q = m_q.data() + (t * nh + h) * hd;
      const int64_t kv_off = static_cast<int64_t>(h / rep) * hd;
      scores.resize(len);
      float mx = -INFINITY;
      for (int64_t j = 0; j < len; ++j) {
        scores[j] = dot_f32(q, keys + j * kv_stride + kv_off, hd) * scale;
        mx = std::max(mx, scores[j]);
      }
      float sum = 0;
      for (int64_t j = 0; j < len; ++j) {
        scores[j] = std::exp(scores[j] - mx);
        sum += scores[j];
      }
      float* out = m_attn.data() + (t * nh + h) * hd;
      std::fill(out, out + hd, 0.0f);
      for (int64_t j = 0; j < len; ++j) {
        const float p = scores[j] / sum;
        const float* v = values + j * kv_stride + kv_off;
        for (int d = 0; d < hd; ++d) out[d] += p * v[d];
      }
    }
  });
}

Status Forward::run(std::span<const int32_t> tokens, bool all_positions, std::vector<float>& logits) {
  const ModelConfig& c = m_model.config;
  const int64_t n = static_cast<int64_t>(tokens.size());
  if (n == 0) return Error{Errc::kInvalidInput, "", "no tokens to run"};
  if (m_pos + n > m_context_limit)
    return make_error(Errc::kInvalidInput, "", "sequence of {} tokens does not fit the context of {} tokens", m_pos + n,
                      m_context_limit);
  for (int32_t id : tokens)
    if (id < 0 || id >= c.vocab_size)
      return make_error(Errc::kInvalidInput, "", "token id {} is outside the vocabulary (size {})", id, c.vocab_size);
  ensure_capacity(m_pos + n);

  const int64_t hidden = c.hidden_size, hd = c.head_dim;
  const int64_t q_dim = static_cast<int64_t>(c.num_heads) * hd, kv_dim = static_cast<int64_t>(c.num_kv_heads) * hd;
  const int64_t inter = c.intermediate_size;
  m_h.resize(n * hidden);
  m_x.resize(n * std::max(hidden, q_dim));
  m_q.resize(n * q_dim);
  m_kn.resize(n * kv_dim);
  m_vn.resize(n * kv_dim);
  m_attn.resize(n * q_dim);
  m_gate.resize(n * inter);
  m_up.resize(n * inter);
  m_tmp.resize(n * std::max(hidden, q_dim));

  for (int64_t t = 0; t < n; ++t) gather_row(m_model.embed, tokens[t], m_h.data() + t * hidden);

  // cos/sin of every new position, in double then rounded once.
  const int half = static_cast<int>(hd / 2);
  std::vector<float> cos_t(n * half), sin_t(n * half);
  for (int64_t t = 0; t < n; ++t)
    for (int i = 0; i < half; ++i) {
      const double angle = static_cast<double>(m_pos + t) * m_inv_freq[i];
      cos_t[t * half + i] = static_cast<float>(std::cos(angle));
      sin_t[t * half + i] = static_cast<float>(std::sin(angle));
    }

  for (int li = 0; li < c.num_layers; ++li) {
    const Layer& L = m_model.layers[li];
    for (int64_t t = 0; t < n; ++t)
      rms_norm(m_h.data() + t * hidden, L.input_norm.data(), hidden, c.rms_norm_eps, m_x.data() + t * hidden);
    const MatmulJob qkv[3] = {{&L.q.weight, m_x.data(), m_q.data()},
                              {&L.k.weight, m_x.data(), m_kn.data()},
                              {&L.v.weight, m_x.data(), m_vn.data()}};
    matmul_many(qkv, n, m_pool);
    add_bias_and_lora(L.q, m_x.data(), n, m_q.data());
    add_bias_and_lora(L.k, m_x.data(), n, m_kn.data());
    add_bias_and_lora(L.v, m_x.data(), n, m_vn.data());
    for (int64_t t = 0; t < n; ++t) {
      for (int h = 0; h < c.num_heads; ++h) {
        float* q = m_q.data() + t * q_dim + h * hd;
        if (c.qk_norm) {
          rms_norm(q, L.q_norm.data(), hd, c.rms_norm_eps, m_tmp.data());
          std::copy(m_tmp.data(), m_tmp.data() + hd, q);
        }
        rope(q, static_cast<int>(hd), cos_t.data() + t * half, sin_t.data() + t * half);
      }
      float* kc = m_k[li].data() + (m_pos + t) * kv_dim;
      float* vc = m_v[li].data() + (m_pos + t) * kv_dim;
      std::copy(m_kn.data() + t * kv_dim, m_kn.data() + (t + 1) * kv_dim, kc);
      std::copy(m_vn.data() + t * kv_dim, m_vn.data() + (t + 1) * kv_dim, vc);
      for (int h = 0; h < c.num_kv_heads; ++h) {
        float* k = kc + h * hd;
        if (c.qk_norm) {
          rms_norm(k, L.k_norm.data(), hd, c.rms_norm_eps, m_tmp.data());
          std::copy(m_tmp.data(), m_tmp.data() + hd, k);
        }
        rope(k, static_cast<int>(hd), cos_t.data() + t * half, sin_t.data() + t * half);
      }
    }
    attention(li, n);
    linear(L.o, m_attn.data(), n, m_tmp.data());
    for (int64_t i = 0; i < n * hidden; ++i) m_h[i] += m_tmp[i];

    for (int64_t t = 0; t < n; ++t)
      rms_norm(m_h.data() + t * hidden, L.post_norm.data(), hidden, c.rms_norm_eps, m_x.data() + t * hidden);
    const MatmulJob gate_up[2] = {{&L.gate.weight, m_x.data(), m_gate.data()}, {&L.up.weight, m_x.data(), m_up.data()}};
    matmul_many(gate_up, n, m_pool);
    add_bias_and_lora(L.gate, m_x.data(), n, m_gate.data());
    add_bias_and_lora(L.up, m_x.data(), n, m_up.data());
    m_pool.parallel_for(n * inter, 4096, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const float g = m_gate[i];
        m_gate[i] = g / (1.0f + std::exp(-g)) * m_up[i];
      }
    });
    linear(L.down, m_gate.data(), n, m_tmp.data());
    for (int64_t i = 0; i < n * hidden; ++i) m_h[i] += m_tmp[i];
  }

  // Final norm and output projection for the positions asked for.
  const int64_t first = all_positions ? 0 : n - 1;
  const int64_t m = n - first;
  for (int64_t t = first; t < n; ++t)
    rms_norm(m_h.data() + t * hidden, m_model.final_norm.data(), hidden, c.rms_norm_eps,
             m_x.data() + (t - first) * hidden);
  logits.resize(m * c.vocab_size);
  linear(m_model.lm_head, m_x.data(), m, logits.data());
  m_pos += n;
  return Status();
}

}  // namespace mb::inference
