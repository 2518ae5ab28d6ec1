# Fuzzing (issue 4, item 7): see tests/fuzz/README.md.
#
#   make fuzz                      build the libFuzzer targets (clang) into build-fuzz/ and run each
#                                  for FUZZ_SECONDS against its corpus; new inputs are merged into
#                                  tests/fuzz/corpus/<target>/, crashes land in build-fuzz/artifacts/<target>/
#   make fuzz FUZZ_TARGETS="fuzz_json fuzz_ref" FUZZ_SECONDS=300
#   make fuzz-replay               gcc + ASan/UBSan, no clang: replay every committed corpus and
#                                  tests/fuzz/regress/<target>/ (the inputs that once crashed)
#   make fuzz-cmin                 minimize each committed corpus in place (keeps the files' names)
#
# Included by the main Makefile: reuses SRCS, WARN, PKG_CFLAGS, PKG_LIBS, VERSION, LIBOBJS.

FUZZ_ALL      = fuzz_config fuzz_mapping fuzz_json fuzz_ref fuzz_template fuzz_yaml fuzz_throttle
FUZZ_TARGETS ?= $(FUZZ_ALL)
FUZZ_SECONDS ?= 60
FUZZ_CC      ?= clang
FUZZ_DIR     ?= build-fuzz
FUZZ_MAX_CORPUS ?= 300
# Extra compiler flags, e.g. FUZZ_EXTRA=-DFUZZ_SKIP_KNOWN with FUZZ_DIR=build-fuzz/known (see the README).
FUZZ_EXTRA   ?=
# Merging into the committed corpus keeps an input only for new edges, not new hit counts:
# a corpus of a few hundred files covers what one of thousands does.
FUZZ_MERGE_ARGS ?= -use_counters=0
# Extra libFuzzer flags, e.g. FUZZ_ARGS="-jobs=1" or "-fork=1 -ignore_crashes=1".
FUZZ_ARGS    ?=

FUZZ_CFLAGS  = -O1 -g -fno-omit-frame-pointer -std=c11 -D_DEFAULT_SOURCE $(WARN) \
               -DHRSYNC_VERSION='"$(VERSION)"' $(PKG_CFLAGS) -fno-sanitize-recover=all
FUZZ_OBJS    = $(patsubst %.c,$(FUZZ_DIR)/obj/%.o,$(filter-out daemon/main.c,$(SRCS)))
FUZZ_HDRS    = $(wildcard daemon/*.h) tests/fuzz/fuzz.h

# The sanitizer flags of `make asan`: the replay binaries link the objects it builds.
FUZZ_ASAN_SAN = -fsanitize=address,undefined,float-cast-overflow -fno-omit-frame-pointer -fno-sanitize-recover=all

.PHONY: fuzz fuzz-build fuzz-replay fuzz-cmin

$(FUZZ_DIR)/obj/%.o: %.c $(wildcard daemon/*.h)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link,address,undefined $(FUZZ_EXTRA) -c -o $@ $<

$(FUZZ_DIR)/fuzz_%: tests/fuzz/fuzz_%.c $(FUZZ_HDRS) $(FUZZ_OBJS)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -Idaemon -fsanitize=fuzzer,address,undefined $(FUZZ_EXTRA) -o $@ $< $(FUZZ_OBJS) $(PKG_LIBS) -lm

fuzz-build: $(addprefix $(FUZZ_DIR)/,$(FUZZ_TARGETS))

# One target at a time (the machine is shared): run, then merge what is new into the
# committed corpus (only inputs that add coverage), minimize when it grows too big.
fuzz: fuzz-build
	@fail=0; for t in $(FUZZ_TARGETS); do \
	  mkdir -p $(FUZZ_DIR)/artifacts/$$t $(FUZZ_DIR)/new/$$t tests/fuzz/corpus/$$t; \
	  rm -f $(FUZZ_DIR)/new/$$t/* $(FUZZ_DIR)/artifacts/$$t/*; \
	  dict=; [ -f tests/fuzz/$$t.dict ] && dict=-dict=tests/fuzz/$$t.dict; \
	  ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} \
	  $(FUZZ_DIR)/$$t -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
	    -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/ $$dict $(FUZZ_ARGS) \
	    $(FUZZ_DIR)/new/$$t tests/fuzz/corpus/$$t > $(FUZZ_DIR)/$$t.log 2>&1; rc=$$?; \
	  [ -f fuzz-0.log ] && mv fuzz-0.log $(FUZZ_DIR)/$$t.log; \
	  runs=$$(sed -n 's/^stat::number_of_executed_units: *//p' $(FUZZ_DIR)/$$t.log | tail -1); \
	  speed=$$(sed -n 's/^stat::average_exec_per_sec: *//p' $(FUZZ_DIR)/$$t.log | tail -1); \
	  [ -n "$$runs" ] || runs=$$(sed -n 's/^#\([0-9]*\).*exec\/s: \([0-9]*\).*/\1/p' $(FUZZ_DIR)/$$t.log | tail -1); \
	  [ -n "$$speed" ] || speed=$$(sed -n 's/^#\([0-9]*\).*exec\/s: \([0-9]*\).*/\2/p' $(FUZZ_DIR)/$$t.log | tail -1); \
	  $(FUZZ_DIR)/$$t -merge=1 $(FUZZ_MERGE_ARGS) -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/merge- tests/fuzz/corpus/$$t $(FUZZ_DIR)/new/$$t > $(FUZZ_DIR)/$$t.merge.log 2>&1; \
	  n=$$(ls tests/fuzz/corpus/$$t | wc -l); \
	  if [ $$n -gt $(FUZZ_MAX_CORPUS) ]; then $(MAKE) -s --no-print-directory fuzz-cmin FUZZ_TARGETS=$$t; \
	    n=$$(ls tests/fuzz/corpus/$$t | wc -l); fi; \
	  crashes=$$(ls $(FUZZ_DIR)/artifacts/$$t | wc -l); \
	  printf 'fuzz: %-14s %10s execs  %7s exec/s  corpus %4s files  crashes %s%s\n' $$t "$${runs:-?}" "$${speed:-?}" $$n $$crashes \
	    "$$( [ $$rc -ne 0 ] && echo "  FAILED (exit $$rc, see $(FUZZ_DIR)/$$t.log)")"; \
	  [ $$rc -eq 0 ] || fail=1; \
	done; \
	if [ $$fail -ne 0 ]; then ls -l $(FUZZ_DIR)/artifacts/*/ 2>/dev/null; exit 1; fi

# Minimize each corpus in place: merge into an empty directory, then drop the committed
# files whose content (libFuzzer names merged files by their SHA-1) did not survive.
fuzz-cmin: fuzz-build
	@for t in $(FUZZ_TARGETS); do \
	  rm -rf $(FUZZ_DIR)/cmin/$$t; mkdir -p $(FUZZ_DIR)/cmin/$$t; \
	  mkdir -p $(FUZZ_DIR)/artifacts/$$t; \
	  $(FUZZ_DIR)/$$t -merge=1 $(FUZZ_MERGE_ARGS) -artifact_prefix=$(FUZZ_DIR)/artifacts/$$t/cmin- $(FUZZ_DIR)/cmin/$$t tests/fuzz/corpus/$$t > $(FUZZ_DIR)/$$t.cmin.log 2>&1 || \
	    { echo "fuzz-cmin: $$t failed, see $(FUZZ_DIR)/$$t.cmin.log"; exit 1; }; \
	  before=$$(ls tests/fuzz/corpus/$$t | wc -l); \
	  for f in tests/fuzz/corpus/$$t/*; do \
	    h=$$(sha1sum < "$$f" | cut -d' ' -f1); \
	    if [ -e $(FUZZ_DIR)/cmin/$$t/$$h ]; then rm -f $(FUZZ_DIR)/cmin/$$t/$$h; else rm -f "$$f"; fi; \
	  done; \
	  echo "fuzz-cmin: $$t: $$before -> $$(ls tests/fuzz/corpus/$$t | wc -l) files"; \
	done

# ---- replay without clang (make check) ----

# Built by a sub-make with BUILD=build-asan, so it links the very objects `make asan` builds.
$(BUILD)/fuzz/fuzz_%: tests/fuzz/fuzz_%.c tests/fuzz/replay.c $(FUZZ_HDRS) $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Idaemon $(ALL_LDFLAGS) -o $@ $< tests/fuzz/replay.c $(LIBOBJS) $(LDLIBS)

fuzz-replay:
	@$(MAKE) -s --no-print-directory BUILD=build-asan OPT="-O1 -g" SAN="$(FUZZ_ASAN_SAN)" \
	  $(addprefix build-asan/fuzz/,$(FUZZ_ALL))
	@fail=0; start=$$(date +%s); for t in $(FUZZ_ALL); do \
	  if out=$$(REPLAY_TRACE=build-asan/fuzz/$$t.last UBSAN_OPTIONS=$${UBSAN_OPTIONS:-print_stacktrace=1} \
	            ASAN_OPTIONS=$${ASAN_OPTIONS:-detect_leaks=1} build-asan/fuzz/$$t \
	            tests/fuzz/corpus/$$t tests/fuzz/regress/$$t 2>&1); then \
	    echo "fuzz-replay: $$t: $$(echo "$$out" | tail -1)"; \
	  else echo "$$out" | tail -40; \
	    echo "fuzz-replay: $$t FAILED on $$(cat build-asan/fuzz/$$t.last 2>/dev/null)"; fail=1; fi; \
	done; echo "fuzz-replay: $$(( $$(date +%s) - start )) s"; exit $$fail

# The objects are prerequisites of pattern rules only: keep make from deleting them.
.SECONDARY: $(FUZZ_OBJS)
