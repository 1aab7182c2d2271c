# Two commands (README): `make run` boots the bundled microkernel with its
# serial console on this terminal; `make test` runs every test. Both install
# what is missing first, then configure and build with CMake (preset
# "default", into build/).
.PHONY: all deps configure build run test test-asan coverage fuzz tidy clean format check-format bench

BUILD := build
JOBS ?= $(shell nproc)

all: build

deps:
	@sh scripts/install-deps.sh

$(BUILD)/build.ninja:
	cmake --preset default

configure: deps $(BUILD)/build.ninja

build: configure
	cmake --build $(BUILD) -j$(JOBS)

run: build
	$(BUILD)/vmm/vmm --config configs/default.json

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 600

# Unit tests under ASan+UBSan (the "asan" preset, into build-asan/). Everything
# is built: the unit label spans several binaries (unit_tests,
# kernel_unit_tests, vmmfs_unit_tests) and the vmmfs tool.
test-asan: deps
	cmake --preset asan
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -L unit -j$(JOBS)

# Line coverage of base/, vmm/, devices/, firmware/ and the host-tested guest
# kernel code (the "coverage" preset, into build-coverage/): every test but
# the slow Linux label, then gcovr's summary and an HTML report in
# build-coverage/coverage/.
coverage: deps
	cmake --preset coverage
	cmake --build build-coverage -j$(JOBS)
	find build-coverage -name '*.gcda' -delete
	cd build-coverage && ctest -j$(JOBS) -LE linux --timeout 600
	mkdir -p build-coverage/coverage
	gcovr --root . --object-directory build-coverage \
	  --filter 'base/' --filter 'vmm/' --filter 'devices/' --filter 'firmware/' \
	  --filter 'guest-kernel/' --exclude 'tests/' \
	  --html-details build-coverage/coverage/index.html --print-summary

# Every libFuzzer target for SECONDS each (docs/security.md, "Fuzzing"): the
# "fuzz" preset (clang++-16, every library instrumented, ASan+UBSan) into
# build-fuzz/, then scripts/fuzz.sh prints executions, exec/s and coverage per
# target. Opt-in, not part of `make test` (which runs each target's
# fixed-seed smoke instead). Needs clang-16 and libclang-rt-16-dev (the
# libFuzzer runtime), installed here when missing.
SECONDS ?= 60
FUZZ_TARGETS ?=
fuzz:
	@sh scripts/install-deps.sh clang-16 libclang-rt-16-dev
	cmake --preset fuzz
	cmake --build build-fuzz -j$(JOBS) --target fuzz_targets
	sh scripts/fuzz.sh build-fuzz $(SECONDS) $(FUZZ_TARGETS)

# clang-tidy on the host files changed since BASE (default: the newest
# commit's parent).
BASE ?= HEAD~1
tidy: build
	sh scripts/tidy.sh $(BUILD) $(BASE)

bench: build
	python3 bench/boot_bench.py

# Every C++ file, host code and the guest kernel alike (.clang-format).
format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

check-format:
	git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) build-asan build-coverage build-fuzz
