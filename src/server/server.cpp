#include "server/server.hpp"

#include <functional>
#include <optional>
#include <string_view>
#include <vector>

#include "digits/error.hpp"
#include "server/rate_limit.hpp"
#include "server/web_assets.hpp"

namespace digits::server {

using json = nlohmann::json;

namespace {

// The page may load only what the server itself serves: nothing from the internet, ever.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

bool is_v2_path(std::string_view path) { return path == "/v2" || path.starts_with("/v2/"); }

// Our API's errors are {"error": {"code", "message"}}; the Open Inference Protocol's are
// {"error": "message"}, so /v2 clients get the shape their protocol promises.
HttpResponse error_response(const std::string& path, int status, const std::string& code, const std::string& message) {
  const json body = is_v2_path(path) ? json{{"error", message}} : json{{"error", {{"code", code}, {"message", message}}}};
  return {status, "application/json", body.dump(), {}};
}

HttpResponse json_response(int status, const json& body) {
  // Replace, not throw, on a stray invalid UTF-8 byte (say, in a model file's metadata).
  // answers::text is body.dump(-1, ' ', false, replace) to the byte, faster for long strings.
  return {status, "application/json", answers::text(body), {}};
}

// Compares a secret in time that depends on the given text's length only, never on how much of it
// matches: a timing attacker learns nothing about the token.
bool same_secret(std::string_view given, std::string_view expected) {
  unsigned difference = given.size() != expected.size();
  for (std::size_t i = 0; i < given.size(); ++i)
    difference |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(expected.empty() ? 0 : expected[i % expected.size()]);
  return difference == 0;
}

// A route's path: literal segments, and "*" for any one non-empty segment ("/v2/models/*/ready").
bool path_matches(std::string_view pattern, std::string_view path) {
  while (!pattern.empty() && !path.empty()) {
    const std::size_t pattern_end = std::min(pattern.find('/', 1), pattern.size()), path_end = std::min(path.find('/', 1), path.size());
    const std::string_view wanted = pattern.substr(0, pattern_end), given = path.substr(0, path_end);
    if (wanted == "/*" ? given.size() < 2 : wanted != given) return false;
    pattern.remove_prefix(pattern_end);
    path.remove_prefix(path_end);
  }
  return pattern.empty() && path.empty();
}

// The NAME of /v2/models/NAME/…
std::string v2_model_name(std::string_view path) {
  constexpr std::string_view prefix = "/v2/models/";
  const std::string_view rest = path.substr(prefix.size());
  return std::string(rest.substr(0, rest.find('/')));
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  // Without a state directory the model never changes; with one the learner holds the live model.
  std::shared_ptr<const ServedModel> fixed;
  std::unique_ptr<Learner> learner;
  RateLimiter feedback_limit;

  // Which thread answers a route: the event loop, for what takes microseconds and never blocks;
  // the worker pool, for decoding, inference, the feedback database and model files.
  enum class Runs { on_loop, on_workers };
  using Answer = std::function<json(const HttpRequest&)>;
  struct Route {
    std::string method;
    std::string pattern;  // see path_matches()
    Runs runs;
    std::function<HttpResponse(const HttpRequest&)> answer;
  };
  // Every path we answer and with which method, so a known path with the wrong method is a 405
  // that names the right one, not a 404.
  std::vector<Route> routes;
  std::unique_ptr<HttpServer> http;

  Impl(ServedModel model, ServerOptions server_options) : options(std::move(server_options)) {
    if (options.learning)
      learner = std::make_unique<Learner>(std::move(model), *options.learning);
    else
      fixed = std::make_shared<const ServedModel>(std::move(model));
    add_page_routes();
    add_api_routes();
    add_v2_routes();
    http = std::make_unique<HttpServer>(
        options.http, [this](HttpRequest& request) { return route(request); }, error_response, options.log);
  }

  // The model to answer with: the live one as this request starts; a swap during it changes nothing.
  std::shared_ptr<const ServedModel> served() const { return learner ? learner->live() : fixed; }

  // Runs on the loop: answers at once, or hands the route's work to the pool with the request.
  Routed route(HttpRequest& request) const {
    std::string allowed;
    for (const Route& candidate : routes) {
      if (!path_matches(candidate.pattern, request.path)) continue;
      if (candidate.method == request.method) {
        if (candidate.runs == Runs::on_loop) return {candidate.answer(request), {}};
        return {std::nullopt, [&answer = candidate.answer, request = std::move(request)] { return answer(request); }};
      }
      if (allowed.find(candidate.method) == std::string::npos) allowed += (allowed.empty() ? "" : ", ") + candidate.method;
    }
    if (allowed.empty()) return {error_response(request.path, 404, "not_found", "no such path: " + request.path), {}};
    HttpResponse refusal = error_response(request.path, 405, "method_not_allowed", request.method + " is not allowed on " + request.path + "; use " + allowed);
    refusal.headers.emplace_back("Allow", allowed.find("GET") != std::string::npos ? allowed + ", HEAD" : allowed);
    return {refusal, {}};
  }

  // Registers a JSON endpoint. Every failure becomes a 4xx or 5xx JSON error; nothing escapes.
  void json_route(const std::string& method, const std::string& pattern, Runs runs, Answer answer, int success_status = 200) {
    routes.push_back({method, pattern, runs, [answer = std::move(answer), success_status](const HttpRequest& request) {
                        try {
                          return json_response(success_status, answer(request));
                        } catch (const RequestError& e) {
                          HttpResponse refusal = error_response(request.path, e.status, e.code, e.what());
                          for (const auto& [name, value] : e.headers) refusal.headers.emplace_back(name, value);
                          return refusal;
                        } catch (const Error& e) {
                          return error_response(request.path, 400, "invalid_request", e.what());
                        } catch (const std::bad_alloc&) {
                          return error_response(request.path, 503, "out_of_memory", "the server ran out of memory answering this request");
                        } catch (const std::exception& e) {
                          return error_response(request.path, 500, "internal_error", e.what());
                        }
                      }});
  }

  void add_page_routes() {
    for (const WebAsset& asset : web_assets()) {
      auto serve_asset = [&asset](const HttpRequest&) {
        return HttpResponse{200,
                            std::string(asset.content_type),
                            std::string(asset.bytes),
                            {{"Content-Security-Policy", kContentSecurityPolicy}, {"X-Content-Type-Options", "nosniff"}, {"Cache-Control", "no-cache"}}};
      };
      const std::string path(asset.path);
      routes.push_back({"GET", path, Runs::on_loop, serve_asset});
      if (path == "/index.html") routes.push_back({"GET", "/", Runs::on_loop, serve_asset});
    }
  }

  LearningStatus learning_status() const {
    if (learner) return learner->status();
    LearningStatus status;
    status.disabled_reason = "the server keeps no state directory";
    return status;
  }

  Learner& state() const {
    if (!learner)
      throw RequestError(503, "feedback_unavailable", "this server keeps no state directory, so it cannot store judgements or change its model");
    return *learner;
  }

  // The endpoints that change the model need Authorization: Bearer <the token given at start-up>.
  void require_admin(const HttpRequest& request) const {
    if (options.admin_token.empty())
      throw RequestError(403, "admin_disabled", "changing the model over HTTP is disabled: start the server with --admin-token or --admin-token-file");
    const std::string& header = request.authorization;
    constexpr std::string_view scheme = "Bearer ";
    if (header.empty())
      throw RequestError(401, "unauthorized", "this endpoint needs the admin token: send Authorization: Bearer <token>").with_header("WWW-Authenticate", "Bearer");
    if (!header.starts_with(scheme) || !same_secret(std::string_view(header).substr(scheme.size()), options.admin_token))
      throw RequestError(401, "unauthorized", "the admin token is wrong").with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  }

  // Both buckets must allow: the address's (rotating client_ids does not escape it) and the
  // client_id's (an empty one is every anonymous client's, so it is not counted alone).
  void check_feedback_rate(const std::string& address, const std::string& client_id) {
    std::vector<RateLimiter::Limit> limits = {{"address\n" + address, options.feedback_per_minute_per_address}};
    if (!client_id.empty()) limits.push_back({"client\n" + client_id, options.feedback_per_minute});
    const RateLimiter::Verdict verdict = feedback_limit.check(limits);
    if (verdict.retry_after == 0) return;
    const bool by_address = verdict.refused_by == 0;
    const int rate = by_address ? options.feedback_per_minute_per_address : options.feedback_per_minute;
    throw RequestError(429, "rate_limited",
                       std::string("too many judgements from this ") + (by_address ? "address" : "client") + ": at most " + std::to_string(rate) +
                           " a minute; try again in " + std::to_string(verdict.retry_after) + " s")
        .with_header("Retry-After", std::to_string(verdict.retry_after));
  }

  void add_api_routes() {
    json_route("GET", "/api/health", Runs::on_loop, [this](const HttpRequest&) { return health(*served()); });
    json_route("GET", "/api/model", Runs::on_loop, [this](const HttpRequest&) { return model_info(*served(), learning_status()); });
    json_route("POST", "/api/predict", Runs::on_workers, [this](const HttpRequest& request) { return predict_drawing(*served(), request.body, options.request_limits); });
    json_route("POST", "/api/read", Runs::on_workers, [this](const HttpRequest& request) { return read_drawing(*served(), request.body, options.request_limits); });
    json_route(
        "POST", "/api/feedback", Runs::on_workers,
        [this](const HttpRequest& request) {
          Learner& learner = state();
          // The cheap checks first, then the rate limit and the quotas, and only then decoding
          // and inference: a refused judgement costs a JSON parse, never an image's decode.
          const JudgementRequest parsed = parse_judgement(request.body);
          check_feedback_rate(request.remote_address, parsed.client_id);
          learner.check_quota(parsed.client_id, request.remote_address);
          // Judged by the live model as this request starts; stored before the answer goes out.
          feedback::Judgement judgement = judge_drawing(*learner.live(), parsed, options.request_limits);
          judgement.client_address = request.remote_address;
          const std::string learning = learner.add(judgement);
          return feedback_answer(judgement, learning);
        },
        201);
    json_route("POST", "/api/model/rollback", Runs::on_workers, [this](const HttpRequest& request) {
      require_admin(request);
      const std::optional<int> target = rollback_target(request.body);
      return json{{"version", state().rollback(target)}};
    });
    json_route(
        "POST", "/api/model/learn", Runs::on_workers,
        [this](const HttpRequest& request) {
          require_admin(request);
          if (!state().learn_now()) throw RequestError(409, "learning_off", "learning from corrections is off: " + learning_status().disabled_reason);
          return json{{"learning", "started"}};
        },
        202);
  }

  void check_model_name(const HttpRequest& request) const {
    const std::string name = v2_model_name(request.path);
    if (name != kV2ModelName) throw RequestError(404, "model_not_found", "no model named '" + name + "'; this server serves '" + kV2ModelName + "'");
  }

  void add_v2_routes() {
    json_route("GET", "/v2", Runs::on_loop, [](const HttpRequest&) { return v2_server_metadata(); });
    json_route("GET", "/v2/health/live", Runs::on_loop, [](const HttpRequest&) { return json{{"live", true}}; });
    json_route("GET", "/v2/health/ready", Runs::on_loop, [](const HttpRequest&) { return json{{"ready", true}}; });
    json_route("GET", "/v2/models/*", Runs::on_loop, [this](const HttpRequest& request) {
      check_model_name(request);
      return v2_model_metadata(*served());
    });
    json_route("GET", "/v2/models/*/ready", Runs::on_loop, [this](const HttpRequest& request) {
      check_model_name(request);
      return json{{"name", kV2ModelName}, {"ready", true}};
    });
    json_route("POST", "/v2/models/*/infer", Runs::on_workers, [this](const HttpRequest& request) {
      check_model_name(request);
      return v2_infer(*served(), request.body);
    });
  }
};

Server::Server(ServedModel model, ServerOptions options) : impl_(std::make_unique<Impl>(std::move(model), std::move(options))) {}
Server::~Server() = default;

int Server::bind() { return impl_->http->bind(impl_->options.host, impl_->options.port); }
void Server::run() { impl_->http->run(); }
void Server::stop() { impl_->http->stop(); }

}  // namespace digits::server
