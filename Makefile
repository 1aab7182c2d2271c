# Two commands (README): `make run` boots the bundled microkernel with its
# serial console on this terminal; `make test` runs every test. Both install
# what is missing first, then configure and build with CMake (preset
# "default", into build/).
.PHONY: all deps configure build run test test-asan clean format check-format bench

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

bench: build
	python3 bench/boot_bench.py

# Every C++ file, host code and the guest kernel alike (.clang-format).
format:
	git ls-files '*.cc' '*.h' | xargs clang-format -i

check-format:
	git ls-files '*.cc' '*.h' | xargs clang-format --dry-run -Werror

clean:
	rm -rf $(BUILD) build-asan
