# The README's two commands. Each does all set-up on a fresh Debian 12 machine.
BUILD ?= build
JOBS ?= 2
CMAKE_FLAGS ?=
ifneq ($(EDR_WERROR),)
CMAKE_FLAGS += -DEDR_WERROR=ON
endif
ifneq ($(EDR_SANITIZE),)
CMAKE_FLAGS += -DEDR_SANITIZE=$(EDR_SANITIZE)
endif

.PHONY: all deps configure build test demo bench clean format

all: build

deps:
	@scripts/install-deps.sh

configure: deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS) >/dev/null

build: configure
	cmake --build $(BUILD) -j$(JOBS)

test: build
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS) --timeout 900

demo: build
	@scripts/demo.sh $(BUILD)

clean:
	rm -rf $(BUILD)

format:
	clang-format -i $$(git ls-files '*.c' '*.h')
