# ngx_http_canary_module: build, test, demo, bench.
#
#   make                     module + sidecar against the installed nginx
#   make NGINX_SRC=/path     against a full nginx source tree
#   make test                install deps, build, unit + integration tests
#   make check               the suite again on an AddressSanitizer and
#                            UBSan build, and every fuzzer for a while
#   make demo                a whole rollout on loopback
#   make demo KEEP=1         ... then everything stays up until Ctrl-C
#   make bench               benchmarks (not part of make test)
#   make judge-bench         the judge on simulated rollouts, against the
#                            judge as it landed before
#   make soak                five minutes of everything at once
#   make install             module, sidecar, canary-ctl, systemd unit
#                            (DESTDIR, PREFIX=/usr/local)
#   make deb                 build/libnginx-mod-http-canary_*.deb

SHELL      := /bin/bash
NGINX_SRC  ?= /usr/share/nginx/src
BUILD      ?= build
CC         ?= cc
CFLAGS_STD  = -std=gnu99 -O2 -g -Wall -Wextra -Werror
MODULE_CC_OPT ?=
MODULE_LD_OPT ?=

NGX_BUILD  = $(BUILD)/nginx
MODULE     = $(BUILD)/ngx_http_canary_module.so
SIDECAR    = $(BUILD)/canary-sidecar

# the sidecar: main.c is the program, the rest links into unit tests too
SIDECAR_SRCS = $(wildcard src/sidecar/*.c)
SIDECAR_LIB  = $(filter-out src/sidecar/main.c src/sidecar/listen.c,\
               $(SIDECAR_SRCS))
SIDECAR_LIBS = -lhiredis -lcurl -ljansson -lcrypto -lm -lmicrohttpd -lz
# --listen's rollout page, compiled in as a C string (listen.c, which
# only the program links: its HTTP is tested by t/sidecar_listen.t)
SIDECAR_PAGE = $(BUILD)/gen/cs_page.h
# the pure core the module shares with the sidecar: the weight syntax
# and the histogram's buckets
SIDECAR_SHARED = src/core/ngx_http_canary_parse.c \
                 src/core/ngx_http_canary_histogram.c

# src/*.c need the nginx runtime; src/core/*.c is pure C that the
# module, the sidecar, unit tests and fuzzers share
PURE_SRCS  = $(wildcard src/core/*.c)
PURE_HDRS  = $(wildcard src/core/*.h)
CORE_INC   = -Isrc/core
UNIT_TESTS = $(patsubst t/unit/%.c,$(BUILD)/unit/%,$(wildcard t/unit/*.c))
SIDECAR_UNIT = $(filter $(BUILD)/unit/test_sidecar_%,$(UNIT_TESTS))

CHECK_CFLAGS := $(shell pkg-config --cflags check 2>/dev/null)
# a unit test's START_TEST names, for UNIT_MAIN (t/unit/unit.h): every
# test written is run
UNIT_LIST  = -DUNIT_TESTS="$$(sed -n 's/^START_TEST(\([A-Za-z0-9_]*\))$$/\1,/p' $< \
             | tr -d '\n')"
CHECK_LIBS   := $(shell pkg-config --libs check 2>/dev/null)

# Debian's nginx-dev records the flags its nginx was configured with
NGX_CONF_FLAGS = $(shell [ -f $(NGINX_SRC)/conf_flags ] \
	&& bash -c '. $(NGINX_SRC)/conf_flags; echo "$${NGX_CONF_FLAGS[@]}"' \
	|| echo --with-compat)

# fuzzers: fuzz/fuzz_NAME.c, each run FUZZ_SECONDS on fuzz/corpus/NAME
FUZZ_SRCS    = $(wildcard fuzz/fuzz_*.c)
FUZZ_TARGETS = $(patsubst fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
FUZZ_SECONDS ?= 20
FUZZ_CFLAGS  = -g -O1 -fsanitize=fuzzer,address,undefined \
               -fno-sanitize-recover=undefined -Isrc/core -Isrc/sidecar

# the sanitizer build of the module, loaded into Debian's nginx
ASAN_BUILD   = build-asan
ASAN_FLAGS   = -fsanitize=address,undefined -fno-omit-frame-pointer \
               -fno-sanitize-recover=undefined
ASAN_RUNTIME = $(shell $(CC) -print-file-name=libasan.so)

.PHONY: all module sidecar unit test check asan fuzz deps demo bench soak \
        judge-bench clean FORCE

all: module sidecar

module: $(MODULE)

sidecar: $(if $(SIDECAR_SRCS),$(SIDECAR))

$(SIDECAR): $(SIDECAR_SRCS) $(SIDECAR_SHARED) $(wildcard src/sidecar/*.h) \
    $(PURE_HDRS) $(SIDECAR_PAGE)
	@mkdir -p $(BUILD)
	$(CC) $(CFLAGS_STD) -Isrc/sidecar -I$(BUILD)/gen $(CORE_INC) -o $@.tmp \
	    $(SIDECAR_SRCS) $(SIDECAR_SHARED) $(SIDECAR_LIBS) && mv -f $@.tmp $@

$(SIDECAR_PAGE): src/sidecar/page.html
	@mkdir -p $(BUILD)/gen
	{ echo '/* generated from src/sidecar/page.html */'; \
	  echo 'static const char  cs_page[] ='; \
	  sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/^/    "/' \
	      -e 's/$$/\\n"/' $<; \
	  echo '    ;'; } > $@.tmp && mv -f $@.tmp $@

deps:
	@sh scripts/install-deps.sh

$(NGX_BUILD)/objs/Makefile: config src/ngx_http_canary_dashboard.html
	rm -rf $(NGX_BUILD)
	mkdir -p $(BUILD)
	cp -a $(NGINX_SRC) $(NGX_BUILD)
	cd $(NGX_BUILD) && ./configure $(NGX_CONF_FLAGS) \
	    --with-cc-opt="-Wall -Wextra -Werror $(MODULE_CC_OPT)" \
	    --with-ld-opt="$(MODULE_LD_OPT)" \
	    --add-dynamic-module=$(CURDIR) >configure.log 2>&1 \
	    || { tail -30 configure.log; exit 1; }

$(MODULE): $(NGX_BUILD)/objs/Makefile FORCE
	$(MAKE) -s -C $(NGX_BUILD) -f objs/Makefile modules
	@# a new inode: a running nginx keeps the module it mapped
	cp $(NGX_BUILD)/objs/ngx_http_canary_module.so $@.tmp && mv -f $@.tmp $@

$(SIDECAR_UNIT): $(BUILD)/unit/test_sidecar_%: t/unit/test_sidecar_%.c t/unit/unit.h \
    $(SIDECAR_LIB) $(SIDECAR_SHARED) $(wildcard src/sidecar/*.h) \
    $(PURE_SRCS) $(PURE_HDRS)
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_STD) $(CHECK_CFLAGS) $(UNIT_LIST) -Isrc/sidecar $(CORE_INC) \
	    -o $@ $< $(SIDECAR_LIB) $(PURE_SRCS) $(CHECK_LIBS) $(SIDECAR_LIBS)

$(BUILD)/unit/%: t/unit/%.c t/unit/unit.h $(PURE_SRCS) $(PURE_HDRS)
	@mkdir -p $(BUILD)/unit
	$(CC) $(CFLAGS_STD) $(CHECK_CFLAGS) $(UNIT_LIST) $(CORE_INC) -o $@ $< \
	    $(PURE_SRCS) $(CHECK_LIBS) -lm -lz

unit: $(UNIT_TESTS)
	@for t in $(UNIT_TESTS); do echo "# $$t"; $$t || exit 1; done

# in CI (CI=true, or .ci/run's CANARY_NO_SKIP=1) a test that skips fails
NO_SKIP = $(if $(filter true 1,$(CI) $(CANARY_NO_SKIP)),CANARY_NO_SKIP=1)

# two test files at a time: most of a story is waiting (timers, polls,
# leases), 2 cores are idle half the run
test: deps
	$(MAKE) all
	$(MAKE) unit
	$(NO_SKIP) prove -j2 -r t/

$(BUILD)/fuzz/fuzz_%: fuzz/fuzz_%.c $(PURE_SRCS) $(SIDECAR_LIB) $(PURE_HDRS) \
    src/sidecar/*.h fuzz/*.h
	@mkdir -p $(BUILD)/fuzz
	clang $(FUZZ_CFLAGS) -o $@ $< $(PURE_SRCS) $(SIDECAR_LIB) \
	    $(SIDECAR_LIBS)

# New inputs go to a work dir under $(BUILD), never into the seed corpus;
# a crash is kept there too.  Every target runs even after one fails.
fuzz: $(FUZZ_TARGETS)
	@failed=""; \
	for t in $(FUZZ_TARGETS); do \
	    n=$${t##*/fuzz_}; w=$(BUILD)/fuzz/work/$$n; mkdir -p $$w; \
	    echo "# $$t for $(FUZZ_SECONDS)s"; \
	    $$t -max_total_time=$(FUZZ_SECONDS) -print_final_stats=1 \
	        -artifact_prefix=$(BUILD)/fuzz/$$n- $$w fuzz/corpus/$$n 2>&1 \
	        | grep -E 'stat::number_of_executed_units|fuzz check failed|runtime error|ERROR|SUMMARY|Test unit written'; \
	    test $${PIPESTATUS[0]} -eq 0 || failed="$$failed $$n"; \
	done; \
	if [ -n "$$failed" ]; then echo "fuzz: failed:$$failed"; exit 1; fi

asan:
	$(MAKE) BUILD=$(ASAN_BUILD) MODULE_CC_OPT="$(ASAN_FLAGS)" \
	    MODULE_LD_OPT="-fsanitize=address,undefined" module
	$(MAKE) BUILD=$(ASAN_BUILD) \
	    CFLAGS_STD="$(CFLAGS_STD) -O1 $(ASAN_FLAGS)" sidecar

# the suite again on the sanitizer builds: the module in nginx, the
# sidecar as the stories run it (SidecarTest fails on any report in its
# log); CANARY_CHECK: the demo's tests, which run build/ only, skip
check: deps asan fuzz
	CANARY_CHECK=1 CANARY_MODULE=$(CURDIR)/$(ASAN_BUILD)/ngx_http_canary_module.so \
	    CANARY_NGINX_PRELOAD=$(ASAN_RUNTIME) \
	    CANARY_SIDECAR=$(CURDIR)/$(ASAN_BUILD)/canary-sidecar \
	    $(NO_SKIP) prove -r t/

# five minutes of load, long requests, reloads every 2s and two Redis
# restarts (t/soak.t)
soak: deps all
	CANARY_SOAK=1 $(NO_SKIP) prove -v t/soak.t

demo: deps all
	scripts/demo $(if $(FAULT),--fault $(FAULT)) $(if $(KEEP),--stay)

bench: all
	@sh scripts/install-deps.sh --bench
	bench/run
	bench/shadow.pl
	bench/fleet/run
	bench/judge/stack

# the judge simulator: the sidecar's decision code as it is, and as it
# landed before the stage-evidence judge (from git history), side by side
JUDGE_LANDED = a028be6
JUDGE_SRCS   = $(addprefix src/sidecar/,analysis.c evidence.c fetch.c \
               plan.c sequential.c stats.c) $(SIDECAR_SHARED)
JUDGE_OLD    = $(addprefix $(BUILD)/judge/landed/,analysis.c plan.c \
               stats.c fetch.c)

$(BUILD)/judge/sim-stage: bench/judge/judge_sim.c $(JUDGE_SRCS) \
    $(wildcard src/sidecar/*.h)
	@mkdir -p $(BUILD)/judge
	$(CC) $(CFLAGS_STD) -Isrc/sidecar $(CORE_INC) -o $@ $< $(JUDGE_SRCS) \
	    $(SIDECAR_LIBS)

$(BUILD)/judge/sim-landed: bench/judge/judge_sim.c
	@mkdir -p $(BUILD)/judge/landed
	for f in analysis plan stats fetch; do \
	    for x in c h; do \
	        git show $(JUDGE_LANDED):src/sidecar/$$f.$$x \
	            > $(BUILD)/judge/landed/$$f.$$x || exit 1; \
	    done; \
	done
	$(CC) $(CFLAGS_STD) -DJUDGE_LANDED -I$(BUILD)/judge/landed $(CORE_INC) \
	    -o $@ $< $(JUDGE_OLD) $(SIDECAR_SHARED) $(SIDECAR_LIBS)

judge-bench: $(BUILD)/judge/sim-stage $(BUILD)/judge/sim-landed
	BUILD=$(BUILD) bench/judge/run

# install and the Debian package: the file tree is packaging/install's,
# the package packaging/build-deb's (README: Install)
PREFIX  ?= /usr/local
DESTDIR ?=

.PHONY: install deb

install: all
	DESTDIR="$(DESTDIR)" PREFIX="$(PREFIX)" BUILD="$(BUILD)" \
	    sh packaging/install

deb: all
	BUILD="$(BUILD)" NGINX_SRC="$(NGINX_SRC)" sh packaging/build-deb

clean:
	rm -rf $(BUILD) $(ASAN_BUILD)

FORCE:
