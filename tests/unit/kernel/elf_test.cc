#include "kernel/elf.h"

#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <vector>

namespace {

constexpr uint64_t kUserTop = 0x0000800000000000;

// A minimal valid image: header, two program headers (text R-X, data RW-).
std::vector<uint8_t> MakeElf() {
  std::vector<uint8_t> f(0x3000, 0);
  auto put = [&](size_t at, uint64_t v, size_t n) {
    for (size_t i = 0; i < n; ++i) f[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  std::memcpy(f.data(),
              "\x7f"
              "ELF",
              4);
  f[4] = 2;              // ELFCLASS64
  f[5] = 1;              // little-endian
  f[6] = 1;              // version
  put(16, 2, 2);         // ET_EXEC
  put(18, 62, 2);        // EM_X86_64
  put(24, 0x400010, 8);  // entry
  put(32, 64, 8);        // phoff
  put(54, 56, 2);        // phentsize
  put(56, 2, 2);         // phnum
  auto ph = [&](size_t i, uint32_t flags, uint64_t off, uint64_t va, uint64_t filesz,
                uint64_t memsz) {
    const size_t at = 64 + 56 * i;
    put(at, 1, 4);  // PT_LOAD
    put(at + 4, flags, 4);
    put(at + 8, off, 8);
    put(at + 16, va, 8);
    put(at + 32, filesz, 8);
    put(at + 40, memsz, 8);
  };
  ph(0, 5, 0x1000, 0x400000, 0x100, 0x100);
  ph(1, 6, 0x2000, 0x401000, 0x10, 0x2000);
  return f;
}

TEST(UserElf, ValidImageParses) {
  auto f = MakeElf();
  kernel::ElfProgram p;
  ASSERT_EQ(kernel::ParseUserElf(f.data(), f.size(), kUserTop, &p), nullptr);
  EXPECT_EQ(p.entry, 0x400010u);
  ASSERT_EQ(p.segment_count, 2u);
  EXPECT_TRUE(p.segments[0].exec);
  EXPECT_FALSE(p.segments[0].write);
  EXPECT_TRUE(p.segments[1].write);
  EXPECT_EQ(p.segments[1].mem_size, 0x2000u);
}

struct Malformed {
  const char* what;
  std::function<void(std::vector<uint8_t>&)> corrupt;
};

class UserElfMalformed : public ::testing::TestWithParam<Malformed> {};

TEST_P(UserElfMalformed, IsRejected) {
  auto f = MakeElf();
  GetParam().corrupt(f);
  kernel::ElfProgram p;
  EXPECT_NE(kernel::ParseUserElf(f.data(), f.size(), kUserTop, &p), nullptr) << GetParam().what;
}

void Put64(std::vector<uint8_t>& f, size_t at, uint64_t v) { std::memcpy(&f[at], &v, 8); }

INSTANTIATE_TEST_SUITE_P(
    Table, UserElfMalformed,
    ::testing::Values(
        Malformed{"truncated header", [](auto& f) { f.resize(40); }},
        Malformed{"bad magic", [](auto& f) { f[1] = 'X'; }},
        Malformed{"32-bit class", [](auto& f) { f[4] = 1; }},
        Malformed{"big-endian", [](auto& f) { f[5] = 2; }},
        Malformed{"shared object", [](auto& f) { f[16] = 3; }},
        Malformed{"wrong machine", [](auto& f) { f[18] = 3; }},
        Malformed{"odd phentsize", [](auto& f) { f[54] = 32; }},
        Malformed{"phdrs past the end", [](auto& f) { Put64(f, 32, f.size() - 10); }},
        Malformed{"phoff overflow", [](auto& f) { Put64(f, 32, UINT64_MAX - 8); }},
        Malformed{"filesz > memsz", [](auto& f) { Put64(f, 64 + 32, 0x200); }},
        Malformed{"segment past the file", [](auto& f) { Put64(f, 64 + 8, 0x2f80); }},
        Malformed{"segment offset overflow", [](auto& f) { Put64(f, 64 + 8, UINT64_MAX); }},
        Malformed{"segment in the kernel half",
                  [](auto& f) { Put64(f, 64 + 16, 0xffff800000000000); }},
        Malformed{"segment wraps user top",
                  [](auto& f) { Put64(f, 64 + 56 + 16, kUserTop - 0x1000); }},
        Malformed{"segment at page 0",
                  [](auto& f) {
                    Put64(f, 64 + 16, 0);
                    Put64(f, 24, 0x10);
                  }},
        Malformed{"writable and executable", [](auto& f) { f[64 + 4] = 7; }},
        Malformed{"segments share a page", [](auto& f) { Put64(f, 64 + 56 + 16, 0x400800); }},
        Malformed{"entry outside text", [](auto& f) { Put64(f, 24, 0x401000); }},
        Malformed{"no loadable segment", [](auto& f) { f[56] = 0; }}));

}  // namespace
