# The two commands a fresh Debian machine needs: `make demo` and `make test`.
# Both install what is missing first (scripts/deps.sh).

.PHONY: demo demo-stop test deps build bench soak soak-check clean fuzz-smoke

demo: deps
	scripts/demo.sh

demo-stop:
	scripts/demo-stop.sh

test: deps
	scripts/test.sh

deps:
	@scripts/deps.sh

build: deps
	cargo build --release --locked

# The criterion hot-path benches, then every issue-6 figure as one table
# (scripts/bench.sh, ≈ 15 min, runs in the private network namespace; exits
# non-zero if any figure was not measured, see scripts/bench-table.py).
bench: deps
	cargo bench --locked --bench hot_path
	scripts/bench.sh

# A long run with a verdict: `make soak DURATION=1h` (scripts/soak.sh).
DURATION ?= 1h
soak: deps
	cargo build --release --locked --bin loa --example rtp_timing
	scripts/netns.sh scripts/soak.sh $(DURATION)

# The soak's own check (≈ 2.5 min, scripts/soak-check.sh): a clean minute
# must PASS, a minute with the daemon stopped for 1.5 s (SIGSTOP) must FAIL.
soak-check: deps
	cargo build --release --locked --bin loa --example rtp_timing
	scripts/netns.sh scripts/soak-check.sh

clean:
	cargo clean
	rm -rf out

# Each fuzz target for 30 s (not part of `make test`). cargo-fuzz needs
# nightly features; RUSTC_BOOTSTRAP=1 lets the machine's stable toolchain
# build them. Installs cargo-fuzz if absent.
FUZZ_TARGETS = rtcp_parse rtp_receive control_request config_parse playlist_parse srtp_unprotect join_parse
fuzz-smoke: deps
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t corpus/$$t -- -max_total_time=30 -max_len=65536 || exit 1; \
	done
