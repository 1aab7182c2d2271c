// vmm: command line entry (docs/architecture.md, "Command line").
#include <fcntl.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <optional>

#include "base/fd_hygiene.h"
#include "base/guest_memory.h"
#include "base/sandbox/seccomp.h"
#include "firmware/boot.h"
#include "vmm/boot_trace.h"
#include "vmm/config.h"
#include "vmm/confine.h"
#include "vmm/console/attach.h"
#include "vmm/jail.h"
#include "vmm/suite/suite.h"
#include "vmm/vm.h"

namespace {

constexpr int kExitUsage = 64;

// Flags as given on the command line; unset ones leave the config file's (or
// the default) value alone.
struct Flags {
  std::optional<std::string> config_file;
  std::optional<std::string> kernel;
  std::vector<std::string> initrds;
  std::optional<std::string> cmdline;
  std::optional<std::string> memory;
  std::optional<uint32_t> cpus;
  std::optional<std::string> serial;
  std::optional<std::string> console;
  std::vector<std::string> disks;
  bool rng = false;
  std::optional<std::string> api_sock;
  std::optional<double> timeout;
  bool boot_trace = false;
  std::optional<std::string> log_level;
  std::optional<std::string> boot_protocol;
  std::optional<std::string> cpu_template;
  std::optional<std::string> debugcon;
  std::optional<std::string> exit_code;
  std::optional<std::string> acpi;
  std::optional<std::string> framebuffer;
  std::optional<std::string> screenshot;
  std::optional<std::string> vnc;
  std::optional<std::string> seccomp;
  std::optional<std::string> jail;  // --jail DIR --uid U --gid G (vmm/jail.h)
  std::optional<std::string> uid;
  std::optional<std::string> gid;
};

base::Result<vmm::VmConfig> BuildConfig(const Flags& flags) {
  vmm::VmConfig config;
  if (flags.config_file) config = TRY(vmm::LoadConfigFile(*flags.config_file));
  if (flags.kernel) config.kernel = *flags.kernel;
  if (!flags.initrds.empty()) config.initrds = flags.initrds;
  if (flags.cmdline) config.cmdline = *flags.cmdline;
  if (flags.memory) {
    config.memory = TRY_CTX(base::ParseSize(*flags.memory), "--memory");
  }
  if (flags.cpus) config.cpus = *flags.cpus;
  // Every string becomes its type here, once; nothing later parses it again.
  if (flags.serial) config.serial = TRY(vmm::ParseSerialSpec(*flags.serial, "--serial"));
  if (flags.console) config.console = TRY(vmm::ParseSerialSpec(*flags.console, "--console"));
  for (const auto& disk : flags.disks) config.disks.push_back(TRY(vmm::ParseDiskSpec(disk)));
  if (flags.rng) config.rng = true;
  if (flags.api_sock) config.api_sock = *flags.api_sock;
  if (flags.timeout) {
    TRY(vmm::CheckTimeout(*flags.timeout, base::ErrorKind::kUsage, "--timeout"));
    config.timeout_seconds = *flags.timeout;
  }
  if (flags.boot_trace) config.boot_trace = true;
  if (flags.log_level) config.log_level = *flags.log_level;
  if (flags.boot_protocol) {
    config.boot_protocol =
        TRY_CTX(firmware::ParseBootProtocol(*flags.boot_protocol), "--boot-protocol");
  }
  if (flags.cpu_template) {
    config.cpu_template = TRY_CTX(vmm::ParseCpuTemplate(*flags.cpu_template), "--cpu-template");
  }
  if (flags.debugcon) {
    config.debugcon = TRY_CTX(devices::ParseDebugconSpec(*flags.debugcon), "--debugcon");
  }
  if (flags.exit_code) config.exit_code = TRY(vmm::ParseExitCodeMode(*flags.exit_code));
  if (flags.acpi) config.acpi = TRY(vmm::ParseOnOff(*flags.acpi, "--acpi"));
  if (flags.framebuffer) config.framebuffer = TRY(vmm::ParseFramebufferSpec(*flags.framebuffer));
  if (flags.screenshot) config.screenshot = *flags.screenshot;
  if (flags.vnc) config.vnc = TRY(vmm::ParseVncSpec(*flags.vnc, "--vnc"));
  if (flags.seccomp)
    config.seccomp = TRY(base::sandbox::ParseSeccompMode(*flags.seccomp, "--seccomp"));
  if (config.kernel.empty()) {
    return base::MakeError(base::ErrorKind::kUsage,
                           "no kernel: give --kernel PATH or a --config file with \"kernel\"");
  }
  return config;
}

int Fail(const base::Error& error) {
  spdlog::error("{}", error.ToString());
  return error.exit_status();
}

int RunVm(const Flags& flags) {
  auto jail = vmm::ParseJailFlags(flags.jail, flags.uid, flags.gid);
  if (!jail) return Fail(jail.error());
  auto config = BuildConfig(flags);
  if (!config) return Fail(config.error());
  auto level = spdlog::level::from_str(config->log_level);
  if (level == spdlog::level::off && config->log_level != "off") {
    return Fail(base::Error(base::ErrorKind::kUsage,
                            fmt::format("unknown log level '{}' (trace, debug, info, warn, error, "
                                        "critical, off)",
                                        config->log_level)));
  }
  spdlog::set_level(level);
  vmm::boot_trace::Enable(config->boot_trace);

  // First, while vmm has one thread: returns in the jailed vmm only (the
  // supervisor outside exits with its status; docs/security.md, "Jail").
  if (*jail) {
    if (auto entered = vmm::EnterJailFor(*config, **jail); !entered) return Fail(entered.error());
  }
  // Before the VM is built: the block workers start inside Create.
  if (auto seccomp = base::sandbox::ConfigureSeccomp(config->seccomp); !seccomp) {
    return Fail(seccomp.error());
  }
  auto vm = vmm::Vm::Create(*config);
  if (!vm) return Fail(vm.error());
  if (!config->screenshot.empty()) {
    // Said now rather than when the guest ends: the picture cannot exist.
    if ((*vm)->framebuffer() == nullptr) {
      return Fail(base::Error(base::ErrorKind::kUsage,
                              "--screenshot: the guest has no framebuffer (its kernel asked for "
                              "none); give --framebuffer WxH"));
    }
    // Created (and checked writable) before Landlock confines vmm to it.
    const int fd = open(config->screenshot.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) {
      return Fail(base::Error(
          base::ErrorKind::kNoInput,
          fmt::format("--screenshot {}: {}", config->screenshot, std::strerror(errno))));
    }
    close(fd);
  }
  // Every file is open; the threads that run the guest start after this.
  if (auto confined = vmm::ConfineAfterBuild(*config); !confined) return Fail(confined.error());
  if (config->boot_trace) {
    std::fprintf(stderr, "boot-trace: cpu-template %s\n",
                 std::string(vmm::CpuTemplateName((*vm)->cpu_template())).c_str());
    const firmware::BootInfo& boot = (*vm)->boot_info();
    std::fprintf(stderr, "boot-trace: boot-protocol %s (%s)\n",
                 firmware::BootProtocolName(boot.protocol), boot.description.c_str());
  }
  vmm::VmExit exit = (*vm)->Run();
  if (!config->screenshot.empty()) {
    // The guest has stopped: the picture is the last one it drew.
    if (auto shot = (*vm)->Screenshot(config->screenshot); !shot) {
      spdlog::error("--screenshot: {}", shot.error().message());
    }
  }
  vm->reset();  // restores the terminal before we print
  if (exit.abnormal) {
    spdlog::error("{}", exit.reason);
    if (!exit.details.empty()) std::fputs(exit.details.c_str(), stderr);
  } else {
    spdlog::info("{} (status {})", exit.reason, exit.status);
  }
  return exit.status;
}

}  // namespace

int main(int argc, char** argv) {
  // Before anything is opened: nothing a caller leaked to vmm stays open for
  // the life of the VM or reaches a child (base/fd_hygiene.h).
  const int inherited = base::CloseFdsFrom(STDERR_FILENO + 1);
  // A closed stdout must not kill vmm: the console counts the lost bytes.
  std::signal(SIGPIPE, SIG_IGN);
  auto logger = spdlog::stderr_color_mt("vmm");
  logger->set_pattern("vmm: %^%l%$: %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(spdlog::level::warn);
  if (inherited > 0) spdlog::debug("closed {} inherited file descriptors", inherited);

  CLI::App app{"vmm: a KVM virtual machine monitor that plays the BIOS itself"};
  app.set_help_flag("-h,--help", "Print this help and exit");
  app.footer(
      "Exit status: 0..63 the guest's exit-port value (0 also: power off or reset); 64 usage; "
      "65 bad kernel image; 66 file not found; 69 KVM unavailable; 70 internal error; 78 bad "
      "config; 80 triple fault; 81 KVM internal error or failed emulation; 82 --timeout "
      "elapsed; 83 a forbidden system call (seccomp); 130/143 SIGINT/SIGTERM. With --jail the "
      "supervisor exits with the jailed vmm's status.");
  Flags flags;
  app.add_option("--kernel", flags.kernel,
                 "Kernel image: ELF64, PVH ELF, bzImage, multiboot or multiboot2");
  app.add_option("--initrd", flags.initrds,
                 "Initial ramdisk (repeat for several multiboot modules)");
  app.add_option("--cmdline", flags.cmdline, "Kernel command line");
  app.add_option("--memory", flags.memory, "Guest RAM, with K/M/G suffix (default 128M)");
  app.add_option("--cpus", flags.cpus, "Number of vCPUs (default 1)");
  app.add_option("--config", flags.config_file,
                 "JSON file with the same fields; flags override it, relative paths resolve "
                 "against its folder");
  app.add_option("--serial", flags.serial,
                 "COM1 backend: stdio (default), file:PATH, socket:PATH or none");
  app.add_option("--console", flags.console,
                 "virtio-console backend: stdio, file:PATH, socket:PATH or none (default); only "
                 "one of --serial and --console may be stdio");
  app.add_option("--disk", flags.disks, "virtio-blk disk image PATH[,ro] (repeatable)");
  app.add_flag("--rng", flags.rng, "Add a virtio-rng device");
  app.add_option("--api-sock", flags.api_sock, "Serve the control API on this Unix socket");
  app.add_option("--timeout", flags.timeout,
                 "Stop the guest after SECONDS, 0..1e9 (exit status 82; 0: no timeout)");
  app.add_flag("--boot-trace", flags.boot_trace, "Print boot milestones with timestamps on stderr");
  app.add_option("--log-level", flags.log_level,
                 "trace, debug, info, warn (default), error, critical or off");
  app.add_option(
      "--boot-protocol", flags.boot_protocol,
      "Force a boot path: " + firmware::BootProtocolChoices() +
          " (auto is the default; bzimage-unpacked decompresses a bzImage in vmm and enters its "
          "vmlinux: docs/boot-protocols.md)");
  app.add_option("--cpu-template", flags.cpu_template,
                 "CPUID profile: auto (default, probed), host or emulated");
  app.add_option("--debugcon", flags.debugcon,
                 "Debug console on port 0xE9 (Bochs/QEMU -debugcon): stdio, file:PATH or none "
                 "(default); reads of 0xE9 return 0xE9");
  app.add_option("--exit-code", flags.exit_code,
                 "What a write of v to the exit port 0xf4 ends vmm with: vmm (default: v, 0..63) "
                 "or qemu ((v << 1) | 1, as QEMU's isa-debug-exit)");
  app.add_option("--framebuffer", flags.framebuffer,
                 "Linear framebuffer (32-bit XRGB at 0xe0000000): auto (default: 1024x768 when the "
                 "kernel asks for one through Limine, multiboot2 or BOOTBOOT), WxH (always, also "
                 "Linux's screen_info) or off");
  app.add_option("--screenshot", flags.screenshot,
                 "Write a PNG of the framebuffer to FILE when the guest ends, whatever the reason");
  app.add_option("--vnc", flags.vnc,
                 "Live view of the framebuffer over VNC, with the client's keys typed on the "
                 "guest's PS/2 keyboard: :N (127.0.0.1, port 5900+N), HOST:N (an IPv4 address, "
                 "0.0.0.0 for every interface), unix:PATH, or off (default). No password: keep "
                 "it on localhost or a Unix socket (docs/framebuffer.md)");
  app.add_option("--acpi", flags.acpi,
                 "ACPI tables (RSDP, XSDT, FADT, MADT, DSDT) handed to the guest: on (default) or "
                 "off (the MP table alone, as for pre-ACPI kernels)");

  app.add_option("--seccomp", flags.seccomp,
                 "Per-thread seccomp filters: kill (default: a forbidden system call ends vmm "
                 "with status 83 and a line naming the thread and the call), log (the kernel "
                 "logs it and lets it run: for developing) or off");

  app.add_option("--jail", flags.jail,
                 "Run the VM in a jail built in the empty, root-owned directory DIR: own mount, "
                 "pid, net, IPC and UTS namespaces, only the files the VM uses bound in, as "
                 "--uid/--gid with no capabilities; needs root (docs/security.md, \"Jail\")");
  app.add_option("--uid", flags.uid, "With --jail: the unprivileged uid vmm runs as (not 0)");
  app.add_option("--gid", flags.gid, "With --jail: the unprivileged gid vmm runs as (not 0)");

  std::string attach_socket;
  CLI::App* attach = app.add_subcommand("attach",
                                        "Attach this terminal to a guest's serial "
                                        "console socket (--serial socket:PATH)");
  attach->add_option("socket", attach_socket, "The console socket")->required();
  std::string tool_seccomp = "kill";
  attach->add_option("--seccomp", tool_seccomp,
                     "kill (default), log or off: this process's own seccomp filter");

  vmm::suite::SuiteOptions suite_options;
  CLI::App* suite = app.add_subcommand("suite", "Run the guest boot regression suite");
  vmm::suite::AddSuiteOptions(suite, &suite_options);
  suite->add_option("--seccomp", tool_seccomp,
                    "kill (default), log or off: the runner's own seccomp filter (vmm children "
                    "load theirs on top of it)");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    int status = app.exit(error);
    return status == 0 ? 0 : kExitUsage;
  }

  if (attach->parsed() || suite->parsed()) {
    auto mode = base::sandbox::ParseSeccompMode(tool_seccomp, "--seccomp");
    if (!mode) return Fail(mode.error());
    if (auto configured = base::sandbox::ConfigureSeccomp(*mode); !configured) {
      return Fail(configured.error());
    }
  }
  if (attach->parsed()) return vmm::AttachMain(attach_socket);
  if (suite->parsed()) {
    // Before any case is read; vmm children inherit it (docs/security.md).
    base::sandbox::EnterThreadOrDie(base::sandbox::ThreadKind::kSuite);
    std::error_code ec;
    auto self = std::filesystem::read_symlink("/proc/self/exe", ec);
    return vmm::suite::RunSuite(suite_options, ec ? std::string(argv[0]) : self.string());
  }
  return RunVm(flags);
}
