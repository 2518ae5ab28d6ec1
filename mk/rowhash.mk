# mk/rowhash.mk — issue 16: the no-change pass's row hash, MurmurHash64A against xxHash's XXH3,
# at a million rows (bench/rowhash.c, bench/README.md "Row hash").
#
#   make bench-rowhash [ROWHASH_ROWS=1000000] [ROWHASH_REPEAT=7]
#
# Included by the main Makefile: reuses CC, ALL_CFLAGS, ALL_LDFLAGS, LDLIBS, LIBOBJS, BUILD.
ROWHASH_ROWS   ?= 1000000
ROWHASH_REPEAT ?= 7

.PHONY: bench-rowhash
$(BUILD)/bench/rowhash: bench/rowhash.c $(wildcard daemon/*.h) $(LIBOBJS)
	@mkdir -p $(dir $@)
	$(CC) $(ALL_CFLAGS) -Idaemon $(ALL_LDFLAGS) -o $@ $< $(LIBOBJS) $(LDLIBS) -lxxhash

bench-rowhash: deps
	@$(MAKE) -s --no-print-directory $(BUILD)/bench/rowhash
	@$(BUILD)/bench/rowhash $(ROWHASH_ROWS) $(ROWHASH_REPEAT)
