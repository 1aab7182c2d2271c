#include "vmm/gdb/registers.h"

#include <bit>
#include <cstring>
#include <span>

#include "vmm/gdb/rsp.h"

namespace vmm::gdb {

namespace {

// The register packets are in the target's byte order, little-endian; vmm
// runs on x86-64 hosts only, so the struct's bytes are the packet's bytes.
static_assert(std::endian::native == std::endian::little);

// Register numbers (the regnum attributes below).
constexpr size_t kRip = 16, kEflags = 17, kFirstSegment = 18, kFirstSt = 24, kFirstX87Ctl = 32,
                 kFsBase = 40, kGsBase = 41, kKGsBase = 42, kCr0 = 43, kCr2 = 44, kCr3 = 45,
                 kCr4 = 46, kCr8 = 47, kEfer = 48;
static_assert(kEfer + 1 == kRegisterCount);

constexpr std::string_view kXml = R"(<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
  <architecture>i386:x86-64</architecture>
  <feature name="org.gnu.gdb.i386.core">
    <flags id="vmm_eflags" size="4">
      <field name="CF" start="0" end="0"/>
      <field name="PF" start="2" end="2"/>
      <field name="AF" start="4" end="4"/>
      <field name="ZF" start="6" end="6"/>
      <field name="SF" start="7" end="7"/>
      <field name="TF" start="8" end="8"/>
      <field name="IF" start="9" end="9"/>
      <field name="DF" start="10" end="10"/>
      <field name="OF" start="11" end="11"/>
      <field name="NT" start="14" end="14"/>
      <field name="RF" start="16" end="16"/>
      <field name="VM" start="17" end="17"/>
      <field name="AC" start="18" end="18"/>
      <field name="VIF" start="19" end="19"/>
      <field name="VIP" start="20" end="20"/>
      <field name="ID" start="21" end="21"/>
    </flags>
    <reg name="rax" bitsize="64" type="int64" regnum="0"/>
    <reg name="rbx" bitsize="64" type="int64"/>
    <reg name="rcx" bitsize="64" type="int64"/>
    <reg name="rdx" bitsize="64" type="int64"/>
    <reg name="rsi" bitsize="64" type="int64"/>
    <reg name="rdi" bitsize="64" type="int64"/>
    <reg name="rbp" bitsize="64" type="data_ptr"/>
    <reg name="rsp" bitsize="64" type="data_ptr"/>
    <reg name="r8" bitsize="64" type="int64"/>
    <reg name="r9" bitsize="64" type="int64"/>
    <reg name="r10" bitsize="64" type="int64"/>
    <reg name="r11" bitsize="64" type="int64"/>
    <reg name="r12" bitsize="64" type="int64"/>
    <reg name="r13" bitsize="64" type="int64"/>
    <reg name="r14" bitsize="64" type="int64"/>
    <reg name="r15" bitsize="64" type="int64"/>
    <reg name="rip" bitsize="64" type="code_ptr"/>
    <reg name="eflags" bitsize="32" type="vmm_eflags"/>
    <reg name="cs" bitsize="32" type="int32"/>
    <reg name="ss" bitsize="32" type="int32"/>
    <reg name="ds" bitsize="32" type="int32"/>
    <reg name="es" bitsize="32" type="int32"/>
    <reg name="fs" bitsize="32" type="int32"/>
    <reg name="gs" bitsize="32" type="int32"/>
    <reg name="st0" bitsize="80" type="i387_ext"/>
    <reg name="st1" bitsize="80" type="i387_ext"/>
    <reg name="st2" bitsize="80" type="i387_ext"/>
    <reg name="st3" bitsize="80" type="i387_ext"/>
    <reg name="st4" bitsize="80" type="i387_ext"/>
    <reg name="st5" bitsize="80" type="i387_ext"/>
    <reg name="st6" bitsize="80" type="i387_ext"/>
    <reg name="st7" bitsize="80" type="i387_ext"/>
    <reg name="fctrl" bitsize="32" type="int" group="float"/>
    <reg name="fstat" bitsize="32" type="int" group="float"/>
    <reg name="ftag" bitsize="32" type="int" group="float"/>
    <reg name="fiseg" bitsize="32" type="int" group="float"/>
    <reg name="fioff" bitsize="32" type="int" group="float"/>
    <reg name="foseg" bitsize="32" type="int" group="float"/>
    <reg name="fooff" bitsize="32" type="int" group="float"/>
    <reg name="fop" bitsize="32" type="int" group="float"/>
  </feature>
  <feature name="org.gnu.gdb.i386.segments">
    <reg name="fs_base" bitsize="64" type="int64" regnum="40"/>
    <reg name="gs_base" bitsize="64" type="int64"/>
  </feature>
  <feature name="org.vmm.x86.system">
    <flags id="vmm_cr0" size="8">
      <field name="PE" start="0" end="0"/>
      <field name="MP" start="1" end="1"/>
      <field name="EM" start="2" end="2"/>
      <field name="TS" start="3" end="3"/>
      <field name="ET" start="4" end="4"/>
      <field name="NE" start="5" end="5"/>
      <field name="WP" start="16" end="16"/>
      <field name="AM" start="18" end="18"/>
      <field name="NW" start="29" end="29"/>
      <field name="CD" start="30" end="30"/>
      <field name="PG" start="31" end="31"/>
    </flags>
    <flags id="vmm_cr4" size="8">
      <field name="VME" start="0" end="0"/>
      <field name="PVI" start="1" end="1"/>
      <field name="TSD" start="2" end="2"/>
      <field name="DE" start="3" end="3"/>
      <field name="PSE" start="4" end="4"/>
      <field name="PAE" start="5" end="5"/>
      <field name="MCE" start="6" end="6"/>
      <field name="PGE" start="7" end="7"/>
      <field name="PCE" start="8" end="8"/>
      <field name="OSFXSR" start="9" end="9"/>
      <field name="OSXMMEXCPT" start="10" end="10"/>
      <field name="UMIP" start="11" end="11"/>
      <field name="LA57" start="12" end="12"/>
      <field name="FSGSBASE" start="16" end="16"/>
      <field name="PCIDE" start="17" end="17"/>
      <field name="OSXSAVE" start="18" end="18"/>
      <field name="SMEP" start="20" end="20"/>
      <field name="SMAP" start="21" end="21"/>
      <field name="PKE" start="22" end="22"/>
    </flags>
    <flags id="vmm_efer" size="8">
      <field name="SCE" start="0" end="0"/>
      <field name="LME" start="8" end="8"/>
      <field name="LMA" start="10" end="10"/>
      <field name="NXE" start="11" end="11"/>
      <field name="SVME" start="12" end="12"/>
      <field name="LMSLE" start="13" end="13"/>
      <field name="FFXSR" start="14" end="14"/>
    </flags>
    <reg name="k_gs_base" bitsize="64" type="int64" regnum="42"/>
    <reg name="cr0" bitsize="64" type="vmm_cr0"/>
    <reg name="cr2" bitsize="64" type="int64"/>
    <reg name="cr3" bitsize="64" type="int64"/>
    <reg name="cr4" bitsize="64" type="vmm_cr4"/>
    <reg name="cr8" bitsize="64" type="int64"/>
    <reg name="efer" bitsize="64" type="vmm_efer"/>
  </feature>
</target>
)";

// The bytes of register `n` inside `regs`.
template <typename Regs>
auto RegisterBytes(Regs& regs, size_t n) {
  using Byte = std::conditional_t<std::is_const_v<Regs>, const uint8_t, uint8_t>;
  auto bytes = [](auto& field) {
    return std::span<Byte>(reinterpret_cast<Byte*>(&field), sizeof(field));
  };
  if (n < kRip) return bytes(regs.gpr[n]);
  if (n == kRip) return bytes(regs.rip);
  if (n == kEflags) return bytes(regs.eflags);
  if (n < kFirstSt) return bytes(regs.segment[n - kFirstSegment]);
  if (n < kFirstX87Ctl) return bytes(regs.st[n - kFirstSt]);
  if (n < kFsBase) return bytes(regs.x87_control[n - kFirstX87Ctl]);
  switch (n) {
    case kFsBase:
      return bytes(regs.fs_base);
    case kGsBase:
      return bytes(regs.gs_base);
    case kKGsBase:
      return bytes(regs.k_gs_base);
    case kCr0:
      return bytes(regs.cr0);
    case kCr2:
      return bytes(regs.cr2);
    case kCr3:
      return bytes(regs.cr3);
    case kCr4:
      return bytes(regs.cr4);
    case kCr8:
      return bytes(regs.cr8);
    case kEfer:
      return bytes(regs.efer);
    default:
      return std::span<Byte>();
  }
}

}  // namespace

std::string_view TargetXml() { return kXml; }

size_t RegisterSize(size_t n) {
  const X86Registers regs;
  return RegisterBytes(regs, n).size();
}

std::string EncodeRegisters(const X86Registers& regs) {
  std::string out;
  for (size_t n = 0; n < kRegisterCount; ++n) out += ToHex(RegisterBytes(regs, n));
  return out;
}

bool DecodeRegisters(std::string_view hex, X86Registers& regs) {
  X86Registers next = regs;
  size_t pos = 0;
  for (size_t n = 0; n < kRegisterCount; ++n) {
    auto field = RegisterBytes(next, n);
    if (pos + field.size() * 2 > hex.size()) return false;
    auto bytes = FromHex(hex.substr(pos, field.size() * 2));
    if (!bytes) return false;
    std::memcpy(field.data(), bytes->data(), field.size());
    pos += field.size() * 2;
  }
  if (pos != hex.size()) return false;
  regs = next;
  return true;
}

std::optional<std::string> EncodeRegister(const X86Registers& regs, size_t n) {
  if (n >= kRegisterCount) return std::nullopt;
  return ToHex(RegisterBytes(regs, n));
}

bool DecodeRegister(X86Registers& regs, size_t n, std::string_view hex) {
  if (n >= kRegisterCount) return false;
  auto field = RegisterBytes(regs, n);
  if (hex.size() != field.size() * 2) return false;
  auto bytes = FromHex(hex);
  if (!bytes) return false;
  std::memcpy(field.data(), bytes->data(), field.size());
  return true;
}

}  // namespace vmm::gdb
