// Tokens: derivation narrows, revocation cascades (and calls the hook),
// expiry, and the distinct denials of TokenTable::Lookup.
// abi:: (guest-kernel/abi/syscalls.h) would clash with <cxxabi.h>'s
// `namespace abi` alias, which gtest pulls in only to demangle type names.
#define GTEST_HAS_CXXABI_H_ 0
#include "kernel/token.h"

#include <gtest/gtest.h>

#include <vector>

namespace kernel {

int g_live_tokens = 0;
Token* AllocToken() {
  ++g_live_tokens;
  return new Token();
}
void FreeToken(Token* t) {
  --g_live_tokens;
  delete t;
}

namespace {

std::vector<Token*> g_revoked;
void OnRevoke(Token* t) { g_revoked.push_back(t); }

class TokenTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_live_tokens = 0;
    g_revoked.clear();
    SetTokenRevokeHook(OnRevoke);
  }
  void TearDown() override {
    table_.CloseAll();
    SetTokenRevokeHook(nullptr);
    EXPECT_EQ(g_live_tokens, 0) << "tokens leaked";
  }
  uint64_t Put(Token* t) {
    const int64_t h = table_.Insert(t);
    EXPECT_GT(h, 0);
    return static_cast<uint64_t>(h);
  }
  TokenTable table_;
  int endpoint_ = 0;
};

TEST_F(TokenTest, DeriveOnlyNarrowsRights) {
  Token* root = CreateRootToken(abi::kObjEndpoint, abi::kRightSend | abi::kRightDerive, &endpoint_);
  Put(root);
  Token* child = nullptr;
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 0, 0, 0, 0, &child), abi::kOk);
  Put(child);
  EXPECT_EQ(child->rights, abi::kRightSend | abi::kRightDerive);
  Token* grandchild = nullptr;
  ASSERT_EQ(DeriveToken(child, abi::kRightRecv, 0, 0, 0, 0, &grandchild), abi::kOk);
  Put(grandchild);
  EXPECT_EQ(grandchild->rights, 0u);
  EXPECT_EQ(grandchild->object, &endpoint_);
}

TEST_F(TokenTest, DeriveOnlyShortensExpiry) {
  Token* root = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  Put(root);
  Token* a = nullptr;
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 1000, 0, 0, 0, &a), abi::kOk);
  Put(a);
  EXPECT_EQ(a->expiry, 1000u);
  Token* later = nullptr;
  ASSERT_EQ(DeriveToken(a, abi::kRightsAll, 5000, 0, 0, 0, &later), abi::kOk);
  Put(later);
  EXPECT_EQ(later->expiry, 1000u);
  Token* keep = nullptr;
  ASSERT_EQ(DeriveToken(a, abi::kRightsAll, 0, 0, 0, 0, &keep), abi::kOk);
  Put(keep);
  EXPECT_EQ(keep->expiry, 1000u);
  Token* sooner = nullptr;
  ASSERT_EQ(DeriveToken(a, abi::kRightsAll, 10, 0, 0, 0, &sooner), abi::kOk);
  Put(sooner);
  EXPECT_EQ(sooner->expiry, 10u);
}

TEST_F(TokenTest, BadgeIsSetOnceAndRangesOnlyShrink) {
  Token* root = CreateRootToken(abi::kObjMmio, abi::kRightsAll, nullptr, 0xd0000000, 0x8000);
  Put(root);
  Token* badged = nullptr;
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 0, 7, 0x1000, 0x1000, &badged), abi::kOk);
  Put(badged);
  EXPECT_EQ(badged->badge, 7u);
  EXPECT_EQ(badged->base, 0xd0001000u);
  EXPECT_EQ(badged->size, 0x1000u);
  Token* rebadged = nullptr;
  ASSERT_EQ(DeriveToken(badged, abi::kRightsAll, 0, 9, 0, 0, &rebadged), abi::kOk);
  Put(rebadged);
  EXPECT_EQ(rebadged->badge, 7u);
  Token* out = nullptr;
  EXPECT_EQ(DeriveToken(badged, abi::kRightsAll, 0, 0, 0x800, 0x1000, &out),
            abi::kErrInvalidArgument);
  EXPECT_EQ(DeriveToken(badged, abi::kRightsAll, 0, 0, 0x2000, 0x10, &out),
            abi::kErrInvalidArgument);
}

TEST_F(TokenTest, RevokeCascadesToEveryDescendantButNotItself) {
  Token* root = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  const uint64_t hroot = Put(root);
  Token *a, *b, *a1, *a2;
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 0, 0, 0, 0, &a), abi::kOk);
  const uint64_t ha = Put(a);
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 0, 0, 0, 0, &b), abi::kOk);
  const uint64_t hb = Put(b);
  ASSERT_EQ(DeriveToken(a, abi::kRightsAll, 0, 0, 0, 0, &a1), abi::kOk);
  const uint64_t ha1 = Put(a1);
  ASSERT_EQ(DeriveToken(a, abi::kRightsAll, 0, 0, 0, 0, &a2), abi::kOk);
  const uint64_t ha2 = Put(a2);
  EXPECT_EQ(RevokeDescendants(a), 2u);  // a1, a2
  Token* t;
  EXPECT_EQ(table_.Lookup(ha1, abi::kObjNone, 0, 0, &t), abi::kErrRevoked);
  EXPECT_EQ(table_.Lookup(ha2, abi::kObjNone, 0, 0, &t), abi::kErrRevoked);
  EXPECT_EQ(table_.Lookup(ha, abi::kObjNone, 0, 0, &t), abi::kOk);
  EXPECT_EQ(table_.Lookup(hb, abi::kObjNone, 0, 0, &t), abi::kOk);
  EXPECT_EQ(g_revoked.size(), 2u);
  EXPECT_EQ(RevokeDescendants(root), 2u);  // a, b (a1 and a2 are already detached)
  EXPECT_EQ(table_.Lookup(ha, abi::kObjNone, 0, 0, &t), abi::kErrRevoked);
  EXPECT_EQ(table_.Lookup(hroot, abi::kObjNone, 0, 0, &t), abi::kOk);
  // A revoked token never comes back: deriving more from the root is a new tree.
  Token* fresh;
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 0, 0, 0, 0, &fresh), abi::kOk);
  const uint64_t hf = Put(fresh);
  EXPECT_EQ(table_.Lookup(hf, abi::kObjNone, 0, 0, &t), abi::kOk);
  EXPECT_EQ(table_.Lookup(ha, abi::kObjNone, 0, 0, &t), abi::kErrRevoked);
}

TEST_F(TokenTest, RevokeFreesDescendantsNoHandleRefersTo) {
  Token* root = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  Put(root);
  Token* mid;
  ASSERT_EQ(DeriveToken(root, abi::kRightsAll, 0, 0, 0, 0, &mid), abi::kOk);
  const uint64_t hmid = Put(mid);
  Token* leaf;
  ASSERT_EQ(DeriveToken(mid, abi::kRightsAll, 0, 0, 0, 0, &leaf), abi::kOk);
  Put(leaf);
  // Closing mid's handle keeps it alive (it has a child).
  EXPECT_EQ(table_.Close(hmid), abi::kOk);
  EXPECT_EQ(g_live_tokens, 3);
  EXPECT_EQ(RevokeDescendants(root), 2u);
  EXPECT_EQ(g_live_tokens, 2);  // mid freed at once; leaf lives while its handle does
}

TEST_F(TokenTest, LookupErrorsAreDistinct) {
  Token* ep = CreateRootToken(abi::kObjEndpoint, abi::kRightSend | abi::kRightDerive, &endpoint_);
  const uint64_t h = Put(ep);
  Token* t = nullptr;
  EXPECT_EQ(table_.Lookup(h, abi::kObjEndpoint, abi::kRightSend, 0, &t), abi::kOk);
  EXPECT_EQ(t, ep);
  EXPECT_EQ(table_.Lookup(h, abi::kObjEndpoint, abi::kRightRecv, 0, &t), abi::kErrDenied);
  EXPECT_EQ(table_.Lookup(h, abi::kObjNotification, 0, 0, &t), abi::kErrWrongType);
  EXPECT_EQ(table_.Lookup(0, abi::kObjNone, 0, 0, &t), abi::kErrBadHandle);
  EXPECT_EQ(table_.Lookup(h + 1, abi::kObjNone, 0, 0, &t), abi::kErrBadHandle);      // empty slot
  EXPECT_EQ(table_.Lookup(h + 0x100, abi::kObjNone, 0, 0, &t), abi::kErrBadHandle);  // wrong gen
  EXPECT_EQ(table_.Lookup(0xff, abi::kObjNone, 0, 0, &t), abi::kErrBadHandle);       // slot > 64
  Token* timed;
  ASSERT_EQ(DeriveToken(ep, abi::kRightsAll, 100, 0, 0, 0, &timed), abi::kOk);
  const uint64_t ht = Put(timed);
  EXPECT_EQ(table_.Lookup(ht, abi::kObjEndpoint, abi::kRightSend, 99, &t), abi::kOk);
  EXPECT_EQ(table_.Lookup(ht, abi::kObjEndpoint, abi::kRightSend, 100, &t), abi::kErrExpired);
  RevokeDescendants(ep);
  // Revoked wins over expired.
  EXPECT_EQ(table_.Lookup(ht, abi::kObjEndpoint, abi::kRightSend, 100, &t), abi::kErrRevoked);
}

TEST_F(TokenTest, ClosedHandlesGoStaleEvenWhenTheSlotIsReused) {
  Token* a = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  const uint64_t ha = Put(a);
  EXPECT_EQ(table_.Close(ha), abi::kOk);
  EXPECT_EQ(table_.Close(ha), abi::kErrBadHandle);
  Token* b = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  const uint64_t hb = Put(b);
  EXPECT_EQ(hb & 0xff, ha & 0xff);  // same slot
  EXPECT_NE(hb, ha);
  Token* t;
  EXPECT_EQ(table_.Lookup(ha, abi::kObjNone, 0, 0, &t), abi::kErrBadHandle);
  EXPECT_EQ(table_.Lookup(hb, abi::kObjNone, 0, 0, &t), abi::kOk);
}

TEST_F(TokenTest, TableFullIsReported) {
  std::vector<Token*> extra;
  for (uint32_t i = 0; i < TokenTable::kSlots; ++i) {
    Put(CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_));
  }
  Token* one = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  EXPECT_EQ(table_.Insert(one), abi::kErrNoSlots);
  DiscardToken(one);
  EXPECT_EQ(table_.used(), TokenTable::kSlots);
}

TEST_F(TokenTest, InspectWordPacksTypeRightsBadge) {
  Token* t = CreateRootToken(abi::kObjFrames, abi::kRightMap | abi::kRightWrite, nullptr, 0, 4096);
  t->badge = 3;
  EXPECT_EQ(InspectWord(t),
            abi::kObjFrames | ((abi::kRightMap | abi::kRightWrite) << 8) | (1ull << 40));
  DiscardToken(t);
}

}  // namespace
}  // namespace kernel

namespace kernel {
namespace {

uint64_t g_fake_now = 0;
int g_clock_reads = 0;
uint64_t FakeClock() {
  ++g_clock_reads;
  return g_fake_now;
}

TEST_F(TokenTest, LazyClockIsReadOnlyForTokensWithAnExpiry) {
  SetTokenClock(FakeClock);
  g_clock_reads = 0;
  Token* ep = CreateRootToken(abi::kObjEndpoint, abi::kRightsAll, &endpoint_);
  const uint64_t h = Put(ep);
  Token* t;
  EXPECT_EQ(table_.Lookup(h, abi::kObjNone, 0, kNowLazy, &t), abi::kOk);
  EXPECT_EQ(g_clock_reads, 0);
  Token* timed;
  ASSERT_EQ(DeriveToken(ep, abi::kRightsAll, 50, 0, 0, 0, &timed), abi::kOk);
  const uint64_t ht = Put(timed);
  g_fake_now = 49;
  EXPECT_EQ(table_.Lookup(ht, abi::kObjNone, 0, kNowLazy, &t), abi::kOk);
  g_fake_now = 50;
  EXPECT_EQ(table_.Lookup(ht, abi::kObjNone, 0, kNowLazy, &t), abi::kErrExpired);
  EXPECT_EQ(g_clock_reads, 2);
  SetTokenClock(nullptr);
}

}  // namespace
}  // namespace kernel
