#include "kernel/token.h"

namespace kernel {
namespace {

using RevokeHook = void (*)(Token*);
constinit RevokeHook g_revoke_hook = nullptr;
using Clock = uint64_t (*)();
constinit Clock g_clock = nullptr;

void Link(Token* parent, Token* child) {
  child->parent = parent;
  child->sibling = parent->child;
  parent->child = child;
}

void Unlink(Token* t) {
  Token* p = t->parent;
  if (p == nullptr) return;
  for (Token** l = &p->child; *l != nullptr; l = &(*l)->sibling) {
    if (*l == t) {
      *l = t->sibling;
      break;
    }
  }
  t->parent = nullptr;
  t->sibling = nullptr;
}

// Frees `t` if nothing refers to it, then retries its parent.
void MaybeFree(Token* t) {
  while (t != nullptr && t->handles == 0 && t->child == nullptr) {
    Token* parent = t->parent;
    Unlink(t);
    FreeToken(t);
    t = parent;
  }
}

}  // namespace

void SetTokenRevokeHook(void (*hook)(Token*)) { g_revoke_hook = hook; }

Token* CreateRootToken(uint64_t type, uint64_t rights, void* object, uint64_t base, uint64_t size) {
  Token* t = AllocToken();
  if (t == nullptr) return nullptr;
  t->type = type;
  t->rights = rights;
  t->object = object;
  t->base = base;
  t->size = size;
  return t;
}

int64_t DeriveToken(Token* parent, uint64_t rights, uint64_t expiry, uint64_t badge,
                    uint64_t offset, uint64_t size, Token** out) {
  uint64_t base = parent->base, len = parent->size;
  if (size != 0) {
    if (offset > parent->size || size > parent->size - offset) return abi::kErrInvalidArgument;
    base = parent->base + offset;
    len = size;
  } else if (offset != 0) {
    return abi::kErrInvalidArgument;
  }
  Token* t = AllocToken();
  if (t == nullptr) return abi::kErrNoMemory;
  t->type = parent->type;
  t->rights = parent->rights & rights;
  t->expiry = parent->expiry;
  if (expiry != 0 && (t->expiry == 0 || expiry < t->expiry)) t->expiry = expiry;
  t->badge = parent->badge != 0 ? parent->badge : badge;
  t->object = parent->object;
  t->base = base;
  t->size = len;
  Link(parent, t);
  *out = t;
  return abi::kOk;
}

size_t RevokeDescendants(Token* t) {
  // Iterative: detach the first child, revoke its subtree (children first).
  size_t n = 0;
  while (t->child != nullptr) {
    Token* c = t->child;
    while (c->child != nullptr) c = c->child;  // deepest first
    c->revoked = true;
    if (g_revoke_hook != nullptr) g_revoke_hook(c);
    ++n;
    Unlink(c);
    if (c->handles == 0) FreeToken(c);
  }
  return n;
}

void SetTokenClock(uint64_t (*clock)()) { g_clock = clock; }

int64_t TokenStatus(const Token* t, uint64_t now) {
  if (t->revoked) return abi::kErrRevoked;
  if (t->expiry != 0) {
    if (now == kNowLazy) now = g_clock != nullptr ? g_clock() : 0;
    if (now >= t->expiry) return abi::kErrExpired;
  }
  return abi::kOk;
}

uint64_t InspectWord(const Token* t) {
  return t->type | (t->rights << 8) | (static_cast<uint64_t>(t->badge != 0) << 40);
}

bool TokenTable::Decode(uint64_t handle, uint32_t* slot) const {
  const uint64_t s = handle & 0xff;
  if (s == 0 || s > kSlots || (handle >> 8) > 0xffffffffu) return false;
  const Slot& e = slots_[s - 1];
  if (e.token == nullptr || e.gen != (handle >> 8)) return false;
  *slot = static_cast<uint32_t>(s - 1);
  return true;
}

int64_t TokenTable::Insert(Token* t) {
  for (uint32_t i = 0; i < kSlots; ++i) {
    if (slots_[i].token == nullptr) {
      slots_[i].token = t;
      ++t->handles;
      ++used_;
      return static_cast<int64_t>((static_cast<uint64_t>(slots_[i].gen) << 8) | (i + 1));
    }
  }
  return abi::kErrNoSlots;
}

int64_t TokenTable::Lookup(uint64_t handle, uint64_t type, uint64_t rights, uint64_t now,
                           Token** out) const {
  uint32_t s;
  if (!Decode(handle, &s)) return abi::kErrBadHandle;
  Token* t = slots_[s].token;
  const int64_t st = TokenStatus(t, now);
  if (st != abi::kOk) return st;
  if (type != abi::kObjNone && t->type != type) return abi::kErrWrongType;
  if ((t->rights & rights) != rights) return abi::kErrDenied;
  *out = t;
  return abi::kOk;
}

Token* TokenTable::Peek(uint64_t handle) const {
  uint32_t s;
  return Decode(handle, &s) ? slots_[s].token : nullptr;
}

int64_t TokenTable::Close(uint64_t handle) {
  uint32_t s;
  if (!Decode(handle, &s)) return abi::kErrBadHandle;
  Token* t = slots_[s].token;
  slots_[s].token = nullptr;
  slots_[s].gen = (slots_[s].gen + 1) & 0xffffff;
  --used_;
  ReleaseToken(t);
  return abi::kOk;
}

void TokenTable::CloseAll() {
  for (uint32_t i = 0; i < kSlots; ++i) {
    if (slots_[i].token != nullptr) Close((static_cast<uint64_t>(slots_[i].gen) << 8) | (i + 1));
  }
}

uint64_t TokenTable::HandleAt(uint32_t i) const {
  if (i >= kSlots || slots_[i].token == nullptr) return 0;
  return (static_cast<uint64_t>(slots_[i].gen) << 8) | (i + 1);
}

void DiscardToken(Token* t) { MaybeFree(t); }

void ReleaseToken(Token* t) {
  --t->handles;
  MaybeFree(t);
}

}  // namespace kernel
