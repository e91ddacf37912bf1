// `modelbuild serve --model DIR [--adapter DIR]... [--model-name NAME]
// [--host 127.0.0.1] [--port N] [--threads N] [--max-tokens N] [--api-key K]`:
// an OpenAI-compatible HTTP server (GET /health, GET /v1/models, POST
// /v1/chat/completions, whole or streamed) on the built-in CPU engine. The
// request→reply mapping lives in gate/server.cc; this file is only the HTTP
// plumbing.
//
// `--port 0` picks a free port; the one line on stdout,
// `listening on http://HOST:PORT`, tells scripts which. Logs go to stderr.
// SIGTERM/SIGINT stop the server cleanly.
#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <thread>

#include "cli/commands.h"
#include "gate/server.h"

namespace mb::cli {
namespace {

struct ServeFlags {
  std::string model, model_name, host = "127.0.0.1", api_key;
  std::vector<std::string> adapters;
  int port = 8080, threads = 0, max_tokens = 256;
};

// Enough HTTP threads that clients waiting in the generation queue never
// keep /health or /v1/models from answering.
constexpr size_t kHttpThreads = 32;

void send(httplib::Response& res, const gate::HttpReply& reply) {
  res.status = reply.status;
  res.set_content(reply.body.dump(), "application/json");
}

bool is_loopback(const std::string& host) { return host == "localhost" || host == "::1" || host.starts_with("127."); }

// POST /v1/chat/completions: a whole reply, or server-sent events written as
// the worker produces them. The status line goes out only once the
// generation has started, so a prompt the engine refuses is still a 400.
void chat_completions(gate::ChatServer& chat, const httplib::Request& req, httplib::Response& res) {
  gate::ChatServer::Started started = chat.start(req.body);
  const bool stream = started.call && started.call->stream();
  if (started.error) {
    send(res, *started.error);
  } else if (!stream) {
    send(res, started.call->wait_reply());
  } else if (auto error = started.call->wait_started()) {
    send(res, *error);
  } else {
    std::shared_ptr<gate::ChatCall> call = started.call;
    res.set_header("Cache-Control", "no-cache");
    res.set_chunked_content_provider(
        "text/event-stream",
        [call](size_t, httplib::DataSink& sink) {
          std::string events;
          const bool more = call->next_events(events);
          if (!sink.write(events.data(), events.size())) {
            call->cancel();  // the client went away
            return false;
          }
          if (!more) sink.done();
          return true;
        },
        [call](bool success) {
          if (!success) call->cancel();
        });
  }
  std::fprintf(stderr, "POST /v1/chat/completions %d%s\n", res.status, stream && res.status == 200 ? " (stream)" : "");
}

// The engine, with the flags checked first; a model or adapter that cannot
// be loaded is bad input (exit 2), before anything listens.
Result<std::unique_ptr<inference::Engine>> load_engine(const ServeFlags& f) {
  if (f.max_tokens < 1) return make_error(Errc::kInvalidInput, "--max-tokens", "must be at least 1");
  if (f.threads < 0) return make_error(Errc::kInvalidInput, "--threads", "must not be negative");
  if (f.port < 0 || f.port > 65535) return make_error(Errc::kInvalidInput, "--port", "must be 0..65535");
  const fs::path model = fs::absolute(f.model);
  // A model directory, or a GGUF file (inference/gguf_model.h).
  if (!fs::is_directory(model) && !(fs::is_regular_file(model) && model.extension() == ".gguf"))
    return make_error(Errc::kInvalidInput, f.model, "no such model directory or .gguf file");
  inference::LoadOptions lo;
  for (const std::string& a : f.adapters) {
    if (a.empty()) continue;  // "" = no adapter (an unset {adapter} in a runner's command)
    if (!fs::is_directory(a)) return make_error(Errc::kInvalidInput, a, "no such adapter directory");
    lo.adapters.push_back(fs::absolute(a));
  }
  lo.threads = f.threads;
  auto fs = make_real_file_system();
  auto loaded = inference::Engine::load(*fs, model, lo);
  if (!loaded.ok()) {
    Error e = loaded.error();
    if (e.code != Errc::kIo) e.code = Errc::kInvalidInput;
    return e;
  }
  return loaded;
}

void add_routes(httplib::Server& server, gate::ChatServer& chat, const std::string& key) {
  server.new_task_queue = [] { return new httplib::ThreadPool(kHttpThreads); };
  // /health stays open (a liveness probe tells nothing about the model).
  server.set_pre_routing_handler([key](const httplib::Request& req, httplib::Response& res) {
    if (key.empty() || !req.path.starts_with("/v1/") ||
        gate::bearer_matches(req.get_header_value("Authorization"), key))
      return httplib::Server::HandlerResponse::Unhandled;
    send(res, gate::unauthorized_reply());
    std::fprintf(stderr, "%s %s 401\n", req.method.c_str(), req.path.c_str());
    return httplib::Server::HandlerResponse::Handled;
  });
  server.Get("/health", [&](const httplib::Request&, httplib::Response& res) { send(res, chat.health()); });
  server.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) { send(res, chat.models()); });
  server.Post("/v1/chat/completions",
              [&](const httplib::Request& req, httplib::Response& res) { chat_completions(chat, req, res); });
}

Result<int> run_serve(const ServeFlags& f) {
  // SIGTERM/SIGINT are blocked in every thread and taken by one thread with
  // sigwait(), which stops the server outside signal context. The mask is
  // inherited, so it is set before the engine starts its worker threads.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
  ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up is a failed write, not the end of the server
  MB_ASSIGN(auto engine, load_engine(f));
  const fs::path model = fs::absolute(f.model).lexically_normal();
  std::string id = f.model_name.empty() ? model.filename().string() : f.model_name;
  if (id.empty()) id = model.parent_path().filename().string();
  gate::ChatServer chat(std::move(engine), id, f.max_tokens);

  httplib::Server server;
  add_routes(server, chat, f.api_key);
  const int port = f.port == 0 ? server.bind_to_any_port(f.host) : server.bind_to_port(f.host, f.port) ? f.port : -1;
  if (port < 0) return make_error(Errc::kIo, fmt::format("{}:{}", f.host, f.port), "cannot listen on this address");
  std::atomic<bool> stopping{false};
  std::thread stopper([&] {
    int sig = 0;
    sigwait(&stop_signals, &sig);
    stopping = true;
    chat.stop();  // ends queued and running generations, so the HTTP threads can finish
    server.stop();
  });
  if (f.api_key.empty() && !is_loopback(f.host))
    std::fprintf(stderr,
                 "warning: listening on %s without an API key: anyone who can reach this address can use the "
                 "model (set --api-key or MODELBUILD_API_KEY)\n",
                 f.host.c_str());
  std::printf("listening on http://%s:%d\n", f.host.c_str(), port);
  std::fflush(stdout);
  std::fprintf(stderr, "serving model '%s' (%s)\n", id.c_str(), f.model.c_str());
  const bool listened = server.listen_after_bind();
  if (!stopping) ::kill(::getpid(), SIGTERM);  // listening ended on its own: release the stopper
  stopper.join();
  if (!listened && !stopping) return make_error(Errc::kIo, fmt::format("{}:{}", f.host, port), "the server stopped");
  return 0;
}

}  // namespace

int serve_command(const std::vector<std::string>& args) {
  CLI::App app("Serve a model over an OpenAI-compatible HTTP API.", "serve");
  ServeFlags f;
  app.add_option(
         "--model", f.model,
         "model directory (config.json, tokenizer.json, *.safetensors), .gguf file, or directory holding one .gguf")
      ->required();
  app.add_option("--adapter", f.adapters, "LoRA adapter directory applied at run time (repeatable; \"\" = none)");
  app.add_option("--model-name", f.model_name, "model id reported by /v1/models (default: the directory's name)");
  app.add_option("--host", f.host, "address to listen on (default 127.0.0.1)");
  app.add_option("--port", f.port, "port to listen on; 0 picks a free one (default 8080)");
  app.add_option("--threads", f.threads, "worker threads (default: all cores)");
  app.add_option("--max-tokens", f.max_tokens, "default max_tokens of a request (default 256)");
  app.add_option("--api-key", f.api_key,
                 "require 'Authorization: Bearer KEY' on /v1/ requests (default: $MODELBUILD_API_KEY; none when "
                 "unset)");
  if (int rc = parse_args(app, args); rc >= 0) return rc;
  if (f.api_key.empty())
    if (const char* env = std::getenv("MODELBUILD_API_KEY")) f.api_key = env;
  auto rc = run_serve(f);
  if (!rc.ok()) return report_error(rc.error());
  return *rc;
}

}  // namespace mb::cli
