# hrsync — see README.md. `make demo` and `make check` install what they need first.
PREFIX  ?= /usr/local
DESTDIR ?=
CC      ?= cc
PKGS     = libcurl yajl libpq yaml-0.1 libcrypto
VERSION  = 0.1.0

PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS) 2>/dev/null)
PKG_LIBS   := $(shell pkg-config --libs $(PKGS) 2>/dev/null)
# Debian's libpq ships no .pc file in some versions: fall back to pg_config.
ifeq ($(findstring -lpq,$(PKG_LIBS)),)
PKG_CFLAGS += -I$(shell pg_config --includedir 2>/dev/null)
PKG_LIBS   += $(shell pkg-config --libs libcurl yajl yaml-0.1 libcrypto 2>/dev/null) -lpq
endif

OPT     ?= -O2 -g
SAN     ?=
WARN     = -Wall -Wextra -Werror -Wshadow -Wno-missing-field-initializers
ALL_CFLAGS = $(OPT) $(SAN) -std=c11 -D_DEFAULT_SOURCE $(WARN) -DHRSYNC_VERSION='"$(VERSION)"' $(PKG_CFLAGS) $(CFLAGS) $(CPPFLAGS)
ALL_LDFLAGS = $(SAN) $(LDFLAGS)
LDLIBS  += $(PKG_LIBS) -lm

BUILD   ?= build
# The end-to-end tests in parallel (python3-pytest-xdist): each worker has its own cluster and sandboxes.
# Four on two cores: the tests wait on sandboxes and rate limits more than they compute.
E2E_JOBS ?= 4
SRCS     = $(wildcard daemon/*.c) $(wildcard connectors/*.c)
OBJS     = $(patsubst %.c,$(BUILD)/%.o,$(SRCS))
LIBOBJS  = $(filter-out $(BUILD)/daemon/main.o,$(OBJS))
UNIT_SRCS = $(wildcard tests/unit/test_*.c)
UNITS    = $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))

.PHONY: all deps demo check unit e2e install clean asan
all: $(BUILD)/hrsync

$(BUILD)/%.o: %.c $(wildcard daemon/*.h)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -c -o $@ $<

$(BUILD)/hrsync: $(OBJS)
	$(CC) $(ALL_CFLAGS) $(ALL_LDFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/tests/%: tests/unit/%.c $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Idaemon $(ALL_LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS) -lcmocka

deps:
	@tests/setup/deps.sh

# The sanitizer build the test suite runs against (AddressSanitizer + UndefinedBehaviorSanitizer).
asan:
	@$(MAKE) --no-print-directory BUILD=build-asan OPT="-O1 -g" \
	  SAN="-fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all" \
	  build-asan/hrsync $(patsubst $(BUILD)/%,build-asan/%,$(UNITS))

unit: deps
	@$(MAKE) -s --no-print-directory asan
	@for t in $(patsubst $(BUILD)/%,build-asan/%,$(UNITS)); do \
	  if $$t > $$t.log 2>&1; then echo "unit: $$(basename $$t): $$(grep -o 'PASSED.*' $$t.log)"; \
	  else cat $$t.log; echo "unit: $$t FAILED"; exit 1; fi; done

e2e: deps
	@$(MAKE) -s --no-print-directory asan
	HRSYNC_BIN=$(CURDIR)/build-asan/hrsync /usr/bin/python3 -m pytest -q -x -n $(E2E_JOBS) --dist loadgroup tests/e2e tests/sandbox

check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory unit
	@$(MAKE) --no-print-directory fuzz-replay
	@$(MAKE) --no-print-directory e2e

demo: deps
	@$(MAKE) --no-print-directory all
	@tests/demo.sh

install: $(BUILD)/hrsync
	install -D -m 0755 $(BUILD)/hrsync $(DESTDIR)$(PREFIX)/bin/hrsync
	install -d $(DESTDIR)/etc/hrsync/mappings
	install -m 0644 config/hrsync.example.yaml $(DESTDIR)/etc/hrsync/hrsync.yaml.example

clean:
	rm -rf build build-asan

# Fragments for targets of their own (fuzz, memcheck, bench, install of units and man pages).
-include mk/*.mk
