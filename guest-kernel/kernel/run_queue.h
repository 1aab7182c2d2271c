// Ready queues of the scheduler: 256 priority levels (255 = highest), FIFO
// within a level, a 256-bit bitmap for O(1) choice of the highest non-empty
// level (scan of 4 words with bsr).
//
// Invariants:
//  - bit p of the bitmap is set  <=>  level p's list is non-empty;
//  - a node is in at most one list, and `queued` says whether it is;
//  - lists are circular-free doubly linked: head->prev == nullptr,
//    tail->next == nullptr; Enqueue appends at the tail, PopHighest takes the
//    head of the highest level (so equal priorities run round-robin when the
//    scheduler re-enqueues a preempted node at the tail);
//  - count() equals the number of queued nodes.
// Pure logic: host-tested. Not thread-safe: interrupts off in the kernel.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace kernel {

struct RunNode {
  RunNode* next = nullptr;
  RunNode* prev = nullptr;
  uint8_t priority = 0;
  bool queued = false;
};

class RunQueue {
 public:
  static constexpr int kLevels = 256;

  void Enqueue(RunNode* node);       // at the tail of node->priority
  void EnqueueFront(RunNode* node);  // at the head (resume a preempted-by-higher node first)
  void Remove(RunNode* node);        // no-op when not queued
  RunNode* PopHighest();             // nullptr when empty
  // Highest non-empty level, or -1.
  int HighestLevel() const;
  bool LevelEmpty(uint8_t level) const { return head_[level] == nullptr; }
  // Is a level above `level` non-empty? (the IPC direct switch asks this:
  // cheaper than HighestLevel)
  bool AnyAbove(uint8_t level) const {
    const unsigned w = level >> 6, b = level & 63;
    if (b != 63 && (bitmap_[w] & (~0ull << (b + 1))) != 0) return true;
    for (unsigned i = w + 1; i < 4; ++i) {
      if (bitmap_[i] != 0) return true;
    }
    return false;
  }
  size_t count() const { return count_; }

 private:
  uint64_t bitmap_[4] = {};
  RunNode* head_[kLevels] = {};
  RunNode* tail_[kLevels] = {};
  size_t count_ = 0;
};

}  // namespace kernel
