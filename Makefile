# The two commands a fresh Debian machine needs: `make demo` and `make test`.
# Both install what is missing first (scripts/deps.sh).

.PHONY: demo demo-stop test deps build bench clean

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
