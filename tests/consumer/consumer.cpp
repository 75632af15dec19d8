// SPDX-License-Identifier: MIT
// consumer.cpp - the installed header from C++ (extern "C", the anonymous
// union, the inline helpers), against a real pool. consumer POOL_NAME.
#include <mempool/mempool.h>

#include <cstdio>
#include <cstring>
#include <string>

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    mempool *p = nullptr;
    mempool_options o;
    mempool_options_init(&o);
    o.arena_bytes = 16u << 20;
    o.flags = MEMPOOL_OPEN_CREATE | MEMPOOL_OPEN_EXCL;
    int rc = mempool_open(argv[1], &o, &p);
    if (rc) {
        std::fprintf(stderr, "consumer++: open: %s\n", mempool_strerror(rc));
        return 1;
    }
    const std::string msg = "hello from C++";
    mempool_dref r;
    mempool_view v;
    mempool_column col{};
    bool ok = mempool_put(p, msg.data(), msg.size(), &r) == 0 &&
              mempool_get(p, r, &v) == 0 && v.len == msg.size() &&
              std::memcmp(v.data, msg.data(), msg.size()) == 0 &&
              mempool_release(p, &v) == 0 && mempool_delete(p, r) == 0;
    col.array.ndim = 1;  // the anonymous union is reachable from C++
    ok = ok && col.array.ndim == 1 && mempool_close(p) == 0 && mempool_destroy(argv[1]) == 0;
    std::printf("consumer++: %s (library %s)\n", ok ? "ok" : "FAILED",
                mempool_version());
    return ok ? 0 : 1;
}
