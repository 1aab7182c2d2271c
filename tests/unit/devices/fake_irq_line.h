// An IrqLine that records what devices do with it, for unit tests.
#pragma once

#include <mutex>
#include <vector>

#include "devices/bus.h"

namespace devices {

class FakeIrqLine : public IrqLine {
 public:
  void SetLevel(bool asserted) override {
    std::lock_guard lock(mutex_);
    level_ = asserted;
    history_.push_back(asserted);
    if (asserted) ++raises_;
  }

  bool level() const {
    std::lock_guard lock(mutex_);
    return level_;
  }
  // Number of SetLevel(true) calls (edges, since devices only report changes).
  int raises() const {
    std::lock_guard lock(mutex_);
    return raises_;
  }
  std::vector<bool> history() const {
    std::lock_guard lock(mutex_);
    return history_;
  }
  void Clear() {
    std::lock_guard lock(mutex_);
    history_.clear();
    raises_ = 0;
  }

 private:
  mutable std::mutex mutex_;
  bool level_ = false;
  int raises_ = 0;
  std::vector<bool> history_;
};

}  // namespace devices
