#!/bin/sh
# Checks vmm's ACPI tables with ACPICA's own tools (docs/acpi.md, "Inspecting
# the tables"): acpi_dump writes the tables for one machine; then for every
# table but the RSDP,
#   - `iasl -d` must disassemble it without any warning or error (it warns
#     on a wrong checksum or a length that does not match the table);
#   - the disassembly compiled back with `iasl` must give the same bytes
#     (all but the checksum and the creator ID/revision iasl puts in);
# the decoded fields must say what the machine is (the XSDT and RSDT point
# at the FADT and MADT, the FADT at the DSDT, one enabled local APIC per
# CPU, one IOAPIC, hardware-reduced, an 8042, the i8042 reset register);
# and the RSDP, which this iasl cannot disassemble on its own (it rejects
# its own compiled template the same way), must equal what iasl compiles
# from its RSDP template filled with our addresses: iasl computes both
# checksums itself.
#
#   check_acpi_iasl.sh ACPI_DUMP WORK_DIR CPUS [BASE:SIZE:IRQ]...
set -eu
dump=$1
work=$2
cpus=$3
shift 3

if ! command -v iasl >/dev/null 2>&1; then
  echo "FAIL: iasl not found: install acpica-tools (scripts/install-deps.sh, make deps)" >&2
  exit 1
fi
rm -rf "$work"
mkdir -p "$work"
cd "$work"
"$dump" . "$cpus" "$@" > tables.txt
cat tables.txt

fail() {
  echo "FAIL: $*" >&2
  exit 1
}
address_of() {  # signature -> address printed by acpi_dump, as 0x...
  awk -v s="$1" '$1 == s { print $2 }' tables.txt
}
hex() {  # width value -> upper-case hex, zero-padded
  printf "%0${1}X" "$2"
}
field() {  # file field-name -> the value after " : "
  grep -m1 "$2 :" "$1" | sed 's/.* : //'
}
expect_field() {  # file field-name expected
  got=$(field "$1" "$2")
  [ "$got" = "$3" ] || fail "$1: \"$2\" is \"$got\", expected \"$3\""
}

for t in rsdt xsdt facp apic dsdt; do
  [ -s $t.dat ] || fail "acpi_dump wrote no $t.dat"
  iasl -d $t.dat > $t.disasm.log 2>&1 || { cat $t.disasm.log; fail "iasl -d $t.dat failed"; }
  if grep -Eiq 'warning|error|incorrect|invalid|does not contain' $t.disasm.log; then
    cat $t.disasm.log
    fail "iasl -d $t.dat reported a problem"
  fi
  [ -s $t.dsl ] || fail "iasl -d $t.dat wrote no $t.dsl"
  if grep -Eiq 'incorrect|invalid|warning|error' $t.dsl; then
    grep -Ein 'incorrect|invalid|warning|error' $t.dsl
    fail "$t.dsl flags a problem"
  fi
  # -oa: no optimizations, so that Scope(\_SB) stays as written.
  iasl -oa -p rt_$t $t.dsl > $t.compile.log 2>&1 || { cat $t.compile.log; fail "iasl $t.dsl failed"; }
  grep -q '0 Errors, 0 Warnings' $t.compile.log || { cat $t.compile.log; fail "iasl $t.dsl warned"; }
  size=$(wc -c < $t.dat)
  [ "$size" -eq "$(wc -c < rt_$t.aml)" ] || fail "$t: iasl's recompiled table has another length"
  # Bytes 0-8 (signature, length, revision) and 10-27 (OEM fields), then 36-.
  cmp -n 9 $t.dat rt_$t.aml || fail "$t: header differs from iasl's recompiled table"
  cmp -i 10 -n 18 $t.dat rt_$t.aml || fail "$t: OEM fields differ from iasl's recompiled table"
  if [ "$size" -gt 36 ]; then
    cmp -i 36 $t.dat rt_$t.aml || fail "$t: body differs from iasl's recompiled table"
  fi
  echo "ok: $t ($size bytes): iasl -d clean, recompiles to the same bytes"
done

facp=$(address_of FACP)
apic=$(address_of APIC)
dsdt=$(address_of DSDT)
expect_field xsdt.dsl "ACPI Table Address   0" "$(hex 16 "$facp")"
expect_field xsdt.dsl "ACPI Table Address   1" "$(hex 16 "$apic")"
expect_field rsdt.dsl "ACPI Table Address   0" "$(hex 8 "$facp")"
expect_field rsdt.dsl "ACPI Table Address   1" "$(hex 8 "$apic")"
expect_field facp.dsl "DSDT Address" "$(hex 8 "$dsdt")"
[ "$(grep 'DSDT Address :' facp.dsl | sed -n 2p | sed 's/.* : //')" = "$(hex 16 "$dsdt")" ] ||
  fail "facp.dsl: X_DSDT is not $dsdt"
expect_field facp.dsl "Hardware Reduced (V5)" 1
expect_field facp.dsl "8042 Present on ports 60/64 (V2)" 1
expect_field facp.dsl "Reset Register Supported (V2)" 1
expect_field facp.dsl "Value to cause reset" FE
expect_field apic.dsl "Local Apic Address" FEE00000
expect_field apic.dsl "PC-AT Compatibility" 1
lapics=$(grep -c 'Subtable Type : 00 \[Processor Local APIC\]' apic.dsl)
enabled=$(grep -c 'Processor Enabled : 1' apic.dsl)
ioapics=$(grep -c 'Subtable Type : 01 \[I/O APIC\]' apic.dsl)
[ "$lapics" -eq "$cpus" ] && [ "$enabled" -eq "$cpus" ] ||
  fail "apic.dsl: $lapics local APICs, $enabled enabled, expected $cpus"
[ "$ioapics" -eq 1 ] || fail "apic.dsl: $ioapics I/O APICs, expected 1"
devices=$(grep -c 'Name (_HID, "LNRO0005")' dsdt.dsl || true)
[ "$devices" -eq $# ] || fail "dsdt.dsl: $devices virtio-mmio devices, expected $#"
grep -q 'EisaId ("PNP0501")' dsdt.dsl || fail "dsdt.dsl: no COM1 (PNP0501)"
echo "ok: pointers and decoded fields"

# The RSDP: iasl's template with our OEM ID and addresses, compiled by iasl.
iasl -T RSDP > rsdp.template.log 2>&1 || { cat rsdp.template.log; fail "iasl -T RSDP failed"; }
sed -e 's/\(Oem ID : \)".*"/\1"VMM   "/' \
    -e "s/\(RSDT Address : \).*/\1$(hex 8 "$(address_of RSDT)")/" \
    -e "s/\(XSDT Address : \).*/\1$(hex 16 "$(address_of XSDT)")/" rsdp.asl > rsdp_ours.asl
iasl -p rt_rsdp rsdp_ours.asl > rsdp.compile.log 2>&1 || { cat rsdp.compile.log; fail "iasl rsdp failed"; }
grep -q '0 Errors, 0 Warnings' rsdp.compile.log || { cat rsdp.compile.log; fail "iasl rsdp warned"; }
cmp rsdp.dat rt_rsdp.aml || fail "rsdp.dat differs from the RSDP iasl compiles (checksums included)"
echo "ok: rsdp equals iasl's, checksums included"
