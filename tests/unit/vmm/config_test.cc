#include "vmm/config.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

namespace vmm {
namespace {

base::Result<VmConfig> Parse(std::string_view text) {
  return ParseConfig(text, "/cfg", "test.json");
}

TEST(Config, FullConfigParsesAndResolvesRelativePaths) {
  auto config = Parse(R"({"kernel": "k.elf", "initrd": ["a", "/abs/b"], "cmdline": "x=1",
    "memory": "256M", "cpus": 1, "serial": "file:out.log",
    "disks": ["d.img,ro", {"path": "e.img", "read_only": false}],
    "rng": true, "api_sock": "api.sock", "timeout": 2.5, "boot_trace": true,
    "log_level": "info", "boot_protocol": "pvh", "cpu_template": "emulated"})");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->kernel, "/cfg/k.elf");
  EXPECT_EQ(config->initrds, (std::vector<std::string>{"/cfg/a", "/abs/b"}));
  EXPECT_EQ(config->memory, 256u << 20);
  EXPECT_EQ(config->serial, (SerialSpec{SerialSpec::Kind::kFile, "/cfg/out.log"}));
  ASSERT_EQ(config->disks.size(), 2u);
  EXPECT_TRUE(config->disks[0].read_only);
  EXPECT_EQ(config->disks[0].path, "/cfg/d.img");
  EXPECT_FALSE(config->disks[1].read_only);
  EXPECT_EQ(config->api_sock, "/cfg/api.sock");
  EXPECT_DOUBLE_EQ(config->timeout_seconds, 2.5);
  EXPECT_TRUE(config->boot_trace);
  EXPECT_EQ(config->boot_protocol, firmware::BootProtocol::kPvh);
  EXPECT_EQ(config->cpu_template, CpuTemplate::kEmulated);
}

TEST(Config, ErrorsNameTheFileAndTheField) {
  struct Case {
    const char* json;
    const char* expected;
  } cases[] = {
      {"{", "test.json: not valid JSON"},
      {"[]", "top level must be a JSON object"},
      {R"({"kernal": "x"})", "unknown field 'kernal'"},
      {R"({"memory": "12Q"})", "field 'memory'"},
      {R"({"memory": -5})", "field 'memory'"},
      {R"({"cpus": "two"})", "field 'cpus'"},
      {R"({"timeout": -1})", "field 'timeout'"},
      {R"({"disks": [{"path": "a", "ro": true}]})", "disks[0].ro"},
      {R"({"disks": [{}]})", "disks[0].path' is missing"},
      {R"({"disks": "a"})", "field 'disks'"},
      {R"({"rng": "yes"})", "field 'rng'"},
  };
  for (const auto& c : cases) {
    auto config = Parse(c.json);
    ASSERT_FALSE(config) << c.json;
    EXPECT_EQ(config.error().kind(), base::ErrorKind::kConfig) << c.json;
    EXPECT_NE(config.error().message().find(c.expected), std::string::npos)
        << c.json << " -> " << config.error().message();
    EXPECT_NE(config.error().message().find("test.json"), std::string::npos);
  }
}

TEST(Config, MissingFileIsNoInput) {
  auto config = LoadConfigFile("/nonexistent/vm.json");
  ASSERT_FALSE(config);
  EXPECT_EQ(config.error().exit_status(), 66);
  EXPECT_NE(config.error().message().find("/nonexistent/vm.json"), std::string::npos);
}

TEST(Config, LoadFileResolvesAgainstItsFolder) {
  auto dir = std::filesystem::temp_directory_path() / "vmm_config_test";
  std::filesystem::create_directories(dir);
  std::ofstream(dir / "vm.json") << R"({"kernel": "../k.elf"})";
  auto config = LoadConfigFile((dir / "vm.json").string());
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->kernel, (dir.parent_path() / "k.elf").string());
  std::filesystem::remove_all(dir);
}

TEST(Config, DiskSpec) {
  EXPECT_EQ(ParseDiskSpec("a.img")->path, "a.img");
  EXPECT_TRUE(ParseDiskSpec("a.img,ro")->read_only);
  EXPECT_FALSE(ParseDiskSpec("a.img,rw"));
  EXPECT_FALSE(ParseDiskSpec(",ro"));
}

TEST(Config, ValidateRanges) {
  VmConfig config;
  EXPECT_TRUE(ValidateConfig(config));
  config.memory = 1 << 20;
  EXPECT_FALSE(ValidateConfig(config));
  config.memory = (64u << 20) + 1;
  EXPECT_FALSE(ValidateConfig(config));
  config.memory = 64u << 20;
  config.cpus = 0;
  EXPECT_FALSE(ValidateConfig(config));
  config.cpus = kMaxCpus + 1;
  auto too_many = ValidateConfig(config);
  ASSERT_FALSE(too_many);
  EXPECT_EQ(too_many.error().exit_status(), 78);
}

TEST(Config, ConsoleFieldTakesSerialSyntaxAndResolvesPaths) {
  auto config = Parse(R"({"kernel": "k.elf", "console": "file:hvc0.log", "serial": "none"})");
  ASSERT_TRUE(config) << config.error().ToString();
  EXPECT_EQ(config->console, (SerialSpec{SerialSpec::Kind::kFile, "/cfg/hvc0.log"}));
  EXPECT_TRUE(ValidateConfig(*config));
  EXPECT_EQ(VmConfig{}.console.kind, SerialSpec::Kind::kNone);
  EXPECT_EQ(VmConfig{}.serial.kind, SerialSpec::Kind::kStdio);
  auto bad = Parse(R"({"kernel": "k.elf", "console": 3})");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().ToString().find("'console'"), std::string::npos);
}

TEST(Config, SerialAndConsoleOnStdioIsAUsageError) {
  VmConfig config;
  config.kernel = "k.elf";
  config.serial = SerialSpec{SerialSpec::Kind::kStdio, ""};
  config.console = SerialSpec{SerialSpec::Kind::kStdio, ""};
  auto both = ValidateConfig(config);
  ASSERT_FALSE(both);
  EXPECT_EQ(both.error().kind(), base::ErrorKind::kUsage);
  EXPECT_EQ(both.error().exit_status(), 64);
  config.serial = SerialSpec{SerialSpec::Kind::kNone, ""};
  EXPECT_TRUE(ValidateConfig(config));
}

}  // namespace
}  // namespace vmm
