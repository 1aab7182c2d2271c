// The typed VmConfig: every enum value and backend, bad values, limits.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "vmm/config.h"

namespace vmm {
namespace {

base::Result<VmConfig> Parse(std::string_view text) {
  return ParseConfig(text, "/cfg", "test.json");
}

std::string ErrorOf(std::string_view text) {
  auto config = Parse(text);
  EXPECT_FALSE(config) << text;
  if (config) return "";
  EXPECT_EQ(config.error().exit_status(), 78) << text;
  return config.error().message();
}

TEST(TypedConfig, EveryBootProtocolName) {
  struct {
    const char* name;
    firmware::BootProtocol value;
  } cases[] = {
      {"auto", firmware::BootProtocol::kAuto},
      {"elf64", firmware::BootProtocol::kElf64},
      {"pvh", firmware::BootProtocol::kPvh},
      {"bzimage", firmware::BootProtocol::kBzImage},
      {"multiboot", firmware::BootProtocol::kMultiboot},
      {"bzimage-unpacked", firmware::BootProtocol::kBzImageUnpacked},
      {"limine", firmware::BootProtocol::kLimine},
      {"bootboot", firmware::BootProtocol::kBootboot},
  };
  for (const auto& c : cases) {
    auto config = Parse(fmt::format(R"({{"boot_protocol": "{}"}})", c.name));
    ASSERT_TRUE(config) << c.name << ": " << config.error().ToString();
    EXPECT_EQ(config->boot_protocol, c.value) << c.name;
    EXPECT_EQ(firmware::BootProtocolName(c.value), std::string(c.name));
  }
  EXPECT_EQ(
      firmware::BootProtocolChoices(),
      "auto, elf64, pvh, bzimage, multiboot, multiboot2, bzimage-unpacked, limine or bootboot");
}

TEST(TypedConfig, EveryCpuTemplateName) {
  for (auto [name, value] :
       {std::pair{"auto", CpuTemplate::kAuto}, std::pair{"host", CpuTemplate::kHost},
        std::pair{"emulated", CpuTemplate::kEmulated}}) {
    auto config = Parse(fmt::format(R"({{"cpu_template": "{}"}})", name));
    ASSERT_TRUE(config) << name;
    EXPECT_EQ(config->cpu_template, value);
    EXPECT_EQ(CpuTemplateName(value), name);
  }
}

TEST(TypedConfig, EverySerialBackend) {
  struct {
    const char* text;
    SerialSpec spec;
  } cases[] = {
      {"stdio", {SerialSpec::Kind::kStdio, ""}},
      {"none", {SerialSpec::Kind::kNone, ""}},
      {"file:out.log", {SerialSpec::Kind::kFile, "/cfg/out.log"}},
      {"socket:/run/s.sock", {SerialSpec::Kind::kSocket, "/run/s.sock"}},
  };
  for (const auto& c : cases) {
    for (const char* field : {"serial", "console"}) {
      auto config = Parse(fmt::format(R"({{"{}": "{}"}})", field, c.text));
      ASSERT_TRUE(config) << c.text << ": " << config.error().ToString();
      const SerialSpec& got =
          std::string_view(field) == "serial" ? config->serial : config->console;
      EXPECT_EQ(got, c.spec) << field << " " << c.text;
    }
  }
}

TEST(TypedConfig, BadEnumValuesNameTheFieldAndTheValue) {
  std::string protocol = ErrorOf(R"({"boot_protocol": "uefi"})");
  EXPECT_NE(protocol.find("test.json: field 'boot_protocol'"), std::string::npos) << protocol;
  EXPECT_NE(protocol.find("'uefi'"), std::string::npos) << protocol;
  EXPECT_NE(protocol.find("multiboot"), std::string::npos) << protocol;
  std::string cpu = ErrorOf(R"({"cpu_template": "fast"})");
  EXPECT_NE(cpu.find("field 'cpu_template'"), std::string::npos) << cpu;
  EXPECT_NE(cpu.find("'fast'"), std::string::npos) << cpu;
  std::string serial = ErrorOf(R"({"serial": "tcp:1"})");
  EXPECT_NE(serial.find("field 'serial'"), std::string::npos) << serial;
  EXPECT_NE(serial.find("tcp:1"), std::string::npos) << serial;
  std::string console = ErrorOf(R"({"console": "file:"})");
  EXPECT_NE(console.find("field 'console'"), std::string::npos) << console;
  EXPECT_NE(ErrorOf(R"({"boot_protocol": 3})").find("field 'boot_protocol'"), std::string::npos);
}

TEST(TypedConfig, CommandLineSpellingOfBadBackends) {
  auto serial = ParseSerialSpec("tcp:1", "--console");
  ASSERT_FALSE(serial);
  EXPECT_EQ(serial.error().exit_status(), 64);
  EXPECT_EQ(serial.error().message(),
            "--console tcp:1: expected stdio, file:PATH, socket:PATH or none");
  auto protocol = firmware::ParseBootProtocol("uefi");
  ASSERT_FALSE(protocol);
  EXPECT_EQ(protocol.error().exit_status(), 64);
  EXPECT_FALSE(ParseCpuTemplate("Host"));
}

TEST(TypedConfig, CpusAreBoundedByTheApicIdSpace) {
  EXPECT_EQ(kMaxCpus, 254u);
  EXPECT_TRUE(Parse(R"({"cpus": 254})"));
  std::string error = ErrorOf(R"({"cpus": 255})");
  EXPECT_NE(error.find("field 'cpus'"), std::string::npos) << error;
  EXPECT_NE(error.find("255"), std::string::npos) << error;
  ErrorOf(R"({"cpus": 0})");
  ErrorOf(R"({"cpus": 4294967297})");
}

TEST(TypedConfig, TimeoutMustBeFiniteAndInRange) {
  EXPECT_TRUE(Parse(R"({"timeout": 0})"));
  EXPECT_TRUE(Parse(R"({"timeout": 1e9})"));
  for (const char* text : {R"({"timeout": 1e19})", R"({"timeout": -1})"}) {
    auto config = Parse(text);
    if (!config) {
      EXPECT_NE(config.error().message().find("field 'timeout'"), std::string::npos) << text;
      EXPECT_EQ(config.error().exit_status(), 78);
    } else {
      ADD_FAILURE() << text << " accepted";
    }
  }
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  for (double bad : {nan, inf, -inf, -0.5, 1e9 + 1, 1e19}) {
    auto r = CheckTimeout(bad, base::ErrorKind::kUsage, "--timeout");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().exit_status(), 64);
    EXPECT_TRUE(r.error().message().starts_with("--timeout: ")) << r.error().message();
  }
  EXPECT_NE(CheckTimeout(nan, base::ErrorKind::kUsage, "--timeout").error().message().find("nan"),
            std::string::npos);
  EXPECT_TRUE(CheckTimeout(2.5, base::ErrorKind::kUsage, "--timeout"));
  VmConfig config;
  config.timeout_seconds = nan;
  EXPECT_FALSE(ValidateConfig(config));
}

TEST(TypedConfig, NulInsideAPathIsRefused) {
  for (const char* text : {R"({"kernel": "k.elf\u0000.txt"})", R"({"initrd": ["a", "b\u0000"]})",
                           R"({"api_sock": "\u0000"})", R"({"disks": ["d\u0000.img"]})",
                           R"({"disks": [{"path": "d\u0000"}]})", R"({"serial": "file:a\u0000b"})",
                           R"({"console": "socket:\u0000"})"}) {
    std::string error = ErrorOf(text);
    EXPECT_NE(error.find("test.json: field '"), std::string::npos) << text << " -> " << error;
    EXPECT_NE(error.find("NUL"), std::string::npos) << text << " -> " << error;
  }
}

}  // namespace
}  // namespace vmm
