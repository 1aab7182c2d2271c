// Tokens: the kernel's only form of authority (docs/architecture.md "Authority is
// explicit"; docs/ipc.md). A Token names an object, a rights mask, an expiry
// on the kernel's monotonic clock (microseconds, 0 = never) and an optional
// badge. Tokens form derivation trees: Derive makes a child whose rights are
// a subset and whose expiry is no later; Revoke marks every descendant
// revoked, calls the revoke hook on each (unmap what was mapped through it)
// and detaches them, so a revoked token never comes back to life.
//
// A process reaches tokens only through its TokenTable: handles are
// (generation << 8 | slot + 1); closing a slot bumps its generation, so a
// stale or forged handle fails with kErrBadHandle instead of reaching
// another token.
//
// Lifetime: a token lives while a table slot refers to it or it has
// children; Release (when a slot lets go) frees it otherwise and walks up.
// Pure logic (host-tested in tests/unit/kernel/token_test.cc); single CPU,
// interrupts off, no locks.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "abi/syscalls.h"

namespace kernel {

struct Token {
  uint64_t type = abi::kObjNone;
  uint64_t rights = 0;
  uint64_t expiry = 0;  // microseconds, 0 = never
  uint64_t badge = 0;
  void* object = nullptr;       // Endpoint*, Notification*, Process* (nullptr for ranges)
  uint64_t base = 0, size = 0;  // ranges: physical bytes, IRQ lines, ports
  bool revoked = false;
  uint32_t handles = 0;  // table slots referring to it
  Token* parent = nullptr;
  Token* child = nullptr;
  Token* sibling = nullptr;
  // What kOpMap mapped through this token (unmapped on revoke / close).
  uint64_t map_root = 0, map_va = 0;
};

// Storage for tokens (kernel heap in the kernel, new/delete on the host).
Token* AllocToken();
void FreeToken(Token* t);
// Called for every token Revoke revokes (before it is detached).
void SetTokenRevokeHook(void (*hook)(Token*));

// A new root token (no parent). nullptr when out of memory.
Token* CreateRootToken(uint64_t type, uint64_t rights, void* object, uint64_t base = 0,
                       uint64_t size = 0);
// A child of `parent`: rights = parent's & `rights`; expiry = the earlier of
// the two (0 = the parent's); badge only where the parent has none; range
// [offset, offset+size) of the parent's (size 0 = the whole range).
// Returns kOk or an abi error (kErrInvalidArgument for a range outside).
int64_t DeriveToken(Token* parent, uint64_t rights, uint64_t expiry, uint64_t badge,
                    uint64_t offset, uint64_t size, Token** out);
// Revokes every descendant of `t` (not `t` itself). Returns how many.
size_t RevokeDescendants(Token* t);
// `now` value meaning "read the clock only if the token has an expiry" (the
// IPC path: most tokens never expire, and the clock costs an rdtsc and two
// divisions).
inline constexpr uint64_t kNowLazy = ~0ull;
void SetTokenClock(uint64_t (*clock)());
// Revoked itself or expired at `now`? (kOk, kErrRevoked, kErrExpired)
int64_t TokenStatus(const Token* t, uint64_t now);
// The inspect word (abi::kOpInspect).
uint64_t InspectWord(const Token* t);

class TokenTable {
 public:
  static constexpr uint32_t kSlots = 64;

  // Puts `t` in the first free slot. Returns the handle or kErrNoSlots.
  int64_t Insert(Token* t);
  // Resolves `handle` for an operation needing `rights` (and `type` unless
  // kObjNone) at time `now`. Error order: kErrBadHandle, kErrRevoked,
  // kErrExpired, kErrWrongType, kErrDenied.
  int64_t Lookup(uint64_t handle, uint64_t type, uint64_t rights, uint64_t now, Token** out) const;
  // The token behind a valid handle regardless of its state (nullptr if none).
  Token* Peek(uint64_t handle) const;
  // Closes a handle: kOk or kErrBadHandle. The token is released.
  int64_t Close(uint64_t handle);
  void CloseAll();
  // For listing: the handle in slot i (0 when empty).
  uint64_t HandleAt(uint32_t i) const;
  uint32_t used() const { return used_; }

 private:
  struct Slot {
    Token* token = nullptr;
    uint32_t gen = 0;
  };
  bool Decode(uint64_t handle, uint32_t* slot) const;
  Slot slots_[kSlots];
  uint32_t used_ = 0;
};

// Drops one handle reference; frees the token (and childless revoked or
// unreferenced ancestors) when nothing refers to it.
void ReleaseToken(Token* t);
// Frees a token no handle refers to yet (e.g. a table was full).
void DiscardToken(Token* t);

}  // namespace kernel
