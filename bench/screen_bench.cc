// The cost of a screenshot and of the live view's change scan
// (docs/framebuffer.md, "Cost"): PNG encoding of a 1024x768 XRGB screen
// (base/png.h, as --screenshot and GET /screenshot do it) for three
// contents, and one pass of the row-by-row comparison vmm-vnc makes every
// 30 ms while a client is connected, over a screen that did not change.
// Medians of --runs runs (default 21). Not a test: it prints figures.
//
// Usage: build/bench/screen_bench [--runs N] [--width W] [--height H]
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "base/png.h"

namespace {

template <typename F>
double MedianMs(int runs, F&& body) {
  std::vector<double> times;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    body();
    times.push_back(
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start)
            .count());
  }
  std::sort(times.begin(), times.end());
  return times[times.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int runs = 21;
  uint32_t width = 1024, height = 768;
  for (int i = 1; i + 1 < argc; i += 2) {
    const std::string flag = argv[i];
    const long value = std::strtol(argv[i + 1], nullptr, 10);
    if (flag == "--runs") runs = static_cast<int>(value);
    if (flag == "--width") width = static_cast<uint32_t>(value);
    if (flag == "--height") height = static_cast<uint32_t>(value);
  }
  const uint32_t pitch = width * 4;
  std::vector<uint32_t> pixels(size_t{width} * height);

  struct Content {
    const char* name;
    void (*fill)(std::vector<uint32_t>&, uint32_t, uint32_t);
  };
  const Content contents[] = {
      {"solid (an empty console)", [](std::vector<uint32_t>& p, uint32_t,
                                      uint32_t) { std::fill(p.begin(), p.end(), 0x202020); }},
      {"text-like (8x16 cells, 1 in 3 lit)",
       [](std::vector<uint32_t>& p, uint32_t w, uint32_t h) {
         std::mt19937 random(1);
         for (uint32_t cy = 0; cy < h / 16; ++cy) {
           for (uint32_t cx = 0; cx < w / 8; ++cx) {
             const bool lit = random() % 3 == 0;
             for (uint32_t y = 0; y < 16; ++y) {
               for (uint32_t x = 0; x < 8; ++x) {
                 const bool on = lit && ((random() & 3) == 0);
                 p[(cy * 16 + y) * w + cx * 8 + x] = on ? 0xc0c0c0 : 0x000000;
               }
             }
           }
         }
       }},
      {"noise (worst case)",
       [](std::vector<uint32_t>& p, uint32_t, uint32_t) {
         std::mt19937 random(2);
         for (auto& v : p) v = random() & 0xffffff;
       }},
  };
  std::printf("screen %ux%u, %d runs, median\n", width, height, runs);
  for (const Content& content : contents) {
    content.fill(pixels, width, height);
    size_t bytes = 0;
    const double ms = MedianMs(runs, [&] {
      auto png = base::EncodeXrgbPng(reinterpret_cast<const uint8_t*>(pixels.data()), width, height,
                                     pitch);
      if (!png) {
        std::fprintf(stderr, "%s\n", png.error().message().c_str());
        std::exit(1);
      }
      bytes = png->size();
    });
    std::printf("screenshot (PNG) %-36s %8.2f ms  %8zu bytes\n", content.name, ms, bytes);
  }
  // vmm-vnc's scan of an unchanged screen: one memcmp per row against the
  // shadow copy (vmm/vnc/rfb_server.cc ScanForChanges).
  std::vector<uint32_t> shadow = pixels;
  volatile int differing = 0;
  const double scan = MedianMs(runs * 10, [&] {
    int rows = 0;
    for (uint32_t y = 0; y < height; ++y) {
      rows += std::memcmp(&pixels[size_t{y} * width], &shadow[size_t{y} * width], width * 4) != 0;
    }
    differing = rows;
  });
  std::printf(
      "vnc change scan, unchanged screen %25.3f ms  (every 30 ms with a client: %.1f%% "
      "of one core)\n",
      scan, scan / 30.0 * 100.0);
  return 0;
}
