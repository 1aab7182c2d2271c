// The endpoint queues of the IPC state machine: senders by priority (FIFO
// within a level), receivers FIFO, removal of a thread that times out or ends.
// abi:: (guest-kernel/abi/syscalls.h) would clash with <cxxabi.h>'s
// `namespace abi` alias, which gtest pulls in only to demangle type names.
#define GTEST_HAS_CXXABI_H_ 0
#include "kernel/ipc.h"

#include <gtest/gtest.h>

#include "kernel/sched.h"

namespace kernel {
namespace {

Thread T(uint8_t prio) {
  Thread t;
  t.node.priority = prio;
  return t;
}

TEST(IpcQueue, SendersAreServedByPriorityThenArrival) {
  Thread a = T(50), b = T(70), c = T(60), d = T(70), e = T(50);
  Thread* head = nullptr;
  for (Thread* t : {&a, &b, &c, &d, &e}) QueueInsertByPriority(&head, t);
  EXPECT_EQ(QueuePop(&head), &b);
  EXPECT_EQ(QueuePop(&head), &d);
  EXPECT_EQ(QueuePop(&head), &c);
  EXPECT_EQ(QueuePop(&head), &a);
  EXPECT_EQ(QueuePop(&head), &e);
  EXPECT_EQ(QueuePop(&head), nullptr);
}

TEST(IpcQueue, ReceiversAreFifo) {
  Thread a = T(1), b = T(200), c = T(50);
  Thread* head = nullptr;
  for (Thread* t : {&a, &b, &c}) QueueAppend(&head, t);
  EXPECT_EQ(QueuePop(&head), &a);
  EXPECT_EQ(QueuePop(&head), &b);
  EXPECT_EQ(QueuePop(&head), &c);
}

TEST(IpcQueue, RemoveTakesAThreadFromAnyPosition) {
  Thread a = T(9), b = T(8), c = T(7);
  Thread* head = nullptr;
  for (Thread* t : {&a, &b, &c}) QueueInsertByPriority(&head, t);
  EXPECT_TRUE(QueueRemove(&head, &b));
  EXPECT_FALSE(QueueRemove(&head, &b));
  EXPECT_EQ(b.ipc.next, nullptr);
  EXPECT_TRUE(QueueRemove(&head, &c));
  EXPECT_EQ(QueuePop(&head), &a);
  EXPECT_EQ(head, nullptr);
}

TEST(IpcTag, FieldsRoundTrip) {
  const uint64_t tag = abi::MakeTag(0xabcdef, 1024, abi::kXferGrant, abi::kTagTimeout);
  EXPECT_EQ(abi::TagLabel(tag), 0xabcdefu);
  EXPECT_EQ(abi::TagLen(tag), 1024u);
  EXPECT_EQ(abi::TagXfer(tag), abi::kXferGrant);
  EXPECT_NE(tag & abi::kTagTimeout, 0u);
  EXPECT_EQ(tag & abi::kTagReplyRecv, 0u);
  static_assert(sizeof(abi::IpcBuffer) == 32 + abi::kIpcDataMax);
}

}  // namespace
}  // namespace kernel
