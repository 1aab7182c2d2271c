#include "vmm/vm.h"

#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <functional>
#include <thread>

#include "vmm/boot_trace.h"
#include "vmm/builder.h"

namespace vmm {
namespace {

// Armed once a stop is requested: unless disarmed (destroyed) within
// `grace`, restores the terminals, reports `exit` as main() would, flushes
// and ends the process with its status, so that a stuck device or vCPU thread
// cannot keep a requested stop from ending vmm. Its own thread.
class StopWatchdog {
 public:
  StopWatchdog(VmExit exit, std::chrono::milliseconds grace, std::function<void()> restore)
      : exit_(std::move(exit)), grace_(grace), restore_(std::move(restore)) {
    thread_ = std::thread([this] { Watch(); });
  }
  ~StopWatchdog() {
    {
      std::lock_guard lock(mutex_);
      done_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

 private:
  void Watch() {
    std::unique_lock lock(mutex_);
    if (cv_.wait_for(lock, grace_, [this] { return done_; })) return;
    restore_();
    spdlog::error("shutdown did not finish within {} ms of the stop request; exiting",
                  grace_.count());
    if (exit_.abnormal) {
      spdlog::error("{}", exit_.reason);
      if (!exit_.details.empty()) std::fputs(exit_.details.c_str(), stderr);
    } else {
      spdlog::info("{} (status {})", exit_.reason, exit_.status);
    }
    spdlog::default_logger()->flush();
    std::fflush(stdout);
    std::fflush(stderr);
    ::_exit(exit_.status);
  }

  const VmExit exit_;
  const std::chrono::milliseconds grace_;
  const std::function<void()> restore_;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace

base::Result<std::unique_ptr<Vm>> Vm::Create(const VmConfig& config) { return BuildVm(config); }

Vm::~Vm() {
  JoinVcpus();
  control_loop_.Stop();
  device_loop_.Stop();
  if (devices_) devices_->RestoreTerminals();
}

// The timeout, SIGINT/SIGTERM and the API, on the control context (its
// thread is started by Run() after the vCPUs).
base::Result<void> Vm::SetUpControl() {
  asio::io_context& control = control_loop_.context();
  if (config_.timeout_seconds > 0) {
    timer_.emplace(control);
    timer_->expires_after(std::chrono::duration_cast<std::chrono::steady_clock::duration>(
        std::chrono::duration<double>(config_.timeout_seconds)));
    timer_->async_wait([this](const std::error_code& ec) {
      if (!ec) RequestStop(VmExit::Timeout(config_.timeout_seconds));
    });
  }
  signals_.emplace(control, SIGINT, SIGTERM);
  signals_->async_wait([this](const std::error_code& ec, int signo) {
    if (!ec) RequestStop(VmExit::Signal(signo));
  });
  if (!config_.api_sock.empty()) {
    api_server_ = TRY_CTX(ApiServer::Create(control, config_.api_sock, *this), "--api-sock");
  }
  return {};
}

base::Result<void> Vm::Screenshot(const std::string& path) const {
  if (!framebuffer_) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "the guest has no framebuffer (its kernel asked for none; give "
                           "--framebuffer WxH)");
  }
  return framebuffer_->WritePng(path);
}

base::Result<std::vector<uint8_t>> Vm::ScreenshotPng() {
  if (!framebuffer_) {
    return base::MakeError(base::ErrorKind::kConfig,
                           "the guest has no framebuffer (its kernel asked for none; start vmm "
                           "with --framebuffer WxH)");
  }
  return framebuffer_->EncodePng();
}

VmExit Vm::Run() {
  device_loop_.Start(base::sandbox::ThreadKind::kDeviceLoop);
  if (auto control = SetUpControl(); !control) {
    return VmExit::StartupError(control.error());
  }
  started_at_ = std::chrono::steady_clock::now();
  started_ = true;
  for (auto& vcpu : vcpus_) vcpu->Start();
  // After the vCPUs: an API call never sees a vCPU that has not started.
  control_loop_.Start(base::sandbox::ThreadKind::kControl);
  // Every thread runs: the main thread only waits and tears down from here.
  base::sandbox::EnterThreadOrDie(base::sandbox::ThreadKind::kMain);

  VmExit result;
  {
    std::unique_lock lock(exit_mutex_);
    exit_cv_.wait(lock, [this] { return exit_.has_value(); });
    result = *exit_;
  }
  boot_trace::Mark("exit");
  std::optional<StopWatchdog> watchdog;
  watchdog.emplace(result, kStopGrace, [this] { devices_->RestoreTerminals(); });
  JoinVcpus();
  if (result.status == kExitTimeout && !vcpus_.empty()) {
    // Where the guest was when time ran out: the vCPU threads are gone, so
    // the main thread may read their registers.
    result.details = vcpus_[0]->DumpState(true);
  }
  asio::post(control_loop_.context(), [this] {
    std::error_code ignored;
    if (signals_) signals_->cancel(ignored);
    if (timer_) timer_->cancel();
  });
  control_loop_.Stop();
  device_loop_.Stop();
  api_server_.reset();
  devices_->RestoreTerminals();
  VmMetrics metrics = CollectMetrics();
  if (spdlog::should_log(spdlog::level::info)) metrics.memory = ReadMemoryUsage(*memory_);
  LogExitSummary(metrics);
  return result;
}

void Vm::RequestStop(VmExit exit) {
  {
    std::lock_guard lock(exit_mutex_);
    if (exit_) return;
    exit_ = std::move(exit);
  }
  stopping_ = true;
  exit_cv_.notify_all();
  for (auto& vcpu : vcpus_) vcpu->RequestStop();
}

void Vm::JoinVcpus() {
  stopping_ = true;
  for (auto& vcpu : vcpus_) vcpu->RequestStop();
  for (auto& vcpu : vcpus_) vcpu->Join();
}

VmMetrics Vm::CollectMetrics() const {
  VmMetrics metrics;
  ReadExitCounters(counters_, metrics);
  metrics.serial = devices_->serial_stats();
  metrics.virtio = devices_->VirtioMetrics();
  return metrics;
}

nlohmann::json Vm::Info() {
  const char* state = "NotStarted";
  if (stopping_.load()) {
    state = "Stopping";
  } else if (started_.load()) {
    state = paused_.load() ? "Paused" : "Running";
  }
  double uptime =
      started_.load()
          ? std::chrono::duration<double>(std::chrono::steady_clock::now() - started_at_).count()
          : 0.0;
  const VmMetrics metrics = CollectMetrics();
  return nlohmann::json{
      {"state", state},
      {"vcpus", config_.cpus},
      {"memory_bytes", config_.memory},
      {"uptime_seconds", uptime},
      {"kernel", config_.kernel},
      {"boot_protocol", firmware::BootProtocolName(boot_.protocol)},
      {"cpu_template", std::string(CpuTemplateName(cpu_template_))},
      {"exits",
       {{"io", metrics.exits_io}, {"mmio", metrics.exits_mmio}, {"other", metrics.exits_other}}},
      {"serial", {{"bytes_in", metrics.serial.bytes_in}, {"bytes_out", metrics.serial.bytes_out}}},
  };
}

base::Result<void> Vm::Pause() {
  std::lock_guard lock(pause_mutex_);
  if (paused_.load()) return {};
  paused_ = true;
  for (auto& vcpu : vcpus_) vcpu->RequestPause();
  const auto deadline = std::chrono::steady_clock::now() + kPauseTimeout;
  for (auto& vcpu : vcpus_) {
    if (!vcpu->WaitUntilParked(deadline)) {
      return base::MakeError(base::ErrorKind::kInternal, "vcpu {} did not pause within {} ms",
                             vcpu->id(), kPauseTimeout.count());
    }
  }
  // Every vCPU is parked: the guest's clock stands still from here.
  if (auto clock = vm_fd_->GetClock(); clock) paused_clock_ = *clock;
  return {};
}

base::Result<void> Vm::Resume() {
  std::lock_guard lock(pause_mutex_);
  if (!paused_.load()) return {};
  if (paused_clock_) {
    if (auto set = vm_fd_->SetClock(*paused_clock_); !set) {
      spdlog::warn("restoring kvmclock after a pause: {}", set.error().ToString());
    }
    paused_clock_.reset();
  }
  paused_ = false;
  for (auto& vcpu : vcpus_) vcpu->Resume();
  return {};
}

base::Result<void> Vm::Shutdown() {
  RequestStop(VmExit::Clean("shut down through the control API"));
  return {};
}

base::Result<void> Vm::Reset() {
  // A machine reset ends vmm with status 0, as the i8042 path does.
  RequestStop(VmExit::Clean("reset through the control API"));
  return {};
}

base::Result<void> Vm::SendCtrlAltDel() {
  // As Firecracker: the key presses reach the guest through the i8042; a
  // guest with a keyboard driver reboots (and its i8042 reset ends vmm).
  devices_->SendCtrlAltDel();
  return {};
}

nlohmann::json Vm::Metrics() { return MetricsToJson(CollectMetrics()); }

}  // namespace vmm
