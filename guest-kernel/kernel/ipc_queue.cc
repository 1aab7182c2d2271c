// The endpoint queues of kernel/ipc.cc: pure list logic, host-tested
// (tests/unit/kernel/ipc_test.cc).
#include "kernel/ipc.h"

namespace kernel {

void QueueInsertByPriority(Thread** head, Thread* t) {
  Thread** l = head;
  while (*l != nullptr && (*l)->node.priority >= t->node.priority) l = &(*l)->ipc_next;
  t->ipc_next = *l;
  *l = t;
}

void QueueAppend(Thread** head, Thread* t) {
  Thread** l = head;
  while (*l != nullptr) l = &(*l)->ipc_next;
  t->ipc_next = nullptr;
  *l = t;
}

bool QueueRemove(Thread** head, Thread* t) {
  for (Thread** l = head; *l != nullptr; l = &(*l)->ipc_next) {
    if (*l == t) {
      *l = t->ipc_next;
      t->ipc_next = nullptr;
      return true;
    }
  }
  return false;
}

Thread* QueuePop(Thread** head) {
  Thread* t = *head;
  if (t != nullptr) {
    *head = t->ipc_next;
    t->ipc_next = nullptr;
  }
  return t;
}

}  // namespace kernel
