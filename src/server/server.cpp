#include "server/server.hpp"

#include <httplib.h>

#include <atomic>
#include <chrono>
#include <thread>
#include <optional>
#include <regex>
#include <vector>

#include "digits/error.hpp"
#include "server/rate_limit.hpp"
#include "server/web_assets.hpp"

namespace digits::server {

using json = nlohmann::json;
using httplib::Request;
using httplib::Response;

namespace {

// The page may load only what the server itself serves: nothing from the internet, ever.
constexpr const char* kContentSecurityPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

// When the request being answered on this thread started: set as routing begins, read by the logger.
thread_local std::optional<std::chrono::steady_clock::time_point> request_start;

bool is_v2_path(const std::string& path) { return path == "/v2" || path.starts_with("/v2/"); }

// Our API's errors are {"error": {"code", "message"}}; the Open Inference Protocol's are
// {"error": "message"}, so /v2 clients get the shape their protocol promises.
void write_error(const Request& req, Response& res, int status, const std::string& code, const std::string& message) {
  res.status = status;
  const json body = is_v2_path(req.path) ? json{{"error", message}} : json{{"error", {{"code", code}, {"message", message}}}};
  res.set_content(body.dump(), "application/json");
}

void write_json(Response& res, const json& body) {
  // Replace, not throw, on a stray invalid UTF-8 byte (say, in a model file's metadata).
  res.set_content(body.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

std::string status_code_name(int status) {
  switch (status) {
    case 400: return "bad_request";
    case 404: return "not_found";
    case 405: return "method_not_allowed";
    case 413: return "payload_too_large";
    case 414: return "uri_too_long";
    case 416: return "range_not_satisfiable";
    default: return status >= 500 ? "internal_error" : "http_" + std::to_string(status);
  }
}

// Compares a secret in time that depends on the given text's length only, never on how much of it
// matches: a timing attacker learns nothing about the token.
bool same_secret(std::string_view given, std::string_view expected) {
  unsigned difference = given.size() != expected.size();
  for (std::size_t i = 0; i < given.size(); ++i)
    difference |= static_cast<unsigned char>(given[i]) ^ static_cast<unsigned char>(expected.empty() ? 0 : expected[i % expected.size()]);
  return difference == 0;
}

}  // namespace

struct Server::Impl {
  ServerOptions options;
  // Without a state directory the model never changes; with one the learner holds the live model.
  std::shared_ptr<const ServedModel> fixed;
  std::unique_ptr<Learner> learner;
  RateLimiter feedback_limit;
  httplib::Server http;
  std::atomic<bool> run_started = false, run_finished = false, stop_requested = false;

  // Every path we answer and with which method, so a known path with the wrong method is a 405
  // that names the right one, not a 404.
  struct Route {
    std::string method;
    std::regex pattern;
  };
  std::vector<Route> routes;

  Impl(ServedModel model, ServerOptions server_options) : options(std::move(server_options)), feedback_limit(options.feedback_per_minute) {
    if (options.learning)
      learner = std::make_unique<Learner>(std::move(model), *options.learning);
    else
      fixed = std::make_shared<const ServedModel>(std::move(model));
    configure();
    add_page_routes();
    add_api_routes();
    add_v2_routes();
  }

  using Answer = std::function<json(const Request&)>;

  // The model to answer with: the live one as this request starts; a swap during it changes nothing.
  std::shared_ptr<const ServedModel> served() const { return learner ? learner->live() : fixed; }

  // Registers a JSON endpoint. Every failure becomes a 4xx or 5xx JSON error; nothing escapes.
  void json_route(const std::string& method, const std::string& pattern, Answer answer, int success_status = 200) {
    routes.push_back({method, std::regex(pattern)});
    auto handler = [answer = std::move(answer), success_status](const Request& req, Response& res) {
      try {
        write_json(res, answer(req));
        res.status = success_status;
      } catch (const RequestError& e) {
        for (const auto& [name, value] : e.headers) res.set_header(name, value);
        write_error(req, res, e.status, e.code, e.what());
      } catch (const Error& e) {
        write_error(req, res, 400, "invalid_request", e.what());
      } catch (const std::bad_alloc&) {
        write_error(req, res, 503, "out_of_memory", "the server ran out of memory answering this request");
      } catch (const std::exception& e) {
        write_error(req, res, 500, "internal_error", e.what());
      }
    };
    if (method == "GET") http.Get(pattern, handler);
    if (method == "POST") http.Post(pattern, handler);
  }

  void configure() {
    http.new_task_queue = [threads = options.threads] { return new httplib::ThreadPool(static_cast<std::size_t>(threads)); };
    http.set_payload_max_length(options.max_body_bytes);
    http.set_read_timeout(options.read_timeout_seconds, 0);
    http.set_write_timeout(options.write_timeout_seconds, 0);
    http.set_keep_alive_timeout(options.keep_alive_seconds);
    // A benchmark or a busy page reuses its connections; httplib's default closes them every 5 requests.
    http.set_keep_alive_max_count(100000);
    // The response goes out as headers then body: without this, Nagle's algorithm holds the body
    // back until the client's delayed ACK, 40 ms later on Linux.
    http.set_tcp_nodelay(true);
    // httplib's default also sets SO_REUSEPORT, which lets a second server bind a port that is in
    // use and silently take half its connections. SO_REUSEADDR alone only allows a quick restart.
    http.set_socket_options([](socket_t socket) {
      const int yes = 1;
      ::setsockopt(socket, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    });

    http.set_pre_routing_handler([](const Request& req, Response& res) {
      request_start = std::chrono::steady_clock::now();
      // A POST with neither Content-Length nor chunked encoding has no body (RFC 9112 §6.3), but
      // httplib 0.11 would read one until the client closes or the read timeout: `curl -X POST`
      // without -d waited 5 s for a 400. Answer at once instead.
      if (req.method == "POST" && !req.has_header("Content-Length") && req.get_header_value("Transfer-Encoding").find("chunked") == std::string::npos) {
        write_error(req, res, 411, "length_required", "a POST needs a body with a Content-Length (send {} for an empty one)");
        return httplib::Server::HandlerResponse::Handled;
      }
      return httplib::Server::HandlerResponse::Unhandled;
    });

    http.set_error_handler(httplib::Server::HandlerWithResponse([this](const Request& req, Response& res) {
      if (!res.body.empty()) return httplib::Server::HandlerResponse::Unhandled;  // one of our JSON errors
      if (res.status == 404) {
        std::string allowed;
        for (const Route& route : routes)
          if (std::regex_match(req.path, route.pattern) && allowed.find(route.method) == std::string::npos)
            allowed += (allowed.empty() ? "" : ", ") + route.method;
        if (!allowed.empty()) {
          res.set_header("Allow", allowed.find("GET") != std::string::npos ? allowed + ", HEAD" : allowed);
          write_error(req, res, 405, "method_not_allowed", req.method + " is not allowed on " + req.path + "; use " + allowed);
          return httplib::Server::HandlerResponse::Handled;
        }
        write_error(req, res, 404, "not_found", "no such path: " + req.path);
        return httplib::Server::HandlerResponse::Handled;
      }
      std::string message = "the request could not be served (HTTP " + std::to_string(res.status) + ")";
      if (res.status == 413) {
        // httplib refuses form-encoded bodies over 8 KiB whatever the limit: say how to avoid that.
        message = req.get_header_value("Content-Type").starts_with("application/x-www-form-urlencoded")
                      ? "a form-encoded body is limited to 8 KiB; send JSON with Content-Type: application/json"
                      : "the request body is larger than the limit of " + std::to_string(options.max_body_bytes) + " bytes";
      }
      if (res.status == 400) message = "the request is not valid HTTP";
      if (res.status == 414) message = "the request's URI is too long";
      write_error(req, res, res.status, status_code_name(res.status), message);
      return httplib::Server::HandlerResponse::Handled;
    }));

    http.set_exception_handler([](const Request& req, Response& res, std::exception_ptr) {
      write_error(req, res, 500, "internal_error", "the server failed while answering this request");
    });

    if (options.log) {
      http.set_logger([log = options.log](const Request& req, const Response& res) {
        const std::string path = req.path.empty() ? "-" : req.path;
        if (request_start) {
          const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - *request_start).count();
          std::fprintf(log, "%s %s %d %.2f ms\n", req.method.c_str(), path.c_str(), res.status, ms);
        } else {
          std::fprintf(log, "%s %s %d - ms\n", req.method.empty() ? "-" : req.method.c_str(), path.c_str(), res.status);
        }
        request_start.reset();
      });
    }
  }

  void add_page_routes() {
    for (const WebAsset& asset : web_assets()) {
      auto serve_asset = [&asset](const Request&, Response& res) {
        res.set_content(asset.bytes.data(), asset.bytes.size(), std::string(asset.content_type).c_str());
        res.set_header("Content-Security-Policy", kContentSecurityPolicy);
        res.set_header("X-Content-Type-Options", "nosniff");
        res.set_header("Cache-Control", "no-cache");
      };
      const std::string path(asset.path);
      routes.push_back({"GET", std::regex(path)});
      http.Get(path, serve_asset);
      if (path == "/index.html") {
        routes.push_back({"GET", std::regex("/")});
        http.Get("/", serve_asset);
      }
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
  void require_admin(const Request& req) const {
    if (options.admin_token.empty())
      throw RequestError(403, "admin_disabled", "changing the model over HTTP is disabled: start the server with --admin-token or --admin-token-file");
    const std::string header = req.get_header_value("Authorization");
    constexpr std::string_view scheme = "Bearer ";
    if (header.empty())
      throw RequestError(401, "unauthorized", "this endpoint needs the admin token: send Authorization: Bearer <token>").with_header("WWW-Authenticate", "Bearer");
    if (!header.starts_with(scheme) || !same_secret(std::string_view(header).substr(scheme.size()), options.admin_token))
      throw RequestError(401, "unauthorized", "the admin token is wrong").with_header("WWW-Authenticate", "Bearer error=\"invalid_token\"");
  }

  void add_api_routes() {
    json_route("GET", "/api/health", [this](const Request&) { return health(*served()); });
    json_route("GET", "/api/model", [this](const Request&) { return model_info(*served(), learning_status()); });
    json_route("POST", "/api/predict", [this](const Request& req) { return predict_drawing(*served(), req.body); });
    json_route(
        "POST", "/api/feedback",
        [this](const Request& req) {
          Learner& learner = state();
          // Judged by the live model as this request starts; stored before the answer goes out.
          feedback::Judgement judgement = judge_drawing(*learner.live(), req.body);
          if (const int wait = feedback_limit.retry_after(req.remote_addr + "\n" + judgement.client_id); wait > 0)
            throw RequestError(429, "rate_limited",
                               "too many judgements from this client: at most " + std::to_string(options.feedback_per_minute) + " a minute; try again in " +
                                   std::to_string(wait) + " s")
                .with_header("Retry-After", std::to_string(wait));
          const std::string learning = learner.add(judgement);
          return feedback_answer(judgement, learning);
        },
        201);
    json_route("POST", "/api/model/rollback", [this](const Request& req) {
      require_admin(req);
      const std::optional<int> target = rollback_target(req.body);
      return json{{"version", state().rollback(target)}};
    });
    json_route(
        "POST", "/api/model/learn",
        [this](const Request& req) {
          require_admin(req);
          if (!state().learn_now()) throw RequestError(409, "learning_off", "learning from corrections is off: " + learning_status().disabled_reason);
          return json{{"learning", "started"}};
        },
        202);
  }

  void check_model_name(const Request& req) const {
    const std::string name = req.matches[1];
    if (name != kV2ModelName) throw RequestError(404, "model_not_found", "no model named '" + name + "'; this server serves '" + kV2ModelName + "'");
  }

  void add_v2_routes() {
    json_route("GET", "/v2", [](const Request&) { return v2_server_metadata(); });
    json_route("GET", "/v2/health/live", [](const Request&) { return json{{"live", true}}; });
    json_route("GET", "/v2/health/ready", [](const Request&) { return json{{"ready", true}}; });
    json_route("GET", "/v2/models/([^/]+)", [this](const Request& req) {
      check_model_name(req);
      return v2_model_metadata(*served());
    });
    json_route("GET", "/v2/models/([^/]+)/ready", [this](const Request& req) {
      check_model_name(req);
      return json{{"name", kV2ModelName}, {"ready", true}};
    });
    json_route("POST", "/v2/models/([^/]+)/infer", [this](const Request& req) {
      check_model_name(req);
      return v2_infer(*served(), req.body);
    });
  }
};

Server::Server(ServedModel model, ServerOptions options) : impl_(std::make_unique<Impl>(std::move(model), std::move(options))) {}
Server::~Server() = default;

int Server::bind() {
  const ServerOptions& options = impl_->options;
  const int port = options.port == 0 ? impl_->http.bind_to_any_port(options.host)
                                     : (impl_->http.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port < 0)
    throw Error("cannot listen on " + options.host + ":" + std::to_string(options.port) +
                ": the address is in use or not this machine's (try another --port, or --port 0 for any free one)");
  return port;
}

// httplib's stop() does nothing unless the server is already listening, so a signal that arrives
// between bind() and run() would be lost. These flags close that gap: run() returns at once if a
// stop came first, and stop() waits for a run() that has begun to be listening before stopping it.
void Server::run() {
  impl_->run_started = true;
  if (!impl_->stop_requested) impl_->http.listen_after_bind();
  impl_->run_finished = true;
}

void Server::stop() {
  impl_->stop_requested = true;
  if (!impl_->run_started) return;
  while (!impl_->http.is_running() && !impl_->run_finished) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  impl_->http.stop();
}

}  // namespace digits::server
