#include <gtest/gtest.h>

#include "tests/unit/console/fake_vm_control.h"
#include "vmm/api/api_server.h"

namespace vmm {
namespace {

using testing_support::FakeVmControl;

http::Request Req(std::string method, std::string path, std::string body = "") {
  http::Request r;
  r.method = std::move(method);
  r.target = path;
  r.path = std::move(path);
  r.body = std::move(body);
  return r;
}

nlohmann::json Body(const http::Response& r) {
  return nlohmann::json::parse(r.body, nullptr, false);
}

TEST(ApiRouter, GetVmReturnsInfo) {
  FakeVmControl vm;
  ApiRouter router(vm);
  http::Response r = router.Handle(Req("GET", "/vm"));
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(Body(r)["state"], "Running");
  EXPECT_EQ(Body(r)["vcpus"], 2);
}

TEST(ApiRouter, PutStatePausesAndResumes) {
  FakeVmControl vm;
  ApiRouter router(vm);
  EXPECT_EQ(router.Handle(Req("PUT", "/vm/state", R"({"state":"Paused"})")).status, 204);
  EXPECT_TRUE(vm.paused);
  EXPECT_EQ(router.Handle(Req("PUT", "/vm/state", R"({"state": "Resumed"})")).status, 204);
  EXPECT_FALSE(vm.paused);
  EXPECT_EQ(vm.calls, (std::vector<std::string>{"Pause", "Resume"}));
}

TEST(ApiRouter, PutActionsCallsTheVm) {
  FakeVmControl vm;
  ApiRouter router(vm);
  EXPECT_EQ(router.Handle(Req("PUT", "/actions", R"({"action":"Shutdown"})")).status, 204);
  EXPECT_EQ(router.Handle(Req("PUT", "/actions", R"({"action":"Reset"})")).status, 204);
  EXPECT_EQ(vm.calls, (std::vector<std::string>{"Shutdown", "Reset"}));
}

TEST(ApiRouter, RefusedVmOperationIs400AndFailureIs500) {
  FakeVmControl vm;
  ApiRouter router(vm);
  http::Response refused = router.Handle(Req("PUT", "/actions", R"({"action":"SendCtrlAltDel"})"));
  EXPECT_EQ(refused.status, 400);
  EXPECT_NE(Body(refused)["fault_message"].get<std::string>().find("i8042"), std::string::npos);
  vm.fail_shutdown = true;
  EXPECT_EQ(router.Handle(Req("PUT", "/actions", R"({"action":"Shutdown"})")).status, 500);
}

struct BadBody {
  const char* name;
  const char* path;
  const char* body;
  const char* mentions;
};

class ApiRouterBadBody : public testing::TestWithParam<BadBody> {};

TEST_P(ApiRouterBadBody, Is400NamingTheProblem) {
  FakeVmControl vm;
  ApiRouter router(vm);
  http::Response r = router.Handle(Req("PUT", GetParam().path, GetParam().body));
  EXPECT_EQ(r.status, 400);
  std::string message = Body(r)["fault_message"].get<std::string>();
  EXPECT_NE(message.find(GetParam().mentions), std::string::npos) << message;
  EXPECT_TRUE(vm.calls.empty());
}

INSTANTIATE_TEST_SUITE_P(
    Bodies, ApiRouterBadBody,
    testing::Values(BadBody{"Empty", "/vm/state", "", "empty"},
                    BadBody{"NotJson", "/vm/state", "{state: Paused}", "not valid JSON"},
                    BadBody{"Truncated", "/actions", R"({"action":"Shut)", "not valid JSON"},
                    BadBody{"NotObject", "/vm/state", R"(["Paused"])", "JSON object"},
                    BadBody{"UnknownField", "/vm/state", R"({"state":"Paused","x":1})", "\"x\""},
                    BadBody{"MissingField", "/actions", R"({})", "missing field \"action\""},
                    BadBody{"WrongType", "/vm/state", R"({"state":1})", "must be a string"},
                    BadBody{"UnknownState", "/vm/state", R"({"state":"Frozen"})", "Frozen"},
                    BadBody{"UnknownAction", "/actions", R"({"action":"Explode"})", "Explode"},
                    BadBody{"WrongCase", "/vm/state", R"({"state":"paused"})", "Paused"}),
    [](const testing::TestParamInfo<BadBody>& info) { return info.param.name; });

TEST(ApiRouter, GetScreenshotReturnsThePngOr404WithoutAFramebuffer) {
  testing_support::FakeVmControl vm;
  ApiRouter router(vm);
  http::Request get;
  get.method = "GET";
  get.path = "/screenshot";
  auto response = router.Handle(get);
  EXPECT_EQ(response.status, 200);
  EXPECT_EQ(response.content_type, "image/png");
  EXPECT_EQ(response.body, std::string("\x89PNG\0\1\2", 7));
  const std::string wire = response.Serialize();
  EXPECT_NE(wire.find("Content-Type: image/png\r\n"), std::string::npos) << wire;
  EXPECT_NE(wire.find("Content-Length: 7\r\n"), std::string::npos) << wire;
  vm.has_framebuffer = false;
  response = router.Handle(get);
  EXPECT_EQ(response.status, 404);
  EXPECT_NE(response.body.find("no framebuffer"), std::string::npos);
  http::Request put = get;
  put.method = "PUT";
  EXPECT_EQ(router.Handle(put).status, 405);
}

TEST(ApiRouter, UnknownPathIs404) {
  FakeVmControl vm;
  ApiRouter router(vm);
  http::Response r = router.Handle(Req("GET", "/nope"));
  EXPECT_EQ(r.status, 404);
  EXPECT_NE(Body(r)["fault_message"].get<std::string>().find("/nope"), std::string::npos);
  EXPECT_EQ(router.Handle(Req("GET", "/vm/")).status, 404);
}

TEST(ApiRouter, WrongMethodIs405WithAllow) {
  FakeVmControl vm;
  ApiRouter router(vm);
  http::Response r = router.Handle(Req("POST", "/vm"));
  EXPECT_EQ(r.status, 405);
  ASSERT_EQ(r.headers.size(), 1u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Allow", "GET"}));
  EXPECT_EQ(router.Handle(Req("GET", "/actions")).status, 405);
  EXPECT_EQ(router.Handle(Req("PUT", "/metrics")).status, 405);
}

TEST(ApiRouter, MetricsAddApiCounters) {
  FakeVmControl vm;
  ApiRouter router(vm);
  router.Handle(Req("GET", "/nope"));
  http::Response r = router.Handle(Req("GET", "/metrics"));
  EXPECT_EQ(r.status, 200);
  nlohmann::json body = Body(r);
  EXPECT_EQ(body["exits_total"], 13);
  EXPECT_EQ(body["api"]["requests"], 2);
  EXPECT_EQ(body["api"]["errors"], 1);
}

}  // namespace
}  // namespace vmm
