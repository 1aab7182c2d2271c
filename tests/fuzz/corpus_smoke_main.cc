// A driver for a libFuzzer entry point in the normal (GCC, no libFuzzer)
// build: every file of the target's committed seed corpus
// (tests/fuzz/corpus/<target>/) once, then a fixed-seed mutation run of each
// (tests/fuzz/mutation_run.h) within a time budget, so `make test` runs every
// fuzz target on thousands of broken inputs (docs/security.md, "Fuzzing").
// The targets abort() on a broken invariant; ASan/UBSan catch the rest under
// `make test-asan`.
//   corpus_smoke CORPUS_DIR [RUNS_PER_SEED [BUDGET_MS]]   the smoke run
//   corpus_smoke --run FILE...                            each file once (a crash reproducer)
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "tests/fuzz/mutation_run.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {

bool ReadFile(const std::filesystem::path& path, std::vector<uint8_t>& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  out.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  return !in.bad();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CORPUS_DIR [RUNS_PER_SEED [BUDGET_MS]] | --run FILE...\n",
                 argv[0]);
    return 64;
  }
  if (std::string_view(argv[1]) == "--run") {
    for (int i = 2; i < argc; ++i) {
      std::vector<uint8_t> data;
      if (!ReadFile(argv[i], data)) {
        std::fprintf(stderr, "%s: cannot read\n", argv[i]);
        return 66;
      }
      LLVMFuzzerTestOneInput(data.data(), data.size());
    }
    return 0;
  }
  spdlog::set_level(spdlog::level::off);  // as fuzz_init.cc: mutants make nothing but mistakes
  const std::filesystem::path dir = argv[1];
  const int runs = argc > 2 ? std::atoi(argv[2]) : 2000;
  const long budget_ms = argc > 3 ? std::atol(argv[3]) : 1200;

  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
    if (entry.is_regular_file()) files.push_back(entry.path());
  }
  if (ec || files.empty()) {
    std::fprintf(stderr, "%s: no seed files (%s)\n", dir.c_str(), ec.message().c_str());
    return 66;
  }
  std::sort(files.begin(), files.end());

  // Each seed gets an equal share of the budget, so a slow seed cannot starve
  // the others.
  const auto start = std::chrono::steady_clock::now();
  uint64_t inputs = 0;
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<uint8_t> seed;
    if (!ReadFile(files[i], seed)) {
      std::fprintf(stderr, "%s: cannot read\n", files[i].c_str());
      return 66;
    }
    fuzz_smoke::MutationOptions options;
    options.deadline = start + std::chrono::milliseconds(budget_ms * static_cast<long>(i + 1) /
                                                         static_cast<long>(files.size()));
    inputs += fuzz_smoke::RunMutations({seed}, runs, options, LLVMFuzzerTestOneInput);
  }
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  std::printf("%s: %zu seeds, %llu inputs in %lld ms, no invariant broken\n", dir.c_str(),
              files.size(), static_cast<unsigned long long>(inputs), static_cast<long long>(ms));
  return 0;
}
