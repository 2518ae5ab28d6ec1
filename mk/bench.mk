# Benchmark (issue 6): see bench/README.md.
#
#   make bench                  build the optimised binary and the bench tools, then run every
#                               measurement against a throwaway cluster and the sandbox; prints a
#                               table, writes bench/results/results.md and results.json
#   make bench BENCH_ROWS=100000 BENCH_PUSH_CREATES=1000      a quicker pass
#   make bench BENCH_ONLY="nochange mapbench"                 some measurements only
#   make bench-tools            build build/bench/seedlinks and build/bench/mapbench only
#
# Included by the main Makefile: reuses CC, ALL_CFLAGS, ALL_LDFLAGS, LDLIBS, LIBOBJS, BUILD.

BENCH_ROWS          ?= 1000000
BENCH_SIZES         ?= 10000 100000 1000000
BENCH_REPEAT        ?= 3
BENCH_REAL_ROWS     ?= 10000
BENCH_CHANGE_PCT    ?= 1
BENCH_PUSH_CREATES  ?= 20000
BENCH_PUSH_RATE     ?= 50
BENCH_PUSH_DELAY_MS ?= 200
BENCH_PUSH_MARGIN   ?= 0
BENCH_MAP_ROWS      ?= 200000
BENCH_ONLY          ?=
# issue 18 (bench/nights.py): nights as they happen, plan memory, push CPU, pace
BENCH_NIGHT_SIZES   ?= 10000 200000 1000000
BENCH_NIGHT_REPEAT  ?= 5
BENCH_NIGHT_PUSH    ?= 10000
BENCH_NIGHT_PACE    ?= 5000
BENCH_PYTHON        ?= /usr/bin/python3

BENCH_TOOLS = $(BUILD)/bench/seedlinks $(BUILD)/bench/mapbench
BENCH_HDRS  = $(wildcard daemon/*.h) bench/benchlib.h

.PHONY: bench bench-tools

$(BUILD)/bench/%: bench/%.c $(BENCH_HDRS) $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Idaemon $(ALL_LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS)

bench-tools: $(BUILD)/hrsync $(BENCH_TOOLS)

bench: deps
	@$(MAKE) -s --no-print-directory bench-tools
	@$(BENCH_PYTHON) bench/run.py --bin $(BUILD) --rows $(BENCH_ROWS) --sizes "$(BENCH_SIZES)" \
	  --repeat $(BENCH_REPEAT) --real-rows $(BENCH_REAL_ROWS) --change-pct $(BENCH_CHANGE_PCT) \
	  --push-creates $(BENCH_PUSH_CREATES) --push-rate $(BENCH_PUSH_RATE) --push-delay-ms $(BENCH_PUSH_DELAY_MS) \
	  --push-margin $(BENCH_PUSH_MARGIN) \
	  --map-rows $(BENCH_MAP_ROWS) $(if $(strip $(BENCH_ONLY)),--only "$(BENCH_ONLY)")
	@$(BENCH_PYTHON) bench/nights.py --bin $(BUILD) --sizes "$(BENCH_NIGHT_SIZES)" --repeat $(BENCH_NIGHT_REPEAT) \
	  --change-pct $(BENCH_CHANGE_PCT) --push-rows $(BENCH_NIGHT_PUSH) --pace-rows $(BENCH_NIGHT_PACE) \
	  $(if $(strip $(BENCH_ONLY)),--only "$(BENCH_ONLY)")

.SECONDARY: $(BENCH_TOOLS)
