// boot_image_dump: runs firmware::LoadKernel on a fresh GuestMemory, as vmm
// does before it creates the vCPUs, and writes what the guest would start
// with: the RAM below min(RAM, 3 GiB) as a raw file, and the BootInfo (the
// boot vCPU's state, the APs', the protocol) as JSON. tests/qemu/qemu_boot.py
// replays both on an emulated CPU (docs/testing.md, "Boot checks under QEMU").
//
// Usage: boot_image_dump --kernel FILE [--initrd FILE]... [--cmdline TEXT]
//          [--memory SIZE] [--cpus N] [--boot-protocol NAME] [--acpi on|off]
//          --ram-out FILE --json-out FILE
// Exit status: 0, or the ErrorKind of the failure (docs/architecture.md,
// "Exit status"): 64 for a bad flag, LoadKernel's own status otherwise.
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <span>
#include <string>
#include <string_view>

#include "base/error.h"
#include "base/guest_memory.h"
#include "base/layout.h"
#include "firmware/boot.h"

namespace {

struct Options {
  firmware::BootConfig boot;
  uint64_t memory = 256 * base::MiB;
  std::string ram_out;
  std::string json_out;
};

nlohmann::json SegmentJson(const firmware::SegmentState& s) {
  return {{"base", s.base},
          {"limit", s.limit},
          {"selector", s.selector},
          {"type", s.type},
          {"present", s.present},
          {"dpl", s.dpl},
          {"db", s.db},
          {"s", s.s},
          {"l", s.l},
          {"g", s.g},
          {"avl", s.avl},
          {"unusable", s.unusable}};
}

nlohmann::json CpuJson(const firmware::CpuBootState& cpu) {
  nlohmann::json msrs = nlohmann::json::array();
  for (const auto& [index, value] : cpu.msrs) msrs.push_back({index, value});
  return {{"rip", cpu.rip},
          {"rsp", cpu.rsp},
          {"rbp", cpu.rbp},
          {"rflags", cpu.rflags},
          {"rax", cpu.rax},
          {"rbx", cpu.rbx},
          {"rsi", cpu.rsi},
          {"rdi", cpu.rdi},
          {"cr0", cpu.cr0},
          {"cr3", cpu.cr3},
          {"cr4", cpu.cr4},
          {"efer", cpu.efer},
          {"cs", SegmentJson(cpu.cs)},
          {"ds", SegmentJson(cpu.ds)},
          {"es", SegmentJson(cpu.es)},
          {"fs", SegmentJson(cpu.fs)},
          {"gs", SegmentJson(cpu.gs)},
          {"ss", SegmentJson(cpu.ss)},
          {"tr", SegmentJson(cpu.tr)},
          {"ldt", SegmentJson(cpu.ldt)},
          {"gdt", {{"base", cpu.gdt.base}, {"limit", cpu.gdt.limit}}},
          {"idt", {{"base", cpu.idt.base}, {"limit", cpu.idt.limit}}},
          {"msrs", msrs}};
}

base::Error Usage(const std::string& message) {
  return base::Error(base::ErrorKind::kUsage, message);
}

base::Result<Options> ParseOptions(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    std::string_view flag = argv[i];
    if (i + 1 >= argc) return std::unexpected(Usage(std::string(flag) + " needs a value"));
    std::string value = argv[++i];
    if (flag == "--kernel") {
      options.boot.kernel_path = value;
    } else if (flag == "--initrd") {
      options.boot.initrd_paths.push_back(value);
    } else if (flag == "--cmdline") {
      options.boot.cmdline = value;
    } else if (flag == "--memory") {
      options.memory = TRY_CTX(base::ParseSize(value), "--memory");
    } else if (flag == "--cpus") {
      char* end = nullptr;
      unsigned long cpus = std::strtoul(value.c_str(), &end, 10);
      if (value.empty() || *end != '\0' || cpus == 0 || cpus > base::kMaxCpus) {
        return std::unexpected(
            Usage("--cpus " + value + ": expected 1.." + std::to_string(base::kMaxCpus)));
      }
      options.boot.cpus = static_cast<uint32_t>(cpus);
    } else if (flag == "--boot-protocol") {
      options.boot.protocol = TRY_CTX(firmware::ParseBootProtocol(value), "--boot-protocol");
    } else if (flag == "--acpi") {
      if (value != "on" && value != "off") {
        return std::unexpected(Usage("--acpi " + value + ": expected on or off"));
      }
      options.boot.acpi = value == "on";
    } else if (flag == "--ram-out") {
      options.ram_out = value;
    } else if (flag == "--json-out") {
      options.json_out = value;
    } else {
      return std::unexpected(Usage("unknown flag " + std::string(flag)));
    }
  }
  if (options.boot.kernel_path.empty() || options.ram_out.empty() || options.json_out.empty()) {
    return std::unexpected(Usage("--kernel, --ram-out and --json-out are required"));
  }
  return options;
}

base::Result<void> WriteFile(const std::string& path, std::span<const uint8_t> bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()),
            static_cast<std::streamsize>(bytes.size()));
  out.close();
  if (!out) return std::unexpected(base::Error(base::ErrorKind::kInternal, "cannot write " + path));
  return {};
}

base::Result<void> Run(int argc, char** argv) {
  const Options options = TRY(ParseOptions(argc, argv));
  auto memory = TRY(base::GuestMemory::Create(options.memory));
  const firmware::BootInfo info = TRY(firmware::LoadKernel(*memory, options.boot));

  // The first region is [0, min(RAM, 3 GiB)) (base/guest_memory.h).
  const uint64_t low_size = std::min(options.memory, base::kMmioHoleStart);
  TRY(WriteFile(options.ram_out, TRY(memory->Span(0, low_size))));

  nlohmann::json aps = nlohmann::json::array();
  for (const auto& ap : info.aps) aps.push_back(CpuJson(ap));
  const nlohmann::json doc = {{"protocol", firmware::BootProtocolName(info.protocol)},
                              {"description", info.description},
                              {"memory", options.memory},
                              {"ram_dumped", low_size},
                              {"kernel_start", info.kernel_start},
                              {"kernel_end", info.kernel_end},
                              {"initrd_start", info.initrd_start},
                              {"initrd_end", info.initrd_end},
                              {"boot_params", info.boot_params},
                              {"acpi_rsdp", info.acpi_rsdp},
                              {"cpu", CpuJson(info.cpu)},
                              {"aps", aps}};
  const std::string text = doc.dump(2) + "\n";
  TRY(WriteFile(options.json_out,
                std::span(reinterpret_cast<const uint8_t*>(text.data()), text.size())));
  return {};
}

}  // namespace

int main(int argc, char** argv) {
  auto result = Run(argc, argv);
  if (!result) {
    std::fprintf(stderr, "boot_image_dump: %s\n", result.error().ToString().c_str());
    return result.error().exit_status();
  }
  return 0;
}
