# The two commands of the README: `make run` and `make test`.
# Everything else here is what they are made of.

BUILD ?= build
ASAN_BUILD ?= build-asan
NODES ?= 1
# REDIS=sentinel: a primary, two replicas and three sentinels (make run)
REDIS ?= single
GENERATOR := $(shell command -v ninja >/dev/null 2>&1 && echo "-G Ninja")

.PHONY: all deps deps-test build build-asan run stop test test-unit test-asan clean \
        bench bench-auth bench-cluster bench-persist bench-store bench-wsfront bench-tls bench-peer \
        bench-ha

all: build

deps:
	scripts/install-deps.sh

deps-test:
	scripts/install-deps.sh --test

# configure once, then build incrementally
$(BUILD)/CMakeCache.txt:
	cmake -S . -B $(BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=RelWithDebInfo

build: deps $(BUILD)/CMakeCache.txt
	cmake --build $(BUILD)

$(ASAN_BUILD)/CMakeCache.txt:
	cmake -S . -B $(ASAN_BUILD) $(GENERATOR) -DCMAKE_BUILD_TYPE=Debug -DCHAT_SANITIZE=ON

build-asan: deps $(ASAN_BUILD)/CMakeCache.txt
	cmake --build $(ASAN_BUILD)

run: build
	NODES=$(NODES) REDIS=$(REDIS) scripts/run.sh

stop:
	scripts/stop.sh

# The whole suite on the normal build, then again under ASan + UBSan.
test: deps-test build
	ctest --test-dir $(BUILD) --output-on-failure
	$(MAKE) --no-print-directory test-asan

test-asan: deps-test build-asan
	ctest --test-dir $(ASAN_BUILD) --output-on-failure

# Every benchmark, each printing its figures and ratios (README, Performance).
bench: bench-auth bench-cluster bench-persist bench-store bench-wsfront bench-tls bench-peer bench-ha

bench-auth bench-cluster bench-persist bench-store bench-wsfront bench-tls bench-peer bench-ha: deps-test build
	BUILD=$(BUILD) scripts/$(subst bench-auth,bench,$@).sh

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)
