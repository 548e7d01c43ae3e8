package Throughput;

# 1. Throughput and latency: every variant's proxy nginx runs at once, each
# on its own port (idle ones cost nothing); wrk drives one at a time, in
# interleaved rounds (A B C ... A B C ...), so that drift and the
# neighbours' load hit every variant alike.  Besides wrk's figures, the
# CPU time the proxy's worker(s) spent per request is read from /proc: it
# is less sensitive to what else runs on the machine than req/s.

use strict;
use warnings;

use Time::HiRes qw(sleep time);

use Bench;


sub wrk_cmd {
    my ($cfg, $port, $seconds) = @_;

    return ['wrk', "-t$cfg->{threads}", "-c$cfg->{connections}",
            "-d${seconds}s", '--timeout', '5s', '-s',
            "$Bench::BENCH/tenants.lua", "http://127.0.0.1:$port/", '--',
            $cfg->{mix_file}];
}


sub wrk_cmd_text {
    my ($cfg) = @_;

    my $pin = length $cfg->{client_cpus} ? "taskset -c $cfg->{client_cpus} "
                                          : '';

    return "${pin}wrk -t$cfg->{threads} -c$cfg->{connections} "
           . "-d$cfg->{seconds}s --timeout 5s -s bench/tenants.lua "
           . "http://127.0.0.1:PORT/ -- mix.txt";
}


sub run_wrk {
    my ($cfg, $port, $seconds) = @_;

    my ($rc, $out) = Bench::run_cmd(wrk_cmd($cfg, $port, $seconds),
                                    name => 'wrk',
                                    cpus => $cfg->{client_cpus});

    my ($line) = $out =~ /^(BENCH .*)$/m;

    die "bench: wrk failed (exit $rc):\n$out\n" unless $rc == 0 && $line;

    my %r = $line =~ /(\w+)=([\d.]+)/g;

    $r{rps} = $r{requests} / ($r{duration_us} / 1e6);
    $r{errors} = $r{connect} + $r{read} + $r{write} + $r{status}
                 + $r{timeout};

    return \%r;
}


sub run {
    my ($cfg, $variants) = @_;

    my @v = grep { $_->{proxy} } @$variants;
    my @rows;

    Bench::log_msg("throughput: %d variants x %d rounds x %ds, wrk -t%d "
                   . "-c%d, proxy %d worker(s) on cpu %s, origins and wrk "
                   . "on cpu %s", scalar(@v), $cfg->{rounds},
                   $cfg->{seconds}, $cfg->{threads}, $cfg->{connections},
                   $cfg->{workers},
                   length $cfg->{proxy_cpus} ? $cfg->{proxy_cpus} : 'any',
                   length $cfg->{client_cpus} ? $cfg->{client_cpus} : 'any');

    check_routing($cfg, $_) for @v;

    # warm-up: connections to the origins, LuaJIT traces, page faults
    for my $v (@v) {
        my $r = run_wrk($cfg, $v->{port}, $cfg->{warmup});
        Bench::debug("warm-up %s: %.0f req/s", $v->{id}, $r->{rps});
        die "bench: variant $v->{id} answers with errors during warm-up "
            . "($r->{errors})\n" if $r->{errors};
    }

    # each run waits for the other jobs on the machine to use less than
    # max_others of the CPUs; one during which they used more is done
    # again; waits and repeats together take at most (budget - 1) times
    # the nominal time of the section
    my $nominal = @v * $cfg->{rounds} * ($cfg->{seconds} + 0.6);
    my $spare = ($cfg->{tp_budget} - 1) * $nominal;
    my $retried = 0;

    for my $round (1 .. $cfg->{rounds}) {
        for my $v (@v) {
            my $r;

            for my $try (0 .. $cfg->{retries}) {
                my $t0 = time;
                wait_quiet($cfg, $spare);
                $spare -= time - $t0;

                $t0 = time;
                $r = measure($cfg, $v);

                last if $r->{others} <= $cfg->{max_others}
                        || $try == $cfg->{retries} || $spare <= 0;

                $spare -= time - $t0 + 1;

                Bench::log_msg("  round %d %-2s: other jobs took %.0f%% of "
                               . "the CPUs, again", $round, $v->{id},
                               $r->{others} * 100);
                $retried++;
                sleep 1;
            }

            $r->{round} = $round;
            $r->{variant} = $v->{id};

            push @rows, $r;

            Bench::log_msg("  round %d %-2s %-14s %7.0f req/s  p50 %5dus  "
                           . "p99 %6dus  cpu %5.1fus/req  others %3.0f%%%s",
                           $round, $v->{id}, $v->{short}, $r->{rps},
                           $r->{p50_us}, $r->{p99_us}, $r->{cpu_us},
                           $r->{others} * 100,
                           $r->{errors} ? "  ERRORS $r->{errors}" : '');
        }
    }

    my %sum;

    for my $v (@v) {
        my @mine = grep { $_->{variant} eq $v->{id} } @rows;
        my ($lo, $hi) = Bench::min_max(map { $_->{rps} } @mine);

        $sum{$v->{id}} = {
            rps     => Bench::median(map { $_->{rps} } @mine),
            rps_min => $lo,
            rps_max => $hi,
            p50_us  => Bench::median(map { $_->{p50_us} } @mine),
            p99_us  => Bench::median(map { $_->{p99_us} } @mine),
            cpu_us  => Bench::median(map { $_->{cpu_us} } @mine),
            util    => Bench::median(map { $_->{proxy_util} } @mine),
            client_util => Bench::median(map { $_->{client_util} } @mine),
            others  => Bench::median(map { $_->{others} } @mine),
            errors  => eval { my $e = 0; $e += $_->{errors} for @mine; $e },
            rounds  => scalar(@mine),
        };
    }

    return { rows => \@rows, summary => \%sum, retried => $retried,
             command => wrk_cmd_text($cfg) };
}


# each variant routes as it should before it is measured: the overrides
# work and about 20% of the tenants go to canary (none for the floors)
sub check_routing {
    my ($cfg, $v) = @_;

    my $split = $v->{id} !~ /^[af]$/;
    my $side = sub {
        my $r = Bench::http_get($v->{port}, '/', [@_])
            or die "bench: variant $v->{id} does not answer\n";
        die "bench: variant $v->{id} answered $r->{status}\n"
            unless $r->{status} == 200;
        return $r->{body} =~ /^(\w+)/ ? $1 : '';
    };

    my $canary = 0;
    my $n = 300;

    for my $i (1 .. $n) {
        $canary++ if $side->('X-Tenant-Id' => "check-$i") eq 'canary';
    }

    my $always = $side->('X-Tenant-Id' => 'check-1', 'X-Canary' => 'always');
    my $never = $side->('X-Tenant-Id' => 'check-1', 'X-Canary' => 'never');
    my $cookie = $side->('X-Tenant-Id' => 'check-1',
                         'Cookie' => 'canary=always');

    my $ok = $split ? $canary > 0.1 * $n && $canary < 0.3 * $n
                      && $always eq 'canary' && $never eq 'stable'
                      && $cookie eq 'canary'
                    : $canary == 0;

    die sprintf("bench: variant %s routes wrongly: %d of %d tenants on "
                . "canary, X-Canary always -> %s, never -> %s, cookie -> "
                . "%s\n", $v->{id}, $canary, $n, $always, $never, $cookie)
        unless $ok;

    Bench::debug("variant %s: %d of %d tenants on canary, overrides ok",
                 $v->{id}, $canary, $n);
}


# waits (at most 15s, and not more than $spare seconds) until other jobs
# use less than max_others of the CPUs over 0.3s; we are idle then
sub wait_quiet {
    my ($cfg, $spare) = @_;

    return 0 if $spare <= 0;

    my $until = time + ($spare < 15 ? $spare : 15);

    for (;;) {
        my ($b0, $a0) = Bench::system_cpu();
        sleep 0.3;
        my ($b1, $a1) = Bench::system_cpu();

        my $busy = $a1 > $a0 ? ($b1 - $b0) / ($a1 - $a0) : 0;

        return $busy if $busy <= $cfg->{max_others} || time > $until;
    }
}


# one wrk run against one variant, with the CPU time of everyone
sub measure {
    my ($cfg, $v) = @_;

    my @workers = $v->{proxy}->worker_pids;
    my @origin = $cfg->{origin_nginx}->worker_pids;
    my ($cpu0, $orig0) = (0, 0);
    $cpu0 += Bench::cpu_seconds($_) // 0 for @workers;
    $orig0 += Bench::cpu_seconds($_) // 0 for @origin;
    my ($busy0, $all0) = Bench::system_cpu();
    my @kids0 = (times)[2, 3];

    my $r = run_wrk($cfg, $v->{port}, $cfg->{seconds});

    my ($cpu1, $orig1) = (0, 0);
    $cpu1 += Bench::cpu_seconds($_) // 0 for @workers;
    $orig1 += Bench::cpu_seconds($_) // 0 for @origin;
    my ($busy1, $all1) = Bench::system_cpu();
    my @kids1 = (times)[2, 3];

    my $wrk = $kids1[0] + $kids1[1] - $kids0[0] - $kids0[1];
    my $ours = $cpu1 - $cpu0 + $orig1 - $orig0 + $wrk;

    $r->{cpu_us} = $r->{requests}
                   ? ($cpu1 - $cpu0) * 1e6 / $r->{requests} : 0;
    $r->{proxy_util} = ($cpu1 - $cpu0) / ($r->{duration_us} / 1e6);

    # wrk and the origins together (one CPU's worth when pinned): when
    # they are near 100% and the proxy is not, they are the bottleneck
    $r->{client_util} = ($orig1 - $orig0 + $wrk) / ($r->{duration_us} / 1e6);

    # CPU time on the machine that is not ours (other jobs), as a
    # share of all CPUs over the run
    $r->{others} = $all1 > $all0
                   ? (($busy1 - $busy0) - $ours) / ($all1 - $all0)
                   : 0;
    $r->{others} = 0 if $r->{others} < 0;

    return $r;
}


1;
