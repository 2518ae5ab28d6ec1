# mk/deb.mk — the Debian package (issue 16): see docs/operations.md, "Install from the package".
#
#   make deb        build/deb/hrsync_$(VERSION)_ARCH.deb with dpkg-buildpackage -b -us -uc (the
#                   debian/ directory), in a copy of the tree (build/deb/hrsync-$(VERSION)/), so
#                   that nothing is written outside build/; then lintian, which must report no
#                   error (its report: build/deb/lintian.txt)
#
# Included by the main Makefile: reuses BUILD, VERSION.

DEB_DIR   ?= $(BUILD)/deb
DEB_ARCH  := $(shell dpkg --print-architecture 2>/dev/null)
DEB_FILE   = $(DEB_DIR)/hrsync_$(VERSION)_$(DEB_ARCH).deb
DEB_JOBS  ?= 2

.PHONY: deb
deb: deps
	@v=$$(dpkg-parsechangelog -S Version); [ "$$v" = "$(VERSION)" ] || { \
	  echo "deb: debian/changelog is at $$v but the Makefile's VERSION is $(VERSION)" >&2; exit 1; }
	@rm -rf $(DEB_DIR) && mkdir -p $(DEB_DIR)/hrsync-$(VERSION)
	@tar -c --exclude=./build --exclude=./build-asan --exclude=./build-fuzz --exclude=./.git \
	  --exclude=./bench/results --exclude=__pycache__ --exclude=./.pytest_cache . | tar -x -C $(DEB_DIR)/hrsync-$(VERSION)
	@cd $(DEB_DIR)/hrsync-$(VERSION) && dpkg-buildpackage -b -us -uc -j$(DEB_JOBS) > ../build.log 2>&1 || { \
	  tail -40 ../build.log >&2; echo "deb: dpkg-buildpackage failed, see $(DEB_DIR)/build.log" >&2; exit 1; }
	@rm -rf $(DEB_DIR)/hrsync-$(VERSION)
	@lintian --fail-on error --display-info $(DEB_FILE) > $(DEB_DIR)/lintian.txt 2>&1; rc=$$?; \
	  cat $(DEB_DIR)/lintian.txt; \
	  if [ $$rc -ne 0 ]; then echo "deb: lintian reports errors (E:) on $(DEB_FILE)" >&2; exit 1; fi
	@echo "deb: $(DEB_FILE)"
