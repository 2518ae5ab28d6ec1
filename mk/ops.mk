# mk/ops.mk — installing hrsync for operations, and checking its systemd units.
#
#   make install [PREFIX=/usr/local] [DESTDIR=]   binary and example config (Makefile), and
#                                                  through install-ops: systemd units, the
#                                                  sysusers.d entry for the hrsync user, man pages
#   make systemd-verify                            systemd-analyze verify on every unit (also
#                                                  checks that Documentation= man pages exist,
#                                                  when man(1) is installed)
#   make systemd-security                          systemd-analyze security --offline on each service
#
# Units go to $(PREFIX)/lib/systemd/system, the vendor unit directory systemd searches for
# /usr and /usr/local alike, and never to /etc/systemd/system: /etc is the sysadmin's, for
# drop-ins (`systemctl edit hrsync.service`) that a later `make install` must not overwrite.
# ExecStart= is rewritten to the installed binary ($(PREFIX)/bin/hrsync).
# make install does not create the user nor reload systemd (DESTDIR must stay pure); after
# a real install: systemd-sysusers && systemctl daemon-reload (docs/operations.md).

UNITDIR     ?= $(PREFIX)/lib/systemd/system
SYSUSERSDIR ?= $(PREFIX)/lib/sysusers.d
MANDIR      ?= $(PREFIX)/share/man
OPS_UNITS    = hrsync.service hrsync.timer hrsyncd.service hrsync@.service hrsync@.timer \
               hrsync-reconcile.service hrsync-reconcile.timer

.PHONY: install-ops systemd-verify systemd-security
install: install-ops

install-ops:
	install -d $(DESTDIR)$(UNITDIR) $(DESTDIR)$(SYSUSERSDIR) $(DESTDIR)$(MANDIR)/man1 $(DESTDIR)$(MANDIR)/man5
	for u in $(OPS_UNITS); do \
	  sed 's#/usr/bin/hrsync#$(PREFIX)/bin/hrsync#g' systemd/$$u > $(DESTDIR)$(UNITDIR)/$$u.tmp && \
	  chmod 0644 $(DESTDIR)$(UNITDIR)/$$u.tmp && mv -f $(DESTDIR)$(UNITDIR)/$$u.tmp $(DESTDIR)$(UNITDIR)/$$u || exit 1; \
	done
	install -m 0644 systemd/hrsync.sysusers $(DESTDIR)$(SYSUSERSDIR)/hrsync.conf
	install -m 0644 docs/man/hrsync.1 $(DESTDIR)$(MANDIR)/man1/hrsync.1
	install -m 0644 docs/man/hrsync.yaml.5 $(DESTDIR)$(MANDIR)/man5/hrsync.yaml.5
	@echo "install-ops: units in $(DESTDIR)$(UNITDIR); now: systemd-sysusers && systemctl daemon-reload"

# The units as installed, with ExecStart= on the built binary, in a scratch directory; the
# template is checked through an instance. Any message (even a warning) fails the check.
OPS_VERIFY_DIR = $(BUILD)/systemd-verify
systemd-verify: $(BUILD)/hrsync
	@command -v systemd-analyze >/dev/null || { \
	  echo "systemd-verify: systemd-analyze not found (Debian package: systemd)" >&2; exit 1; }
	@rm -rf $(OPS_VERIFY_DIR) && mkdir -p $(OPS_VERIFY_DIR)/man/man1 $(OPS_VERIFY_DIR)/man/man5
	@for u in $(OPS_UNITS); do sed 's#/usr/bin/hrsync#$(CURDIR)/$(BUILD)/hrsync#g' systemd/$$u > $(OPS_VERIFY_DIR)/$$u; done
	@cp docs/man/hrsync.1 $(OPS_VERIFY_DIR)/man/man1/ && cp docs/man/hrsync.yaml.5 $(OPS_VERIFY_DIR)/man/man5/
	@cd $(OPS_VERIFY_DIR) && man=no && if command -v man >/dev/null; then man=yes; fi && \
	  out=$$(MANPATH=$$PWD/man systemd-analyze verify --man=$$man \
	    ./hrsync.service ./hrsync.timer ./hrsyncd.service ./hrsync@tenant.service ./hrsync@tenant.timer \
	    ./hrsync-reconcile.service ./hrsync-reconcile.timer 2>&1); \
	  rc=$$?; [ -z "$$out" ] || echo "$$out" >&2; \
	  if [ $$rc -eq 0 ] && [ -z "$$out" ]; then echo "systemd-verify: $(OPS_UNITS): OK"; else exit 1; fi

systemd-security: systemd-verify
	@cd $(OPS_VERIFY_DIR) && for u in hrsync.service hrsyncd.service hrsync@tenant.service hrsync-reconcile.service; do \
	  systemd-analyze security --offline=yes --no-pager ./$$u | tail -1; done
