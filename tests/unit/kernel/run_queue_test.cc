#include "kernel/run_queue.h"

#include <gtest/gtest.h>

namespace {

using kernel::RunNode;
using kernel::RunQueue;

RunNode Node(uint8_t prio) {
  RunNode n;
  n.priority = prio;
  return n;
}

TEST(RunQueue, EmptyQueue) {
  RunQueue q;
  EXPECT_EQ(q.PopHighest(), nullptr);
  EXPECT_EQ(q.HighestLevel(), -1);
  EXPECT_EQ(q.count(), 0u);
}

TEST(RunQueue, HighestPriorityFirstAcrossBitmapWords) {
  RunQueue q;
  RunNode a = Node(0), b = Node(63), c = Node(64), d = Node(255), e = Node(128);
  for (RunNode* n : {&a, &b, &c, &d, &e}) q.Enqueue(n);
  EXPECT_EQ(q.count(), 5u);
  EXPECT_EQ(q.PopHighest(), &d);
  EXPECT_EQ(q.PopHighest(), &e);
  EXPECT_EQ(q.PopHighest(), &c);
  EXPECT_EQ(q.PopHighest(), &b);
  EXPECT_EQ(q.PopHighest(), &a);
  EXPECT_EQ(q.PopHighest(), nullptr);
}

TEST(RunQueue, FifoWithinALevelAndFrontInsertion) {
  RunQueue q;
  RunNode a = Node(7), b = Node(7), c = Node(7);
  q.Enqueue(&a);
  q.Enqueue(&b);
  q.EnqueueFront(&c);
  EXPECT_EQ(q.PopHighest(), &c);
  EXPECT_EQ(q.PopHighest(), &a);
  EXPECT_EQ(q.PopHighest(), &b);
  EXPECT_TRUE(q.LevelEmpty(7));
}

TEST(RunQueue, RemoveFromMiddleHeadAndTailKeepsBitmapRight) {
  RunQueue q;
  RunNode a = Node(9), b = Node(9), c = Node(9), d = Node(3);
  for (RunNode* n : {&a, &b, &c, &d}) q.Enqueue(n);
  q.Remove(&b);
  EXPECT_FALSE(b.queued);
  q.Remove(&a);
  q.Remove(&c);
  EXPECT_TRUE(q.LevelEmpty(9));
  EXPECT_EQ(q.HighestLevel(), 3);
  q.Remove(&c);  // not queued: no-op
  EXPECT_EQ(q.count(), 1u);
}

TEST(RunQueue, DoubleEnqueueIsIgnored) {
  RunQueue q;
  RunNode a = Node(1);
  q.Enqueue(&a);
  q.Enqueue(&a);
  q.EnqueueFront(&a);
  EXPECT_EQ(q.count(), 1u);
  EXPECT_EQ(q.PopHighest(), &a);
  EXPECT_EQ(q.PopHighest(), nullptr);
}

TEST(RunQueue, RoundRobinByReenqueue) {
  RunQueue q;
  RunNode a = Node(5), b = Node(5);
  q.Enqueue(&a);
  q.Enqueue(&b);
  RunNode* order[4];
  for (auto& o : order) {
    o = q.PopHighest();
    q.Enqueue(o);  // slice over: back to the tail
  }
  EXPECT_EQ(order[0], &a);
  EXPECT_EQ(order[1], &b);
  EXPECT_EQ(order[2], &a);
  EXPECT_EQ(order[3], &b);
}

}  // namespace

namespace {

TEST(RunQueue, AnyAboveLooksOnlyAtHigherLevels) {
  kernel::RunQueue q;
  kernel::RunNode a, b;
  a.priority = 64;
  b.priority = 200;
  EXPECT_FALSE(q.AnyAbove(0));
  q.Enqueue(&a);
  EXPECT_TRUE(q.AnyAbove(0));
  EXPECT_TRUE(q.AnyAbove(63));
  EXPECT_FALSE(q.AnyAbove(64));
  EXPECT_FALSE(q.AnyAbove(255));
  q.Enqueue(&b);
  EXPECT_TRUE(q.AnyAbove(64));
  EXPECT_TRUE(q.AnyAbove(199));
  EXPECT_FALSE(q.AnyAbove(200));
  q.Remove(&b);
  q.Remove(&a);
}

}  // namespace
