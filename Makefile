# Warrant: top-level build.
#
#   make                  build everything into build/bin
#   make check            install missing packages, build, run every test
#   make demo             run the end-to-end demonstration on a private swtpm
#   make bench            build and run the benchmarks
#   make fuzz             build the libFuzzer targets and run each briefly
#   make SANITIZE=address,undefined check
#   make install PREFIX=/usr/local

CC      ?= cc
PREFIX  ?= /usr/local
PKGS    := tss2-esys tss2-tctildr tss2-mu tss2-rc libmicrohttpd jansson gnutls \
           libcurl libcrypto sqlite3 libfido2 libcbor libargon2

ifeq ($(SANITIZE),)
OUT     := build
HARDEN  := -U_FORTIFY_SOURCE -D_FORTIFY_SOURCE=3
OPT     := -O2
else
OUT     := build/sanitize
HARDEN  :=
OPT     := -O1 -fno-omit-frame-pointer -fsanitize=$(SANITIZE) \
           -fno-sanitize-recover=all
endif

WARN    := -Wall -Wextra -Werror -Wshadow -Wstrict-prototypes \
           -Wmissing-prototypes -Wformat=2 -Wvla -Wimplicit-fallthrough
CPPFLAGS += -D_GNU_SOURCE -Ilib $(HARDEN) \
           $(shell pkg-config --cflags $(PKGS))
CFLAGS  += -std=c11 -g $(OPT) $(WARN) -fstack-protector-strong \
           -fstack-clash-protection -fPIE -MMD -MP
LDFLAGS += -pie -Wl,-z,relro,-z,now -Wl,--as-needed
ifneq ($(SANITIZE),)
LDFLAGS += -fsanitize=$(SANITIZE)
endif
LDLIBS  := $(shell pkg-config --libs $(PKGS))

OBJ     := $(OUT)/obj
BIN     := $(OUT)/bin

# Each component is a static library of its modules plus one main.c, so
# unit tests can link any module without its main().
LIB_SRCS     := $(wildcard lib/*.c)
ATTESTD_SRCS := $(filter-out attestd/main.c attestd/attestctl.c,$(wildcard attestd/*.c))
KEYS_SRCS    := $(filter-out keys/main.c,$(wildcard keys/*.c))
VMHOST_SRCS  := $(filter-out vmhost/main.c,$(wildcard vmhost/*.c))
APPROVER_SRCS := $(filter-out approver/main.c,$(wildcard approver/*.c))

LIBWARRANT   := $(OUT)/lib/libwarrant.a
LIBATTESTD   := $(OUT)/lib/libattestd.a
LIBKEYS      := $(OUT)/lib/libkeys.a
LIBVMHOST    := $(OUT)/lib/libvmhost.a
LIBAPPROVER  := $(OUT)/lib/libapprover.a

PROGRAMS     := $(if $(wildcard attestd/main.c),$(BIN)/attestd) \
                $(if $(wildcard attestd/attestctl.c),$(BIN)/attestctl) \
                $(if $(wildcard keys/main.c),$(BIN)/attest-keys) \
                $(if $(wildcard vmhost/main.c),$(BIN)/vmhost) \
                $(if $(wildcard approver/main.c),$(BIN)/approver)
UNIT_TESTS   := $(patsubst tests/unit/%.c,$(OUT)/tests/%,$(wildcard tests/unit/test_*.c))
BENCHES      := $(patsubst tests/bench/%.c,$(OUT)/bench/%,$(wildcard tests/bench/bench_*.c))

.PHONY: all check test deps demo bench fuzz fuzz-build install clean guest
.SECONDARY:
all: $(PROGRAMS)

$(OBJ)/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

$(LIBWARRANT): $(patsubst %.c,$(OBJ)/%.o,$(LIB_SRCS))
$(LIBATTESTD): $(patsubst %.c,$(OBJ)/%.o,$(ATTESTD_SRCS))
$(LIBKEYS):    $(patsubst %.c,$(OBJ)/%.o,$(KEYS_SRCS))
$(LIBVMHOST):  $(patsubst %.c,$(OBJ)/%.o,$(VMHOST_SRCS))
$(LIBAPPROVER): $(patsubst %.c,$(OBJ)/%.o,$(APPROVER_SRCS))
$(OUT)/lib/%.a:
	@mkdir -p $(dir $@)
	rm -f $@
	$(AR) rcs $@ $^

$(BIN)/attestd: $(OBJ)/attestd/main.o $(LIBATTESTD) $(LIBWARRANT)
$(BIN)/attestctl: $(OBJ)/attestd/attestctl.o $(LIBWARRANT)
$(BIN)/attest-keys: $(OBJ)/keys/main.o $(LIBKEYS) $(LIBWARRANT)
$(BIN)/vmhost: $(OBJ)/vmhost/main.o $(LIBVMHOST) $(LIBWARRANT)
$(BIN)/approver: $(OBJ)/approver/main.o $(LIBAPPROVER) $(LIBWARRANT)
$(PROGRAMS):
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/tests/%: $(OBJ)/tests/unit/%.o $(LIBATTESTD) $(LIBKEYS) $(LIBVMHOST) $(LIBAPPROVER) \
                $(LIBWARRANT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lcmocka

# Test tools: programs the integration tests drive: a software passkey for
# the API-level tests of attestd (the browser tests use Chromium's own), and
# a client of vmhost's approver sink.
TOOLS := $(patsubst tests/tools/%.c,$(OUT)/tools/%,$(wildcard tests/tools/*.c))
$(OUT)/tools/%: $(OBJ)/tests/tools/%.o $(LIBVMHOST) $(LIBWARRANT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

$(OUT)/bench/%: $(OBJ)/tests/bench/%.o $(LIBATTESTD) $(LIBVMHOST) $(LIBAPPROVER) $(LIBWARRANT)
	@mkdir -p $(dir $@)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS) -lpthread

deps:
	@scripts/install-deps

# The guest agent: a small static program that goes into the test guest.
# It needs only libc, jansson and lib/frame.c: no key, no TPM, no OpenSSL.
AGENT_SRCS := $(wildcard vmhost/agent/*.c)
AGENT      := $(if $(AGENT_SRCS),build/guest/warrant-agent)
build/guest/warrant-agent: $(AGENT_SRCS) lib/frame.c $(wildcard vmhost/agent/*.h) lib/frame.h
	@mkdir -p $(dir $@)
	$(CC) -std=c11 -O2 -g0 -D_GNU_SOURCE -Ilib -Ivmhost/agent $(WARN) \
	    -fstack-protector-strong -fPIE -static-pie -s -o $@ $(AGENT_SRCS) lib/frame.c -ljansson

# The test guest: a Debian cloud kernel and a busybox initramfs, cached.
guest: build/guest/.stamp
build/guest/.stamp: scripts/build-guest guest/init $(AGENT)
	scripts/build-guest

# `check` installs what is missing first, then builds in a sub-make so that
# pkg-config above is evaluated with the packages present.
check: deps
	@$(MAKE) --no-print-directory test

test: $(PROGRAMS) $(UNIT_TESTS) $(TOOLS) fuzz-build guest
	@BIN=$(BIN) TESTBIN=$(OUT)/tests TOOLBIN=$(OUT)/tools FUZZBIN=build/fuzz tests/run

demo: deps
	@$(MAKE) --no-print-directory all guest
	@BIN=$(BIN) scripts/demo

bench: deps
	@$(MAKE) --no-print-directory $(PROGRAMS) $(BENCHES) $(TOOLS) guest
	@BIN=$(BIN) BENCHBIN=$(OUT)/bench TOOLBIN=$(OUT)/tools tests/bench/run

# libFuzzer targets need clang; they are always built without SANITIZE's
# flags because they bring their own. The modules are compiled once, with
# coverage but without libFuzzer's main, and each target links them.
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_CC   := clang
FUZZ_CFLAGS := -std=c11 -g -O1 -D_GNU_SOURCE -Ilib -Ivmhost -Iapprover \
               -fsanitize=address,undefined $(shell pkg-config --cflags $(PKGS))
FUZZ_MODS := $(LIB_SRCS) $(ATTESTD_SRCS) $(VMHOST_SRCS) $(APPROVER_SRCS)
FUZZ_OBJS := $(patsubst %.c,build/fuzz/obj/%.o,$(FUZZ_MODS))
fuzz-build: $(patsubst tests/fuzz/%.c,build/fuzz/%,$(FUZZ_SRCS))
build/fuzz/obj/%.o: %.c
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
build/fuzz/%: tests/fuzz/%.c $(FUZZ_OBJS)
	@mkdir -p $(dir $@)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -fsanitize=fuzzer -o $@ $< $(FUZZ_OBJS) $(LDLIBS)

fuzz: deps
	@$(MAKE) --no-print-directory fuzz-build
	@FUZZBIN=build/fuzz FUZZ_SECONDS=$${FUZZ_SECONDS:-60} tests/fuzz/run

install: $(PROGRAMS)
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/libexec/warrant
	install -m 0755 $(PROGRAMS) $(DESTDIR)$(PREFIX)/bin/
	install -m 0755 swtpm-scripts/swtpm-start swtpm-scripts/swtpm-stop \
		$(DESTDIR)$(PREFIX)/libexec/warrant/

clean:
	rm -rf build

-include $(shell find $(OBJ) build/fuzz/obj -name '*.d' 2>/dev/null)
