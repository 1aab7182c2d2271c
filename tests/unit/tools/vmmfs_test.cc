// vmmfs host tool library (tools/vmmfs/vmmfs.h) and the on-disk format checks
// it shares with the guest (guest-kernel/abi/vmmfs.h).
#include "tools/vmmfs/vmmfs.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <string>
#include <vector>

namespace {

class VmmfsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = testing::TempDir() + "vmmfs_test_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name() + ".img";
  }
  void TearDown() override { ::unlink(path_.c_str()); }

  void Poke(uint64_t offset, const void* data, size_t n) {
    const int fd = ::open(path_.c_str(), O_RDWR | O_CREAT, 0644);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::pwrite(fd, data, n, static_cast<off_t>(offset)), static_cast<ssize_t>(n));
    ::close(fd);
  }
  vmmfs_entry Entry(uint32_t slot) {
    vmmfs_entry e{};
    const int fd = ::open(path_.c_str(), O_RDONLY);
    EXPECT_EQ(::pread(fd, &e, sizeof(e), 512 + slot * 64), 64);
    ::close(fd);
    return e;
  }
  void PokeEntry(uint32_t slot, vmmfs_entry e, bool fix_checksum = true) {
    if (fix_checksum) e.checksum = vmmfs_entry_checksum(&e);
    Poke(512 + slot * 64, &e, sizeof(e));
  }
  int OpenStatus() {
    auto v = vmmfs::Volume::Open(path_, false);
    return v ? 0 : v.error().status;
  }

  std::string path_;
};

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(VmmfsFormat, StructuresAre64Bytes) {
  EXPECT_EQ(sizeof(vmmfs_super), 64u);
  EXPECT_EQ(sizeof(vmmfs_entry), 64u);
  EXPECT_EQ(offsetof(vmmfs_super, total_sectors), 24u);
  EXPECT_EQ(offsetof(vmmfs_entry, first_sector), 32u);
  EXPECT_EQ(offsetof(vmmfs_entry, checksum), 60u);
}

TEST(VmmfsFormat, Fnv1aKnownValue) {
  EXPECT_EQ(vmmfs_fnv1a(VMMFS_FNV_INIT, "abcde", 5), 0x749bcf08u);
  EXPECT_EQ(vmmfs_fnv1a(VMMFS_FNV_INIT, "", 0), VMMFS_FNV_INIT);
}

TEST(VmmfsFormat, NameRules) {
  EXPECT_EQ(vmmfs_name_length("a.txt", 5), 5u);
  EXPECT_EQ(vmmfs_name_length("", 0), 0u);
  EXPECT_EQ(vmmfs_name_length("a b", 3), 0u);
  EXPECT_EQ(vmmfs_name_length("a/b", 3), 0u);
  EXPECT_EQ(vmmfs_name_length("\x7f", 1), 0u);
  const std::string long_name(32, 'x');
  EXPECT_EQ(vmmfs_name_length(long_name.data(), 31), 31u);
  EXPECT_EQ(vmmfs_name_length(long_name.data(), 32), 0u);
}

TEST(VmmfsFormat, FindFreeIsFirstFitAroundExtents) {
  vmmfs_super s;
  vmmfs_make_super(&s, 100);
  vmmfs_entry dir[3] = {};
  vmmfs_make_entry(&dir[0], "a", 1, 9, 512, 1, 0);    // sector 9
  vmmfs_make_entry(&dir[2], "b", 1, 12, 1024, 2, 0);  // sectors 12, 13
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, 1), 10u);
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, 2), 10u);
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, 3), 14u);
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, 86), 14u);
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, 87), 0u);
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, UINT64_MAX), 0u);
  EXPECT_EQ(vmmfs_find_free(dir, 3, &s, 0), 9u);
}

TEST(VmmfsFormat, EntryChecksCatchHostileValues) {
  vmmfs_super s;
  vmmfs_make_super(&s, 100);
  vmmfs_entry e;
  vmmfs_make_entry(&e, "f", 1, 9, 512, 1, 0);
  EXPECT_EQ(vmmfs_check_entry(&e, &s), VMMFS_OK);
  e.first_sector = UINT64_MAX;  // wraps with alloc_sectors
  e.checksum = vmmfs_entry_checksum(&e);
  EXPECT_EQ(vmmfs_check_entry(&e, &s), VMMFS_BAD_EXTENT);
  vmmfs_make_entry(&e, "f", 1, 99, 512, 2, 0);  // one sector past the end
  EXPECT_EQ(vmmfs_check_entry(&e, &s), VMMFS_BAD_EXTENT);
  vmmfs_make_entry(&e, "f", 1, 9, 513, 1, 0);
  EXPECT_EQ(vmmfs_check_entry(&e, &s), VMMFS_BAD_SIZE);
  vmmfs_make_entry(&e, "f", 1, 9, 512, 1, 0);
  e.name[5] = 'x';  // garbage after the NUL
  e.checksum = vmmfs_entry_checksum(&e);
  EXPECT_EQ(vmmfs_check_entry(&e, &s), VMMFS_BAD_NAME);
  vmmfs_make_entry(&e, "f", 1, 9, 512, 1, 0);
  e.size = 1;  // checksum not updated
  EXPECT_EQ(vmmfs_check_entry(&e, &s), VMMFS_BAD_ENTRY_CHECKSUM);
}

TEST(VmmfsParse, Sizes) {
  EXPECT_EQ(vmmfs::ParseSize("4096").value(), 4096u);
  EXPECT_EQ(vmmfs::ParseSize("64K").value(), 65536u);
  EXPECT_EQ(vmmfs::ParseSize("2m").value(), 2u << 20);
  EXPECT_EQ(vmmfs::ParseSize("1G").value(), 1u << 30);
  EXPECT_EQ(vmmfs::ParseSize("").error().status, vmmfs::kExitUsage);
  EXPECT_EQ(vmmfs::ParseSize("12X").error().status, vmmfs::kExitUsage);
  EXPECT_EQ(vmmfs::ParseSize("K").error().status, vmmfs::kExitUsage);
  EXPECT_EQ(vmmfs::ParseSize("99999999999999999999").error().status, vmmfs::kExitUsage);
  EXPECT_EQ(vmmfs::ParseSize("17179869184G").error().status, vmmfs::kExitUsage);
}

TEST_F(VmmfsTest, MkfsMakesAnEmptyVolume) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  auto v = vmmfs::Volume::Open(path_, false);
  ASSERT_TRUE(v) << v.error().message;
  EXPECT_TRUE(v->List().empty());
  EXPECT_EQ(v->TotalSectors(), 2048u);
  EXPECT_EQ(v->FreeSectors(), 2048u - 9);
}

TEST_F(VmmfsTest, MkfsRejectsBadSizes) {
  EXPECT_EQ(vmmfs::Mkfs(path_, 1000 * 1000).error().status, vmmfs::kExitUsage);
  EXPECT_EQ(vmmfs::Mkfs(path_, 8192).error().status, vmmfs::kExitUsage);
  EXPECT_EQ(vmmfs::Mkfs("/nonexistent-dir/x.img", 1 << 20).error().status, vmmfs::kExitCantCreate);
}

TEST_F(VmmfsTest, PutGetRoundTripIsByteExact) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  auto v = vmmfs::Volume::Open(path_, true);
  ASSERT_TRUE(v);
  std::vector<uint8_t> binary(1500);
  for (size_t i = 0; i < binary.size(); ++i) binary[i] = static_cast<uint8_t>(i * 13 + 1);
  ASSERT_TRUE(v->Write("bin", binary));
  ASSERT_TRUE(v->Write("empty", {}));
  ASSERT_TRUE(v->Write("hello.txt", Bytes("hello\n")));
  auto again = vmmfs::Volume::Open(path_, false);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->Read("bin").value(), binary);
  EXPECT_TRUE(again->Read("empty").value().empty());
  EXPECT_EQ(again->Read("hello.txt").value(), Bytes("hello\n"));
  const auto files = again->List();
  ASSERT_EQ(files.size(), 3u);
  EXPECT_EQ(files[0].name, "bin");
  EXPECT_EQ(files[0].first_sector, 9u);
  EXPECT_EQ(files[0].alloc_sectors, 3u);
  EXPECT_EQ(files[2].first_sector, 12u);
  EXPECT_EQ(again->FreeSectors(), 2048u - 9 - 4);
}

TEST_F(VmmfsTest, ReplaceUsesANewExtentAndFreesTheOld) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  auto v = vmmfs::Volume::Open(path_, true);
  ASSERT_TRUE(v->Write("f", Bytes("one")));
  ASSERT_TRUE(v->Write("f", Bytes("two two")));
  const auto files = v->List();
  ASSERT_EQ(files.size(), 1u);
  EXPECT_EQ(files[0].first_sector, 10u);  // not over the old copy at 9
  EXPECT_EQ(v->Read("f").value(), Bytes("two two"));
  ASSERT_TRUE(v->Write("g", Bytes("x")));  // takes the freed sector 9
  EXPECT_EQ(v->List()[1].first_sector, 9u);
}

TEST_F(VmmfsTest, RemoveAndMissingNames) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  auto v = vmmfs::Volume::Open(path_, true);
  ASSERT_TRUE(v->Write("f", Bytes("data")));
  ASSERT_TRUE(v->Remove("f"));
  EXPECT_TRUE(v->List().empty());
  EXPECT_EQ(v->Read("f").error().status, vmmfs::kExitNoInput);
  EXPECT_EQ(v->Remove("f").error().status, vmmfs::kExitNoInput);
  EXPECT_EQ(vmmfs::Volume::Open(path_, false)->List().size(), 0u);
  EXPECT_EQ(v->Write("a/b", Bytes("x")).error().status, vmmfs::kExitUsage);
  EXPECT_EQ(v->Write(std::string(32, 'n'), Bytes("x")).error().status, vmmfs::kExitUsage);
}

TEST_F(VmmfsTest, NoSpaceAndDirectoryFull) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 32 * 1024));  // 64 sectors, 55 for data
  auto v = vmmfs::Volume::Open(path_, true);
  EXPECT_EQ(v->Write("big", std::vector<uint8_t>(56 * 512)).error().status, vmmfs::kExitCantCreate);
  ASSERT_TRUE(v->Write("fits", std::vector<uint8_t>(55 * 512)));
  ASSERT_TRUE(v->Remove("fits"));
  for (int i = 0; i < 64; ++i) ASSERT_TRUE(v->Write("f" + std::to_string(i), {}));
  EXPECT_EQ(v->Write("one-more", {}).error().status, vmmfs::kExitCantCreate);
}

TEST_F(VmmfsTest, MissingOrForeignImages) {
  EXPECT_EQ(OpenStatus(), vmmfs::kExitNoInput);
  Poke(0, "not a file system", 17);
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);  // smaller than a sector
  std::vector<uint8_t> zeros(16384);
  Poke(0, zeros.data(), zeros.size());
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);  // bad magic
}

TEST_F(VmmfsTest, CorruptSuperblockIsRefused) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  const uint32_t dir_sectors = 200;
  Poke(12, &dir_sectors, 4);
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  const uint8_t flip = 0x55;
  Poke(30, &flip, 1);  // total_sectors, checksum stale
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);
  // A volume larger than its image (a truncated copy).
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  ASSERT_EQ(::truncate(path_.c_str(), 512 * 1024), 0);
  auto v = vmmfs::Volume::Open(path_, false);
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message.find("total_sectors"), std::string::npos) << v.error().message;
}

TEST_F(VmmfsTest, HostileDirectoryEntriesAreRefused) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  {
    auto v = vmmfs::Volume::Open(path_, true);
    ASSERT_TRUE(v->Write("a", std::vector<uint8_t>(1024, 1)));
    ASSERT_TRUE(v->Write("b", std::vector<uint8_t>(512, 2)));
  }
  const vmmfs_entry a = Entry(0), b = Entry(1);
  vmmfs_entry e = b;
  e.first_sector = 10;  // inside a's extent
  PokeEntry(1, e);
  auto v = vmmfs::Volume::Open(path_, false);
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().status, vmmfs::kExitDataErr);
  EXPECT_NE(v.error().message.find("entry 1"), std::string::npos) << v.error().message;
  EXPECT_NE(v.error().message.find("overlap"), std::string::npos) << v.error().message;

  e = b;
  std::memcpy(e.name, "a", 2);  // duplicate name
  PokeEntry(1, e);
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);

  e = b;
  e.alloc_sectors = 0xffffffff;  // past the end
  PokeEntry(1, e);
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);

  e = b;
  e.size = 1;  // checksum left stale
  PokeEntry(1, e, false);
  EXPECT_EQ(OpenStatus(), vmmfs::kExitDataErr);

  PokeEntry(1, b);
  PokeEntry(0, a);
  EXPECT_EQ(OpenStatus(), 0);
}

TEST_F(VmmfsTest, CorruptFileDataIsDetectedOnRead) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 1 << 20));
  auto v = vmmfs::Volume::Open(path_, true);
  ASSERT_TRUE(v->Write("f", Bytes("precious")));
  Poke(9 * 512 + 3, "X", 1);
  auto data = v->Read("f");
  ASSERT_FALSE(data);
  EXPECT_EQ(data.error().status, vmmfs::kExitDataErr);
  EXPECT_NE(data.error().message.find("checksum"), std::string::npos);
}

// A fixed-seed mutation run over the superblock and directory (the bytes a
// guest controls when it writes an image the host tool then reads): every
// image either fails Open with an error or lists files that lie inside the
// volume and read back (or fail their checksum) without crashing. Half of
// the mutants get their checksums recomputed so the structural checks are
// reached. Under the asan preset this is a small fuzz run.
TEST_F(VmmfsTest, MutatedImagesAreRefusedOrReadSafely) {
  ASSERT_TRUE(vmmfs::Mkfs(path_, 32 * 1024));
  {
    auto v = vmmfs::Volume::Open(path_, true);
    ASSERT_TRUE(v->Write("a", std::vector<uint8_t>(700, 'a')));
    ASSERT_TRUE(v->Write("b", {}));
    ASSERT_TRUE(v->Write("c", std::vector<uint8_t>(1500, 'c')));
  }
  std::ifstream in(path_, std::ios::binary);
  const std::vector<uint8_t> seed((std::istreambuf_iterator<char>(in)),
                                  std::istreambuf_iterator<char>());
  ASSERT_EQ(seed.size(), 32u * 1024);
  std::mt19937_64 rng(20261122);
  int opened = 0, refused = 0;
  const int fd = ::open(path_.c_str(), O_RDWR);
  ASSERT_GE(fd, 0);
  for (int i = 0; i < 3000; ++i) {
    std::vector<uint8_t> img = seed;
    const int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) {
      const size_t at = rng() % ((1 + VMMFS_DIR_SECTORS) * VMMFS_SECTOR);
      const uint8_t kValues[] = {0, 0xff, 0x7f, 0x80, 1, static_cast<uint8_t>(rng())};
      img[at] = kValues[rng() % sizeof(kValues)];
    }
    if (rng() % 2 == 0) {
      vmmfs_super s;
      std::memcpy(&s, img.data(), sizeof(s));
      s.checksum = vmmfs_super_checksum(&s);
      std::memcpy(img.data(), &s, sizeof(s));
      for (size_t e = 0; e < VMMFS_DIR_SECTORS * VMMFS_ENTRIES_PER_SECTOR; ++e) {
        vmmfs_entry entry;
        std::memcpy(&entry, img.data() + VMMFS_SECTOR + e * 64, 64);
        if (entry.name[0] == 0) continue;
        entry.checksum = vmmfs_entry_checksum(&entry);
        std::memcpy(img.data() + VMMFS_SECTOR + e * 64, &entry, 64);
      }
    }
    if (rng() % 8 == 0) img.resize(rng() % img.size());
    ASSERT_EQ(::ftruncate(fd, static_cast<off_t>(img.size())), 0);
    ASSERT_EQ(::pwrite(fd, img.data(), img.size(), 0), static_cast<ssize_t>(img.size()));
    auto v = vmmfs::Volume::Open(path_, false);
    if (!v) {
      ++refused;
      EXPECT_FALSE(v.error().message.empty());
      continue;
    }
    ++opened;
    for (const auto& f : v->List()) {
      EXPECT_GE(f.first_sector, 1u + VMMFS_DIR_SECTORS);
      EXPECT_LE(f.first_sector + f.alloc_sectors, v->TotalSectors());
      EXPECT_LE(f.size, uint64_t{f.alloc_sectors} * VMMFS_SECTOR);
      auto data = v->Read(f.name);
      if (data) {
        EXPECT_EQ(data->size(), f.size);
      }
    }
  }
  ::close(fd);
  EXPECT_GT(opened, 100);
  EXPECT_GT(refused, 100);
}

}  // namespace
