// `test=...` self-tests (TAP on COM1) and the `bench` benchmark.
#pragma once

#include <stdint.h>

namespace kernel {

// Runs the selected self-tests ("all", "kernel" or "user") in the calling
// kernel thread; returns the number of failures.
int RunSelfTests(bool kernel_tests, bool user_tests);
// Runs ubench/upong with `iterations`; prints [bench] lines.
void RunBench(uint64_t iterations);

}  // namespace kernel
