// The endpoint queues of kernel/ipc.cc: pure list logic, host-tested
// (tests/unit/kernel/ipc_test.cc).
#include "kernel/ipc.h"
#include "kernel/sched.h"

namespace kernel {

void QueueInsertByPriority(Thread** head, Thread* t) {
  Thread** l = head;
  while (*l != nullptr && (*l)->node.priority >= t->node.priority) l = &(*l)->ipc.next;
  t->ipc.next = *l;
  *l = t;
}

void QueueAppend(Thread** head, Thread* t) {
  Thread** l = head;
  while (*l != nullptr) l = &(*l)->ipc.next;
  t->ipc.next = nullptr;
  *l = t;
}

bool QueueRemove(Thread** head, Thread* t) {
  for (Thread** l = head; *l != nullptr; l = &(*l)->ipc.next) {
    if (*l == t) {
      *l = t->ipc.next;
      t->ipc.next = nullptr;
      return true;
    }
  }
  return false;
}

Thread* QueuePop(Thread** head) {
  Thread* t = *head;
  if (t != nullptr) {
    *head = t->ipc.next;
    t->ipc.next = nullptr;
  }
  return t;
}

}  // namespace kernel
