// PeerWatch: notices that an HTTP client closed its connection while the
// gateway works on its request, and cancels the gRPC call behind it, so that
// the router stops generating (or drops the queued request) within a step.
//
// cpp-httplib 0.11 (Debian 12) does not tell a handler that its client left:
// a non-streamed request only finds out when the answer cannot be written,
// after generating all of it. The handler knows its connection's addresses
// (Request::remote_addr/remote_port/local_port), so FindConnectionSocket
// finds the socket among the process's descriptors, and a small thread
// polls it for POLLRDHUP/POLLHUP while the call runs.
//
// Thread-safety: one PeerWatch per request, owned by the handler's thread.
#ifndef MOE_GATEWAY_PEER_WATCH_H_
#define MOE_GATEWAY_PEER_WATCH_H_

#include <atomic>
#include <functional>
#include <string>
#include <thread>

namespace moe {

// The descriptor of this process's TCP socket with local port `local_port`
// and peer `remote_addr`:`remote_port`; -1 when none is found.
int FindConnectionSocket(const std::string& remote_addr, int remote_port, int local_port);

class PeerWatch {
 public:
  // Calls `on_hangup` (once, from the watch thread) when the peer of `fd`
  // closes or resets the connection. fd < 0: watches nothing.
  PeerWatch(int fd, std::function<void()> on_hangup);
  ~PeerWatch();  // stops watching; returns after the thread ended
  PeerWatch(const PeerWatch&) = delete;
  PeerWatch& operator=(const PeerWatch&) = delete;

  bool hung_up() const { return hung_up_.load(); }

 private:
  std::atomic<bool> stop_{false};
  std::atomic<bool> hung_up_{false};
  std::thread thread_;
};

}  // namespace moe

#endif  // MOE_GATEWAY_PEER_WATCH_H_
