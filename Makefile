# rkt, rebuilt in Rust.
#
#   make          build the release binaries, the stage1 images and the test images
#   make demo     install what is missing, build, and run a pod from a bundled image
#   make test     install what is missing, build, and run every test (functional ones included)
#   make bench    compare with crun and runc on this machine (see BENCHMARKS.md)
#   make install  PREFIX=/usr/local: rkt in PREFIX/bin, stage1 images in PREFIX/lib/rkt/stage1-images

SHELL := /bin/bash
CARGO ?= cargo
PREFIX ?= /usr/local
TRIPLE := x86_64-unknown-linux-gnu
RELEASE := target/release
STATIC := target/$(TRIPLE)/release
IMAGES := target/images
VERSION := $(shell sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
# Debian packages the build, the demo and the tests need (checked by command or file).
APT_PACKAGES := busybox-static pkg-config xz-utils bzip2 util-linux iproute2 containernetworking-plugins systemd systemd-container dbus iptables nftables protobuf-compiler python3-venv curl gnupg openssl docker-registry skopeo umoci qemu-system-x86
BENCH_PACKAGES := crun runc hyperfine wrk
# An independent gRPC client for the api-service tests: Python's grpcio,
# its stubs generated from the shipped .proto by grpcio-tools (from PyPI).
GRPC_VENV := target/grpc-venv
GRPC_TOOLS := grpcio-tools==1.85.1 grpcio==1.85.3

STAGE1_FLAVORS := fly ns kvm
# The kernel the kvm stage1's VMs boot: Debian's, fetched (not installed).
GUEST_KERNEL := target/guest-kernel
STAGE1_IMAGES := $(foreach f,$(STAGE1_FLAVORS),$(RELEASE)/stage1-$(f).aci)
TEST_IMAGES := $(IMAGES)/busybox.aci $(IMAGES)/inspect.aci

.PHONY: all setup test-setup build static images demo test unit-test functional-test lint bench install clean

all: build images

setup:
	@missing=""; for p in $(APT_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		echo "setup: installing$$missing"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi
	@command -v $(CARGO) >/dev/null || { echo "setup: cargo not found; install Rust (rustup) first" >&2; exit 1; }
	@# rkt's packages made a `rkt` group: members read the data dir rkt creates.
	@getent group rkt >/dev/null || { echo "setup: creating the rkt group"; groupadd --system rkt; }

test-setup: setup
	@if [ ! -f $(GRPC_VENV)/.installed ]; then \
		echo "setup: installing $(GRPC_TOOLS) into $(GRPC_VENV)"; \
		rm -rf $(GRPC_VENV) && python3 -m venv $(GRPC_VENV) && \
		$(GRPC_VENV)/bin/pip install -q $(GRPC_TOOLS) && touch $(GRPC_VENV)/.installed; \
	fi

build:
	$(CARGO) build --release --workspace --bins

# Binaries that run inside pods or as stage1 entrypoints are static so they run on any host.
static:
	CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static" \
		$(CARGO) build --release --target $(TRIPLE) -p stage1-fly -p stage1-ns -p stage1-kvm -p inspect -p cni-plugins

$(GUEST_KERNEL)/.complete:
	./scripts/guest-kernel.sh $(GUEST_KERNEL)

images: build static $(GUEST_KERNEL)/.complete
	mkdir -p $(IMAGES)
	$(RELEASE)/build-aci stage1 --flavor fly --bin-dir $(STATIC) --version $(VERSION) $(RELEASE)/stage1-fly.aci
	$(RELEASE)/build-aci stage1 --flavor ns --bin-dir $(STATIC) --version $(VERSION) $(RELEASE)/stage1-ns.aci
	$(RELEASE)/build-aci stage1 --flavor kvm --bin-dir $(STATIC) --guest-kernel $(GUEST_KERNEL) --version $(VERSION) $(RELEASE)/stage1-kvm.aci
	$(RELEASE)/build-aci busybox $(IMAGES)/busybox.aci
	$(RELEASE)/build-aci inspect --binary $(STATIC)/inspect $(IMAGES)/inspect.aci

demo: setup all
	@./scripts/demo.sh

test: test-setup all lint unit-test functional-test

unit-test:
	$(CARGO) test --release --no-fail-fast --workspace --exclude functional-tests

functional-test:
	$(CARGO) test --release --no-fail-fast -p functional-tests -- --test-threads=2

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings

bench: test-setup all
	@missing=""; for p in $(BENCH_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; fi
	@./scripts/bench.sh

install: all
	install -D -m 0755 $(RELEASE)/rkt $(DESTDIR)$(PREFIX)/bin/rkt
	install -d $(DESTDIR)$(PREFIX)/lib/rkt/stage1-images
	install -m 0644 $(STAGE1_IMAGES) $(DESTDIR)$(PREFIX)/lib/rkt/stage1-images/

clean:
	$(CARGO) clean
