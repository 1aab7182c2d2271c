// libFuzzer targets for the legacy PC register files a guest reaches with
// `in`/`out` (docs/devices.md): the 16550 UART (serial, VMM_FUZZ_LEGACY=1),
// the i8042 keyboard controller (i8042, 2) and the CMOS/RTC (cmos, 3). The
// input is a script of port accesses, as a guest would do them, mixed with
// what the host does to the device meanwhile (console input, injected
// scancodes, the clock moving on). A guest can never crash vmm
// (docs/conventions.md); ASan and UBSan watch the accesses and abort() marks
// a broken invariant (a UART FIFO or keyboard queue that grows without a
// host feeding it, an access that changes nothing but is not counted).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <span>

#include "devices/bus.h"
#include "devices/legacy/cmos.h"
#include "devices/legacy/i8042.h"
#include "devices/legacy/serial.h"

#ifndef VMM_FUZZ_LEGACY
#error "define VMM_FUZZ_LEGACY (1 serial, 2 i8042, 3 cmos): tests/fuzz/CMakeLists.txt"
#endif

namespace {

// Records edges, as the interrupt controller would see them.
class CountingIrq : public devices::IrqLine {
 public:
  void SetLevel(bool asserted) override { raises_ += asserted; }
  uint64_t raises() const { return raises_; }

 private:
  uint64_t raises_ = 0;
};

struct Op {
  uint8_t kind;
  uint8_t port;
  uint8_t width;
  uint8_t value[4];
};
constexpr size_t kOpBytes = 7;

Op OpAt(std::span<const uint8_t> data, size_t i) {
  const uint8_t* p = data.data() + i * kOpBytes;
  return {p[0], p[1], p[2], {p[3], p[4], p[5], p[6]}};
}

size_t Width(uint8_t w) {
  static constexpr size_t kWidths[] = {1, 1, 1, 2, 4};  // mostly bytes, as guests do
  return kWidths[w % 5];
}

// op kind % 4: 0 in, 1 out, 2 and 3 a host event.
void FuzzSerial(std::span<const uint8_t> data) {
  auto irq = std::make_shared<CountingIrq>();
  uint64_t out_bytes = 0;
  devices::Serial serial(irq, [&](std::span<const uint8_t> bytes) { out_bytes += bytes.size(); });
  uint64_t fed = 0;
  uint64_t writes = 0;
  for (size_t i = 0; i < data.size() / kOpBytes; ++i) {
    Op op = OpAt(data, i);
    const uint64_t offset = op.port % (devices::Serial::kRegisterCount + 1);
    const devices::BusAccess access{0x3f8 + offset, offset, 0};
    const size_t width = Width(op.width);
    switch (op.kind % 4) {
      case 0:
        serial.Read(access, std::span(op.value, width));
        break;
      case 1:
        serial.Write(access, std::span<const uint8_t>(op.value, width));
        writes += width;
        break;
      default: {
        const size_t n = op.value[0] % 5;
        serial.QueueInput(std::span<const uint8_t>(op.value, n));
        fed += n;
        break;
      }
    }
  }
  // Never drops host input, never invents it: what is pending came from
  // QueueInput (loopback bytes go to the FIFO, not the pending count).
  if (serial.PendingInput() > fed + writes) std::abort();
  if (out_bytes > writes) std::abort();
}

void FuzzI8042(std::span<const uint8_t> data) {
  auto irq = std::make_shared<CountingIrq>();
  uint64_t resets = 0;
  devices::I8042 i8042([&] { ++resets; }, irq);
  for (size_t i = 0; i < data.size() / kOpBytes; ++i) {
    Op op = OpAt(data, i);
    // The two ports, and now and then one the bus would not route here.
    const uint64_t port = (op.port & 0x80) ? op.port
                                           : ((op.port & 1) ? devices::I8042::kCommandPort
                                                            : devices::I8042::kDataPort);
    const devices::BusAccess access{port, 0, 0};
    const size_t width = Width(op.width);
    switch (op.kind % 4) {
      case 0:
        i8042.Read(access, std::span(op.value, width));
        break;
      case 1:
        i8042.Write(access, std::span<const uint8_t>(op.value, width));
        break;
      case 2:
        i8042.InjectScancodes(std::span<const uint8_t>(op.value, op.value[0] % 5));
        break;
      case 3:
        i8042.InjectCtrlAltDel();
        break;
    }
  }
  if (i8042.resets() != resets) std::abort();
}

void FuzzCmos(std::span<const uint8_t> data) {
  std::time_t now = 1700000000;  // a fixed clock the script moves on
  devices::Cmos cmos(128u << 20, uint64_t{1} << 32, [&] { return now; });
  for (size_t i = 0; i < data.size() / kOpBytes; ++i) {
    Op op = OpAt(data, i);
    const uint64_t offset = op.port % (devices::Cmos::kLength + 1);
    const devices::BusAccess access{0x70 + offset, offset, 0};
    const size_t width = Width(op.width);
    switch (op.kind % 4) {
      case 0:
        cmos.Read(access, std::span(op.value, width));
        break;
      case 1:
        cmos.Write(access, std::span<const uint8_t>(op.value, width));
        break;
      case 2:
        now += op.value[0] | (op.value[1] << 8);
        break;
      case 3: {
        // A clock far out (the year 2100 and beyond, or before 1970).
        int32_t at;
        std::memcpy(&at, op.value, sizeof(at));
        now = static_cast<std::time_t>(at) * 4;
        break;
      }
    }
  }
  (void)cmos.offset();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  switch (VMM_FUZZ_LEGACY) {
    case 1:
      FuzzSerial(input);
      break;
    case 2:
      FuzzI8042(input);
      break;
    default:
      FuzzCmos(input);
      break;
  }
  return 0;
}
