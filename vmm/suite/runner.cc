#include "vmm/suite/runner.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>
#include <fstream>
#include <list>
#include <memory>
#include <nlohmann/json.hpp>

#include "vmm/suite/matcher.h"
#include "vmm/suite/process.h"
#include "vmm/suite/report.h"
#include "vmm/suite/screen_check.h"

namespace vmm::suite {

std::optional<double> RecordedWallMs(const std::string& case_name,
                                     const std::filesystem::path& out_dir) {
  for (const std::filesystem::path& file :
       {out_dir / case_name / "timings.json", out_dir / case_name / "001" / "timings.json"}) {
    std::ifstream in(file);
    if (!in) continue;
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.contains("wall_ms") && doc["wall_ms"].is_number()) {
      double ms = doc["wall_ms"].get<double>();
      if (ms >= 0) return ms;
    }
  }
  return std::nullopt;
}

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// How long to wait for a reaped child's pipes to close (a grandchild might
// still hold them) before giving up on them.
constexpr auto kPipeGrace = std::chrono::seconds(2);
// poll() timeout without pidfd support: how often to look for exited children.
constexpr int kWaitPollMs = 10;
// How often the progress line is redrawn.
constexpr int kProgressMs = 250;

volatile std::sig_atomic_t g_interrupted = 0;
void OnInterrupt(int) { g_interrupted = 1; }

double MsSince(Clock::time_point start, Clock::time_point now) {
  return std::chrono::duration<double, std::milli>(now - start).count();
}

// Writes all of `data`; artifact write errors are reported once and ignored
// (the verdict does not depend on them).
void WriteAll(int fd, std::string_view data) {
  while (fd >= 0 && !data.empty()) {
    ssize_t n = write(fd, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
    data.remove_prefix(static_cast<size_t>(n));
  }
}

int OpenArtifact(const fs::path& path) {
  return open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
}

// How long a case will probably run: its wall time in the previous suite run,
// else its timeout when it expects one (it runs that long by design), else 0.
double EstimateMs(const CaseSpec& spec, const fs::path& out_dir) {
  if (std::optional<double> recorded = RecordedWallMs(spec.name, out_dir)) return *recorded;
  return spec.outcome.kind == OutcomeKind::kTimeout ? spec.timeout_s * 1000.0 : 0.0;
}

struct Job {
  size_t case_index = 0;
  int run = 0;
  const CaseSpec* spec = nullptr;
  std::optional<ChildProcess> child;
  std::optional<SerialMatcher> matcher;
  BootTraceParser trace;
  RunRecord record;
  int serial_log = -1;
  int stderr_log = -1;
  Clock::time_point start;
  Clock::time_point deadline;
  std::optional<Clock::time_point> reaped_at;
  std::optional<int> wait_status;
  bool watchdog_fired = false;
  bool stopped_early = false;
  // The case's `input`: typed once armed (at once, or when a serial line
  // matches `input_after`, tested by input_trigger).
  std::optional<SerialMatcher> input_trigger;
  bool input_armed = false;
  size_t input_sent = 0;

  bool input_pending() const {
    return input_armed && child && child->stdin_fd() >= 0 && input_sent < spec->input.size();
  }

  ~Job() {
    if (serial_log >= 0) close(serial_log);
    if (stderr_log >= 0) close(stderr_log);
  }
  bool done() const {
    return !child || (child->reaped() && child->stdout_fd() < 0 && child->stderr_fd() < 0);
  }
};

class Runner {
 public:
  Runner(const std::vector<CaseEntry>& cases, const RunnerOptions& options)
      : cases_(cases), options_(options) {}

  std::vector<RunRecord> Run(bool* interrupted);

 private:
  void StartJob(size_t case_index, int run);
  void ReadStdout(Job& job, Clock::time_point now);
  void ReadStderr(Job& job, Clock::time_point now);
  void Reap(Job& job, Clock::time_point now);
  void SendInput(Job& job);
  void FinishJob(Job& job);
  void DrawProgress(bool force);
  void ClearProgress();
  void Print(std::string_view text);

  const std::vector<CaseEntry>& cases_;
  const RunnerOptions& options_;
  Clock::time_point suite_start_ = Clock::now();
  std::list<std::unique_ptr<Job>> running_;
  std::vector<RunRecord> records_;
  size_t total_ = 0;
  size_t passed_ = 0;
  size_t failed_ = 0;
  bool progress_shown_ = false;
  Clock::time_point last_progress_;
  std::string read_buffer_ = std::string(64 * 1024, '\0');
};

void Runner::Print(std::string_view text) {
  ClearProgress();
  std::fwrite(text.data(), 1, text.size(), options_.out);
  std::fflush(options_.out);
}

void Runner::ClearProgress() {
  if (!progress_shown_) return;
  std::fputs("\r\x1b[K", options_.out);
  progress_shown_ = false;
}

void Runner::DrawProgress(bool force) {
  if (!options_.tty) return;
  Clock::time_point now = Clock::now();
  if (!force && progress_shown_ && now - last_progress_ < std::chrono::milliseconds(kProgressMs)) {
    return;
  }
  last_progress_ = now;
  size_t done = passed_ + failed_;
  std::string names;
  for (const auto& job : running_) {
    if (!names.empty()) names += ", ";
    names += job->spec->name;
    if (names.size() > 40) {
      names += ", ...";
      break;
    }
  }
  std::string line =
      fmt::format("[{}/{}] {} passed, {} failed, {} running {:.1f}s {}", done, total_, passed_,
                  failed_, running_.size(), MsSince(suite_start_, now) / 1000.0, names);
  if (line.size() > 120) line.resize(120);
  std::fputs("\r\x1b[K", options_.out);
  std::fputs(line.c_str(), options_.out);
  std::fflush(options_.out);
  progress_shown_ = true;
}

void Runner::StartJob(size_t case_index, int run) {
  auto job = std::make_unique<Job>();
  const CaseEntry& entry = cases_[case_index];
  job->case_index = case_index;
  job->run = run;
  job->spec = &*entry.spec;
  RunRecord& record = job->record;
  record.case_index = case_index;
  record.run = run;
  record.expect_count = job->spec->expect.size();
  record.artifact_dir = ArtifactDir(options_.out_dir, job->spec->name, run, options_.repeat);
  record.command = BuildVmmCommand(*job->spec, options_.vmm_binary, record.artifact_dir);

  std::error_code ec;
  if (run == 1) fs::remove_all(options_.out_dir / job->spec->name, ec);
  fs::create_directories(record.artifact_dir, ec);
  job->serial_log = OpenArtifact(record.artifact_dir / "serial.log");
  job->stderr_log = OpenArtifact(record.artifact_dir / "stderr.log");
  if (job->serial_log < 0 || job->stderr_log < 0) {
    Print(fmt::format("warning: cannot write artifacts in {}: {}\n", record.artifact_dir.string(),
                      std::strerror(errno)));
  }

  // Patterns were checked when the case was parsed, so this cannot fail.
  base::Result<SerialMatcher> matcher = SerialMatcher::Create(job->spec->expect, job->spec->forbid);
  if (matcher) job->matcher = std::move(*matcher);

  job->start = Clock::now();
  record.start_ms = MsSince(suite_start_, job->start);
  auto watchdog = std::chrono::duration<double>(job->spec->timeout_s + options_.watchdog_margin_s);
  job->deadline = job->start + std::chrono::duration_cast<Clock::duration>(watchdog);
  record.observation.watchdog_s = watchdog.count();

  if (!job->spec->input.empty()) {
    if (job->spec->input_after) {
      base::Result<SerialMatcher> trigger = SerialMatcher::Create({*job->spec->input_after}, {});
      if (trigger) job->input_trigger = std::move(*trigger);
    } else {
      job->input_armed = true;
    }
  }
  base::Result<ChildProcess> child =
      ChildProcess::Spawn(record.command, /*stdin_pipe=*/!job->spec->input.empty());
  if (!child || !job->matcher) {
    record.observation.end = Observation::End::kSpawnFailed;
    record.observation.detail = !child ? child.error().ToString() : matcher.error().ToString();
    FinishJob(*job);
    return;
  }
  job->child = std::move(*child);
  running_.push_back(std::move(job));
}

void Runner::ReadStdout(Job& job, Clock::time_point now) {
  while (job.child->stdout_fd() >= 0) {
    ssize_t n = read(job.child->stdout_fd(), read_buffer_.data(), read_buffer_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {  // EOF or a read error: the stream is over either way
      job.child->CloseStdout();
      return;
    }
    std::string_view data(read_buffer_.data(), static_cast<size_t>(n));
    double at = MsSince(job.start, now);
    if (!job.record.first_byte_ms) job.record.first_byte_ms = at;
    WriteAll(job.serial_log, data);
    job.matcher->Feed(data, at);
    if (job.input_trigger && !job.input_armed) {
      job.input_trigger->Feed(data, at);
      job.input_armed =
          job.input_trigger->all_matched() || job.input_trigger->NextMatchesPartialLine();
    }
    if (job.matcher->forbidden() && !job.stopped_early && !job.child->reaped()) {
      // The verdict is known: do not wait for the guest to finish.
      job.stopped_early = true;
      job.child->Kill();
    }
  }
}

void Runner::ReadStderr(Job& job, Clock::time_point) {
  while (job.child->stderr_fd() >= 0) {
    ssize_t n = read(job.child->stderr_fd(), read_buffer_.data(), read_buffer_.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n <= 0) {
      job.child->CloseStderr();
      return;
    }
    std::string_view data(read_buffer_.data(), static_cast<size_t>(n));
    WriteAll(job.stderr_log, data);
    job.trace.Feed(data);
    std::string& text = job.record.stderr_text;
    text.append(data);
    if (text.size() > 2 * RunRecord::kStderrKeep)
      text.erase(0, text.size() - RunRecord::kStderrKeep);
  }
}

void Runner::SendInput(Job& job) {
  while (job.input_pending()) {
    std::string_view rest = std::string_view(job.spec->input).substr(job.input_sent);
    ssize_t n = write(job.child->stdin_fd(), rest.data(), rest.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;  // pipe full: later
    if (n <= 0) {  // EPIPE: vmm closed its stdin; nothing more to type
      job.child->CloseStdin();
      return;
    }
    job.input_sent += static_cast<size_t>(n);
  }
}

void Runner::Reap(Job& job, Clock::time_point now) {
  if (job.child->reaped()) return;
  if (std::optional<int> status = job.child->TryWait()) {
    job.wait_status = *status;
    job.reaped_at = now;
  }
}

void Runner::FinishJob(Job& job) {
  RunRecord& record = job.record;
  Clock::time_point end = job.reaped_at.value_or(Clock::now());
  record.end_ms = MsSince(suite_start_, end);
  if (job.child) {
    record.wall_ms = MsSince(job.start, end);
    job.matcher->Finish(record.wall_ms);
    job.trace.Finish();
    Observation& observation = record.observation;
    int status = job.wait_status.value_or(0);
    if (job.stopped_early) {
      observation.end = Observation::End::kStoppedEarly;
    } else if (job.watchdog_fired) {
      observation.end = Observation::End::kWatchdog;
    } else if (WIFEXITED(status)) {
      observation.end = Observation::End::kExited;
      observation.status = WEXITSTATUS(status);
    } else {
      observation.end = Observation::End::kSignaled;
      observation.status = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
  }
  // The screen is judged when vmm ended by itself: it writes --screenshot
  // then. A vmm killed or crashed has no screenshot, and its run fails for
  // that already.
  std::vector<std::string> screen_reasons;
  if (job.child && job.spec->screen && record.observation.end == Observation::End::kExited) {
    screen_reasons = CheckScreen(*job.spec->screen, record.artifact_dir / kScreenshotFile,
                                 record.artifact_dir / kScreenDiffFile);
  }
  if (job.spec->screen) {
    for (std::string_view name : {kScreenshotFile, kScreenDiffFile}) {
      std::error_code ec;
      if (fs::file_size(record.artifact_dir / name, ec) > 0 && !ec) {
        record.screen_images.emplace_back(name);
      }
    }
  }
  if (job.matcher) {
    record.verdict = Decide(*job.spec, record.observation, *job.matcher, screen_reasons);
    record.matches = job.matcher->hits();
    record.serial_lines = job.matcher->line_count();
    record.serial_tail = job.matcher->tail();
  } else {
    record.verdict = Decide(*job.spec, record.observation,
                            *SerialMatcher::Create({}, {}));  // no patterns: cannot fail
  }
  record.trace = job.trace.events();
  record.boot_ms = record.wall_ms;
  if (!record.matches.empty() && record.matches.size() == record.expect_count) {
    record.boot_ms = record.matches.back().time_ms;
  }
  if (record.stderr_text.size() > RunRecord::kStderrKeep) {
    record.stderr_text.erase(0, record.stderr_text.size() - RunRecord::kStderrKeep);
  }

  const CaseEntry& entry = cases_[job.case_index];
  std::string timings = TimingsJson(entry, record).dump(2) + "\n";
  int fd = OpenArtifact(record.artifact_dir / "timings.json");
  WriteAll(fd, timings);
  if (fd >= 0) close(fd);

  if (record.verdict.passed()) {
    ++passed_;
  } else {
    ++failed_;
  }
  if (!options_.tty || !record.verdict.passed()) {
    Print(FormatRunLine(entry, record, options_.repeat) + "\n");
  }
  records_.push_back(std::move(record));
}

std::vector<RunRecord> Runner::Run(bool* interrupted) {
  struct Pending {
    size_t case_index;
    int run;
  };
  std::vector<Pending> queue;
  for (size_t i = 0; i < cases_.size(); ++i) {
    if (!cases_[i].spec) {
      RunRecord record;
      record.case_index = i;
      record.verdict.kind = VerdictKind::kError;
      record.verdict.reasons.push_back(cases_[i].error);
      record.verdict.exit_text.assign(
          1, '-');  // not = "-": GCC 12 -Wrestrict false positive (PR 105329)
      ++failed_;
      ++total_;
      Print(FormatRunLine(cases_[i], record, options_.repeat) + "\n");
      records_.push_back(std::move(record));
      continue;
    }
    for (int run = 1; run <= options_.repeat; ++run) queue.push_back({i, run});
  }
  total_ += queue.size();
  // Longest first (LPT scheduling), so a long case does not start last and
  // leave the other job slots idle. Stable: equal estimates keep file order.
  std::vector<double> estimate(cases_.size(), 0);
  for (size_t i = 0; i < cases_.size(); ++i) {
    if (cases_[i].spec) estimate[i] = EstimateMs(*cases_[i].spec, options_.out_dir);
  }
  std::stable_sort(queue.begin(), queue.end(), [&](const Pending& a, const Pending& b) {
    return estimate[a.case_index] > estimate[b.case_index];
  });

  struct sigaction action = {};
  action.sa_handler = OnInterrupt;
  sigemptyset(&action.sa_mask);
  struct sigaction old_int = {};
  struct sigaction old_term = {};
  g_interrupted = 0;
  sigaction(SIGINT, &action, &old_int);
  sigaction(SIGTERM, &action, &old_term);
  // Typing into a vmm that already ended must not kill the runner.
  struct sigaction ignore = {};
  ignore.sa_handler = SIG_IGN;
  sigemptyset(&ignore.sa_mask);
  struct sigaction old_pipe = {};
  sigaction(SIGPIPE, &ignore, &old_pipe);

  size_t next = 0;
  std::vector<pollfd> fds;
  std::vector<Job*> owners;
  while (!g_interrupted && (next < queue.size() || !running_.empty())) {
    while (!g_interrupted && running_.size() < static_cast<size_t>(options_.jobs) &&
           next < queue.size()) {
      StartJob(queue[next].case_index, queue[next].run);
      ++next;
    }
    DrawProgress(false);
    if (running_.empty()) continue;

    fds.clear();
    owners.clear();
    Clock::time_point now = Clock::now();
    int timeout_ms = options_.tty ? kProgressMs : 60 * 1000;
    for (const auto& job : running_) {
      ChildProcess& child = *job->child;
      if (child.stdout_fd() >= 0) fds.push_back({child.stdout_fd(), POLLIN, 0});
      if (child.stderr_fd() >= 0) fds.push_back({child.stderr_fd(), POLLIN, 0});
      if (job->input_pending()) timeout_ms = std::min(timeout_ms, kWaitPollMs);
      if (child.reaped()) {
        timeout_ms = std::min(timeout_ms, 100);  // pipe grace period
      } else if (child.pid_fd() >= 0) {
        fds.push_back({child.pid_fd(), POLLIN, 0});
      } else {
        timeout_ms = std::min(timeout_ms, kWaitPollMs);
      }
      if (!child.reaped()) {
        auto left = std::chrono::ceil<std::chrono::milliseconds>(job->deadline - now).count();
        timeout_ms = std::min(timeout_ms, static_cast<int>(std::max<int64_t>(left, 0)));
      }
    }
    int rc = poll(fds.data(), fds.size(), timeout_ms);
    if (rc < 0 && errno != EINTR) {
      Print(fmt::format("vmm suite: poll: {}\n", std::strerror(errno)));
      break;
    }

    now = Clock::now();
    for (auto it = running_.begin(); it != running_.end();) {
      Job& job = **it;
      ReadStdout(job, now);
      ReadStderr(job, now);
      SendInput(job);
      Reap(job, now);
      if (!job.child->reaped() && now >= job.deadline && !job.watchdog_fired) {
        job.watchdog_fired = true;
        job.child->Kill();
      }
      if (job.child->reaped() && !job.done() && job.reaped_at &&
          now - *job.reaped_at > kPipeGrace) {
        job.child->CloseStdout();
        job.child->CloseStderr();
      }
      if (job.done()) {
        FinishJob(job);
        it = running_.erase(it);
      } else {
        ++it;
      }
    }
  }

  if (g_interrupted) {
    // Kill and reap whatever still runs; their runs are not reported.
    running_.clear();
    *interrupted = true;
  }
  sigaction(SIGINT, &old_int, nullptr);
  sigaction(SIGTERM, &old_term, nullptr);
  sigaction(SIGPIPE, &old_pipe, nullptr);
  ClearProgress();
  std::fflush(options_.out);

  // Case order, then run order, whatever order they finished in.
  std::stable_sort(records_.begin(), records_.end(), [](const RunRecord& a, const RunRecord& b) {
    return a.case_index != b.case_index ? a.case_index < b.case_index : a.run < b.run;
  });
  return std::move(records_);
}

}  // namespace

fs::path ArtifactDir(const fs::path& out_dir, const std::string& name, int run, int repeat) {
  if (repeat <= 1) return out_dir / name;
  return out_dir / name / fmt::format("{:03}", run);
}

std::vector<RunRecord> RunCases(const std::vector<CaseEntry>& cases, const RunnerOptions& options,
                                bool* interrupted) {
  *interrupted = false;
  Runner runner(cases, options);
  return runner.Run(interrupted);
}

}  // namespace vmm::suite
