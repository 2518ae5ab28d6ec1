# make memcheck: a full sync of the small demo mirror (then the no-op sync after it) under
# valgrind's memcheck, against a throwaway PostgreSQL and the PeopleForce sandbox, with the
# plain build (build/hrsync: valgrind and AddressSanitizer do not mix). Fails on any
# memcheck error or definite leak; prints valgrind's summaries. Logs: build/memcheck/.
.PHONY: memcheck
memcheck: deps
	@$(MAKE) --no-print-directory all
	@tests/memcheck/run.sh $(CURDIR)/$(BUILD)/hrsync
