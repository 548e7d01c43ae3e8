#!/usr/bin/perl

# bench/shadow.pl: what shadow traffic costs the proxy, and whether the
# client ever sees the canary (issue 20, "Cost and safety"); run by
# make bench after bench/run.  Prints the figures and PASS/FAIL where
# the issue states a target, and writes BENCH_OUT/shadow.md.
#
#   1. callgrind (deterministic): Ir/request of the module's forms (d)
#      and (g) of bench/run with `shadow 0` against the same build
#      without `shadow` (target: the same instructions); with
#      BENCH_SHADOW_BASE=PATH/ngx_http_canary_module.so (a build from
#      before shadow traffic) also against that; and (d) at shadow 10.
#   2. the proxy worker's CPU per request (utime + stime of its single
#      worker over a wrk run / the requests wrk counted) without shadow,
#      at shadow 10 and at shadow 100; 1 KB bodies, identical origins.
#   3. memory per shadow in flight: the worker's RSS with H/2 and H
#      shadows held by a canary that accepts and never answers, and the
#      bound (64 in flight per worker: the rest skipped and counted).
#   4. the client's latency (wrk p50/p99) without shadow, with a canary
#      that answers after 2 s under shadow 100 (target: p99 within 10%)
#      and with a dead canary (connection refused; target: 0 errors).
#
# The proxy's worker runs on CPU 0, wrk and the origins on CPU 1
# (taskset, when there are 2 CPUs or more); runs are interleaved in
# rounds and figures are medians over the rounds, with the spread.
#
# Settings: BENCH_SHADOW_ROUNDS (5) BENCH_SHADOW_SECONDS (3: a CPU run)
# BENCH_SHADOW_LAT_SECONDS (3: a latency run) BENCH_SHADOW_LAT_ROUNDS
# (11) BENCH_SHADOW_HELD (60)
# BENCH_SHADOW_MEM_RUNS (3) BENCH_SHADOW_CONNECTIONS (16)
# BENCH_SHADOW_CG_TOL (0.15: percent) BENCH_SHADOW_BASE (unset)
# BENCH_SHADOW_SECTIONS (callgrind,cpu,memory,latency) BENCH_CG_REQUESTS
# (2000) BENCH_CG_WARMUP (200) BENCH_OUT (bench/results) BENCH_KEEP.

use strict;
use warnings;

use FindBin;
use lib "$FindBin::Bin/lib";

use File::Copy qw(copy);
use File::Path qw(make_path);
use IO::Socket::INET;
use JSON::PP;
use Time::HiRes qw(sleep time);

use Bench;
use Callgrind;

my $ROOT = $Bench::ROOT;
my $T0 = time;

sub env_num {
    my ($name, $default) = @_;

    my $v = $ENV{$name};

    return $default unless defined $v && length $v;
    die "bench: $name=\"$v\" is not a number\n" unless $v =~ /^\d+(\.\d+)?$/;

    return $v;
}

my %cfg = (
    rounds      => env_num('BENCH_SHADOW_ROUNDS', 5),
    seconds     => env_num('BENCH_SHADOW_SECONDS', 3),
    lat_seconds => env_num('BENCH_SHADOW_LAT_SECONDS', 3),
    lat_rounds  => env_num('BENCH_SHADOW_LAT_ROUNDS', 11),
    held        => env_num('BENCH_SHADOW_HELD', 60),
    mem_runs    => env_num('BENCH_SHADOW_MEM_RUNS', 3),
    connections => env_num('BENCH_SHADOW_CONNECTIONS', 16),
    lat_conns   => env_num('BENCH_SHADOW_LAT_CONNECTIONS', 4),
    cg_tol      => env_num('BENCH_SHADOW_CG_TOL', 0.15),
    cg_requests => env_num('BENCH_CG_REQUESTS', 2000),
    cg_warmup   => env_num('BENCH_CG_WARMUP', 200),
    base        => $ENV{BENCH_SHADOW_BASE},
    out         => $ENV{BENCH_OUT} || "$Bench::BENCH/results",
);

my %want = map { $_ => 1 } split /[\s,]+/,
    ($ENV{BENCH_SHADOW_SECTIONS} || 'callgrind,cpu,memory,latency');

for (keys %want) {
    die "bench: unknown section \"$_\" in BENCH_SHADOW_SECTIONS\n"
        unless /^(callgrind|cpu|memory|latency)$/;
}

# N of ngx_http_canary_shadow.c (NGX_HTTP_CANARY_SHADOW_INFLIGHT)
my ($INFLIGHT) = (Bench::slurp("$ROOT/src/ngx_http_canary_module.h") // '')
                 =~ /NGX_HTTP_CANARY_SHADOW_INFLIGHT\s+(\d+)/;
($INFLIGHT) = (Bench::slurp("$ROOT/src/ngx_http_canary_shadow.c") // '')
              =~ /NGX_HTTP_CANARY_SHADOW_INFLIGHT\s+(\d+)/
    unless $INFLIGHT;
$INFLIGHT //= 64;

sub have { system("command -v $_[0] >/dev/null 2>&1") == 0 }

my $MODULE_BUILT = "$ROOT/build/ngx_http_canary_module.so";

die "bench: $MODULE_BUILT is missing: run make first (make bench does)\n"
    unless -f $MODULE_BUILT;

my $ncpu = `nproc` + 0 || 1;
my ($PROXY_CPUS, $CLIENT_CPUS) = ('', '');

if ($ncpu >= 2 && have('taskset')) {
    ($PROXY_CPUS, $CLIENT_CPUS) = ('0', '1');
}

make_path($cfg{out});

my $tmp = Bench::init_tmp();
Bench::log_msg("shadow: temp dir %s; proxy on CPU %s, wrk and origins on "
               . "CPU %s", $tmp, length $PROXY_CPUS ? $PROXY_CPUS : "any",
               length $CLIENT_CPUS ? $CLIENT_CPUS : "any");

copy($MODULE_BUILT, "$tmp/ngx_http_canary_module.so")
    or die "bench: copy $MODULE_BUILT: $!\n";
my $MODULE = "$tmp/ngx_http_canary_module.so";

my (@lines, @targets, @md);

sub out {
    my ($fmt, @args) = @_;

    my $s = sprintf($fmt, @args);
    print "$s\n";
    push @lines, $s;
}

sub target {
    my ($ok, $what, $measured) = @_;

    push @targets, [$ok ? 'PASS' : 'FAIL', $what, $measured];
    out('  %-4s  %s: %s', $ok ? 'PASS' : 'FAIL', $what, $measured);
}

sub load {
    my $l = Bench::slurp('/proc/loadavg') // '';
    my @f = split ' ', $l;
    return "@f[0 .. 2]";
}

out('bench/shadow.pl, %s UTC, load average %s (%d CPUs)',
    scalar(gmtime), load(), $ncpu);

# ---- origins: 1 KB bodies, identical; one nginx on the client CPU ---------

my $BODY = 'x' x 1024;
my %port = (stable => Bench::port(), canary => Bench::port(),
            dead => Bench::port());

my $origins = Bench::nginx(
    name    => 'shadow-origins',
    workers => 1,
    ports   => [$port{stable}, $port{canary}],
    cpus    => $CLIENT_CPUS,
    conf    => Bench::main_conf(
        dir     => "$tmp/shadow-origins",
        workers => 1,
        http    => "    server { listen 127.0.0.1:$port{stable} "
                   . "backlog=4096; location / { return 200 '$BODY'; } }\n"
                   . "    server { listen 127.0.0.1:$port{canary} "
                   . "backlog=4096; location / { return 200 '$BODY'; } }\n"))
    ->start;

# a proxy of bench/shadow.conf: shadow line (undef: absent), canary port
sub proxy {
    my ($name, $shadow, $canary, %o) = @_;

    my $port = Bench::port();
    my $http = Bench::template('shadow.conf',
                               STABLE_PORT => $port{stable},
                               CANARY_PORT => $canary,
                               PORT        => $port,
                               SHADOW      => defined $shadow
                                              ? "shadow $shadow;" : '');

    my $n = Bench::nginx(
        name    => "shadow-$name",
        workers => 1,
        ports   => [$port],
        cpus    => $PROXY_CPUS,
        conf    => Bench::main_conf(modules => [$MODULE],
                                    dir => "$tmp/shadow-$name",
                                    workers => 1, http => $http));

    $n->{port} = $port;

    return $n->start;
}

# splits.app.shadow of /canary_status, or undef
sub shadow_status {
    my ($p) = @_;

    my $r = Bench::http_get($p->{port}, '/canary_status',
                            [Accept => 'application/json']) or return undef;
    my $j = eval { decode_json($r->{body}) } or return undef;

    return $j->{splits}{app}{shadow};
}

# one wrk run on the client CPU; returns { requests, errors, p50, p99 }
sub wrk {
    my ($port, $seconds, $conns) = @_;

    $conns //= $cfg{connections};

    my ($rc, $text) = Bench::run_cmd(
        ['wrk', '-t1', "-c$conns", "-d${seconds}s", '--latency',
         "http://127.0.0.1:$port/"], name => 'wrk', cpus => $CLIENT_CPUS);

    my %f = (us => 0.001, ms => 1, s => 1000);
    my %r = (text => $text);

    ($r{requests}) = $text =~ /(\d+) requests in/;
    my ($mv, $mu) = $text =~ /^\s+Latency\s+\S+\s+\S+\s+([\d.]+)(us|ms|s)\b/m;
    $r{max} = defined $mv ? $mv * $f{$mu} : undef;

    for my $p (50, 90, 99) {
        my ($v, $u) = $text =~ /^\s+$p(?:\.000)?%\s+([\d.]+)(us|ms|s)\b/m;
        $r{"p$p"} = defined $v ? $v * $f{$u} : undef;
    }

    my ($non2xx) = $text =~ /Non-2xx or 3xx responses: (\d+)/;
    my $sock = 0;
    my $re = 'Socket errors: connect (\d+), read (\d+), write (\d+), '
             . 'timeouts? (\d+)';

    if ($text =~ /$re/) {
        $sock = $1 + $2 + $3 + $4;
    }
    $r{errors} = ($non2xx // 0) + $sock;

    die "bench: wrk on $port: no figures:\n$text\n"
        unless $r{requests} && defined $r{p99};

    return \%r;
}

sub spread {
    my ($fmt, @v) = @_;

    my ($lo, $hi) = Bench::min_max(@v);

    return sprintf("$fmt (%s runs, $fmt-$fmt)", Bench::median(@v),
                   scalar(@v), $lo, $hi);
}

# a distribution-free interval for the median of @v: order statistics
# k and n + 1 - k, the largest k for which P(Bin(n, 1/2) < k) <= 5% on
# each side (sign test); returns ([low, "NN%"], high)
sub median_interval {
    my @s = sort { $a <=> $b } @_;
    my $n = @s;
    my ($k, $c, $cdf) = (0, 1, 0);

    # cdf = P(X <= i - 1), i = k candidate
    for my $i (1 .. int(($n + 1) / 2)) {
        $cdf += $c / 2**$n;         # P(X = i - 1)
        last if $cdf > 0.05;
        $k = $i;
        $c = $c * ($n - $i + 1) / $i;
    }

    return ([$s[0], 'min-max'], $s[-1]) if $k == 0;

    # the interval's coverage: 1 - 2 P(X <= k - 1)
    my ($cov, $cc) = (0, 1);
    for my $i (0 .. $k - 1) {
        $cov += $cc / 2**$n;
        $cc = $cc * ($n - $i) / ($i + 1);
    }

    return ([$s[$k - 1], sprintf('%.0f%%', 100 * (1 - 2 * $cov))],
            $s[$n - $k]);
}

sub commas {
    my $n = sprintf('%.0f', $_[0]);
    1 while $n =~ s/^(-?\d+)(\d{3})/$1,$2/;
    return $n;
}

# ---- 1. callgrind ----------------------------------------------------------

sub cg_variant {
    my ($id, $conf, $module, $shadow) = @_;

    my $port = Bench::port();
    my $up = Bench::template('upstreams.conf',
                             STABLE_PORT => $port{stable},
                             CANARY_PORT => $port{canary});
    my $http = Bench::template($conf, UPSTREAMS => $up, PORT => $port,
                               BENCH => $Bench::BENCH);

    if (defined $shadow) {
        $http =~ s/^(\s+)(cookie\s+canary;\n)/$1$2$1shadow $shadow;\n/m
            or die "bench: no split in bench/$conf\n";
    }

    return { id => $id, port => $port,
             conf_text => sub {
                 return Bench::main_conf(modules => [$module], http => $http,
                                         @_);
             } };
}

# Ir/request of one variant: (Ir(2N) - Ir(N)) / N, its allocator's share
# and the allocator calls per request (Callgrind.pm, as bench/run)
sub cg_measure {
    my ($v) = @_;

    my $n = $cfg{cg_requests};
    my $r1 = Callgrind::one_run(\%cfg, $v, $tmp, $n, 1);
    my $r2 = Callgrind::one_run(\%cfg, $v, $tmp, 2 * $n, 1);

    die "bench: callgrind $v->{id}: non-200 responses\n"
        if $r1->{bad} || $r2->{bad};

    my $self = Callgrind::per_request(Callgrind::functions($r1->{out}, 0),
                                      Callgrind::functions($r2->{out}, 0),
                                      $n);
    my $heap = 0;

    for my $f (keys %$self) {
        $heap += $self->{$f}
            if $f =~ /^(?:_int_malloc|_int_free|malloc|free|
                          unlink_chunk\S*|malloc_consolidate|
                          posix_memalign|_mid_memalign\S*|
                          alloc_perturb|tcache\S*|int_mallinfo)
                      \s\[libc\.so\.6\]$/x;
    }

    # the module's 100 ms timer runs as often as the wall clock says, and
    # under valgrind a run lasts longer when other jobs load the machine:
    # its Ir per request moves by tens from run to run (bench/README.md)
    my $incl = Callgrind::per_request(Callgrind::functions($r1->{out}, 1),
                                      Callgrind::functions($r2->{out}, 1),
                                      $n);
    my ($tick) = map { $incl->{$_} } grep { /^ngx_http_canary_tick / }
                 keys %$incl;

    my $r = { ir => ($r2->{ir} - $r1->{ir}) / $n, heap => $heap,
              tick => $tick // 0,
              allocs => (Callgrind::alloc_calls($r2->{out})
                         - Callgrind::alloc_calls($r1->{out})) / $n,
              self => $self };

    Bench::log_msg("  callgrind %-22s %8.0f Ir/request (%.0f in malloc/free, "
                   . "%.0f in the timer, %.2f allocator calls)", $v->{id},
                   $r->{ir}, $r->{heap}, $r->{tick}, $r->{allocs});

    return $r;
}

# the functions whose self cost differs by 1 Ir/request or more
sub cg_diff_functions {
    my ($x, $y) = @_;

    my %k = map { $_ => 1 } keys %{$x->{self}}, keys %{$y->{self}};
    my @d;

    for my $f (keys %k) {
        my $d = ($y->{self}{$f} // 0) - ($x->{self}{$f} // 0);
        push @d, [$f, $d] if abs($d) >= 1;
    }

    @d = sort { abs($b->[1]) <=> abs($a->[1]) } @d;
    splice @d, 6 if @d > 6;

    return join(', ', map { sprintf('%s %+.0f', $_->[0], $_->[1]) } @d)
           || 'none';
}

# same instructions: the same allocator calls, and the Ir outside the
# allocator within the tolerance (the allocator's own Ir moves with the
# heap layout a configuration leaves: bench/README.md)
# cg_compare(WHAT, X, Y[, MAX_IR]): Y costs what X does (within
# BENCH_SHADOW_CG_TOL percent), or at most MAX_IR instructions more
sub cg_compare {
    my ($what, $x, $y, $max_ir) = @_;

    my $core_a = $x->{ir} - $x->{heap} - $x->{tick};
    my $core_b = $y->{ir} - $y->{heap} - $y->{tick};
    my $pct = 100 * ($core_b - $core_a) / $core_a;
    my $same_allocs = abs($x->{allocs} - $y->{allocs}) < 0.01;
    my $ok = (defined $max_ir ? $core_b - $core_a <= $max_ir
                              : abs($pct) <= $cfg{cg_tol})
             && $same_allocs;
    my $claim = defined $max_ir
                ? "at most $max_ir instructions more (outside malloc/free "
                  . "and the 100 ms timer), the same allocator calls"
                : "the same instructions (outside malloc/free and the "
                  . "100 ms timer within $cfg{cg_tol}%, the same allocator "
                  . "calls)";

    target($ok, "$what: $claim",
           sprintf('%s vs %s Ir/request (%+.0f); outside malloc/free and '
                   . 'the timer %s vs '
                   . '%s (%+.0f, %+.3f%%); allocator calls %.2f vs %.2f; '
                   . 'functions that differ: %s',
                   commas($x->{ir}), commas($y->{ir}), $y->{ir} - $x->{ir},
                   commas($core_a), commas($core_b), $core_b - $core_a,
                   $pct, $x->{allocs}, $y->{allocs},
                   cg_diff_functions($x, $y)));
}

if ($want{callgrind} && !have('valgrind')) {
    out('1. callgrind: skipped, valgrind not installed');
} elsif ($want{callgrind}) {
    $cfg{mix} = Bench::request_mix(5000);

    out('');
    out('1. callgrind, Ir/request, N = %d (bench/run\'s (d) and (g), '
        . 'weight 20, its request mix)', $cfg{cg_requests});

    my %cg;

    for my $form (['d', 'variant-module.conf'],
                  ['g', 'variant-balancer.conf'])
    {
        my ($id, $conf) = @$form;

        $cg{"$id-absent"} = cg_measure(cg_variant("$id-absent", $conf,
                                                  $MODULE, undef));
        $cg{"$id-0"} = cg_measure(cg_variant("$id-shadow0", $conf, $MODULE,
                                             0));

        if ($cfg{base}) {
            $cg{"$id-base"} = cg_measure(cg_variant("$id-base", $conf,
                                                    $cfg{base}, undef));
        }
    }

    for my $pct (10, 100) {
        $cg{"d-$pct"} = cg_measure(cg_variant("d-shadow$pct",
                                              'variant-module.conf',
                                              $MODULE, $pct));
    }

    out('  %-44s %10s %10s %8s %8s', '', 'Ir/req', 'malloc', 'timer',
        'allocs');
    for my $k (grep { $cg{$_} } qw(d-base d-absent d-0 d-10 d-100
                                   g-base g-absent g-0)) {
        my %name = ('d-base' => '(d) $canary_upstream, before shadow (base)',
                    'd-absent' => '(d) $canary_upstream, no shadow',
                    'd-0' => '(d) $canary_upstream, shadow 0',
                    'd-10' => '(d) $canary_upstream, shadow 10',
                    'd-100' => '(d) $canary_upstream, shadow 100',
                    'g-base' => '(g) canary_balancer, before shadow (base)',
                    'g-absent' => '(g) canary_balancer, no shadow',
                    'g-0' => '(g) canary_balancer, shadow 0');
        out('  %-44s %10s %10s %8s %8.2f', $name{$k}, commas($cg{$k}{ir}),
            commas($cg{$k}{heap}), commas($cg{$k}{tick}), $cg{$k}{allocs});
    }

    out('  base: %s', $cfg{base} ? $cfg{base}
                                 : 'not given (BENCH_SHADOW_BASE)');

    for my $id (qw(d g)) {
        # shadow 0 keeps a PRECONTENT handler and two filters installed,
        # so that Redis can raise the percent without a reload: their
        # price (a phase call, one test per filter call) is all it may add
        cg_compare("callgrind ($id) shadow 0 vs no shadow, same build",
                   $cg{"$id-absent"}, $cg{"$id-0"}, 150);
        cg_compare("callgrind ($id) no shadow vs before shadow (base)",
                   $cg{"$id-base"}, $cg{"$id-absent"})
            if $cg{"$id-base"};
    }

    # shadow 10 picks its requests at random (ngx_random): its figure
    # moves by a few hundred Ir from run to run; shadow 100 does not
    out('  over no shadow: shadow 10 %+.0f Ir/request (10%% of stable\'s '
        . 'requests, picked at random), shadow 100 %+.0f (every request '
        . 'stable gets: about 4 in 5 with weight 20 and the overrides)',
        $cg{'d-10'}{ir} - $cg{'d-absent'}{ir},
        $cg{'d-100'}{ir} - $cg{'d-absent'}{ir});
}

# ---- 2. CPU per request ----------------------------------------------------

if ($want{cpu}) {
    out('');
    out('2. proxy worker CPU per request (utime+stime over a wrk run of '
        . '%d s, -c%d; %d rounds, medians and min-max; 1 KB bodies)',
        $cfg{seconds}, $cfg{connections}, $cfg{rounds});

    my @conf = (['absent', undef], ['10', 10], ['100', 100]);
    my %p = map { $_->[0] => proxy("cpu-$_->[0]", $_->[1], $port{canary}) }
            @conf;
    my (%us, %rps, %sent);

    for my $c (@conf) {
        wrk($p{$c->[0]}{port}, 1);      # warm-up
    }

    for my $round (1 .. $cfg{rounds}) {
        my $first = ($round - 1) % @conf;

        for my $c (@conf[$first .. $#conf, 0 .. $first - 1]) {
            my $p = $p{$c->[0]};
            my ($w) = $p->worker_pids;
            my $s0 = shadow_status($p);
            my $c0 = Bench::cpu_seconds($w);
            my $r = wrk($p->{port}, $cfg{seconds});
            my $c1 = Bench::cpu_seconds($w);
            my $s1 = shadow_status($p);

            die "bench: cpu $c->[0]: $r->{errors} errors\n" if $r->{errors};

            push @{$us{$c->[0]}}, ($c1 - $c0) * 1e6 / $r->{requests};
            push @{$rps{$c->[0]}}, $r->{requests} / $cfg{seconds};
            push @{$sent{$c->[0]}}, 100 * ($s1->{requests} - $s0->{requests})
                                    / $r->{requests}
                if $s0 && $s1;
        }
    }

    for my $c (@conf) {
        my $k = $c->[0];
        out('  shadow %-7s %s us/request, %s req/s%s', $k,
            spread('%.1f', @{$us{$k}}), commas(Bench::median(@{$rps{$k}})),
            $sent{$k} ? sprintf(', %.1f%% mirrored', Bench::median(
                                    @{$sent{$k}})) : '');
    }

    my @r10 = map { $us{10}[$_] / $us{absent}[$_] } 0 .. $#{$us{absent}};
    my @r100 = map { $us{100}[$_] / $us{absent}[$_] } 0 .. $#{$us{absent}};

    out('  shadow 10: %+.1f%% CPU per request (median of per-round ratios; '
        . 'min-max %+.1f%% to %+.1f%%); shadow 100: %.2fx',
        100 * (Bench::median(@r10) - 1),
        map({ 100 * ($_ - 1) } Bench::min_max(@r10)),
        Bench::median(@r100));

    $_->stop for values %p;
}

# ---- 3. memory per shadow in flight, and the bound -------------------------

if ($want{memory}) {
    my $hang = IO::Socket::INET->new(LocalAddr => '127.0.0.1',
                                     LocalPort => Bench::port(),
                                     Listen => 1024, ReuseAddr => 1)
        or die "bench: listen: $!\n";
    my $held = $cfg{held} > $INFLIGHT ? $INFLIGHT : $cfg{held};
    my $half = int($held / 2);
    my $over = 10;
    my (@kb, @bound);

    out('');
    out('3. memory per shadow in flight: worker RSS with %d and %d shadows '
        . 'held by a canary that never answers (timeout=60s), %d runs',
        $half, $held, $cfg{mem_runs});

    for my $run (1 .. $cfg{mem_runs}) {
        my $p = proxy("mem-$run", '100 timeout=60s', $hang->sockport);
        my ($w) = $p->worker_pids;
        my @rss;

        # each request on its own connection: answered by stable, its
        # shadow stays in flight
        for my $i (1 .. $held) {
            my $r = Bench::http_get($p->{port}, "/held$i");
            die "bench: memory: request $i: "
                . ($r ? $r->{status} : 'no response') . "\n"
                unless $r && $r->{status} == 200;
            next unless $i == $half || $i == $held;
            sleep 0.3;
            push @rss, Bench::memory_kb($w)->{VmRSS};
        }

        push @kb, ($rss[1] - $rss[0]) / ($held - $half);

        # above the bound: skipped and counted
        for my $i (1 .. $INFLIGHT - $held + $over) {
            my $r = Bench::http_get($p->{port}, "/over$i");
            die "bench: memory: request over $i failed\n"
                unless $r && $r->{status} == 200;
        }

        my $s = shadow_status($p) // {};
        push @bound, [$s->{requests} // -1, $s->{skipped}{in_flight} // -1];

        Bench::log_msg("  memory run %d: RSS %d -> %d kB; %d shadows sent, "
                       . "%d skipped (in flight)", $run, @rss,
                       @{$bound[-1]});

        $p->stop('TERM', 5);
    }

    close $hang;

    out('  %s KB per shadow in flight (RSS delta over %d more held / %d)',
        spread('%.1f', @kb), $held - $half, $held - $half);

    my $bound_ok = !grep { $_->[0] != $INFLIGHT || $_->[1] != $over } @bound;

    target($bound_ok, "at most $INFLIGHT shadows in flight per worker, "
                      . 'the rest skipped and counted (skipped.in_flight)',
           sprintf('%d requests, shadows sent / skipped.in_flight per run: '
                   . '%s (expected %d / %d)', $INFLIGHT + $over,
                   join(', ', map { "$_->[0] / $_->[1]" } @bound),
                   $INFLIGHT, $over));
}

# ---- 4. the client's latency: a slow canary, a dead canary -----------------

if ($want{latency}) {
    my $slow_port = Bench::port();
    my $slow = Bench::spawn('slow canary',
                            [$^X, "$ROOT/t/lib/slow_origin.pl", $slow_port,
                             2000, $BODY],
                            cpus => $CLIENT_CPUS,
                            out => "$tmp/slow_origin.log");

    Bench::wait_port($slow_port, 10, $slow);

    out('');
    out('4. client latency (wrk -t1 -c%d, %d s runs, keep-alive; %d rounds '
        . 'interleaved; medians and min-max)', $cfg{lat_conns},
        $cfg{lat_seconds}, $cfg{lat_rounds});

    # two proxies without shadow: their difference is the noise (A/A)
    my @conf = (['no shadow', undef, $port{canary}],
                ['no shadow, a second proxy (A/A)', undef, $port{stable}],
                ['slow canary (2 s), shadow 100', 100, $slow_port],
                ['dead canary (refused), shadow 100', 100, $port{dead}]);
    my %p = map { $_->[0] => proxy("lat-" . ($_->[1] // 'absent')
                                   . "-$_->[2]", $_->[1], $_->[2]) } @conf;
    my (%p50, %p90, %p99, %max, %rps, %err, %s0);

    for my $c (@conf) {
        wrk($p{$c->[0]}{port}, 1);      # warm-up
        $s0{$c->[0]} = shadow_status($p{$c->[0]});
    }

    # each round starts with another proxy: whichever runs first in a
    # round would otherwise be favoured (or not) every time
    for my $round (1 .. $cfg{lat_rounds}) {
        my $first = ($round - 1) % @conf;

        for my $c (@conf[$first .. $#conf, 0 .. $first - 1]) {
            my $r = wrk($p{$c->[0]}{port}, $cfg{lat_seconds},
                        $cfg{lat_conns});

            push @{$p50{$c->[0]}}, $r->{p50};
            push @{$p90{$c->[0]}}, $r->{p90};
            push @{$p99{$c->[0]}}, $r->{p99};
            push @{$max{$c->[0]}}, $r->{max};
            push @{$rps{$c->[0]}}, $r->{requests} / $cfg{lat_seconds};
            $err{$c->[0]} += $r->{errors};
        }
    }

    out('  %-34s %-26s %-26s %-28s %8s %8s %6s', '', 'p50 ms', 'p90 ms',
        'p99 ms', 'max ms', 'req/s', 'errors');

    for my $c (@conf) {
        my $k = $c->[0];
        out('  %-34s %-26s %-26s %-28s %8.1f %8s %6d', $k,
            spread('%.2f', @{$p50{$k}}), spread('%.2f', @{$p90{$k}}),
            spread('%.2f', @{$p99{$k}}), (Bench::min_max(@{$max{$k}}))[1],
            commas(Bench::median(@{$rps{$k}})), $err{$k});
    }

    my %sh;

    for my $c (@conf[2, 3]) {
        my $s = shadow_status($p{$c->[0]}) // {};
        my $z = $s0{$c->[0]} // {};
        $sh{$c->[0]} = $s;
        out('  %-36s shadows sent %d, canary_errors %d, timeouts %d, '
            . 'skipped.in_flight %d (during the rounds)', $c->[0],
            map({ ($s->{$_} // 0) - ($z->{$_} // 0) }
                qw(requests canary_errors timeouts)),
            ($s->{skipped}{in_flight} // 0)
            - ($z->{skipped}{in_flight} // 0));
    }

    my ($none, $aa, $slowk, $deadk) = map { $_->[0] } @conf;
    my @ratio = map { $p99{$slowk}[$_] / $p99{$none}[$_] }
                0 .. $#{$p99{$none}};
    my @aa = map { $p99{$aa}[$_] / $p99{$none}[$_] } 0 .. $#{$p99{$none}};
    my ($m_ratio, $m_aa) = (Bench::median(@ratio), Bench::median(@aa));
    my ($lo, $hi) = median_interval(@ratio);
    my ($aa_lo, $aa_hi) = median_interval(@aa);
    my $measured = sprintf('p99 %.2f vs %.2f ms; per-round ratios %s: '
                           . 'median %+.1f%%, its %s interval %+.0f%% to '
                           . '%+.0f%%; the same proxy twice (A/A): median '
                           . '%+.1f%%, interval %+.0f%% to %+.0f%%',
                           Bench::median(@{$p99{$slowk}}),
                           Bench::median(@{$p99{$none}}),
                           join(' ', map { sprintf('%.2f', $_) } @ratio),
                           100 * ($m_ratio - 1), $lo->[1],
                           100 * ($lo->[0] - 1), 100 * ($hi - 1),
                           100 * ($m_aa - 1), 100 * ($aa_lo->[0] - 1),
                           100 * ($aa_hi - 1));
    my $what = 'client p99 with a 2 s canary under shadow 100 within 10% '
               . 'of no shadow';

    # pass when the whole interval of the median ratio is under 1.10,
    # fail when it is all above; otherwise (or when two identical proxies
    # disagree for sure) this run cannot tell 10%: no verdict
    if ($lo->[1] eq 'min-max') {
        push @targets, ['NOISY', $what, $measured
                        . ': too few rounds for an interval (5 or more)'];
        out('  %-5s %s: %s (too few rounds for an interval: no verdict)',
            'NOISY', $what, $measured);
    } elsif ($hi <= 1.10 && $aa_lo->[0] <= 1 && $aa_hi >= 1) {
        target(1, $what, $measured);
    } elsif ($lo->[0] > 1.10) {
        target(0, $what, $measured);
    } else {
        push @targets, ['NOISY', $what, $measured
                        . ': the interval reaches past 10%, this run '
                        . 'cannot tell'];
        out('  %-5s %s: %s (the interval reaches past 10%%: no verdict)',
            'NOISY', $what, $measured);
    }

    # the safety claim itself, which noise cannot blur: no client
    # response waited for the 2 s canary
    my $slow_max = (Bench::min_max(@{$max{$slowk}}))[1];

    target($slow_max < 2000 && $err{$slowk} == 0,
           'no client waits for a 2 s canary (shadow 100): every response '
           . 'of all rounds faster than the canary (2 s), 0 errors',
           sprintf('slowest %.1f ms (no shadow: %.1f and %.1f ms), %d '
                   . 'errors', $slow_max,
                   (Bench::min_max(@{$max{$none}}))[1],
                   (Bench::min_max(@{$max{$aa}}))[1], $err{$slowk}));

    my $dead_sent = ($sh{$deadk}{canary_errors} // 0)
                    - ($s0{$deadk}{canary_errors} // 0);

    target($err{$deadk} == 0 && $dead_sent > 0,
           'dead canary (connection refused) under shadow 100: 0 client '
           . 'errors',
           sprintf('%d errors in %s requests; %d shadows ended in '
                   . 'canary_errors', $err{$deadk},
                   commas(Bench::median(@{$rps{$deadk}})
                          * $cfg{lat_seconds} * $cfg{lat_rounds}),
                   $dead_sent));

    $_->stop('TERM', 5) for values %p;
    Bench::stop_proc($slow, 'TERM', 5);
}

$origins->stop;

out('');
out('done in %.0f s; load average %s', time - $T0, load());

# ---- shadow.md -------------------------------------------------------------

my @table = ('| target | measured | result |', '|---|---|---|',
             map { "| $_->[1] | $_->[2] | **$_->[0]** |" } @targets);

Bench::spew("$cfg{out}/shadow.md",
            join("\n", '# Shadow traffic: cost and safety (bench/shadow.pl)',
                 '', 'Written by `bench/shadow.pl` (make bench).', '',
                 @table, '', '```', @lines, '```', ''));

Bench::log_msg("shadow: results in %s/shadow.md", $cfg{out});

exit(0);
