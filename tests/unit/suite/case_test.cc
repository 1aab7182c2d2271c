#include "vmm/suite/case.h"

#include <gtest/gtest.h>

namespace vmm::suite {
namespace {

const PathContext kPaths{"/build", "/src"};
const std::filesystem::path kFile = "/src/tests/boot/banner.json";

base::Result<CaseSpec> Parse(std::string_view text) { return ParseCase(text, kFile, kPaths); }

std::string ErrorOf(std::string_view text) {
  base::Result<CaseSpec> spec = Parse(text);
  EXPECT_FALSE(spec.has_value()) << text;
  return spec ? "" : spec.error().message();
}

TEST(CaseParsing, FullCaseParses) {
  base::Result<CaseSpec> spec = Parse(R"({
    "name": "boot-1", "description": "d", "kernel": "${build}/guest-kernel/kernel.elf",
    "initrd": "data/initrd.img", "cmdline": "exit=3", "memory": "256M", "cpus": 2,
    "disks": ["data/disk.img,ro"], "args": ["--rng"], "timeout": 7.5, "result": "exit:3",
    "expect": ["a", "b"], "forbid": ["panic"], "tags": ["smoke"]
  })");

  ASSERT_TRUE(spec.has_value()) << spec.error().message();
  EXPECT_EQ(spec->name, "boot-1");
  EXPECT_EQ(spec->kernel, "/build/guest-kernel/kernel.elf");
  EXPECT_EQ(spec->initrd, "/src/tests/boot/data/initrd.img");
  EXPECT_EQ(spec->disks, std::vector<std::string>{"/src/tests/boot/data/disk.img,ro"});
  EXPECT_EQ(spec->memory, "256M");
  EXPECT_EQ(spec->cpus, 2);
  EXPECT_DOUBLE_EQ(spec->timeout_s, 7.5);
  EXPECT_EQ(spec->outcome, (Outcome{OutcomeKind::kExit, 3}));
  EXPECT_EQ(spec->expect.size(), 2u);
  EXPECT_EQ(spec->tags, std::vector<std::string>{"smoke"});
}

TEST(CaseParsing, DefaultsApply) {
  base::Result<CaseSpec> spec = Parse(R"({"kernel": "/abs/k.elf"})");

  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->name, "banner");  // the file's stem
  EXPECT_EQ(spec->kernel, "/abs/k.elf");
  EXPECT_EQ(spec->outcome, (Outcome{OutcomeKind::kExit, 0}));
  EXPECT_EQ(spec->memory, "128M");
  EXPECT_EQ(spec->cpus, 1);
}

TEST(CaseParsing, SourcePrefixAndDotDotResolve) {
  base::Result<CaseSpec> spec =
      Parse(R"({"kernel": "../../k.elf", "initrd": "${source}/x/i.img"})");

  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->kernel, "/src/k.elf");
  EXPECT_EQ(spec->initrd, "/src/x/i.img");
}

TEST(CaseParsing, ErrorsNameFileAndField) {
  EXPECT_EQ(ErrorOf(R"({"kernel": "k", "cpus": "two"})"),
            "/src/tests/boot/banner.json: field 'cpus': must be an integer 1..254, not \"two\"");
  EXPECT_EQ(ErrorOf(R"({"cmdline": "x"})"),
            "/src/tests/boot/banner.json: field 'kernel': missing (every case boots one)");
  EXPECT_EQ(ErrorOf(R"({"kernel": "k", "expct": []})"),
            "/src/tests/boot/banner.json: field 'expct': unknown field");
  EXPECT_EQ(ErrorOf(R"({"kernel": "k", "expect": ["ok", 3]})"),
            "/src/tests/boot/banner.json: field 'expect[1]': must be a string, not number");
}

TEST(CaseParsing, BadRegexNamesItsIndex) {
  std::string error = ErrorOf(R"({"kernel": "k", "forbid": ["fine", "(open"]})");
  EXPECT_TRUE(
      error.starts_with("/src/tests/boot/banner.json: field 'forbid[1]': bad regular "
                        "expression '(open'"))
      << error;
}

// The suite_case fuzz target's crash (docs/security.md, "Fuzzing"), as found.
TEST(CaseParsing, HugeRegexRepetitionCountNamesItsField) {
  const std::string text =
      R"({"kernel": "k", "result": "setup-error:65", "expect": ["(a|b)+[x-z]]{0)" +
      std::string(106, '2') + R"(,2}"]})";
  std::string error = ErrorOf(text);
  EXPECT_TRUE(
      error.starts_with("/src/tests/boot/banner.json: field 'expect[0]': bad regular "
                        "expression"))
      << error;
  EXPECT_NE(error.find("repetition count"), std::string::npos) << error;
}

TEST(CaseParsing, BadValuesAreRejected) {
  EXPECT_NE(ErrorOf(R"({"kernel": "k", "result": "exit:64"})").find("field 'result'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kernel": "k", "result": "reboot"})").find("field 'result'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kernel": "k", "result": 99})").find("field 'result'"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kernel": "k", "timeout": 0})").find("field 'timeout'"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kernel": "k", "memory": "lots"})").find("field 'memory'"),
            std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kernel": "k", "name": "a b"})").find("field 'name'"), std::string::npos);
  EXPECT_NE(ErrorOf(R"({"kernel": ""})").find("field 'kernel'"), std::string::npos);
}

TEST(CaseParsing, InputAndItsTriggerParse) {
  base::Result<CaseSpec> spec =
      Parse(R"({"kernel": "k", "input": "ls\r", "input_after": "ready"})");
  ASSERT_TRUE(spec.has_value());
  EXPECT_EQ(spec->input, "ls\r");
  EXPECT_EQ(spec->input_after, "ready");

  EXPECT_EQ(ErrorOf(R"({"kernel": "k", "input_after": "ready"})"),
            "/src/tests/boot/banner.json: field 'input_after': needs an 'input' to send");
}

TEST(CaseParsing, SyntaxErrorNamesTheFile) {
  std::string error = ErrorOf("{ \"kernel\": ");
  EXPECT_TRUE(error.starts_with("/src/tests/boot/banner.json: not valid JSON")) << error;
  EXPECT_TRUE(ErrorOf("[1, 2]").ends_with("a case must be a JSON object, not array"));
}

TEST(CaseParsing, OutcomesParse) {
  EXPECT_EQ(ParseOutcome("exit:0").value(), (Outcome{OutcomeKind::kExit, 0}));
  EXPECT_EQ(ParseOutcome("exit:63").value(), (Outcome{OutcomeKind::kExit, 63}));
  EXPECT_EQ(ParseOutcome("triple-fault").value(), (Outcome{OutcomeKind::kTripleFault, 80}));
  EXPECT_EQ(ParseOutcome("timeout").value(), (Outcome{OutcomeKind::kTimeout, 82}));
  EXPECT_EQ(ParseOutcome("setup-error:65").value(), (Outcome{OutcomeKind::kSetupError, 65}));
  EXPECT_FALSE(ParseOutcome("exit:").has_value());
  EXPECT_FALSE(ParseOutcome("exit:-1").has_value());
  EXPECT_FALSE(ParseOutcome("setup-error:80").has_value());
  EXPECT_EQ(ParseOutcome("exit:5")->ToString(), "exit:5");
}

TEST(CaseParsing, VmmCommandCarriesEveryField) {
  base::Result<CaseSpec> spec = Parse(R"({"kernel": "/k", "initrd": "/i", "cmdline": "a b",
                                    "disks": ["/d"], "args": ["--rng"], "timeout": 3})");
  ASSERT_TRUE(spec.has_value());

  std::vector<std::string> argv = BuildVmmCommand(*spec, "/bin/vmm");

  std::vector<std::string> expected = {
      "/bin/vmm", "--kernel",     "/k",     "--initrd", "/i",       "--cmdline", "a b",
      "--memory", "128M",         "--cpus", "1",        "--serial", "stdio",     "--timeout",
      "3",        "--boot-trace", "--disk", "/d",       "--rng"};
  EXPECT_EQ(argv, expected);
}

TEST(CaseParsing, StatusesAreDescribed) {
  EXPECT_EQ(DescribeStatus(0), "exit:0");
  EXPECT_EQ(DescribeStatus(66), "setup-error:66");
  EXPECT_EQ(DescribeStatus(80), "triple-fault");
  EXPECT_EQ(DescribeStatus(81), "kvm-error");
  EXPECT_EQ(DescribeStatus(82), "timeout");
  EXPECT_EQ(DescribeStatus(79), "status:79");
}

}  // namespace
}  // namespace vmm::suite
