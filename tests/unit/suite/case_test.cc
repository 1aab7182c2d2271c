#include "vmm/suite/case.h"

#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <fstream>

#include "base/png.h"

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

// A folder for case files with a reference PNG next to them.
class ScreenCase : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (std::filesystem::temp_directory_path() / "vmm-screen-XXXXXX").string();
    ASSERT_NE(mkdtemp(tmpl.data()), nullptr);
    dir_ = tmpl;
    base::RgbImage image{4, 2, std::vector<uint8_t>(4 * 2 * 3, 0x40)};
    std::vector<uint8_t> png = base::EncodeRgbPng(image).value();
    Write("ref.png", std::string(png.begin(), png.end()));
  }
  void TearDown() override {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  void Write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  base::Result<CaseSpec> ParseHere(std::string_view text) {
    return ParseCase(text, dir_ / "c.json", kPaths);
  }
  std::string ErrorHere(std::string_view text) {
    base::Result<CaseSpec> spec = ParseHere(text);
    EXPECT_FALSE(spec.has_value()) << text;
    if (spec) return "";
    EXPECT_EQ(spec.error().kind(), base::ErrorKind::kConfig) << text;
    return spec.error().message();
  }
  std::string Prefix() const { return (dir_ / "c.json").string() + ": field "; }

  std::filesystem::path dir_;
};

TEST_F(ScreenCase, ProbesAndFramebufferReachTheVmmCommand) {
  base::Result<CaseSpec> spec = ParseHere(R"({"kernel": "/k", "framebuffer": "640x480",
      "screen": {"probes": [[0, 0, "#000000"], [639, 479, "#Ff8000"]]}})");
  ASSERT_TRUE(spec.has_value()) << spec.error().message();
  ASSERT_TRUE(spec->screen);
  ASSERT_EQ(spec->screen->probes.size(), 2u);
  EXPECT_EQ(spec->screen->probes[1].x, 639u);
  EXPECT_EQ(spec->screen->probes[1].y, 479u);
  EXPECT_EQ(spec->screen->probes[1].rgb, 0xff8000u);
  EXPECT_FALSE(spec->screen->reference_image);

  std::vector<std::string> argv = BuildVmmCommand(*spec, "/bin/vmm", "/out/c");

  std::vector<std::string> tail(argv.end() - 4, argv.end());
  EXPECT_EQ(tail, (std::vector<std::string>{"--framebuffer", "640x480", "--screenshot",
                                            "/out/c/screen.png"}));
}

TEST_F(ScreenCase, ReferenceResolvesNextToTheCaseAndIsDecodedAtLoad) {
  base::Result<CaseSpec> spec =
      ParseHere(R"({"kernel": "/k", "screen": {"reference": "ref.png"}})");
  ASSERT_TRUE(spec.has_value()) << spec.error().message();
  EXPECT_EQ(spec->screen->reference, (dir_ / "ref.png").string());
  ASSERT_TRUE(spec->screen->reference_image);
  EXPECT_EQ(spec->screen->reference_image->width, 4u);
  EXPECT_EQ(spec->screen->reference_image->At(3, 1), 0x404040u);
  // No "framebuffer": vmm's default (auto) is left alone.
  std::vector<std::string> argv = BuildVmmCommand(*spec, "/bin/vmm", "/out/c");
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "--framebuffer"), 0);
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "--screenshot"), 1);
}

TEST_F(ScreenCase, ACaseWithoutScreenGetsNoScreenshot) {
  base::Result<CaseSpec> spec = ParseHere(R"({"kernel": "/k", "framebuffer": "auto"})");
  ASSERT_TRUE(spec.has_value());
  std::vector<std::string> argv = BuildVmmCommand(*spec, "/bin/vmm", "/out/c");
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "--screenshot"), 0);
  EXPECT_EQ(std::count(argv.begin(), argv.end(), "auto"), 1);
}

TEST_F(ScreenCase, MissingReferenceNamesFileAndField) {
  std::string error = ErrorHere(R"({"kernel": "/k", "screen": {"reference": "nope.png"}})");
  EXPECT_TRUE(error.starts_with(Prefix() + "'screen.reference': cannot read PNG " +
                                (dir_ / "nope.png").string()))
      << error;
}

TEST_F(ScreenCase, CorruptReferenceNamesFileAndField) {
  Write("bad.png", "\x89PNG\r\n\x1a\n but then nothing a PNG holds");
  Write("text.png", "not an image at all");
  for (const char* name : {"bad.png", "text.png"}) {
    std::string error =
        ErrorHere(fmt::format(R"({{"kernel": "/k", "screen": {{"reference": "{}"}}}})", name));
    EXPECT_TRUE(error.starts_with(Prefix() + "'screen.reference': " + (dir_ / name).string()))
        << error;
  }
}

TEST_F(ScreenCase, AReferenceThatIsNoRegularFileIsRejectedUnread) {
  ASSERT_EQ(mkfifo((dir_ / "fifo.png").c_str(), 0600), 0);
  EXPECT_EQ(
      ErrorHere(R"({"kernel": "/k", "screen": {"reference": "fifo.png"}})"),
      Prefix() + "'screen.reference': " + (dir_ / "fifo.png").string() + " is not a regular file");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"reference": "/dev/zero"}})"),
            Prefix() + "'screen.reference': /dev/zero is not a regular file");
}

TEST_F(ScreenCase, BadScreenFieldsAreRejectedWithTheirField) {
  const std::string p = Prefix();
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": "ref.png"})"),
            p + "'screen': must be an object with \"reference\" and/or \"probes\", not string");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {}})"),
            p + "'screen': needs \"reference\" or \"probes\" (or both)");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"refrence": "ref.png"}})"),
            p + "'screen.refrence': unknown field");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": []}})"),
            p + "'screen.probes': must be a non-empty list of [x, y, \"#rrggbb\"], not []");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": [[0, 0]]}})"),
            p + "'screen.probes[0]': must be [x, y, \"#rrggbb\"], not [0,0]");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": [[0, 0, "#000000"], [1, 2, 3]]}})"),
            p + "'screen.probes[1]': must be [x, y, \"#rrggbb\"], not [1,2,3]");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": [[-1, 0, "#000000"]]}})"),
            p + "'screen.probes[0][0]': must be an integer 0..8191, not -1");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": [[0, 1.5, "#000000"]]}})"),
            p + "'screen.probes[0][1]': must be an integer 0..8191, not 1.5");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": [[0, 8192, "#000000"]]}})"),
            p + "'screen.probes[0][1]': must be an integer 0..8191, not 8192");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "screen": {"probes": [[0, 0, "red"]]}})"),
            p + "'screen.probes[0]': colour 'red' is not of the form \"#rrggbb\"");
}

TEST_F(ScreenCase, ScreenAndFramebufferMustAgree) {
  const std::string p = Prefix();
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "framebuffer": "4x2",
                          "screen": {"probes": [[4, 0, "#000000"]]}})"),
            p + "'screen.probes[0]': (4, 0) is outside the 4x2 framebuffer");
  EXPECT_EQ(
      ErrorHere(R"({"kernel": "/k", "framebuffer": "8x2",
                          "screen": {"reference": "ref.png"}})"),
      p + "'screen.reference': " + (dir_ / "ref.png").string() + " is 4x2, the framebuffer 8x2");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "framebuffer": "off",
                          "screen": {"probes": [[0, 0, "#000000"]]}})"),
            p + "'screen': needs a framebuffer, but 'framebuffer' is \"off\"");
  EXPECT_EQ(ErrorHere(R"({"kernel": "/k", "result": "setup-error:66",
                          "screen": {"probes": [[0, 0, "#000000"]]}})"),
            p + "'screen': a case that expects setup-error:66 has no screen to check");
  EXPECT_TRUE(ParseHere(R"({"kernel": "/k", "framebuffer": "4x2",
                            "screen": {"reference": "ref.png", "probes": [[3, 1, "#404040"]]}})")
                  .has_value());
}

TEST_F(ScreenCase, BadFramebufferNamesTheField) {
  for (const char* bad : {R"("0x0")", R"("8193x10")", R"("800")", R"(1024)"}) {
    std::string error = ErrorHere(fmt::format(R"({{"kernel": "/k", "framebuffer": {}}})", bad));
    EXPECT_TRUE(error.starts_with(Prefix() + "'framebuffer': ")) << error;
  }
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
