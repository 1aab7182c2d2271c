#include "firmware/image_file.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>

namespace firmware {
namespace {

namespace fs = std::filesystem;

TEST(ImageFile, HugeSparseFileIsRefusedBeforeReading) {
  char name[] = "/tmp/vmm_image_file_XXXXXX";
  fs::path dir(mkdtemp(name));
  fs::path sparse = dir / "sparse.img";
  { std::ofstream(sparse) << "x"; }
  fs::resize_file(sparse, 64ull << 30);  // 64 GiB, no disk blocks
  auto r = ReadImageFile(sparse.string(), "kernel image", kMaxKernelImageBytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().exit_status(), 65);
  EXPECT_NE(r.error().message().find(sparse.string()), std::string::npos) << r.error().message();
  EXPECT_NE(r.error().message().find("68719476736 bytes"), std::string::npos)
      << r.error().message();

  // An initrd larger than guest RAM: refused by size, not read.
  fs::resize_file(sparse, (200ull << 20));
  auto initrd = ReadImageFile(sparse.string(), "initrd", 128ull << 20);
  ASSERT_FALSE(initrd);
  EXPECT_EQ(initrd.error().exit_status(), 65);
  EXPECT_NE(initrd.error().message().find("initrd"), std::string::npos);

  fs::resize_file(sparse, 4096);
  auto ok = ReadImageFile(sparse.string(), "initrd", 4096);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->size(), 4096u);
  fs::remove_all(dir);
}

TEST(ImageFile, DevicesAreNotRegularFiles) {
  auto r = ReadImageFile("/dev/zero", "kernel image", kMaxKernelImageBytes);
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().exit_status(), 66);
}

}  // namespace
}  // namespace firmware
