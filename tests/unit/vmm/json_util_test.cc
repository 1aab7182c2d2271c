#include "vmm/json_util.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "vmm/config.h"

namespace vmm::json {
namespace {

namespace fs = std::filesystem;

fs::path MakeTempDir() {
  char name[] = "/tmp/vmm_json_util_XXXXXX";
  return fs::path(mkdtemp(name));
}

TEST(JsonUtil, ParseErrorsNameTheOrigin) {
  auto bad = Parse("{\"a\": ", "x.json");
  ASSERT_FALSE(bad);
  EXPECT_EQ(bad.error().exit_status(), 78);
  EXPECT_TRUE(bad.error().message().starts_with("x.json: not valid JSON: "))
      << bad.error().message();
  auto ok = Parse("// comment\n{\"a\": 1}", "x.json");
  ASSERT_TRUE(ok);
  EXPECT_EQ((*ok)["a"], 1);
}

TEST(JsonUtil, TypedGettersNameFileAndField) {
  Json doc = *Parse(R"({"s": "x", "n": 2.5, "b": true, "u": 7, "p": "a\u0000b"})", "f.json");
  EXPECT_EQ(*GetString(doc["s"], "f.json", "s"), "x");
  EXPECT_EQ(*GetNumber(doc["n"], "f.json", "n"), 2.5);
  EXPECT_TRUE(*GetBool(doc["b"], "f.json", "b"));
  EXPECT_EQ(*GetUnsigned(doc["u"], "f.json", "u", 10), 7u);
  EXPECT_EQ(GetString(doc["n"], "f.json", "n").error().message(),
            "f.json: field 'n': must be a string, not number");
  EXPECT_EQ(GetBool(doc["s"], "f.json", "s").error().message(),
            "f.json: field 's': must be true or false, not string");
  EXPECT_FALSE(GetNumber(doc["s"], "f.json", "s"));
  EXPECT_FALSE(GetUnsigned(doc["u"], "f.json", "u", 6));
  EXPECT_EQ(GetPath(doc["p"], "f.json", "p").error().message(),
            "f.json: field 'p': the path holds a NUL character");
  EXPECT_EQ(GetPath(doc["p"], "f.json", "p").error().exit_status(), 78);
  EXPECT_EQ(*GetPath(doc["s"], "f.json", "s"), "x");
}

TEST(JsonUtil, ReadJsonFileRefusesDevicesAndHugeFiles) {
  auto zero = ReadJsonFile("/dev/zero", "config file");
  ASSERT_FALSE(zero);
  EXPECT_EQ(zero.error().exit_status(), 78);
  EXPECT_NE(zero.error().message().find("/dev/zero"), std::string::npos);
  EXPECT_NE(zero.error().message().find("not a regular file"), std::string::npos);

  fs::path dir = MakeTempDir();
  fs::path big = dir / "big.json";
  { std::ofstream(big) << "{}"; }
  fs::resize_file(big, kMaxJsonFileBytes + 1);  // sparse: costs no disk
  auto huge = ReadJsonFile(big.string(), "config file");
  ASSERT_FALSE(huge);
  EXPECT_EQ(huge.error().exit_status(), 78);
  EXPECT_NE(huge.error().message().find(big.string()), std::string::npos);
  EXPECT_NE(huge.error().message().find("1048577 bytes"), std::string::npos)
      << huge.error().message();

  auto missing = ReadJsonFile((dir / "none.json").string(), "config file");
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().exit_status(), 66);

  fs::path small = dir / "ok.json";
  { std::ofstream(small) << R"({"kernel": "k"})"; }
  EXPECT_EQ(*ReadJsonFile(small.string(), "config file"), R"({"kernel": "k"})");
  fs::remove_all(dir);
}

TEST(JsonUtil, ConfigFileFromADeviceIsABadConfig) {
  auto config = LoadConfigFile("/dev/zero");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().exit_status(), 78);
  EXPECT_NE(config.error().message().find("/dev/zero"), std::string::npos);
}

}  // namespace
}  // namespace vmm::json
