// Builders for small kernel images used by the firmware tests: a valid
// ELF64/ELF32 executable that each test then breaks in one way.
#pragma once

#include <elf.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace firmware::testing {

template <typename T>
void PutAt(std::vector<uint8_t>& bytes, uint64_t offset, const T& value) {
  if (bytes.size() < offset + sizeof(T)) bytes.resize(offset + sizeof(T));
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

template <typename T>
T GetAt(const std::vector<uint8_t>& bytes, uint64_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(T));
  return value;
}

struct TestSegment {
  uint64_t paddr = 0x100000;
  uint64_t vaddr = 0x100000;
  uint64_t mem_size = 0x2000;
  std::vector<uint8_t> data = std::vector<uint8_t>(0x1000, 0x90);
  uint32_t flags = PF_R | PF_X;
  uint32_t type = PT_LOAD;  // or PT_DYNAMIC
};

struct TestNote {
  std::string name;
  uint32_t type = 0;
  std::vector<uint8_t> desc;
};

// ELF64 (x86-64) or ELF32 (i386) executable: header, program headers for the
// segments (PT_LOAD) and an optional PT_NOTE, then the data.
struct ElfBuilder {
  bool is64 = true;
  uint16_t type = ET_EXEC;
  uint64_t entry = 0x100000;
  std::vector<TestSegment> segments = {TestSegment{}};
  std::vector<TestNote> notes;

  uint64_t PhdrOffset() const { return is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr); }
  uint64_t PhdrSize() const { return is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr); }
  uint64_t PhdrCount() const { return segments.size() + (notes.empty() ? 0 : 1); }

  std::vector<uint8_t> Build() const {
    std::vector<uint8_t> out;
    uint64_t data_at = PhdrOffset() + PhdrCount() * PhdrSize();
    std::vector<uint8_t> note_bytes;
    for (const auto& note : notes) {
      const auto pad = [](uint64_t n) { return (n + 3) & ~uint64_t{3}; };
      std::vector<uint8_t> one(12 + pad(note.name.size() + 1) + pad(note.desc.size()));
      const uint32_t header[3] = {static_cast<uint32_t>(note.name.size() + 1),
                                  static_cast<uint32_t>(note.desc.size()), note.type};
      std::memcpy(one.data(), header, 12);
      std::memcpy(one.data() + 12, note.name.c_str(), note.name.size() + 1);
      if (!note.desc.empty()) {
        std::memcpy(one.data() + 12 + pad(note.name.size() + 1), note.desc.data(),
                    note.desc.size());
      }
      note_bytes.insert(note_bytes.end(), one.begin(), one.end());
    }
    std::vector<uint64_t> offsets;
    for (const auto& segment : segments) {
      offsets.push_back(data_at);
      data_at += segment.data.size();
    }
    const uint64_t note_at = data_at;
    out.resize(data_at + note_bytes.size());
    if (is64) {
      Elf64_Ehdr ehdr{};
      std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
      ehdr.e_ident[EI_CLASS] = ELFCLASS64;
      ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
      ehdr.e_ident[EI_VERSION] = EV_CURRENT;
      ehdr.e_type = type;
      ehdr.e_machine = EM_X86_64;
      ehdr.e_version = EV_CURRENT;
      ehdr.e_entry = entry;
      ehdr.e_phoff = PhdrOffset();
      ehdr.e_ehsize = sizeof(Elf64_Ehdr);
      ehdr.e_phentsize = sizeof(Elf64_Phdr);
      ehdr.e_phnum = static_cast<uint16_t>(PhdrCount());
      PutAt(out, 0, ehdr);
    } else {
      Elf32_Ehdr ehdr{};
      std::memcpy(ehdr.e_ident, ELFMAG, SELFMAG);
      ehdr.e_ident[EI_CLASS] = ELFCLASS32;
      ehdr.e_ident[EI_DATA] = ELFDATA2LSB;
      ehdr.e_ident[EI_VERSION] = EV_CURRENT;
      ehdr.e_type = ET_EXEC;
      ehdr.e_machine = EM_386;
      ehdr.e_version = EV_CURRENT;
      ehdr.e_entry = static_cast<uint32_t>(entry);
      ehdr.e_phoff = static_cast<uint32_t>(PhdrOffset());
      ehdr.e_ehsize = sizeof(Elf32_Ehdr);
      ehdr.e_phentsize = sizeof(Elf32_Phdr);
      ehdr.e_phnum = static_cast<uint16_t>(PhdrCount());
      PutAt(out, 0, ehdr);
    }
    for (size_t i = 0; i < PhdrCount(); ++i) {
      const bool is_note = i == segments.size();
      const uint64_t at = PhdrOffset() + i * PhdrSize();
      const uint32_t type = is_note ? PT_NOTE : segments[i].type;
      const uint64_t offset = is_note ? note_at : offsets[i];
      const uint64_t filesz = is_note ? note_bytes.size() : segments[i].data.size();
      const uint64_t memsz = is_note ? 0 : segments[i].mem_size;
      const uint64_t paddr = is_note ? 0 : segments[i].paddr;
      const uint64_t vaddr = is_note ? 0 : segments[i].vaddr;
      const uint32_t flags = is_note ? PF_R : segments[i].flags;
      if (is64) {
        Elf64_Phdr phdr{type, flags, offset, vaddr, paddr, filesz, memsz, 4};
        PutAt(out, at, phdr);
      } else {
        Elf32_Phdr phdr{type,
                        static_cast<uint32_t>(offset),
                        static_cast<uint32_t>(vaddr),
                        static_cast<uint32_t>(paddr),
                        static_cast<uint32_t>(filesz),
                        static_cast<uint32_t>(memsz),
                        flags,
                        4};
        PutAt(out, at, phdr);
      }
      if (!is_note && !segments[i].data.empty()) {
        std::memcpy(out.data() + offsets[i], segments[i].data.data(), segments[i].data.size());
      }
    }
    if (!note_bytes.empty()) {
      std::memcpy(out.data() + note_at, note_bytes.data(), note_bytes.size());
    }
    return out;
  }
};

// A file in a fresh temporary folder, removed at the end of the test.
class TempFile {
 public:
  explicit TempFile(const std::vector<uint8_t>& bytes, const char* stem = "image") {
    char dir_template[] = "/tmp/vmm-firmware-test-XXXXXX";
    dir_ = mkdtemp(dir_template);
    path_ = dir_ + "/" + stem;
    FILE* file = std::fopen(path_.c_str(), "wb");
    if (file != nullptr) {
      if (!bytes.empty()) std::fwrite(bytes.data(), 1, bytes.size(), file);
      std::fclose(file);
    }
  }
  ~TempFile() {
    std::remove(path_.c_str());
    rmdir(dir_.c_str());
  }
  TempFile(const TempFile&) = delete;
  TempFile& operator=(const TempFile&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string dir_;
  std::string path_;
};

}  // namespace firmware::testing

namespace firmware::testing {

// A minimal bzImage: boot sector + setup_sects sectors of setup, the setup
// header filled like a 64-bit relocatable Linux, then `kernel_size` bytes of
// protected-mode kernel (0xf4: hlt).
struct BzImageBuilder {
  uint8_t setup_sects = 4;
  uint16_t version = 0x020f;
  uint8_t loadflags = 0x01;
  uint16_t xloadflags = 0x03;  // XLF_KERNEL_64 | XLF_CAN_BE_LOADED_ABOVE_4G
  uint8_t relocatable = 1;
  uint32_t kernel_alignment = 0x200000;
  uint32_t initrd_addr_max = 0x7fffffff;
  uint32_t cmdline_size = 0x7ff;
  uint64_t pref_address = 0x1000000;
  uint32_t init_size = 0x800000;
  uint64_t kernel_size = 0x10000;
  std::string version_string = "6.99.0-test (builder@host) #1";
  // The compressed kernel, at kPayloadAt of the protected-mode kernel (the
  // file grows to hold it).
  std::vector<uint8_t> payload;
  static constexpr uint64_t kPayloadAt = 0x100;

  std::vector<uint8_t> Build() const {
    const uint64_t setup = (uint64_t{setup_sects} + 1) * 512;
    const uint64_t kernel = std::max<uint64_t>(kernel_size, kPayloadAt + payload.size());
    std::vector<uint8_t> out(setup + kernel, 0);
    std::fill(out.begin() + static_cast<long>(setup), out.end(), 0xf4);
    if (!payload.empty()) {
      std::copy(payload.begin(), payload.end(),
                out.begin() + static_cast<long>(setup + kPayloadAt));
      PutAt<uint32_t>(out, 0x248, static_cast<uint32_t>(kPayloadAt));
      PutAt<uint32_t>(out, 0x24c, static_cast<uint32_t>(payload.size()));
    }
    PutAt<uint8_t>(out, 0x1f1, setup_sects);
    PutAt<uint32_t>(out, 0x1f4, static_cast<uint32_t>((kernel + 15) / 16));
    PutAt<uint16_t>(out, 0x1fe, 0xaa55);
    PutAt<uint8_t>(out, 0x200, 0xeb);
    PutAt<uint8_t>(out, 0x201, 0x6a);  // header ends at 0x26c
    PutAt<uint32_t>(out, 0x202, 0x53726448);
    PutAt<uint16_t>(out, 0x206, version);
    PutAt<uint16_t>(out, 0x20e, 0x400 - 0x200);  // version string at 0x400
    std::memcpy(out.data() + 0x400, version_string.c_str(), version_string.size() + 1);
    PutAt<uint8_t>(out, 0x211, loadflags);
    PutAt<uint32_t>(out, 0x214, 0x100000);
    PutAt<uint32_t>(out, 0x22c, initrd_addr_max);
    PutAt<uint32_t>(out, 0x230, kernel_alignment);
    PutAt<uint8_t>(out, 0x234, relocatable);
    PutAt<uint16_t>(out, 0x236, xloadflags);
    PutAt<uint32_t>(out, 0x238, cmdline_size);
    PutAt<uint64_t>(out, 0x258, pref_address);
    PutAt<uint32_t>(out, 0x260, init_size);
    return out;
  }
};

}  // namespace firmware::testing
