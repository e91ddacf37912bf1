// llama_quantize_ref: llama.cpp's own quantizer (llama_model_quantize in the
// prebuilt libllama of the pinned node-llama-cpp package), to make the
// reference files that modelbuild's GGUF quantizers must equal tensor by
// tensor (tests/llama_compat_test.cc, tests/llama/README.md).
//
//   llama_quantize_ref quantize IN.gguf OUT.gguf TYPE [THREADS]
//       TYPE: F16 BF16 Q8_0 Q4_0 Q4_K_M Q5_K_M Q6_K; no importance matrix
//   llama_quantize_ref abi
//       checks that the header this was compiled against (extracted from the
//       package's gitRelease.bundle at build time) describes the library it
//       runs with: llama_model_quantize_default_params() must hold the
//       defaults that version's llama-quant.cpp sets, field by field. A
//       header of another version (fields added, moved or resized) reads
//       them at the wrong offsets and fails here instead of quantizing with
//       garbage parameters.
//
// Exit 0 on success, 1 on failure (message on stderr), 2 on bad usage.
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "llama.h"

struct FileType {
  const char* name;
  enum llama_ftype ftype;
};

static const struct FileType kFileTypes[] = {
    {"F16", LLAMA_FTYPE_MOSTLY_F16},   {"BF16", LLAMA_FTYPE_MOSTLY_BF16},     {"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
    {"Q4_0", LLAMA_FTYPE_MOSTLY_Q4_0}, {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M}, {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
    {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K},
};

// llama.cpp logs every tensor it quantizes; keep only warnings and errors
// so that a failing test shows what went wrong.
static void quiet_log(enum ggml_log_level level, const char* text, void* user) {
  (void)user;
  if (level == GGML_LOG_LEVEL_WARN || level == GGML_LOG_LEVEL_ERROR) fputs(text, stderr);
}

static int check_field(int ok, const char* field) {
  if (!ok) fprintf(stderr, "llama_quantize_ref: default %s is not this header's; header and library differ\n", field);
  return ok;
}

// The defaults of llama_model_quantize_default_params() in the bundled
// llama.cpp (src/llama-quant.cpp), checked through this header's layout.
static int check_abi(int print) {
  const struct llama_model_quantize_params p = llama_model_quantize_default_params();
  int ok = 1;
  ok &= check_field(p.nthread == 0, "nthread");
  ok &= check_field(p.ftype == LLAMA_FTYPE_MOSTLY_Q8_0, "ftype");
  ok &= check_field(p.output_tensor_type == GGML_TYPE_COUNT, "output_tensor_type");
  ok &= check_field(p.token_embedding_type == GGML_TYPE_COUNT, "token_embedding_type");
  ok &= check_field(!p.allow_requantize && p.quantize_output_tensor && !p.only_copy && !p.pure, "flags");
  ok &= check_field(!p.keep_split && !p.dry_run, "keep_split/dry_run");
  ok &= check_field(p.imatrix == NULL && p.kv_overrides == NULL, "imatrix/kv_overrides");
  ok &= check_field(p.tt_overrides == NULL && p.prune_layers == NULL, "tt_overrides/prune_layers");
  ok &= check_field(p.max_buf_size == (size_t)8 << 30, "max_buf_size");
  if (print)
    printf(
        "{\"llama_version\": \"%s\", \"sizeof_quantize_params\": %zu, \"max_buf_size_offset\": %zu, \"abi_ok\": %s}\n",
        llama_version(), sizeof p, offsetof(struct llama_model_quantize_params, max_buf_size), ok ? "true" : "false");
  return ok ? 0 : 1;
}

static int quantize(const char* in, const char* out, const char* type, int threads) {
  const struct FileType* ft = NULL;
  for (size_t i = 0; i < sizeof kFileTypes / sizeof kFileTypes[0]; ++i)
    if (strcmp(kFileTypes[i].name, type) == 0) ft = &kFileTypes[i];
  if (ft == NULL) {
    fprintf(stderr, "llama_quantize_ref: unknown type %s (F16 BF16 Q8_0 Q4_0 Q4_K_M Q5_K_M Q6_K)\n", type);
    return 2;
  }
  struct llama_model_quantize_params p = llama_model_quantize_default_params();
  p.nthread = threads;
  p.ftype = ft->ftype;
  const uint32_t rc = llama_model_quantize(in, out, &p);
  if (rc != 0) {
    fprintf(stderr, "llama_quantize_ref: llama_model_quantize(%s -> %s, %s) failed (%u)\n", in, out, type, rc);
    return 1;
  }
  return 0;
}

int main(int argc, char** argv) {
  llama_log_set(quiet_log, NULL);
  llama_backend_init();
  int rc = 2;
  if (argc == 2 && strcmp(argv[1], "abi") == 0) {
    rc = check_abi(1);
  } else if ((argc == 5 || argc == 6) && strcmp(argv[1], "quantize") == 0) {
    rc = check_abi(0) == 0 ? quantize(argv[2], argv[3], argv[4], argc == 6 ? atoi(argv[5]) : 0) : 1;
  } else {
    fprintf(stderr, "usage: llama_quantize_ref abi | quantize IN.gguf OUT.gguf TYPE [THREADS]\n");
  }
  llama_backend_free();
  return rc;
}
