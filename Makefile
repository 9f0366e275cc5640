# Build ntender and the project's test unikernels; run the tests.
#
# ntender is built position-independent because the spt backend maps the
# guest at the unikernel's own low addresses inside the ntender process.

# Tests build ntender themselves, so go must be on PATH for them too.
export PATH := $(PATH):/usr/local/go/bin
GO ?= go
# urfave_cli_no_docs drops the CLI library's man page and Markdown
# generators, which ntender does not use and whose Markdown package costs
# about 0.5 ms of initialisation at every start.
GOFLAGS_BUILD ?= -buildmode=pie -trimpath -tags=urfave_cli_no_docs
# DT_RELR packs the position-independent binary's relative relocations
# (binutils 2.38 and glibc 2.36 or later): without it the dynamic loader
# reads 600 KiB of relocation entries at every start, which the resident
# memory of each tender process carries.
LDFLAGS_TENDER ?= -extldflags=-Wl,-z,pack-relative-relocs

.PHONY: all ntender ntender-bench runnc guests test demo clean

all: ntender ntender-bench runnc guests

ntender:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -ldflags='$(LDFLAGS_TENDER)' -o bin/ntender ./cmd/ntender
	ln -sf ntender bin/solo5-hvt
	ln -sf ntender bin/solo5-spt

# ntender runs ntender-bench, and runnc finds ntender, next to itself in
# bin/.
ntender-bench:
	$(GO) build -trimpath -o bin/ntender-bench ./cmd/ntender-bench

runnc:
	CGO_ENABLED=1 $(GO) build $(GOFLAGS_BUILD) -o bin/runnc ./cmd/runnc

guests:
	$(MAKE) -C tests/guests

# The tests need root, /dev/kvm, tap devices, network namespaces and, for
# runnc, Debian's docker.io (they start a private dockerd); with
# NTENDER_REQUIRE_ALL=1 a missing one fails the run instead of skipping.
# Packages run one at a time (-p 1): many start VMs, containers or a
# Docker engine, and on a small machine one package's load otherwise
# stretches another's start-up past what its checks allow.
test: all
	$(GO) vet ./...
	$(GO) test -p 1 -count=1 -timeout 20m ./...

# Boot the bundled hello guest under both backends.
demo: all
	bin/ntender --mode=hvt --mem=4 tests/guests/build/hello.hvt Hello_Solo5
	bin/ntender --mode=spt --mem=4 tests/guests/build/hello.spt Hello_Solo5

clean:
	rm -rf bin
	$(MAKE) -C tests/guests clean
