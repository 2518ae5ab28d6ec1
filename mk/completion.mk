# mk/completion.mk — bash completion (issue 16): completion/hrsync, installed by `make install`
# into the directory bash-completion searches ($(PREFIX)/share/bash-completion/completions);
# the Debian package installs it too (debian/hrsync.install).
COMPLETIONDIR ?= $(PREFIX)/share/bash-completion/completions

.PHONY: install-completion
install: install-completion

install-completion:
	install -D -m 0644 completion/hrsync $(DESTDIR)$(COMPLETIONDIR)/hrsync
