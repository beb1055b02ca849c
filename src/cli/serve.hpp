// `digits serve` and `digits app`: the drawing page and the JSON API over HTTP.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "commands.hpp"
#include "server/api.hpp"

namespace digits::cli {

struct ServeOptions {
  std::string host = "127.0.0.1";  // loopback: reachable from this machine only, unless told otherwise
  int port = 8080;                 // 0 picks a free port; the address printed says which
  std::string model;               // empty: the built-in pretrained model
  std::string state_dir;           // empty: feedback::default_state_dir()
  StoreFlags store;                // a PostgreSQL shared by replicas, instead of the state directory
  int store_connections = 4;
  std::string data;                // MNIST for learning; empty: $DIGITS_DATA, else data/mnist, else learning is off
  bool no_learning = false;
  int feedback_rate = 30;          // judgements per minute per client_id; 0: unlimited
  int feedback_rate_address = 120; // judgements per minute per remote address; 0: unlimited
  // Quotas (server::FeedbackQuotas): judgements per client_id and per address, the store's size in MiB; 0: none.
  long long quota_client = 2000, quota_address = 10000, quota_mib = 4096;
  std::int64_t max_image_pixels = server::kDefaultMaxImagePixels;  // an image's pixels, checked from its header
  std::size_t max_image_bytes = server::kDefaultMaxImageBytes;     // an image file's bytes, checked before base64 is decoded
  std::string admin_token, admin_token_file;
  // What strangers may spend (docs/security.md): the memory for request bodies in flight, in MiB;
  // one client's share of it and of the connections, in percent; the reverse proxies whose
  // X-Forwarded-For names the client.
  int memory_budget_mib = 256;
  int client_share_percent = 10;
  std::vector<std::string> trusted_proxies;
};

// Serves until SIGINT or SIGTERM, then stops cleanly and returns 0.
int run_serve(const ServeOptions& options);
// The same, and opens the page in the user's browser when one can be opened.
int run_app(const ServeOptions& options);

}  // namespace digits::cli
