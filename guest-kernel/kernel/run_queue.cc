#include "kernel/run_queue.h"

namespace kernel {

void RunQueue::Enqueue(RunNode* node) {
  if (node->queued) return;
  const uint8_t p = node->priority;
  node->next = nullptr;
  node->prev = tail_[p];
  if (tail_[p] != nullptr) {
    tail_[p]->next = node;
  } else {
    head_[p] = node;
  }
  tail_[p] = node;
  bitmap_[p >> 6] |= 1ull << (p & 63);
  node->queued = true;
  ++count_;
}

void RunQueue::EnqueueFront(RunNode* node) {
  if (node->queued) return;
  const uint8_t p = node->priority;
  node->prev = nullptr;
  node->next = head_[p];
  if (head_[p] != nullptr) {
    head_[p]->prev = node;
  } else {
    tail_[p] = node;
  }
  head_[p] = node;
  bitmap_[p >> 6] |= 1ull << (p & 63);
  node->queued = true;
  ++count_;
}

void RunQueue::Remove(RunNode* node) {
  if (!node->queued) return;
  const uint8_t p = node->priority;
  if (node->prev != nullptr) {
    node->prev->next = node->next;
  } else {
    head_[p] = node->next;
  }
  if (node->next != nullptr) {
    node->next->prev = node->prev;
  } else {
    tail_[p] = node->prev;
  }
  if (head_[p] == nullptr) bitmap_[p >> 6] &= ~(1ull << (p & 63));
  node->next = node->prev = nullptr;
  node->queued = false;
  --count_;
}

int RunQueue::HighestLevel() const {
  for (int w = 3; w >= 0; --w) {
    if (bitmap_[w] != 0) return w * 64 + (63 - __builtin_clzll(bitmap_[w]));
  }
  return -1;
}

RunNode* RunQueue::PopHighest() {
  const int level = HighestLevel();
  if (level < 0) return nullptr;
  RunNode* node = head_[level];
  Remove(node);
  return node;
}

}  // namespace kernel
