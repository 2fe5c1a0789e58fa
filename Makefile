# The two commands a fresh Debian machine needs: `make demo` and `make test`.
# Both install what is missing first (scripts/deps.sh).

.PHONY: demo demo-stop test deps build bench clean fuzz-smoke

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

bench: deps
	cargo bench --locked
	scripts/bench-vs-ffmpeg.sh
	scripts/netns.sh scripts/pacing.sh

clean:
	cargo clean
	rm -rf out

# Each fuzz target for 30 s (not part of `make test`). cargo-fuzz needs
# nightly features; RUSTC_BOOTSTRAP=1 lets the machine's stable toolchain
# build them. Installs cargo-fuzz if absent.
FUZZ_TARGETS = rtcp_parse rtp_receive control_request config_parse playlist_parse
fuzz-smoke: deps
	@command -v cargo-fuzz >/dev/null || cargo install cargo-fuzz --locked
	cd fuzz && for t in $(FUZZ_TARGETS); do \
	  RUSTC_BOOTSTRAP=1 cargo fuzz run $$t corpus/$$t -- -max_total_time=30 -max_len=65536 || exit 1; \
	done
