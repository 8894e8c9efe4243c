# Poseidon in C: build, test and run.
#
#   make            build every program (build/bin/) and lib/libposeidon.a
#   make test       install missing Debian packages, build, run unit and integration tests
#   make run        install, build, start Redis (unless one answers), the daemons and lighttpd on :7200
#   make asan       build under ASan+UBSan into build/asan and run the tests there
#   make unit | integration | contract-check | valgrind | bench | format | clean     (V=1 shows commands)
#
# Every directory app/<name>/ is one program; every lib/*.c goes into the static library.

O        ?= build
SAN      ?=
CC       ?= cc
PKGS     := json-c libcurl hiredis libwebsockets yaml-0.1 libarchive uuid

CFLAGS_W := -std=c11 -D_GNU_SOURCE -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers -Wno-format-truncation
SANFLAGS := -fsanitize=address -fsanitize=undefined
CFLAGS_O := $(if $(SAN),-O1 -g -fno-omit-frame-pointer $(SANFLAGS) -fno-sanitize-recover=all,-O2 -g)
PKG_CFLAGS = $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null)
CPPFLAGS += -Ilib -I$(O)/gen
CFLAGS   += $(CFLAGS_W) $(CFLAGS_O) $(PKG_CFLAGS) -MMD -MP
LDFLAGS  += $(if $(SAN),$(SANFLAGS))
LDLIBS   += -lfcgi $(PKG_LIBS) -lm -lpthread

LIBA     := $(if $(filter build,$(O)),lib/libposeidon.a,$(O)/libposeidon.a)
LIB_SRC  := $(sort $(wildcard lib/*.c))
LIB_OBJ  := $(LIB_SRC:%.c=$(O)/obj/%.o)

# app/<dir>/main.c -> build/bin/<program>; everything but nomad-local is prefixed poseidon-.
APP_DIRS := $(sort $(patsubst app/%/main.c,%,$(wildcard app/*/main.c)))
progname  = $(if $(filter nomad-local,$(1)),nomad-local,poseidon-$(1))
PROGRAMS := $(foreach a,$(APP_DIRS),$(O)/bin/$(call progname,$(a)))

UNIT_SRC  := $(sort $(wildcard tests/unit/test_*.c))
UNIT_BIN  := $(UNIT_SRC:tests/unit/%.c=$(O)/tests/unit/%)
UNIT_LIB  := $(filter-out $(UNIT_SRC),$(wildcard tests/unit/*.c))
INTEG_SRC := $(sort $(wildcard tests/integration/test_*.c))
INTEG_BIN := $(INTEG_SRC:tests/integration/%.c=$(O)/tests/integration/%)
INTEG_LIB := $(filter-out $(INTEG_SRC),$(wildcard tests/integration/*.c))
BENCH_SRC := $(sort $(wildcard tests/bench/bench_*.c))
BENCH_BIN := $(BENCH_SRC:tests/bench/%.c=$(O)/tests/bench/%)

.PHONY: all deps test unit integration contract-check run asan valgrind bench docs format clean test-fault FORCE
.DELETE_ON_ERROR:
# Object files are intermediates of the pattern rules; keep them, or every make recompiles.
.SECONDARY:

all: $(LIBA) $(PROGRAMS)

deps:
	@deploy/install-deps.sh

# The version string is the build's git describe; the header is rewritten only when it changes.
$(O)/gen/version_gen.h: FORCE
	@mkdir -p $(@D)
	@v=$$(git describe --always --dirty --tags 2>/dev/null || echo unknown); \
	 printf '#define POSEIDON_VERSION "%s"\n' "$$v" > $@.tmp; \
	 cmp -s $@.tmp $@ && rm -f $@.tmp || mv $@.tmp $@

$(O)/obj/lib/version.o: $(O)/gen/version_gen.h
$(O)/obj/lib/jobspec.o: deploy/template-job.json

Q := $(if $(V),,@)

$(O)/obj/%.o: %.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  CC      $<")
	$(Q)$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBA): $(LIB_OBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  AR      $@")
	$(Q)rm -f $@ && ar rcs $@ $^

# objects of the program named $(1): app/<dir>/*.c
appobjs = $(patsubst %.c,$(O)/obj/%.o,$(wildcard app/$(patsubst poseidon-%,%,$(1))/*.c))

.SECONDEXPANSION:
$(O)/bin/%: $$(call appobjs,$$*) $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) $(LDLIBS)

# nomad-local alone confines its sandboxes with seccomp and capabilities.
$(O)/bin/nomad-local: LDLIBS += -lseccomp -lcap-ng

$(O)/tests/unit/%: $(O)/obj/tests/unit/%.o $(UNIT_LIB:%.c=$(O)/obj/%.o) $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) -lcmocka $(LDLIBS)

$(O)/tests/integration/%: $(O)/obj/tests/integration/%.o $(INTEG_LIB:%.c=$(O)/obj/%.o) $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) -lcmocka $(LDLIBS) -lpthread

$(O)/tests/bench/%: $(O)/obj/tests/bench/%.o $(INTEG_LIB:%.c=$(O)/obj/%.o) $(LIBA)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  LD      $@")
	$(Q)$(CC) $(LDFLAGS) -o $@ $(filter %.o,$^) $(LIBA) $(LDLIBS) -lpthread

$(O)/obj/tests/%.o: CPPFLAGS += -Itests/integration

# No test binary may run longer than this (seconds): a hang fails make test instead of stalling it.
TEST_TIMEOUT ?= 600

# Tests find the programs and the source tree through these.
TEST_ENV = POSEIDON_BIN_DIR=$(abspath $(O)/bin) POSEIDON_SRC_DIR=$(CURDIR)

unit: $(UNIT_BIN)
	@set -e; for t in $(UNIT_BIN); do echo "== $$t"; $(TEST_ENV) $$t; done

# The API contract (docs/development.md): every test binary appends what the API front and the
# gateway answered to CONTRACT_LOG; after the last one, tests/contract/validate.mjs checks every
# response against api/openapi.yaml and every WebSocket message against api/websocket.schema.json.
# Its npm packages are pinned in tests/contract/package-lock.json (npm ci uses the local cache first).
CONTRACT_LOG = $(abspath $(O))/contract/traffic.jsonl
CONTRACT_NPM = tests/contract/node_modules/.package-lock.json

$(CONTRACT_NPM): tests/contract/package.json tests/contract/package-lock.json
	@cd tests/contract && npm ci --prefer-offline --no-audit --no-fund --loglevel=error
	@touch $@

# The documents against their meta-schemas, and the validator's self-test (it must reject a
# message with an extra key, an undocumented status, ...): a second, no services needed.
contract-check: $(CONTRACT_NPM)
	@node tests/contract/validate.mjs --self-test

integration: all $(INTEG_BIN) $(CONTRACT_NPM)
	@node tests/contract/validate.mjs --self-test
	@mkdir -p $(dir $(CONTRACT_LOG)) && rm -f $(CONTRACT_LOG)
	@set -e; for t in $(INTEG_BIN); do echo "== $$t"; s=$$(date +%s); \
		$(TEST_ENV) POSEIDON_CONTRACT_LOG=$(CONTRACT_LOG) timeout -k 10 $(TEST_TIMEOUT) $$t || { rc=$$?; [ $$rc = 124 ] && echo "== $$t: still running after $(TEST_TIMEOUT) s"; exit $$rc; }; \
		echo "== $$t: $$(( $$(date +%s) - s )) s"; done
	@echo "== contract: $(CONTRACT_LOG)"; s=$$(date +%s); \
		node tests/contract/validate.mjs $(CONTRACT_LOG); \
		echo "== contract: $$(( $$(date +%s) - s )) s"

test: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory integration

asan: deps
	@POSEIDON_TEST_VALGRIND=0 $(MAKE) --no-print-directory O=build/asan SAN=1 unit integration

# The fault suite at full length (make test runs its short version): longer storms, a 30 s outage,
# the races' mixed load for 60 s.
test-fault: all $(O)/tests/integration/test_fault $(O)/tests/integration/test_races
	$(TEST_ENV) POSEIDON_FAULT_FULL=1 $(O)/tests/integration/test_fault
	$(TEST_ENV) POSEIDON_FAULT_FULL=1 $(O)/tests/integration/test_races

# The FastCGI worker under valgrind (also part of make test), alone.
valgrind: all $(INTEG_BIN)
	$(TEST_ENV) $(O)/tests/integration/test_api

# Runs every benchmark and writes docs/benchmarks.md (LOAD_SECONDS sets the load test's length).
bench: deps
	@$(MAKE) --no-print-directory all $(BENCH_BIN)
	@$(TEST_ENV) tests/bench/run.sh $(O)/tests/bench

run: deps
	@$(MAKE) --no-print-directory all
	@POSEIDON_BIN_DIR=$(abspath $(O)/bin) deploy/run.sh

# docs/configuration.md embeds the key table generated from lib/config.c (a unit test checks it).
docs: all
	@{ sed -n '1,/^<!-- generated table -->$$/p' docs/configuration.md; \
	   $(O)/bin/poseidon-api -config-reference; \
	   sed -n '/^<!-- end of generated table -->$$/,$$p' docs/configuration.md; } > docs/configuration.md.tmp
	@mv docs/configuration.md.tmp docs/configuration.md

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

clean:
	rm -rf build lib/libposeidon.a

-include $(shell find $(O)/obj -name '*.d' 2>/dev/null)

# ---- fuzzing: make fuzz | fuzz-smoke ------------------------------------------------------------
# libFuzzer targets tests/fuzz/fuzz_*.c, built with clang into $(O)/fuzz/ against lib/*.c compiled by
# clang with the same sanitizers (ASan+UBSan, coverage). `make fuzz` runs each for FUZZ_SECONDS on its
# seed corpus tests/fuzz/corpus/<target>/ (new inputs go to $(O)/fuzz/corpus/, findings to
# $(O)/fuzz/artifacts/) and prints a table: target, executions, crashes. `make fuzz-smoke` only
# replays the seed corpora. Neither is part of make test: every finding gets a regression test in
# tests/unit, which make test and make asan run without a second build of the library.
FUZZ_CC      ?= clang-14
FUZZ_SECONDS ?= 60
FUZZ_DIR     := $(O)/fuzz
FUZZ_SRC     := $(sort $(wildcard tests/fuzz/fuzz_*.c))
FUZZ_BIN     := $(FUZZ_SRC:tests/fuzz/%.c=$(FUZZ_DIR)/%)
FUZZ_LIBOBJ  := $(LIB_SRC:%.c=$(FUZZ_DIR)/obj/%.o)
FUZZ_SAN     := -fsanitize=address,undefined -fno-sanitize-recover=all
FUZZ_CFLAGS   = -std=c11 -D_GNU_SOURCE -Wall -Wextra -Wno-missing-field-initializers -g -O1 \
		-fno-omit-frame-pointer $(FUZZ_SAN) $(PKG_CFLAGS) -Ilib -I$(O)/gen -MMD -MP

.PHONY: fuzz fuzz-build fuzz-smoke

fuzz-build: $(FUZZ_BIN)

$(FUZZ_DIR)/obj/lib/%.o: lib/%.c
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZCC  $<")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -c -o $@ $<

$(FUZZ_DIR)/obj/lib/version.o: $(O)/gen/version_gen.h
$(FUZZ_DIR)/obj/lib/jobspec.o: deploy/template-job.json

$(FUZZ_BIN): $(FUZZ_DIR)/%: tests/fuzz/%.c $(FUZZ_LIBOBJ)
	@mkdir -p $(@D)
	@$(if $(Q),echo "  FUZZLD  $@")
	$(Q)$(FUZZ_CC) $(FUZZ_CFLAGS) -Werror -fsanitize=fuzzer -MF $(FUZZ_DIR)/obj/$*.d -MT $@ -o $@ $< \
		$(FUZZ_LIBOBJ) -lfcgi $(PKG_LIBS) -lm -lpthread

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_DIR) $(FUZZ_SECONDS) $(notdir $(FUZZ_BIN))

fuzz-smoke: deps
	@$(MAKE) --no-print-directory fuzz-build
	@tests/fuzz/run.sh $(FUZZ_DIR) 0 $(notdir $(FUZZ_BIN))

-include $(shell find $(FUZZ_DIR)/obj -name '*.d' 2>/dev/null)
