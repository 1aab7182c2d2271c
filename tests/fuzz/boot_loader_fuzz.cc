// libFuzzer target for one boot protocol's whole loader: the input is the
// kernel image, handed to firmware::LoadKernel (firmware/boot.h) with
// --boot-protocol fixed at build time (VMM_FUZZ_PROTOCOL, e.g. kElf64), so
// each of the elf64, pvh, bzimage, multiboot, multiboot2, limine and bootboot targets drives
// its parser, its loader and the boot structures it builds (zero page, start
// info, multiboot info, page tables, MP table). A kernel image is untrusted
// input (docs/conventions.md): no image may crash vmm or make it write
// outside guest RAM; a refused image must say why.
//
// LoadKernel reads a path, so the image goes into a memfd (a regular file,
// as ReadImageFile requires) named by /proc/self/fd/N.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>

#include "base/guest_memory.h"
#include "firmware/boot.h"

#ifndef VMM_FUZZ_PROTOCOL
#error "define VMM_FUZZ_PROTOCOL to a firmware::BootProtocol enumerator (tests/fuzz/CMakeLists.txt)"
#endif

namespace {

// 32 MiB: room for a bzImage at its 16 MiB preferred address; every access
// goes through GuestMemory's checked accessors, so a smaller guest only
// means more refusals.
constexpr uint64_t kRam = 32 * base::MiB;

struct State {
  std::unique_ptr<base::GuestMemory> memory;
  int fd = -1;
  std::string path;
};

State& Get() {
  static State* state = [] {
    auto* s = new State;
    auto memory = base::GuestMemory::Create(kRam);
    if (!memory) std::abort();
    s->memory = std::move(*memory);
    s->fd = memfd_create("fuzz-kernel", MFD_CLOEXEC);
    if (s->fd < 0) std::abort();
    s->path = "/proc/self/fd/" + std::to_string(s->fd);
    return s;
  }();
  return *state;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  State& state = Get();
  if (ftruncate(state.fd, 0) != 0) std::abort();
  size_t done = 0;
  while (done < size) {
    const ssize_t n = pwrite(state.fd, data + done, size - done, static_cast<off_t>(done));
    if (n <= 0) std::abort();
    done += static_cast<size_t>(n);
  }
  firmware::BootConfig config;
  config.kernel_path = state.path;
  config.cmdline = "console=ttyS0 fuzz";
  config.protocol = firmware::BootProtocol::VMM_FUZZ_PROTOCOL;
  auto info = firmware::LoadKernel(*state.memory, config);
  if (info) {
    // What the vCPU set-up relies on: the image lies in guest RAM and the
    // protocol used is the one asked for.
    if (info->protocol != config.protocol) std::abort();
    if (info->kernel_end < info->kernel_start || info->kernel_end > kRam) std::abort();
  } else if (info.error().message().empty()) {
    std::abort();  // a refusal names what is wrong
  }
  return 0;
}
