// A driver for LLVMFuzzerTestOneInput where libFuzzer is unavailable (GCC;
// Debian 12's clang 14 cannot compile libstdc++ 12's <expected>). It mutates
// valid seed images (ELF64, ELF32+PVH, bzImage, multiboot) with a fixed seed
// and feeds them through the fuzz target, so every build exercises the
// parsers on tens of thousands of broken images. Arguments: files to run
// once each (a corpus or a crash reproducer); without arguments, the
// mutation run.
#include <cstdint>
#include <cstdio>
#include <vector>

#include "firmware/image_file.h"
#include "firmware/multiboot.h"
#include "tests/fuzz/mutation_run.h"
#include "tests/unit/firmware/test_images.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

int main(int argc, char** argv) {
  if (argc > 1) {
    for (int i = 1; i < argc; ++i) {
      auto data = firmware::ReadImageFile(argv[i], "input", firmware::kMaxKernelImageBytes);
      if (!data) {
        std::fprintf(stderr, "%s\n", data.error().ToString().c_str());
        return 66;
      }
      LLVMFuzzerTestOneInput(data->data(), data->size());
    }
    return 0;
  }
  using firmware::testing::PutAt;
  std::vector<std::vector<uint8_t>> seeds;
  seeds.push_back(firmware::testing::ElfBuilder().Build());
  {
    firmware::testing::ElfBuilder pvh;
    pvh.is64 = false;
    pvh.notes.push_back({"Xen", 18, {0x40, 0x00, 0x10, 0x00}});
    pvh.notes.push_back({"GNU", 3, std::vector<uint8_t>(20, 1)});
    seeds.push_back(pvh.Build());
  }
  {
    firmware::testing::BzImageBuilder bz;
    bz.kernel_size = 0x2000;
    seeds.push_back(bz.Build());
  }
  {
    std::vector<uint8_t> mb(0x800, 0x90);
    const uint32_t flags = firmware::kMultibootAoutKludge | firmware::kMultibootMemoryInfo;
    PutAt<uint32_t>(mb, 0, firmware::kMultibootHeaderMagic);
    PutAt<uint32_t>(mb, 4, flags);
    PutAt<uint32_t>(mb, 8, 0u - firmware::kMultibootHeaderMagic - flags);
    PutAt<uint32_t>(mb, 12, 0x100000);
    PutAt<uint32_t>(mb, 16, 0x100000);
    PutAt<uint32_t>(mb, 20, 0x100800);
    PutAt<uint32_t>(mb, 24, 0x101000);
    PutAt<uint32_t>(mb, 28, 0x100020);
    seeds.push_back(mb);
  }
  constexpr int kRunsPerSeed = 20000;
  fuzz_smoke::RunMutations(seeds, kRunsPerSeed, {.hot = 0x300, .keep = 0}, LLVMFuzzerTestOneInput);
  std::printf("boot_image_fuzz_smoke: %zu seeds x %d mutations, no crash\n", seeds.size(),
              kRunsPerSeed);
  return 0;
}
