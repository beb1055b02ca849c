// A probe, not part of digits: libevent 2.1's evhttp answering GET /api/health the way `digits
// serve` does, with every limit evhttp 2.1 offers set as close to ours as it allows. bench/abuse/
// compare-evhttp runs the abusive clients against it, to compare it with Boost.Beast on the same
// machine (docs/http-server.md has the results).
//
//   g++ -O2 -std=c++20 bench/abuse/evhttp_probe.cpp -levent -o evhttp_probe && ./evhttp_probe
#include <arpa/inet.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cstdio>

int main() {
  event_base* base = event_base_new();
  evhttp* http = evhttp_new(base);
  // The timeout is per read and per write (a bufferevent's inactivity timeout), not a deadline for
  // the whole header: a client sending a byte a second never reaches it.
  evhttp_set_timeout(http, 10);
  evhttp_set_max_headers_size(http, 16 << 10);
  evhttp_set_max_body_size(http, 4 << 20);
  // No cap on connections in 2.1 (evhttp_set_max_connections arrived in 2.2).
  evhttp_set_gencb(
      http,
      [](evhttp_request* request, void*) {
        evbuffer* body = evbuffer_new();
        evbuffer_add_printf(body, "{\"model\":\"built-in model\",\"status\":\"ok\"}");
        evhttp_add_header(evhttp_request_get_output_headers(request), "Content-Type", "application/json");
        evhttp_send_reply(request, 200, "OK", body);
        evbuffer_free(body);
      },
      nullptr);
  evhttp_bound_socket* bound = evhttp_bind_socket_with_handle(http, "127.0.0.1", 0);
  if (!bound) {
    std::fprintf(stderr, "evhttp_probe: cannot bind 127.0.0.1\n");
    return 1;
  }
  sockaddr_in address{};
  socklen_t length = sizeof address;
  getsockname(evhttp_bound_socket_get_fd(bound), reinterpret_cast<sockaddr*>(&address), &length);
  std::printf("evhttp_probe: serving at http://127.0.0.1:%d/\n", ntohs(address.sin_port));
  std::fflush(stdout);
  event_base_dispatch(base);
  evhttp_free(http);
  event_base_free(base);
}
